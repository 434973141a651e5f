"""Summaries recomputed from the per-sample store (so a resumed run gives the same numbers).

Per method (keys are stable, snake_case):

* ``n``, ``n_clean_correct``; ``success_rate`` = images whose label went from correct to incorrect /
  images correctly classified (8-bit images); ``success_rate_float`` (the float iterates);
  ``confidence_reached_rate`` (margin > a);
* distances - means over the successfully attacked, correctly classified images: ``l1``, ``l2``,
  ``linf``, ``ssim``, ``ssim_distance`` (1 - SSIM), ``ms_ssim_distance``, ``ciede2000``, ``lpips_x1000``,
  ``dists_x1000`` (``null`` when unavailable; the reason is under ``unavailable``), and the saliency-map
  distances ``saliency_l1``, ``saliency_l2``, ``saliency_linf``, ``saliency_ssim_distance``;
* ``defense_<name>`` - success rate after that defense, over the correctly classified images; the
  top-level ``clean_defense`` holds the baseline: the share of those images the defense alone (no
  attack) makes misclassified;
* ``median`` - the median of every distance over the same images (``{"l2": .., ...}``; the minimal-attack
  benchmark ranks by medians);
* ``time_s`` (attack wall time summed over batches), ``time_per_image_s``, ``mean_steps`` (over correctly
  classified images), ``forwards_per_image``, ``backwards_per_image`` and ``passes_per_image`` (counted passes
  through the model, AttackBench's; a pass is a forward and a backward) with ``passes_max``,
  ``time_ratio_to_pgd_l2`` (same run);
* ``visibility`` - per human-vision judge with a visibility threshold (ColorVideoVDP, SSIMULACRA2, butteraugli): the
  share of the fooled images whose change it predicts to be below its threshold, with a bootstrap interval
  (:func:`~imperceptible.evaluate.visibility.visibility_by_judge`);
* ``optimises`` - the metric keys the method minimises or bounds (its own objective), when the caller knows.
"""

from __future__ import annotations

import math
import statistics

from ..costs.metrics import KEYS, SALIENCY_KEYS
from ..evaluate.evaluator import DEFENSES
from ..evaluate.visibility import visibility_by_judge
from .store import ResultStore

DISTANCE_KEYS = KEYS + SALIENCY_KEYS


def _mean(v: list[float]) -> float | None:
    v = [x for x in v if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else None


def summarize_rows(rows: list[dict]) -> dict:
    n = len(rows)
    correct = [r for r in rows if r["clean_correct"]]
    fooled = [r for r in correct if r["success"]]
    nc = len(correct)
    out: dict = {
        "n": n,
        "n_clean_correct": nc,
        "success_rate": len(fooled) / nc if nc else None,
        "success_rate_float": sum(bool(r["success_float"]) for r in correct) / nc if nc else None,
        "confidence_reached_rate": sum(bool(r["reached"]) for r in correct) / nc if nc else None,
    }
    medians = {}
    for k in DISTANCE_KEYS:
        vals = [r["metrics"].get(k) for r in fooled]
        out[k] = _mean(vals)
        finite = [v for v in vals if v is not None and math.isfinite(v)]
        medians[k] = statistics.median(finite) if finite else None
    out["median"] = medians
    out["visibility"] = visibility_by_judge({k: [r["metrics"].get(k) for r in fooled] for k in DISTANCE_KEYS
                                             if any(k in r["metrics"] for r in fooled)})
    for d in DEFENSES:
        vals = [r["metrics"].get(f"defense_{d}") for r in correct]
        out[f"defense_{d}"] = _mean(vals) if any(v is not None for v in vals) else None
    t = sum(r["time_s"] for r in rows)
    out["time_s"] = t
    out["time_per_image_s"] = t / n if n else None
    out["mean_steps"] = _mean([r["steps"] for r in correct if r["steps"] >= 0])  # -1: ended by the pass budget
    out["forwards_per_image"] = _mean([r["forwards"] for r in rows])
    out["backwards_per_image"] = _mean([r.get("backwards") or 0.0 for r in rows])
    passes = [(r["forwards"] + (r.get("backwards") or 0.0)) / 2 for r in rows]
    out["passes_per_image"] = _mean(passes)
    out["passes_max"] = max(passes) if passes else None
    return out


def summarize(store: ResultStore, methods: list[str] | None = None, *, ids: list[str] | None = None,
              reference: str = "pgd-l2", unavailable: dict | None = None, optimises: dict | None = None) -> dict:
    """Summaries of ``methods`` over the samples ``ids`` (this run's samples; default: every row);
    ``optimises``: method -> the metric keys it optimises (:meth:`imperceptible.attacks.Attack.optimises`)."""
    methods = methods or store.methods()
    rows = {m: store.rows(m, ids) for m in methods}
    res = {m: summarize_rows(r) for m, r in rows.items()}
    for m, keys in (optimises or {}).items():
        if m in res:
            res[m]["optimises"] = list(keys)
    ref = res.get(reference, {}).get("time_s")
    for m in res.values():
        m["time_ratio_to_pgd_l2"] = m["time_s"] / ref if ref else None
    first = next((r for r in rows.values() if r), [])
    correct = [r for r in first if r["clean_correct"]]
    clean = {d: _mean([r["metrics"].get(f"clean_defense_{d}") for r in correct]) for d in DEFENSES}
    return {"methods": res, "unavailable": dict(unavailable or {}),
            "clean_defense": {d: v for d, v in clean.items() if v is not None}}
