"""The protocol's analysis (``--arms protocol``; :mod:`.protocol`): the paired primary, its equivalence test, the
positive control, the secondary outcomes with Holm, the test's size (A/A), the dose-response and the verdict.

* **Primary** (fixed in advance): per world, the mean GLS slope of ``human-perc-ot``'s K models minus that of
  ``pgd-l2``'s; one-sided paired t-test, ``H1``: lower (:func:`~imperceptible.fairness.arms.paired_test`).
* **Equivalence**: TOST on the same world-level differences within ``+-margin``, the paper's effect (its t = 3.852
  between two families of 50 models, ``d = t sqrt(2/50) = 0.770``) in units of our powered run's pooled per-model
  slope SD (:func:`~.protocol.equivalence_margin`).
* **Positive control**: ``positive-control`` against ``pgd-l2``, paired, one-sided: the design's sensitivity.
* **Secondary**, Holm-corrected together: ``human-perc-ot[refined]`` and ``human-perc-ot[paper]`` against
  ``pgd-l2`` (paired slopes), the primary pair's outcomes beside the slope (paired, each in the direction that
  favours ``human-perc-ot``) and the image-level logistic slope.
* **Size**: A/A contrasts by permuting the family labels within worlds over ``human-perc-ot`` and
  ``human-perc-ot-aa`` (:func:`~imperceptible.fairness.arms.aa_permutation`), and the direct A/A contrast.
* **Dose-response**: per lambda in {0, 10, 100} the slope difference against PGD-L2 and the cue's reliance, and
  their trends on ``log10(1 + lambda)`` with world fixed effects (:func:`~imperceptible.fairness.arms.dose_trend`:
  OLS uses the values' sizes, which a rank test such as Page's throws away with only three levels, and the world
  effects take out the largest part of the variation, the world-to-world spread).
* **Verdict** (:func:`verdict`): the protocol's rule, word for word.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...fairness.arms import aa_permutation, dose_trend, paired_test, tost_paired
from .protocol import ProtocolAnalysis
from .stages import AA, BASELINE, DOSE, OURS, PAPER, POSITIVE, REFINED
from .summary import SECONDARY, holm, image_level

VERDICT_NO_REACH = "not testable: no attack reaches the cue in this design"
VERDICT_INSENSITIVE = "not testable: the design cannot see the mechanism even when it is switched on (insensitive)"
VERDICT_SENSITIVE = "the design can see the mechanism when it is switched on"
VERDICT_FIRST_LINK_FAILS = "not testable for this attack: its first link fails"
VERDICT_FIRST_LINK_HOLDS = "testable for this attack: its first link holds"
VERDICT_SUPPORTED = "supported"
VERDICT_EQUIVALENT = "equivalent within the margin"
VERDICT_NOT_SUPPORTED = "not supported (inconclusive: neither an effect nor equivalence shown)"

PRIMARY_NAME = (f"world-level paired difference of mean GLS slopes, {OURS} minus {BASELINE} (one-sided paired t, "
                "H1: lower)")


def _num(v, fmt: str = ".3g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def gate_text(g: dict | None) -> str:
    """``reliance 0.174 (>= 0.15: passed), cue changed 1.17x pgd-l2's (>= 2: FAILED), ...`` of one family's gates."""
    if not g:
        return "gates not measured"
    words = {True: "passed", False: "FAILED", None: "n/a"}
    names = {"pretrained_reliance": ("reliance", ""), "cue_changed_ratio": ("cue changed", f"x {BASELINE}'s"),
             "cue_energy_ratio": ("energy on the cue", f"x {BASELINE}'s")}
    return ", ".join(f"{names.get(k, (k, ''))[0]} {_num(c['value'])}{names.get(k, (k, ''))[1]} "
                     f"(>= {c['threshold']:g}: {words[c['passed']]})" for k, c in g["checks"].items())


def paired_text(a: str, b: str, t: dict | None) -> str:
    """``a minus b +0.0018 (95% CI ...), paired t = 1.48, df 12, one-sided p = 0.92``."""
    if not t:
        return f"{a} minus {b}: not computable (fewer than 2 worlds)"
    side = "one-sided" if t.get("alternative") != "two-sided" else "two-sided"
    return (f"{a} minus {b} {t['difference']:+.4f} (95% CI {t['ci_low']:+.4f} .. {t['ci_high']:+.4f}), paired t = "
            f"{t['t']:.2f}, df {t['df']:g}, {side} p = {_num(t['p'])}")


def verdict(pc_gates: dict | None, pc_test: dict | None, primary_gates: dict | None, primary: dict | None,
            tost: dict | None, *, alpha: float = 0.05) -> dict:
    """The protocol's verdict rule. If the positive control fails its gates: "not testable: no attack reaches the
    cue in this design"; else if the positive control's paired p >= alpha: "not testable: the design cannot see the
    mechanism even when it is switched on (insensitive)"; else, for the primary attack, the mechanism ("not testable
    for this attack: its first link fails (gate values)" where its gates fail) and the claimed effect: "supported"
    when the primary p < alpha, "equivalent within the margin" when the TOST p < alpha, else "not supported
    (inconclusive: neither an effect nor equivalence shown)". Each sentence carries its numbers."""
    out: dict = {"alpha": alpha, "mechanism": None, "effect": None}
    pc_p = pc_test.get("p") if pc_test else None
    if not pc_gates or pc_gates.get("passed") is not True:
        out.update(branch="no-reach", design=f"{VERDICT_NO_REACH} ({POSITIVE}'s gates: {gate_text(pc_gates)})")
    elif pc_p is None or not pc_p < alpha:
        out.update(branch="insensitive", design=f"{VERDICT_INSENSITIVE}: {paired_text(POSITIVE, BASELINE, pc_test)} "
                   f"(not below {alpha:g}), though its gates passed ({gate_text(pc_gates)})")
    else:
        out.update(branch="tested", design=f"{VERDICT_SENSITIVE}: {paired_text(POSITIVE, BASELINE, pc_test)} < "
                   f"{alpha:g}; its gates passed ({gate_text(pc_gates)})")
        link = primary_gates is not None and primary_gates.get("passed") is True
        out["mechanism"] = f"{VERDICT_FIRST_LINK_HOLDS if link else VERDICT_FIRST_LINK_FAILS} ({gate_text(primary_gates)})"
        out["effect"] = _effect(primary, tost, alpha)
    out["sentences"] = [s for s in (out["design"], out["mechanism"], out["effect"]) if s]
    return out


def _effect(primary: dict | None, tost: dict | None, alpha: float) -> str:
    p = primary.get("p") if primary else None
    tp = tost.get("p") if tost else None
    eq = (f"TOST p = {_num(tp)} (margin +-{tost['margin']:.4f}, {tost['ci_level']:.0%} CI {tost['ci_low']:+.4f} .. "
          f"{tost['ci_high']:+.4f})" if tost else "TOST not computable")
    if p is not None and p < alpha:
        return f"{VERDICT_SUPPORTED}: {paired_text(OURS, BASELINE, primary)} < {alpha:g}; {eq}"
    if tp is not None and tp < alpha:
        return f"{VERDICT_EQUIVALENT}: {eq} < {alpha:g}; {paired_text(OURS, BASELINE, primary)}"
    return f"{VERDICT_NOT_SUPPORTED}: {paired_text(OURS, BASELINE, primary)}; {eq}"


def secondary(table: pd.DataFrame, results: list[dict], test_groups: dict) -> dict:
    """The protocol's secondary outcomes (see the module docstring), Holm-corrected together."""
    out = {}
    for fam in (REFINED, PAPER):
        r = paired_test(table, fam, BASELINE)
        if r:
            out[f"{fam} vs {BASELINE}"] = r
    for col, alt in SECONDARY.items():
        r = paired_test(table, OURS, BASELINE, value=col, alternative=alt) if table[col].notna().any() else None
        if r:
            out[col] = r
    il = image_level(results, test_groups, OURS, BASELINE) if test_groups else None
    if il:
        out["image_level_slope"] = {**il, "p": il["p_less"], "alternative": "less"}
    return holm(out)


def dose_response(table: pd.DataFrame) -> dict | None:
    """Per lambda the slope difference against PGD-L2 (paired, one-sided) and the mean cue reliance, and both
    trends on ``log10(1 + lambda)`` with world fixed effects (one-sided: falling with lambda)."""
    if not set(DOSE) <= set(table.arm):
        return None
    levels = {arm: {"lambda": lam, "slope_vs_pgd": paired_test(table, arm, BASELINE),
                    "reliance_mean": float(table[table.arm == arm].reliance.mean())
                    if table[table.arm == arm].reliance.notna().any() else None} for arm, lam in DOSE.items()}
    return {"levels": levels, "slope_trend": dose_trend(table, DOSE, reference=BASELINE),
            "reliance_trend": dose_trend(table, DOSE, value="reliance") if table.reliance.notna().any() else None}


def protocol_analysis(table: pd.DataFrame, results: list[dict], test_groups: dict, gate: dict,
                      analysis: ProtocolAnalysis, record: dict) -> dict:
    """The protocol's part of ``summary.json`` (see the module docstring); ``record`` describes the protocol file."""
    a = analysis
    primary = paired_test(table, OURS, BASELINE)
    tost = tost_paired(table, OURS, BASELINE, a.margin, alpha=a.alpha)
    pc = paired_test(table, POSITIVE, BASELINE)
    families = gate.get("families") or {}
    return {
        "protocol": record,
        "primary_endpoint": {"name": PRIMARY_NAME, **(primary or {})},
        "equivalence": tost,
        "positive_control": {"arm": POSITIVE, "test": pc, "gates": families.get(POSITIVE)},
        "secondary": secondary(table, results, test_groups) if primary else {},
        "size": aa_permutation(table, OURS, AA, permutations=a.permutations, seed=a.seed, alpha=a.alpha),
        "dose_response": dose_response(table),
        "verdict": verdict(families.get(POSITIVE), pc, families.get(OURS, gate), primary, tost, alpha=a.alpha),
    }


__all__ = ["PRIMARY_NAME", "VERDICT_EQUIVALENT", "VERDICT_FIRST_LINK_FAILS", "VERDICT_FIRST_LINK_HOLDS",
           "VERDICT_INSENSITIVE", "VERDICT_NOT_SUPPORTED", "VERDICT_NO_REACH", "VERDICT_SENSITIVE", "VERDICT_SUPPORTED",
           "dose_response", "gate_text", "protocol_analysis", "secondary", "paired_text", "verdict"]
