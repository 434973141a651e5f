"""The standard luminance SSIM of Wang et al.'s reference implementation (``ssim.m``), and its distance.

What the reference code does, and this module with it: the images are grey (colour images are first
reduced to luma ``Y = 0.2989 R + 0.5870 G + 0.1140 B``, MATLAB's ``rgb2gray``, kept in floating point
here rather than rounded to 8 bits); large images are first down-sampled by ``f = max(1, round(min(H,
W) / 256))`` with an ``f x f`` box filter (symmetric padding, MATLAB ``imfilter(..., 'symmetric', 'same')``)
and keeping every ``f``-th pixel; then SSIM with an 11x11 Gaussian window (sigma 1.5), valid filtering,
``K = (0.01, 0.03)``, averaged over the map.

This differs from :mod:`.ssim` (the cost Human_Perc_OT optimises), which averages SSIM over the three RGB
channels at full resolution: the two agree on grey images smaller than 384 pixels a side. The README
says which the tables report. Reference: ``ssim.m`` gives 0.8202 on piq's goldhill / goldhill_jpeg
pair (the tests check it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import MSG_TOO_SMALL_FIXED, ParameterError
from .base import Cost
from .ssim import ssim_raw
from .tags import CostTags

#: MATLAB rgb2gray's weights
LUMA = (0.2989, 0.5870, 0.1140)


def luma(x: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luma of RGB images (grey images pass through)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _symmetric_pad(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Pad by mirroring with the edge pixel repeated (MATLAB's ``'symmetric'``)."""
    n = x.shape[dim]
    parts = []
    if before:
        parts.append(x.narrow(dim, 0, before).flip(dim))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, n - after, after).flip(dim))
    return torch.cat(parts, dim)


def reference_downsample(x: torch.Tensor) -> torch.Tensor:
    """``ssim.m``'s automatic down-sampling: box filter of side ``f`` with MATLAB's kernel centre
    (``floor((f + 1) / 2)``) and symmetric padding, then every ``f``-th pixel from the first."""
    f = max(1, math.floor(min(x.shape[-2:]) / 256 + 0.5))  # MATLAB's round: halves away from zero (640 -> 3)
    if f == 1:
        return x
    c = (f + 1) // 2  # 1-based centre of an f-tap kernel in MATLAB
    x = _symmetric_pad(_symmetric_pad(x, c - 1, f - c, 2), c - 1, f - c, 3)
    return F.avg_pool2d(x, f, stride=1)[..., ::f, ::f]


def ssim_luminance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample luminance SSIM of ``[0, 1]`` images, as ``ssim.m`` computes it (see the module docstring)."""
    if min(x.shape[-2:]) < 11:  # Wang et al.'s fixed 11x11 window (and no down-sampling below 384 pixels)
        raise ParameterError.of(MSG_TOO_SMALL_FIXED, metric="SSIM_Y", k=11, h=x.shape[-2], w=x.shape[-1])
    return ssim_raw(reference_downsample(luma(x)), reference_downsample(luma(y)), kernel_size=11, sigma=1.5)


class SSIMLuminanceCost(Cost):
    """``1 - SSIM_Y(x, x0)``: Wang et al.'s reference SSIM on luma with automatic down-sampling.

    Examples:
        >>> import torch
        >>> from imperceptible.costs import SSIMLuminanceCost
        >>> x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> SSIMLuminanceCost()(x, x).tolist()
        [0.0, 0.0]
    """

    name = "ssim-y"
    TAGS = CostTags("1 - SSIM of Wang et al.'s reference ssim.m: luma, automatic down-sampling (a judge)")

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim_luminance(x, x0)


__all__ = ["LUMA", "SSIMLuminanceCost", "luma", "reference_downsample", "ssim_luminance"]
