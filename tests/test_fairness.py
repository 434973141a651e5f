"""The fairness tests against statsmodels and scipy, and their input errors."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from imperceptible.cli.main import main
from imperceptible.fairness import (MSG_FEW_GROUPS, MSG_MISSING_COLUMNS, MSG_NONFINITE, MSG_NONPOSITIVE_N,
                                    compare_slopes, group_accuracy, slope_test)
from imperceptible.validation import TableError


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


def test_one_sided_t_test_equals_scipy():
    rng = np.random.RandomState(1)
    ours, pgd = rng.normal(0.5, 0.2, 50), rng.normal(0.7, 0.2, 50)
    r = compare_slopes(ours, pgd)
    ref = stats.ttest_ind(ours, pgd, alternative="less")
    assert r["t"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)
    assert r["df"] == 98 and r["p"] < 0.05
    w = compare_slopes(ours, pgd, equal_var=False)
    assert w["p"] == pytest.approx(stats.ttest_ind(ours, pgd, alternative="less", equal_var=False).pvalue)


def test_group_accuracy():
    t = group_accuracy([1, 0, 1, 1], [1, 1, 1, 0], ["a", "a", "b", "b"])
    assert t.to_dict("list") == {"group": ["a", "b"], "n": [2, 2], "accuracy": [0.5, 0.5]}


def test_bad_tables():
    t = worked_example()
    with pytest.raises(TableError) as e:
        slope_test(t.drop(columns="n"))
    assert str(e.value) == MSG_MISSING_COLUMNS.format(expected="group, covariate, n", got="group, covariate, accuracy")
    bad = t.copy()
    bad.loc[2, "n"] = 0
    with pytest.raises(TableError) as e:
        slope_test(bad)
    assert str(e.value) == MSG_NONPOSITIVE_N.format(n=0, group="c2")
    bad = t.copy()
    bad.loc[3, "covariate"] = np.inf
    with pytest.raises(TableError) as e:
        slope_test(bad)
    assert str(e.value) == MSG_NONFINITE.format(column="covariate", value=np.inf, group="c3")
    with pytest.raises(TableError) as e:
        slope_test(t.head(2), min_count=1)
    assert str(e.value) == MSG_FEW_GROUPS.format(min_count=1, got=2)


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
    (tmp_path / "bad.csv").write_text("group,n,accuracy\na,10,0.5\n")
    assert main(["fairness", "test", "--table", str(tmp_path / "bad.csv")]) == 2
    assert "expected columns" in capsys.readouterr().err
