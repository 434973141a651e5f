"""Tests generated from the attack registry: every registered attack, with the small settings it declares in its
tags (``AttackTags.test_settings``), is held to one contract on the linear classifier whose answers are known in closed
form (adv_lib's registry-wide test). An attack added later is tested the day it is registered."""

from __future__ import annotations

import copy

import pytest
import torch

from imperceptible import attacks as A
from imperceptible.pixels import off_grid

from .conftest import skip_or_fail

ENTRIES = A.ATTACKS.entries()


class _Linear3(torch.nn.Module):
    """The linear binary classifier of ``test_attacks_analytic`` (logits ``s, -s``, ``s = w.x + b``) with a third class
    at a constant logit of -5, never the runner-up: the closed forms are unchanged, and attacks whose loss needs three
    classes (ALMA's difference-of-logits ratio) run."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(256, generator=g), requires_grad=False)
        self.b = torch.nn.Parameter(torch.tensor(0.3), requires_grad=False)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([s, -s, torch.full_like(s, -5.0)], 1)


def _images(n: int, seed: int = 1):
    """The model, images with room inside the box, their labels (all correct) and the closed-form minimal L2."""
    from imperceptible.models import ImageClassifier

    m = ImageClassifier(_Linear3(), mean=(0.0,), std=(1.0,), num_classes=3, input_size=None, name="linear3").eval()
    x = A.quantize_8bit(0.4 + 0.2 * torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        s = x.flatten(1) @ m.net.w + m.net.b
    return m, x, (s < 0).long(), s.abs() / m.net.w.norm()


def _build(entry, **extra):
    if "adv-lib" in entry.needs and not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    return A.get(entry.name, **{**entry.tags.test_settings, **extra})


def test_every_attack_class_of_the_package_is_registered_with_its_tags():
    """Nothing is left out of the registry (each concrete ``Attack`` subclass of the package is in it), every entry is
    keyed by its class's name, and its tags say a known threat model and metric keys of the metric table."""
    from imperceptible.costs.metrics import METRICS

    def subclasses(c):
        return {c, *(s for d in c.__subclasses__() for s in subclasses(d))}

    concrete = {c for c in subclasses(A.Attack) if c.__module__.startswith("imperceptible.attacks") and
                not c.__name__.startswith("_") and c.name not in ("attack", "polished")}
    assert concrete == set(A.CLASSES)
    for e in ENTRIES:
        assert e.name == e.factory.name and e.tags is e.factory.TAGS
        assert e.tags.threat in A.THREATS and set(e.tags.optimises) <= set(METRICS)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_attack_keeps_the_contract_on_the_linear_model(entry):
    """8-bit images in [0, 1]; what it calls a success is misclassified by the model; a minimal attack fools every
    sample and never goes below the closed-form minimal L2; a bounded one succeeds exactly where its radius reaches the
    boundary (samples within 10% of the radius left out); under the counter's guard no sample spends more than the
    budget."""
    m, x, y, closed = _images(8)
    atk = _build(entry)
    atk.max_passes = 40
    r = atk(m, x, y)
    assert off_grid(r.adv) == 0 and r.adv.min() >= 0 and r.adv.max() <= 1, entry.name
    with torch.no_grad():
        assert torch.equal(r.success, A.margin(m(r.adv), y) > 0), entry.name
    assert (r.passes <= 40).all(), (entry.name, r.passes)
    l2 = (r.adv - x).flatten(1).norm(dim=1)
    if entry.tags.threat == "minimal":
        assert r.success.all(), (entry.name, r.success)
        assert (l2[r.success] >= closed[r.success] * (1 - 1e-3)).all(), (entry.name, l2 / closed)
    if entry.tags.threat == "bounded" and entry.name == "pgd-l2":
        eps = atk.eps
        clear = (closed - eps).abs() > 0.1 * eps
        assert torch.equal(r.success[clear], (closed < eps)[clear]), entry.name


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_attack_gives_the_same_result_batched_and_one_by_one(entry):
    """A sample's result does not depend on its batch (float64 model and images where the attack runs in float64, so
    that the float rounding of a batched matrix product cannot decide a step)."""
    m, x, y, _ = _images(3)
    if entry.tags.float64:
        m, x = copy.deepcopy(m).double(), x.double()
    atk = _build(entry)
    batched = atk(m, x, y)
    for i in range(len(x)):
        one = atk(m, x[i : i + 1], y[i : i + 1])
        assert torch.equal(one.adv[0], batched.adv[i]), (entry.name, i)
        assert one.success[0] == batched.success[i], (entry.name, i)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_attack_refuses_what_it_does_not_take(entry):
    """An unknown keyword is refused naming the valid ones; a confidence is refused by the attacks that take none."""
    from imperceptible.validation import ParameterError, UnknownNameError

    with pytest.raises(UnknownNameError, match="expected one of"):
        A.get(entry.name, no_such_setting=1)
    if not entry.tags.confidence:
        with pytest.raises(ParameterError, match="confidence"):
            A.get(entry.name, confidence=1.0)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_what_runs_is_what_is_recorded(entry):
    """Every registered attack built from the command line's text (``--param KEY=VALUE``) records (``params()``, the run's
    fingerprint) exactly the typed values it runs with, the same as when built from Python values; a boolean spelled
    ``no`` is False (version 0.3 ran the opposite attack and recorded "no")."""
    from imperceptible.experiments.attack import parse_params

    settings = dict(entry.tags.test_settings)
    typed = A.get(entry.name, **settings)
    text = A.get(entry.name, **parse_params([f"{k}={v}" for k, v in settings.items()]))
    assert text.params() == typed.params(), entry.name
    for k, v in settings.items():
        assert typed.params().get(k, getattr(typed, k, None)) == v, (entry.name, k)
    assert A.get(entry.name, quantize="no").quantize is False and A.get(entry.name, quantize="no").params()["quantize"] is False
