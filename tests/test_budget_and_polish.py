"""The pass budget enforced by the counter (AttackBench 2.0's best-seen semantics), peers that spend their budget,
and the lattice stage as a post-process for any attack's output (``imperceptible.polish``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from imperceptible import attacks as A
from imperceptible.attacks.counting import BudgetExhausted, CountingModel
from imperceptible.attacks.polish import Polished, polish
from imperceptible.pixels import off_grid
from imperceptible.validation import MSG_POLISH_ROUND, GridError

from .conftest import skip_or_fail
from .test_registry_attacks import ENTRIES, _images

MINIMAL = [e for e in ENTRIES if e.tags.threat == "minimal"]


class _Counting(torch.nn.Module):
    """A model that counts the rows it evaluates and the gradients that reach its input, independently of the
    attack's counter (a robust-ish linear model: its boundary is far, so success is hard within the budget)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.rows, self.grads = inner, 0, 0

    def forward(self, x):
        self.rows += x.shape[0]
        if x.requires_grad:
            x.register_hook(lambda g: setattr(self, "grads", self.grads + g.shape[0]) or g)
        return self.inner(x)


@pytest.mark.parametrize("entry", MINIMAL, ids=[e.name for e in MINIMAL])
def test_the_counter_stops_every_minimal_attack_at_its_budget(entry):
    """Whatever its own schedule (ten times the budget here), no sample spends more than the budget, and the network
    itself saw no more rows than the budget allows besides the harness's own looks (the clean and returned images)."""
    if "adv-lib" in entry.needs and not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    m, x, y, _ = _images(4)
    key = entry.tags.budget
    atk = A.get(entry.name, **({**entry.tags.test_settings, key: 300} if key else entry.tags.test_settings))
    atk.max_passes = 30
    net = m.net
    m.net = _Counting(net).eval()
    try:
        r = atk(m, x, y)
    finally:
        seen, m.net = m.net, net
    assert (r.passes <= 30).all(), (entry.name, r.passes)
    harness = 3 * len(x)  # clean, returned and at most one float-iterate look per sample
    assert seen.rows <= 2 * 30 * len(x) + harness, (entry.name, seen.rows)
    # gradients that reached the input: at most one per counted pass, and one last backward of a query whose forward
    # was within the budget (the counter's documented half pass)
    assert seen.grads <= (30 + 1) * len(x), (entry.name, seen.grads)


def test_the_guard_raises_only_when_every_sample_of_a_batch_has_spent_its_budget():
    """A batch mixing spent and live samples evaluates the live ones only (the spent ones get zero logits and nothing is
    charged to them); a batch of spent samples ends the attack; the harness's looks are never refused."""
    m, x, y, _ = _images(3)
    with CountingModel(m, 3, budget=1) as c:
        c(x)  # half a pass each
        with c.rows(torch.tensor([0])):
            c(x[:1])  # sample 0 reaches its budget
        out = c(x)
        assert out[0].abs().sum() == 0 and out[1:].abs().sum() > 0
        assert c.forwards.tolist() == [2.0, 2.0, 2.0]  # sample 0: its first two forwards only
        with c.rows(torch.tensor([0])), pytest.raises(BudgetExhausted):
            c(x[:1])
        with c.uncounted():
            c(x)
        assert c.forwards.tolist() == [2.0, 2.0, 2.0]


def test_the_attack_returns_the_best_8bit_adversarial_it_queried_within_the_budget():
    """DDN at 300 steps stopped at 40 passes returns exactly its anytime snapshot at 40 (the best 8-bit adversarial
    queried within it, ranked by its L2), and that image is no farther than its snapshot at 20."""
    if not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    m, x, y, _ = _images(4)
    atk = A.DDN(steps=300)
    atk.max_passes, atk.anytime = 40, (20, 40)
    r = atk(m, x, y)
    assert torch.equal(r.adv, r.anytime[40]["adv"]) and r.success.all() and (r.steps == -1).all()
    l2 = {c: (r.anytime[c]["adv"] - x).flatten(1).norm(dim=1) for c in (20, 40)}
    assert (l2[40] <= l2[20] + 1e-7).all()


@pytest.mark.parametrize("name,settings", [("cw", {"steps": 90}), ("perc-al", {"max_iterations": 180})])
def test_cw_and_perc_al_spend_their_budget_where_success_is_hard(name, settings):
    """C&W without its early abort and PerC-AL at twice the budget in iterations spend at least 90% of a budget of 90
    passes on a model whose boundary is far (at version 0.3 C&W spent 26 of 200 passes and PerC-AL about half)."""
    entry = A.ATTACKS.entry(name)
    if "adv-lib" in entry.needs and not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    m, x, y, _ = _images(4)
    m.net.w.data *= 0.02  # a far boundary: every logit small, success needs a large change
    atk = A.get(name, **settings)
    atk.max_passes = 90
    r = atk(m, x, y)
    assert (r.passes >= 0.9 * 90).all() and (r.passes <= 90).all(), (name, r.passes)


@pytest.fixture(scope="module")
def mnist_adv(mnist_cnn):
    from imperceptible.data import load

    ds = load("mnist-test20")
    x, y = ds.images[:8], ds.labels[:8]
    return x, y, A.PGDL2(eps=3.0, alpha=0.5, steps=20)(mnist_cnn, x, y)


@pytest.mark.parametrize("cost", ["ssim", "l2", "ciede2000"])
def test_polish_keeps_images_adversarial_and_never_raises_its_cost(mnist_cnn, mnist_adv, cost):
    """PGD-L2's 8-bit adversarials polished in three costs: every returned image is on the grid and adversarial where
    the input was (margin above 0 when re-judged), its cost is never above the input's, most fall, and the passes
    are counted (12 at most: two rounds of one gradient and ten forwards)."""
    from imperceptible.costs import get as get_cost

    x, y, res = mnist_adv
    out = polish(mnist_cnn, x, res.adv, y, cost=cost)
    c = get_cost(cost, **({"kernel_size": 7} if cost == "ssim" else {}))
    assert off_grid(out.adv) == 0
    with torch.no_grad():
        assert (A.margin(mnist_cnn(out.adv), y)[res.success] > 0).all()
    assert torch.equal(out.adv[~res.success], res.adv[~res.success])
    assert (out.cost <= out.cost_before + 1e-12).all()
    assert (c(out.adv, x) <= c(res.adv, x) + 1e-6).sum() == len(x)
    assert (out.cost < out.cost_before)[res.success].float().mean() >= 0.5
    assert (out.passes <= 12).all() and (out.passes[res.success] > 0).all()


def test_polish_refuses_what_it_cannot_use(mnist_cnn, mnist_adv):
    x, y, res = mnist_adv
    with pytest.raises(GridError) as e:
        polish(mnist_cnn, x, (res.adv + 0.3 / 255).clamp(0, 1), y)
    assert str(e.value).endswith(MSG_POLISH_ROUND) and e.value.name == "x_adv"


def test_a_polished_attack_stays_within_one_budget(mnist_cnn, mnist_adv):
    """``Polished(DDN)`` under a budget of 60: DDN runs under 48 passes, the polish under 12; the images are at least
    as cheap in 1-SSIM as DDN's own at 48 passes."""
    if not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    x, y, _ = mnist_adv
    pol = Polished(A.DDN(steps=60))
    pol.max_passes = 60
    r = pol(mnist_cnn, x, y)
    assert (r.passes <= 60).all() and r.success.all() and pol.label() == "ddn[60]+polish"
    # what the twin lowers: DDN's L2 and the polish cost's 1-SSIM (the tables' dagger), each once
    assert pol.optimises() == ("l2", "ssim_distance")
    assert Polished(A.ALMA(distance="ssim")).optimises() == ("ssim_distance",)


def test_superdeepfool_on_many_classes_spends_every_images_own_budget():
    """With more classes than its 10 candidates SuperDeepFool attacks one image at a time: an image whose budget is
    spent ends its own attack, not the next images' (version 0.4's first tune run stopped at the first image)."""
    if not A.adv_lib_available():
        skip_or_fail("adv-lib is not installed (tools/install-adv-lib.sh)")
    from imperceptible.models import ImageClassifier

    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 20))
    with torch.no_grad():
        lin[1].weight.copy_(torch.randn(20, 256, generator=g))
        lin[1].bias.zero_()
    m = ImageClassifier(lin, mean=(0.0,), std=(1.0,), num_classes=20, input_size=None, name="linear20").eval()
    x = A.quantize_8bit(0.4 + 0.2 * torch.rand(3, 1, 16, 16, generator=g))
    y = m(x).argmax(1)
    atk = A.SuperDeepFool(steps=50)
    atk.max_passes = 12
    r = atk(m, x, y)
    assert (r.passes > 6).all() and (r.passes <= 12).all(), r.passes


class _StepsAfterItsLastQuery(A.Attack):
    """Queries the model ``queries`` times (forward and backward) on the clean image, then returns the clean image
    moved across the linear boundary without looking at it (as a loop that steps after its last query does)."""

    name = "steps-after-last-query"

    def __init__(self, queries: int, move: bool = True, quantize: bool = True) -> None:
        super().__init__(quantize=quantize)
        self.queries, self.move = queries, move

    def run(self, model, x, y):
        for _ in range(self.queries):
            xq = x.clone().requires_grad_(True)
            model(xq).sum().backward()
        w, b = model.net.w, model.net.b  # logits s, -s with s = w.x + b: class 0 where s > 0
        s = x.flatten(1) @ w + b
        step = -(s / w.norm()) * 1.5 - torch.sign(s) * 0.05  # half as far again as the boundary, across it
        moved = (x + (step.view(-1, 1) * w / w.norm()).view_as(x)).clamp(0, 1)
        return (moved if self.move else x.clone()), torch.full((x.shape[0],), self.queries)


def test_an_image_nobody_queried_within_the_budget_never_counts():
    """An attack's returned image the tracker has not seen is looked at as its last counted query (half a pass) when
    the budget allows, and counts then; past the budget it is refused, and the result is a failure: the clean image."""
    m, x, y, _ = _images(4)
    moved = _StepsAfterItsLastQuery(3)
    far = A.quantize_8bit(moved.run(m, x, y)[0])
    with torch.no_grad():
        assert bool((m(far).argmax(1) != y).all())  # adversarial, every one
    moved.max_passes = 10  # budget left: the last look is charged and seen
    r = moved(m, x, y)
    assert r.success.all() and r.passes.tolist() == [3.5] * 4
    moved.max_passes = 3  # spent: the image was never queried within the budget
    r = moved(m, x, y)
    assert not r.success.any() and torch.equal(r.adv, x) and r.passes.tolist() == [3.0] * 4
    assert r.success_float.all()  # its float iterate is kept: the failure is the budget's, which the margin shows
    moved.max_passes = None  # no budget: the attack's own image, judged by the harness's uncounted look
    r = moved(m, x, y)
    assert r.success.all() and r.passes.tolist() == [3.0] * 4
    stays = _StepsAfterItsLastQuery(3, move=False)  # a failure that returns the clean image: nothing to look at
    stays.max_passes = 10
    r = stays(m, x, y)
    assert not r.success.any() and r.passes.tolist() == [3.0] * 4
    floats = _StepsAfterItsLastQuery(3, quantize=False)  # no 8-bit grid: the tracker keeps none, its own image stands
    floats.max_passes = 3
    r = floats(m, x, y)
    assert r.success.all() and r.passes.tolist() == [3.0] * 4 and not torch.equal(r.adv, x)


def test_the_polished_twins_polish_in_ours_geometry(mnist_cnn, mnist_adv):
    """bench minimal's twins take ours' geometry (a protocol that tunes it, minimal-2.toml, gives ours 1.0): the twin of
    a result polishes exactly as ``polish(..., geometry=...)`` does with it, and differs from the default 0.2 on these
    digits; without ours in the plan, the package's default."""
    from types import SimpleNamespace

    from imperceptible.attacks.polish import GEOMETRY
    from imperceptible.experiments.bench_minimal import polished_twin, twin_geometry

    ours = A.get("human-perc-ot", geometry=1.0)
    assert twin_geometry(SimpleNamespace(methods={"human-perc-ot": ours}, ours="human-perc-ot")) == 1.0
    assert twin_geometry(SimpleNamespace(methods={"human-perc-ot": A.get("human-perc-ot")}, ours="human-perc-ot")) \
        == GEOMETRY == 0.2
    assert twin_geometry(SimpleNamespace(methods={}, ours="human-perc-ot")) == GEOMETRY
    x, y, res = mnist_adv
    snap = {10: {"found": res.success, "adv": res.adv}}
    ten = torch.full((len(x),), 10.0, dtype=torch.float64)
    base = dataclasses.replace(res, anytime=snap, forwards=ten, backwards=ten, attack="pgd-l2")
    twin = polished_twin(10, geometry=1.0)(mnist_cnn, x, y, base)
    assert torch.equal(twin.adv, polish(mnist_cnn, x, res.adv, y, geometry=1.0).adv)
    assert not torch.equal(twin.adv, polish(mnist_cnn, x, res.adv, y).adv)
