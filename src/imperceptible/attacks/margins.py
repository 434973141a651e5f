"""The logit margin every stopping rule and success verdict of this project is computed from."""

from __future__ import annotations

import torch


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{i != y} z_i - z_y`` per sample (positive: misclassified)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf"))
    return other.amax(1) - z_y


def classified_correctly(m: torch.Tensor) -> torch.Tensor:
    """The one rule for "correct": the true logit strictly above every other (``margin < 0``); a tie is
    neither correct nor a success (``margin > 0``)."""
    return m < 0


__all__ = ["classified_correctly", "margin"]
