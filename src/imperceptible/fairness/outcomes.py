"""The outcomes fairness work reports beside a slope, per model, from its per-image correctness.

* **bottom- and top-quintile accuracy**: the groups with at least ``min_count`` images, sorted by covariate,
  split into five equal-count bins of groups; the pooled accuracy of the lowest and the highest bin, and their
  gap (top minus bottom) - de Vries et al. 2019 report accuracy by income bin;
* **worst group, shrunk**: the lowest per-group accuracy after empirical-Bayes shrinkage toward the mean (a
  beta prior fitted to the groups by the method of moments; posterior means), so that a small country is not the
  worst by chance alone;
* **worst class**: the lowest per-class accuracy (Xu et al. 2021);
* **worst cue group**: the lowest accuracy over the groups label x (cue agrees / misleads) with at least
  ``min_count`` images (Group DRO's worst-group accuracy, Sagawa et al. 2020);
* **levelling up and down** against a reference arm: the change of the bottom and of the top quintile's accuracy
  (a gap that shrinks because the top fell is levelling down);
* :func:`logit_slope`: an image-level logistic model ``correct ~ covariate`` with the images clustered by group
  (a GEE; see there why not statsmodels' GLMM), a second test of the slope that uses every group.

Examples:
    >>> import numpy as np, pandas as pd
    >>> from imperceptible.fairness.outcomes import quintile_accuracy, worst_class
    >>> groups = np.repeat(list("abcdefghij"), 60)
    >>> cov = {g: float(i) for i, g in enumerate("abcdefghij")}
    >>> correct = np.repeat([0.5, 0.5, .6, .6, .7, .7, .8, .8, .9, .9], 60) > np.tile(np.linspace(0, 1, 60), 10)
    >>> q = quintile_accuracy(correct, groups, cov, min_count=50)
    >>> round(q["bottom"], 3), round(q["top"], 3), round(q["gap"], 3)
    (0.5, 0.9, 0.4)
    >>> worst_class(np.array([1, 1, 0, 1]), np.array([0, 0, 1, 1]))
    0.5
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .tests import MIN_COUNT

QUINTILES = 5


def quintile_accuracy(correct: np.ndarray, groups, covariates: dict, *, min_count: int = MIN_COUNT) -> dict:
    """Pooled accuracy of the lowest and highest covariate quintile of the kept groups, and their gap."""
    df = pd.DataFrame({"group": list(groups), "ok": np.asarray(correct, float)})
    by = df.groupby("group")["ok"].agg(["size", "sum"])
    by = by[by["size"] >= min_count]
    by = by.assign(cov=[covariates[g] for g in by.index]).sort_values("cov", kind="stable")
    if len(by) < QUINTILES:
        return {"bottom": None, "top": None, "gap": None, "groups_per_quintile": 0}
    bins = np.array_split(np.arange(len(by)), QUINTILES)
    low, high = by.iloc[bins[0]], by.iloc[bins[-1]]
    bottom, top = low["sum"].sum() / low["size"].sum(), high["sum"].sum() / high["size"].sum()
    return {"bottom": float(bottom), "top": float(top), "gap": float(top - bottom), "groups_per_quintile": len(bins[0])}


def shrunk_group_accuracy(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Posterior mean accuracies under a beta prior fitted to the groups by the method of moments."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k / n
    m = np.average(p, weights=n)
    v = np.average((p - m) ** 2, weights=n) - m * (1 - m) * np.mean(1 / n)  # between-group variance
    if v <= 0 or not 0 < m < 1:
        return np.full_like(p, m)  # no spread beyond binomial noise: every group at the mean
    strength = m * (1 - m) / v - 1
    a, b = m * strength, (1 - m) * strength
    return (k + a) / (n + a + b)


def worst_group(correct: np.ndarray, groups, *, min_count: int = 1) -> dict:
    """The lowest empirical-Bayes-shrunk group accuracy (and the raw one) over groups with ``min_count`` images."""
    df = pd.DataFrame({"group": list(groups), "ok": np.asarray(correct, float)})
    by = df.groupby("group")["ok"].agg(["size", "sum"])
    by = by[by["size"] >= min_count]
    shrunk = shrunk_group_accuracy(by["sum"].to_numpy(), by["size"].to_numpy())
    i = int(np.argmin(shrunk))
    return {"shrunk": float(shrunk[i]), "group": str(by.index[i]), "raw_min": float((by["sum"] / by["size"]).min())}


def worst_class(correct: np.ndarray, labels: np.ndarray) -> float:
    """The lowest per-class accuracy."""
    s = pd.Series(np.asarray(correct, float)).groupby(np.asarray(labels)).mean()
    return float(s.min())


def worst_cue_group(correct: np.ndarray, labels: np.ndarray, agrees: np.ndarray, *, min_count: int = MIN_COUNT) -> float | None:
    """The lowest accuracy over the groups (label, cue agrees or misleads) with at least ``min_count`` images."""
    df = pd.DataFrame({"ok": np.asarray(correct, float), "y": np.asarray(labels), "a": np.asarray(agrees, bool)})
    by = df.groupby(["y", "a"])["ok"].agg(["size", "mean"])
    by = by[by["size"] >= min_count]
    return float(by["mean"].min()) if len(by) else None


def levelling(arm: dict, reference: dict) -> dict:
    """Change of the bottom and top quintile accuracy against a reference (positive bottom: levelling up; negative
    top: levelling down), and of the gap."""
    if arm.get("bottom") is None or reference.get("bottom") is None:
        return {"bottom_change": None, "top_change": None, "gap_change": None}
    return {"bottom_change": arm["bottom"] - reference["bottom"], "top_change": arm["top"] - reference["top"],
            "gap_change": arm["gap"] - reference["gap"]}


def logit_slope(df: pd.DataFrame, *, by: str | None = None) -> dict | None:
    """Image-level logistic regression ``correct ~ covariate`` (with ``by``: ``* by``, the interaction being the
    difference of slopes), images clustered by ``group``: a GEE with an exchangeable working correlation and
    robust (sandwich) standard errors (statsmodels). ``df`` has columns ``correct, covariate, group`` (and ``by``).

    Why not a mixed model: statsmodels' only logistic GLMM (``BinomialBayesMixedGLM``) gave 95 % intervals for the
    slope of a group-level covariate that covered the truth in 52 % (variational Bayes) and 83 % (Laplace, most
    fits not converged) of 60 simulated studies; this GEE covered it in 93 % (``tests/test_fairness.py``)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from scipy import stats

    if df["group"].nunique() < 3:
        return None
    formula = "correct ~ covariate" + (f" * {by}" if by else "")
    name = f"covariate:{by}" if by else "covariate"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.gee(formula, "group", df, family=sm.families.Binomial(),
                      cov_struct=sm.cov_struct.Exchangeable()).fit()
    est, se = float(fit.params[name]), float(fit.bse[name])
    z = est / se if se > 0 else float("nan")
    return {"term": name, "estimate": est, "se": se, "z": z, "p_two_sided": float(2 * stats.norm.sf(abs(z))),
            "p_less": float(stats.norm.cdf(z)), "ci_low": est - 1.96 * se, "ci_high": est + 1.96 * se,
            "images": int(len(df)), "clusters": int(df["group"].nunique())}


__all__ = ["levelling", "logit_slope", "quintile_accuracy", "shrunk_group_accuracy", "worst_class",
           "worst_cue_group", "worst_group"]
