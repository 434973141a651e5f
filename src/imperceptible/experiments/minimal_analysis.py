"""The analysis of a minimal-attack benchmark's per-sample rows (``imperceptible bench minimal``, its module docstring
says what is computed and why): AttackBench's per-image distances, the ensemble, optimality, medians over the fooled
images, the anytime medians and the decision (:mod:`imperceptible.evaluate.decision`); the summary and the table of
every judge value per image that a run directory stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..costs.metrics import METRICS
from ..evaluate.decision import decide
from ..evaluate.optimality import ensemble, optimality
from ..evaluate.pass_ratio import pass_ratios
from ..runs.summary import summarize

#: the decision's level and the success share below which a peer is compared by optimality alone (the protocol's
#: statistics replace them in a protocol run)
ALPHA = 0.01
MIN_SUCCESS = 0.9
N_BOOT = 2000


def per_image(rows: list[dict], key: str) -> np.ndarray:
    """AttackBench's per-image distances: 0 where the clean image was misclassified, ``inf`` where the attack
    failed, else the judge's value."""
    out = []
    for r in rows:
        v = r["metrics"].get(key)
        out.append(0.0 if not r["clean_correct"] else (v if r["success"] and v is not None else np.inf))
    return np.asarray(out, float)


def analyse(rows: dict[str, list[dict]], keys: list[str], optimises: dict[str, tuple], checkpoints, *, ours: str,
            peers: list[str] | None = None, polished: list[str] | None = None, variants: list[str] | None = None,
            stats: dict | None = None) -> dict:
    """Ensemble, optimality, medians, anytime medians, and the decision of ours against ``peers`` (and, separately,
    against the ``polished`` twins, and of each of ours' ``variants`` against the peers) over ``keys`` (see the
    module docstring)."""
    st = {"alpha": ALPHA, "min_success": MIN_SUCCESS, "n_boot": N_BOOT, "random_state": 0, **(stats or {})}
    values = {k: {m: per_image(r, k) for m, r in rows.items()} for k in keys}
    # attacked (classified correctly before any attack) and fooled, from the rows: a judge may read exactly 0 on a
    # fooled image (a change below its resolution), which per_image's 0 for "misclassified already" cannot tell apart
    attacked = {m: np.array([bool(r["clean_correct"]) for r in rs], bool) for m, rs in rows.items()}
    fooled_by = {m: attacked[m] & np.array([bool(r["success"]) for r in rs], bool) for m, rs in rows.items()}
    per_judge = {}
    for k in keys:
        d = values[k]
        if not any((np.isfinite(v) & fooled_by[m]).any() for m, v in d.items()):  # nothing fooled: nothing to rank
            continue
        best = ensemble(d)
        correct = np.isfinite(best) & next(iter(attacked.values()))
        entry: dict[str, Any] = {"ensemble_median": float(np.median(best[correct])) if correct.any() else None, "methods": {}}
        for m, v in d.items():
            fooled = np.isfinite(v) & fooled_by[m]
            entry["methods"][m] = {"optimality": optimality(v, best), "median": float(np.median(v[fooled])) if
                                   fooled.any() else None, "optimises": k in optimises.get(m, ())}
        per_judge[k] = entry
    anytime = {m: {str(c): {k: _median([_snapshot(r, c, k) for r in rs if r["clean_correct"]]) for k in keys}
                   for c in checkpoints} for m, rs in rows.items()}
    out = {"judges": per_judge, "anytime": anytime if checkpoints else {}, "statistics": st}
    judged = {k: values[k] for k in per_judge}
    kw = dict(optimises=optimises, alpha=st["alpha"], min_success=st["min_success"], n_boot=st["n_boot"],
              random_state=st["random_state"], attacked=next(iter(attacked.values())) if attacked else None)
    peers = [p for p in (peers if peers is not None else [m for m in rows if m != ours]) if p in rows]
    if checkpoints and ours in rows:  # quality per pass: where ours' curve reaches each peer's median at the budget
        out["pass_ratio"] = pass_ratios(anytime, ours, peers, list(per_judge), max(int(c) for c in checkpoints))
    if ours in rows and peers and judged:
        out["decision"] = decide(judged, ours, peers, **kw)
    polished = [p for p in (polished or []) if p in rows]
    if ours in rows and polished and judged:
        out["decision_polished"] = decide(judged, ours, polished, **kw)
    variants = [v for v in (variants or []) if v in rows]
    if variants and peers and judged:
        out["decision_variants"] = {v: decide(judged, v, peers, **kw) for v in variants}
    return out


def unoptimised(minimal: dict, method: str) -> list[str]:
    """The judges of an analysis (:func:`analyse`'s output, a summary's ``minimal``) that ``method`` does not optimise,
    in its order: for ours, the judges its decision is made on."""
    return [k for k, e in minimal["judges"].items() if not e["methods"].get(method, {}).get("optimises")]


def _snapshot(row: dict, c: int, key: str) -> float:
    """The judge value of the best adversarial a sample's attack had queried within ``c`` passes; ``inf`` when it
    had found none (so that a median over all images only falls as the budget grows)."""
    snap = ((row["metrics"].get("anytime") or {}).get(str(c)) or {}).get(key)
    return float("inf") if snap is None else snap


def _median(vals) -> float | None:
    """The median, ``None`` when it is infinite (more than half not fooled yet) or there is nothing."""
    if not vals:
        return None
    m = float(np.median(np.asarray(vals, float)))
    return m if np.isfinite(m) else None


def minimal_summary(store, methods: dict, done: list[str], ds, *, keys: list[str], checkpoints, budget: int, ours: str,
                    peers: list[str], polished: list[str], variants: Sequence[str] = (), stats: dict | None = None,
                    unavailable: dict | None = None, left_out: dict | None = None, describe: dict | None = None) -> dict:
    """The benchmark's summary of the finished methods ``done`` from the store's per-sample rows: the usual
    per-method summary plus the minimal-attack analysis (:func:`analyse`) over ``keys``."""
    optimises = {m: tuple(methods[m].optimises()) for m in done}
    summary = summarize(store, done, ids=ds.ids, unavailable=unavailable or {}, optimises=optimises)
    rows = {m: store.rows(m, ds.ids) for m in done}
    summary.update(dataset=ds.name, n_images=len(ds), budget=budget, ours=ours, peers=[p for p in peers if p in done],
                   polished=[p for p in polished if p in done], checkpoints=list(checkpoints), left_out=left_out or {},
                   judges=[{"key": k, "label": METRICS[k].label, "show": METRICS[k].show} for k in keys],
                   variants=[v for v in variants if v in done],
                   minimal=analyse(rows, keys, optimises, checkpoints, ours=ours, peers=peers, polished=polished,
                                   variants=list(variants), stats=stats), **(describe or {}))
    return summary


def per_image_table(store, methods: list[str], ids: list[str], keys: list[str]) -> dict:
    """Every judge value per image and method (AttackBench's convention: ``"inf"`` where the attack failed, 0 where
    the clean image was misclassified), with the passes, the images classified correctly before any attack
    (``attacked``) and each method's fooled images (``fooled``): what anyone needs to redo a test (a judge may read
    exactly 0 on a fooled image, which the masks tell apart from a misclassified one)."""
    out: dict[str, Any] = {"ids": list(ids), "convention": "inf: not fooled, or fooled with no value from the judge; "
                           "0: misclassified before any attack, or a fooled image the judge reads as 0 (attacked and "
                           "fooled tell them apart); nan: the judge returned no number", "values": {}, "passes": {},
                           "attacked": None, "fooled": {}}
    for m in methods:
        rows = store.rows(m, ids)
        out["values"][m] = {k: [v if np.isfinite(v) else "nan" if np.isnan(v) else "inf"
                                for v in per_image(rows, k).tolist()] for k in keys}
        out["passes"][m] = [(r["forwards"] + (r.get("backwards") or 0.0)) / 2 for r in rows]
        out["attacked"] = out["attacked"] or [bool(r["clean_correct"]) for r in rows]
        out["fooled"][m] = [bool(r["clean_correct"]) and bool(r["success"]) for r in rows]
    return out


__all__ = ["ALPHA", "MIN_SUCCESS", "N_BOOT", "analyse", "minimal_summary", "per_image", "per_image_table"]
