"""Comparing the arms of a fairness study whose models come in independent replicates.

A study has arms (ERM, a no-attack control, DRO with each attack ...) and, per arm, ``R`` independent
replicates (one Algorithm 2 dataset ``D`` each, or one training subset for ERM) of ``K`` models each.
Models sampled from the same ``D`` are not independent, so a comparison whose p-value is to be about the
*methods* must treat ``D`` as the unit (:func:`compare_arms`):

* **D-level Welch test**: each replicate's mean slope is one observation; one-sided Welch t-test of
  ``H1: mean(arm a) < mean(arm b)`` (scipy), the difference and its 95 % confidence interval;
* **paired test**: when both arms' replicates share their training subset and pre-trained model (same
  replicate index), the one-sided paired t-test on the per-replicate differences, with its interval;
* **mixed model** (statsmodels ``MixedLM``): every model's slope with a random intercept per ``D``; the arm
  effect, its standard error, one-sided p and interval;
* **model-level tests** (the paper's: all K models as if independent), Welch's and Student's, for
  comparison only.

:func:`adjusted_for_accuracy` answers "is one arm fairer at the same accuracy?": OLS of slope on the arm
and the model's accuracy over every model, standard errors clustered by ``D``; the arm effect is the
difference of slopes at matched accuracy.

The protocol's analysis (issue 36), where every arm's K models share each world: :func:`paired_test` (the
world-level paired t-test of the primary), :func:`tost_paired` (equivalence within a margin by two one-sided
paired t-tests), :func:`aa_permutation` (the test's size, by permuting two same-attack families' labels within
worlds) and :func:`dose_trend` (a trend over dose levels with the world as a block).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from .tests import compare_slopes


def d_level(models: pd.DataFrame, value: str = "beta") -> pd.DataFrame:
    """One row per (arm, replicate): the mean of ``value`` over its K models."""
    return models.groupby(["arm", "replicate"], as_index=False)[value].mean()


def _interval(diff: np.ndarray, confidence: float) -> tuple[float, float]:
    r = stats.ttest_1samp(diff, 0.0)
    ci = r.confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def compare_arms(models: pd.DataFrame, a: str, b: str, *, confidence: float = 0.95, value: str = "beta",
                 alternative: str = "less") -> dict:
    """``H1: mean value(a) < mean value(b)`` (``alternative="greater"``: ``>``) with ``D`` as the unit (see the
    module docstring). ``models`` has one row per model: ``arm, replicate`` and the ``value`` column (default the
    slope ``beta``; ``replicate`` names the D within its arm)."""
    if value != "beta":  # the tests below read the column "beta"
        models = models[models[value].notna()].drop(columns="beta", errors="ignore").rename(columns={value: "beta"})
    da, db = d_level(models[models.arm == a]), d_level(models[models.arm == b])
    out: dict = {"a": a, "b": b, "value": value, "alternative": alternative, "replicates_a": int(len(da)),
                 "replicates_b": int(len(db)), "mean_a": float(models[models.arm == a].beta.mean()),
                 "mean_b": float(models[models.arm == b].beta.mean())}
    if len(da) >= 2 and len(db) >= 2:
        out["d_level_welch"] = compare_slopes(da.beta, db.beta, equal_var=False, confidence=confidence,
                                              alternative=alternative)
    pair = da.merge(db, on="replicate", suffixes=("_a", "_b"))
    if len(pair) >= 2:
        diff = (pair.beta_a - pair.beta_b).to_numpy()
        r = stats.ttest_rel(pair.beta_a, pair.beta_b, alternative=alternative)
        lo, hi = _interval(diff, confidence)
        out["paired"] = {"t": float(r.statistic), "df": float(r.df), "p": float(r.pvalue),
                         "difference": float(diff.mean()), "ci_low": lo, "ci_high": hi, "pairs": int(len(pair))}
    if value == "beta" and alternative == "less":
        out["mixed_model"] = mixed_model(models[models.arm.isin([a, b])], a, b, confidence=confidence)
    ma, mb = models[models.arm == a].beta, models[models.arm == b].beta
    if len(ma) >= 2 and len(mb) >= 2:
        out["model_level_welch"] = compare_slopes(ma, mb, equal_var=False, confidence=confidence, alternative=alternative)
        out["model_level_student"] = compare_slopes(ma, mb, equal_var=True, confidence=confidence,
                                                    alternative=alternative)
    return out


def mixed_model(models: pd.DataFrame, a: str, b: str, *, confidence: float = 0.95) -> dict | None:
    """Slope ~ (arm == a) with a random intercept per D (MixedLM, REML); ``None`` when it cannot be fitted."""
    df = models.assign(is_a=(models.arm == a).astype(float), d=models.arm + "/" + models.replicate.astype(str))
    if df.d.nunique() < 3 or df.is_a.nunique() < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny designs; the fit is reported as is
        try:
            fit = smf.mixedlm("beta ~ is_a", df, groups=df["d"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            return None
    est, se = float(fit.params["is_a"]), float(fit.bse["is_a"])
    if not np.isfinite(se) or se == 0:
        return None
    z = est / se
    q = stats.norm.ppf(0.5 + confidence / 2)
    return {"effect": est, "se": se, "z": z, "p": float(stats.norm.cdf(z)), "ci_low": est - q * se,
            "ci_high": est + q * se, "groups": int(df.d.nunique()),
            "note": f"slope(a) - slope(b); random intercept per D; one-sided p for H1: {a} < {b}"}


def adjusted_for_accuracy(models: pd.DataFrame, reference: str, *, confidence: float = 0.95) -> dict | None:
    """OLS ``beta ~ C(arm) + accuracy`` over every model, clustered by D; each arm's effect against
    ``reference`` is its slope difference at matched accuracy."""
    df = models.assign(d=models.arm + "/" + models.replicate.astype(str))
    if df.arm.nunique() < 2 or df.d.nunique() < 4:
        return None
    groups = pd.factorize(df.d)[0]
    fit = smf.ols(f"beta ~ C(arm, Treatment(reference={reference!r})) + accuracy", df).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    ci = fit.conf_int(1 - confidence)
    effects = {}
    for name in fit.params.index:
        if name.startswith("C(arm"):
            arm = name.split("[T.", 1)[1][:-1]  # the arm name may hold brackets itself: drop only the last
            effects[arm] = {"effect": float(fit.params[name]), "se": float(fit.bse[name]),
                            "p_two_sided": float(fit.pvalues[name]), "ci_low": float(ci.loc[name, 0]),
                            "ci_high": float(ci.loc[name, 1])}
    return {"reference": reference, "accuracy_coefficient": float(fit.params["accuracy"]),
            "accuracy_ci": [float(ci.loc["accuracy", 0]), float(ci.loc["accuracy", 1])], "effects": effects,
            "models": int(len(df)), "clusters": int(df.d.nunique())}


__all__ = ["adjusted_for_accuracy", "compare_arms", "d_level", "mixed_model"]


# ----------------------------------------------------------------------------------------------
# The protocol's paired analysis (issue 36): world-level pairs, TOST, the A/A size, the dose-response trend
# ----------------------------------------------------------------------------------------------


def world_pairs(models: pd.DataFrame, a: str, b: str, value: str = "beta") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per world (``replicate``) present in both arms, the mean ``value`` of ``a``'s models and of ``b``'s: the
    arrays ``(worlds, mean_a, mean_b)``, sorted by world."""
    t = models[models[value].notna()]
    da = t[t.arm == a].groupby("replicate")[value].mean()
    db = t[t.arm == b].groupby("replicate")[value].mean()
    common = sorted(set(da.index) & set(db.index))
    return np.asarray(common), da.loc[common].to_numpy(float), db.loc[common].to_numpy(float)


def paired_test(models: pd.DataFrame, a: str, b: str, *, value: str = "beta", alternative: str = "less",
                confidence: float = 0.95) -> dict | None:
    """The protocol's primary test: per world the mean of ``a``'s K models minus that of ``b``'s, a paired t-test
    (scipy's ``ttest_rel``) with ``H1`` in the direction ``alternative`` (``less``: ``a`` lower), the mean difference
    with its two-sided ``confidence`` interval and the one-sided bound that matches the test (``less``: an upper
    bound); ``None`` with fewer than 2 worlds."""
    worlds, ya, yb = world_pairs(models, a, b, value)
    if len(worlds) < 2:
        return None
    return {"a": a, "b": b, "value": value, **_paired(ya, yb, alternative, confidence)}


def _paired(ya: np.ndarray, yb: np.ndarray, alternative: str, confidence: float) -> dict:
    r = stats.ttest_rel(ya, yb, alternative=alternative)
    lo, hi = _interval(ya - yb, confidence)
    bound = r.confidence_interval(confidence)
    return {"test": "paired t (world level)", "alternative": alternative, "t": float(r.statistic), "df": float(r.df),
            "p": float(r.pvalue), "difference": float(np.mean(ya - yb)), "ci_low": lo, "ci_high": hi,
            "confidence": confidence, "bound_one_sided": None if alternative == "two-sided" else
            float(bound.high if alternative == "less" else bound.low), "sd_difference": float(np.std(ya - yb, ddof=1)),
            "pairs": int(len(ya)), "mean_a": float(ya.mean()), "mean_b": float(yb.mean())}


def tost_paired(models: pd.DataFrame, a: str, b: str, margin: float, *, value: str = "beta", alpha: float = 0.05) -> dict | None:
    """Equivalence of ``a`` and ``b`` within ``+-margin`` by two one-sided paired t-tests (TOST, Schuirmann 1987)
    on the world-level differences: ``H0: mean <= -margin`` against ``> -margin`` and ``H0: mean >= margin``
    against ``< margin``; ``p`` is the larger of the two, and equivalence at ``alpha`` holds exactly when the
    ``1 - 2 alpha`` interval lies inside the margins. ``None`` with fewer than 2 worlds."""
    worlds, ya, yb = world_pairs(models, a, b, value)
    if len(worlds) < 2:
        return None
    d = ya - yb
    low = stats.ttest_1samp(d, -margin, alternative="greater")
    high = stats.ttest_1samp(d, margin, alternative="less")
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * alpha)
    p = float(max(low.pvalue, high.pvalue))
    return {"a": a, "b": b, "value": value, "margin": float(margin), "alpha": alpha, "p": p,
            "equivalent": bool(p < alpha), "t_lower": float(low.statistic), "p_lower": float(low.pvalue),
            "t_upper": float(high.statistic), "p_upper": float(high.pvalue), "df": float(len(d) - 1),
            "difference": float(d.mean()), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "ci_level": 1 - 2 * alpha, "pairs": int(len(d))}


def aa_permutation(models: pd.DataFrame, a: str, b: str, *, permutations: int = 1000, seed: int = 0,
                   alpha: float = 0.05, value: str = "beta", alternative: str = "less") -> dict | None:
    """The size of the primary's paired test, measured on two families of the same attack (``a``, ``b``: the A/A
    pair). Each contrast pools each world's models of both families, splits them at random (seeded) into two
    pseudo-families of the families' sizes, and runs the primary's paired t-test on the world-level differences;
    the false-positive rate is the share of contrasts with ``p < alpha``, with its Clopper-Pearson interval.

    What it measures: how often the paired t-test, on these worlds' real slope distributions (their spread, skew
    and number), calls a difference where the labels carry none. What it does not: the contrasts share models, so
    they are not independent and the interval is narrower than the rate's true uncertainty; a pseudo-family mixes
    Algorithm 2 datasets ``D`` of both families, so the D-to-D part of the variation cancels in some splits (the
    world-level t-test scales by the observed spread, so it stays calibrated, but a bias between two real families,
    an effect of shared Algorithm 3 seeds, or a systematic difference between attacks is not measured). The direct
    A/A contrast (``b`` against ``a`` as they were run, two-sided) is given beside it."""
    t = models[models[value].notna() & models.arm.isin([a, b])]
    groups = {key: g[value].to_numpy(float) for key, g in t.groupby(["replicate", "arm"])}
    worlds = sorted({w for w, arm in groups if arm == a} & {w for w, arm in groups if arm == b})
    if len(worlds) < 2:
        return None
    rng = np.random.default_rng(seed)
    diffs = np.empty((permutations, len(worlds)))
    for j, w in enumerate(worlds):
        pooled, k = np.concatenate([groups[w, a], groups[w, b]]), groups[w, a].size
        order = rng.permuted(np.tile(np.arange(pooled.size), (permutations, 1)), axis=1)
        diffs[:, j] = pooled[order[:, :k]].mean(1) - pooled[order[:, k:]].mean(1)
    p = stats.ttest_1samp(diffs, 0.0, axis=1, alternative=alternative).pvalue
    hits = int((p < alpha).sum())
    ci = stats.binomtest(hits, permutations).proportion_ci(0.95, method="exact")
    ya, yb = (np.array([groups[w, f].mean() for w in worlds]) for f in (a, b))
    direct = {"a": b, "b": a, "value": value, **_paired(yb, ya, "two-sided", 0.95)}
    return {"a": a, "b": b, "permutations": permutations, "seed": seed, "alpha": alpha, "alternative": alternative,
            "worlds": len(worlds), "false_positives": hits, "rate": hits / permutations, "rate_ci_low": float(ci.low),
            "rate_ci_high": float(ci.high), "interval": "Clopper-Pearson 95% (contrasts treated as independent)",
            "direct": direct}


def dose_trend(models: pd.DataFrame, levels: dict[str, float], *, value: str = "beta", reference: str | None = None,
               alternative: str = "less", confidence: float = 0.95) -> dict | None:
    """A trend of the world-level ``value`` over the arms ``levels`` (arm -> lambda) with the world as a block:
    OLS of the world mean on ``log10(1 + lambda)`` with world fixed effects (the within-world slope; residual df
    = observations - worlds - 1), one-sided in the direction ``alternative`` (``less``: the value falls as lambda
    grows). With ``reference`` (e.g. PGD-L2) the world-level value is the difference against the reference's world
    mean, which a world's fixed effect absorbs: the trend is the same, the levels read as differences. Only worlds
    that have every level count. ``None`` with fewer than 2 such worlds."""
    t = models[models[value].notna()]
    means = t[t.arm.isin(list(levels))].groupby(["replicate", "arm"])[value].mean().unstack("arm")
    means = means.reindex(columns=list(levels)).dropna()
    if reference is not None:
        ref = t[t.arm == reference].groupby("replicate")[value].mean()
        means = means.loc[means.index.intersection(ref.index)].sub(ref, axis=0).dropna()
    if len(means) < 2:
        return None
    x = np.log10(1 + np.asarray([levels[a] for a in means.columns], float))
    y = means.to_numpy(float)
    xc, yc = np.broadcast_to(x - x.mean(), y.shape), y - y.mean(1, keepdims=True)
    sxx = float((xc**2).sum())
    slope = float((xc * yc).sum() / sxx)
    df = y.size - y.shape[0] - 1
    se = float(np.sqrt(((yc - slope * xc) ** 2).sum() / df / sxx))
    tval = slope / se
    p = {"less": stats.t.cdf(tval, df), "greater": stats.t.sf(tval, df), "two-sided": 2 * stats.t.sf(abs(tval), df)}
    q = stats.t.ppf(0.5 + confidence / 2, df)
    return {"value": value, "reference": reference, "levels": dict(levels), "x": "log10(1 + lambda)",
            "model": "OLS, world fixed effects", "slope": slope, "se": se, "t": float(tval), "df": int(df),
            "p": float(p[alternative]), "alternative": alternative, "ci_low": slope - q * se, "ci_high": slope + q * se,
            "worlds": int(y.shape[0]), "level_means": {a: float(v) for a, v in means.mean().items()}}


__all__ += ["aa_permutation", "dose_trend", "paired_test", "tost_paired", "world_pairs"]
