"""The least-perceptible decision of a minimal-attack benchmark, fixed before the runs it governs
(``benchmarks/protocols/minimal.toml``): per judge, does ours hold against every peer?

Inputs are per-image judge values in AttackBench's convention (:func:`~.optimality.optimality`): ``inf`` where an
attack failed, ``0`` where the clean image was already misclassified, else the judge's value (lower is better).

Per judge that ours does not optimise, ours *holds* when

1. its optimality against the ensemble is the highest of all compared attacks, and for each peer the percentile
   bootstrap 95 % interval of ``optimality(ours) - optimality(peer)`` lies above 0 (images resampled with
   replacement, the ensemble recomputed on each resample);
2. against every peer that fooled at least ``min_success`` of the correctly classified images, the one-sided
   paired Wilcoxon signed-rank test on ``log(ours / peer)`` over the images both fooled (H1: ours lower) has a
   Holm-corrected p below ``alpha`` (Holm over every judge x peer pair of the decision); a peer below
   ``min_success`` is compared by optimality alone, which already charges its failures.

Reported beside it, per pair: the median paired ratio ``ours / peer`` with its bootstrap interval, and AttackBench's
own trapezoid optimality (:func:`trapezoid_optimality`, its ``eval_optimality`` formula) beside the exact form.

Examples:
    >>> import numpy as np
    >>> from imperceptible.evaluate.decision import holm
    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .optimality import ensemble, optimality


def trapezoid_optimality(d: np.ndarray, best: np.ndarray) -> float:
    """AttackBench's optimality as its code computes it (``analysis/utils.py::eval_optimality``): each robust-accuracy
    curve integrated by trapezoids through its distinct distances (the attack's clipped at the largest ensemble
    distance). It can exceed 1 on few images (the exact form, :func:`~.optimality.optimality`, cannot); printed beside
    it so that numbers can be compared with AttackBench's tables."""
    d, best = np.asarray(d, float), np.asarray(best, float)
    if not np.isfinite(best).any() or np.nanmax(best[np.isfinite(best)]) == 0:
        return float("nan")
    b_vals, b_counts = np.unique(best, return_counts=True)
    top = float(b_vals[np.isfinite(b_vals)].max())
    clean = np.count_nonzero(best) / len(best)
    keep = np.isfinite(b_vals)
    best_area = np.trapezoid((1 - b_counts.cumsum() / len(best))[keep], b_vals[keep])
    a_vals, a_counts = np.unique(np.minimum(d, top), return_counts=True)
    area = np.trapezoid(1 - a_counts.cumsum() / len(d), a_vals)
    denom = clean * top - best_area
    return float(1 - (area - best_area) / denom) if denom > 0 else float("nan")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels' ``multipletests(method="holm")``)."""
    if not len(pvalues):
        return []
    return [float(v) for v in multipletests(np.asarray(pvalues, float), method="holm")[1]]


def paired_log_ratios(ours: np.ndarray, other: np.ndarray, attacked: np.ndarray | None = None) -> np.ndarray:
    """``log(ours / other)`` over the images both fooled (``attacked``: classified correctly before the attack, as a
    mask; without it, the images on which some value is not 0). A judge can read exactly 0 on a fooled image (a change
    below its resolution): the ratio's limit is kept, ``-inf`` where ours reads 0 and the other does not, ``+inf``
    the other way, 0 (a tie) where both read 0, so that such an image counts for the side that reads 0 instead of
    being dropped (the protocol's rule, amended before the test stage: see ``benchmarks/protocols/minimal.toml``).

    Examples:
        >>> import numpy as np
        >>> from imperceptible.evaluate.decision import paired_log_ratios
        >>> paired_log_ratios(np.array([0.0, 1.0, 2.0, np.inf]), np.array([1.0, 0.0, 2.0, 1.0]), np.ones(4, bool)).tolist()
        [-inf, inf, 0.0]
    """
    a, b = np.asarray(ours, float), np.asarray(other, float)
    mask = np.asarray(attacked, bool) if attacked is not None else (a != 0) | (b != 0)
    keep = mask & np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(a) - np.log(b)
    lr[(a == 0) & (b == 0)] = 0.0
    return lr


def log_ratio_test(ours: np.ndarray, other: np.ndarray, attacked: np.ndarray | None = None) -> dict:
    """The one-sided paired Wilcoxon signed-rank test (scipy, its default zero_method: ties dropped) on
    ``log(ours / other)`` over the images both fooled (:func:`paired_log_ratios`), H1: ours lower; and the median
    paired ratio. An infinite log ratio (one side read exactly 0) is ranked above every finite one, as its limit is:
    it enters scipy as a finite value beyond the largest finite magnitude, which leaves every rank unchanged."""
    lr = paired_log_ratios(ours, other, attacked)
    out = {"n": int(lr.size), "median_ratio": float(np.exp(np.median(lr))) if lr.size else None,
           "statistic": None, "p": None, "n_zero_sided": int(np.isinf(lr).sum())}
    if lr.size >= 2 and np.any(lr != 0):
        finite = lr[np.isfinite(lr)]
        big = 2.0 * (float(np.abs(finite).max()) if finite.size else 1.0) + 1.0
        r = stats.wilcoxon(np.where(np.isinf(lr), np.sign(lr) * big, lr), alternative="less")
        out.update(statistic=float(r.statistic), p=float(r.pvalue))
    return out


def bootstrap(values: Mapping[str, np.ndarray], ours: str, peers: Sequence[str], *, n_boot: int = 2000,
              random_state: int = 0, confidence: float = 0.95, attacked: np.ndarray | None = None) -> dict:
    """Percentile bootstrap intervals, images resampled with replacement (the same draw for every attack): of each
    attack's optimality (the ensemble of ``values`` recomputed per resample), of ``optimality(ours) - optimality(peer)``
    and of the median paired ratio ``ours / peer`` over the images both fooled (:func:`paired_log_ratios`; its ends are
    the resamples' order statistics, 0 or ``inf`` where a judge's zeros make them so)."""
    rng = np.random.default_rng(random_state)
    names = list(values)
    mat = np.stack([np.asarray(values[m], float) for m in names])  # (methods, images)
    n = mat.shape[1]
    opt: dict[str, list[float]] = {m: [] for m in names}
    ratio: dict[str, list[float]] = {p: [] for p in peers}
    io = names.index(ours)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        sample = mat[:, idx]
        best = sample.min(0)
        for j, m in enumerate(names):
            opt[m].append(optimality(sample[j], best))
        for p in peers:
            lr = paired_log_ratios(sample[io], sample[names.index(p)], None if attacked is None else attacked[idx])
            ratio[p].append(float(np.median(lr)) if lr.size else np.nan)  # on the log scale: +-inf kept
    lo, hi = 50 * (1 - confidence), 50 * (1 + confidence)

    def interval(v) -> list[float | None]:
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        return [float(np.percentile(v, lo)), float(np.percentile(v, hi))] if v.size else [None, None]

    def ratio_interval(v) -> list[float | None]:
        # a resample's median log ratio may be -inf or +inf (more than half of its pairs read 0 on one side): kept, so
        # that the interval holds its own estimate; its ends are order statistics (numpy's "lower" and "higher"),
        # which need no interpolation across an infinity; NaN (the two middle pairs -inf and +inf) is left out
        v = np.asarray(v, float)
        v = v[~np.isnan(v)]
        if not v.size:
            return [None, None]
        return [float(np.exp(np.percentile(v, lo, method="lower"))), float(np.exp(np.percentile(v, hi, method="higher")))]

    return {"optimality": {m: interval(opt[m]) for m in names},
            "difference": {p: interval(np.asarray(opt[ours]) - np.asarray(opt[p])) for p in peers},
            "median_ratio": {p: ratio_interval(ratio[p]) for p in peers}, "n_boot": n_boot,
            "random_state": random_state, "confidence": confidence}


def success_share(v: np.ndarray, attacked: np.ndarray | None = None) -> float:
    """Of the correctly classified images (``attacked``; without it, those whose value is not 0), the share the attack
    fooled (finite value). A judge may read exactly 0 on a fooled image (a change below its resolution), so the mask,
    where the caller has it, is what tells a fooled image from one misclassified before any attack."""
    v = np.asarray(v, float)
    correct = (v != 0) if attacked is None else np.asarray(attacked, bool)
    return float(np.isfinite(v[correct]).mean()) if correct.any() else float("nan")


def decide(per_judge: Mapping[str, Mapping[str, np.ndarray]], ours: str, peers: Sequence[str], *,
           optimises: Mapping[str, Sequence[str]], alpha: float = 0.01, min_success: float = 0.9, n_boot: int = 2000,
           random_state: int = 0, attacked: np.ndarray | None = None) -> dict:
    """The decision (see the module docstring) over the judges of ``per_judge`` (``{judge: {method: values}}``, every
    compared method on the same images) that ``ours`` does not optimise. ``peers`` are the attacks ours is compared
    with; every method of ``per_judge`` belongs to the ensemble. ``attacked`` marks the images classified correctly
    before any attack (without it, those on which some value is not 0: see :func:`paired_log_ratios`)."""
    judges = [k for k in per_judge if k not in optimises.get(ours, ())]
    rows: dict[str, dict] = {}
    tests: list[tuple[str, str]] = []
    for k in judges:
        vals = {m: np.asarray(v, float) for m, v in per_judge[k].items()}
        best = ensemble(vals)
        opt = {m: optimality(v, best) for m, v in vals.items()}
        trap = {m: trapezoid_optimality(v, best) for m, v in vals.items()}
        boot = bootstrap(vals, ours, peers, n_boot=n_boot, random_state=random_state, attacked=attacked)
        pairs = {}
        for p in peers:
            t = log_ratio_test(vals[ours], vals[p], attacked)
            share = success_share(vals[p], attacked)
            tested = share >= min_success
            pairs[p] = {**t, "peer_success": share, "tested": tested, "optimality_difference": opt[ours] - opt[p],
                        "difference_ci": boot["difference"][p], "median_ratio_ci": boot["median_ratio"][p],
                        "peer_optimality": opt[p], "peer_optimality_trapezoid": trap[p], "optimises": k in optimises.get(p, ())}
            if tested and t["p"] is not None:
                tests.append((k, p))
        rows[k] = {"ours_optimality": opt[ours], "ours_optimality_trapezoid": trap[ours],
                   "ours_optimality_ci": boot["optimality"][ours], "optimality": opt, "optimality_ci": boot["optimality"],
                   "optimality_trapezoid": trap, "peers": pairs}
    adjusted = holm([rows[k]["peers"][p]["p"] for k, p in tests]) if tests else []
    for (k, p), ph in zip(tests, adjusted):
        rows[k]["peers"][p]["p_holm"] = ph
    for r in rows.values():
        short = {}
        for p, c in r["peers"].items():
            lo = c["difference_ci"][0]
            by_opt = c["optimality_difference"] > 0 and lo is not None and lo > 0
            by_test = (not c["tested"]) or (c.get("p_holm") is not None and c["p_holm"] < alpha)
            if c["tested"] and c["p"] is None:
                by_test = False  # fewer than two pairs, or every pair tied: no test, so not shown
            if not (by_opt and by_test):
                short[p] = {"optimality_difference": c["optimality_difference"], "difference_ci": c["difference_ci"],
                            "p_holm": c.get("p_holm"), "median_ratio": c["median_ratio"], "tested": c["tested"]}
        highest = all(r["ours_optimality"] > v for m, v in r["optimality"].items() if m in peers)
        r.update(held=bool(highest and not short), highest=bool(highest), short_of=short)
    return {"judges": rows, "held": [k for k in judges if rows[k]["held"]],
            "not_held": [k for k in judges if not rows[k]["held"]], "alpha": alpha, "min_success": min_success,
            "tests": len(tests), "correction": "Holm over judges x peers", "n_boot": n_boot, "random_state": random_state}


__all__ = ["bootstrap", "decide", "holm", "log_ratio_test", "paired_log_ratios", "success_share", "trapezoid_optimality"]
