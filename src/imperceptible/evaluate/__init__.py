"""Evaluation over attack results: distances, saliency-map distances, success after defenses."""

from ..costs.metrics import SALIENCY_KEYS
from .evaluator import DEFENSES, Evaluator
from .saliency import saliency_distances, spectral_residual_saliency

__all__ = ["SALIENCY_KEYS", "saliency_distances", "spectral_residual_saliency", "DEFENSES", "Evaluator"]
