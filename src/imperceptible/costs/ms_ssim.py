"""Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) and the cost ``1 - MS-SSIM``.

Computed by :func:`piq.multi_scale_ssim`. The standard five scales need images of at least
``(kernel_size - 1) * 16 + 1`` pixels a side (161 for the 11-pixel window); for smaller images we use
as many scales as fit and renormalise the standard scale weights over them (e.g. MNIST 28x28 with a
7-pixel window: 3 scales). The number of scales used is exposed as :func:`ms_ssim_levels`.

Reference: Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image
quality assessment", Asilomar 2003. DOI 10.1109/ACSSC.2003.1292216.
"""

from __future__ import annotations

import piq
import torch

from ..errors import MSG_TOO_SMALL, ParameterError
from ..validation import check_images, check_same_shape
from .base import as_full_precision, full_precision
from .ssim import WindowedCost, reduce
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
    levels = ms_ssim_levels(min(x.shape[-2:]), kernel_size)
    if levels < 1:
        h, w = x.shape[-2:]
        raise ParameterError.of(MSG_TOO_SMALL, metric="MS-SSIM", k=kernel_size, h=h, w=w)
    x, y = as_full_precision(x), as_full_precision(y)
    sw = torch.tensor(SCALE_WEIGHTS[:levels], dtype=x.dtype, device=x.device)
    sw = sw / sw.sum()
    with full_precision(x.device):
        return piq.multi_scale_ssim(x, y, kernel_size=kernel_size, kernel_sigma=sigma, data_range=1.0,
                                    reduction="none", scale_weights=sw)


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
    TAGS = CostTags('1 - MS-SSIM (Wang et al. 2003), scales that fit the image (piq)')

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - _ms_ssim_raw(x, x0, self.kernel_size, self.sigma)
