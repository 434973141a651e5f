"""``imperceptible attack``: one attack over a dataset into a run directory (resumable)."""

from __future__ import annotations

from pathlib import Path

from ..attacks import get as get_attack
from ..attacks.registry import label
from ..data import load as load_dataset
from ..engine import Engine
from ..evaluate.evaluator import Evaluator
from ..models import get as get_model
from .attack_run import run_attack
from .bench_attacks import make_report
from .rundir import RunDir
from .summary import summarize


def attack_job(*, dataset: str, model: str, attack: str, out: str | Path, options: dict | None = None,
               limit: int | None = None, batch_size: int = 8, learned: bool = True, progress: bool = True,
               engine: Engine | None = None) -> dict | None:
    engine = engine or Engine()
    atk = get_attack(attack, **(options or {}))
    run = RunDir(out)
    ds = load_dataset(dataset, limit=limit)
    net = get_model(model, progress=progress and engine.is_main).to(engine.device)
    method = label(atk)
    if engine.is_main:
        run.write_config({"engine": engine.describe(), "job": "attack", "dataset": dataset, "model": model, "attack": attack, "method": method,
                          "options": options or {}, "params": atk.params(), "limit": limit,
                          "batch_size": batch_size, "n_images": len(ds)})
    evaluator = Evaluator(learned=learned, ssim_kernel=11 if min(ds.images.shape[-2:]) >= 11 else 7)
    run_attack(run, method, atk, net, ds, evaluator, batch_size=batch_size, progress=progress, engine=engine)
    if not engine.is_main:
        return None
    summary = summarize(run.store, [method], unavailable=evaluator.unavailable)  # no PGD-L2 here: ratio null
    summary.update(dataset=dataset, model=model, n_images=len(ds),
                   defenses={"jpeg": "Pillow JPEG at quality 90/75/50", "bits": "ART-style bit depth 6/5/4"},
                   success_rule="label correct -> incorrect on the 8-bit image / correctly classified images",
                   distances_over="successfully attacked, correctly classified images")
    run.write_json("summary.json", summary)
    make_report(run, ds, summary, [method], n_grids=2)
    return summary
