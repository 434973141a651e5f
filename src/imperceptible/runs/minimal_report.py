"""The report of ``bench minimal``: per judge the medians, optimality and paired tests, the goal, the anytime
curves and the robust-accuracy curves, and image grids."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..costs.metrics import METRICS  # noqa: E402
from .grids import image_grid  # noqa: E402
from .report import Html, esc, write_report  # noqa: E402
from .rundir import RunDir, safe_name  # noqa: E402


def _cell(v, show: float = 1.0, digits: int = 3) -> str:
    return "<span class='na'>n/a</span>" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * show:.{digits}f}"


def judge_table(summary: dict) -> str:
    """One row per method; per judge its median (x the display factor; † where it optimises the judge), its
    optimality, and the paired test's p against ours."""
    m = summary["minimal"]["judges"]
    keys = list(m)
    methods = list(summary["methods"])
    head = "".join(f"<th colspan='3'>{esc(METRICS[k].label)}</th>" for k in keys)
    sub = "".join("<th>median</th><th>optimality</th><th>p vs ours</th>" for _ in keys)
    body = []
    for meth in methods:
        cells = []
        for k in keys:
            r = m[k]["methods"].get(meth, {})
            p = (r.get("vs_ours") or {}).get("p")
            cells.append(f"<td>{_cell(r.get('median'), METRICS[k].show)}{'†' if r.get('optimises') else ''}</td>"
                         f"<td>{_cell(r.get('optimality'))}</td><td>{'' if p is None else _p(p)}</td>")
        body.append(f"<tr><th class='m'>{esc(meth)}</th>{''.join(cells)}</tr>")
    return (f"<table><tr><th rowspan='2'>method</th>{head}</tr><tr>{sub}</tr>{''.join(body)}</table>")


def _p(p) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def goal_html(summary: dict) -> str:
    g = summary["minimal"]["goal"]
    items = []
    for k, r in g["judges"].items():
        if r["met"]:
            items.append(f"<li>{esc(METRICS[k].label)}: met (the highest optimality, every paired p &lt; "
                         f"{g['alpha']})</li>")
        else:
            short = "; ".join(f"{esc(p)} (optimality {_cell(v.get('peer_optimality'))}, median "
                              f"{_cell(v['peer_median'], METRICS[k].show)}, p {_p(v['p'])})" for p, v in r["short_of"].items())
            items.append(f"<li>{esc(METRICS[k].label)}: <b>not met</b>, ours: optimality "
                         f"{_cell(r.get('ours_optimality'))}, median {_cell(r['ours_median'], METRICS[k].show)}; "
                         f"short of {short}</li>")
    verdict = {True: "met on every judge", False: "not met on every judge", None: "not evaluable"}[g["met"]]
    return f"<h2>The goal: {esc(verdict)}</h2><ul>{''.join(items)}</ul>"


def anytime_plot(summary: dict, path: Path) -> Path:
    """Each judge's median against the passes spent, one panel per judge, one line per method."""
    keys = list(summary["minimal"]["judges"])
    any_ = summary["minimal"]["anytime"]
    fig, axes, colours = _panels(keys)
    for ax, k in zip(axes.flat, keys):
        for j, (meth, curve) in enumerate(any_.items()):
            xs = [int(c) for c in curve if curve[c].get(k) is not None]
            ys = [curve[str(c)][k] * METRICS[k].show for c in xs]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=meth, color=colours[(2 * j) % 20],
                        linestyle="-" if meth.startswith("human-perc-ot") else "--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(METRICS[k].label, fontsize=9)
        ax.set_xlabel("passes per image", fontsize=8)
    return _finish(fig, axes, keys, path,
                   "Anytime: median judge value of the best adversarial queried within a budget (lower is better)")


def _panels(keys: list[str], cols: int = 4):
    """One panel per judge, four to a row, and the colours of the methods."""
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    return fig, axes, plt.get_cmap("tab20").colors


def _finish(fig, axes, keys: list[str], path: Path, title: str) -> Path:
    """Grid lines, the unused panels off, one legend below, the title; saved to ``path``."""
    for ax in list(axes.flat)[: len(keys)]:
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def robustness_plot(rows: dict[str, list[dict]], keys: list[str], path: Path) -> Path:
    """Per judge, the share of correctly classified images still not fooled at each distance (AttackBench's
    robust-accuracy curves; the area above the ensemble's is what optimality measures)."""
    fig, axes, colours = _panels(keys)
    for ax, k in zip(axes.flat, keys):
        for j, (meth, rs) in enumerate(rows.items()):
            correct = [r for r in rs if r["clean_correct"]]
            d = np.sort([r["metrics"][k] * METRICS[k].show for r in correct if r["success"] and k in r["metrics"]])
            if len(d):
                ax.step(d, 1 - np.arange(1, len(d) + 1) / len(correct), where="post", label=meth,
                        color=colours[(2 * j) % 20], linestyle="-" if meth.startswith("human-perc-ot") else "--")
        ax.set_xscale("log")
        ax.set_title(METRICS[k].label, fontsize=9)
        ax.set_ylabel("not yet fooled", fontsize=8)
    return _finish(fig, axes, keys, path,
                   "Share of images each attack has not fooled within a judge value (lower curves are better)")


def write_minimal_report(run: RunDir, ds, summary: dict, methods: list[str], n_grids: int = 2) -> Path:
    rows = {m: run.store.rows(m, ds.ids) for m in methods}
    keys = list(summary["minimal"]["judges"])
    plots = ([anytime_plot(summary, run.path / "plots" / "anytime.png")] if summary["minimal"]["anytime"] else [])
    plots.append(robustness_plot(rows, keys, run.path / "plots" / "robust_accuracy.png"))
    fooled = {m: {r["id"] for r in rs if r["success"] and r["clean_correct"]} for m, rs in rows.items()}
    shown = [m for m in methods if fooled[m]]
    common = [i for i in ds.ids if all(i in fooled[m] for m in shown)][:n_grids]
    grids = [image_grid(run.load_image("original", sid), {m: run.load_image(m, sid) for m in shown},
                        run.path / "plots" / f"grid_{safe_name(sid)}.png", caption=f"{ds.name} / {sid}")
             for sid in common]
    intro = Html(f"Dataset <code>{esc(summary['dataset'])}</code> ({summary['n_images']} images), model "
                 f"<code>{esc(summary['model'])}</code>, a budget of {summary['budget']} passes per image for every "
                 "attack (forward and backward passes of the model, counted). Medians over the images each method "
                 "fooled (x1000 where the judge's label says); optimality after AttackBench, against the per-image "
                 "best of all attacks; p: one-sided paired Wilcoxon signed-rank test, H1: ours lower. † = the judge "
                 "the method optimises.")
    notes = [f"Left out: {m} - {why}." for m, why in summary.get("left_out", {}).items()]
    extra = Html(goal_html(summary) + "<h2>Judges</h2>" + judge_table(summary))
    return write_report(run.path / "report.html", title="imperceptible: perceptual minimal-attack benchmark",
                        intro=intro, summary=summary, plots=plots, grids=grids, notes=notes, extra_html=extra,
                        tables={"Success and cost": [("success_rate", "success", "pct"),
                                                     ("passes_per_image", "passes / image", 1),
                                                     ("passes_max", "most passes", 1), ("time_s", "time (s)", 1)]})


__all__ = ["anytime_plot", "goal_html", "judge_table", "robustness_plot", "write_minimal_report"]
