"""``imperceptible bench attacks``: every attack on the same images and model, with the paper's
Tables 1, 2, 6 and Figures 4, 5, 7, 12 analogues, into one run directory (resumable)."""

from __future__ import annotations

from pathlib import Path

from ..attacks import LPA, PPGD, HumanPercOT, PerCAL, PGDL2
from ..attacks.registry import label
from ..costs import available
from ..data import load as load_dataset
from ..engine import Engine
from ..evaluate.evaluator import DEFENSES, Evaluator
from ..evaluate.saliency import spectral_residual_saliency
from ..models import get as get_model
from .attack_run import run_attack
from .grids import image_grid
from .plots import distance_plot, defense_plot
from .report import write_report
from .rundir import RunDir
from .summary import summarize

PLOT_KEYS = ("ssim_distance", "ms_ssim_distance", "ciede2000", "lpips_x1000", "dists_x1000", "l2")


def default_attacks(*, perc_al_iterations: int = 100, quick: bool = False) -> list:
    """The benchmark's methods. ``quick`` shrinks every budget (for tests)."""
    s = 10 if quick else None
    atks = [
        HumanPercOT(**({"steps": 30} if quick else {})),
        HumanPercOT(confidence=1, **({"steps": 30} if quick else {})),
        HumanPercOT(confidence=5, **({"steps": 30} if quick else {})),
        HumanPercOT(preset="paper", **({"steps": 30} if quick else {})),
        PGDL2(),
        PerCAL(max_iterations=10 if quick else perc_al_iterations),
        PPGD(steps=s or 40),
        LPA(steps=s or 40, binary_steps=2 if quick else 5),
    ]
    if available("pieapp"):
        atks.insert(1, HumanPercOT(cost="pieapp"))
    return atks


def bench_attacks(*, dataset: str = "imagenet-samples", model: str = "efficientnet-lite0", out: str | Path,
                  limit: int | None = None, batch_size: int = 8, perc_al_iterations: int = 100,
                  learned: bool = True, quick: bool = False, progress: bool = True, n_grids: int = 3,
                  attacks: list | None = None, engine: Engine | None = None) -> dict | None:
    """Every method on the same images; ``engine`` shards the images over processes (the summary and
    report are written by rank 0, which returns the summary; other ranks return ``None``)."""
    engine = engine or Engine()
    run = RunDir(out)
    ds = load_dataset(dataset, limit=limit)
    net = get_model(model, progress=progress and engine.is_main).to(engine.device)
    atks = attacks if attacks is not None else default_attacks(perc_al_iterations=perc_al_iterations, quick=quick)
    methods = [label(a) for a in atks]
    if engine.is_main:
        run.write_config({"engine": engine.describe(), "job": "bench attacks", "dataset": dataset, "model": model, "limit": limit,
                          "batch_size": batch_size, "n_images": len(ds),
                          "attacks": {m: {"class": type(a).__name__, **a.params()} for m, a in zip(methods, atks)}})
    evaluator = Evaluator(learned=learned, ssim_kernel=11 if min(ds.images.shape[-2:]) >= 11 else 7)
    for m, a in zip(methods, atks):
        run_attack(run, m, a, net, ds, evaluator, batch_size=batch_size, progress=progress, engine=engine)
    if not engine.is_main:
        return None
    summary = summarize(run.store, methods, unavailable=evaluator.unavailable)
    summary.update(dataset=dataset, model=model, n_images=len(ds),
                   defenses={"jpeg": "Pillow JPEG round trip at quality 90/75/50 (4:2:0)",
                             "bits": "round(x (2^b - 1)) / (2^b - 1), b = 6/5/4 (ART FeatureSqueezing)"},
                   saliency_model="OpenCV spectral residual (Hou & Zhang 2007)",
                   success_rule="label correct -> incorrect on the 8-bit image / correctly classified images",
                   distances_over="successfully attacked, correctly classified images")
    run.write_json("summary.json", summary)
    make_report(run, ds, summary, methods, n_grids=n_grids)
    return summary


def make_report(run: RunDir, ds, summary: dict, methods: list[str], *, n_grids: int = 3) -> Path:
    plots = []
    for k in PLOT_KEYS:
        vals = {m: [r["metrics"][k] for r in run.store.rows(m) if r["clean_correct"] and r["success"]
                    and k in r["metrics"]] for m in methods}
        if any(vals.values()):
            plots.append(distance_plot(vals, k, run.path / "plots" / f"{k}.png"))
    plots.append(defense_plot(summary["methods"], list(DEFENSES), run.path / "plots" / "defenses.png"))
    # grids: the first images every method fooled
    fooled = [{r["id"] for r in run.store.rows(m) if r["success"] and r["clean_correct"]} for m in methods]
    common = [i for i in ds.ids if all(i in f for f in fooled)][:n_grids]
    grids = []
    for sid in common:
        x = run.load_image("original", sid)
        advs = {m: run.load_image(m, sid) for m in methods}
        grids.append(image_grid(x, advs, run.path / "plots" / f"grid_{sid}.png", saliency=spectral_residual_saliency,
                                caption=f"{ds.name} / {sid}"))
    notes = [f"Dataset <code>{summary['dataset']}</code> ({summary['n_images']} images), model "
             f"<code>{summary['model']}</code>. Success: {summary['success_rule']}; distances are means over "
             f"{summary['distances_over']}. Defenses: {summary['defenses']['jpeg']}; {summary['defenses']['bits']}."]
    if ds.name == "imagenet-compatible":
        notes.append("Images: NIPS 2017 adversarial competition development set (Flickr, mostly CC BY 2.0; "
                     "authors credited in images.csv).")
    if ds.name == "imagenet-samples":
        notes.append("Images: the 20 ImageNet validation samples shipped with foolbox.")
    return write_report(run.path / "report.html", title="imperceptible: attack benchmark",
                        intro="Human_Perc_OT against PGD-L2, PerC-AL, PPGD and LPA on the same images and model.",
                        summary=summary, plots=plots, grids=grids, notes=notes)


__all__ = ["bench_attacks", "default_attacks", "make_report"]
