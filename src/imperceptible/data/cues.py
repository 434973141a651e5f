"""The spurious cues of the geo-fashion simulation: each keyed to a label, painted onto a base image, decoded
back from an image, and measured for how cheap it is for the perceptual cost.

A cue is a family of 10 patterns, one per label. :meth:`Cue.paint` puts label ``k``'s pattern on a base image;
:meth:`Cue.directions` gives, per image, the directions the cue lives in (what its energy share is measured on);
:meth:`Cue.decode` reads the label a (possibly attacked) image shows, given its base image.

* :class:`Ramp` - a multiplicative illumination ramp on the garment, ``x = b (1 + a r_k)``, ``r_k`` a linear
  ramp across the image at the angle ``36 k`` degrees: SSIM's structure term ignores a smooth gain, so the cue
  is cheap for ``1 - SSIM`` (kappa about 0.19 at the default amplitude), and faint to people.
* :class:`Grating` - an additive oriented grating, ``x = b + a t_k`` (period 4 pixels, ``18 k`` degrees): a change
  of oriented structure, expensive for ``1 - SSIM`` (kappa about 1.56).
* :class:`Marker` - the first version's 3x3 white marker at one of 10 slots (visible; kappa about 0.6).

*Cheapness* (:func:`cheapness`): ``kappa = (1 - SSIM)`` of flipping the cue to another label, over ``(1 - SSIM)``
of Gaussian noise with the same L2 (both on the 8-bit grid), the median over images: below 1 the cue is cheaper
for SSIM than noise, above 1 dearer. The default amplitudes give both cues the same flip L2 (median about 1.38 on Fashion-MNIST,
2000 test images), below PGD-L2's budget of 2.

Examples:
    >>> import torch
    >>> from imperceptible.data.cues import Ramp
    >>> cue = Ramp()
    >>> base = torch.full((2, 1, 28, 28), 0.5)
    >>> x = cue.paint(base, torch.tensor([3, 7]))
    >>> cue.decode(x, base).tolist()
    [3, 7]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..pixels import quantize_8bit

LABELS = 10
#: the mechanism cue's gain (a flip costs about 1.37 in L2 on Fashion-MNIST, kappa 0.19; at 0.10 the pre-trained
#: model's interventional reliance was 0.10, below the study's gate of 0.15, at 0.20 it is 0.18)
RAMP_AMPLITUDE = 0.20
#: the reversed cue's amplitude, matched to the ramp's flip L2 (1.39, kappa 1.56)
GRATING_AMPLITUDE = 0.062
#: the first version's texture amplitude
LEGACY_GRATING_AMPLITUDE = 0.06
GRATING_PERIOD = 4.0
MARKER = 3
BORDER_POSITIONS = [(1, 1 + 5 * i) for i in range(5)] + [(24, 1 + 5 * i) for i in range(5)]
INTERIOR_POSITIONS = [(6, 4 + 4 * i) for i in range(5)] + [(19, 4 + 4 * i) for i in range(5)]
POSITIONS = {"interior": INTERIOR_POSITIONS, "border": BORDER_POSITIONS}


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return yy, xx


def ramp_patterns(size=(28, 28)) -> torch.Tensor:
    """``(10, H, W)`` linear ramps in ``[-1, 1]`` across the image, at angles ``36 k`` degrees."""
    h, w = size
    ii, jj = _grid(h, w)
    ci, cj = (h - 1) / 2, (w - 1) / 2
    out = [((ii - ci) * math.cos(2 * math.pi * k / LABELS) + (jj - cj) * math.sin(2 * math.pi * k / LABELS))
           / max(ci, cj) for k in range(LABELS)]
    return torch.stack(out).float()


def grating_patterns(size=(28, 28)) -> torch.Tensor:
    """``(10, H, W)`` gratings in ``[-1, 1]``: orientation ``18 k`` degrees, period ``GRATING_PERIOD``."""
    ii, jj = _grid(*size)
    out = [torch.cos(2 * math.pi * (ii * math.cos(math.pi * k / LABELS) + jj * math.sin(math.pi * k / LABELS))
                     / GRATING_PERIOD) for k in range(LABELS)]
    return torch.stack(out).float()


class Cue:
    """A label-keyed cue (see the module docstring)."""

    name = "cue"

    def paint(self, base: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def directions(self, base: torch.Tensor) -> torch.Tensor:
        """``(N, 10, C*H*W)``: per image, the change each label's pattern makes (the cue's span)."""
        raise NotImplementedError  # pragma: no cover

    def decode(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """The label whose pattern best explains ``x - base`` (least squares over the 10 patterns)."""
        d = self.directions(base).double()
        r = (x - base).flatten(1).double()
        coef = (d @ r[..., None]).squeeze(-1) / d.pow(2).sum(-1).clamp_min(1e-12)
        resid = (r[:, None, :] - coef[..., None] * d).pow(2).sum(-1)
        return torch.where(coef > 0, resid, torch.full_like(resid, float("inf"))).argmin(1)


@dataclass
class Ramp(Cue):
    """Multiplicative illumination ramp ``x = b (1 + a r_k)`` (cheap for SSIM)."""

    amplitude: float = RAMP_AMPLITUDE
    name: str = "ramp"

    def paint(self, base, labels):
        r = ramp_patterns(tuple(base.shape[-2:]))[torch.as_tensor(labels, dtype=torch.long)][:, None]
        return base * (1 + self.amplitude * r)

    def directions(self, base):
        r = ramp_patterns(tuple(base.shape[-2:]))
        return (self.amplitude * base[:, None] * r[None, :, None]).flatten(2)


@dataclass
class Grating(Cue):
    """Additive oriented grating ``x = b + a t_k`` (expensive for SSIM)."""

    amplitude: float = GRATING_AMPLITUDE
    name: str = "grating"

    def paint(self, base, labels):
        t = grating_patterns(tuple(base.shape[-2:]))[torch.as_tensor(labels, dtype=torch.long)][:, None]
        return base + self.amplitude * t

    def directions(self, base):
        t = grating_patterns(tuple(base.shape[-2:]))
        return (self.amplitude * t[None, :, None].expand(base.shape[0], -1, base.shape[1], -1, -1)).flatten(2)


@dataclass
class Marker(Cue):
    """The 3x3 white marker at slot ``k`` (the first version's cue)."""

    positions: str = "interior"
    name: str = "marker"

    def paint(self, base, labels):
        out = base.clone()
        labels = torch.as_tensor(labels, dtype=torch.long)
        for k, (r, c) in enumerate(POSITIONS[self.positions]):
            out[labels == k, :, r : r + MARKER, c : c + MARKER] = 1.0
        return out

    def directions(self, base):
        out = torch.zeros(base.shape[0], LABELS, *base.shape[1:])
        for k, (r, c) in enumerate(POSITIONS[self.positions]):
            out[:, k, :, r : r + MARKER, c : c + MARKER] = 1.0 - base[:, :, r : r + MARKER, c : c + MARKER]
        return out.flatten(2)

    def decode(self, x, base):
        """The slot whose 3x3 patch is brightest above its base."""
        gains = torch.stack([(x - base)[:, :, r : r + MARKER, c : c + MARKER].flatten(1).mean(1)
                             for r, c in POSITIONS[self.positions]], 1)
        return gains.argmax(1)


def paint_all(base: torch.Tensor, cues: list[Cue], labels: list[torch.Tensor]) -> torch.Tensor:
    """Every cue painted in turn (each with its labels), rounded to the 8-bit grid: the simulated image."""
    x = base
    for cue, lab in zip(cues, labels):
        x = cue.paint(x, lab)
    return quantize_8bit(x)


#: singular values below this share of the largest are rounding, not span: the patterns are float32, and the 10
#: ramps (linear in the two image axes) span only 2 dimensions per image, their other 8 singular values about 2e-8
RANK_TOL = 1e-5


def _span(directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, an orthonormal basis ``(N, CHW, 10)`` of the directions' span and which of its columns count."""
    u, sv, _ = torch.linalg.svd(directions.double().transpose(1, 2), full_matrices=False)
    return u, sv > sv[:, :1] * RANK_TOL


def span_rank(directions: torch.Tensor) -> torch.Tensor:
    """Per image, the dimension of the cue's span (ramp 2, grating and marker 10): ``rank / (C H W)`` is the share
    of an isotropic random perturbation's energy expected on it (chance)."""
    return _span(directions)[1].sum(1)


def energy_share(delta: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Per perturbation, the share of its energy (squared L2) in the span of its image's cue directions (the span
    found by SVD, rank-aware: an orthonormalisation of all 10 patterns would add rounding directions when they are
    linearly dependent, as the ramps are)."""
    d = delta.flatten(1).double()
    u, keep = _span(directions)
    proj = (u.transpose(1, 2) @ d[..., None]).squeeze(-1) * keep
    return proj.pow(2).sum(1) / d.pow(2).sum(1).clamp_min(1e-30)


def cheapness(cue: Cue, base: torch.Tensor, *, seed: int = 0, kernel_size: int = 11) -> dict:
    """kappa of ``cue`` on the base images (see the module docstring) and the median flip L2."""
    from ..costs import SSIMCost

    g = torch.Generator().manual_seed(seed)
    n = base.shape[0]
    lab = torch.randint(0, LABELS, (n,), generator=g)
    other = (lab + torch.randint(1, LABELS, (n,), generator=g)) % LABELS
    x1, x2 = quantize_8bit(cue.paint(base, lab)), quantize_8bit(cue.paint(base, other))
    l2 = (x2 - x1).flatten(1).norm(dim=1)
    noise = torch.randn(x1.shape, generator=g)
    noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1) * l2.view(-1, 1, 1, 1)
    xn = quantize_8bit(x1 + noise)
    ssim = SSIMCost(kernel_size=kernel_size)
    edit, rand = ssim(x2, x1), ssim(xn, x1)
    keep = l2 > 0
    ratio = edit[keep] / rand[keep].clamp_min(1e-12)
    return {"kappa": float(ratio.median()), "flip_l2": float(l2[keep].median()), "images": int(keep.sum())}


__all__ = ["GRATING_AMPLITUDE", "LABELS", "POSITIONS", "RAMP_AMPLITUDE", "Cue", "Grating", "Marker", "Ramp",
           "cheapness", "energy_share", "grating_patterns", "paint_all", "ramp_patterns"]
