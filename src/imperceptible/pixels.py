"""The 8-bit pixel grid every image of this project lives on.

An attack image is a file: 256 levels per channel. So is every clean image the tool attacks (a resized or
converted image is rounded to the grid, as a saved file would be), and every distance is measured between
two images on the grid. :func:`quantize_8bit` rounds, :func:`off_grid` counts the values that are not on
it (a float32 value ``k / 255`` may sit a rounding error away from its level; ``GRID_TOLERANCE`` allows for
that).

Examples:
    >>> import torch
    >>> from imperceptible.pixels import quantize_8bit, off_grid
    >>> x = torch.tensor([0.0, 0.5, 1.0])
    >>> quantize_8bit(x).mul(255).tolist()
    [0.0, 128.0, 255.0]
    >>> off_grid(x), off_grid(quantize_8bit(x))
    (1, 0)
"""

from __future__ import annotations

import numpy as np
import torch

LEVELS = 256
#: how far (in levels) a value may sit from its level and still count as on the grid
GRID_TOLERANCE = 1e-3


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` images to the nearest of the 256 levels of an 8-bit image."""
    return torch.round(x.clamp(0, 1) * (LEVELS - 1)) / (LEVELS - 1)


def quantize_array(a: np.ndarray) -> np.ndarray:
    """:func:`quantize_8bit` for numpy arrays (the loaders), keeping the dtype."""
    return (np.round(np.clip(a, 0, 1) * (LEVELS - 1)) / (LEVELS - 1)).astype(a.dtype, copy=False)


def off_grid(x: torch.Tensor) -> int:
    """How many values of ``x`` are not on the 8-bit grid."""
    s = x.detach().double() * (LEVELS - 1)
    return int(((s - s.round()).abs() > GRID_TOLERANCE).sum())


def first_off_grid(x: torch.Tensor) -> float:
    """The first value of ``x`` that is off the grid (for messages); ``nan`` when there is none."""
    s = x.detach().double().flatten() * (LEVELS - 1)
    bad = ((s - s.round()).abs() > GRID_TOLERANCE).nonzero()
    return float(x.flatten()[bad[0, 0]]) if bad.numel() else float("nan")


__all__ = ["GRID_TOLERANCE", "LEVELS", "first_off_grid", "off_grid", "quantize_8bit", "quantize_array"]
