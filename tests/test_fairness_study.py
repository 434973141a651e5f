"""The geo-fashion simulation, grouped data, and the whole fairness study (resumable, CLI, real data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imperceptible.cli.main import main
from imperceptible.data.grouped import grouped_splits, read_covariates
from imperceptible.fairness import read_table, slope_test
from imperceptible.validation import (
    MSG_MISSING_COVARIATE,
    MSG_NO_COVARIATES,
    MSG_NO_GROUPS,
    MSG_NONFINITE_COVARIATE,
    DatasetNotFoundError,
    TableError,
)

from .conftest import GROUPS, load_script, skip_or_fail


def _need_fashion_mnist():
    from imperceptible.data.fashion_mnist import fashion_mnist

    try:
        fashion_mnist("test")
    except DatasetNotFoundError as e:
        skip_or_fail(f"Fashion-MNIST is absent here ({e}); .ci/run installs Debian's dataset-fashion-mnist")


@pytest.fixture(scope="module")
def geo():
    _need_fashion_mnist()
    from imperceptible.data.geo_fashion import geo_fashion

    return geo_fashion("all")


def test_geo_fashion_counts_are_skewed_like_the_paper(geo):
    from imperceptible.data.geo_fashion import country_counts

    assert len(geo) == 30000 and geo.info["simulation"] is True and "SIMULATION" in geo.info["note"]
    groups = pd.Series(geo.groups).value_counts()
    assert groups["United States"] == 10800 and groups["United Kingdom"] == 4200  # about half from two countries
    assert len(groups) == 142 and groups.min() >= 1
    counts = country_counts(30000)
    assert counts["count"].sum() == 30000
    test_n = pd.Series(grouped_splits("geo-fashion").test.groups).value_counts()
    kept = test_n[test_n >= 50]
    assert 40 <= len(kept) <= 55  # the paper kept 41 countries
    cov = pd.Series(geo.info["covariates"])
    assert cov[kept.index].min() < 7.5 and cov[kept.index].max() > 10.5  # a wide covariate range


def test_geo_fashion_cues_are_painted_decoded_and_depend_on_income(geo):
    from imperceptible.data.geo_fashion import design_cues, marker_probability, repaint

    assert geo.info["design"] == "mechanism" and [c["name"] for c in geo.info["cues"]] == ["ramp"]
    cue = design_cues(geo)[0]
    base = geo.info["base"][:400].float() / 255
    shown = torch.as_tensor(geo.info["cues"][0]["labels"][:400])
    assert (cue.decode(geo.images[:400], base) == shown).float().mean() > 0.97  # painted, on the 8-bit grid
    agrees = np.asarray(geo.info["cues"][0]["agrees"])
    assert ((shown.numpy() == geo.labels[:400].numpy()) == agrees[:400]).all()
    other = (shown + 3) % 10
    assert (cue.decode(repaint(geo.subset(np.arange(400)), 0, other), base) == other).float().mean() > 0.97
    cov = np.array([geo.info["covariates"][g] for g in geo.groups])
    rich, poor = cov > 10.3, cov < 8.5
    q_rich, q_poor = marker_probability(cov[rich]).mean(), marker_probability(cov[poor]).mean()
    assert agrees[rich].mean() == pytest.approx(q_rich, abs=0.02)
    assert agrees[poor].mean() == pytest.approx(q_poor, abs=0.05)
    assert q_rich > 0.9 and q_poor < 0.75
    from imperceptible.data.geo_fashion import geo_fashion

    assert torch.equal(geo_fashion("test", size=2000).images[:50], geo_fashion("test", size=2000).images[:50])
    null = geo_fashion("all", size=3000, design="null")
    a, c = np.asarray(null.info["cues"][0]["agrees"]), np.array([null.info["covariates"][g] for g in null.groups])
    assert abs(a[c > 10.3].mean() - a[c < 8.5].mean()) < 0.06  # flat in GDP


def test_mechanism_cue_is_cheap_for_ssim_and_the_reversed_one_dear():
    """The designs' premise, measured: flipping the ramp costs 1-SSIM well below noise of the same L2, flipping the
    grating well above (kappa; 0.19 and 1.56 on 2000 test images), at about the same flip L2 (1.37, 1.39)."""
    _need_fashion_mnist()
    from imperceptible.data.cues import Grating, Ramp, cheapness
    from imperceptible.data.fashion_mnist import fashion_mnist

    base = fashion_mnist("test").images[:300]
    ramp, grating = cheapness(Ramp(), base), cheapness(Grating(), base)
    assert ramp["kappa"] < 0.3 and grating["kappa"] > 1.3
    assert 1.2 < ramp["flip_l2"] < 1.6 and 1.2 < grating["flip_l2"] < 1.6
    assert abs(ramp["flip_l2"] - grating["flip_l2"]) < 0.2


def test_energy_share_and_interventional_reliance():
    from imperceptible.data.cues import Ramp, energy_share
    from imperceptible.experiments.fairness.evaluation import interventional_reliance

    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 1, 28, 28, generator=g)
    dirs = Ramp().directions(base)
    on = dirs[:, 4].view(3, 1, 28, 28) - dirs[:, 1].view(3, 1, 28, 28)  # inside the cue's span
    assert energy_share(on, dirs).numpy() == pytest.approx(1.0, abs=1e-9)
    noise = torch.randn(3, 1, 28, 28, generator=g)
    assert (energy_share(noise, dirs) < 0.1).all()
    pred = np.array([0, 1, 2, 3])
    assert interventional_reliance(pred, pred) == 0.0
    assert interventional_reliance(pred, pred + 1) == 1.0 and interventional_reliance(pred, [0, 1, 2, 9]) == 0.25


def test_cue_span_is_found_by_rank_and_chance_is_rank_over_pixels():
    """The 10 ramps are linear in the two image axes, so per image they span 2 dimensions (the grating's and the
    marker's 10): isotropic noise puts rank / 784 of its energy there on average, and a perturbation of the pixels
    where the garment is 0 puts none on the ramp (the ramp multiplies the garment)."""
    from imperceptible.data.cues import Grating, Marker, Ramp, energy_share, span_rank

    g = torch.Generator().manual_seed(1)
    base = torch.rand(1, 1, 28, 28, generator=g) * (torch.rand(1, 1, 28, 28, generator=g) > 0.4)
    noise = torch.randn(400, 1, 28, 28, generator=g)
    for cue, rank in ((Ramp(), 2), (Grating(), 10), (Marker(), 10)):
        dirs = cue.directions(base)
        assert span_rank(dirs).tolist() == [rank], cue.name
        share = energy_share(noise, dirs.expand(400, -1, -1)).mean().item()
        assert share == pytest.approx(rank / 784, rel=0.2), cue.name
    off = noise[:5] * (base == 0)
    assert (energy_share(off, Ramp().directions(base).expand(5, -1, -1)) < 1e-12).all()


def test_predict_in_channels_last_gives_the_default_layouts_classes(mnist_cnn, mnist_test):
    """The study's predictions (a channels-last copy on the CPU) are the model's own argmax, image for image, and
    leave the model as it was."""
    from imperceptible.experiments.fairness.evaluation import for_inference, predict

    x = mnist_test.images[:600]
    before = {k: v.clone() for k, v in mnist_cnn.state_dict().items()}
    with torch.no_grad():
        plain = mnist_cnn(x).argmax(1).numpy()
    fast = for_inference(mnist_cnn)
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert fast is not mnist_cnn and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert (predict(fast, x, batch_size=128) == plain).all()
    after = mnist_cnn.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].is_contiguous() for k in before)


def test_gates_pass_and_fail_on_their_thresholds():
    from imperceptible.experiments.fairness.gates import RATIO_MIN, RELIANCE_MIN, gates

    pre = [{"reliance": {"ramp": RELIANCE_MIN + 0.05}}, {"reliance": {"ramp": RELIANCE_MIN + 0.01}}]
    mech = {"ours": [{"cue_changed_rate": 0.4, "cue_energy_share": 0.3}],
            "pgd": [{"cue_changed_rate": 0.1, "cue_energy_share": 0.1}]}
    g = gates(pre, mech, "ours", "pgd")
    assert g["passed"] is True and g["checks"]["cue_changed_ratio"]["value"] == pytest.approx(4.0)
    low = gates([{"reliance": {"ramp": RELIANCE_MIN - 0.01}}], mech, "ours", "pgd")
    assert low["passed"] is False and low["checks"]["pretrained_reliance"]["passed"] is False
    same = {"ours": mech["ours"], "pgd": [{"cue_changed_rate": 0.4 / RATIO_MIN * 1.01, "cue_energy_share": 0.3}]}
    g = gates(pre, same, "ours", "pgd")
    assert g["checks"]["cue_changed_ratio"]["passed"] is False and g["checks"]["cue_energy_ratio"]["passed"] is False
    none = gates([{"reliance": {}}], {"ours": [{}], "pgd": [{}]}, "ours", "pgd")
    assert none["applicable"] is False and none["passed"] is None  # a dataset without simulated cues
    # no cue changed by either family (0 / 0) leaves that gate unmeasured, but a failed gate still fails the design
    unmeasured = {"ours": [{"cue_changed_rate": 0.0, "cue_energy_share": 0.3}],
                  "pgd": [{"cue_changed_rate": 0.0, "cue_energy_share": 0.3}]}
    g = gates(pre, unmeasured, "ours", "pgd")
    assert g["checks"]["cue_changed_ratio"]["passed"] is None and g["applicable"] is False and g["passed"] is False


def test_outcomes_against_a_hand_computation():
    from imperceptible.fairness.outcomes import quintile_accuracy, shrunk_group_accuracy, worst_cue_group, worst_group

    groups = np.repeat([f"g{i}" for i in range(10)], 50)
    acc = np.linspace(0.5, 0.95, 10)
    correct = np.concatenate([np.arange(50) < round(50 * a) for a in acc])
    cov = {f"g{i}": float(i) for i in range(10)}
    q = quintile_accuracy(correct, groups, cov, min_count=50)
    by_hand = [correct[groups == f"g{i}"].mean() for i in range(10)]
    assert q["bottom"] == pytest.approx(np.mean(by_hand[:2])) and q["top"] == pytest.approx(np.mean(by_hand[-2:]))
    assert quintile_accuracy(correct, groups, cov, min_count=51)["bottom"] is None  # no group kept
    k, n = np.array([5.0, 40, 45]), np.array([10.0, 50, 50])
    s = shrunk_group_accuracy(k, n)
    assert (np.sign(s - k / n) == np.sign(np.average(k / n, weights=n) - k / n)).all()  # toward the mean
    w = worst_group(correct, groups)
    assert w["group"] == "g0" and w["raw_min"] == pytest.approx(0.5) and w["shrunk"] >= 0.5
    labels, agrees = np.tile([0, 1], 250), np.arange(500) % 4 < 2
    ok = ~((labels == 1) & ~agrees)  # only label 1 with a misleading cue fails
    assert worst_cue_group(ok, labels, agrees, min_count=10) == 0.0
    assert worst_cue_group(ok, labels, agrees, min_count=1000) is None


def test_grouped_folder_splits_and_errors(grouped_folder, tmp_path):
    s = grouped_splits(f"folder:{grouped_folder}", covariates=grouped_folder / "cov.csv")
    assert len(s.train) + len(s.test) == 480 and not s.simulation
    assert set(s.test.groups) == set(GROUPS) and s.covariates == GROUPS
    assert pd.Series(s.test.groups).value_counts().min() == 32  # stratified by group: 40 % of 80
    with pytest.raises(TableError) as e:
        grouped_splits(f"folder:{grouped_folder}")
    assert str(e.value) == MSG_NO_COVARIATES.format(name=f"folder:{grouped_folder}")
    (tmp_path / "c.csv").write_text("group,covariate\ng0,1\ng1,2\n")
    with pytest.raises(TableError) as e:
        grouped_splits(f"folder:{grouped_folder}", covariates=tmp_path / "c.csv")
    assert str(e.value) == MSG_MISSING_COVARIATE.format(groups=["g2", "g3", "g4", "g5"])
    (tmp_path / "c.csv").write_text("group,covariate\ng0,nan\n")
    with pytest.raises(TableError) as e:
        read_covariates(tmp_path / "c.csv")
    assert str(e.value) == MSG_NONFINITE_COVARIATE.format(path=tmp_path / "c.csv", value=float("nan"), group="g0")
    nogroup = tmp_path / "nogroup"
    nogroup.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(nogroup / "a.png")
    (nogroup / "labels.csv").write_text("file,label\na.png,1\n")
    with pytest.raises(TableError) as e:
        grouped_splits(f"folder:{nogroup}", covariates=tmp_path / "c.csv")
    assert str(e.value) == MSG_NO_GROUPS.format(name=f"folder:{nogroup}")


SMALL = dict(models=2, dro_seeds=2, dro_size=48, t1=1, t2=1, min_count=10, progress=False)


def _small_attacks():
    from imperceptible.attacks import PGDL2, HumanPercOT

    return {"human-perc-ot": HumanPercOT.from_preset("first-success", steps=20, max_steps=40),
            "pgd-l2": PGDL2(eps=2.0, alpha=0.4, steps=5)}


ARMS = ["erm", "human-perc-ot", "human-perc-ot/no-attack", "pgd-l2", "pgd-l2/no-attack", "matched-noise"]


def test_study_crash_between_models_loses_nothing(grouped_folder, tmp_path, monkeypatch):
    import imperceptible.experiments.fairness.stages as fs
    from imperceptible.experiments.fairness import fairness_study

    real = fs.sample_model
    calls = []

    def crashing(*a, **k):
        calls.append(k["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the run after three models' training began
        return real(*a, **k)

    out = tmp_path / "run"
    kw = dict(dataset=f"folder:{grouped_folder}", covariates=str(grouped_folder / "cov.csv"), **{**SMALL, "dro_seeds": 1})
    monkeypatch.setattr(fs, "sample_model", crashing)
    with pytest.raises(KeyboardInterrupt):
        fairness_study(out=out, attacks=_small_attacks(), **kw)
    finished = sorted(p.relative_to(out).as_posix() for p in (out / "algorithm3").rglob("*.json"))
    assert finished == ["algorithm3/erm/r1_k1.json", "algorithm3/erm/r1_k2.json"]
    before = {p: (out / p).read_text() for p in finished}
    stamp = (out / "pretrain" / "r1.json").stat().st_mtime_ns

    calls.clear()
    monkeypatch.setattr(fs, "sample_model", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    summary = fairness_study(out=out, attacks=_small_attacks(), **kw)  # resume: only the missing models
    assert len(calls) == 6 * 2 - 2 and summary["arms"]["pgd-l2"]["models"] == 2
    assert all((out / p).read_text() == t for p, t in before.items())
    assert (out / "pretrain" / "r1.json").stat().st_mtime_ns == stamp

    # the same study uninterrupted gives the same slopes: nothing was lost or changed by the crash
    monkeypatch.setattr(fs, "sample_model", real)
    clean = fairness_study(out=tmp_path / "clean", attacks=_small_attacks(), **kw)
    for a in ARMS:
        assert clean["arms"][a]["beta_mean"] == pytest.approx(summary["arms"][a]["beta_mean"], abs=1e-12), a
    # a re-run with another setting is refused, not mixed in
    from imperceptible.runs.rundir import RunDirError

    with pytest.raises(RunDirError, match="config.lr: 0.1 -> 0.05"):
        fairness_study(out=out, attacks=_small_attacks(), **{**kw, "lr": 0.05})


def test_world_by_world_calls_carrying_only_records_give_the_one_call_study(grouped_folder, tmp_path, caplog):
    """--worlds-per-call: each call finishes whole worlds and stops; a job that keeps only the JSON records between
    calls (the model and dataset files deleted) ends in the same study as one call, gates included."""
    from imperceptible.experiments.fairness import fairness_study
    from imperceptible.experiments.fairness.stages import AFTER_MODELS

    kw = dict(dataset=f"folder:{grouped_folder}", covariates=str(grouped_folder / "cov.csv"), **SMALL)
    one = fairness_study(out=tmp_path / "one", attacks=_small_attacks(), **kw)
    out = tmp_path / "by-world"
    with caplog.at_level("WARNING"):
        assert fairness_study(out=out, attacks=_small_attacks(), worlds_per_call=1, **kw) is None
    assert "1 of 2 worlds finished (--worlds-per-call 1); run the same command again to go on" in caplog.text
    assert (out / "algorithm3" / "pgd-l2" / "r1_k2.json").is_file() and not (out / "pretrain" / "r2.json").exists()
    assert not (out / "gates.json").exists() and not (out / "summary.json").exists()
    for p in sorted(out.rglob("*")):  # what a time-limited job carries: the records alone
        if p.is_file() and p.suffix != ".json":
            p.unlink()
    # and a world cut off half-way: records of world 2 without the files they were computed with (here borrowed from
    # world 1, so that keeping any of them would change the slopes); it is computed whole again, not mixed
    (out / "pretrain" / "r2.json").write_text((out / "pretrain" / "r1.json").read_text())
    (out / "algorithm3" / "erm" / "r2_k1.json").write_text((out / "algorithm3" / "erm" / "r1_k1.json").read_text())
    s = fairness_study(out=out, attacks=_small_attacks(), worlds_per_call=1, **kw)
    assert not (out / "models" / "theta0_r1.pt").exists()  # world 1 was read from its records, not computed again
    for a in ARMS:
        assert s["arms"][a]["beta_mean"] == pytest.approx(one["arms"][a]["beta_mean"], abs=1e-12), a
    gates_one = json.loads((tmp_path / "one" / "gates.json").read_text())
    gates = json.loads((out / "gates.json").read_text())
    assert gates.pop("schedule") == AFTER_MODELS and gates == gates_one
    assert json.loads((out / "fingerprint.json").read_text()) == json.loads((tmp_path / "one" / "fingerprint.json")
                                                                          .read_text())  # a schedule, not a setting
    assert fairness_study(out=out, attacks=_small_attacks(), worlds_per_call=1, **kw)["arms"].keys() == s["arms"].keys()


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_study_cli_on_a_folder_dataset(grouped_folder, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["fairness", "--dataset", f"folder:{grouped_folder}", "--covariates", str(grouped_folder / "cov.csv"),
               "--models", "2", "--dro-seeds", "2", "--dro-size", "48", "--t1", "1", "--t2", "1", "--min-count", "10",
               "--quiet", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "pre-trained model (world 2): accuracy" in printed and "primary: D-level difference" in printed
    assert "gate cue_changed_ratio: n/a" in printed
    for f in ("config.json", "summary.json", "report.html", "accuracy/r1.csv", "accuracy/r2.csv", "models.csv",
              "gates.json", "plots/regression_theta0.png", "plots/slopes.png", "plots/frontier.png",
              "models/theta0_r1.pt", "models/theta0_r2.pt", "models/pgd-l2/r2_k2.pt",
              "models/pgd-l2_no-attack/r1_k1.pt", "algorithm2/human-perc-ot/r1.dataset.pt",
              "algorithm2/pgd-l2/r2.json"):
        assert (out / f).is_file(), f
    assert not (out / "results.sqlite").exists() and not (out / "images").exists()  # no per-sample attack store
    s = json.loads((out / "summary.json").read_text())
    assert list(s["arms"]) == ARMS and all(s["arms"][a]["models"] == 4 for a in ARMS)
    assert s["gates"]["applicable"] is False  # no simulated cue: the gates do not apply, and say so
    assert "difference" in s["primary_endpoint"] and s["primary_endpoint"]["df"] > 0
    c = s["comparisons"]["human-perc-ot vs pgd-l2"]
    assert {"d_level_welch", "paired", "model_level_welch", "model_level_student"} <= set(c)
    calls = s["algorithm2"]["human-perc-ot"]["calls"]
    assert calls["attack_calls_saved"] + calls["attack_calls_run"] + calls["no_attack_needed"] == 2 * 48
    # accuracy/rR.csv is the input of `fairness test`, and gives the same statistics
    table = read_table(out / "accuracy" / "r1.csv")
    assert list(table.columns[:4]) == ["group", "covariate", "n", "accuracy_theta0"]
    r = slope_test(table, accuracy="accuracy_theta0", min_count=10)
    assert r["beta"] == pytest.approx(s["pretrained"][0]["slope"]["beta"], rel=1e-9)
    assert main(["fairness", "test", "--table", str(out / "accuracy" / "r1.csv"), "--min-count", "10", "--ours",
                 "human-perc-ot", "--other", "pgd-l2", "--json"]) == 0
    tt = json.loads(capsys.readouterr().out)["t_test"]
    models = pd.read_csv(out / "models.csv")
    r1 = models[models.replicate == 1]
    from scipy import stats

    welch = stats.ttest_ind(r1[r1.arm == "human-perc-ot"].beta, r1[r1.arm == "pgd-l2"].beta, equal_var=False)
    assert tt["t"] == pytest.approx(welch.statistic, rel=1e-6) and tt["k_ours"] == 2  # world 1's models
    assert "fairness study" in (out / "report.html").read_text()
    assert main(["fairness", "--models", "2"]) == 2  # no --out: a clear error


def _plain_model_evaluation(design: str) -> dict:
    """The study's first stage on a world of ``design``: a plainly trained model (one epoch), evaluated."""
    _need_fashion_mnist()
    from imperceptible.experiments.fairness import make_model
    from imperceptible.experiments.fairness.evaluation import evaluate
    from imperceptible.models.training import train_classifier

    splits = grouped_splits("geo-fashion", design=design)
    theta0 = make_model(splits.train, 0)
    train_classifier(theta0.net, splits.train.images, splits.train.labels, epochs=1, lr=1e-3, batch_size=64, seed=0,
                     progress=False)
    return evaluate(theta0.eval(), splits, min_count=50)


def test_plain_model_on_geo_fashion_has_a_significant_positive_slope():
    """The simulation's design claim, measured: the plainly trained model's accuracy rises with log GDP, and
    changing only the ramp cue changes some of its predictions (the study's first stage, one epoch here)."""
    s = _plain_model_evaluation("mechanism")
    sl = s["slope"]
    assert sl["beta"] > 0 and sl["p"] < 0.05 and 40 <= sl["n_groups"] <= 55
    assert (sl["df1"], sl["df2"]) == (1, sl["n_groups"] - 2)
    assert s["accuracy"] > 0.8 and 0.02 < s["reliance"]["ramp"] < 0.5
    o = s["outcomes"]
    assert o["bottom"] < o["top"] and o["worst_class"] < s["accuracy"] and o["worst_cue_group"] < o["worst_group"]


@pytest.mark.slow
def test_null_design_gives_a_slope_whose_ci_covers_zero():
    """The negative control of the design: with the cue's reliability flat in GDP the same model, trained the
    same way, relies on the cue as much but its accuracy no longer rises with log GDP (95% CI covers 0)."""
    from scipy import stats

    s = _plain_model_evaluation("null")
    sl = s["slope"]
    half = stats.t.ppf(0.975, sl["df2"]) * sl["beta_se"]
    assert sl["beta"] - half < 0 < sl["beta"] + half, sl
    assert s["reliance"]["ramp"] > 0.02  # the cue is still used: only its link to GDP is gone


def _unreachable_study(out):
    """A 'perceptual' family whose attack may only move background pixels (where the garment, and so the ramp
    ``b (1 + a r_k)``, is 0): it cannot reach the cue (the powered arm set: ERM and the two families)."""
    from imperceptible.attacks import PGDL2
    from imperceptible.experiments.fairness import fairness_study

    class BackgroundOnly(PGDL2):
        name = "background-only"

        def run(self, model, x, y):
            adv, steps = super().run(model, x, y)
            return torch.where(x == 0, adv, x), steps

    attacks = {"human-perc-ot": BackgroundOnly(eps=4.0, alpha=0.8, steps=5), "pgd-l2": PGDL2(eps=2.0, alpha=0.4, steps=5)}
    return fairness_study(out=out, attacks=attacks, arms="powered", reading="literal", models=2, dro_seeds=1,
                          dro_size=32, t1=1, t2=1, size=3000, min_count=5, pretrain_epochs=1, progress=False)


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory):
    _need_fashion_mnist()
    out = tmp_path_factory.mktemp("unreachable") / "run"
    return out, _unreachable_study(out)


def test_gates_fail_and_the_study_says_so_where_the_attack_cannot_reach_the_cue(unreachable, capsys):
    """None of that attack's energy lies on the cue and it never changes the decoded cue, so the energy gate fails
    whatever PGD-L2 does, and the summary, report and terminal say so."""
    from imperceptible.experiments.fairness import print_study
    from imperceptible.experiments.fairness.gates import VERDICTS

    out, s = unreachable
    assert list(s["arms"]) == ["erm", "human-perc-ot", "pgd-l2"]
    ours, pgd = (s["algorithm2"][f]["mechanism"] for f in ("human-perc-ot", "pgd-l2"))
    assert ours["attacked_rows"] > 0 and ours["cue_changed_rate"] == 0.0 and ours["cue_energy_share"] < 1e-9
    assert pgd["cue_energy_share"] > ours["cue_energy_share"]
    energy = s["gates"]["checks"]["cue_energy_ratio"]
    assert energy["value"] < 1e-6 and energy["passed"] is False and s["gates"]["passed"] is False
    report = (out / "report.html").read_text().replace("&#x27;", "'")
    assert VERDICTS[False] in report
    print_study(s)
    printed = capsys.readouterr().out
    assert f"gates: {VERDICTS[False]}" in printed and "FAILED" in printed.split("gate cue_energy_ratio:")[1].split("\n")[0]


def test_a_record_measured_before_the_rank_aware_span_is_remeasured_on_resume(unreachable):
    """A finished study whose Algorithm 2 records predate the rank-aware cue span (no ``cue_rank``; here faked with
    a wrong share) is re-measured from its saved datasets on resume: the true shares come back, nothing is
    retrained, and gates.json keeps what it first said beside the mark that it was re-measured."""
    out, s = unreachable
    models = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    for fam in ("human-perc-ot", "pgd-l2"):
        p = out / "algorithm2" / fam / "r1.json"
        rec = json.loads(p.read_text())
        rec["mechanism"].pop("cue_rank")
        rec["mechanism"]["cue_energy_share"] = 0.5
        p.write_text(json.dumps(rec))
    g = json.loads((out / "gates.json").read_text())
    g["checks"]["cue_energy_ratio"]["value"] = 1.0
    (out / "gates.json").write_text(json.dumps(g))
    again = _unreachable_study(out)
    for fam in ("human-perc-ot", "pgd-l2"):
        m = again["algorithm2"][fam]["mechanism"]
        assert m["cue_energy_share"] == pytest.approx(s["algorithm2"][fam]["mechanism"]["cue_energy_share"], abs=1e-12)
        rec = json.loads((out / "algorithm2" / fam / "r1.json").read_text())["mechanism"]
        assert m["cue_rank"] == rec["cue_rank"] == 2 and rec["remeasured_from"]["cue_energy_share"] == 0.5
    g = json.loads((out / "gates.json").read_text())
    assert g["checks"] == s["gates"]["checks"] and "re-measured" in g["remeasured"]
    assert g["first_written"]["cue_energy_ratio"]["value"] == 1.0 and again["gates"] == g
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")} == models  # no model or dataset written again


def test_small_geo_study_measures_the_mechanism_and_its_gates(tmp_path, capsys):
    _need_fashion_mnist()
    from imperceptible.experiments.fairness import fairness_study, print_study
    from imperceptible.experiments.fairness.gates import VERDICTS

    s = fairness_study(out=tmp_path / "run", attacks=_small_attacks(), models=2, dro_seeds=1, dro_size=32, t1=1, t2=1,
                       size=3000, min_count=5, pretrain_epochs=1, progress=False)
    assert s["simulation"] and "SIMULATION" in s["note"]
    assert "oracle" in s["arms"] and "matched-noise" in s["arms"]
    for fam in ("human-perc-ot", "pgd-l2"):
        m = s["algorithm2"][fam]["mechanism"]
        assert 0 <= m["cue_changed_rate"] <= 1 and 0 < m["cue_energy_share"] < 1, fam
        assert m["cue_energy_chance"] == pytest.approx(2 / 784) and m["cue_rank"] == 2  # the ramp's span
    from imperceptible.fileio import read_json

    g = read_json(tmp_path / "run" / "gates.json")  # strict JSON: an infinite ratio is stored as null and restored
    assert g == s["gates"] and set(g["checks"]) == {"pretrained_reliance", "cue_changed_ratio", "cue_energy_ratio"}
    # the gates from the records read back from disk (as --worlds-per-call computes them) are the same
    from imperceptible.experiments.fairness.gates import gates
    from imperceptible.experiments.fairness.stages import BASELINE, OURS

    pre = [read_json(tmp_path / "run" / "pretrain" / "r1.json")]
    mech = {f: [read_json(tmp_path / "run" / "algorithm2" / f / "r1.json")["mechanism"]] for f in ("human-perc-ot", "pgd-l2")}
    assert gates(pre, mech, OURS, BASELINE) == {k: v for k, v in g.items() if k != "families"}
    assert g["checks"]["cue_changed_ratio"]["value"] is not None
    # one epoch on 3000 images: the model barely uses the cue, so the first gate fails, and the study says so
    rel = g["checks"]["pretrained_reliance"]
    assert rel["value"] < 0.15 and rel["passed"] is False and g["passed"] is False
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["gates"]["passed"] is False
    report = (tmp_path / "run" / "report.html").read_text().replace("&#x27;", "'")
    assert "Gates (fixed before Algorithm 3)" in report and VERDICTS[False] in report
    print_study(s)
    assert f"gates: {VERDICTS[False]}" in capsys.readouterr().out
    # the docs' table is written from this summary by benchmarks/tables.py, into the markers of a Markdown file

    tables = load_script("benchmarks/tables.py")
    doc = tmp_path / "doc.md"
    doc.write_text("# results\n<!-- tables:fairness -->\nold\n<!-- /tables:fairness -->\nafter\n")
    tables.write_into(doc, "fairness", tables.fairness(s))
    text = doc.read_text()
    assert "\nold\n" not in text and text.endswith("after\n") and "| pretrained_reliance |" in text
    assert f"{s['arms']['pgd-l2']['beta_mean']:.4f}" in text
    designs = tables.designs([s])  # the README's one row per study: one D here, so no primary test, said so
    assert "| `mechanism` | 1 |" in designs and "n/a (fewer than 2 D)" in designs and "‡" not in designs
