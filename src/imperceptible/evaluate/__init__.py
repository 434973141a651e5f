"""Evaluation over attack results: distances, saliency-map distances, success after defenses."""

from .saliency import SALIENCY_KEYS, saliency_distances, spectral_residual_saliency
from .evaluator import DEFENSES, Evaluator

__all__ = ["SALIENCY_KEYS", "saliency_distances", "spectral_residual_saliency", "DEFENSES", "Evaluator"]
