"""How good a minimal attack is, as AttackBench measures it (Cina, Rony et al., "AttackBench: Evaluating
Gradient-based Attacks for Adversarial Examples", AAAI 2025; ``analysis/utils.py::eval_optimality`` of
attackbench/AttackBench), per judge instead of per Lp norm, and the paired tests between attacks.

Per image and judge, an attack's distance is ``inf`` where it failed and ``0`` where the clean image was already
misclassified. The *ensemble* is the best (smallest) distance any attack reached on that image. An attack's
robust-accuracy-versus-distance curve has area ``A`` up to ``max_dist``, the largest finite ensemble distance;
the ensemble's has area ``A*``; ``optimality = 1 - (A - A*) / (clean_acc * max_dist - A*)``: 1 when the attack
matches the ensemble on every image, 0 when it is no better than an attack that never succeeds.

The areas are those of the step curves, computed exactly: the area under a robust-accuracy curve up to
``max_dist`` is the mean of the per-image distances clipped at ``max_dist``. AttackBench's code integrates the
curve by trapezoids through its distinct distances; with many images the two agree closely (within 0.01 on 2000
simulated images, ``tests/test_minimal.py``), but on few images the trapezoids can put an attack that is worse than
the ensemble on every image above 1 (found on 4 MNIST digits: 1.07 and 1.27, from ties at ``max_dist`` and from
curves that start at an attack's first distance). Here ``0 <= optimality <= 1`` whenever the ensemble includes
the attack.

Examples:
    >>> import numpy as np
    >>> from imperceptible.evaluate.optimality import ensemble, optimality
    >>> a, b = np.array([1.0, 2.0, np.inf]), np.array([2.0, 1.0, 3.0])
    >>> ensemble({"a": a, "b": b}).tolist()
    [1.0, 1.0, 3.0]
    >>> round(optimality(b, ensemble({"a": a, "b": b})), 3), optimality(np.array([1.0, 1.0, 3.0]), ensemble({"a": a, "b": b}))
    (0.75, 1.0)
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def ensemble(distances: dict[str, np.ndarray]) -> np.ndarray:
    """Per image, the smallest distance any attack reached."""
    return np.min(np.stack([np.asarray(v, float) for v in distances.values()]), axis=0)


def optimality(d: np.ndarray, best: np.ndarray) -> float:
    """AttackBench's optimality of the per-image distances ``d`` against the ensemble's ``best``, with the areas
    under the robust-accuracy step curves computed exactly (see the module docstring)."""
    d, best = np.asarray(d, float), np.asarray(best, float)
    finite = best[np.isfinite(best)]
    if not finite.size or finite.max() == 0:
        return float("nan")
    max_dist = float(finite.max())
    clean_acc = np.count_nonzero(best) / len(best)
    # the area under a robust-accuracy step curve up to max_dist is the mean of the distances clipped there
    best_area = float(np.minimum(best, max_dist).mean())
    area = float(np.minimum(d, max_dist).mean())
    denom = clean_acc * max_dist - best_area
    if denom <= 0:
        return float("nan")
    # in [0, 1] exactly (best <= d, both clipped at max_dist); the clip removes only rounding (-2e-16 was seen)
    return float(min(1.0, max(0.0, 1 - (area - best_area) / denom)))


def paired_test(ours: np.ndarray, other: np.ndarray) -> dict:
    """One-sided paired Wilcoxon signed-rank test (scipy), ``H1: ours < other``, over the images both fooled
    (not those misclassified before any attack), with the median of the paired ratios ``ours / other``."""
    a, b = np.asarray(ours, float), np.asarray(other, float)
    # images both fooled; a clean image the model already misclassifies (distance 0 for every attack) is no pair
    keep = np.isfinite(a) & np.isfinite(b) & ~((a == 0) & (b == 0))
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.all(a == b):
        return {"n": int(len(a)), "statistic": None, "p": None, "median_ratio": None}
    r = stats.wilcoxon(a, b, alternative="less")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.median(a / b)
    return {"n": int(len(a)), "statistic": float(r.statistic), "p": float(r.pvalue), "median_ratio": float(ratio)}


__all__ = ["ensemble", "optimality", "paired_test"]
