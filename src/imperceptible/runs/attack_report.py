"""The report of an attack run (``imperceptible attack`` and ``bench attacks``): distance box plots and
CDFs, success after the defenses, image grids of the first images every method fooled."""

from __future__ import annotations

from pathlib import Path

from ..costs.metrics import METRICS
from ..evaluate.evaluator import DEFENSES
from ..evaluate.saliency import default_saliency
from .grids import image_grid
from .plots import defense_plot, distance_plot
from .report import Html, esc, write_report
from .rundir import RunDir, safe_name

#: the metrics drawn as box plots and CDFs (the metric table's ``plot``)
PLOT_KEYS = tuple(m.key for m in METRICS.values() if m.plot)

#: what each dataset's images are, for the report's notes
DATASET_NOTES = {
    "imagenet-compatible": "Images: NIPS 2017 adversarial competition development set (Flickr, mostly CC BY 2.0; "
                           "authors credited in images.csv).",
    "imagenet-samples": "Images: the 20 ImageNet validation samples shipped with foolbox.",
}


def make_report(run: RunDir, ds, summary: dict, methods: list[str], *, n_grids: int = 3,
                title: str = "imperceptible: attack benchmark", intro: str = "") -> Path:
    rows = {m: run.store.rows(m, ds.ids) for m in methods}
    plots = []
    for k in PLOT_KEYS:
        vals = {m: [r["metrics"][k] for r in rs if r["clean_correct"] and r["success"] and k in r["metrics"]]
                for m, rs in rows.items()}
        if any(vals.values()):
            plots.append(distance_plot(vals, k, run.path / "plots" / f"{k}.png"))
    plots.append(defense_plot(summary["methods"], list(DEFENSES), run.path / "plots" / "defenses.png"))
    fooled = {m: {r["id"] for r in rs if r["success"] and r["clean_correct"]} for m, rs in rows.items()}
    shown = [m for m in methods if fooled[m]]  # a method that fooled no image has nothing to show
    common = [i for i in ds.ids if all(i in fooled[m] for m in shown)][:n_grids]
    grids = []
    saliency = default_saliency()
    for sid in common:
        x = run.load_image("original", sid)
        advs = {m: run.load_image(m, sid) for m in shown}
        grids.append(image_grid(x, advs, run.path / "plots" / f"grid_{safe_name(sid)}.png",
                                saliency=saliency, caption=f"{ds.name} / {sid}"))
    notes: list[str] = [Html(f"Dataset <code>{esc(summary['dataset'])}</code> ({summary['n_images']} images), model "
                  f"<code>{esc(summary['model'])}</code>. Success: {esc(summary['success_rule'])}; distances are "
                  f"means over {esc(summary['distances_over'])}. Defenses: {esc(summary['defenses']['jpeg'])}; "
                  f"{esc(summary['defenses']['bits'])}.")]
    if ds.name in DATASET_NOTES:
        notes.append(DATASET_NOTES[ds.name])
    for method, why in summary.get("left_out", {}).items():
        notes.append(f"Left out: {method} - {why}.")
    if len(shown) < len(methods):
        notes.append("Not in the image grids (no image fooled as an 8-bit image): "
                     + ", ".join(m for m in methods if m not in shown) + ".")
    return write_report(run.path / "report.html", title=title, intro=intro, summary=summary, plots=plots,
                        grids=grids, notes=notes)


__all__ = ["PLOT_KEYS", "make_report"]
