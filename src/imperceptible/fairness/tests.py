"""The two hypothesis tests of Hua et al. §4, with statsmodels and scipy.

1. **Slope test** for one model: groups ``i`` (countries) with covariate ``g_i`` (log GDP per capita),
   accuracy ``p_i`` and image count ``n_i``; groups with ``n_i < min_count`` (paper: 50) are dropped.
   GLS of ``p`` on ``g`` with ``Sigma = diag(1 / sqrt(n_i))`` (the error variance shrinks with the group's
   size) - i.e. weighted least squares with weights ``sqrt(n_i)`` - and the F-test of ``H0: beta = 0``
   (F, df1, df2, p). The paper's pretrained model: F = 5.392, df = (1, 39), p = 0.0255.
2. **Family comparison**: over K models of each family, the one-sided two-sample t-test
   ``H0: mean beta_ours >= mean beta_other`` against ``H1: mean beta_ours < mean beta_other``: Welch's
   (unequal variances) by default, Student's pooled test with ``equal_var=True``. The paper reports
   t = 3.852, p = 0.00017 for K = 50 per family, which fits about 49 degrees of freedom (Welch's with very
   unequal spreads) rather than Student's 98. The result also holds the difference of means and its
   two-sided 95 % confidence interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from ..config import option
from ..data.grouped import check_header, trimmed
from ..errors import (
    MSG_DUPLICATE_GROUP,
    MSG_TABLE_ACCURACY_RANGE,
    MSG_TABLE_CONSTANT_COVARIATE,
    MSG_TABLE_FEW_GROUPS,
    MSG_TABLE_FEW_MODELS,
    MSG_TABLE_MISSING_COLUMNS,
    MSG_TABLE_NO_FAMILY_COLUMNS,
    MSG_TABLE_NONFINITE,
    MSG_TABLE_NONPOSITIVE_N,
    MSG_TABLE_UNREADABLE,
    TableError,
)

REQUIRED = ("group", "covariate", "n")


MIN_COUNT = 50
"""The paper's rule: groups with fewer test images than this are dropped from the slope test (one source)."""


@dataclass(frozen=True)
class FairnessTestConfig:
    """``imperceptible fairness test``'s settings."""

    table: str = option(help="CSV with group,covariate,n and accuracy (or one accuracy_<model> column per model)")
    min_count: int = option(MIN_COUNT, "drop groups with fewer images (the paper's rule)", type=int)
    ours: str | None = option(None, "prefix of our family's columns, e.g. 'ours' for accuracy_ours_1..K")
    other: str | None = option(None, "prefix of the other family's columns, e.g. 'pgd'")
    student: bool = option(False, "pooled-variance Student t-test instead of Welch's", type=bool)


def group_accuracy(pred, labels, groups) -> pd.DataFrame:
    """Per-group accuracy: columns ``group, n, accuracy`` (one row per group, sorted by group)."""
    df = pd.DataFrame({"group": list(groups), "ok": np.asarray(pred) == np.asarray(labels)})
    out = df.groupby("group", sort=True)["ok"].agg(["size", "mean"]).reset_index()
    return out.rename(columns={"size": "n", "mean": "accuracy"})


def accuracy_columns_of(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c == "accuracy" or c.startswith("accuracy_")]


def validate_table(table: pd.DataFrame) -> pd.DataFrame:
    """Check a ``group, covariate, n, accuracy[_*]`` table; raise :class:`TableError` saying what is wrong (group
    names are compared after trimming surrounding whitespace: ``"g00 "`` repeats ``g00``)."""
    cols = list(table.columns)
    if not set(REQUIRED) <= set(cols) or not accuracy_columns_of(table):
        raise TableError.of(MSG_TABLE_MISSING_COLUMNS, expected=", ".join(REQUIRED), got=", ".join(map(str, cols)))
    names = pd.Series(trimmed(table["group"]), index=table.index)
    repeated = names[names.duplicated(keep=False)]
    if len(repeated):
        g = repeated.iloc[0]
        rows = [int(i) + 1 for i in np.flatnonzero((names == g).to_numpy())]  # data rows, from 1
        same = table[names == g].assign(group=g).drop_duplicates()
        how = " (identical: counted twice it would add a group)" if len(same) == 1 else " (with different values)"
        raise TableError.of(MSG_DUPLICATE_GROUP, group=g, rows=rows, how=how)
    for _, r in table.iterrows():
        for c in ["covariate", "n", *accuracy_columns_of(table)]:
            v = r[c]
            if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise TableError.of(MSG_TABLE_NONFINITE, column=c, value=v, group=r["group"])
        if r["n"] <= 0:
            raise TableError.of(MSG_TABLE_NONPOSITIVE_N, n=r["n"], group=r["group"])
        for c in accuracy_columns_of(table):
            if not 0 <= r[c] <= 1:
                raise TableError.of(MSG_TABLE_ACCURACY_RANGE, column=c, value=r[c], group=r["group"])
    return table


def read_table(path) -> pd.DataFrame:
    """Read and validate a CSV table (``group,covariate,n,accuracy`` or one ``accuracy_*`` column per model): a
    column named twice is refused, column and group names are trimmed."""
    header = check_header(path)
    try:
        t = pd.read_csv(path, dtype=str)  # every cell as written; numbers converted below
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise TableError.of(MSG_TABLE_UNREADABLE, path=path, error=f"{type(e).__name__}: {e}") from None
    t.columns = header
    if "group" in t.columns:
        t["group"] = trimmed(t["group"])
    for c in t.columns:
        if c != "group":
            t[c] = pd.to_numeric(t[c], errors="coerce")
    return validate_table(t)


def slope_test(table: pd.DataFrame, *, accuracy: str = "accuracy", min_count: int = MIN_COUNT) -> dict:
    """GLS slope of ``accuracy`` on ``covariate`` with ``Sigma = diag(1/sqrt(n))`` and its F-test.

    Examples:
        >>> import pandas as pd
        >>> from imperceptible.fairness import slope_test
        >>> t = pd.DataFrame({"group": list("abcd"), "covariate": [7.0, 8.0, 9.0, 10.0], "n": [60, 80, 100, 400],
        ...                   "accuracy": [0.70, 0.74, 0.77, 0.82]})
        >>> r = slope_test(t)
        >>> round(r["beta"], 3), (r["df1"], r["df2"]), r["p"] < 0.01
        (0.04, (1, 2), True)
    """
    validate_table(table)
    kept = table[table["n"] >= min_count]
    if len(kept) < 3:
        raise TableError.of(MSG_TABLE_FEW_GROUPS, min_count=min_count, got=len(kept))
    if kept["covariate"].nunique() < 2:
        raise TableError.of(MSG_TABLE_CONSTANT_COVARIATE, value=float(kept["covariate"].iloc[0]))
    X = sm.add_constant(kept["covariate"].to_numpy(dtype=float))
    y = kept[accuracy].to_numpy(dtype=float)
    sigma = 1.0 / np.sqrt(kept["n"].to_numpy(dtype=float))
    res = sm.GLS(y, X, sigma=sigma).fit()
    f = res.f_test(np.array([[0.0, 1.0]]))
    return {
        "beta": float(res.params[1]), "intercept": float(res.params[0]), "beta_se": float(res.bse[1]),
        "F": float(np.squeeze(f.fvalue)), "df1": int(f.df_num), "df2": int(f.df_denom), "p": float(f.pvalue),
        "n_groups": int(len(kept)), "dropped_groups": sorted(map(str, table.loc[table["n"] < min_count, "group"])),
        "accuracy_column": accuracy, "min_count": min_count,
    }


def compare_slopes(ours, other, *, equal_var: bool = False, confidence: float = 0.95, alternative: str = "less") -> dict:
    """One-sided two-sample t-test, ``H1: mean(ours) < mean(other)`` (``alternative="greater"``: ``>``; scipy;
    Welch's by default), with the difference of means and its two-sided confidence interval.

    Examples:
        >>> from imperceptible.fairness import compare_slopes
        >>> r = compare_slopes([0.10, 0.12, 0.11, 0.09], [0.20, 0.25, 0.18, 0.22])
        >>> r["test"], r["p"] < 0.01, round(r["difference"], 4)
        ('Welch', True, -0.1075)
    """
    a, b = np.asarray(ours, dtype=float), np.asarray(other, dtype=float)
    if a.size < 2 or b.size < 2:
        raise TableError.of(MSG_TABLE_FEW_MODELS, ours=a.size, other=b.size)
    r = stats.ttest_ind(a, b, equal_var=equal_var, alternative=alternative)
    ci = stats.ttest_ind(a, b, equal_var=equal_var).confidence_interval(confidence)
    return {"t": float(r.statistic), "df": float(r.df), "p": float(r.pvalue), "mean_ours": float(a.mean()),
            "mean_other": float(b.mean()), "difference": float(a.mean() - b.mean()),
            "ci_low": float(ci.low), "ci_high": float(ci.high), "confidence": confidence,
            "k_ours": int(a.size), "k_other": int(b.size), "test": "Student (pooled)" if equal_var else "Welch"}


def family_columns(table: pd.DataFrame, prefix: str, which: str = "ours") -> list[str]:
    """The accuracy columns of a family: ``accuracy_<prefix>_<K>`` or ``accuracy_<prefix>_r<R>_k<K>`` (so
    ``pgd-l2`` does not also take ``pgd-l2_no-attack``'s columns); none is an error naming the columns."""
    pattern = re.compile(rf"^accuracy_{re.escape(prefix)}_(r\d+_k\d+|\d+)$")
    cols = [c for c in accuracy_columns_of(table) if pattern.match(c)]
    if not cols:
        raise TableError.of(MSG_TABLE_NO_FAMILY_COLUMNS, prefix=prefix, which=which,
                            columns=", ".join(accuracy_columns_of(table)))
    return cols


def fairness_table_test(path, *, min_count: int = MIN_COUNT, ours: str | None = None, other: str | None = None,
                        welch: bool = True) -> dict:
    """``imperceptible fairness test``: the slope test of every accuracy column of the CSV at ``path`` and,
    with ``ours`` and ``other``, the family t-test on their slopes (Welch's, or Student's)."""
    table = read_table(path)
    results = {c: slope_test(table, accuracy=c, min_count=min_count) for c in accuracy_columns_of(table)}
    out: dict = {"slope_tests": results}
    if ours or other:
        a = [results[c]["beta"] for c in family_columns(table, ours or "", "ours")]
        b = [results[c]["beta"] for c in family_columns(table, other or "", "other")]
        out["t_test"] = compare_slopes(a, b, equal_var=not welch)
    return out
