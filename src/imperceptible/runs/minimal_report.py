"""The report of ``bench minimal``: per judge the medians, optimality and paired tests, the decision, the anytime
curves and the robust-accuracy curves, and image grids."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from ..costs.metrics import METRICS  # noqa: E402
from ..fileio import save_figure  # noqa: E402
from .grids import image_grid  # noqa: E402
from .plots import method_style  # noqa: E402
from .report import Html, esc, write_report  # noqa: E402
from .rundir import RunDir, safe_name  # noqa: E402


def _cell(v, show: float = 1.0, digits: int = 3) -> str:
    """``v x show`` to ``digits`` decimals; a value that would round to 0 without being 0 in significant digits (a
    change far below a judge's resolution reads 1e-5, not 0.000)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<span class='na'>n/a</span>"
    x = v * show
    return f"{x:.2g}" if x != 0 and abs(x) < 0.5 * 10 ** -digits else f"{x:.{digits}f}"


#: judges per table of :func:`judge_table` (each judge takes three columns: more would run off a page)
JUDGES_PER_TABLE = 5


def judge_table(summary: dict) -> str:
    """One row per method; per judge its median (x the display factor; † where it optimises the judge), its
    optimality, and the Holm-corrected paired p against ours (peers of the decision). The judges are split over
    tables of :data:`JUDGES_PER_TABLE` so that each fits a page's width."""
    m = summary["minimal"]["judges"]
    keys = list(m)
    dec = summary["minimal"].get("decision") or {"judges": {}}
    methods = list(summary["methods"])
    tables = []
    for start in range(0, len(keys), JUDGES_PER_TABLE):
        part = keys[start:start + JUDGES_PER_TABLE]
        head = "".join(f"<th colspan='3'>{esc(METRICS[k].label)}</th>" for k in part)
        sub = "".join("<th>median</th><th>optimality</th><th>p (Holm)</th>" for _ in part)
        body = []
        for meth in methods:
            cells = []
            for k in part:
                r = m[k]["methods"].get(meth, {})
                p = ((dec["judges"].get(k) or {}).get("peers", {}).get(meth) or {}).get("p_holm")
                cells.append(f"<td>{_cell(r.get('median'), METRICS[k].show)}{'†' if r.get('optimises') else ''}</td>"
                             f"<td>{_cell(r.get('optimality'))}</td><td>{'' if p is None else _p(p)}</td>")
            body.append(f"<tr><th class='m'>{esc(meth)}</th>{''.join(cells)}</tr>")
        tables.append(f"<table><tr><th rowspan='2'>method</th>{head}</tr><tr>{sub}</tr>{''.join(body)}</table>")
    return "".join(tables)


def _p(p) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def _ci(ci) -> str:
    return "n/a" if not ci or ci[0] is None else f"{ci[0]:+.3f} .. {ci[1]:+.3f}"


def decision_html(summary: dict, key: str = "decision", title: str = "The decision") -> str:
    """Per judge ours does not optimise: held or not, and against which peers it falls short and by how much."""
    dec = summary["minimal"].get(key)
    if not dec:
        return ""
    ours = summary.get("ours", "ours")
    items = []
    for k, r in dec["judges"].items():
        lab = esc(METRICS[k].label)
        if r["held"]:
            items.append(f"<li>{lab}: <b>held</b> (optimality {_cell(r['ours_optimality'])}, the highest; every interval "
                         f"of the difference above 0; every tested peer Holm p &lt; {dec['alpha']})</li>")
            continue
        untested = f"not tested (success below {dec['min_success']:.0%})"
        short = "; ".join(f"{esc(p)}: optimality difference {v['optimality_difference']:+.3f} (95% CI "
                          f"{_ci(v['difference_ci'])}), Holm p {_p(v['p_holm']) if v['tested'] else untested}, "
                          f"median ratio {_cell(v['median_ratio'])}" for p, v in r["short_of"].items())
        items.append(f"<li>{lab}: <b>not held</b> (optimality {_cell(r['ours_optimality'])}"
                     f"{'' if r['highest'] else ', not the highest'}); short of {short}</li>")
    return (f"<h2>{esc(title)}: {esc(ours)} held on {len(dec['held'])} of {len(dec['judges'])} judges</h2>"
            f"<p>Rule: the highest optimality with a bootstrap 95% interval of the difference above 0 against each peer, and "
            f"a one-sided paired Wilcoxon test on log(ours / peer), Holm-corrected over {dec['tests']} judge x peer tests, "
            f"p &lt; {dec['alpha']} against every peer that fooled at least {dec['min_success']:.0%} of the images.</p>"
            f"<ul>{''.join(items)}</ul>")


def visibility_html(summary: dict) -> str:
    """Per method, the share of the images it fooled whose change each human-vision judge predicts to be below its
    visibility threshold, with its bootstrap interval (how often a person would not notice)."""
    vis = {m: r["visibility"] for m, r in summary["methods"].items() if r.get("visibility")}
    keys = sorted({k for v in vis.values() for k in v}, key=list(METRICS).index)
    if not keys:
        return ""
    head = "".join(f"<th>{esc(METRICS[k].label)} &lt; {METRICS[k].threshold:g}</th>" for k in keys)
    body = []
    for m, v in vis.items():
        cells = "".join(f"<td>{_pct(v[k])}</td>" if k in v else "<td></td>" for k in keys)
        body.append(f"<tr><th class='m'>{esc(m)}</th>{cells}</tr>")
    sources = "".join(f"<li>{esc(METRICS[k].label)}: {esc(METRICS[k].threshold_source)}</li>" for k in keys)
    return ("<h2>Would a person notice? Share of fooled images below each judge's visibility threshold</h2>"
            f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table><p>95% intervals in brackets: the "
            "percentile bootstrap, then the exact binomial (Clopper-Pearson), which stays open when every image is "
            "on one side (the bootstrap's then collapses to one point). "
            f"Thresholds and their sources:</p><ul>{sources}</ul>")


def _pct(r: dict) -> str:
    if not r.get("used"):
        return "<span class='na'>n/a</span>"
    exact = f"; exact {100 * r['exact_low']:.0f}-{100 * r['exact_high']:.0f}" if "exact_low" in r else ""
    return f"{100 * r['share']:.0f}% [{100 * r['low']:.0f}, {100 * r['high']:.0f}{exact}] (n {r['used']})"


def anytime_plot(summary: dict, path: Path) -> Path | None:
    """Each judge's median against the passes spent, one panel per judge, one line per method; none when no median
    exists at any checkpoint (every method fooled at most half of the images there)."""
    any_ = summary["minimal"]["anytime"]
    judged = {k for curve in any_.values() for point in curve.values() for k, v in point.items() if v is not None}
    keys = [k for k in summary["minimal"]["judges"] if k in judged]  # the anytime judges (a run may judge fewer)
    if not keys:
        return None
    ticks = sorted({int(c) for curve in any_.values() for c in curve})  # the checkpoints, labelled plainly
    fig, axes = _panels(keys)
    for ax, k in zip(axes.flat, keys):
        for j, (meth, curve) in enumerate(any_.items()):
            xs = [int(c) for c in curve if curve[c].get(k) is not None]
            ys = [curve[str(c)][k] * METRICS[k].show for c in xs]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=meth, **method_style(j, meth))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(METRICS[k].label, fontsize=9)
        ax.set_xlabel("passes per image", fontsize=8)
    return _finish(fig, axes, keys, path,
                   "Anytime: median judge value of the best adversarial queried within a budget (lower is better)")


def _panels(keys: list[str], cols: int = 4):
    """One panel per judge, four to a row."""
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    return fig, axes


def _legend_below(fig, axes, n_panels: int, title: str):
    """Grid lines on the first ``n_panels`` panels, the others off, one legend below every panel (every method once,
    whichever panel it has a line in), the title; the panels are laid out above the legend's measured height, so that
    no row of the legend covers a panel's tick labels however many methods it lists. Returns the legend."""
    for ax in list(axes.flat)[:n_panels]:
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n_panels:]:
        ax.axis("off")
    legend: dict = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    handles, labels = list(legend.values()), list(legend)
    leg = fig.legend(handles, labels, loc="lower center", ncol=max(1, min(6, len(labels))), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.canvas.draw()
    bottom = leg.get_window_extent().y1 / fig.bbox.height + 0.01
    fig.tight_layout(rect=(0, bottom, 1, 0.96))
    return leg


def _finish(fig, axes, keys: list[str], path: Path, title: str) -> Path:
    """The legend and title placed (``_legend_below``); saved to ``path``."""
    _legend_below(fig, axes, len(keys), title)
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def robustness_plot(rows: dict[str, list[dict]], keys: list[str], path: Path) -> Path | None:
    """Per judge, the share of correctly classified images still not fooled at each distance (AttackBench's
    robust-accuracy curves; the area above the ensemble's is what optimality measures); none without a judge (no
    image classified correctly, so nothing was judged)."""
    if not keys:
        return None
    fig, axes = _panels(keys)
    for ax, k in zip(axes.flat, keys):
        for j, (meth, rs) in enumerate(rows.items()):
            correct = [r for r in rs if r["clean_correct"]]
            d = np.sort([r["metrics"][k] * METRICS[k].show for r in correct if r["success"] and k in r["metrics"]])
            if len(d):
                ax.step(d, 1 - np.arange(1, len(d) + 1) / len(correct), where="post", label=meth,
                        **method_style(j, meth))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels at powers of ten only: no overlap
        ax.set_title(METRICS[k].label, fontsize=9)
        ax.set_ylabel("not yet fooled", fontsize=8)
    return _finish(fig, axes, keys, path,
                   "Share of images each attack has not fooled within a judge value (lower curves are better)")


def draw_figures(summary: dict, rows: dict[str, list[dict]], folder: Path, prefix: str = "") -> list[Path]:
    """A run's anytime and robust-accuracy figures into ``folder`` (those it has data for); the files written."""
    anytime = anytime_plot(summary, folder / f"{prefix}anytime.png") if summary["minimal"]["anytime"] else None
    robust = robustness_plot(rows, list(summary["minimal"]["judges"]), folder / f"{prefix}robust_accuracy.png")
    return [p for p in (anytime, robust) if p is not None]


def write_minimal_report(run: RunDir, ds, summary: dict, methods: list[str], n_grids: int = 2) -> Path:
    rows = {m: run.store.rows(m, ds.ids) for m in methods}
    plots = draw_figures(summary, rows, run.path / "plots")
    fooled = {m: {r["id"] for r in rs if r["success"] and r["clean_correct"]} for m, rs in rows.items()}
    shown = [m for m in methods if fooled[m]]
    common = [i for i in ds.ids if all(i in fooled[m] for m in shown)][:n_grids]
    grids = [image_grid(run.load_image("original", sid), {m: run.load_image(m, sid) for m in shown},
                        run.path / "plots" / f"grid_{safe_name(sid)}.png", caption=f"{ds.name} / {sid}")
             for sid in common]
    proto = summary.get("protocol")
    origin = (f" Governed by the protocol <code>{esc(proto['path'])}</code> (sha256 {esc(proto['sha256'][:12])}), run "
              f"<code>{esc(summary['protocol_run'])}</code>, stage <code>{esc(summary['stage'])}</code>."
              if proto else " No protocol: an exploratory run (not a held-out claim).")
    intro = Html(f"Which attack fools the model with the least perceptible 8-bit change? Every attack had the same cap of "
                 f"{summary['budget']} passes per image (forward and backward passes of the model, counted and enforced: "
                 "it returns its best adversarial within them), "
                 f"and each change is judged by perceptual judges, most of which no attack optimises.{origin} "
                 f"Dataset <code>{esc(summary['dataset'])}</code> ({summary['n_images']} images), model "
                 f"<code>{esc(summary['model'])}</code>. Medians over the images each method fooled (x1000 where the "
                 "judge's label says); optimality after AttackBench, against the per-image best of all attacks (1: the "
                 "best on every image); p: one-sided paired Wilcoxon signed-rank test on log(ours / peer), H1: ours "
                 "lower, Holm-corrected. † = the judge the method optimises.")
    notes = [f"Left out: {m} - {why}." for m, why in summary.get("left_out", {}).items()]
    variants = "".join(decision_html({**summary, "ours": v, "minimal": {"decision": d}}, title=f"Variant {v}")
                       for v, d in (summary["minimal"].get("decision_variants") or {}).items())
    extra = Html(decision_html(summary) + decision_html(summary, "decision_polished", "Against the polished peers")
                 + variants + visibility_html(summary) + "<h2>Judges</h2>" + judge_table(summary))
    return write_report(run.path / "report.html", title="imperceptible: perceptual minimal-attack benchmark",
                        intro=intro, summary=summary, plots=plots, grids=grids, notes=notes, extra_html=extra,
                        tables={"Success and cost": [("success_rate", "success", "pct"),
                                                     ("passes_per_image", "passes / image", 1),
                                                     ("passes_max", "most passes", 1), ("time_s", "time (s)", 1)]})


__all__ = ["anytime_plot", "decision_html", "draw_figures", "visibility_html", "judge_table", "robustness_plot",
           "write_minimal_report"]
