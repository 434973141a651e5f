"""Speed options give the same results (issue 34): the model pass in channels-last memory and forward-only passes in
inference mode give the logits and input gradients of the current path within a stated tolerance; a batch that does
not fit in memory is one line naming --batch-size."""

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
