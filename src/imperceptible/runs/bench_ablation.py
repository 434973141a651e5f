"""``imperceptible bench ablation``: the paper's Tables 3 and 4 - Human_Perc_OT across ``lambda`` and
``eps`` - for both the literal algorithm (``preset="paper"``) and our calibrated default."""

from __future__ import annotations

from pathlib import Path

from ..attacks import HumanPercOT, PGDL2
from ..data import load as load_dataset
from ..evaluate.evaluator import Evaluator
from ..models import get as get_model
from .attack_run import run_attack
from .plots import distance_plot
from .report import write_report
from .rundir import RunDir
from .summary import summarize

PAPER_LAMBDAS = (0.5, 1.0, 2.0)  # Table 3
PAPER_EPS = (0.05, 0.1, 0.2)  # Table 4
OURS_LAMBDAS = (0.0, 1.0, 3.0, 10.0, 30.0)
OURS_EPS = (0.02, 0.05, 0.1)

COLS = [("success_rate", "success", "pct"), ("time_s", "time (s)", 2), ("mean_steps", "steps", 1),
        ("l1", "L1", 3), ("l2", "L2", 4), ("linf", "Linf", 4), ("ssim_distance", "1-SSIM x1000", "x1000"),
        ("ms_ssim_distance", "1-MS-SSIM x1000", "x1000"), ("ciede2000", "CIEDE2000", 2),
        ("lpips_x1000", "LPIPS x1000", 3), ("dists_x1000", "DISTS x1000", 3)]


def ablation_attacks() -> dict[str, HumanPercOT]:
    out: dict = {}
    for lam in PAPER_LAMBDAS:
        out[f"paper lam={lam:g} eps=0.1"] = HumanPercOT(preset="paper", lam=lam)
    for eps in PAPER_EPS:
        out[f"paper lam=1 eps={eps:g}"] = HumanPercOT(preset="paper", eps=eps)
    for lam in OURS_LAMBDAS:
        out[f"calibrated lam={lam:g} eps=0.05"] = HumanPercOT(lam=lam)
    for eps in OURS_EPS:
        out[f"calibrated lam=10 eps={eps:g}"] = HumanPercOT(eps=eps)
    return out


def bench_ablation(*, dataset: str = "imagenet-samples", model: str = "efficientnet-lite0", out: str | Path,
                   limit: int | None = None, batch_size: int = 8, progress: bool = True,
                   attacks: dict | None = None) -> dict:
    run = RunDir(out)
    ds = load_dataset(dataset, limit=limit)
    net = get_model(model, progress=progress)
    atks = attacks if attacks is not None else ablation_attacks()
    atks = {**atks, "pgd-l2": PGDL2()}
    run.write_config({"job": "bench ablation", "dataset": dataset, "model": model, "limit": limit,
                      "attacks": {m: a.params() for m, a in atks.items()}})
    ev = Evaluator(saliency=None, defenses=[], ssim_kernel=11 if min(ds.images.shape[-2:]) >= 11 else 7)
    for m, a in atks.items():
        run_attack(run, m, a, net, ds, ev, batch_size=batch_size, progress=progress, save_images=False)
    summary = summarize(run.store, list(atks), unavailable=ev.unavailable)
    summary.update(dataset=dataset, model=model, n_images=len(ds))
    run.write_json("summary.json", summary)
    key = "ssim_distance"
    vals = {m: [r["metrics"][key] for r in run.store.rows(m) if r["success"] and r["clean_correct"]] for m in atks}
    plot = distance_plot(vals, key, run.path / "plots" / f"ablation_{key}.png",
                         title="Human_Perc_OT ablation: 1 - SSIM per configuration")
    names = list(atks)
    tables = {
        "Table 3 analogue (paper's algorithm): lambda": [*COLS],
        "Table 4 analogue (paper's algorithm): eps": [*COLS],
        "Ours (calibrated lambda, L2 step): lambda": [*COLS],
        "Ours (calibrated lambda, L2 step): eps": [*COLS],
    }
    groups = [names[0:3], names[3:6], names[6:6 + len(OURS_LAMBDAS)], names[6 + len(OURS_LAMBDAS):-1]]
    html_parts = []
    from .report import table_html

    for (title, cols), grp in zip(tables.items(), groups):
        sub = {m: summary["methods"][m] for m in grp + ["pgd-l2"] if m in summary["methods"]}
        html_parts.append(f"<h2>{title}</h2>" + table_html(sub, cols))
    write_report(run.path / "report.html", title="imperceptible: Human_Perc_OT ablation",
                 intro=f"Dataset <code>{dataset}</code>, model <code>{model}</code>; PGD-L2 for reference.",
                 summary={"methods": {}, "unavailable": summary["unavailable"]}, plots=[plot], grids=[],
                 notes=["lambda = 0 removes the cost term: the difference to lambda > 0 is what the cost does."],
                 extra_html="".join(html_parts), tables={})
    return summary
