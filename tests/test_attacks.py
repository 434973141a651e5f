"""Attacks on the real offline models (EfficientNet-Lite0 on imagenet-samples, the MNIST CNN)."""

import pytest
import torch

from imperceptible import attacks as A
from imperceptible.attacks.feature_lpips import FeatureLPIPS
from imperceptible.validation import ModelModeError, RangeError, ShapeError, UnknownNameError


def test_human_perc_ot_fools_every_correct_imagenet_sample(effnet, imagenet_correct):
    x, y = imagenet_correct
    r = A.HumanPercOT()(effnet, x, y)
    assert len(y) >= 16
    assert r.success_rate == 1.0 and r.success.all() and r.success_float.all()
    assert (r.adv >= 0).all() and (r.adv <= 1).all()
    assert torch.equal(r.adv, A.quantize_8bit(r.adv))  # an 8-bit image
    assert (r.steps >= 1).all() and r.steps.max() <= 100


def test_cost_term_acts_with_calibration(effnet, imagenet_correct):
    """The SSIM term lowers 1-SSIM against the same attack without it (lambda = 0)."""
    from imperceptible.costs import SSIMCost

    x, y = imagenet_correct[0][:6], imagenet_correct[1][:6]
    with_cost = A.HumanPercOT()(effnet, x, y)
    without = A.HumanPercOT(lam=0.0)(effnet, x, y)
    assert with_cost.success.all() and without.success.all()
    c = SSIMCost()
    assert c(with_cost.adv, x).mean() < 0.9 * c(without.adv, x).mean()


def test_human_perc_ot_on_mnist(mnist_cnn, mnist_correct):
    x, y = mnist_correct
    r = A.HumanPercOT(cost="ssim")(mnist_cnn, x, y)
    assert r.success_rate == 1.0


def test_paper_preset_is_available_and_raw(effnet, imagenet_correct):
    x, y = imagenet_correct[0][:4], imagenet_correct[1][:4]
    atk = A.HumanPercOT(preset="paper")
    assert (atk.lam, atk.eps, atk.step, atk.calibrate, atk.steps, atk.reuse) == (1.0, 0.1, "raw", False, 100, 5)
    r = atk(effnet, x, y)
    assert r.success.all()


@pytest.mark.parametrize("name,kw", [("pgd-l2", {"eps": 3.0, "alpha": 0.25, "steps": 40}), ("ppgd", {}), ("lpa", {}),
                                     ("perc-al", {})])
def test_baselines_fool_mnist_at_default_budget(mnist_cnn, mnist_correct, name, kw):
    """Authors' defaults, except PGD-L2 at L2 radius 3 with 40 steps (its default 1.0 is a CIFAR radius)."""
    x, y = mnist_correct[0][:16], mnist_correct[1][:16]
    r = A.get(name, **kw)(mnist_cnn, x, y)
    assert r.success_rate >= 0.9, (name, r.success_rate)


@pytest.mark.parametrize("name,kw", [("pgd-l2", {}), ("ppgd", {}), ("lpa", {}), ("perc-al", {"max_iterations": 100})])
def test_baselines_fool_efficientnet(effnet, imagenet_correct, name, kw):
    """Default budgets, but PerC-AL at 100 iterations here (1000 in the slow test below)."""
    x, y = imagenet_correct[0][:4], imagenet_correct[1][:4]
    r = A.get(name, **kw)(effnet, x, y)
    assert r.success_rate == 1.0, (name, r.success_rate)


@pytest.mark.slow
def test_perc_al_default_budget_on_efficientnet(effnet, imagenet_correct):
    x, y = imagenet_correct
    assert A.PerCAL()(effnet, x, y).success_rate == 1.0


def test_norm_bounds(effnet, mnist_cnn, imagenet_correct, mnist_correct):
    x, y = mnist_correct[0][:8], mnist_correct[1][:8]
    r = A.PGDL2(eps=0.5, quantize=False)(mnist_cnn, x, y)
    assert ((r.adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
    for atk in (A.PPGD(steps=10), A.LPA(steps=10, binary_steps=2)):
        xi, yi = imagenet_correct[0][:3], imagenet_correct[1][:3]
        r = atk(effnet, xi, yi)
        fl = FeatureLPIPS(effnet, "self")
        with torch.no_grad():
            d = fl.distance(r.adv_float, fl.phi(xi))
        assert (d <= atk.bound + 1e-4).all(), (atk.name, d)


def test_misclassified_samples_are_returned_unchanged(mnist_cnn, mnist_correct):
    x, y = mnist_correct[0][:6], mnist_correct[1][:6].clone()
    logits = mnist_cnn(x)
    wrong = logits.argmin(1)  # a label the model is far from: margin above a
    y[:3] = wrong[:3]
    for name in A.names():
        r = A.get(name)(mnist_cnn, x, y)
        assert torch.equal(r.adv[:3], x[:3]), name
        assert (r.steps[:3] == 0).all(), name


@pytest.mark.parametrize("name", ["human-perc-ot", "pgd-l2", "perc-al", "ppgd", "lpa", "ssim-onestep"])
def test_batched_equals_one_by_one(mnist_cnn, mnist_correct, name):
    kw = {"perc-al": {"max_iterations": 30}, "ppgd": {"steps": 10}, "lpa": {"steps": 10, "binary_steps": 2}}
    atk = A.get(name, **kw.get(name, {}))
    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    batched = atk(mnist_cnn, x, y)
    for i in range(4):
        one = atk(mnist_cnn, x[i : i + 1], y[i : i + 1])
        if name == "ssim-onestep":
            # the damped SSIM Hessian is ill-conditioned: float32 differences of the model gradient between
            # batch sizes (~1e-7) grow through the solve; the steps still point the same way
            d1, d2 = (one.adv_float[0] - x[i]).flatten(), (batched.adv_float[i] - x[i]).flatten()
            assert torch.nn.functional.cosine_similarity(d1, d2, dim=0) > 0.99, i
        else:
            assert torch.allclose(one.adv[0], batched.adv[i], atol=1 / 255 + 1e-6), (name, i)
            assert (one.adv[0] - batched.adv[i]).abs().gt(1e-6).float().mean() < 0.01
        assert one.success[0] == batched.success[i]
        assert one.steps[0] == batched.steps[i]


def test_seeded_random_start(mnist_cnn, mnist_correct):
    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    a = A.PGDL2(seed=1, steps=0)(mnist_cnn, x, y)
    b = A.PGDL2(seed=1, steps=0)(mnist_cnn, x, y)
    c = A.PGDL2(seed=2, steps=0)(mnist_cnn, x, y)
    assert torch.equal(a.adv_float, b.adv_float) and not torch.equal(a.adv_float, c.adv_float)


def test_confidence_gives_larger_margins(effnet, imagenet_correct):
    x, y = imagenet_correct[0][:5], imagenet_correct[1][:5]
    r0 = A.HumanPercOT(confidence=0)(effnet, x, y)
    r5 = A.HumanPercOT(confidence=5)(effnet, x, y)
    assert (r0.margin > 0).all() and (r5.margin > 5).all()
    assert r5.margin.mean() > r0.margin.mean() + 4


def test_ssim_onestep_cg_matches_dense(mnist_cnn, mnist_correct):
    x = mnist_correct[0][:3].double()
    g = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dense = A.SSIMOneStep(solver="dense").direction(x, g)
    cg_atk = A.SSIMOneStep(solver="cg", cg_iters=400, cg_tol=1e-9)
    cg = cg_atk.direction(x, g)
    cos = torch.nn.functional.cosine_similarity(dense.flatten(1), cg.flatten(1))
    assert (cos > 0.999).all(), cos
    assert ((dense - cg).flatten(1).norm(dim=1) / dense.flatten(1).norm(dim=1) < 0.05).all()


def test_onestep_attacks_on_mnist(mnist_cnn, mnist_correct):
    """The paper's Figure 3 setting (eps = 10): both fool most digits; the SSIM step keeps more structure."""
    from imperceptible.costs import ssim

    x, y = mnist_correct[0][:32], mnist_correct[1][:32]
    ssim_r = A.SSIMOneStep(eps=10, kernel_size=7)(mnist_cnn, x, y)
    pgd_r = A.PGDOneStep(eps=10)(mnist_cnn, x, y)
    assert ssim_r.success_rate > 0.7 and pgd_r.success_rate > 0.7
    assert (ssim_r.steps == 1).all()
    both = ssim_r.success & pgd_r.success
    assert ssim(ssim_r.adv[both], x[both], kernel_size=7).mean() > ssim(pgd_r.adv[both], x[both], kernel_size=7).mean() + 0.2


def test_bad_inputs(mnist_cnn, mnist_correct):
    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    atk = A.PGDL2()
    with pytest.raises(ShapeError, match="expected 4 labels"):
        atk(mnist_cnn, x, y[:3])
    with pytest.raises(RangeError):
        atk(mnist_cnn, x * 2, y)
    mnist_cnn.train()
    try:
        with pytest.raises(ModelModeError):
            atk(mnist_cnn, x, y)
    finally:
        mnist_cnn.eval()
    with pytest.raises(UnknownNameError, match="unknown attack 'fgsm'"):
        A.get("fgsm")
    with pytest.raises(UnknownNameError, match="unknown cost 'psnr'"):
        A.HumanPercOT(cost="psnr")
    with pytest.raises(ValueError):
        A.HumanPercOT(eps=-1)
