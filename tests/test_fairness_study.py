"""The geo-fashion simulation, grouped data, and the whole fairness study (resumable, CLI, real data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imperceptible.cli.main import main
from imperceptible.data.grouped import (
    MSG_MISSING_COVARIATE,
    MSG_NO_COVARIATES,
    MSG_NO_GROUPS,
    MSG_NONFINITE_COVARIATE,
    grouped_splits,
    read_covariates,
)
from imperceptible.fairness import read_table, slope_test
from imperceptible.validation import DatasetNotFoundError, TableError

from .conftest import skip_or_fail

GROUPS = {f"g{i}": float(6 + i) for i in range(6)}


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


def test_geo_fashion_cues_are_painted_and_depend_on_income(geo):
    from imperceptible.data.geo_fashion import MARKER_POSITIONS, marker_probability, texture_patterns

    agrees, t_agrees = np.asarray(geo.info["marker_agrees"]), np.asarray(geo.info["texture_agrees"])
    assert geo.info["marker"] == "interior" and all(4 <= r <= 21 for r, _ in MARKER_POSITIONS)
    pats = texture_patterns()
    for i in range(50):
        white = [bool((geo.images[i, 0, r : r + 3, c : c + 3] == 1).all()) for r, c in MARKER_POSITIONS]
        label = int(geo.labels[i])
        assert white[label] if agrees[i] else any(w for p, w in enumerate(white) if p != label)
    # the texture: on the black background the image correlates best with its keyed grating
    bg = geo.images[:400, 0] < 0.1 + 0.06
    corr = torch.stack([(geo.images[:400, 0] * bg * p).flatten(1).sum(1) for p in pats], 1)
    keyed = corr.argmax(1).numpy()
    label = geo.labels[:400].numpy()
    assert (keyed[t_agrees[:400]] == label[t_agrees[:400]]).mean() > 0.9
    assert (keyed[~t_agrees[:400]] == label[~t_agrees[:400]]).mean() < 0.2
    cov = np.array([geo.info["covariates"][g] for g in geo.groups])
    rich, poor = cov > 10.3, cov < 8.5
    q_rich, q_poor = marker_probability(cov[rich]).mean(), marker_probability(cov[poor]).mean()
    for a in (agrees, t_agrees):
        assert a[rich].mean() == pytest.approx(q_rich, abs=0.02)
        assert a[poor].mean() == pytest.approx(q_poor, abs=0.05)
    assert q_rich > 0.9 and q_poor < 0.75
    from imperceptible.data.geo_fashion import geo_fashion

    again = geo_fashion("test")
    assert torch.equal(again.images[:50], geo_fashion("test").images[:50])  # deterministic in the seed


def test_cue_energy_shares():
    from imperceptible.data.geo_fashion import MARKER_POSITIONS, cue_energy, texture_patterns

    d = torch.zeros(2, 1, 28, 28)
    r, c = MARKER_POSITIONS[3]
    d[0, 0, r : r + 3, c : c + 3] = 0.5  # all energy on a marker slot
    d[1, 0] = 0.03 * texture_patterns()[7]  # all energy on a grating
    e = cue_energy(d)
    assert e["marker_share"][0] == pytest.approx(1.0) and e["texture_share"][1] == pytest.approx(1.0, abs=1e-6)
    assert e["marker_share"][1] < 0.2 and e["texture_share"][0] < 0.2
    assert e["marker_chance"] == pytest.approx(90 / 784) and e["texture_chance"] == pytest.approx(10 / 784)


@pytest.fixture(scope="module")
def grouped_folder(tmp_path_factory):
    """A real small grouped dataset: 480 MNIST digits in 6 groups, PNG files + labels.csv + covariates.csv."""
    from imperceptible.data import load

    d = load("mnist", split="train", limit=480)
    root = tmp_path_factory.mktemp("grouped")
    rows = []
    for i in range(len(d)):
        f = f"{i:04d}.png"
        Image.fromarray((d.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(root / f)
        rows.append({"file": f, "label": int(d.labels[i]), "group": f"g{i % 6}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"group": list(GROUPS), "covariate": list(GROUPS.values())}).to_csv(root / "cov.csv", index=False)
    return root


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


ARMS = ["erm", "human-perc-ot", "human-perc-ot/no-attack", "pgd-l2", "pgd-l2/no-attack"]


def test_study_crash_between_models_loses_nothing(grouped_folder, tmp_path, monkeypatch):
    import imperceptible.experiments.fairness_study as fs

    real = fs.sample_model
    calls = []

    def crashing(*a, **k):
        calls.append(k["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the run after three models' training began
        return real(*a, **k)

    out = tmp_path / "run"
    kw = dict(dataset=f"folder:{grouped_folder}", covariates=str(grouped_folder / "cov.csv"), **SMALL)
    monkeypatch.setattr(fs, "sample_model", crashing)
    with pytest.raises(KeyboardInterrupt):
        fs.fairness_study(out=out, attacks=_small_attacks(), **kw)
    finished = sorted(p.relative_to(out).as_posix() for p in (out / "algorithm3").rglob("*.json"))
    assert finished == ["algorithm3/erm/r1_k1.json", "algorithm3/erm/r1_k2.json"]
    before = {p: (out / p).read_text() for p in finished}
    stamp = (out / "pretrain.json").stat().st_mtime_ns

    calls.clear()
    monkeypatch.setattr(fs, "sample_model", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    summary = fs.fairness_study(out=out, attacks=_small_attacks(), **kw)  # resume: only the missing models
    assert len(calls) == 2 * 5 * 2 - 2 and summary["arms"]["pgd-l2"]["models"] == 4
    assert all((out / p).read_text() == t for p, t in before.items())
    assert (out / "pretrain.json").stat().st_mtime_ns == stamp

    # the same study uninterrupted gives the same slopes: nothing was lost or changed by the crash
    monkeypatch.setattr(fs, "sample_model", real)
    clean = fs.fairness_study(out=tmp_path / "clean", attacks=_small_attacks(), **kw)
    for a in ARMS:
        assert clean["arms"][a]["beta_mean"] == pytest.approx(summary["arms"][a]["beta_mean"], abs=1e-12), a
    # a re-run with another setting is refused, not mixed in
    from imperceptible.runs.rundir import RunDirError

    with pytest.raises(RunDirError, match="config.lr: 0.1 -> 0.05"):
        fs.fairness_study(out=out, attacks=_small_attacks(), **{**kw, "lr": 0.05})


def test_study_cli_on_a_folder_dataset(grouped_folder, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["fairness", "--dataset", f"folder:{grouped_folder}", "--covariates", str(grouped_folder / "cov.csv"),
               "--models", "2", "--dro-seeds", "2", "--dro-size", "48", "--t1", "1", "--t2", "1", "--min-count", "10",
               "--quiet", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "pre-trained model: accuracy" in printed and "human-perc-ot vs pgd-l2: difference" in printed
    for f in ("config.json", "summary.json", "report.html", "accuracy.csv", "models.csv", "plots/regression_theta0.png",
              "plots/slopes.png", "plots/frontier.png", "models/theta0.pt", "models/pgd-l2/r2_k2.pt",
              "models/pgd-l2_no-attack/r1_k1.pt", "algorithm2/human-perc-ot/r1.dataset.pt",
              "algorithm2/pgd-l2/r2.json"):
        assert (out / f).is_file(), f
    assert not (out / "results.sqlite").exists() and not (out / "images").exists()  # no per-sample attack store
    s = json.loads((out / "summary.json").read_text())
    assert list(s["arms"]) == ARMS and all(s["arms"][a]["models"] == 4 for a in ARMS)
    c = s["comparisons"]["human-perc-ot vs pgd-l2"]
    assert {"d_level_welch", "paired", "model_level_welch", "model_level_student"} <= set(c)
    calls = s["algorithm2"]["human-perc-ot"]["calls"]
    assert calls["attack_calls_saved"] + calls["attack_calls_run"] + calls["no_attack_needed"] == 2 * 48
    # accuracy.csv is the input of `fairness test`, and gives the same statistics
    table = read_table(out / "accuracy.csv")
    assert list(table.columns[:4]) == ["group", "covariate", "n", "accuracy_theta0"]
    r = slope_test(table, accuracy="accuracy_theta0", min_count=10)
    assert r["beta"] == pytest.approx(s["pretrained"]["slope"]["beta"], rel=1e-9)
    assert main(["fairness", "test", "--table", str(out / "accuracy.csv"), "--min-count", "10", "--ours",
                 "human-perc-ot", "--other", "pgd-l2", "--json"]) == 0
    tt = json.loads(capsys.readouterr().out)["t_test"]
    assert tt["t"] == pytest.approx(c["model_level_welch"]["t"], rel=1e-9) and tt["k_ours"] == 4
    assert "fairness study" in (out / "report.html").read_text()
    assert main(["fairness", "--models", "2"]) == 2  # no --out: a clear error


def test_plain_model_on_geo_fashion_has_a_significant_positive_slope():
    """The simulation's design claim, measured: the plainly trained model's accuracy rises with log GDP, and
    it relies on both cues (the study's first stage, one epoch here)."""
    _need_fashion_mnist()
    from imperceptible.experiments.fairness_study import evaluate, make_model
    from imperceptible.models.training import train_classifier

    splits = grouped_splits("geo-fashion")
    theta0 = make_model(splits, 0)
    train_classifier(theta0.net, splits.train.images, splits.train.labels, epochs=1, lr=1e-3, batch_size=64, seed=0,
                     progress=False)
    s = evaluate(theta0.eval(), splits, min_count=50)
    sl = s["slope"]
    assert sl["beta"] > 0 and sl["p"] < 0.001 and 40 <= sl["n_groups"] <= 55
    assert (sl["df1"], sl["df2"]) == (1, sl["n_groups"] - 2)
    assert s["accuracy"] > 0.8
    assert s["marker"]["reliance"] > 0.1 and s["texture"]["reliance"] > 0.02


def test_small_geo_study_measures_where_the_attacks_put_their_energy(tmp_path):
    _need_fashion_mnist()
    from imperceptible.experiments.fairness_study import fairness_study

    s = fairness_study(out=tmp_path / "run", attacks=_small_attacks(), models=2, dro_seeds=1, dro_size=32, t1=1, t2=1,
                       size=3000, min_count=5, pretrain_epochs=1, progress=False)
    assert s["simulation"] and "SIMULATION" in s["note"]
    for fam in ("human-perc-ot", "pgd-l2"):
        m = s["algorithm2"][fam]["mechanism"]
        assert 0 < m["marker_energy_share"] < 1 and 0 < m["texture_energy_share"] < 1, fam
        assert m["marker_chance"] == pytest.approx(90 / 784)
    assert "SIMULATION" in (tmp_path / "run" / "report.html").read_text().upper()
