"""Exploratory, outside the protocols: does each part of ours matter? Ours against each of its ablations (the
protocol's role ``ablation``: ours with one part removed) and its first-success preset (role ``reference``: ours
without the refinement), on the committed per-image values of finished test stages.

Not a claim of either protocol, which report the ablations as point estimates only; written on 2026-12-06 after the
runs' results had been read. Per run, per judge ours does not optimise, per ablation: the optimality difference
(ablation minus ours, the ensemble of every method of the run, as in its summary) with its percentile bootstrap 95%
interval (the package's ``decision.bootstrap``, images resampled), the median paired ratio ablation / ours over the
images both fooled, and a two-sided paired Wilcoxon on the log ratios (twice the smaller of the package's two
one-sided ``log_ratio_test`` p-values), Holm-corrected over every run x judge x ablation. An ablation is *better*
than ours on a judge when the interval lies above 0, the median ratio is below 1 and the Holm p is below 0.01;
*worse* the other way round; else *level*.

    python benchmarks/ablation_tests.py benchmarks/results/protocol_test_{effnet-200,mnist-cnn-100,mnist-cnn-b-100,\\
mnist-cnn-robust-100,mnist-cnn-200,mnist-cnn-b-200,mnist-cnn-robust-200,mnist-cnn-1000,mnist-cnn-b-1000,\\
mnist-cnn-robust-1000}.json --out benchmarks/results/ablation_tests.json

(the Holm family is every run given: the stored JSON's is the ten finished test stages of minimal-heldout-1 above,
308 tests)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from imperceptible.evaluate.decision import bootstrap, holm, log_ratio_test
from imperceptible.evaluate.optimality import ensemble, optimality
from imperceptible.experiments.minimal_analysis import unoptimised

ALPHA = 0.01
N_BOOT = 2000


def ablations_of(summary: dict) -> list[str]:
    """The run's ablations and presets of ours: its bracketed methods that are not its variants (another cost, not a
    part removed)."""
    ours = summary["ours"]
    return [m for m in summary["methods"] if m.startswith(ours + "[") and m not in (summary.get("variants") or [])]


def run_tests(summary: dict, table: dict) -> dict:
    """One run: per judge and ablation, the difference, its interval, the median ratio and the raw two-sided p."""
    ours, abl = summary["ours"], ablations_of(summary)
    attacked = np.asarray(table["attacked"], bool)
    out: dict[str, dict] = {}
    for k in unoptimised(summary["minimal"], summary["ours"]):
        vals = {m: np.asarray([float(v) for v in table["values"][m][k]], float) for m in table["values"]}
        best = ensemble(vals)
        opt = {m: optimality(v, best) for m, v in vals.items()}
        stored = summary["minimal"]["judges"][k]["methods"][ours]["optimality"]
        if not np.isclose(opt[ours], stored, atol=1e-9):
            raise SystemExit(f"{summary['protocol_run']}/{k}: ours' optimality {opt[ours]} is not the summary's {stored}")
        boot = bootstrap(vals, ours, abl, n_boot=N_BOOT, random_state=0, attacked=attacked)
        row = {}
        for a in abl:
            better = log_ratio_test(vals[a], vals[ours], attacked)  # H1: the ablation reads lower
            worse = log_ratio_test(vals[ours], vals[a], attacked)  # H1: ours reads lower
            p = None if better["p"] is None else min(1.0, 2 * min(better["p"], worse["p"]))
            lo, hi = boot["difference"][a]  # ours - ablation
            row[a] = {"difference": opt[a] - opt[ours], "difference_ci": [None if hi is None else -hi,
                                                                          None if lo is None else -lo],
                      "median_ratio": better["median_ratio"], "n": better["n"], "p": p}
        out[k] = row
    return out


def verdict(r: dict) -> str:
    """better, worse or level (module docstring)."""
    lo, hi = r["difference_ci"]
    sig = r.get("p_holm") is not None and r["p_holm"] < ALPHA
    if sig and lo is not None and lo > 0 and r["median_ratio"] is not None and r["median_ratio"] < 1:
        return "better"
    if sig and hi is not None and hi < 0 and r["median_ratio"] is not None and r["median_ratio"] > 1:
        return "worse"
    return "level"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("summaries", nargs="+", type=Path, help="committed protocol_test_RUN.json (its .per_image.json beside)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    runs = {}
    for f in a.summaries:
        s = json.loads(f.read_text())
        t = json.loads(f.with_name(f.name.replace(".json", ".per_image.json")).read_text())
        runs[s["protocol_run"]] = {"source": str(f), "n_images": len(t["ids"]), "ablations": ablations_of(s),
                                   "judges": run_tests(s, t)}
        print(f"{s['protocol_run']}: {len(runs[s['protocol_run']]['judges'])} judges", flush=True)
    cells = [(r, k, x) for r, v in runs.items() for k, row in v["judges"].items() for x, c in row.items()
             if c["p"] is not None]
    for (r, k, x), ph in zip(cells, holm([runs[r]["judges"][k][x]["p"] for r, k, x in cells])):
        runs[r]["judges"][k][x]["p_holm"] = ph
    for v in runs.values():
        for row in v["judges"].values():
            for c in row.values():
                c["verdict"] = verdict(c)
    a.out.write_text(json.dumps({"note": __doc__.split("\n\n")[1].replace("\n", " "), "alpha": ALPHA, "n_boot": N_BOOT,
                                 "tests": len(cells), "correction": "Holm over every run x judge x ablation",
                                 "runs": runs}, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
