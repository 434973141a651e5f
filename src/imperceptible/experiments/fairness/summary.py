"""The study's numbers from its stage files: one row per model, each arm's D-level means with intervals, the
primary endpoint, the secondary outcomes (Holm-corrected), levelling against ERM, the gates and Algorithm 2's
mechanism.

**Primary endpoint** (named before any result): the difference of the mean GLS slopes of accuracy on log GDP
between DRO with Human_Perc_OT and DRO with PGD-L2, with the independent replicate (world, D) as the unit;
one-sided Welch test, H1: Human_Perc_OT's slope is lower. Everything else is secondary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from ...fairness.arms import adjusted_for_accuracy, compare_arms
from ...fairness.outcomes import logit_slope
from .datasets import CONTROL, ERM, NOISE, ORACLE
from .stages import AA, BASELINE, OURS

#: the secondary outcomes of the primary pair, and the direction that favours the first arm
SECONDARY = {"bottom": "greater", "gap": "less", "worst_group": "greater", "worst_class": "greater",
             "worst_cue_group": "greater", "accuracy": "greater"}
OUTCOMES = ("bottom", "top", "gap", "worst_group", "worst_class", "worst_cue_group")


def models_table(results: list[dict]) -> pd.DataFrame:
    """One row per sampled model: arm, replicate, seed, beta, its p, accuracy, the cue's reliance, the outcomes."""
    rows = []
    for r in results:
        rel = list((r.get("reliance") or {}).values())
        rows.append({"arm": r["arm"], "replicate": r["replicate"], "seed": r["seed"], "beta": r["slope"]["beta"],
                     "p": r["slope"]["p"], "F": r["slope"]["F"], "accuracy": r["accuracy"],
                     "reliance": rel[-1] if rel else None, **{k: r["outcomes"].get(k) for k in OUTCOMES}})
    return pd.DataFrame(rows)


def _mean_ci(v) -> tuple[float | None, float | None, float | None]:
    from scipy import stats

    v = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return None, None, None
    if v.size < 2:
        return float(v.mean()), None, None
    ci = stats.ttest_1samp(v, 0).confidence_interval(0.95)
    return float(v.mean()), float(ci.low), float(ci.high)


def arm_summary(table: pd.DataFrame, arm: str) -> dict:
    """D-level means of an arm: each replicate's mean over its models is one observation."""
    t = table[table.arm == arm]
    out: dict[str, Any] = {"models": int(len(t)), "replicates": int(t.replicate.nunique()),
           "significant_share": float((t.p < 0.05).mean()), "beta_sd": float(t.beta.std(ddof=1))}
    for col in ("beta", "accuracy", "reliance", *OUTCOMES):
        d = t.groupby("replicate")[col].mean().to_numpy(dtype=float) if t[col].notna().any() else []
        mean, lo, hi = _mean_ci(d)
        out.update({f"{col}_mean": mean, f"{col}_ci_low": lo, f"{col}_ci_high": hi})
    out["beta_replicate_means"] = [float(v) for v in t.groupby("replicate").beta.mean()]
    return out


def levelling(table: pd.DataFrame, arm: str) -> dict:
    """Against ERM, paired by replicate: the change of the bottom and top quintile accuracy and of the gap
    (bottom up: levelling up; top down: levelling down)."""
    d = table.groupby(["arm", "replicate"])[["bottom", "top", "gap"]].mean()
    if arm not in d.index.get_level_values(0) or ERM not in d.index.get_level_values(0):
        return {}
    diff = (d.loc[arm] - d.loc[ERM]).dropna()
    out = {}
    for col, name in (("bottom", "bottom_change"), ("top", "top_change"), ("gap", "gap_change")):
        mean, lo, hi = _mean_ci(diff[col].to_numpy())
        out.update({name: mean, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    return out


def comparison_pairs(families: list[str], arms: list[str]) -> list[tuple[str, str]]:
    pairs = [(OURS, BASELINE)] if {OURS, BASELINE} <= set(families) else []
    pairs += [(f, f + CONTROL) for f in families if f + CONTROL in arms] + [(f, ERM) for f in families]
    pairs += [(a, ERM) for a in (ORACLE, NOISE) if a in arms] + ([(OURS, NOISE)] if NOISE in arms else [])
    pairs += [(f, BASELINE) for f in families if f not in (OURS, BASELINE, AA) and BASELINE in families]
    return pairs + ([(AA, OURS)] if AA in arms else [])


def image_level(results: list[dict], test_groups: dict, a: str, b: str) -> dict | None:
    """The image-level logistic model of the two arms' models: the difference of their slopes on the covariate
    (``covariate:is_a``), images clustered by (world, country)."""
    parts = []
    for r in (x for x in results if x["arm"] in (a, b)):
        groups, cov = test_groups[r["replicate"]]
        parts.append(pd.DataFrame({"correct": np.frombuffer(r["correct"].encode(), np.uint8) - 48,
                                   "covariate": cov, "group": [f"{r['replicate']}:{g}" for g in groups],
                                   "is_a": float(r["arm"] == a)}))
    if not parts:
        return None
    return logit_slope(pd.concat(parts, ignore_index=True), by="is_a")


def secondary(table: pd.DataFrame, results, test_groups, a: str, b: str) -> dict:
    """The secondary outcomes of ``a`` against ``b`` (D-level Welch in the direction favouring ``a``) and the
    image-level slope, with Holm's correction over them all."""
    out = {}
    for col, alt in SECONDARY.items():
        if table[col].notna().any():
            w = compare_arms(table, a, b, value=col, alternative=alt).get("d_level_welch")
            if w:
                out[col] = {**w, "alternative": alt}
    il = image_level(results, test_groups, a, b) if test_groups else None
    if il:
        out["image_level_slope"] = {**il, "p": il["p_less"], "alternative": "less"}
    return holm(out)


def holm(tests: dict) -> dict:
    """``tests`` (name -> a test's dict with ``p``) with Holm's correction over every finite ``p``, in place:
    ``p_holm`` and ``significant_holm`` (at 0.05)."""
    keys = [k for k in tests if tests[k].get("p") is not None and np.isfinite(tests[k]["p"])]
    if keys:
        reject, p_holm, _, _ = multipletests([tests[k]["p"] for k in keys], method="holm")
        for k, ph, rj in zip(keys, p_holm, reject):
            tests[k].update(p_holm=float(ph), significant_holm=bool(rj))
    return tests


def algorithm2_summary(alg2: dict) -> dict:
    out = {}
    for f, reps in alg2.items():
        recs = list(reps.values())
        mech = {k: float(np.mean([r["mechanism"][k] for r in recs if isinstance(r["mechanism"].get(k), (int, float))]))
                for k in recs[0]["mechanism"] if isinstance(recs[0]["mechanism"].get(k), (int, float))}
        calls: dict[str, Any] = {k: int(sum(r["calls"][k] for r in recs))
                                 for k in ("attack_calls_run", "attack_calls_saved", "no_attack_needed")}
        needing = calls["attack_calls_run"] + calls["attack_calls_saved"]
        calls["saved_fraction"] = calls["attack_calls_saved"] / needing if needing else None
        out[f] = {"rows_mean": float(np.mean([r["rows"] for r in recs])), "calls": calls, "mechanism": mech,
                  "time_s": float(sum(r["time_s"] for r in recs))}
    return out


def summarize_study(cfg_record: dict, pre: dict, alg2: dict, gate: dict, results: list[dict], families: list[str],
                    arms: list[str], test_groups: dict) -> dict:
    """The whole summary (see the module docstring)."""
    table = models_table(results)
    comparisons = {f"{a} vs {b}": compare_arms(table, a, b) for a, b in comparison_pairs(families, arms)}
    primary = comparisons.get(f"{OURS} vs {BASELINE}", {}).get("d_level_welch")
    stage_times = {"pretrain": float(sum(p["time_s"] for p in pre.values())),
                   **{f"algorithm2 ({f})": v["time_s"] for f, v in algorithm2_summary(alg2).items()},
                   **{f"algorithm3 ({a})": float(sum(r["time_s"] for r in results if r["arm"] == a)) for a in arms}}
    return {
        "config": cfg_record, "arms": {a: {**arm_summary(table, a), **levelling(table, a)} for a in arms},
        "ours": OURS, "other": BASELINE,
        "primary_endpoint": {"name": f"D-level difference of mean GLS slopes, {OURS} minus {BASELINE} (one-sided "
                                     "Welch, H1: lower)", **(primary or {})},
        "secondary": secondary(table, results, test_groups, OURS, BASELINE) if primary else {},
        "comparisons": comparisons, "adjusted_for_accuracy": adjusted_for_accuracy(table, ERM), "gates": gate,
        "pretrained": [{k: v for k, v in p.items() if k not in ("groups", "correct")} for p in pre.values()],
        "algorithm2": algorithm2_summary(alg2), "stage_times_s": stage_times,
        "total_time_s": float(sum(stage_times.values())),
    }


__all__ = ["OUTCOMES", "SECONDARY", "arm_summary", "comparison_pairs", "holm", "image_level", "levelling", "models_table",
           "secondary", "summarize_study"]
