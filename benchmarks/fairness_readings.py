"""Algorithm 2 read two ways, compared: two ``imperceptible fairness`` run directories that differ in
``--reading`` / ``--weighting`` (everything else equal), restricted to the cells both ran (the same
replicate index is the same training subset and pre-trained model; the same seed the same draws).

    python benchmarks/fairness_readings.py runs/fairness runs/fairness-literal \
        --json benchmarks/results/fairness_readings.json

Prints a Markdown table per arm and reading (mean slope, accuracy, cue reliance), each family's
comparison within each reading (D-level Welch, :func:`imperceptible.fairness.arms.compare_arms`), the
paired difference between the readings per arm (same subsets), and what Algorithm 2 built in each
reading (rows of ``D``, adversarial rows, their L2 and 1-SSIM to the original, time). The ERM arm does
not depend on Algorithm 2, so its rows must agree exactly between the two runs: the script checks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import pandas as pd

from imperceptible.experiments.fairness import FairnessConfig
from imperceptible.fairness.arms import compare_arms

#: what must be equal for the comparison to be about the reading: every setting of the study (from its config
#: class, the one source of its options) but the two being compared and the two that only scale it, plus the
#: families' attack settings
VARIED = {"reading", "weighting", "models", "dro_seeds"}
IDENTITY = tuple(f.name for f in dataclasses.fields(FairnessConfig) if f.name not in VARIED) + ("families",)
MECHANISM = ("l2_to_original", "ssim_distance_to_original", "cue_energy_share", "cue_changed_rate")


def label(cfg: dict) -> str:
    return f"{cfg['reading']}/{cfg['weighting']}"


def load(run: Path) -> tuple[dict, pd.DataFrame, dict]:
    missing = [n for n in ("config.json", "models.csv") if not (run / n).is_file()]
    if missing:
        raise SystemExit(f"{run}: not a finished fairness run directory (no {' or '.join(missing)})")
    cfg = json.loads((run / "config.json").read_text())
    models = pd.read_csv(run / "models.csv")
    alg2 = {}
    for f in sorted((run / "algorithm2").glob("*/r*.json")):
        alg2.setdefault(f.parent.name, {})[int(f.stem[1:])] = json.loads(f.read_text())
    return cfg, models, alg2


def compare(run_a: Path, run_b: Path) -> dict:
    (ca, ma, aa), (cb, mb, ab) = load(run_a), load(run_b)
    differ = {k: (ca.get(k), cb.get(k)) for k in IDENTITY if ca.get(k) != cb.get(k)}
    if differ:
        raise SystemExit(f"the two runs differ in more than the reading: {differ}")
    la, lb = label(ca), label(cb)
    if la == lb:
        raise SystemExit(f"both runs read Algorithm 2 the same way ({la})")
    cells = ma.merge(mb[["arm", "replicate", "seed"]], on=["arm", "replicate", "seed"])[["arm", "replicate", "seed"]]
    ma, mb = (m.merge(cells, on=["arm", "replicate", "seed"]) for m in (ma, mb))
    erm = ma[ma.arm == "erm"].merge(mb[mb.arm == "erm"], on=["replicate", "seed"], suffixes=("_a", "_b"))
    erm_gap = float((erm.beta_a - erm.beta_b).abs().max()) if len(erm) else math.nan
    both = pd.concat([ma.assign(arm=la + ":" + ma.arm), mb.assign(arm=lb + ":" + mb.arm)])
    arms = [a for a in ma.arm.unique() if a != "erm"]
    families = [a for a in arms if "/" not in a]
    out: dict = {"runs": {la: str(run_a), lb: str(run_b)}, "cells": int(len(cells)),
                 "replicates": sorted(int(r) for r in cells.replicate.unique()),
                 "seeds": sorted(int(s) for s in cells.seed.unique()), "erm_max_abs_difference": erm_gap,
                 "arms": {}, "families": {}, "between_readings": {}, "algorithm2": {}}
    for arm in ["erm"] + arms:
        out["arms"][arm] = {}
        for lab, m in ((la, ma), (lb, mb)):
            t = m[m.arm == arm]
            out["arms"][arm][lab] = {"beta_mean": float(t.beta.mean()), "accuracy_mean": float(t.accuracy.mean()),
                                     "reliance_mean": _mean_or_none(t.reliance), "models": int(len(t))}
    if len(families) == 2:
        for lab, m in ((la, ma), (lb, mb)):
            out["families"][lab] = compare_arms(m, families[0], families[1])
    for arm in arms:  # b minus a, paired by replicate (same subset, same theta0)
        out["between_readings"][arm] = compare_arms(both, f"{lb}:{arm}", f"{la}:{arm}")
    for lab, a2 in ((la, aa), (lb, ab)):
        out["algorithm2"][lab] = {fam: _algorithm2_means([reps[r] for r in out["replicates"]])
                                  for fam, reps in a2.items() if all(r in reps for r in out["replicates"])}
    return out


def _algorithm2_means(reps: list[dict]) -> dict:
    """Means over the replicates of what Algorithm 2 built (a mechanism measure a dataset has no cue for,
    such as the cue's share outside the simulation, stays ``None``)."""
    frame = pd.DataFrame([{"rows": d["rows"], "adversarial_rows": d["adversarial_rows"], "time_s": d["time_s"],
                           **{k: d["mechanism"].get(k) for k in MECHANISM}} for d in reps])
    means = {k: _mean_or_none(frame[k]) for k in frame}
    return {"rows_mean": means["rows"], "adversarial_rows_mean": means["adversarial_rows"],
            "time_s_per_replicate": means["time_s"], **{k: means[k] for k in MECHANISM}}


def _mean_or_none(values: pd.Series) -> float | None:
    """The mean of the values present; ``None`` where there are none (a cue the dataset does not have)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.mean()) if len(v) else None


def _num(v, digits: int) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def markdown(out: dict) -> str:
    la, lb = list(out["runs"])
    lines = [f"{out['cells']} models in common (replicates {out['replicates']}, seeds {out['seeds']}); ERM, which "
             f"Algorithm 2 does not touch, agrees between the runs to {out['erm_max_abs_difference']:.1e} in slope.", "",
             f"| arm | slope ({la}) | slope ({lb}) | accuracy ({la}) | accuracy ({lb}) | cue reliance ({la}) | "
             f"cue reliance ({lb}) | {lb} minus {la}, paired by D (95% CI) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for arm, v in out["arms"].items():
        b = out["between_readings"].get(arm, {}).get("paired")
        diff = f"{b['difference']:+.4f} ({b['ci_low']:+.4f} .. {b['ci_high']:+.4f})" if b else ""
        lines.append(f"| `{arm}` | {v[la]['beta_mean']:.4f} | {v[lb]['beta_mean']:.4f} | "
                     f"{100 * v[la]['accuracy_mean']:.1f}% | {100 * v[lb]['accuracy_mean']:.1f}% | "
                     f"{_num(v[la]['reliance_mean'], 3)} | {_num(v[lb]['reliance_mean'], 3)} | {diff} |")
    if out["families"]:
        lines += ["", "| reading | families (first minus second) | difference | 95% CI | D-level Welch t | df | one-sided p |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for lab, c in out["families"].items():
            w = c.get("d_level_welch")
            if w:
                lines.append(f"| {lab} | {c['a']} vs {c['b']} | {w['difference']:+.4f} | {w['ci_low']:+.4f} .. "
                             f"{w['ci_high']:+.4f} | {w['t']:.2f} | {w['df']:.3g} | {w['p']:.3g} |")
    lines += ["", "| reading | Algorithm 2 family | rows of D | adversarial rows | L2 to original | 1-SSIM to original | "
              "perturbation energy on the cue | time per replicate (s) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for lab, fams in out["algorithm2"].items():
        for fam, d in fams.items():
            lines.append(f"| {lab} | `{fam}` | {d['rows_mean']:.0f} | {d['adversarial_rows_mean']:.0f} | "
                         f"{_num(d['l2_to_original'], 2)} | {_num(d['ssim_distance_to_original'], 4)} | "
                         f"{_num(d['cue_energy_share'], 3)} | {d['time_s_per_replicate']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--json", type=Path, help="also write the comparison here")
    a = p.parse_args()
    out = compare(a.run_a, a.run_b)
    print(markdown(out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
