"""Exploratory, on a protocol run's TUNE split only: ours' refinement geometry (``geometry``, the exponent of the
cost's step metric) scored against the stored grid points of every attack by the tune stage's own rule.

Not a protocol run and not a claim: the protocol ``minimal-heldout-1`` fixes ours' grid to the step decay ``gamma``
with ``geometry = 0.2`` (chosen on foolbox's photos). This script reruns ours on the tune digits of a finished tune
stage (the run directory's originals and labels) at each ``--geometry`` value, ``gamma`` at the run's chosen value,
judges the results with the run's judges, and ranks every point by the tuning rule (mean optimality over the run's
judges against the ensemble of all stored grid points and the new ones). Per-digit values are stored, so the table can
be redone. Held-out evidence needs a protocol written before its runs, on digits no protocol has tested.

    python benchmarks/explore_geometry.py runs/protocol/tune-mnist-cnn-200 --model mnist-cnn \\
        --geometry 0.2 0.5 1.0 --out benchmarks/results/explore_geometry_mnist-cnn-200.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imperceptible.attacks.human_perc_ot import HumanPercOT
from imperceptible.costs.distances import DistanceMeter
from imperceptible.evaluate.optimality import ensemble, optimality
from imperceptible.experiments.minimal_analysis import per_image
from imperceptible.models.registry import get as get_model
from imperceptible.runs.store import ResultStore

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tables.py beside it: the table the docs quote
from tables import explore_geometry  # noqa: E402

OURS = "human-perc-ot"


def load_png(path: Path) -> torch.Tensor:
    a = np.asarray(Image.open(path), dtype=np.float32) / 255
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a)[None]


def stored(run_dir: Path) -> tuple[dict, dict[str, dict[str, dict]], list[str]]:
    """The run's rows (the run store's, as finish.py and minimal_figures.py read them): labels by id, and per grid point
    the per-digit (success, clean_correct, metrics)."""
    labels: dict[str, int] = {}
    points: dict[str, dict[str, dict]] = {}
    with ResultStore(run_dir / "results.sqlite") as store:
        for m in store.methods():
            for r in store.rows(m):
                labels[r["id"]] = int(r["label"])
                points.setdefault(m, {})[r["id"]] = {"success": bool(r["success"]),
                                                     "clean_correct": bool(r["clean_correct"]), "metrics": r["metrics"]}
    return labels, points, sorted(labels)


def background_share(adv: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Per digit: the share of the change's squared L2 norm on the pixels that are 0 in the original (MNIST's blank
    background): C&W's tanh space cannot move them (its derivative vanishes at the box's edge); L2 steps can."""
    e = (adv - x).double() ** 2
    return ((e * (x == 0)).flatten(1).sum(1) / e.flatten(1).sum(1).clamp_min(1e-30)).numpy()


def median_or_none(v: np.ndarray) -> float | None:
    """The median, or None (JSON null) where no digit was fooled."""
    return float(np.median(v)) if v.size else None


def image_dir(run_dir: Path, label: str) -> Path | None:
    """A grid point's image folder: its label with '|' and ',' as '_', then '-' and a hash."""
    hits = sorted((run_dir / "images").glob(label.replace("|", "_").replace(",", "_") + "-*"))
    return hits[0] if len(hits) == 1 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="a finished tune stage's directory (runs/protocol/tune-RUN)")
    p.add_argument("--model", required=True)
    p.add_argument("--geometry", type=float, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()

    cfg = json.loads((a.run_dir / "summary.json").read_text())
    budget, judges = int(cfg["budget"]), list(cfg["minimal"]["judges"])
    tuning = json.loads((a.run_dir / "tuning.json").read_text())
    chosen = tuning["chosen"][OURS]
    gamma = float(chosen["settings"]["gamma"])
    labels, points, ids = stored(a.run_dir)
    x = torch.cat([load_png(a.run_dir / "images" / "original" / f"{i}.png") for i in ids])
    y = torch.tensor([labels[i] for i in ids])
    model = get_model(a.model).eval()
    with torch.no_grad():
        clean_correct = (model(x).argmax(1) == y).numpy()
    meter = DistanceMeter(learned=False, keys=tuple(judges), image_size=int(x.shape[-1]))
    shares = {}
    for m in points:
        d = image_dir(a.run_dir, m)
        if d is not None:
            shares[m] = background_share(torch.cat([load_png(d / f"{i}.png") for i in ids]), x)
    for g in a.geometry:
        name = f"{OURS}|gamma={gamma:g},geometry={g:g}"
        t = time.perf_counter()
        keep = torch.from_numpy(clean_correct)
        res = HumanPercOT(budget=budget, gamma=gamma, geometry=g)(model, x[keep], y[keep])
        adv = x.clone()
        adv[keep] = res.adv
        with torch.no_grad():
            fooled = (model(adv).argmax(1) != y).numpy() & clean_correct
        vals = {k: v.double().numpy() for k, v in meter(adv, x).items() if k in judges}
        shares[name] = background_share(adv, x)
        points[name] = {i: {"success": bool(fooled[n]), "clean_correct": bool(clean_correct[n]),
                            "metrics": {k: float(vals[k][n]) for k in judges}} for n, i in enumerate(ids)}
        print(f"{name}: {time.perf_counter() - t:.0f} s, fooled {int(fooled.sum())} of {int(clean_correct.sum())}",
              flush=True)

    per_judge = {k: {m: per_image([rows[i] for i in ids], k) for m, rows in points.items()} for k in judges}
    opt = {k: {m: optimality(d, ensemble(per_judge[k])) for m, d in per_judge[k].items()} for k in judges}
    score = {m: float(np.nanmean([opt[k][m] for k in judges])) for m in points}
    out = {"run_dir": str(a.run_dir), "model": a.model, "budget": budget, "gamma": gamma, "judges": judges,
           "ids": ids, "note": __doc__.split("\n\n")[1].replace("\n", " "),
           "score": score, "optimality": opt,
           "medians_fooled": {m: {k: float(np.median(d[np.isfinite(d) & (d > 0)])) if np.any(np.isfinite(d) & (d > 0))
                                  else None for k, d in ((k, per_judge[k][m]) for k in judges)} for m in points},
           "background_share_median": {m: median_or_none(v[[points[m][i]["success"] and points[m][i]["clean_correct"]
                                                                 for i in ids]]) for m, v in shares.items()},
           "convention": "per_digit: one value per id; null where the attack failed, 0 where the clean digit was "
                         "misclassified (no attack); background_share: over the fooled digits",
           "per_digit": {m: {k: [None if not np.isfinite(v) else float(v) for v in per_judge[k][m]] for k in judges}
                         | {"background_share": [float(v) for v in shares[m]]} for m in points if "geometry=" in m}}
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(explore_geometry([out]))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
