"""Run one attack over a dataset into a run directory, batch by batch, resumably."""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from ..attacks.base import Attack
from ..data.base import ImageDataset
from ..evaluate.evaluator import Evaluator
from .rundir import RunDir


def run_attack(run: RunDir, method: str, attack: Attack, model, ds: ImageDataset, evaluator: Evaluator, *,
               batch_size: int = 8, progress: bool = True, save_images: bool = True) -> int:
    """Attack every sample of ``ds`` not yet in the store under ``method``; returns how many were run."""
    done = run.store.done(method)
    todo = [i for i, sid in enumerate(ds.ids) if sid not in done]
    if save_images:
        new = [i for i, sid in enumerate(ds.ids) if not run.image_path("original", sid).is_file()]
        if new:
            run.save_images("original", [ds.ids[i] for i in new], ds.images[new])
    bar = tqdm(total=len(ds), initial=len(ds) - len(todo), desc=method, disable=not progress, unit="img")
    for s in range(0, len(todo), batch_size):
        idx = todo[s : s + batch_size]
        x, y = ds.images[idx], ds.labels[idx]
        t0 = time.perf_counter()
        res = attack(model, x, y)
        attack_time = time.perf_counter() - t0
        metrics = evaluator(model, x, y, res, ids=[ds.ids[i] for i in idx])
        rows = []
        for j, i in enumerate(idx):
            rows.append({
                "id": ds.ids[i], "label": int(y[j]),
                "success": bool(res.success[j]), "success_float": bool(res.success_float[j]),
                "reached": bool(res.reached[j]), "clean_correct": bool(res.clean_correct[j]),
                "steps": int(res.steps[j]), "margin": float(res.margin[j]), "margin_float": float(res.margin_float[j]),
                "clean_margin": float(res.clean_margin[j]), "time_s": attack_time / len(idx),
                "forwards": res.forwards / len(idx),
                "metrics": {k: float(v[j]) for k, v in metrics.items()},
            })
        if save_images:
            run.save_images(method, [ds.ids[i] for i in idx], res.adv)
        run.store.put_many(method, rows)
        bar.update(len(idx))
    bar.close()
    return len(todo)
