"""Bit-depth reduction (feature squeezing, Xu et al. 2017): ``round(x (2^b - 1)) / (2^b - 1)``, the
quantisation of ART's ``FeatureSqueezing`` (stays in ``[0, 1]``; PerC's notebook uses a variant with
``256 / 2^b`` levels that can exceed 1)."""

from __future__ import annotations

import torch

from ..validation import check_images, check_int


def bit_depth_reduction(x: torch.Tensor, bits: int = 4) -> torch.Tensor:
    check_images(x, "x")
    check_int("bits", bits, minimum=1, maximum=8, expected="an integer in [1, 8]")
    levels = 2**bits - 1
    return torch.round(x * levels) / levels
