"""Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) and the cost ``1 - MS-SSIM``.

The definition of :func:`piq.multi_scale_ssim` (replicate padding to an even side and 2x2 average pooling between
scales; the contrast-structure term at every scale but the coarsest, SSIM there; negative terms clipped to 0; the
weighted product per channel, then the mean over channels), each scale's window applied as two one-dimensional passes
(:func:`~.ssim.ssim_and_cs`): the same numbers (float64: to 1e-13; tested), about eight times as fast as piq's as a
float64 judge at 224x224. The standard five scales need images of at least ``max((kernel_size - 1) * 16 + 1,
16 * kernel_size)`` pixels a side (176 for the 11-pixel window: the coarsest scale must hold a window); for smaller
images we use as many scales as fit and renormalise the standard scale weights over them (e.g. MNIST 28x28 with a
7-pixel window: 3 scales). The number of scales used is exposed as :func:`ms_ssim_levels`.

Reference: Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image
quality assessment", Asilomar 2003. DOI 10.1109/ACSSC.2003.1292216.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import MSG_TOO_SMALL, ParameterError
from ..validation import check_images, check_same_shape
from .base import as_full_precision, full_precision
from .ssim import WindowedCost, check_odd_window, reduce, ssim_and_cs
from .tags import CostTags

#: Wang et al.'s scale weights (coarsest last)
SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_levels(size: int, kernel_size: int) -> int:
    """How many scales fit an image whose smaller side is ``size``."""
    levels = 0
    for lv in range(1, len(SCALE_WEIGHTS) + 1):
        if size >= (kernel_size - 1) * 2 ** (lv - 1) + 1 and size // 2 ** (lv - 1) >= kernel_size:
            levels = lv
    return levels


def _ms_ssim_raw(x: torch.Tensor, y: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    check_odd_window(kernel_size)  # its size is checked per scale below (ms_ssim_levels)
    levels = ms_ssim_levels(min(x.shape[-2:]), kernel_size)
    if levels < 1:
        h, w = x.shape[-2:]
        raise ParameterError.of(MSG_TOO_SMALL, metric="MS-SSIM", k=kernel_size, h=h, w=w)
    x, y = as_full_precision(x), as_full_precision(y)
    sw = torch.tensor(SCALE_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    sw = sw / sw.sum()
    with full_precision(x.device):
        terms = []
        for level in range(levels):
            if level:
                pad = [max(x.shape[2] % 2, x.shape[3] % 2), 0] * 2  # left and top, as piq
                x = F.avg_pool2d(F.pad(x, pad, mode="replicate"), 2)
                y = F.avg_pool2d(F.pad(y, pad, mode="replicate"), 2)
            ss, cs = ssim_and_cs(x, y, kernel_size=kernel_size, sigma=sigma)
            terms.append(ss if level == levels - 1 else cs)
        return torch.prod(torch.relu(torch.stack(terms)) ** sw.view(-1, 1, 1), dim=0).mean(1)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "none",
) -> torch.Tensor:
    """MS-SSIM per sample (or reduced). Inputs ``(N, C, H, W)`` in ``[0, data_range]``."""
    check_images(x, "x", bounds=(0.0, data_range))
    check_images(y, "y", bounds=(0.0, data_range))
    check_same_shape(x, y, "x, y")
    return reduce(_ms_ssim_raw(x / data_range, y / data_range, kernel_size, sigma), reduction)


class MSSSIMCost(WindowedCost):
    """``c0(x, x0) = 1 - MS-SSIM(x, x0)``, per sample."""

    name = "ms-ssim"
    TAGS = CostTags("1 - MS-SSIM (Wang et al. 2003), scales that fit the image (piq's definition, separable window)")

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - _ms_ssim_raw(x, x0, self.kernel_size, self.sigma)
