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
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from .tests import compare_slopes

COLUMNS = ("arm", "replicate", "beta", "accuracy")


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
            arm = name.split("[T.")[1].rstrip("]")
            effects[arm] = {"effect": float(fit.params[name]), "se": float(fit.bse[name]),
                            "p_two_sided": float(fit.pvalues[name]), "ci_low": float(ci.loc[name, 0]),
                            "ci_high": float(ci.loc[name, 1])}
    return {"reference": reference, "accuracy_coefficient": float(fit.params["accuracy"]),
            "accuracy_ci": [float(ci.loc["accuracy", 0]), float(ci.loc["accuracy", 1])], "effects": effects,
            "models": int(len(df)), "clusters": int(df.d.nunique())}


__all__ = ["adjusted_for_accuracy", "compare_arms", "d_level", "mixed_model"]
