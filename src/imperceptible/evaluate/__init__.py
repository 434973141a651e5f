"""Evaluation over attack results: distances, saliency-map distances, success after defenses."""

from .evaluator import DEFENSES, Evaluator
from .saliency import SALIENCY_KEYS, saliency_distances, spectral_residual_saliency

__all__ = ["SALIENCY_KEYS", "saliency_distances", "spectral_residual_saliency", "DEFENSES", "Evaluator"]
