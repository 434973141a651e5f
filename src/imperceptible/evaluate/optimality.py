"""How good a minimal attack is, as AttackBench measures it (Cina, Rony et al., "AttackBench: Evaluating
Gradient-based Attacks for Adversarial Examples", AAAI 2025; ``analysis/utils.py::eval_optimality`` of
attackbench/AttackBench), per judge instead of per Lp norm, and the paired tests between attacks.

Per image and judge, an attack's distance is ``inf`` where it failed and ``0`` where the clean image was already
misclassified. The *ensemble* is the best (smallest) distance any attack reached on that image. An attack's
robust-accuracy-versus-distance curve has area ``A`` (trapezoids over its sorted distances, clipped at
``max_dist``, the largest finite ensemble distance); the ensemble's has area ``A*``; ``optimality = 1 - (A - A*) /
(clean_acc * max_dist - A*)``: 1 when the attack matches the ensemble on every image, 0 when it is no better than
an attack that never succeeds.

Examples:
    >>> import numpy as np
    >>> from imperceptible.evaluate.optimality import ensemble, optimality
    >>> a, b = np.array([1.0, 2.0, np.inf]), np.array([2.0, 1.0, 3.0])
    >>> ensemble({"a": a, "b": b}).tolist()
    [1.0, 1.0, 3.0]
    >>> round(optimality(b, ensemble({"a": a, "b": b})), 3), optimality(np.array([1.0, 1.0, 3.0]), ensemble({"a": a, "b": b}))
    (0.875, 1.0)
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)) if len(x) > 1 else 0.0


def _curve(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct distances and the robust accuracy after each (the share of images still not fooled)."""
    dist, counts = np.unique(d, return_counts=True)
    return dist, 1 - counts.cumsum() / len(d)


def ensemble(distances: dict[str, np.ndarray]) -> np.ndarray:
    """Per image, the smallest distance any attack reached."""
    return np.min(np.stack([np.asarray(v, float) for v in distances.values()]), axis=0)


def optimality(d: np.ndarray, best: np.ndarray) -> float:
    """AttackBench's optimality of the per-image distances ``d`` against the ensemble's ``best``."""
    d, best = np.asarray(d, float), np.asarray(best, float)
    finite = best[np.isfinite(best)]
    if not finite.size or finite.max() == 0:
        return float("nan")
    max_dist = float(finite.max())
    clean_acc = np.count_nonzero(best) / len(best)
    bd, bra = _curve(np.minimum(best, max_dist))
    best_area = _trapezoid(bra, bd)
    ad, ara = _curve(np.minimum(d, max_dist))
    area = _trapezoid(ara, ad)
    denom = clean_acc * max_dist - best_area
    return float(1 - (area - best_area) / denom) if denom > 0 else float("nan")


def paired_test(ours: np.ndarray, other: np.ndarray) -> dict:
    """One-sided paired Wilcoxon signed-rank test (scipy), ``H1: ours < other``, over the images both fooled,
    with the median of the paired ratios ``ours / other``."""
    a, b = np.asarray(ours, float), np.asarray(other, float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.all(a == b):
        return {"n": int(len(a)), "statistic": None, "p": None, "median_ratio": None}
    r = stats.wilcoxon(a, b, alternative="less")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.median(a / b)
    return {"n": int(len(a)), "statistic": float(r.statistic), "p": float(r.pvalue), "median_ratio": float(ratio)}


__all__ = ["ensemble", "optimality", "paired_test"]
