"""SSIM (Wang et al. 2004) and the cost ``1 - SSIM``.

The definition of :func:`piq.ssim` (Gaussian window, valid filtering, K1 = 0.01, K2 = 0.03, no
down-sampling, mean over channels), which matches scikit-image's ``structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1`` (see the tests), computed
with the Gaussian window as two one-dimensional passes over the five moment images at once instead of piq's
five two-dimensional convolutions: the same numbers (float64: to 1e-13, tested; float32: within 2e-7 of piq's own
float32 error against the float64 value, and on a photo a quarter of it), 2.3 to 3.1 times as fast forward and 1.5 to
1.8 times forward and backward (``benchmarks/ssim_speed.py``). SSIM is
the cost ours steps on and ranks its queries by, so its time is part of every pass of ours (issue 34). It is
built from convolutions and products, so second derivatives (Hessian-vector products) work, which the one-step
attack needs.

Reference: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from
error visibility to structural similarity", IEEE TIP 13(4), 2004. DOI 10.1109/TIP.2003.819861.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import MSG_PARAM, MSG_TOO_SMALL, ParameterError
from ..validation import check_images, check_same_shape
from .base import Cost, as_full_precision, full_precision
from .tags import CostTags


def check_odd_window(kernel_size: int) -> None:
    """Refuse a window side that is not an odd integer >= 1 (the Gaussian window has a centre pixel)."""
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ParameterError.of(MSG_PARAM, name="kernel_size", expected="an odd integer >= 1", got=kernel_size)


def _check_kernel(kernel_size: int, x: torch.Tensor) -> None:
    check_odd_window(kernel_size)
    if min(x.shape[-2:]) < kernel_size:
        h, w = x.shape[-2:]
        raise ParameterError.of(MSG_TOO_SMALL, metric="SSIM", k=kernel_size, h=h, w=w)


#: SSIM's stabilising constants (K1 L)^2 and (K2 L)^2 with K1 = 0.01, K2 = 0.03 and L = 1 (Wang et al. 2004)
C1, C2 = 0.01**2, 0.03**2


def gaussian_1d(kernel_size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """The normalised one-dimensional Gaussian of ``kernel_size`` taps, centred (piq's ``gaussian_filter`` is its
    outer product with itself)."""
    t = torch.arange(kernel_size, dtype=like.dtype, device=like.device) - (kernel_size - 1) / 2
    g = torch.exp(-t**2 / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The separable Gaussian ``g`` over each channel of ``t``, valid filtering (the output shrinks by
    ``len(g) - 1``): a row pass, then a column pass."""
    c, k = t.shape[1], g.numel()
    t = F.conv2d(t, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(t, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor, *, kernel_size: int = 11,
                sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(SSIM, CS)`` per sample and channel, ``(N, C)``: the means over the valid region of the SSIM map and of its
    contrast-structure map (piq's ``_ssim_per_channel``, which MS-SSIM builds on), for images in ``[0, 1]`` and in
    full precision already (the callers' contexts)."""
    c = x.shape[1]
    moments = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], 1), gaussian_1d(kernel_size, sigma, x))
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(c, 1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs = (2 * (e_xy - mu_xy) + C2) / ((e_xx - mu_xx) + (e_yy - mu_yy) + C2)
    ss = (2 * mu_xy + C1) / (mu_xx + mu_yy + C1) * cs
    return ss.mean((-1, -2)), cs.mean((-1, -2))


def ssim_raw(x: torch.Tensor, y: torch.Tensor, *, kernel_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-sample SSIM of images already validated and in ``[0, 1]`` (the hot path of the attacks), in full
    precision (see :func:`~imperceptible.costs.base.full_precision`): :func:`piq.ssim`'s definition with
    ``downsample=False``, its window applied as two one-dimensional passes (the module docstring)."""
    with full_precision(x.device):
        return ssim_and_cs(as_full_precision(x), as_full_precision(y), kernel_size=kernel_size, sigma=sigma)[0].mean(1)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Structural similarity index per sample (``reduction="none"``), or its mean/sum.

    Args:
        x, y: images ``(N, C, H, W)`` in ``[0, data_range]``.
        kernel_size: side of the Gaussian window (odd; 11 in Wang et al.; use 7 or 5 for tiny images).
        sigma: the window's standard deviation (1.5 in Wang et al.).
        data_range: the images' maximum value.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
    """
    check_images(x, "x", bounds=(0.0, data_range))
    check_images(y, "y", bounds=(0.0, data_range))
    check_same_shape(x, y, "x, y")
    _check_kernel(kernel_size, x)
    val = ssim_raw(x / data_range, y / data_range, kernel_size=kernel_size, sigma=sigma)
    return reduce(val, reduction)


def reduce(val: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return val
    if reduction == "mean":
        return val.mean()
    if reduction == "sum":
        return val.sum()
    raise ParameterError.of(MSG_PARAM, name="reduction", expected="one of ['none', 'mean', 'sum']", got=reduction)


class WindowedCost(Cost):
    """A cost computed with a Gaussian window (SSIM, MS-SSIM): ``kernel_size`` and ``sigma``."""

    def __init__(self, *, kernel_size: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self.kernel_size = kernel_size
        self.sigma = sigma


def gaussian_window(kernel_size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    """The normalised 2-D Gaussian window, one per channel (a depthwise convolution kernel)."""
    g = gaussian_1d(kernel_size, sigma, like)
    return (g[:, None] * g[None, :]).expand(channels, 1, kernel_size, kernel_size).contiguous()


def contrast_step_scale(x0: torch.Tensor, *, kernel_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM's local geometry at ``x0``, as a per-sub-pixel step scale (mean 1 per image).

    For a small change ``d``, ``1 - SSIM(x0 + d, x0)`` is about the window average of
    ``var_w(d) / (2 var_w(x0) + C2)`` (plus a luminance term ``mean_w(d)^2 / (2 mean_w(x0)^2 + C1)``, two orders
    smaller): a change costs in proportion to ``1 / (2 var + C2)`` of the windows around it, so textured regions
    take more of it than flat ones (contrast masking). The scale is the inverse of that weight summed over the
    windows that hold the sub-pixel (reflect padding, so the image border is no cheaper than its inside)."""
    c, k = x0.shape[1], kernel_size
    w = gaussian_window(k, sigma, c, x0)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (k // 2,) * 4, mode="reflect"), w, groups=c)

    mu = blur(x0)
    var = (blur(x0 * x0) - mu * mu).clamp_min(0)
    scale = 1.0 / blur(1.0 / (2 * var + C2))
    return scale / scale.flatten(1).mean(1).view(-1, 1, 1, 1)


class SSIMCost(WindowedCost):
    """``c0(x, x0) = 1 - SSIM(x, x0)``, the paper's cost (§3.1). Per-sample, in ``[0, 2]``.

    Examples:
        >>> import torch
        >>> from imperceptible.costs import SSIMCost
        >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> c = SSIMCost()
        >>> c(x, x).tolist()
        [0.0, 0.0]
        >>> bool((c((x + 0.1).clamp(0, 1), x) > 0).all())
        True
    """

    name = "ssim"
    TAGS = CostTags("1 - SSIM (Wang et al. 2004), Gaussian 11x11 window, sigma 1.5 (piq's definition, separable window)")

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        _check_kernel(self.kernel_size, x)
        return 1.0 - ssim_raw(x, x0, kernel_size=self.kernel_size, sigma=self.sigma)

    def step_scale(self, x0: torch.Tensor) -> torch.Tensor:
        """SSIM's contrast masking (:func:`contrast_step_scale`)."""
        return contrast_step_scale(x0, kernel_size=self.kernel_size, sigma=self.sigma)
