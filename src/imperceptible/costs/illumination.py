"""``illumination-l2``: the L2 norm of a perturbation after removing its part along two linear illumination ramps.

**A study instrument, not a perceptual judge.** This is an *oracle* cost built for the fairness study's positive
control (``imperceptible fairness --arms protocol``, arm ``positive-control``): it knows the family of the simulated
cue (a multiplicative illumination ramp, :class:`~imperceptible.data.cues.Ramp`), not the labels, and makes changes
along that family nearly free, so that an attack ascending ``loss - lambda * cost`` moves the cue. It says nothing
about what people see and is no metric of the benchmarks.

Definition, per image and channel ``c``: with ``delta = x - x0`` and the two fields ``a_1 = x0_c * u``, ``a_2 = x0_c
* v`` (``u``, ``v`` the centred row and column coordinates divided by ``max((H - 1) / 2, (W - 1) / 2)``, the
normalisation of :func:`~imperceptible.data.cues.ramp_patterns`, whose 10 ramps are ``cos(36 k) u + sin(36 k) v``),
``r_c`` is ``delta_c`` minus its least-squares fit in the span of ``a_1, a_2``; the cost is ``sqrt(sum_c ||r_c||^2)``.
So it is zero at ``x == x0`` and for any ramp gain ``x = x0 (1 + s u + t v)``, the L2 norm for a change orthogonal
to the span, and differentiable in ``x`` (its gradient at ``x == x0`` is zero, not NaN). The span is found by
Gram-Schmidt in float64; a field whose norm is below :data:`SPAN_TOL` of the image's (a black channel, or a second
field parallel to the first) adds no direction.

Example:
    >>> import torch
    >>> from imperceptible.costs.illumination import IlluminationL2Cost, ramp_fields
    >>> x0 = torch.full((1, 1, 8, 8), 0.5)
    >>> u, v = ramp_fields(8, 8)
    >>> c = IlluminationL2Cost()
    >>> round(c(x0 * (1 + 0.2 * u + 0.1 * v), x0).item(), 6)  # a ramp gain is free
    0.0
    >>> round(c(x0 + 0.1, x0).item(), 3) == round(0.1 * 8, 3)  # a constant offset is orthogonal here: its L2
    True
"""

from __future__ import annotations

import torch

from .base import Cost
from .tags import CostTags

#: a span direction whose norm is below this share of the image channel's own norm is rounding, not a direction
SPAN_TOL = 1e-8


def ramp_fields(h: int, w: int, *, dtype: torch.dtype = torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The centred row and column coordinate fields ``(H, W)``, divided by ``max((H - 1) / 2, (W - 1) / 2)`` (as
    :func:`~imperceptible.data.cues.ramp_patterns`)."""
    ii, jj = torch.meshgrid(torch.arange(h, dtype=dtype, device=device), torch.arange(w, dtype=dtype, device=device),
                            indexing="ij")
    ci, cj = (h - 1) / 2, (w - 1) / 2
    scale = max(ci, cj, 1e-12)
    return (ii - ci) / scale, (jj - cj) / scale


def _unit(a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``a / ||a||`` over the last axis, or zero where ``||a||`` is below ``SPAN_TOL * ref``."""
    n = a.norm(dim=-1, keepdim=True)
    keep = n > SPAN_TOL * ref
    return torch.where(keep, a / n.clamp_min(1e-300), torch.zeros_like(a))


def ramp_basis(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, an orthonormal basis ``(N, C, H*W)`` x 2 of the span of ``x0 * u`` and ``x0 * v``
    (float64; zero vectors where the span has fewer than two dimensions)."""
    h, w = x0.shape[-2:]
    u, v = ramp_fields(h, w, device=x0.device)
    b = x0.detach().double()
    a1, a2 = (b * u).flatten(2), (b * v).flatten(2)
    ref = b.flatten(2).norm(dim=-1, keepdim=True)
    e1 = _unit(a1, ref)
    e2 = _unit(a2 - (a2 * e1).sum(-1, keepdim=True) * e1, ref)
    return e1, e2


def illumination_l2(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of ``x - x0`` off the span of ``x0`` times the two ramps (see the module docstring)."""
    e1, e2 = ramp_basis(x0)
    d = (x.double() - x0.detach().double()).flatten(2)
    r = d - (d * e1).sum(-1, keepdim=True) * e1 - (d * e2).sum(-1, keepdim=True) * e2
    sq = r.pow(2).sum(dim=(1, 2))
    # sqrt with a gradient that is zero (not NaN) where the residual is zero
    return torch.where(sq > 0, sq.clamp_min(1e-300).sqrt(), sq).to(x.dtype)


class IlluminationL2Cost(Cost):
    """``illumination-l2`` (see the module docstring): an oracle cost for the fairness study's positive control."""

    name = "illumination-l2"
    TAGS = CostTags(
        "L2 of x - x0 off the span of x0 times two linear illumination ramps (an oracle cost for the fairness "
        "study's positive control, not a judge)", symmetric=False)

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return illumination_l2(x, x0)


__all__ = ["SPAN_TOL", "IlluminationL2Cost", "illumination_l2", "ramp_basis", "ramp_fields"]
