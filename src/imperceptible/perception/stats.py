"""The statistics of a perceptibility study, from statsmodels and scipy.

* :func:`wilson` - a detection rate and its Wilson score interval (``statsmodels proportion_confint``);
* :func:`above_chance` - the exact one-sided binomial test of a 2AFC rate against 1/2 (``scipy binomtest``);
* :func:`d_prime` - sensitivity of a yes/no design, ``Phi^-1(H) - Phi^-1(F)`` with the log-linear correction
  (0.5 added to each count, Hautus 1995) so rates of 0 or 1 stay finite;
* :func:`pairwise` - two-proportion z-tests between methods (``proportions_ztest``), Holm-corrected
  (``multipletests``);
* :func:`spearman_ci` - Spearman's rank correlation with a percentile bootstrap interval over units.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest


def wilson(k: int, n: int, *, alpha: float = 0.05) -> dict:
    """Rate ``k / n`` with its Wilson interval."""
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "ci_low": None, "ci_high": None}
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    return {"k": int(k), "n": int(n), "rate": k / n, "ci_low": float(lo), "ci_high": float(hi)}


def above_chance(k: int, n: int, chance: float = 0.5) -> float | None:
    """One-sided exact binomial p-value of ``H1: rate > chance``."""
    return float(stats.binomtest(int(k), int(n), chance, alternative="greater").pvalue) if n else None


def d_prime(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float | None:
    """Sensitivity ``Phi^-1(H) - Phi^-1(F)`` with the log-linear correction."""
    if not n_signal or not n_noise:
        return None
    h = (hits + 0.5) / (n_signal + 1)
    f = (false_alarms + 0.5) / (n_noise + 1)
    return float(stats.norm.ppf(h) - stats.norm.ppf(f))


def pairwise(counts: dict[str, tuple[int, int]], *, alpha: float = 0.05) -> list[dict]:
    """Every pair of methods: difference of rates, z, raw and Holm-adjusted two-sided p."""
    pairs = [(a, b) for a, b in itertools.combinations(counts, 2) if counts[a][1] and counts[b][1]]
    rows, pvals = [], []
    for a, b in pairs:
        (ka, na), (kb, nb) = counts[a], counts[b]
        if ka + kb in (0, na + nb):  # both rates 0 or both 1: no difference to test
            z, p = 0.0, 1.0
        else:
            z, p = proportions_ztest([ka, kb], [na, nb])
        rows.append({"a": a, "b": b, "difference": ka / na - kb / nb, "z": float(z), "p": float(p)})
        pvals.append(float(p))
    if pvals:
        reject, adj, _, _ = multipletests(pvals, alpha=alpha, method="holm")
        for r, q, rej in zip(rows, adj, reject):
            r["p_holm"], r["significant"] = float(q), bool(rej)
    return rows


def spearman_ci(x: np.ndarray, y: np.ndarray, units: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                confidence: float = 0.95) -> dict | None:
    """Spearman's rho of ``x`` and ``y`` with a percentile bootstrap interval resampling whole ``units``
    (e.g. images), so cells of one unit stay together. The resamples are ranked all at once (average ranks
    for ties, as scipy's ``spearmanr``)."""
    x, y, units = np.asarray(x, float), np.asarray(y, float), np.asarray(units)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, units = x[ok], y[ok], units[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = float(stats.spearmanr(x, y).statistic)
    uniq, inv = np.unique(units, return_inverse=True)
    members = [np.flatnonzero(inv == u) for u in range(len(uniq))]
    sizes = np.array([len(m) for m in members])
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, len(uniq), (n_boot, len(uniq)))
    if (sizes == sizes[0]).all():  # every unit has as many cells: one array of resamples
        take = np.stack([np.concatenate([members[u] for u in row]) for row in picks])
        rx, ry = stats.rankdata(x[take], axis=1), stats.rankdata(y[take], axis=1)
        rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
        den = np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
        boots = ((rx * ry).sum(1) / np.where(den > 0, den, np.nan))
        boots = boots[np.isfinite(boots)]
    else:
        boots = []
        for row in picks:
            take = np.concatenate([members[u] for u in row])
            if np.ptp(x[take]) > 0 and np.ptp(y[take]) > 0:
                boots.append(stats.spearmanr(x[take], y[take]).statistic)
        boots = np.asarray(boots)
    a = (1 - confidence) / 2
    lo, hi = (np.quantile(boots, [a, 1 - a]) if len(boots) else (np.nan, np.nan))
    return {"rho": rho, "ci_low": float(lo), "ci_high": float(hi), "cells": int(len(x)), "units": int(len(uniq))}


__all__ = ["above_chance", "d_prime", "pairwise", "spearman_ci", "wilson"]
