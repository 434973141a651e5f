"""benchmarks/fairness_readings.py: two readings of Algorithm 2 compared on the cells both runs hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import load_script


def _module():
    return load_script("benchmarks/fairness_readings.py")


def _run(path: Path, reading: str, weighting: str, *, shift: float, replicates: int, seeds: int, rng) -> Path:
    cfg = {"reading": reading, "weighting": weighting, "dataset": "geo-fashion", "size": 30000, "design": "mechanism",
           "dro_size": 2000, "t1": 3, "t2": 3, "lr": 0.1, "batch_size": 64, "pretrain_epochs": 3,
           "pgd_eps": 2.0, "kmeans": True, "per_cluster": 5, "min_count": 50, "seed": 0}
    path.mkdir()
    (path / "config.json").write_text(json.dumps(cfg))
    rows = []
    for arm in ("erm", "human-perc-ot", "human-perc-ot/no-attack", "pgd-l2", "pgd-l2/no-attack"):
        for r in range(1, replicates + 1):
            for k in range(1, seeds + 1):
                base = 0.023 + 0.001 * r + 0.0001 * k  # the same cell has the same ERM slope in both runs
                beta = base if arm == "erm" else base + (shift if arm == "pgd-l2" else 0.0) + rng.normal(0, 1e-4)
                rows.append({"arm": arm, "replicate": r, "seed": k, "beta": beta, "p": 0.001, "F": 20.0,
                             "accuracy": 0.95, "reliance": 0.18})
    pd.DataFrame(rows).to_csv(path / "models.csv", index=False)
    for fam in ("human-perc-ot", "pgd-l2"):
        (path / "algorithm2" / fam).mkdir(parents=True)
        for r in range(1, replicates + 1):
            (path / "algorithm2" / fam / f"r{r}.json").write_text(json.dumps({
                "rows": 100 * r, "adversarial_rows": 50 * r, "time_s": 10.0 * r,
                "mechanism": {"l2_to_original": 1.5, "ssim_distance_to_original": 0.07, "cue_energy_share": 0.3,
                              "cue_changed_rate": 0.2}}))
    return path


def test_readings_compared_on_common_cells(tmp_path):
    mod, rng = _module(), np.random.default_rng(0)
    a = _run(tmp_path / "a", "eq3", "sample", shift=0.0, replicates=3, seeds=3, rng=rng)
    b = _run(tmp_path / "b", "literal", "both", shift=-0.01, replicates=2, seeds=2, rng=rng)
    out = mod.compare(a, b)
    assert out["cells"] == 5 * 2 * 2 and out["replicates"] == [1, 2] and out["seeds"] == [1, 2]
    assert out["erm_max_abs_difference"] == pytest.approx(0.0, abs=1e-12)
    # the literal run's pgd-l2 is 0.01 lower on the same D: the paired difference says so, the others do not
    paired = out["between_readings"]["pgd-l2"]["paired"]
    assert paired["difference"] == pytest.approx(-0.01, abs=5e-4) and paired["pairs"] == 2
    assert abs(out["between_readings"]["human-perc-ot"]["paired"]["difference"]) < 5e-4
    # Algorithm 2's statistics over the common replicates only (1 and 2: rows 100 and 200)
    assert out["algorithm2"]["eq3/sample"]["pgd-l2"]["rows_mean"] == pytest.approx(150.0)
    text = mod.markdown(out)
    assert "| `pgd-l2` |" in text and "literal/both minus eq3/sample" in text


def test_readings_refuse_runs_that_differ_in_more_than_the_reading(tmp_path):
    mod, rng = _module(), np.random.default_rng(0)
    a = _run(tmp_path / "a", "eq3", "sample", shift=0.0, replicates=2, seeds=2, rng=rng)
    b = _run(tmp_path / "b", "literal", "both", shift=0.0, replicates=2, seeds=2, rng=rng)
    cfg = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(json.dumps({**cfg, "dro_size": 3000}))
    with pytest.raises(SystemExit, match="differ in more than the reading.*dro_size"):
        mod.compare(a, b)
    c = _run(tmp_path / "c", "eq3", "sample", shift=0.0, replicates=2, seeds=2, rng=rng)
    with pytest.raises(SystemExit, match="read Algorithm 2 the same way"):
        mod.compare(a, c)
    with pytest.raises(SystemExit, match="not a finished fairness run directory"):
        mod.compare(a, tmp_path / "nowhere")


def test_algorithm2_means_leave_a_missing_cue_as_none():
    mod = _module()
    reps = [{"rows": 10, "adversarial_rows": 4, "time_s": 2.0, "mechanism": {"l2_to_original": 1.0,
                                                                              "ssim_distance_to_original": 0.1}},
            {"rows": 30, "adversarial_rows": 8, "time_s": 4.0, "mechanism": {"l2_to_original": 2.0,
                                                                              "ssim_distance_to_original": 0.3}}]
    m = mod._algorithm2_means(reps)
    assert m["rows_mean"] == 20 and m["adversarial_rows_mean"] == 6 and m["time_s_per_replicate"] == 3.0
    assert m["l2_to_original"] == pytest.approx(1.5) and m["ssim_distance_to_original"] == pytest.approx(0.2)
    assert m["cue_energy_share"] is None and mod._num(None, 3) == "n/a"
