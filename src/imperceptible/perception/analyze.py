"""``imperceptible study analyze``: what people answered, against chance, between methods, and against the
automatic judges.

Participants whose catch-trial accuracy is below ``CATCH_RULE`` (3 of 4, i.e. 75 %) are excluded, and so are
answer files that miss trials; the report lists both with the reason. Then, per method:

* **2AFC**: the detection rate (share of trials where the modified image was picked) with its Wilson
  interval, and the exact binomial test against chance (1/2, one-sided);
* **single**: the hit rate (modified images called modified) with its interval, the false-alarm rate on
  the originals, d' (log-linear correction) and a two-proportion test of hits against false alarms;
* **pairwise**: two-proportion z-tests between methods, Holm-corrected;
* **judges**: for each automatic judge the study recorded (1 - SSIM, LPIPS, DISTS, FSIM ...): Spearman's
  correlation between the judge's distance and the human detection rate over image x method cells (bootstrap
  interval over images), and the mean of the per-image correlations across methods (bootstrap interval).
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats as sps  # noqa: E402

from ..config import option  # noqa: E402
from ..errors import MSG_ANALYZE_NO_PARTICIPANTS, MSG_SAME_ANSWERS, AnswersError  # noqa: E402
from ..fileio import atomic_write_json, save_figure  # noqa: E402
from ..runs.report import Html, esc, table_html, write_report  # noqa: E402
from ..runs.rundir import output_folder  # noqa: E402
from .answers import read_answers  # noqa: E402
from .folders import ANALYSIS, ANALYSIS_FORMAT  # noqa: E402
from .make import load_study  # noqa: E402
from .simulate import check_rate  # noqa: E402
from .stats import above_chance, d_prime, pairwise, spearman_ci, wilson  # noqa: E402

CATCH_RULE = 0.75


def _correct(trial: dict, choice: str, design: str) -> bool:
    if design == "2afc":
        return choice == trial["modified"]
    return (choice == "yes") == bool(trial["modified"])


def load_answers(study: dict, paths: list) -> tuple[pd.DataFrame, list[dict]]:
    """Every checked answer as a row, and one record per file (included or excluded, and why)."""
    trials = {t["id"]: t for t in study["trials"]}
    design = study["config"]["design"]
    rows, people = [], []
    seen: dict[str, object] = {}
    for p in paths:
        data = read_answers(p, study_hash=study["hash"], trials=trials, design=design)
        key = json.dumps(data["answers"], sort_keys=True)  # the same answers, trial for trial and time for time
        if key in seen:
            raise AnswersError.of(MSG_SAME_ANSWERS, first=seen[key], second=p)
        seen[key] = p
        got = {a["trial"]: a for a in data["answers"]}
        catch = [t for t in study["trials"] if t["kind"] == "catch"]
        catch_ok = [_correct(t, got[t["id"]]["choice"], design) for t in catch if t["id"] in got]
        rec = {"file": str(p), "participant": data.get("participant") or "", "answered": len(got),
               "catch_correct": int(sum(catch_ok)), "catch_trials": len(catch), "included": True, "reason": ""}
        if len(got) < len(trials):
            rec.update(included=False, reason=f"answered {len(got)} of {len(trials)} trials")
        elif catch and np.mean(catch_ok) < CATCH_RULE:
            rec.update(included=False, reason=f"{sum(catch_ok)} of {len(catch)} catch trials right "
                                              f"(rule: at least {CATCH_RULE:.0%})")
        people.append(rec)
        for tid, a in got.items():
            t = trials[tid]
            rows.append({"file": str(p), "included": rec["included"], "trial": tid, "kind": t["kind"],
                         "method": t["method"], "image": t["image"], "choice": a["choice"], "rt_ms": a["rt_ms"],
                         "correct": _correct(t, a["choice"], design),
                         "said_modified": a["choice"] == "yes" if design == "single" else None})
    return pd.DataFrame(rows), people


@dataclass(frozen=True)
class AnalyzeConfig:
    """``imperceptible study analyze``'s settings."""

    alpha: float = option(0.05, "significance level of the tests", type=float)

    def __post_init__(self) -> None:
        check_rate("alpha", self.alpha, closed=False)


def analyze_study(study_dir: str | Path, answer_paths: list, *, out: str | Path | None = None,
                  alpha: float = AnalyzeConfig.alpha) -> dict:
    """Analyse the answers files of the study in ``study_dir``; writes ``summary.json``, plots and
    ``report.html`` into ``out`` (default ``STUDY/analysis``: an empty folder or an analysis folder, whose own
    files are replaced; see :mod:`.folders`) and returns the summary."""
    study = load_study(study_dir)
    design = study["config"]["design"]
    df, people = load_answers(study, list(answer_paths))
    inc = df[df.included] if len(df) else df
    n_inc = sum(p["included"] for p in people)
    if n_inc == 0:
        raise AnswersError.of(MSG_ANALYZE_NO_PARTICIPANTS, n=len(people))
    methods = study["methods"]
    per_method: dict[str, dict] = {}
    counts = {}
    fa = None
    if design == "single":
        orig = inc[inc.kind == "original"]
        fa = wilson(int(orig.said_modified.sum()), len(orig), alpha=alpha)
    for m in methods:
        t = inc[(inc.kind == "test") & (inc.method == m)]
        if design == "2afc":
            k, n = int(t.correct.sum()), len(t)
            r = wilson(k, n, alpha=alpha)
            r["p_above_chance"] = above_chance(k, n)
        else:
            k, n = int(t.said_modified.sum()), len(t)
            r = wilson(k, n, alpha=alpha)
            f = typing.cast(dict, fa)  # the single design's false alarms, measured above
            r["false_alarm_rate"] = f["rate"]
            r["d_prime"] = d_prime(k, n, f["k"], f["n"])
            r["p_above_false_alarms"] = (float(sps.norm.sf(_z(k, n, f["k"], f["n"]))) if n and f["n"] else None)
        r["median_rt_ms"] = float(t.rt_ms.median()) if n else None
        per_method[m] = r
        counts[m] = (k, n)
    catch = inc[inc.kind == "catch"]
    summary = {"format": ANALYSIS_FORMAT, "design": design, "chance": 0.5 if design == "2afc" else None, "participants": people,
               "included": n_inc, "excluded": len(people) - n_inc, "catch_rule": f"at least {CATCH_RULE:.0%} of the "
               "catch trials right, and every trial answered", "methods": per_method,
               "catch": wilson(int(catch.correct.sum()), len(catch), alpha=alpha),
               "false_alarms": fa, "pairwise": pairwise(counts, alpha=alpha),
               "judges": judge_agreement(study, inc, design), "study": study["hash"],
               "simulated": any("simulated" in str(p.get("participant", "")) for p in people)}
    out = Path(out) if out else Path(study_dir) / "analysis"
    with output_folder(out, ANALYSIS):
        atomic_write_json(out / "summary.json", summary)
        _report(out, summary)
    return summary


def _z(k1, n1, k2, n2) -> float:
    p1, p2, p = k1 / n1, k2 / n2, (k1 + k2) / (n1 + n2)
    se = (p * (1 - p) * (1 / n1 + 1 / n2)) ** 0.5
    return (p1 - p2) / se if se > 0 else 0.0


def judge_agreement(study: dict, inc: pd.DataFrame, design: str) -> dict:
    """Per judge: Spearman between its distance and the human detection rate, over image x method cells and
    per image (see the module docstring)."""
    tests = [t for t in study["trials"] if t["kind"] == "test"]
    judges = sorted({k for t in tests for k in t["judges"]} - {"ssim"})
    if not tests or not len(inc):
        return {}
    score = inc[inc.kind == "test"].groupby("trial")["correct" if design == "2afc" else "said_modified"].mean()
    cells = pd.DataFrame([{"trial": t["id"], "image": t["image"], "method": t["method"], **t["judges"]} for t in tests])
    cells["human"] = cells.trial.map(score)
    out = {}
    for j in judges:
        c = cells.dropna(subset=[j, "human"])
        pooled = spearman_ci(c[j].to_numpy(), c.human.to_numpy(), c.image.to_numpy())
        per_image = [sps.spearmanr(g[j], g.human).statistic for _, g in c.groupby("image")
                     if len(g) >= 3 and np.ptp(g[j]) > 0 and np.ptp(g.human) > 0]
        mean_rho = None
        if len(per_image) >= 2:
            boot = np.random.RandomState(0).choice(per_image, (2000, len(per_image)), replace=True).mean(1)
            mean_rho = {"rho": float(np.mean(per_image)), "ci_low": float(np.quantile(boot, 0.025)),
                        "ci_high": float(np.quantile(boot, 0.975)), "images": len(per_image)}
        out[j] = {"pooled": pooled, "per_image_mean": mean_rho}
    return out


def _report(out: Path, s: dict) -> Path:
    methods = list(s["methods"])
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(methods) + 1.8))
    rates = [s["methods"][m]["rate"] or 0 for m in methods]
    lo = [r - (s["methods"][m]["ci_low"] or 0) for r, m in zip(rates, methods)]
    hi = [(s["methods"][m]["ci_high"] or 0) - r for r, m in zip(rates, methods)]
    ax.barh(range(len(methods)), rates, xerr=[lo, hi], color="#3b7dd8", alpha=0.8, capsize=3)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    if s["design"] == "2afc":
        ax.axvline(0.5, ls="--", color="crimson", label="chance (1/2)")
        ax.set_xlabel("detection rate: modified image picked (95% Wilson interval)")
    else:
        ax.axvline(s["false_alarms"]["rate"] or 0, ls="--", color="crimson", label="false alarms on originals")
        ax.set_xlabel("hit rate: modified image called modified (95% Wilson interval)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    title = f"{s['included']} participants" + (" [SIMULATED participants]" if s["simulated"] else "")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    plot = out / "detection.png"
    try:
        save_figure(fig, plot, dpi=110)
    finally:
        plt.close(fig)
    cols = [("rate", "detection rate" if s["design"] == "2afc" else "hit rate", "pct"), ("ci_low", "95% CI low", "pct"),
            ("ci_high", "95% CI high", "pct"), ("n", "trials", 0)]
    cols += ([("p_above_chance", "p (above chance)", "g")] if s["design"] == "2afc"
             else [("false_alarm_rate", "false alarms", "pct"), ("d_prime", "d'", 2), ("p_above_false_alarms", "p", "g")])
    cols += [("median_rt_ms", "median RT (ms)", 0)]
    pw = {f"{r['a']} vs {r['b']}": r for r in s["pairwise"]}
    jd = {}
    for j, v in s["judges"].items():
        pooled, per = v.get("pooled") or {}, v.get("per_image_mean") or {}
        jd[j] = {"rho": pooled.get("rho"), "lo": pooled.get("ci_low"), "hi": pooled.get("ci_high"),
                 "rho_i": per.get("rho"), "lo_i": per.get("ci_low"), "hi_i": per.get("ci_high")}
    people = "".join(f"<tr><td class='m'>{esc(p['participant'] or '(no code)')}</td><td>{esc(Path(p['file']).name)}</td>"
                     f"<td>{p['catch_correct']}/{p['catch_trials']}</td>"
                     f"<td>{'yes' if p['included'] else 'no: ' + esc(p['reason'])}</td></tr>"
                     for p in s["participants"])
    extra = Html("<h2>Pairwise (two-proportion z-tests, Holm-corrected)</h2>"
                 + table_html(pw, [("difference", "difference", 3), ("z", "z", 2), ("p", "p", "g"),
                                   ("p_holm", "p (Holm)", "g")])
                 + "<h2>Automatic judges against people (Spearman; 95% bootstrap intervals over images)</h2>"
                 + table_html(jd, [("rho", "rho, all cells", 3), ("lo", "low", 3), ("hi", "high", 3),
                                   ("rho_i", "mean rho per image", 3), ("lo_i", "low", 3), ("hi_i", "high", 3)])
                 + "<h2>Participants</h2><table><tr><th>code</th><th>file</th><th>catch</th><th>included</th></tr>"
                 + people + "</table>")
    notes = [f"Exclusion rule: {s['catch_rule']}."]
    if s["simulated"]:
        notes.insert(0, "SIMULATION: these answers come from simulated participants, not people.")
    return write_report(out / "report.html", title="imperceptible: perceptibility study",
                        intro=Html(f"Design <code>{esc(s['design'])}</code>; {s['included']} participants included, "
                                   f"{s['excluded']} excluded; study {esc(s['study'][:12])}."),
                        summary={"methods": s["methods"]}, plots=[plot], grids=[], notes=notes, extra_html=extra,
                        tables={"Per method": cols})


def print_analysis(s: dict) -> None:
    print(f"{s['included']} participants included, {s['excluded']} excluded ({s['catch_rule']})"
          + ("  [SIMULATED]" if s["simulated"] else ""))
    for m, r in s["methods"].items():
        extra = (f"p(above chance) = {r['p_above_chance']:.3g}" if s["design"] == "2afc"
                 else f"d' = {r['d_prime']:.2f}, false alarms {100 * (r['false_alarm_rate'] or 0):.1f}%")
        print(f"{m:32s} {100 * r['rate']:5.1f}% [{100 * r['ci_low']:5.1f}, {100 * r['ci_high']:5.1f}] of {r['n']:4d}  {extra}")
    for j, v in s["judges"].items():
        p = v.get("pooled")
        if p:
            print(f"judge {j:24s} Spearman rho = {p['rho']:+.3f} [{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]")


__all__ = ["CATCH_RULE", "analyze_study", "judge_agreement", "load_answers", "print_analysis"]
