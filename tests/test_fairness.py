"""The fairness tests against statsmodels and scipy, and their input errors."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from imperceptible.cli.main import main
from imperceptible.fairness import (
    compare_slopes,
    group_accuracy,
    slope_test,
)
from imperceptible.validation import (
    MSG_TABLE_CONSTANT_COVARIATE,
    MSG_TABLE_FEW_GROUPS,
    MSG_TABLE_MISSING_COLUMNS,
    MSG_TABLE_NO_FAMILY_COLUMNS,
    MSG_TABLE_NONFINITE,
    MSG_TABLE_NONPOSITIVE_N,
    TableError,
)


def worked_example(seed=0, k=12):
    rng = np.random.RandomState(seed)
    g = np.log(rng.uniform(500, 50000, k))
    n = rng.randint(20, 2000, k)
    p = np.clip(0.3 + 0.05 * g + rng.normal(0, 0.5 / np.sqrt(n)), 0, 1)
    return pd.DataFrame({"group": [f"c{i}" for i in range(k)], "covariate": g, "n": n, "accuracy": p})


def test_gls_slope_and_f_test_equal_statsmodels_wls_with_weights_sqrt_n():
    t = worked_example()
    r = slope_test(t, min_count=50)
    kept = t[t.n >= 50]
    wls = sm.WLS(kept.accuracy, sm.add_constant(kept.covariate), weights=np.sqrt(kept.n)).fit()
    assert r["beta"] == pytest.approx(wls.params["covariate"], rel=1e-10)
    assert r["F"] == pytest.approx(wls.fvalue, rel=1e-8)
    assert r["p"] == pytest.approx(wls.f_pvalue, rel=1e-8)
    assert (r["df1"], r["df2"]) == (1, len(kept) - 2)
    assert r["F"] == pytest.approx((wls.params["covariate"] / wls.bse["covariate"]) ** 2, rel=1e-8)
    assert r["dropped_groups"] == sorted(t.loc[t.n < 50, "group"])


def test_paper_f_statistic_gives_the_published_p_value():
    """The paper: F = 5.392 with df (1, 39) and p = 0.02554. A 41-group table built to have exactly that F
    (the slope added to fixed residuals, solved for F) must give df (1, 39) and that p."""
    rng = np.random.RandomState(3)
    k = 41
    g = np.log(rng.uniform(500, 50000, k))
    n = rng.randint(60, 3000, k)
    base = pd.DataFrame({"group": [f"c{i}" for i in range(k)], "covariate": g, "n": n,
                         "accuracy": 0.6 + rng.normal(0, 0.5 / np.sqrt(n))})
    r0 = slope_test(base)
    se = r0["beta_se"]  # the residuals, hence the standard error, do not change when a slope is added
    beta = np.sqrt(5.392) * se
    t = base.assign(accuracy=base.accuracy + (beta - r0["beta"]) * base.covariate)
    r = slope_test(t)
    assert (r["df1"], r["df2"]) == (1, 39)
    assert r["F"] == pytest.approx(5.392, rel=1e-6)
    assert r["p"] == pytest.approx(0.02554, abs=5e-6)


def test_one_sided_t_tests_against_their_formulas():
    """Welch (the default) and Student from their textbook formulas, not from the function the code calls."""
    rng = np.random.RandomState(1)
    a, b = rng.normal(0.5, 0.1, 12), rng.normal(0.6, 0.3, 20)
    va, vb, na, nb = a.var(ddof=1), b.var(ddof=1), len(a), len(b)
    t_w = (a.mean() - b.mean()) / np.sqrt(va / na + vb / nb)
    df_w = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    w = compare_slopes(a, b)
    assert w["test"] == "Welch" and w["t"] == pytest.approx(t_w) and w["df"] == pytest.approx(df_w)
    assert w["p"] == pytest.approx(stats.t.cdf(t_w, df_w))
    half = stats.t.ppf(0.975, df_w) * np.sqrt(va / na + vb / nb)
    assert (w["ci_low"], w["ci_high"]) == pytest.approx((a.mean() - b.mean() - half, a.mean() - b.mean() + half))
    sp = ((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)
    t_s = (a.mean() - b.mean()) / np.sqrt(sp * (1 / na + 1 / nb))
    s_ = compare_slopes(a, b, equal_var=True)
    assert s_["t"] == pytest.approx(t_s) and s_["df"] == na + nb - 2 and s_["p"] == pytest.approx(stats.t.cdf(t_s, 30))
    with pytest.raises(TableError, match="at least 2 models in each family"):
        compare_slopes([0.1], b)


def test_paper_t_value_fits_welch_degrees_of_freedom():
    """t = 3.852 with p = 0.00017 (one-sided) matches about 49 degrees of freedom, not Student's 98."""
    assert stats.t.sf(3.852, 49) == pytest.approx(0.00017, abs=2e-5)
    assert stats.t.sf(3.852, 98) < 0.00011


def test_group_accuracy():
    t = group_accuracy([1, 0, 1, 1], [1, 1, 1, 0], ["a", "a", "b", "b"])
    assert t.to_dict("list") == {"group": ["a", "b"], "n": [2, 2], "accuracy": [0.5, 0.5]}


def test_bad_tables():
    t = worked_example()
    with pytest.raises(TableError) as e:
        slope_test(t.drop(columns="n"))
    assert str(e.value) == MSG_TABLE_MISSING_COLUMNS.format(expected="group, covariate, n", got="group, covariate, accuracy")
    bad = t.copy()
    bad.loc[2, "n"] = 0
    with pytest.raises(TableError) as e:
        slope_test(bad)
    assert str(e.value) == MSG_TABLE_NONPOSITIVE_N.format(n=0, group="c2")
    bad = t.copy()
    bad.loc[3, "covariate"] = np.inf
    with pytest.raises(TableError) as e:
        slope_test(bad)
    assert str(e.value) == MSG_TABLE_NONFINITE.format(column="covariate", value=np.inf, group="c3")
    with pytest.raises(TableError) as e:
        slope_test(t.head(2), min_count=1)
    assert str(e.value) == MSG_TABLE_FEW_GROUPS.format(min_count=1, got=2)
    with pytest.raises(TableError) as e:
        slope_test(t.assign(covariate=8.0), min_count=1)
    assert str(e.value) == MSG_TABLE_CONSTANT_COVARIATE.format(value=8.0)


def test_cli_fairness_test(tmp_path, capsys):
    t = worked_example()
    rng = np.random.RandomState(2)
    for k in range(4):
        t[f"accuracy_ours_{k}"] = np.clip(t.accuracy - 0.02 * t.covariate + rng.normal(0, 0.01, len(t)), 0, 1)
        t[f"accuracy_pgd_{k}"] = np.clip(t.accuracy + rng.normal(0, 0.01, len(t)), 0, 1)
    t.to_csv(tmp_path / "t.csv", index=False)
    assert main(["fairness", "test", "--table", str(tmp_path / "t.csv"), "--ours", "ours", "--other", "pgd"]) == 0
    out = capsys.readouterr().out
    assert "accuracy_ours_0" in out and "H0: mean beta(ours) >= mean beta(pgd)" in out
    assert "Welch" in out
    (tmp_path / "bad.csv").write_text("group,n,accuracy\na,10,0.5\n")
    assert main(["fairness", "test", "--table", str(tmp_path / "bad.csv")]) == 2
    assert "expected columns" in capsys.readouterr().err
    assert main(["fairness", "test", "--table", str(tmp_path / "t.csv"), "--ours", "mine", "--other", "pgd"]) == 2
    cols = ", ".join(c for c in t.columns if c.startswith("accuracy"))
    assert MSG_TABLE_NO_FAMILY_COLUMNS.format(prefix="mine", which="ours", columns=cols) in capsys.readouterr().err
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    assert main(["fairness", "test", "--table", str(tmp_path / "bin.csv")]) == 2
    assert "expected a readable CSV file" in capsys.readouterr().err
    assert main(["fairness", "test", "--table", str(tmp_path / "absent.csv")]) == 2
    assert "expected a readable CSV file" in capsys.readouterr().err


def test_arm_comparisons_treat_the_dataset_as_the_unit():
    from imperceptible.fairness.arms import adjusted_for_accuracy, compare_arms

    rng = np.random.RandomState(5)
    rows = []
    for arm, mu in (("ours", 0.020), ("pgd", 0.030)):
        for r in range(4):
            d_effect = rng.normal(0, 0.004)  # what one D contributes to all its models
            for _ in range(5):
                rows.append({"arm": arm, "replicate": r, "beta": mu + d_effect + rng.normal(0, 0.001),
                             "accuracy": 0.8 + rng.normal(0, 0.01)})
    m = pd.DataFrame(rows)
    c = compare_arms(m, "ours", "pgd")
    da = m[m.arm == "ours"].groupby("replicate").beta.mean()
    db = m[m.arm == "pgd"].groupby("replicate").beta.mean()
    ref = stats.ttest_ind(da, db, equal_var=False, alternative="less")
    assert c["d_level_welch"]["t"] == pytest.approx(ref.statistic) and c["d_level_welch"]["df"] < 7
    diff = (da - db).to_numpy()
    t_paired = diff.mean() / (diff.std(ddof=1) / np.sqrt(4))
    assert c["paired"]["t"] == pytest.approx(t_paired) and c["paired"]["df"] == 3
    # the model-level test treats 20 correlated models as independent: far more confident than it should be
    assert c["model_level_welch"]["df"] > 30 and c["model_level_welch"]["p"] < c["d_level_welch"]["p"]
    mm = c["mixed_model"]
    assert mm["effect"] == pytest.approx(m[m.arm == "ours"].beta.mean() - m[m.arm == "pgd"].beta.mean(), rel=1e-6)
    assert mm["ci_low"] < mm["effect"] < mm["ci_high"] and mm["groups"] == 8
    # slope depending on accuracy, plus an arm effect of -0.01: recovered at matched accuracy
    m2 = m.assign(accuracy=rng.uniform(0.6, 0.9, len(m)))
    m2["beta"] = 0.05 * m2.accuracy + np.where(m2.arm == "ours", -0.01, 0.0) + rng.normal(0, 0.0005, len(m2))
    adj = adjusted_for_accuracy(m2, "pgd")
    e = adj["effects"]["ours"]
    assert e["ci_low"] < -0.01 < e["ci_high"] and adj["accuracy_coefficient"] == pytest.approx(0.05, abs=0.01)
