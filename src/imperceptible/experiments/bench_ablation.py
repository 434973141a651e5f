"""``imperceptible bench ablation``: the paper's Tables 3 and 4 - Human_Perc_OT across ``lambda`` and
``eps`` - for the literal algorithm (``preset="paper"``) and our calibrated phase 1 (``first-success``), and the
refinement with each of its parts switched off."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..attacks import PGDL2, HumanPercOT
from ..attacks.base import Attack
from ..config import identity, option, record
from ..engine import Engine
from ..evaluate.evaluator import Evaluator
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.plots import distance_plot
from ..runs.report import Html, esc, judge_keys, table_html, write_report
from ..runs.summary import summarize
from ..runs.tables import metric_columns
from .common import DataModelOptions, data_and_model

PAPER_LAMBDAS = (0.5, 1.0, 2.0)  # Table 3
PAPER_EPS = (0.05, 0.1, 0.2)  # Table 4
OURS_LAMBDAS = (0.0, 1.0, 3.0, 10.0, 30.0)
OURS_EPS = (0.02, 0.05, 0.1)
REFINE_GEOMETRIES = (0.35, 0.5, 1.0)

@dataclass(frozen=True, kw_only=True)
class AblationConfig(DataModelOptions):
    """``imperceptible bench ablation``'s settings."""

    learned: bool = option(True, "LPIPS and DISTS columns", type=bool)


COLS = [("success_rate", "success", "pct"), ("time_s", "time (s)", 2), ("mean_steps", "steps", 1),
         ("passes_per_image", "passes / image", 1)] + metric_columns(("l2", "linf")) + metric_columns(judge_keys())


def ablation_groups() -> dict[str, dict[str, HumanPercOT]]:
    """The ablation's variants, by table: the literal algorithm across lambda and eps (the paper's Tables 3 and
    4), phase 1 alone (first-success) across lambda and eps and with its two fixes switched off, and the
    refinement with each of its parts switched off or changed."""
    first = HumanPercOT.from_preset
    refined = {"refined (default)": HumanPercOT(),
               "refined, Euclidean steps (geometry 0)": HumanPercOT(geometry=0.0)}
    for g in REFINE_GEOMETRIES:
        refined[f"refined, geometry {g:g}"] = HumanPercOT(geometry=g)
    refined.update({
        "refined, no lattice stage": HumanPercOT(prune_rounds=0),
        "refined, iterate kept on the 8-bit grid": HumanPercOT(lattice=True),
        "refined, no early stop": HumanPercOT(patience=1.0),
        "refined, no phase 1 (radius from the first steps)": HumanPercOT(find_share=0.01),
        "refined, budget 100": HumanPercOT(budget=100),
    })
    return {
        "Table 3 analogue (the paper's algorithm): lambda": {
            f"paper lam={lam:g} eps=0.1": first("paper", lam=lam) for lam in PAPER_LAMBDAS},
        "Table 4 analogue (the paper's algorithm): eps": {
            f"paper lam=1 eps={eps:g}": first("paper", eps=eps) for eps in PAPER_EPS},
        "Phase 1 alone (first-success, calibrated lambda, L2 step): lambda": {
            f"first-success lam={lam:g}": first("first-success", lam=lam) for lam in OURS_LAMBDAS},
        "Phase 1 alone: eps": {f"first-success eps={eps:g}": first("first-success", eps=eps) for eps in OURS_EPS},
        "Phase 1 alone: its two fixes switched off one at a time": {
            "first-success (default)": first("first-success"),
            "first-success, zero cost gradient reused": first("first-success", refresh_zero=False),
            "first-success, no rescue (N = 100)": first("first-success", lam_decay=1.0, eps_growth=1.0, max_steps=100)},
        "The refinement (200 passes): each part switched off or changed": refined,
    }


def ablation_attacks() -> dict[str, HumanPercOT]:
    """Every variant of :func:`ablation_groups`, by name."""
    return {name: atk for group in ablation_groups().values() for name, atk in group.items()}


def bench_ablation(config: AblationConfig | None = None, *, out: str | Path, attacks: dict | None = None,
                   overwrite: bool = False, progress: bool = True, **settings) -> dict:
    cfg = config or AblationConfig(**settings)
    ds, net = data_and_model(cfg, Engine(), progress=progress)
    atks: dict[str, Attack] = {**(attacks if attacks is not None else ablation_attacks()), "pgd-l2": PGDL2()}
    ev = Evaluator.for_images(ds.images, learned=cfg.learned, saliency=None, defenses=[])
    engine = Engine()
    run = open_attack_run(out, job="bench ablation", config=identity(cfg), ds=ds, model=net, methods=atks,
                          evaluator=ev, engine=engine, overwrite=overwrite)
    run.write_config({"job": "bench ablation", **record(cfg), "attacks": {m: a.params() for m, a in atks.items()}})
    for m, a in atks.items():
        run_attack(run, m, a, net, ds, ev, batch_size=cfg.batch_size, progress=progress, save_images=False)
    summary = summarize(run.store, list(atks), ids=ds.ids, unavailable=ev.unavailable,
                        optimises={m: a.optimises() for m, a in atks.items()})
    summary.update(dataset=cfg.dataset, model=cfg.model, n_images=len(ds))
    run.write_json("summary.json", summary)
    key = "ssim_distance"
    vals = {m: [r["metrics"][key] for r in run.store.rows(m, ds.ids) if r["success"] and r["clean_correct"]]
            for m in atks}
    plot = distance_plot(vals, key, run.path / "plots" / f"ablation_{key}.png",
                         title="Human_Perc_OT ablation: 1 - SSIM per configuration")
    groups = ablation_groups() if attacks is None else {"Variants": dict(attacks)}
    html_parts = []
    for title, grp in groups.items():
        sub = {m: summary["methods"][m] for m in [*grp, "pgd-l2"] if m in summary["methods"]}
        html_parts.append(f"<h2>{esc(title)}</h2>" + table_html(sub, COLS))
    write_report(run.path / "report.html", title="imperceptible: Human_Perc_OT ablation",
                 intro=Html(f"Dataset <code>{esc(cfg.dataset)}</code>, model <code>{esc(cfg.model)}</code>; PGD-L2 for "
                            "reference."),
                 summary={"methods": {}, "unavailable": summary["unavailable"]}, plots=[plot], grids=[],
                 notes=["lambda = 0 removes the cost term: the difference to lambda > 0 is what the cost does."],
                 extra_html=Html("".join(html_parts)), tables={})
    return summary
