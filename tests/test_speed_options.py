"""Speed options give the same results (issue 34): the model pass in channels-last memory and forward-only passes in
inference mode give the logits and input gradients of the current path within a stated tolerance; under bf16 autocast
every success verdict is the float32 model's; a batch that does not fit in memory is one line naming --batch-size."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from imperceptible.errors import MSG_OUT_OF_MEMORY


def _pass(model, x, y):
    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xi)
    return logits.detach(), g


def test_channels_last_and_inference_mode_give_the_same_logits_and_gradients(mnist_cnn, mnist_correct):
    """Channels-last on the MNIST CNN: logits within 1e-4 and gradients within 1e-5 of the default layout (float32
    reassociation); inference mode: forward logits bit-identical to no_grad."""
    x, y = mnist_correct[0][:16], mnist_correct[1][:16]
    cl = copy.deepcopy(mnist_cnn)
    cl.net = cl.net.to(memory_format=torch.channels_last)
    (a, ga), (b, gb) = _pass(mnist_cnn, x, y), _pass(cl, x, y)
    assert torch.allclose(a, b, atol=1e-4) and torch.allclose(ga, gb, atol=1e-5)
    with torch.no_grad():
        ng = mnist_cnn(x)
    with torch.inference_mode():
        im = mnist_cnn(x)
    assert torch.equal(ng, im) and torch.equal(a.argmax(1), b.argmax(1))


def test_the_experiments_model_is_in_the_fast_layout_and_an_attack_gives_the_same_results(mnist_cnn, mnist_correct):
    """The commands' model (common.model_for) is channels-last on the CPU; ours and PGD-L2 on it fool the same digits
    as on the default layout but for at most one of 12, with 1 - SSIM within 1% in the median and 5% at most, L2
    within 5% (a float32 reassociation in the convolutions moves an iterate a little, and an iterative attack may
    then take another path; measured when this test was written: 11 of ours' 12 images bit-identical, the twelfth 0.6%
    apart in 1 - SSIM, PGD-L2's all identical)."""
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.costs import get as get_cost
    from imperceptible.data import load
    from imperceptible.engine import Engine
    from imperceptible.experiments.common import model_for
    from imperceptible.models.layout import in_fast_layout

    ds = load("mnist-test20")
    fast = model_for("mnist-cnn", ds, Engine(), dataset="mnist-test20", progress=False)
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
    assert in_fast_layout(fast) and convs and convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not convs[0].weight.is_contiguous()  # a weight whose two layouts differ (not the 1-channel first conv)
    assert not in_fast_layout(mnist_cnn)  # the library's get() keeps the default layout
    x, y = mnist_correct[0][:12], mnist_correct[1][:12]
    ssim = get_cost("ssim")
    for atk in (HumanPercOT(budget=60), PGDL2(eps=2.0, alpha=0.25, steps=20)):
        a, b = atk(mnist_cnn, x, y), atk(fast, x, y)
        assert bool(a.success.any()) and int((a.success != b.success).sum()) <= 1
        ok = a.success & b.success
        ca, cb = ssim(a.adv[ok], x[ok]), ssim(b.adv[ok], x[ok])
        rel = (ca - cb).abs() / ca.clamp_min(1e-9)
        assert rel.median().item() < 0.01 and rel.max().item() < 0.05, rel
        la, lb = (a.adv - x).flatten(1).norm(dim=1)[ok], (b.adv - x).flatten(1).norm(dim=1)[ok]
        assert ((la - lb).abs() / la).max().item() < 0.05, (la, lb)


class _ViewNet(torch.nn.Module):
    """A LeNet that flattens a convolution's output with ``.view``: it needs the default strides."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.conv2 = torch.nn.Conv2d(4, 4, 3)
        self.fc = torch.nn.Linear(4 * 24 * 24, 10)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(h.view(h.size(0), -1))


def test_a_model_that_fails_in_channels_last_keeps_the_default_layout_and_says_why(caplog):
    from imperceptible.models.layout import fast_layout_checked, in_fast_layout

    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28)
    for net in (_ViewNet().eval(), torch.jit.script(_ViewNet().eval())):
        before = net(x)
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = fast_layout_checked(net, x, name="mine")
        (rec,) = caplog.records  # one line, as the model's other notices
        assert rec.getMessage().startswith("mine: runs in the default memory layout (channels-last fails in it: ")
        assert out is net and not in_fast_layout(net) and torch.equal(net(x), before)
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 4, 3), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 24 * 24, 10)).eval()
    assert in_fast_layout(fast_layout_checked(plain, x, name="plain"))  # flatten copies: it runs channels-last


def test_a_batch_that_does_not_fit_is_one_line_naming_batch_size(tmp_path, monkeypatch, capsys):
    from imperceptible.attacks.pgd_l2 import PGDL2
    from imperceptible.cli.main import main

    def boom(self, model, x, y):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: can't allocate memory: you tried "
                           "to allocate 96636764160 bytes")

    monkeypatch.setattr(PGDL2, "run", boom)
    argv = ["attack", "--dataset", "mnist-test20", "--model", "mnist-cnn", "--attack", "pgd-l2", "--limit", "2",
            "--out", str(tmp_path / "run"), "--quiet", "--no-learned"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lower --batch-size" in err[0] and "2 images of 1x28x28" in err[0]
    assert err[0].startswith("imperceptible: error: " + MSG_OUT_OF_MEMORY.format(
        attack="pgd-l2", batch=2, shape="1x28x28", device="CPU", error="E").split(" (expected")[0])


@pytest.mark.parametrize("budget", [10**7])
def test_an_absurd_budget_is_refused(budget):
    from imperceptible.errors import ParameterError
    from imperceptible.experiments.bench_minimal import BenchMinimalConfig

    with pytest.raises(ParameterError, match="--budget: expected an integer from 20 to 100000"):
        BenchMinimalConfig(budget=budget)


def test_saved_bytes_per_image_counts_what_autograd_keeps_on_an_analytic_model():
    """A linear layer then a ReLU on d inputs: per image, autograd keeps the input (for the weight's gradient), the
    ReLU's output (its mask), and the output and input gradient the estimate adds: 4 x (d + h + h + d) bytes in
    float32 (the weight, saved once, cancels between the batches of one and two)."""
    from imperceptible.runs.memory import saved_bytes_per_image

    d, h = 300, 40
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, h), torch.nn.ReLU())
    x = torch.rand(3, 3, 10, 10)
    assert saved_bytes_per_image(model, x) == 4 * (d + h + h + d)


def test_the_default_batch_fits_the_free_memory_and_the_cap(mnist_cnn, mnist_correct, monkeypatch):
    """The default batch: the device's cap where memory is plentiful; fewer images when the free memory shrinks, never
    fewer than one; and run_attack with no batch size forms batches of that size."""
    from imperceptible.runs import memory

    x = mnist_correct[0][:4]
    per = memory.saved_bytes_per_image(mnist_cnn, x)
    assert 10_000 < per < 10_000_000  # a 28x28 CNN: tens to hundreds of kilobytes an image
    monkeypatch.setattr(memory, "free_bytes", lambda device: 2**40)
    assert memory.default_batch_size(mnist_cnn, x, "cpu") == memory.MAX_BATCH["cpu"] == 256
    assert memory.batch_that_fits(per_image=memory.CPU_BATCH_BYTES // 8, free=2**40, device="cpu") == 8
    assert memory.batch_that_fits(per_image=memory.CPU_BATCH_BYTES, free=2**40, device="cpu") == 8  # not below 8
    assert memory.batch_that_fits(per_image=memory.CPU_BATCH_BYTES, free=2**40, device="cuda") == 64
    want = 3
    free = int(want * memory.ATTACK_MULTIPLE * per / memory.MEMORY_SHARE) + 1
    monkeypatch.setattr(memory, "free_bytes", lambda device: free)
    assert memory.default_batch_size(mnist_cnn, x, "cpu") == want
    monkeypatch.setattr(memory, "free_bytes", lambda device: 1)
    assert memory.default_batch_size(mnist_cnn, x, "cpu") == 1
    monkeypatch.undo()
    assert memory.free_bytes("cpu") > 2**20  # this machine has more than a megabyte free


def test_run_attack_without_a_batch_size_uses_the_default(tmp_path, monkeypatch, mnist_cnn):
    from imperceptible.attacks.pgd_l2 import PGDL2
    from imperceptible.data import load
    from imperceptible.evaluate.evaluator import Evaluator
    from imperceptible.runs import attack_run
    from imperceptible.runs.rundir import RunDir

    sizes = []
    real = PGDL2.run

    def spy(self, model, x, y):
        sizes.append(x.shape[0])
        return real(self, model, x, y)

    monkeypatch.setattr(PGDL2, "run", spy)
    monkeypatch.setattr(attack_run, "default_batch_size", lambda model, x, device: 3)
    ds = load("mnist-test20", limit=7)
    run = RunDir.open(tmp_path / "run", job="attack", fingerprint={"t": 1})
    attack_run.run_attack(run, "pgd", PGDL2(steps=2), mnist_cnn, ds, Evaluator(learned=False, saliency=None,
                          ssim_kernel=7), progress=False, save_images=False)
    assert sizes == [3, 3, 1]


def test_ours_takes_its_records_costs_from_the_tracker_with_the_same_results(mnist_cnn, mnist_correct, monkeypatch):
    """Under a budget (or anytime checkpoints) the counter's tracker ranks every misclassified 8-bit query by ours'
    cost; ours' record of its best takes those distances instead of computing them again: the same images (measured
    bit-identical) and fewer cost evaluations (measured: 71 against 124 on 12 digits at 80 passes)."""
    from imperceptible.attacks import HumanPercOT
    from imperceptible.attacks.anytime import Anytime
    from imperceptible.costs.ssim import SSIMCost

    x, y = mnist_correct[0][:12], mnist_correct[1][:12]
    real = SSIMCost.unchecked

    def run(reuse: bool, budget: bool):
        calls = {"n": 0}

        def counted(self, a, b):
            calls["n"] += 1
            return real(self, a, b)

        with monkeypatch.context() as mp:
            mp.setattr(SSIMCost, "unchecked", counted)
            if not reuse:
                mp.setattr(Anytime, "ranked", lambda self, q, distance: None)
            atk = HumanPercOT(budget=80)
            if budget:
                atk.max_passes = 80
            else:
                atk.anytime = (80,)  # the tracker without the budget's best-seen result: the record's own answer
            return atk(mnist_cnn, x, y), calls["n"]

    for budget in (True, False):
        (a, n_reuse), (b, n_plain) = run(True, budget), run(False, budget)
        assert bool(a.success.all()) and torch.equal(a.success, b.success)
        assert torch.equal(a.adv, b.adv)
        assert n_reuse < 0.7 * n_plain, (n_reuse, n_plain)


@pytest.mark.parametrize("name,kw,saturates", [("human-perc-ot", {"budget": 30}, True),
                                               ("pgd-l2", {"eps": 3.0, "alpha": 0.5, "steps": 20}, True),
                                               ("ddn", {"steps": 30}, True), ("fmn", {"steps": 30}, False)])
def test_mixed_precision_changes_no_8bit_success(name, kw, saturates, mnist_cnn, mnist_correct):
    """On a real model under a bf16 autocast (``--precision bf16-mixed``): every image an attack returns as a success
    is an 8-bit image the float32 model misclassifies, none it calls a failure is one, and at a budget where float32
    fools every digit, bf16-mixed fools the same digits (the iterates do differ: autocast engaged). On these digits
    bf16 and float32 rarely disagree, so this holds with or without the float32 verdicts; the toy model below is
    what shows they are taken. A digit near the budget's edge
    may still end on the other side: the GPU benchmark counts those (benchmarks/gpu_speed.py). FMN fools about 60% of
    the digits in 30 passes, so only its verdicts are checked."""
    from imperceptible.attacks import adv_lib_available, margin
    from imperceptible.attacks.registry import get

    if name in ("ddn", "fmn") and not adv_lib_available():
        pytest.skip("adv-lib is not installed (tools/install-adv-lib.sh)")
    x, y = mnist_correct[0][:16], mnist_correct[1][:16]
    atk = get(name, **kw)
    atk.max_passes = 30  # the counter's guard: the returned image is the best 8-bit adversarial queried
    full = atk(mnist_cnn, x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = atk(mnist_cnn, x, y)
    with torch.no_grad():
        verdict = margin(mnist_cnn(mixed.adv), y) > 0
    assert torch.equal(mixed.success.cpu(), verdict.cpu())
    if saturates:
        assert bool(full.success.all())
        assert torch.equal(mixed.success, full.success), (mixed.success.tolist(), full.success.tolist())
    assert not torch.equal(mixed.adv, full.adv)  # autocast did engage


class _AdversarialOnlyInBf16(torch.nn.Module):
    """Two classes; in float32 always class 0. Under a CPU autocast class 1 wins once the image's mean passes
    ``threshold``: with ``threshold`` below the clean images' mean, the clean images look misclassified already; just
    above it, a small step looks adversarial. Neither is adversarial for the float32 model."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x):
        z = x.flatten(1).mean(1, keepdim=True)
        label = torch.full_like(z, 5 + self.threshold if torch.is_autocast_enabled("cpu") else 15.0)
        return torch.cat([label, z + 5], 1)


@pytest.mark.parametrize("name,kw", [("human-perc-ot", {"budget": 10}), ("pgd-l2", {"steps": 10}), ("ddn", {"steps": 10}),
                                     ("fmn", {"steps": 10})])
@pytest.mark.parametrize("threshold", [0.40, 0.476])
def test_a_success_only_bf16_sees_is_no_success(name, kw, threshold, caplog):
    """The clean check (threshold 0.40: bf16 calls every clean image misclassified), the anytime tracker's candidates
    and the final margins (0.476: the attack's own bf16 steps cross it within a few passes) are the float32 model's:
    no success is reported and the tracker keeps no candidate. Before these verdicts were taken in float32, every one
    of these attacks reported all four images as successes (checked by reverting the change). The model's probe (its
    notice when it classifies none of the images correctly) is the float32 model's too."""
    from imperceptible.attacks import adv_lib_available
    from imperceptible.attacks.registry import get

    if name in ("ddn", "fmn") and not adv_lib_available():
        pytest.skip("adv-lib is not installed (tools/install-adv-lib.sh)")
    x = torch.randint(115, 126, (4, 1, 16, 16), generator=torch.Generator().manual_seed(0)).float() / 255  # mean 0.47
    y = torch.zeros(4, dtype=torch.long)
    atk = get(name, **kw)
    atk.max_passes, atk.anytime = 10, (5,)
    model = _AdversarialOnlyInBf16(threshold).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = atk(model, x, y)
    assert bool((res.clean_margin < 0).all())  # the float32 verdict on the clean images: correct
    assert not any("classifies none" in r.getMessage() for r in caplog.records)
    assert not res.success.any() and not res.anytime[5]["found"].any()
    if threshold > 0.47:
        assert bool((res.passes > 0).all())  # the attack ran (it was not skipped as already adversarial)
