"""Boundary Projection (BP, Zhang et al., TIFS 2020): on a linear classifier whose answers are known in closed form,
on the shipped MNIST CNN against DDN (adv-lib) and a first-success PGD, batch independence and its refusals.

The linear classifier is the one of ``tests/test_attacks_analytic.py`` (logits ``(s, -s)``, ``s = w.x + b``, minimal
L2 ``|s| / ||w||``) on 3x32x32 images, where one rounding of an image to the 8-bit grid moves it by about
``sqrt(3072 / 12) / 255 = 0.063`` in L2, almost all of it along the boundary: against distances of 0.5 to 2 that
adds about 0.1 % to a distance (``sqrt(1 + (0.063 / 1)^2)``), so the 8-bit results can be held to the float ones.
``||w|| = 4`` keeps the logits within about 10, where every loss's gradient is far from underflow (at ``||w||`` in
the tens DDN's cross-entropy gradient underflows to zero and it never moves)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from imperceptible import attacks as A
from imperceptible.attacks.boundary_projection import BoundaryProjection, bp_loss
from imperceptible.pixels import off_grid
from imperceptible.validation import MSG_PARAM, ParameterError

from .conftest import skip_or_fail

SHAPE = (3, 32, 32)


class _Linear(torch.nn.Module):
    """Two classes, logits ``(w.x + b, -(w.x + b))`` on 3x32x32 images, ``||w|| = 4``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        w = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], generator=torch.Generator().manual_seed(seed))
        self.w = torch.nn.Parameter(4 * w / w.norm(), requires_grad=False)
        self.b = torch.nn.Parameter(torch.tensor(0.3), requires_grad=False)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([s, -s], 1)


def _linear(n: int = 24, seed: int = 1):
    """The model, 8-bit images at signed distance 0.5 to 2 from the boundary (their other components around 0.5, so
    the box is far), their labels (all correctly classified) and the closed-form minimal L2 ``|s| / ||w||``."""
    from imperceptible.models import ImageClassifier

    m = ImageClassifier(_Linear(), mean=(0.0,) * 3, std=(1.0,) * 3, num_classes=2, input_size=None, name="linear").eval()
    g = torch.Generator().manual_seed(seed)
    unit = m.net.w / m.net.w.norm()
    c = (0.5 + 1.5 * torch.rand(n, generator=g)) * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    x = 0.5 + 0.05 * torch.randn(n, unit.numel(), generator=g)
    x = A.quantize_8bit((x - (x @ unit)[:, None] * unit + c[:, None] * unit).view(n, *SHAPE))
    with torch.no_grad():
        s = x.flatten(1) @ m.net.w + m.net.b
    return m, x, (s < 0).long(), s.abs() / m.net.w.norm()


def _l2(a, b):
    return (a - b).flatten(1).norm(dim=1)


@pytest.mark.parametrize("quantize", [True, False])
def test_on_a_flat_boundary_bp_reaches_the_closed_form_minimal_l2(quantize):
    """BP fools every sample, never below the minimal L2 and within 5% of it (median; measured 1.002 on the 8-bit grid,
    1.001 without rounding): on a flat boundary the tangent hyperplane at an adversarial iterate is parallel to the
    boundary, so its OUT step reaches the sphere's point nearest the hyperplane, on the clean side, and the IN step
    walks back to the edge as the schedule's gamma rises to 1."""
    m, x, y, closed = _linear()
    r = BoundaryProjection(quantize=quantize)(m, x, y)
    got = _l2(r.adv, x)
    assert r.success.all() and (got >= closed * (1 - 1e-4)).all()
    assert float((got / closed).median()) < 1.05, got / closed
    if quantize:
        assert off_grid(r.adv) == 0 and torch.equal(r.adv, r.adv_float)


def test_on_a_flat_boundary_bp_is_as_close_as_ddn_and_closer_than_first_success_pgd():
    """The peers on the same linear model, at BP's 100 passes: DDN (adv-lib, levels=256) and BP within 2% of the minimal
    L2, a first-success PGD (alpha 0.2) further (it overshoots by up to a step)."""
    if not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    m, x, y, closed = _linear()
    bp = float((_l2(BoundaryProjection()(m, x, y).adv, x) / closed).median())
    ddn = float((_l2(A.DDN(steps=100)(m, x, y).adv, x) / closed).median())
    pgd = float((_l2(A.PGDL2(eps=100.0, alpha=0.2, steps=100, random_start=False)(m, x, y).adv, x) / closed).median())
    assert ddn < 1.02 and bp < 1.02 and pgd > bp, (bp, ddn, pgd)


@pytest.fixture(scope="module")
def mnist():
    from imperceptible.data import load
    from imperceptible.models import get

    m, d = get("mnist-cnn"), load("mnist-test20")
    return m, d.images[:10], d.labels[:10]


def test_bp_on_the_mnist_cnn_is_near_ddn_and_below_first_success_pgd(mnist):
    """On a curved boundary stage 2 works: on 10 digits at 100 passes each, BP fools every digit, its median L2 is
    within 5% of DDN's (adv-lib, levels=256; measured 1.413 against 1.373) and below a first-success PGD's (alpha
    0.1: 1.536), and every returned image is on the 8-bit grid."""
    if not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    m, x, y = mnist
    r = BoundaryProjection()(m, x, y)
    assert r.success.all() and off_grid(r.adv) == 0 and (r.passes == 100).all()
    bp = float(_l2(r.adv, x).median())
    ddn = float(_l2(A.DDN(steps=100)(m, x, y).adv, x).median())
    pgd = A.PGDL2(eps=100.0, alpha=0.1, steps=100, random_start=False)(m, x, y)
    assert pgd.success.all()
    assert bp < 1.05 * ddn and bp < float(_l2(pgd.adv, x).median()), (bp, ddn)


def test_batched_equals_one_by_one(mnist):
    """In float64 (model and images) a sample's result does not depend on its batch (20 steps)."""
    m, x, y = mnist
    model, x, y = copy.deepcopy(m).double(), x[:4].double(), y[:4]
    atk = BoundaryProjection(steps=20)
    batched = atk(model, x, y)
    for i in range(4):
        one = atk(model, x[i : i + 1], y[i : i + 1])
        assert torch.equal(one.adv[0], batched.adv[i]), i
        assert one.success[0] == batched.success[i] and one.steps[0] == batched.steps[i]


def test_pass_count_and_the_loss():
    """One forward and one backward per iteration, counted by hooks (the harness's clean and final looks are not
    charged, :mod:`imperceptible.attacks.counting`); the loss is the authors' smoothed margin, checked against
    values worked out by hand."""
    m, x, y, _ = _linear(6)
    r = BoundaryProjection(steps=7)(m, x, y)
    assert (r.backwards == 7).all() and (r.forwards == 7).all() and (r.steps == 7).all()
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 5.0, 1.0]])
    # by hand: z_y - z_j* - log((1 + 1) + (1 + 1) + (1 + e^(z_other - z_j*)))
    want = torch.tensor([2 - math.log(5 + math.exp(-1)), -5 - math.log(5 + math.exp(-4))])
    assert torch.allclose(bp_loss(logits, torch.tensor([0, 0])), want)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("steps", 0, "an integer >= 1"), ("gamma_min", 1.0, "a number in (0, 1)"), ("gamma_min", 0, "a number in (0, 1)"),
    ("alpha", -1.0, "a finite number > 0"), ("beta_min", float("nan"), "a finite number >= 0"),
    ("search_steps", 1.5, "an integer >= 0"), ("confidence", 1.0, "0 (a minimal attack)"),
])
def test_bad_hyper_parameters_are_refused_with_the_typed_error(key, value, expected):
    with pytest.raises(ParameterError) as e:
        BoundaryProjection(**{key: value})
    name = "bp confidence" if key == "confidence" else key
    assert str(e.value) == MSG_PARAM.format(name=name, expected=expected, got=value)
