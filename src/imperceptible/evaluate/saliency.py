"""Saliency maps that need no download, and distances between the maps of original and attacked
images (the paper's Table 2, which used EGNet; EGNet's weights are not obtainable offline).

Default model: OpenCV's spectral-residual static saliency (Hou & Zhang, CVPR 2007), deterministic and
weight-free. Any callable ``(N, C, H, W) [0, 1] -> (N, 1, H, W) [0, 1]`` can be passed instead (e.g. a
deep saliency network).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..costs.lp import lp_distance
from ..costs.ssim import ssim_raw
from ..errors import MSG_NO_SALIENCY

#: why the default saliency model cannot run (OpenCV without its contrib modules, e.g. a plain
#: ``opencv-python-headless`` installed over ours)


def saliency_unavailable() -> str | None:
    """``None`` when OpenCV's spectral-residual saliency can run here, else the reason."""
    return None if hasattr(cv2, "saliency") else MSG_NO_SALIENCY.format(version=cv2.__version__)


def default_saliency():
    """The default saliency model where it can run here (OpenCV's spectral residual), else ``None``."""
    return None if saliency_unavailable() else spectral_residual_saliency


def spectral_residual_saliency(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's spectral-residual saliency per image, ``(N, 1, H, W)`` in ``[0, 1]``."""
    arr = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    maps = []
    for a in arr:
        sal = cv2.saliency.StaticSaliencySpectralResidual.create()
        img = a[..., 0] if a.shape[-1] == 1 else cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR)
        ok, m = sal.computeSaliency(np.ascontiguousarray(img))
        if not ok:  # pragma: no cover - OpenCV reports failure only for empty input
            m = np.zeros(a.shape[:2], dtype=np.float32)
        maps.append(torch.from_numpy(np.asarray(m, dtype=np.float32)))
    return torch.stack(maps)[:, None].clamp(0, 1)


def saliency_distances(s_adv: torch.Tensor, s_orig: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1, L2, Linf and 1 - SSIM between two batches of saliency maps, per sample."""
    return {
        "saliency_l1": lp_distance(s_adv, s_orig, 1),
        "saliency_l2": lp_distance(s_adv, s_orig, 2),
        "saliency_linf": lp_distance(s_adv, s_orig, float("inf")),
        "saliency_ssim_distance": 1 - ssim_raw(s_adv, s_orig, kernel_size=min(11, min(s_adv.shape[-2:]) // 2 * 2 - 1)),
    }
