"""The human-vision judges (ColorVideoVDP, FLIP, SSIMULACRA2, butteraugli) against their packages' own calls, and the
visibility summary against a hand computation and scipy's bootstrap.

Each judge is checked on real photos (crops of foolbox's ImageNet samples, 8-bit): our value equals the package's
own function (or butteraugli's command-line tool) called here on PNG files of the same pairs; identity scores 0;
the value grows over +-1, 2, 4 and 8 grey levels of the same sign noise; batches equal one by one; a colour-only
change (BT.601 luma unchanged at every pixel) is seen by ColorVideoVDP and FLIP; a missing package is refused in one
line naming the extra. Tests of a judge skip, saying why, when its package is missing (they fail in CI, which
installs them).
"""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from imperceptible import costs as C
from imperceptible.costs import vision as V
from imperceptible.costs.metrics import KEYS, METRICS, THRESHOLD_SOURCES, judges, thresholds
from imperceptible.errors import (
    MSG_PARAM,
    MSG_VISIBILITY_THRESHOLD,
    MSG_VISION_PACKAGE,
    MSG_VISION_PROGRAM,
    MSG_VISION_TOO_SMALL,
    ExternalProgramError,
    OptionalPackageError,
    ParameterError,
)
from imperceptible.evaluate.visibility import visibility, visibility_by_judge
from imperceptible.notices import MSG_VISION_ROUNDED, ImperceptibleWarning
from imperceptible.pixels import off_grid

from .conftest import skip_or_fail

JUDGES = ("cvvdp", "flip", "ssimulacra2", "butteraugli")
#: metric key of each judge's cost
KEY = {"cvvdp": "cvvdp_distance", "flip": "flip", "ssimulacra2": "ssimulacra2_distance", "butteraugli": "butteraugli"}
#: BT.601 luma weights x 1000 (299, 587, 114) are orthogonal to this change of (R, G, B) levels: 299*15 - 587*9 +
#: 114*7 = 0, the smallest integer colour-only change (found by search over |d| <= 30)
CHROMA_STEP = (15, -9, 7)
#: float32 resolution of ColorVideoVDP's 10 - JOD (the package returns JOD = 10 - a Q in float32; ulp(10) = 9.5e-7)
CVVDP_ATOL = 1e-5


def _judge(name: str):
    why = V.missing(name)
    if why:
        skip_or_fail(why)
    return C.get(name)


@pytest.fixture(scope="module")
def photos(imagenet_samples):
    """Four 96x96 crops of real photos (8-bit values), from the middle of foolbox's 224x224 ImageNet samples."""
    return imagenet_samples.images[:4, :, 64:160, 64:160].contiguous()


def _sign_noise(x: torch.Tensor, levels: int, seed: int = 0) -> torch.Tensor:
    """``x`` plus ``levels`` grey levels times one fixed random sign per value, clipped to [0, 1] (stays 8-bit)."""
    sign = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return (x + levels * sign / 255).clamp(0, 1)


def _chroma_shift(x: torch.Tensor) -> torch.Tensor:
    """``x`` moved by :data:`CHROMA_STEP` levels wherever that stays in [0, 255]: every pixel keeps its BT.601 luma."""
    step = torch.tensor(CHROMA_STEP, dtype=x.dtype).view(1, 3, 1, 1)
    moved = x + step / 255
    fits = ((moved >= 0) & (moved <= 1)).all(dim=1, keepdim=True)
    return torch.where(fits, moved, x).mul(255).round().div(255)


def _png(a: torch.Tensor, path) -> str:
    Image.fromarray(a.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(path, format="PNG")
    return str(path)


@functools.cache
def _package_cvvdp():
    """The package's own metric object, built here (not our cached one)."""
    import pycvvdp

    return pycvvdp.cvvdp(display_name="standard_fhd", device=torch.device("cpu"), quiet=True)


def _package_value(name: str, ref: str, test: str) -> float:
    """The package's own call on two PNG files, in our lower-is-better form."""
    if name == "cvvdp":
        jod, _ = _package_cvvdp().predict(np.asarray(Image.open(test)), np.asarray(Image.open(ref)), dim_order="HWC")
        return 10.0 - float(jod)
    if name == "flip":
        import flip_evaluator

        return float(flip_evaluator.evaluate(ref, test, "LDR", applyMagma=False)[1])
    if name == "ssimulacra2":
        from ssimulacra2 import compute_ssimulacra2

        return 100.0 - float(compute_ssimulacra2(ref, test))
    out = subprocess.run(["butteraugli_main", ref, test], capture_output=True, text=True, check=True).stdout
    return float(out.splitlines()[0])


@pytest.mark.parametrize("name", JUDGES)
def test_judge_equals_the_package_on_the_same_png_files(name, photos, tmp_path):
    """Our batch value equals the package's own call on PNG files of each pair (two kinds of pair: noise and a
    chroma shift). ColorVideoVDP within float32's resolution of 10 - JOD; the others to float32 rounding."""
    cost = _judge(name)
    x = photos[:2]
    for kind, y in (("noise", _sign_noise(x, 2, seed=3)), ("chroma", _chroma_shift(x))):
        ours = cost(y, x)
        for i in range(2):
            ref = _png(x[i], tmp_path / f"{kind}{i}-ref.png")
            test = _png(y[i], tmp_path / f"{kind}{i}-test.png")
            want = _package_value(name, ref, test)
            tol = CVVDP_ATOL if name == "cvvdp" else 1e-6 * max(1.0, abs(want))
            assert ours[i].item() == pytest.approx(want, abs=tol), (name, kind, i)


@pytest.mark.parametrize("name", JUDGES)
def test_identity_scores_zero_and_noise_is_monotone(name, photos):
    """0 for identical images (the best value); strictly growing over 1, 2, 4, 8 grey levels of the same signs."""
    cost = _judge(name)
    x = photos[:3]
    assert cost(x, x).tolist() == [0.0] * 3
    values = torch.stack([cost(_sign_noise(x, k), x) for k in (1, 2, 4, 8)])  # (4 levels, 3 photos)
    assert (values[0] > 0).all(), (name, values)
    assert (values.diff(dim=0) > 0).all(), (name, values)


@pytest.mark.parametrize("name", JUDGES)
def test_batch_equals_one_by_one(name, photos):
    cost = _judge(name)
    x, y = photos, _sign_noise(photos, 4, seed=5)
    batch = cost(y, x)
    single = torch.cat([cost(y[i:i + 1], x[i:i + 1]) for i in range(len(x))])
    assert batch.shape == (len(x),)
    assert torch.allclose(batch, single, rtol=0, atol=CVVDP_ATOL if name == "cvvdp" else 0.0), (batch, single)


@pytest.mark.parametrize("name", ["cvvdp", "flip"])
def test_colour_only_change_is_seen(name, photos):
    """A chroma shift that keeps every pixel's BT.601 luma scores more than one grey level of sign noise for
    ColorVideoVDP and FLIP, while the luma judge (1 - SSIM on Y) scores it below that noise."""
    cost = _judge(name)
    x = photos[:2]
    shifted = _chroma_shift(x)
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose((shifted.double() * luma).sum(1), (x.double() * luma).sum(1), atol=1e-9)
    assert (shifted != x).any(dim=1).float().mean() > 0.5  # most pixels changed colour
    noise = _sign_noise(x, 1)
    assert (cost(shifted, x) > cost(noise, x)).all(), name
    ssim_y = C.get("ssim-y")
    assert (ssim_y(shifted, x) < ssim_y(noise, x)).all()


@pytest.mark.parametrize("name", JUDGES)
def test_grey_images_are_judged_as_rgb(name, photos):
    cost = _judge(name)
    x = photos[:2, :1]
    y = _sign_noise(x, 4)
    assert torch.equal(cost(y, x), cost(y.expand(-1, 3, -1, -1), x.expand(-1, 3, -1, -1)))


def test_cvvdp_does_not_saturate_where_the_package_reads_zero(photos):
    """One grey level at one pixel: the package's float32 10 - JOD is exactly 0 (its pooling cancels); ours is
    positive, and grows with the number of pixels changed and with the step, so a judge ranks such changes."""
    cost = _judge("cvvdp")
    x = photos[:2]

    def pixels(n: int, step: int) -> torch.Tensor:
        y = x.clone()
        for i in range(n):
            v = y[:, 1, 10 + 4 * (i % 16), 20 + 4 * (i // 16)]
            y[:, 1, 10 + 4 * (i % 16), 20 + 4 * (i // 16)] = torch.where(v < 0.5, v + step / 255, v - step / 255)
        return y

    one = pixels(1, 1)
    for i in range(2):
        jod, _ = _package_cvvdp().predict(one[i:i + 1], x[i:i + 1], dim_order="BCHW")
        assert 10.0 - float(jod) == 0.0  # the package: saturated
    values = torch.stack([cost(pixels(n, s), x) for n, s in ((1, 1), (4, 1), (4, 3), (16, 3))])
    assert (values[0] > 0).all(), values
    assert (values.diff(dim=0) > 0).all(), values


def test_cvvdp_equals_the_package_over_noise_levels_and_keeps_its_jod_elsewhere(photos):
    """Where the package resolves the change (1, 4, 8 and 32 grey levels of sign noise, 2 photos) our deficit equals its
    10 - JOD to 2e-6 (float32's resolution near 10); the metric's own met2jod still maps to JOD (the package's heatmap
    and distogram use it), and its loss is the deficit, as the package's loss is 10 - JOD."""
    _judge("cvvdp")  # skips, saying why, without the [vision] extra
    from imperceptible.costs.vision import cvvdp_metric

    ours = cvvdp_metric()
    x = photos[:2]
    for k in (1, 4, 8, 32):
        y = _sign_noise(x, k, seed=k)
        jod, _ = _package_cvvdp().predict(y, x, dim_order="BCHW")
        want = 10.0 - jod.double()
        got, _ = ours.predict(y, x, dim_order="BCHW")
        assert torch.allclose(got, want, rtol=0, atol=2e-6), (k, got, want)
        assert torch.allclose(ours.loss(y, x, dim_order="BCHW"), got)
    q = torch.tensor([0.05, 0.5])
    assert torch.equal(ours.met2jod(q), _package_cvvdp().met2jod(q))


def test_stable_safe_pow_equals_the_packages_form_where_it_resolves():
    """Our safe_pow against the package's own (``(x + eps) ** p - eps ** p``) in float64, where cancellation is
    harmless; and positive where the package's form returns 0."""
    _judge("cvvdp")  # skips, saying why, without the [vision] extra
    from pycvvdp.cvvdp_metric import safe_pow

    from imperceptible.costs.vision import stable_safe_pow

    x = torch.tensor([0.0, 1e-6, 1e-3, 0.1, 2.0, 50.0], dtype=torch.float64)
    for p in (0.25, 0.5, 2.0, 4.0):
        want = safe_pow(x, torch.tensor(p, dtype=torch.float64))
        assert torch.allclose(stable_safe_pow(x, p), want, rtol=1e-9, atol=0), p
    tiny = torch.tensor([1e-24], dtype=torch.float64)
    assert safe_pow(tiny, torch.tensor(0.25, dtype=torch.float64)).item() == 0.0
    assert stable_safe_pow(tiny, 0.25).item() > 0


def test_cvvdp_is_differentiable_with_a_finite_gradient(photos):
    """The gradient of 10 - JOD in x (tiny 32x32 image) is finite, and its directional derivative matches a central
    difference (h = 0.01) within 3% (float32); at x == x0 the gradient is finite (zero)."""
    cost = _judge("cvvdp")
    assert type(cost).TAGS.differentiable
    x0 = photos[:1, :, 30:62, 30:62].contiguous()
    x = _sign_noise(x0, 4).clamp(0.02, 0.98)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(cost(xr, x0).sum(), xr)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    d = d / d.norm()
    h = 1e-2
    fd = (cost.unchecked(x + h * d, x0) - cost.unchecked(x - h * d, x0)).item() / (2 * h)
    assert fd == pytest.approx((grad * d).sum().item(), rel=0.03)
    xi = x0.clone().requires_grad_(True)
    (gi,) = torch.autograd.grad(cost(xi, x0).sum(), xi)
    assert torch.isfinite(gi).all()


@pytest.mark.parametrize("name", ["ssimulacra2", "butteraugli"])
def test_file_judges_refuse_tiny_images_and_warn_when_rounding(name, photos):
    cost = _judge(name)
    tiny = photos[:1, :, :7, :7]
    with pytest.raises(ParameterError) as e:
        cost(tiny, tiny)
    assert str(e.value) == MSG_VISION_TOO_SMALL.format(name=name, expected=8, why=cost.why_min, h=7, w=7)
    x = photos[:1, :, :16, :16]
    off = (x + 0.3 / 255).clamp(0, 1)
    count = off_grid(off)
    with pytest.warns(ImperceptibleWarning) as rec:
        got = cost(off, x)
    assert str(rec[0].message) == MSG_VISION_ROUNDED.format(name=name, count=count)
    assert rec[0].filename == __file__  # the caller's line, not the library's
    assert torch.equal(got, cost(off.mul(255).round().div(255), x))


def test_butteraugli_output_is_parsed_or_refused():
    assert V.parse_butteraugli("1.2500000000\n3-norm: 0.600000\n") == 1.25
    for bad in ("", "nan\n", "error: could not read\n"):
        with pytest.raises(ExternalProgramError):
            V.parse_butteraugli(bad)


@pytest.mark.parametrize("name", ["cvvdp", "flip", "ssimulacra2"])
def test_missing_package_is_refused_in_one_line_naming_the_extra(name, monkeypatch):
    """Absence simulated by ``sys.modules[module] = None`` (what an uninstalled package looks like to import)."""
    module, package = V.PACKAGES[name]
    monkeypatch.setitem(sys.modules, module, None)
    want = MSG_VISION_PACKAGE.format(name=name, package=package, got="none installed", extra="vision")
    assert "pip install -e '.[vision]'" in want and "\n" not in want
    with pytest.raises(OptionalPackageError) as e:
        C.get(name)
    assert str(e.value) == want
    assert V.missing(name) == want and not C.available(name)
    row = next(r for r in C.info() if r["name"] == name)
    assert row["missing"] == want and not row["available"]
    meter = C.DistanceMeter(learned=False, keys=(KEY[name],))
    assert meter.unavailable == {KEY[name]: want} and meter.keys_computed() == []
    assert meter(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)) == {}


def test_info_says_what_is_missing(monkeypatch, capsys):
    from imperceptible.cli.main import main

    monkeypatch.setitem(sys.modules, "flip_evaluator", None)
    assert main(["info"]) == 0
    want = MSG_VISION_PACKAGE.format(name="flip", package="flip-evaluator", got="none installed", extra="vision")
    assert f"not installed: {want}\n" in capsys.readouterr().out


def test_missing_butteraugli_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    want = MSG_VISION_PROGRAM.format(name="butteraugli", program="butteraugli_main", got="none on PATH")
    assert "libjxl-devtools" in want and "\n" not in want
    with pytest.raises(OptionalPackageError) as e:
        C.get("butteraugli")
    assert str(e.value) == want and V.missing("butteraugli") == want
    assert C.DistanceMeter(learned=False, keys=("butteraugli",)).unavailable == {"butteraugli": want}


def test_metric_table_rows_of_the_vision_judges():
    """Each judge is a lower-is-better judge row whose cost is registered; the thresholds sit in the table with their
    quoted sources (FLIP has none: its source says so)."""
    assert thresholds() == {"cvvdp_distance": 1.0, "ssimulacra2_distance": 10.0, "butteraugli": 1.0}
    for name, key in KEY.items():
        m = METRICS[key]
        assert m.cost == name and m.judge and m.group == "judge" and key in KEYS and m in judges()
        assert name in C.names() and m.extra in ("vision", "libjxl-devtools")
        assert m.threshold_source == THRESHOLD_SOURCES[key] and len(m.threshold_source) > 40
    assert METRICS["flip"].threshold is None and METRICS["flip"].threshold_source.startswith("none")
    assert "75% of the population" in THRESHOLD_SOURCES["cvvdp_distance"]
    assert '"90 = visually lossless' in THRESHOLD_SOURCES["ssimulacra2_distance"]
    assert "1.0 = visually lossless" in THRESHOLD_SOURCES["butteraugli"]


def test_distance_meter_reports_the_installed_judges(photos):
    for name in JUDGES:
        _judge(name)
    meter = C.DistanceMeter(learned=False, keys=tuple(KEY.values()))
    assert meter.unavailable == {} and meter.keys_computed() == list(KEY.values())
    out = meter(_sign_noise(photos[:2], 2), photos[:2])
    for name, key in KEY.items():
        assert torch.equal(out[key], C.get(name)(_sign_noise(photos[:2], 2), photos[:2]).float())


# ------------------------------------------------------------------------------------------------
# the visibility summary
# ------------------------------------------------------------------------------------------------


def test_visibility_against_a_hand_computation():
    v = visibility([0.2, 0.5, 1.5, np.inf, np.nan, 0.9, 1.0], 1.0, random_state=0)
    # finite: 0.2, 0.5, 1.5, 0.9, 1.0 -> strictly below 1: three of five
    assert (v.share, v.used, v.total, v.threshold) == (0.6, 5, 7, 1.0)
    # two images, one below: resampled shares are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4, so the 2.5th and
    # 97.5th percentiles of 10,000 resamples are 0 and 1
    two = visibility([0.5, 2.0], 1.0, random_state=1)
    assert (two.share, two.low, two.high) == (0.5, 0.0, 1.0)
    every = visibility([0.1, 0.2, 0.3], 1.0)
    assert (every.share, every.low, every.high) == (1.0, 1.0, 1.0)
    none = visibility([np.nan, np.inf], 1.0)
    assert none.used == 0 and none.total == 2 and np.isnan([none.share, none.low, none.high]).all()
    # the same random_state gives the same interval; a Generator is accepted
    assert visibility(np.arange(30) / 10, 1.5, random_state=7) == visibility(np.arange(30) / 10, 1.5,
                                                                              random_state=np.random.default_rng(7))


def test_visibility_interval_matches_scipy_percentile_bootstrap():
    """scipy.stats.bootstrap, method 'percentile', on the same 0/1 indicators: ends within 0.02 (both 10,000
    resamples from different streams; for 60 images near 0.5 each end's Monte-Carlo error is about 0.003)."""
    from scipy import stats

    values = np.random.default_rng(3).gamma(2.0, 0.5, size=60)
    v = visibility(values, 1.0, n_boot=10_000, random_state=11)
    below = (values < 1.0).astype(float)
    ref = stats.bootstrap((below,), np.mean, method="percentile", n_resamples=10_000, confidence_level=0.95,
                          rng=np.random.default_rng(12))
    assert v.share == pytest.approx(below.mean())
    assert v.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert v.high == pytest.approx(ref.confidence_interval.high, abs=0.02)
    assert v.low < v.share < v.high


def test_visibility_exact_interval_is_clopper_pearson_by_hand():
    """The exact interval from the beta quantiles of Clopper and Pearson (1934), by hand: 17 of 17 below gives
    [(0.025)^(1/17), 1] = [0.805, 1] where the bootstrap collapses to [1, 1]; 3 of 5 gives the beta quantiles."""
    from scipy import stats

    every = visibility([0.1] * 17, 1.0)
    assert (every.low, every.high) == (1.0, 1.0)
    assert every.exact_low == pytest.approx(0.025 ** (1 / 17)) and every.exact_high == 1.0
    assert every.exact_low == pytest.approx(0.8049, abs=1e-4)
    v = visibility([0.2, 0.5, 1.5, 0.9, 1.0], 1.0)
    assert v.exact_low == pytest.approx(stats.beta.ppf(0.025, 3, 3))
    assert v.exact_high == pytest.approx(stats.beta.ppf(0.975, 4, 2))


def test_visibility_refuses_bad_settings_and_takes_thresholds_from_the_table():
    with pytest.raises(ParameterError) as e:
        visibility([1.0], float("inf"))
    assert str(e.value) == MSG_VISIBILITY_THRESHOLD.format(name="threshold", got=float("inf"))
    with pytest.raises(ParameterError) as e:
        visibility([1.0], 1.0, confidence=1.0)
    assert str(e.value) == MSG_PARAM.format(name="confidence", expected="a number in (0, 1)", got=1.0)
    out = visibility_by_judge({"cvvdp_distance": [0.5, 1.5, np.inf], "flip": [0.1], "ssim_distance": [0.0],
                               "ssimulacra2_distance": [5.0, 12.0, 9.0]}, random_state=0)
    assert sorted(out) == ["cvvdp_distance", "ssimulacra2_distance"]
    assert (out["cvvdp_distance"]["share"], out["cvvdp_distance"]["used"]) == (0.5, 2)
    assert out["ssimulacra2_distance"]["share"] == pytest.approx(2 / 3)
    assert out["cvvdp_distance"]["source"] == THRESHOLD_SOURCES["cvvdp_distance"]
