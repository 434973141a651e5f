"""Tests generated from the cost registry: every registered cost, with the options its tags declare, is 0 at identity,
non-negative and finite, symmetric where its tags say so, and has a finite gradient where it is differentiable. A cost
added later is tested the day it is registered. Learned costs run on random backbone weights written by the
``random_backbones`` fixture (nothing is fetched); PieAPP's checkpoint cannot be had offline."""

from __future__ import annotations

import pytest
import torch

from imperceptible import costs
from imperceptible.pixels import quantize_8bit

from .conftest import skip_or_fail

ENTRIES = costs.COSTS.entries()


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    x0 = quantize_8bit(0.2 + 0.6 * torch.rand(2, 3, 48, 48, generator=g))
    x = quantize_8bit((x0 + 0.03 * torch.randn(x0.shape, generator=g)).clamp(0, 1))
    return x, x0


_BUILT: dict[str, costs.Cost] = {}


def _build(entry, random_backbones):
    """The cost, built once per module (a learned cost loads its backbone once)."""
    cls = entry.factory
    if cls.missing() is not None:
        skip_or_fail(cls.missing())
    if entry.name == "pieapp":
        pytest.skip("PieAPP's checkpoint is not obtainable offline (its loader is tested with weights made in the test)")
    if entry.name not in _BUILT:
        _BUILT[entry.name] = costs.get(entry.name, **entry.tags.test_settings)
    return _BUILT[entry.name]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_cost_is_zero_at_identity_positive_finite_and_symmetric_where_declared(entry, pair, random_backbones):
    c = _build(entry, random_backbones)
    x, x0 = pair
    same = c(x0, x0)
    d = c(x, x0)
    assert same.shape == d.shape == (2,), entry.name
    assert torch.allclose(same, torch.zeros(2, dtype=same.dtype), atol=1e-5), (entry.name, same)
    assert bool(torch.isfinite(d).all()) and bool((d > 0).all()), (entry.name, d)
    if entry.tags.symmetric:
        assert torch.allclose(c(x0, x), d, rtol=1e-4, atol=1e-6), (entry.name, c(x0, x), d)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.tags.differentiable], ids=[e.name for e in ENTRIES
                                                                                      if e.tags.differentiable])
def test_every_differentiable_cost_has_a_finite_gradient_that_lowers_it(entry, pair, random_backbones):
    """The gradient at a perturbed image is finite and not zero, and a small step against it lowers the cost."""
    c = _build(entry, random_backbones)
    x, x0 = pair
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(c(xi, x0).sum(), xi)
    assert bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0, entry.name
    step = 1e-3 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    with torch.no_grad():
        assert bool((c.unchecked((x - step).clamp(0, 1), x0) < c.unchecked(x, x0)).all()), entry.name
