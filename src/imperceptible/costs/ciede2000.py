"""CIEDE2000 colour difference, differentiable, and the perceptual colour cost of PerC.

The per-pixel formula follows G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical observations",
Color Research & Application 30(1), 2005 (DOI 10.1002/col.20070). sRGB -> CIELAB (D65) is
:func:`kornia.color.rgb_to_lab`. kornia has no CIEDE2000 (kornia#3062), and scikit-image's
``deltaE_ciede2000`` is NumPy-only, so the difference itself is ours; the tests check it against
scikit-image and with ``gradcheck``.

The cost follows Zhao et al. (PerC, CVPR 2020): ``C2(x, x0) = || DeltaE00(x, x0) ||_2`` over pixels.
Guards keep gradients finite at zero chroma and at ``x == x0`` without changing values.
"""

from __future__ import annotations

import math

import kornia
import torch

from ..validation import check_option
from .base import Cost, to_rgb
from .tags import CostTags

_DEG = math.pi / 180.0
_25_7 = 25.0**7


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    pos = v > 0
    return torch.where(pos, v.clamp_min(1e-30).sqrt(), torch.zeros_like(v))


def _hue(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    zero = (a == 0) & (b == 0)
    h = torch.atan2(torch.where(zero, torch.zeros_like(b), b), torch.where(zero, torch.ones_like(a), a))
    return torch.where(h < 0, h + 2 * math.pi, h)


def delta_e_ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, kL: float = 1.0, kC: float = 1.0,
                      kH: float = 1.0) -> torch.Tensor:
    """Per-pixel CIEDE2000 between two CIELAB tensors ``(N, 3, H, W)``; returns ``(N, H, W)``."""
    L1, a1, b1 = lab1.unbind(1)
    L2, a2, b2 = lab2.unbind(1)
    C1 = _safe_sqrt(a1 * a1 + b1 * b1)
    C2 = _safe_sqrt(a2 * a2 + b2 * b2)
    Cbar7 = ((C1 + C2) / 2) ** 7
    G = 0.5 * (1 - _safe_sqrt(Cbar7 / (Cbar7 + _25_7)))
    a1p, a2p = (1 + G) * a1, (1 + G) * a2
    C1p = _safe_sqrt(a1p * a1p + b1 * b1)
    C2p = _safe_sqrt(a2p * a2p + b2 * b2)
    h1p, h2p = _hue(b1, a1p), _hue(b2, a2p)

    dL = L2 - L1
    dC = C2p - C1p
    prodC = C1p * C2p
    zeroC = prodC == 0
    dh = h2p - h1p
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, torch.where(dh < -math.pi, dh + 2 * math.pi, dh))
    dh = torch.where(zeroC, torch.zeros_like(dh), dh)
    dH = 2 * _safe_sqrt(prodC) * torch.sin(dh / 2)

    Lbar = (L1 + L2) / 2
    Cbarp = (C1p + C2p) / 2
    hsum = h1p + h2p
    hbar = torch.where(
        (h1p - h2p).abs() <= math.pi,
        hsum / 2,
        torch.where(hsum < 2 * math.pi, (hsum + 2 * math.pi) / 2, (hsum - 2 * math.pi) / 2),
    )
    hbar = torch.where(zeroC, hsum, hbar)
    T = (
        1
        - 0.17 * torch.cos(hbar - 30 * _DEG)
        + 0.24 * torch.cos(2 * hbar)
        + 0.32 * torch.cos(3 * hbar + 6 * _DEG)
        - 0.20 * torch.cos(4 * hbar - 63 * _DEG)
    )
    dtheta = 30 * _DEG * torch.exp(-(((hbar / _DEG - 275) / 25) ** 2))
    Cbarp7 = Cbarp**7
    RC = 2 * _safe_sqrt(Cbarp7 / (Cbarp7 + _25_7))
    Lm50 = (Lbar - 50) ** 2
    SL = 1 + 0.015 * Lm50 / torch.sqrt(20 + Lm50)
    SC = 1 + 0.045 * Cbarp
    SH = 1 + 0.015 * Cbarp * T
    RT = -torch.sin(2 * dtheta) * RC
    tL, tC, tH = dL / (kL * SL), dC / (kC * SC), dH / (kH * SH)
    return _safe_sqrt(tL * tL + tC * tC + tH * tH + RT * tC * tH)


def ciede2000_map(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between two sRGB batches in ``[0, 1]`` (grey is repeated to RGB)."""
    return delta_e_ciede2000(kornia.color.rgb_to_lab(to_rgb(x)), kornia.color.rgb_to_lab(to_rgb(x0)))


class CIEDE2000Cost(Cost):
    """PerC's colour cost: the L2 norm (``reduction="l2"``, default) or the mean (``"mean"``) of the
    per-pixel CIEDE2000 map, per sample.

    Examples:
        >>> import torch
        >>> from imperceptible.costs import CIEDE2000Cost
        >>> grey = torch.full((1, 3, 4, 4), 0.5)
        >>> CIEDE2000Cost()(grey, grey).item()
        0.0
        >>> round(CIEDE2000Cost(reduction="mean")(grey + 0.1, grey).item(), 2)  # a lighter grey: only L* moves
        8.86
    """

    name = "ciede2000"
    TAGS = CostTags("L2 norm of the per-pixel CIEDE2000 map (PerC's C2; Lab from kornia)")

    def __init__(self, *, reduction: str = "l2", data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self.reduction = check_option("reduction", reduction, ("l2", "mean"))

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        d = ciede2000_map(x, x0).flatten(1)
        if self.reduction == "mean":
            return d.mean(1)
        return _safe_sqrt(d.pow(2).sum(1))
