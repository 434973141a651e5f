"""The fairness study's protocol (issue 36): the oracle cost of the positive control, the paired primary and its
TOST, the A/A size by permutation, the dose-response trend, the verdict rule, and the protocol file (its numbers,
its settings, and a resumed run refusing a changed file)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib
import torch
from scipy import stats

from imperceptible.fairness.arms import aa_permutation, dose_trend, paired_test, tost_paired

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "benchmarks" / "protocols" / "fairness.toml"
POWERED = ROOT / "benchmarks" / "results" / "fairness_powered.json"


# --- the oracle cost -----------------------------------------------------------------------------------------------


def test_illumination_cost_is_zero_for_a_ramp_gain_and_the_l2_of_the_rest():
    from imperceptible import costs
    from imperceptible.costs.illumination import IlluminationL2Cost, ramp_fields
    from imperceptible.data.cues import ramp_patterns

    c = costs.get("illumination-l2")
    assert isinstance(c, IlluminationL2Cost) and "not a judge" in type(c).TAGS.description
    g = torch.Generator().manual_seed(0)
    x0 = 0.1 + 0.6 * torch.rand(4, 3, 28, 28, generator=g, dtype=torch.float64)
    x0[1, 2] = 0.0  # a black channel: no direction, no NaN
    assert torch.equal(c(x0, x0), torch.zeros(4, dtype=torch.float64))
    r = ramp_patterns().double()
    # every one of the cue's 10 ramps (and different gains per channel) is free (the patterns are float32: 1e-8)
    for k in range(10):
        gain = torch.tensor([0.2, -0.1, 0.15], dtype=torch.float64).view(1, 3, 1, 1) * r[k]
        assert c(x0 * (1 + gain), x0).abs().max() < 1e-6, k
    u, v = ramp_fields(28, 28)
    assert c(x0 * (1 + 0.2 * u - 0.05 * v), x0).abs().max() < 1e-12
    angle = 2 * math.pi / 10  # ramp k is cos(36 k) u + sin(36 k) v
    assert torch.allclose(r[0], u, atol=1e-6) and torch.allclose(r[1], math.cos(angle) * u + math.sin(angle) * v, atol=1e-6)
    # a change orthogonal to the span costs its L2; isotropic noise loses 2 of 784 dimensions per channel
    noise = 1e-3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    noise[1, 2] = noise[1, 2].abs()  # the black channel stays in [0, 1]
    share = (c(x0 + noise, x0) / noise.flatten(1).norm(dim=1)) ** 2
    assert torch.allclose(share, torch.full_like(share, 1 - 2 / 784), atol=0.01)
    assert (c(x0 + noise + x0 * 0.1 * u, x0) - c(x0 + noise, x0)).abs().max() < 1e-12  # the ramp part is free
    # differentiable, finite: zero at x0, a unit vector (the gradient of an L2 norm) elsewhere, orthogonal to the span
    for x in (x0.clone(), x0 + noise):
        xi = x.clone().requires_grad_(True)
        c(xi, x0).sum().backward()
        assert torch.isfinite(xi.grad).all()
    assert torch.allclose(xi.grad.flatten(1).norm(dim=1), torch.ones(4, dtype=torch.float64))
    assert (xi.grad * x0 * v).flatten(2).sum(-1).abs().max() < 1e-10
    z = x0.clone().requires_grad_(True)
    c(z, x0).sum().backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


# --- the paired primary, TOST, size and trend ----------------------------------------------------------------------


def _models(values: dict[str, list[list[float]]], col: str = "beta") -> pd.DataFrame:
    """A models table from ``{arm: [[world 1's K values], [world 2's], ...]}``."""
    rows = [{"arm": a, "replicate": w + 1, "seed": k + 1, col: v} for a, worlds in values.items()
            for w, ks in enumerate(worlds) for k, v in enumerate(ks)]
    return pd.DataFrame(rows)


TINY = {"ours": [[0.010, 0.012], [0.020, 0.018], [0.004, 0.006], [0.015, 0.015]],
        "pgd": [[0.013, 0.015], [0.020, 0.020], [0.010, 0.008], [0.016, 0.014]]}


def test_paired_primary_and_tost_against_a_hand_computation():
    table = _models(TINY)
    # by hand: world means ours 0.011 0.019 0.005 0.015, pgd 0.014 0.020 0.009 0.015; differences -3, -1, -4, 0 (x1e-3)
    d = [-0.003, -0.001, -0.004, 0.0]
    mean = sum(d) / 4  # -0.002
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 3)  # sqrt(1e-5 / 3)
    se = sd / 2
    t = mean / se  # -2.1909
    q = stats.t.ppf(0.975, 3)
    r = paired_test(table, "ours", "pgd")
    assert r["difference"] == pytest.approx(mean, abs=1e-15) and r["t"] == pytest.approx(t, rel=1e-12)
    assert r["df"] == 3 and r["pairs"] == 4 and r["p"] == pytest.approx(stats.t.cdf(t, 3), rel=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((mean - q * se, mean + q * se), rel=1e-12)
    assert r["bound_one_sided"] == pytest.approx(mean + stats.t.ppf(0.95, 3) * se, rel=1e-12)
    assert paired_test(table.iloc[:4], "ours", "pgd") is None  # one world: no test

    m = 0.003
    low, high = (mean + m) / se, (mean - m) / se
    p = max(stats.t.sf(low, 3), stats.t.cdf(high, 3))
    e = tost_paired(table, "ours", "pgd", m)
    assert e["t_lower"] == pytest.approx(low, rel=1e-12) and e["t_upper"] == pytest.approx(high, rel=1e-12)
    assert e["p"] == pytest.approx(p, rel=1e-12) and e["equivalent"] is bool(p < 0.05) is False
    q90 = stats.t.ppf(0.95, 3)
    assert (e["ci_low"], e["ci_high"]) == pytest.approx((mean - q90 * se, mean + q90 * se), rel=1e-12)
    wide = tost_paired(table, "ours", "pgd", 0.02)  # a wide margin: equivalent, and its 90 % CI lies inside
    assert wide["equivalent"] and -0.02 < wide["ci_low"] < wide["ci_high"] < 0.02
    try:
        from statsmodels.stats.weightstats import ttost_paired
    except ImportError:  # pragma: no cover - statsmodels is a dependency
        pytest.skip("statsmodels absent")
    ya = np.array([0.011, 0.019, 0.005, 0.015])
    yb = np.array([0.014, 0.020, 0.009, 0.015])
    ref = ttost_paired(ya, yb, -m, m)
    assert e["p"] == pytest.approx(ref[0], rel=1e-10) and e["p_lower"] == pytest.approx(ref[1][1], rel=1e-10)


def _null_study(rng: np.random.Generator, worlds: int = 9, k: int = 2) -> pd.DataFrame:
    """Two families of the same attack in ``worlds`` worlds: a world effect, a D effect per family and world, model
    noise (SDs like the powered run's: 0.005, 0.002, 0.0025) - the labels carry nothing."""
    vals = {}
    w = rng.normal(0, 0.005, worlds)
    for arm in ("a", "b"):
        dfx = rng.normal(0, 0.002, worlds)
        vals[arm] = [list(w[i] + dfx[i] + rng.normal(0, 0.0025, k)) for i in range(worlds)]
    return _models(vals)


def test_aa_permutation_gives_about_five_percent_false_positives_on_null_worlds():
    """400 independent null studies, one permuted A/A contrast each (the function's own path): the false positives
    are binomial(400, 0.05) if the test is calibrated; the bounds leave 0.1 % on each side."""
    rng = np.random.default_rng(36)
    n = 400
    hits = sum(aa_permutation(_null_study(rng), "a", "b", permutations=1, seed=i)["false_positives"] for i in range(n))
    lo, hi = stats.binom.ppf(0.001, n, 0.05), stats.binom.isf(0.001, n, 0.05)
    assert lo <= hits <= hi, (hits, lo, hi)
    # one study, many contrasts: the rate, its Clopper-Pearson interval, and the direct contrast (two-sided, scipy)
    t = _null_study(rng)
    r = aa_permutation(t, "a", "b", permutations=500, seed=1)
    assert r["permutations"] == 500 and r["rate"] == r["false_positives"] / 500 and r["worlds"] == 9
    ci = stats.binomtest(r["false_positives"], 500).proportion_ci(0.95, method="exact")
    assert (r["rate_ci_low"], r["rate_ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    ya, yb = (t[t.arm == a].groupby("replicate").beta.mean().to_numpy() for a in ("a", "b"))
    direct = stats.ttest_rel(yb, ya)
    assert r["direct"]["p"] == pytest.approx(direct.pvalue, rel=1e-12) and r["direct"]["alternative"] == "two-sided"
    assert aa_permutation(t, "a", "b", permutations=500, seed=1) == r  # seeded
    # a family whose models are all lower in every world: the permutation still splits at random (size, not power)
    shifted = t.assign(beta=t.beta - 0.01 * (t.arm == "a"))
    assert aa_permutation(shifted, "a", "b", permutations=500, seed=1)["rate"] < 0.5


def test_dose_trend_matches_ols_with_world_fixed_effects():
    import statsmodels.formula.api as smf

    levels = {"l0": 0.0, "l10": 10.0, "l100": 100.0}
    values = {"l0": [[0.020, 0.022], [0.015, 0.013], [0.030, 0.028]],
              "l10": [[0.019, 0.017], [0.012, 0.014], [0.027, 0.029]],
              "l100": [[0.016, 0.016], [0.013, 0.009], [0.024, 0.026]],
              "pgd": [[0.018, 0.018], [0.010, 0.012], [0.025, 0.027]]}
    table = _models(values)
    r = dose_trend(table, levels)
    wm = table.groupby(["replicate", "arm"]).beta.mean().reset_index()
    wm = wm[wm.arm != "pgd"].assign(x=lambda d: np.log10(1 + d.arm.map(levels)))
    fit = smf.ols("beta ~ x + C(replicate)", wm).fit()
    assert r["slope"] == pytest.approx(fit.params["x"], rel=1e-10) and r["se"] == pytest.approx(fit.bse["x"], rel=1e-10)
    assert r["df"] == fit.df_resid == 9 - 3 - 1 and r["worlds"] == 3
    assert r["p"] == pytest.approx(fit.pvalues["x"] / 2 if fit.params["x"] < 0 else 1 - fit.pvalues["x"] / 2, rel=1e-9)
    ci = fit.conf_int().loc["x"]
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci[0], ci[1]), rel=1e-9)
    # against a reference, the world fixed effect absorbs it: the same trend, the levels read as differences
    ref = dose_trend(table, levels, reference="pgd")
    assert ref["slope"] == pytest.approx(r["slope"], rel=1e-10) and ref["p"] == pytest.approx(r["p"], rel=1e-10)
    pgd = np.mean([np.mean(v) for v in values["pgd"]])
    assert ref["level_means"]["l0"] == pytest.approx(r["level_means"]["l0"] - pgd, abs=1e-15)
    assert dose_trend(table[table.replicate == 1], levels) is None  # one world: no trend


def test_accuracy_adjusted_effects_keep_arm_names_with_brackets():
    """The protocol's arms are named ``human-perc-ot[refined]``, ``human-perc-ot[lambda=0]``: the regression's term
    ``C(arm, ...)[T.human-perc-ot[lambda=0]]`` gives the whole name back (its last bracket only is the term's)."""
    from imperceptible.fairness.arms import adjusted_for_accuracy

    rng = np.random.default_rng(0)
    arms = ["erm", "human-perc-ot[lambda=0]", "human-perc-ot[refined]", "pgd-l2"]
    t = pd.DataFrame([{"arm": a, "replicate": r, "seed": k, "beta": rng.normal(), "accuracy": rng.uniform()}
                      for a in arms for r in range(3) for k in range(2)])
    assert sorted(adjusted_for_accuracy(t, "erm")["effects"]) == sorted(arms[1:])


# --- the verdict rule ----------------------------------------------------------------------------------------------


def _gates(changed: float, energy: float, reliance: float = 0.17) -> dict:
    from imperceptible.experiments.fairness.gates import gates

    mech = {"f": [{"cue_changed_rate": changed, "cue_energy_share": energy}],
            "pgd-l2": [{"cue_changed_rate": 0.4, "cue_energy_share": 0.1}]}
    return gates([{"reliance": {"ramp": reliance}}], mech, "f", "pgd-l2")


def _test(p: float, diff: float = -0.002) -> dict:
    return {"difference": diff, "ci_low": diff - 0.003, "ci_high": diff + 0.003, "t": -1.5, "df": 8.0, "p": p,
            "alternative": "less"}


def test_verdict_takes_every_branch_of_the_protocol_rule():
    from imperceptible.experiments.fairness import analysis as A

    passing, failing = _gates(0.95, 0.8), _gates(0.5, 0.15)
    tost_no = {"p": 0.3, "margin": 0.0042, "ci_level": 0.9, "ci_low": -0.004, "ci_high": 0.006}
    tost_yes = {**tost_no, "p": 0.01, "ci_low": -0.002, "ci_high": 0.003}
    # 1. the positive control fails its gates (or they cannot be measured): nothing else is judged
    for pc in (failing, None, _gates(0.95, 0.8, reliance=0.1)):
        v = A.verdict(pc, _test(0.001), passing, _test(0.001), tost_yes)
        assert v["branch"] == "no-reach" and v["design"].startswith(A.VERDICT_NO_REACH)
        assert v["mechanism"] is None and v["effect"] is None and v["sentences"] == [v["design"]]
    assert "cue changed 1.25x pgd-l2's (>= 2: FAILED)" in A.verdict(failing, None, None, None, None)["design"]
    # 2. its gates pass but DRO with it does not lower the slope against PGD-L2: insensitive
    for p in (0.05, 0.2):
        v = A.verdict(passing, _test(p), passing, _test(0.001), tost_yes)
        assert v["branch"] == "insensitive" and v["design"].startswith(A.VERDICT_INSENSITIVE) and v["effect"] is None
        assert f"one-sided p = {p:.3g}" in v["design"]
    # 3. the design sees the mechanism: the primary's mechanism and effect
    v = A.verdict(passing, _test(0.004, -0.006), failing, _test(0.01, -0.003), tost_no)
    assert v["branch"] == "tested" and v["design"].startswith(A.VERDICT_SENSITIVE) and "-0.0060" in v["design"]
    assert v["mechanism"].startswith(A.VERDICT_FIRST_LINK_FAILS + " (") and "energy on the cue 1.5x" in v["mechanism"]
    assert v["effect"].startswith(A.VERDICT_SUPPORTED + ": human-perc-ot minus pgd-l2 -0.0030") and "p = 0.01" in v["effect"]
    v = A.verdict(passing, _test(0.004), passing, _test(0.3, 0.0005), tost_yes)
    assert v["mechanism"].startswith(A.VERDICT_FIRST_LINK_HOLDS)
    assert v["effect"].startswith(A.VERDICT_EQUIVALENT + ": TOST p = 0.01")
    v = A.verdict(passing, _test(0.004), passing, _test(0.3, 0.0005), tost_no)
    assert v["effect"].startswith(A.VERDICT_NOT_SUPPORTED + ": human-perc-ot minus pgd-l2 +0.0005")
    assert "TOST p = 0.3 (margin +-0.0042" in v["effect"] and len(v["sentences"]) == 3
    # supported takes precedence over equivalent (a small, real effect inside the margin)
    assert A.verdict(passing, _test(0.004), passing, _test(0.01), tost_yes)["effect"].startswith(A.VERDICT_SUPPORTED)


# --- the protocol file ---------------------------------------------------------------------------------------------


def test_committed_protocol_follows_from_the_powered_run_and_the_code():
    from imperceptible.experiments.fairness import analysis as A
    from imperceptible.experiments.fairness import protocol as P
    from imperceptible.experiments.fairness.stages import DOSE

    raw = tomllib.loads(PROTOCOL.read_text())
    powered = json.loads(POWERED.read_text())
    sds = {f: powered["arms"][f]["beta_sd"] for f in ("human-perc-ot", "pgd-l2")}
    assert sds == P.POWERED_SD
    d = 3.852 * math.sqrt(1 / 50 + 1 / 50)
    margin = d * math.sqrt((sds["human-perc-ot"] ** 2 + sds["pgd-l2"] ** 2) / 2)
    assert raw["equivalence"]["margin"] == pytest.approx(margin, rel=1e-12) == P.equivalence_margin()
    assert raw["equivalence"]["paper_d"] == pytest.approx(d, abs=5e-5)
    ours, pgd = (np.array(powered["arms"][f]["beta_replicate_means"]) for f in ("human-perc-ot", "pgd-l2"))
    sd = float(np.std(ours - pgd, ddof=1))
    assert raw["power"]["sd_paired_differences"] == pytest.approx(sd, rel=1e-12) == P.POWERED_PAIRED_SD
    n = P.worlds_for_power(margin, sd)
    assert n == raw["power"]["worlds"] == raw["study"]["dro_seeds"] == 9
    from statsmodels.stats.power import TTestPower

    assert TTestPower().power(effect_size=margin / sd, nobs=n, alpha=0.05, alternative="larger") == pytest.approx(
        raw["power"]["power_at_n"], abs=5e-4)
    assert raw["dose_response"]["levels"] == DOSE
    rule = " ".join(raw["verdict"]["rule"].split())
    for phrase in (A.VERDICT_NO_REACH, A.VERDICT_INSENSITIVE, A.VERDICT_FIRST_LINK_FAILS, A.VERDICT_EQUIVALENT,
                   A.VERDICT_NOT_SUPPORTED, '"supported"'):
        assert phrase in rule, phrase
    proto = P.load_protocol(PROTOCOL)
    assert proto.analysis == P.ProtocolAnalysis() and proto.analysis.permutations >= 200


def test_protocol_settings_apply_and_conflicts_are_refused(tmp_path):
    import dataclasses

    from imperceptible.errors import (
        MSG_FAIRNESS_PROTOCOL_ARM_SETTING,
        MSG_FAIRNESS_PROTOCOL_CONFLICT,
        MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING,
        FairnessProtocolError,
    )
    from imperceptible.experiments.fairness import FairnessConfig, default_families
    from imperceptible.experiments.fairness.protocol import apply_protocol, check_arms, given_settings, load_protocol

    proto = load_protocol(PROTOCOL)
    cfg = apply_protocol(FairnessConfig(), proto, set())
    assert cfg.arms == "protocol" and cfg.dro_seeds == 9 and cfg.models == 2
    check_arms(proto, cfg, default_families(cfg))
    assert apply_protocol(FairnessConfig(dro_seeds=9), proto, {"dro_seeds"}).dro_seeds == 9  # the same value: fine
    given = FairnessConfig(dro_seeds=5)
    assert given_settings(given) == {"dro_seeds"}
    with pytest.raises(FairnessProtocolError) as e:
        apply_protocol(given, proto, given_settings(given))
    assert str(e.value) == MSG_FAIRNESS_PROTOCOL_CONFLICT.format(name="--dro-seeds", got=5, expected=9, path=PROTOCOL)
    bad = tmp_path / "p.toml"
    bad.write_text(PROTOCOL.read_text().replace("\n\n# Each", "\nepochs = 3\n\n# Each", 1))
    with pytest.raises(FairnessProtocolError) as e:
        load_protocol(bad)
    assert str(e.value).startswith(MSG_FAIRNESS_PROTOCOL_UNKNOWN_SETTING.format(path=bad, name="epochs", choices="")[:-2])
    bad.write_text(PROTOCOL.read_text().replace("budget = 200", "budget = 50"))
    with pytest.raises(FairnessProtocolError) as e:
        check_arms(load_protocol(bad), cfg, default_families(cfg))
    assert str(e.value) == MSG_FAIRNESS_PROTOCOL_ARM_SETTING.format(path=bad, arm="human-perc-ot[refined]", name="budget",
                                                           got=50, expected=200)
    assert dataclasses.asdict(load_protocol(bad).analysis) == dataclasses.asdict(proto.analysis)


def test_a_resumed_run_whose_protocol_changed_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """The run's fingerprint holds the protocol's sha256: resuming with the same file passes that check, with a
    changed file (or without one) the command stops with one line and exit status 2."""
    import imperceptible.experiments.fairness as fairness
    from imperceptible.cli.main import main

    def stop(*a, **k):
        raise KeyboardInterrupt  # the study stops right after its run directory was opened

    monkeypatch.setattr(fairness, "pretrain", stop)
    proto, out = tmp_path / "protocol.toml", tmp_path / "run"
    proto.write_text(PROTOCOL.read_text())
    assert main(["fairness", "--protocol", str(proto), "--out", str(out), "--quiet"]) == 130
    fp = json.loads((out / "fingerprint.json").read_text())
    from imperceptible.experiments.fairness.protocol import load_protocol

    first = load_protocol(proto).sha256
    assert fp["protocol"] == {"sha256": first} and fp["config"]["dro_seeds"] == 9 and fp["config"]["arms"] == "protocol"
    assert main(["fairness", "--protocol", str(proto), "--out", str(out), "--quiet"]) == 130  # unchanged: resumes
    capsys.readouterr()
    proto.write_text(PROTOCOL.read_text().replace("alpha = 0.05", "alpha = 0.10"))
    assert main(["fairness", "--protocol", str(proto), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and first in err and load_protocol(proto).sha256 in err
    assert "a protocol fixed before the run cannot change during it" in err
    assert main(["fairness", "--arms", "protocol", "--dro-seeds", "9", "--out", str(out), "--quiet"]) == 2
    assert "none" in capsys.readouterr().err
    # a command-line setting against the protocol's is refused before anything runs, naming both
    assert main(["fairness", "--protocol", str(proto), "--models", "3", "--out", str(tmp_path / "other"), "--quiet"]) == 2
    assert "--models: given as 3 on the command line and as 2 in the protocol" in capsys.readouterr().err


# --- a whole (tiny) protocol study: summary, report, terminal ----------------------------------------------------


def test_protocol_analysis_report_and_terminal_on_a_constructed_table(capsys):
    """The protocol's part of the summary from a models table of every protocol arm (9 worlds, K = 2; the positive
    control lowers the slope by 0.004, the others do nothing), with gates that pass: every section is there, the
    verdict takes the tested branch, and the report and the terminal print the verdict's sentences."""
    from imperceptible.experiments.fairness import stages as S
    from imperceptible.experiments.fairness.analysis import VERDICT_SENSITIVE, protocol_analysis
    from imperceptible.experiments.fairness.protocol import ProtocolAnalysis
    from imperceptible.experiments.fairness.report import print_protocol, protocol_html
    from imperceptible.runs.report import esc

    rng = np.random.default_rng(3)
    arms = ["erm", *S.DOSE, S.REFINED, S.PAPER, S.AA, S.POSITIVE, S.BASELINE]
    rows = []
    for w in range(1, 10):
        base = rng.normal(0.012, 0.004)
        for arm in arms:
            for k in (1, 2):
                beta = base + rng.normal(0, 0.002) - 0.004 * (arm == S.POSITIVE)
                rows.append({"arm": arm, "replicate": w, "seed": k, "beta": beta, "accuracy": rng.uniform(0.8, 0.9),
                             "reliance": rng.uniform(0.1, 0.2), "bottom": rng.uniform(0.7, 0.8), "top": 0.9,
                             "gap": rng.uniform(0.02, 0.04), "worst_group": 0.8, "worst_class": rng.uniform(0.5, 0.6),
                             "worst_cue_group": rng.uniform(0.2, 0.3)})
    table = pd.DataFrame(rows)
    ok = _gates(0.95, 0.8)
    gate = {**ok, "families": {f: ok for f in arms if f not in ("erm", S.BASELINE)}}
    s = protocol_analysis(table, [], {}, gate, ProtocolAnalysis(), {"file": "p.toml", "sha256": "abc"})
    assert s["primary_endpoint"]["pairs"] == 9 and s["equivalence"]["pairs"] == 9
    assert s["positive_control"]["test"]["difference"] < 0 and s["positive_control"]["gates"] == ok
    assert set(s["secondary"]) == {f"{S.REFINED} vs pgd-l2", f"{S.PAPER} vs pgd-l2", "bottom", "gap", "worst_group",
                                   "worst_class", "worst_cue_group", "accuracy"}
    finite = [v for v in s["secondary"].values() if np.isfinite(v["p"])]
    assert finite and all(v["p_holm"] >= v["p"] for v in finite)
    assert s["size"]["permutations"] == 1000 and s["size"]["direct"]["a"] == S.AA
    assert s["dose_response"]["slope_trend"]["worlds"] == 9 and s["dose_response"]["reliance_trend"]["df"] == 27 - 9 - 1
    if s["positive_control"]["test"]["p"] < 0.05:
        assert s["verdict"]["branch"] == "tested" and s["verdict"]["design"].startswith(VERDICT_SENSITIVE)
    html = protocol_html(s)
    assert all(esc(sentence) in html for sentence in s["verdict"]["sentences"])
    print_protocol(s)
    out = capsys.readouterr().out
    assert all(f"verdict: {x}" in out for x in s["verdict"]["sentences"]) and "size (A/A, 1000 permuted" in out


@pytest.mark.slow
def test_a_tiny_protocol_study_writes_the_protocols_summary_report_and_verdict(grouped_folder, tmp_path, capsys):
    """Every protocol arm on a small folder dataset (tiny attacks under the protocol's family names): the summary
    holds the paired primary, TOST, the positive control, Holm-corrected secondaries, the A/A size, the dose-response
    and the verdict (here: no simulated cue, so no gate can pass and the verdict says the design cannot be tested),
    the report and the terminal print them, and every family has its gates."""
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.experiments.fairness import fairness_study, print_study
    from imperceptible.experiments.fairness import stages as S
    from imperceptible.experiments.fairness.analysis import VERDICT_NO_REACH

    small = {"steps": 10, "max_steps": 20}
    attacks = {S.OURS: HumanPercOT.from_preset("first-success", **small),
               S.REFINED: HumanPercOT.from_preset("refined", budget=20),
               S.PAPER: HumanPercOT.from_preset("paper", steps=10),
               S.LAMBDA0: HumanPercOT.from_preset("first-success", lam=0.0, **small),
               S.LAMBDA100: HumanPercOT.from_preset("first-success", lam=100.0, **small),
               S.AA: HumanPercOT.from_preset("first-success", **small),
               S.POSITIVE: HumanPercOT.from_preset("first-success", **{**S.POSITIVE_SETTINGS, **small}),
               S.BASELINE: PGDL2(eps=2.0, alpha=0.4, steps=5)}
    s = fairness_study(out=tmp_path / "run", attacks=attacks, dataset=f"folder:{grouped_folder}",
                       covariates=str(grouped_folder / "cov.csv"), arms="protocol", models=2, dro_seeds=2, dro_size=48,
                       t1=1, t2=1, min_count=10, progress=False)
    assert list(s["arms"]) == ["erm", *attacks]
    assert s["primary_endpoint"]["test"] == "paired t (world level)" and s["primary_endpoint"]["pairs"] == 2
    assert s["equivalence"]["margin"] == pytest.approx(0.00417213263270387) and s["protocol"]["sha256"] is None
    assert s["positive_control"]["test"]["a"] == S.POSITIVE and s["size"]["permutations"] == 1000
    assert {f"{S.REFINED} vs pgd-l2", f"{S.PAPER} vs pgd-l2", "accuracy", "image_level_slope"} <= set(s["secondary"])
    assert all("p_holm" in v for v in s["secondary"].values() if np.isfinite(v["p"]))
    assert set(s["dose_response"]["levels"]) == set(S.DOSE) and s["dose_response"]["slope_trend"]["worlds"] == 2
    assert set(s["gates"]["families"]) == set(attacks) - {S.BASELINE}
    assert s["verdict"]["branch"] == "no-reach" and s["verdict"]["design"].startswith(VERDICT_NO_REACH)
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stored["verdict"] == s["verdict"] and stored["size"]["rate"] == s["size"]["rate"]
    report = (tmp_path / "run" / "report.html").read_text().replace("&#x27;", "'")
    assert "Verdict (the protocol's rule)" in report and VERDICT_NO_REACH in report and "Dose-response" in report
    print_study(s)
    out = capsys.readouterr().out
    assert f"verdict: {s['verdict']['design']}" in out and "size (A/A, 1000 permuted contrasts)" in out


# --- the positive control on a reduced run -------------------------------------------------------------------------


@pytest.mark.slow
def test_positive_control_passes_gates_two_and_three_on_a_reduced_run(tmp_path):
    """One world of the protocol's size (30,000 images: at 6,000 the pre-trained model lets PGD-L2's rows change the
    decoded ramp in 54-60 % of rows, and gate 2's 2x cannot be reached by any attack), 200 images and one epoch of
    Algorithm 2 for the positive control and PGD-L2: the positive control changes the cue at least twice as often
    and puts at least twice PGD-L2's share of its energy on it (the thresholds unchanged)."""
    from imperceptible.data.fashion_mnist import fashion_mnist
    from imperceptible.engine import Engine
    from imperceptible.errors import DatasetNotFoundError
    from imperceptible.experiments.fairness import FairnessConfig, default_families
    from imperceptible.experiments.fairness.gates import RATIO_MIN
    from imperceptible.experiments.fairness.layout import StudyLayout
    from imperceptible.experiments.fairness.stages import BASELINE, POSITIVE, Study, algorithm2, gate_stage, pretrain
    from imperceptible.experiments.fairness.worlds import Worlds

    from .conftest import skip_or_fail

    try:
        fashion_mnist("test")
    except DatasetNotFoundError as e:
        skip_or_fail(f"Fashion-MNIST is absent here ({e}); .ci/run installs Debian's dataset-fashion-mnist")
    cfg = FairnessConfig(arms="protocol", dro_seeds=1, dro_size=200, t1=1)
    fams = {f: a for f, a in default_families(cfg).items() if f in (POSITIVE, BASELINE)}
    study = Study(cfg, StudyLayout(tmp_path), Engine(), fams, Worlds(cfg), progress=False)
    pre = {1: pretrain(study, 1)}
    alg2 = {f: {1: algorithm2(study, 1, f)} for f in fams}
    g = gate_stage(study, pre, alg2)["families"][POSITIVE]
    checks = g["checks"]
    assert checks["pretrained_reliance"]["passed"], checks
    for k in ("cue_changed_ratio", "cue_energy_ratio"):
        assert checks[k]["threshold"] == RATIO_MIN == 2 and checks[k]["value"] >= 2 and checks[k]["passed"], checks
    assert g["passed"] is True


def test_the_protocol_table_copies_the_verdict_gates_and_tests_from_a_stored_summary():
    """benchmarks/tables.py fairness-protocol on the committed reduced run: the verdict's own sentences, one gate row per
    Human_Perc_OT-type family, the paired primary labelled as the paired test it is (not Welch), TOST with its margin,
    the measured size with its interval."""
    from .conftest import load_script

    s = json.loads((ROOT / "benchmarks/results/fairness_protocol_reduced.json").read_text())
    text = load_script("benchmarks/tables.py").fairness_protocol(s)
    assert f"- {s['verdict']['sentences'][0]}" in text
    fams = [r for r in text.splitlines() if r.startswith("| `") and r.count(" | ") == 4 and "worlds)" not in r]
    arms = [r for r in text.splitlines() if "worlds) |" in r]  # each arm's slope, accuracy and cue reliance
    pc = s["arms"]["positive-control"]
    assert len(arms) == len(s["arms"]) and any(r.startswith("| `positive-control`") and f"{pc['reliance_mean']:.3f}" in r
                                              for r in arms)
    assert [r.split("`")[1] for r in fams] == list(s["gates"]["families"])
    assert fams[-1].endswith("**passed** |") and all(r.endswith("failed |") for r in fams[:-1])
    p = s["primary_endpoint"]
    (primary,) = [r for r in text.splitlines() if r.startswith("| **primary**")]
    assert f"{p['difference']:+.4f}" in primary and f"{p['p']:.3g}" in primary and "| less |" in primary
    assert "Welch" not in text and f"margin +-{s['equivalence']['margin']:.4f}" in text
    z = s["size"]
    assert f"{z['false_positives']} of {z['permutations']} A/A contrasts" in text and f"{100 * z['rate']:.1f}%" in text
    s["protocol"]["file"] = str(PROTOCOL)  # with the protocol's file: its sensitivity reading beside the TOST
    assert "at that one, +-0.002, the primary's 95% CI" in load_script("benchmarks/tables.py").fairness_protocol(s)
    # the older table labels the primary by its own test too
    assert "| D-level Welch |" not in load_script("benchmarks/tables.py").fairness(s).split("**primary**")[1].split("\n")[0]
