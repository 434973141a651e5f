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
    when = "rule fixed before Algorithm 3; " + g["schedule"] if g.get("schedule") else "fixed before Algorithm 3"
    return (f"<h2>Gates ({esc(when)})</h2><p><b>{esc(verdict)}</b></p><table><tr><th>check</th><th>value"
            f"</th><th>rule</th><th></th></tr>{rows}</table>{note}{family_gates_html(g)}")


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def family_gates_html(g: dict) -> str:
    """Every Human_Perc_OT-type family's gates against PGD-L2 (one row per family)."""
    fams = g.get("families") or {}
    if not fams:
        return ""
    keys = list(next(iter(fams.values()))["checks"])
    word = {True: "passed", False: "FAILED", None: "n/a"}
    rows = "".join(f"<tr><th class='m'>{esc(f)}</th>" + "".join(
        f"<td>{_num(x['checks'][k]['value'])} ({word[x['checks'][k]['passed']]})</td>" for k in keys)
        + f"<td>{word[x['passed']]}</td></tr>" for f, x in fams.items())
    head = "".join(f"<th>{esc(k)} (&gt;= {fams[next(iter(fams))]['checks'][k]['threshold']:g})</th>" for k in keys)
    note = f"<p>{esc(g['families_added'])}.</p>" if g.get("families_added") else ""
    return f"<h3>Gates of every family against pgd-l2</h3><table><tr><th>family</th>{head}<th>all</th></tr>{rows}</table>{note}"


PAIRED_COLS = [("difference", "difference", 4), ("ci_low", "95% CI low", 4), ("ci_high", "95% CI high", 4),
               ("t", "t", 2), ("df", "df", 1), ("p", "p (H1 as named)", "g"), ("p_holm", "Holm p", "g")]


def protocol_html(s: dict) -> str:
    """The protocol's sections: the verdict, the primary, equivalence, positive control, size and dose-response."""
    v, proto = s["verdict"], s.get("protocol") or {}
    parts = [f"<h2>Verdict (the protocol's rule)</h2><p>Protocol <code>{esc(proto.get('file'))}</code>, sha256 "
             f"<code>{esc(proto.get('sha256'))}</code></p><ul>" + "".join(f"<li>{esc(x)}</li>" for x in v["sentences"])
             + "</ul>"]
    tests = {"primary: " + s["primary_endpoint"].get("name", ""): s["primary_endpoint"],
             "positive control vs pgd-l2": (s.get("positive_control") or {}).get("test") or {}}
    parts.append("<h2>Primary and positive control (paired by world)</h2>" + table_html(tests, PAIRED_COLS))
    e = s.get("equivalence")
    if e:
        parts.append(f"<h2>Equivalence (TOST)</h2><p>margin +-{e['margin']:.4f}; {e['ci_level']:.0%} CI "
                     f"{e['ci_low']:+.4f} .. {e['ci_high']:+.4f}; p (larger of the two one-sided) {e['p']:.3g}: "
                     f"{'equivalent' if e['equivalent'] else 'equivalence not shown'}</p>")
    z = s.get("size")
    if z:
        d = z.get("direct") or {}
        parts.append(f"<h2>The test's size (A/A)</h2><p>{z['permutations']} contrasts (family labels of {esc(z['a'])} "
                     f"and {esc(z['b'])} permuted within {z['worlds']} worlds): false-positive rate at {z['alpha']:g} "
                     f"{z['rate']:.3f} (95% CI {z['rate_ci_low']:.3f} .. {z['rate_ci_high']:.3f}, {esc(z['interval'])})"
                     + (f"; direct A/A {d['difference']:+.4f}, two-sided p {d['p']:.3g}" if d else "") + "</p>")
    dr = s.get("dose_response")
    if dr:
        rows = {f"{a} (lambda {x['lambda']:g})": {**(x["slope_vs_pgd"] or {}), "reliance": x["reliance_mean"]}
                for a, x in dr["levels"].items()}
        trend = {k: dr[k] for k in ("slope_trend", "reliance_trend") if dr.get(k)}
        parts.append("<h2>Dose-response</h2>" + table_html(rows, [("difference", "slope minus pgd-l2", 4),
                     ("p", "one-sided p", "g"), ("reliance", "cue reliance", 3)]) + table_html(trend, [
                     ("slope", "trend per log10(1 + lambda)", 4), ("ci_low", "95% CI low", 4),
                     ("ci_high", "95% CI high", 4), ("t", "t", 2), ("df", "df", 0), ("p", "one-sided p", "g")]))
    return "".join(parts)


def write_study_report(layout: StudyLayout, summary: dict, plots: list) -> None:
    p = summary["primary_endpoint"]
    parts = [protocol_html(summary)] if summary.get("verdict") else []
    parts += [gates_html(summary["gates"]), f"<h2>Primary endpoint</h2><p>{esc(p['name'])}</p>"
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
    print(f"gates: {VERDICTS[g['passed']]}" + (f" ({g['remeasured']})" if g.get("remeasured") else "")
          + (f" ({g['schedule']})" if g.get("schedule") else ""))
    for name, c in g["checks"].items():
        print(f"gate {name}: {_num(c['value'])} ({c['rule']}, {c['threshold']:g}): "
              f"{ {True: 'passed', False: 'FAILED', None: 'n/a'}[c['passed']] }")
    for arm, a in s["arms"].items():
        print(f"{arm:26s} mean beta {a['beta_mean']:.4f} (95% CI {_num(a['beta_ci_low'])} .. {_num(a['beta_ci_high'])}), "
              f"accuracy {a['accuracy_mean']:.4f}, reliance {_num(a['reliance_mean'])}, {a['models']} models")
    for f, x in (g.get("families") or {}).items():
        print(f"gates of {f} against pgd-l2: " + ", ".join(f"{k} {_num(c['value'])}" for k, c in x["checks"].items())
              + f": {({True: 'passed', False: 'FAILED', None: 'n/a'})[x['passed']]}")
    p = s["primary_endpoint"]
    if "difference" in p:
        print(f"primary: {p['name']}: {p['difference']:+.4f} (95% CI {p['ci_low']:+.4f} .. {p['ci_high']:+.4f}), "
              f"t = {p['t']:.2f}, df = {p['df']:.3g}, p = {p['p']:.3g}")
    if s.get("verdict"):
        print_protocol(s)
    for k, v in s["secondary"].items():
        print(f"secondary {k}: {_num(v.get('difference', v.get('estimate')))}, p = {_num(v.get('p'))}, "
              f"Holm p = {_num(v.get('p_holm'))}")
    print("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_times_s"].items()))


def print_protocol(s: dict) -> None:
    """The protocol's numbers and its verdict on the terminal."""
    e, z, dr = s.get("equivalence"), s.get("size"), s.get("dose_response")
    if e:
        print(f"equivalence (TOST, margin +-{e['margin']:.4f}): p = {e['p']:.3g}, {e['ci_level']:.0%} CI "
              f"{e['ci_low']:+.4f} .. {e['ci_high']:+.4f}")
    if z:
        d = z.get("direct") or {}
        print(f"size (A/A, {z['permutations']} permuted contrasts): false-positive rate {z['rate']:.3f} (95% CI "
              f"{z['rate_ci_low']:.3f} .. {z['rate_ci_high']:.3f})"
              + (f"; direct A/A {d['difference']:+.4f}, two-sided p = {d['p']:.3g}" if d else ""))
    for k in ("slope_trend", "reliance_trend"):
        t = (dr or {}).get(k)
        if t:
            print(f"dose-response {k.replace('_', ' ')} per log10(1 + lambda): {t['slope']:+.4f} (95% CI "
                  f"{t['ci_low']:+.4f} .. {t['ci_high']:+.4f}), t = {t['t']:.2f}, df = {t['df']}, one-sided p = {t['p']:.3g}")
    for line in s["verdict"]["sentences"]:
        print(f"verdict: {line}")


__all__ = ["family_gates_html", "print_protocol", "print_study", "protocol_html", "study_plots", "write_study_report"]
