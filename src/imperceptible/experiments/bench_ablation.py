"""``imperceptible bench ablation``: the paper's Tables 3 and 4 - Human_Perc_OT across ``lambda`` and
``eps`` - for both the literal algorithm (``preset="paper"``) and our calibrated default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..attacks import PGDL2, HumanPercOT
from ..config import check_int_option, identity, option, record
from ..data import load as load_dataset
from ..engine import Engine
from ..evaluate.evaluator import Evaluator
from ..models import get as get_model
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.plots import distance_plot
from ..runs.report import Html, esc, table_html, write_report
from ..runs.summary import summarize

PAPER_LAMBDAS = (0.5, 1.0, 2.0)  # Table 3
PAPER_EPS = (0.05, 0.1, 0.2)  # Table 4
OURS_LAMBDAS = (0.0, 1.0, 3.0, 10.0, 30.0)
OURS_EPS = (0.02, 0.05, 0.1)

@dataclass(frozen=True)
class AblationConfig:
    """``imperceptible bench ablation``'s settings."""

    dataset: str = option("imagenet-samples", "dataset")
    model: str = option("efficientnet-lite0", "model")
    limit: int | None = option(None, "first N images only", type=int, fingerprint=False)
    batch_size: int = option(8, "images per batch", type=int, fingerprint=False)
    learned: bool = option(True, "LPIPS and DISTS columns", type=bool)

    def __post_init__(self) -> None:
        check_int_option("limit", self.limit, allow_none=True)
        check_int_option("batch_size", self.batch_size)


COLS = [("success_rate", "success", "pct"), ("time_s", "time (s)", 2), ("mean_steps", "steps", 1),
        ("l1", "L1", 3), ("l2", "L2", 4), ("linf", "Linf", 4), ("ssim_distance", "1-SSIM x1000", "x1000"),
        ("ms_ssim_distance", "1-MS-SSIM x1000", "x1000"), ("ciede2000", "CIEDE2000", 2),
        ("lpips_x1000", "LPIPS x1000", 3), ("dists_x1000", "DISTS x1000", 3), ("fsim_distance", "1-FSIM x1000", "x1000")]


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
    out["calibrated, zero cost gradient reused"] = HumanPercOT(refresh_zero=False)
    out["calibrated, no rescue (N = 100)"] = HumanPercOT(lam_decay=1.0, eps_growth=1.0, max_steps=100)
    return out


def bench_ablation(config: AblationConfig | None = None, *, out: str | Path, attacks: dict | None = None,
                   overwrite: bool = False, progress: bool = True, **settings) -> dict:
    cfg = config or AblationConfig(**settings)
    dataset, model = cfg.dataset, cfg.model
    ds = load_dataset(dataset, limit=cfg.limit)
    net = get_model(model, progress=progress, data=ds)
    atks = attacks if attacks is not None else ablation_attacks()
    atks = {**atks, "pgd-l2": PGDL2()}
    ev = Evaluator.for_images(ds.images, learned=cfg.learned, saliency=None, defenses=[])
    engine = Engine()
    run = open_attack_run(out, job="bench ablation", config=identity(cfg), ds=ds, model=net, methods=atks,
                          evaluator=ev, engine=engine, overwrite=overwrite)
    run.write_config({"job": "bench ablation", **record(cfg), "attacks": {m: a.params() for m, a in atks.items()}})
    for m, a in atks.items():
        run_attack(run, m, a, net, ds, ev, batch_size=cfg.batch_size, progress=progress, save_images=False)
    summary = summarize(run.store, list(atks), ids=ds.ids, unavailable=ev.unavailable)
    summary.update(dataset=dataset, model=model, n_images=len(ds))
    run.write_json("summary.json", summary)
    key = "ssim_distance"
    vals = {m: [r["metrics"][key] for r in run.store.rows(m, ds.ids) if r["success"] and r["clean_correct"]]
            for m in atks}
    plot = distance_plot(vals, key, run.path / "plots" / f"ablation_{key}.png",
                         title="Human_Perc_OT ablation: 1 - SSIM per configuration")
    names = list(atks)
    tables = {
        "Table 3 analogue (paper's algorithm): lambda": [*COLS],
        "Table 4 analogue (paper's algorithm): eps": [*COLS],
        "Ours (calibrated lambda, L2 step): lambda": [*COLS],
        "Ours (calibrated lambda, L2 step): eps": [*COLS],
        "Ours: the two fixes switched off one at a time": [*COLS],
    }
    k = 6 + len(OURS_LAMBDAS)
    groups = [names[0:3], names[3:6], names[6:k], names[k:k + len(OURS_EPS)], names[k + len(OURS_EPS):-1]]
    html_parts = []
    for (title, cols), grp in zip(tables.items(), groups):
        sub = {m: summary["methods"][m] for m in grp + ["pgd-l2"] if m in summary["methods"]}
        html_parts.append(f"<h2>{esc(title)}</h2>" + table_html(sub, cols))
    write_report(run.path / "report.html", title="imperceptible: Human_Perc_OT ablation",
                 intro=Html(f"Dataset <code>{esc(dataset)}</code>, model <code>{esc(model)}</code>; PGD-L2 for "
                            "reference."),
                 summary={"methods": {}, "unavailable": summary["unavailable"]}, plots=[plot], grids=[],
                 notes=["lambda = 0 removes the cost term: the difference to lambda > 0 is what the cost does."],
                 extra_html=Html("".join(html_parts)), tables={})
    return summary
