"""JPEG compression as a defense (Das et al. 2018; Guo et al. 2017): encode and decode with Pillow at
``quality`` (PerC's evaluation sweeps 90..30), 4:2:0 chroma subsampling (Pillow's default)."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ..validation import check_images, check_int


def jpeg_compression(x: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """JPEG round trip of each image in ``x`` (``(N, C, H, W)`` in ``[0, 1]``, C = 1 or 3)."""
    check_images(x, "x")
    check_int("quality", quality, minimum=1, maximum=100, expected="an integer in [1, 100]")
    out = torch.empty_like(x)
    arr = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arr):
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert(img.mode), dtype=np.float32) / 255.0
        dec = dec[..., None] if dec.ndim == 2 else dec
        out[i] = torch.from_numpy(dec).permute(2, 0, 1).to(x)
    return out
