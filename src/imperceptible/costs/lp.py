"""The Lp family on ``[0, 1]`` images: per-sample L1, L2 and Linf norms of ``x - x0``."""

from __future__ import annotations

import torch

from .base import Cost
from .tags import CostTags


def lp_distance(x: torch.Tensor, x0: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample ``||x - x0||_p`` over all channels and pixels."""
    d = (x - x0).flatten(1)
    if p == float("inf"):
        return d.abs().amax(dim=1)
    if p == 2:
        # sqrt of the sum of squares, with a gradient that is zero (not NaN) at x == x0
        sq = d.pow(2).sum(dim=1)
        return torch.where(sq > 0, sq.clamp_min(1e-30).sqrt(), sq)
    return d.abs().pow(p).sum(dim=1).pow(1.0 / p)


class L1Cost(Cost):
    name = "l1"
    TAGS = CostTags('L1 norm of x - x0')

    def compute(self, x, x0):
        return lp_distance(x, x0, 1)


class L2Cost(Cost):
    name = "l2"
    TAGS = CostTags('L2 norm of x - x0')

    def compute(self, x, x0):
        return lp_distance(x, x0, 2)


class LinfCost(Cost):
    name = "linf"
    TAGS = CostTags('Linf norm of x - x0')

    def compute(self, x, x0):
        return lp_distance(x, x0, float("inf"))
