"""The study's page (report.html), its figures, and its answer on the terminal."""

from __future__ import annotations

import pandas as pd

from ...runs.fairness_plots import frontier_plot, regression_plot, slopes_plot
from ...runs.report import Html, esc, table_html, write_report
from .gates import VERDICTS
from .layout import StudyLayout

ARM_COLS = [("beta_mean", "mean slope", 4), ("beta_ci_low", "95% CI low (replicates)", 4),
            ("beta_ci_high", "95% CI high", 4), ("accuracy_mean", "test accuracy", "pct"),
            ("reliance_mean", "cue reliance (intervention)", 3), ("bottom_mean", "bottom-quintile accuracy", "pct"),
            ("gap_mean", "top - bottom quintile", 3), ("worst_group_mean", "worst country (shrunk)", "pct"),
            ("worst_class_mean", "worst class", "pct"), ("worst_cue_group_mean", "worst label x cue group", "pct"),
            ("bottom_change", "bottom vs ERM", 3), ("top_change", "top vs ERM", 3), ("models", "models", 0)]
TEST_COLS = [("difference", "difference", 4), ("ci_low", "95% CI low", 4), ("ci_high", "95% CI high", 4),
             ("t", "t", 2), ("df", "df", 1), ("p", "one-sided p", "g"), ("p_holm", "Holm p", "g")]


def gates_html(g: dict) -> str:
    rows = "".join(f"<tr><th class='m'>{esc(k)}</th><td>{_num(c['value'])}</td><td>{esc(c['rule'])} "
                   f"({c['threshold']:g})</td><td>{esc({True: 'passed', False: 'FAILED', None: 'n/a'}[c['passed']])}</td></tr>"
                   for k, c in g["checks"].items())
    verdict, note = VERDICTS[g["passed"]], f"<p>{esc(g['remeasured'])}.</p>" if g.get("remeasured") else ""
    return (f"<h2>Gates (fixed before Algorithm 3)</h2><p><b>{esc(verdict)}</b></p><table><tr><th>check</th><th>value"
            f"</th><th>rule</th><th></th></tr>{rows}</table>{note}")


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def write_study_report(layout: StudyLayout, summary: dict, plots: list) -> None:
    p = summary["primary_endpoint"]
    parts = [gates_html(summary["gates"]), f"<h2>Primary endpoint</h2><p>{esc(p['name'])}</p>"
             + (table_html({"primary": p}, TEST_COLS) if "difference" in p else "<p>not computable (one replicate)</p>")]
    if summary["secondary"]:
        parts.append("<h2>Secondary outcomes (Holm-corrected together)</h2>" + table_html(summary["secondary"], TEST_COLS))
    comps = {k: c["d_level_welch"] for k, c in summary["comparisons"].items() if c.get("d_level_welch")}
    parts.append("<h2>Slope comparisons (D-level Welch)</h2>" + table_html(comps, TEST_COLS))
    mech = {f: {**d["mechanism"], **d["calls"], "time": d["time_s"]} for f, d in summary["algorithm2"].items()}
    parts.append("<h2>Algorithm 2: what the attacks did to the cue</h2>" + table_html(mech, [
        ("attacked_rows", "rows attacked", 0), ("cue_changed_rate", "cue changed", "pct"),
        ("cue_energy_share", "energy on the cue", "pct"), ("cue_energy_chance", "(chance)", "pct"),
        ("l2_to_original", "L2", 3), ("ssim_distance_to_original", "1-SSIM x1000", "x1000"),
        ("saved_fraction", "saved by k-means", "pct"), ("time", "time (s)", 0)]))
    cfg = summary["config"]
    intro = Html(f"Dataset <code>{esc(cfg['dataset'])}</code>, design <code>{esc(cfg['design'])}</code>; "
                 f"{cfg['dro_seeds']} replicates (each its own world), K = {cfg['models']} models per arm and "
                 f"replicate, arms <code>{esc(cfg['arms'])}</code>. Slope: GLS of per-country test accuracy on log GDP "
                 "with Sigma = diag(1/sqrt(n)).")
    notes = [f"Simulation. {summary['note']}"] if summary.get("simulation") else []
    write_report(layout.root / "report.html", title="imperceptible: fairness study", intro=intro,
                 summary={"methods": summary["arms"]}, plots=plots, grids=[], notes=notes, extra_html=Html("".join(parts)),
                 tables={"Arms (D-level means)": ARM_COLS})


def study_plots(layout: StudyLayout, summary: dict, table: pd.DataFrame, pre0: dict, xlabel: str) -> list:
    sim = bool(summary.get("simulation"))
    arms = list(summary["arms"])
    head = summary["comparisons"].get(f"{summary['ours']} vs {summary['other']}", {})
    return [regression_plot(pd.DataFrame(pre0["groups"]), pre0["slope"], layout.plot("regression_theta0"),
                            title="Pre-trained model of world 1: accuracy per group", xlabel=xlabel, simulation=sim),
            slopes_plot({a: table[table.arm == a].beta.tolist() for a in arms},
                        float(sum(p["slope"]["beta"] for p in summary["pretrained"]) / len(summary["pretrained"])),
                        layout.plot("slopes"), replicate_means={a: summary["arms"][a]["beta_replicate_means"] for a in arms},
                        test=head.get("d_level_welch"), pair=(summary["ours"], summary["other"]) if head else None,
                        simulation=sim, beta0_label=f"pre-trained models (mean of {len(summary['pretrained'])} worlds)"),
            frontier_plot(table, (pre0["accuracy"], pre0["slope"]["beta"]), layout.plot("frontier"), simulation=sim)]


def print_study(s: dict) -> None:
    """The study's answer on the terminal."""
    if s.get("simulation"):
        print(s["note"])
    for r, p in enumerate(s["pretrained"], 1):
        rel = ", ".join(f"{k} {v:.3f}" for k, v in (p.get("reliance") or {}).items())
        print(f"pre-trained model (world {r}): accuracy {p['accuracy']:.4f}, slope {p['slope']['beta']:.4f} "
              f"(p = {p['slope']['p']:.3g})" + (f", reliance {rel}" if rel else ""))
    g = s["gates"]
    print(f"gates: {VERDICTS[g['passed']]}" + (f" ({g['remeasured']})" if g.get("remeasured") else ""))
    for name, c in g["checks"].items():
        print(f"gate {name}: {_num(c['value'])} ({c['rule']}, {c['threshold']:g}): "
              f"{ {True: 'passed', False: 'FAILED', None: 'n/a'}[c['passed']] }")
    for arm, a in s["arms"].items():
        print(f"{arm:26s} mean beta {a['beta_mean']:.4f} (95% CI {_num(a['beta_ci_low'])} .. {_num(a['beta_ci_high'])}), "
              f"accuracy {a['accuracy_mean']:.4f}, reliance {_num(a['reliance_mean'])}, {a['models']} models")
    p = s["primary_endpoint"]
    if "difference" in p:
        print(f"primary: {p['name']}: {p['difference']:+.4f} (95% CI {p['ci_low']:+.4f} .. {p['ci_high']:+.4f}), "
              f"t = {p['t']:.2f}, df = {p['df']:.3g}, p = {p['p']:.3g}")
    for k, v in s["secondary"].items():
        print(f"secondary {k}: {_num(v.get('difference', v.get('estimate')))}, p = {_num(v.get('p'))}, "
              f"Holm p = {_num(v.get('p_holm'))}")
    print("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_times_s"].items()))


__all__ = ["print_study", "study_plots", "write_study_report"]
