"""Quality per pass (issue 34, item 4): the passes at which ours' anytime curve reaches a peer's median at the budget,
by hand on curves whose crossing is known."""

from __future__ import annotations

import math

import pytest

from imperceptible.errors import ParameterError
from imperceptible.evaluate.pass_ratio import AT_MOST, EXACT, MORE_THAN, pass_ratios, passes_to_reach

from .conftest import load_script


def test_a_power_law_curve_is_read_off_exactly_between_checkpoints():
    """median = 100 / passes: a straight line in log-log, so the interpolation is exact anywhere on it."""
    cs = [25, 50, 100, 200]
    curve = [100 / c for c in cs]
    for target_passes in (30.0, 64.0, 150.0, 200.0):
        r = passes_to_reach(cs, curve, 100 / target_passes)
        assert r["bound"] == EXACT and r["passes"] == pytest.approx(target_passes, rel=1e-12)


def test_bounds_at_either_end_and_undefined_points():
    cs = [25, 50, 100, 200]
    assert passes_to_reach(cs, [1.0, 0.5, 0.4, 0.3], 2.0) == {"passes": 25.0, "bound": AT_MOST}
    assert passes_to_reach(cs, [4.0, 3.0, 2.5, 2.1], 2.0) == {"passes": 200.0, "bound": MORE_THAN}
    # not fooled on more than half the images at 25 and 50 passes: the crossing lies somewhere before 100
    assert passes_to_reach(cs, [None, None, 1.0, 0.5], 2.0) == {"passes": 100.0, "bound": AT_MOST}
    assert passes_to_reach(cs, [None, None, 1.0, 0.5], 1.0) == {"passes": 100.0, "bound": AT_MOST}  # equal: still
    assert passes_to_reach(cs, [4.0, 2.0, 1.0, 0.5], 1.0) == {"passes": 100.0, "bound": EXACT}
    assert passes_to_reach(cs, [4.0, 0.0, 0.0, 0.0], 0.0) == {"passes": 50.0, "bound": AT_MOST}  # a judge's zeros
    assert passes_to_reach(cs, [None, None, None, None], 2.0)["bound"] == MORE_THAN
    # a judge that reads 0 at the crossing: no log-log line, the checkpoint is an upper bound
    assert passes_to_reach(cs, [4.0, 0.0, 0.0, 0.0], 1.0) == {"passes": 50.0, "bound": AT_MOST}
    assert passes_to_reach(cs, [4.0, 2.0, 1.0, 0.5], None) == {"passes": None, "bound": None}
    assert passes_to_reach(cs, [4.0, 2.0, 1.0, 0.5], math.inf)["passes"] is None


def test_bad_checkpoints_are_refused_with_what_was_expected():
    with pytest.raises(ParameterError, match="checkpoints: expected increasing positive pass counts"):
        passes_to_reach([50, 25], [1.0, 2.0], 1.0)
    with pytest.raises(ParameterError, match="one per median"):
        passes_to_reach([25, 50], [1.0], 1.0)
    with pytest.raises(ParameterError, match="checkpoints"):
        passes_to_reach([25.5, 50], [1.0, 2.0], 1.0)


def test_pass_ratios_over_a_summary_anytime_block():
    """Ours falls as 100 / passes; DDN reaches 1.0 at 200 passes (ours at 100: ratio 2); FMN 0.4 (ours never: more
    than 200 passes, a ratio below the bound 1); a peer with no median at the budget (more than half not fooled) gives
    no target."""
    cs = [25, 50, 100, 200]
    anytime = {"ours": {str(c): {"j": 100 / c} for c in cs},
               "ddn": {str(c): {"j": 200 / c} for c in cs},
               "fmn": {str(c): {"j": 0.4} for c in cs},
               "cw": {str(c): {"j": None} for c in cs}}
    r = pass_ratios(anytime, "ours", ["ddn", "fmn", "cw", "absent"], ["j"], 200)["j"]
    assert r["ddn"]["passes"] == pytest.approx(100) and r["ddn"]["ratio"] == pytest.approx(2.0)
    assert r["ddn"]["ratio_bound"] == "exact"
    assert r["fmn"]["bound"] == MORE_THAN and r["fmn"]["ratio"] == pytest.approx(1.0)
    assert r["fmn"]["ratio_bound"] == "less than"
    assert r["cw"]["passes"] is None and r["cw"]["ratio"] is None and "absent" not in r
    with pytest.raises(ParameterError, match="checkpoints ending at the budget 1000"):
        pass_ratios(anytime, "ours", ["ddn"], ["j"], 1000)


def test_the_tables_script_renders_the_pass_ratios_of_a_summary():
    """benchmarks/tables.py passes: one row per judge ours does not optimise, one column per peer, the passes and the
    ratio, with the bounds written as such (computed from the anytime block of a summary that has no pass_ratio)."""

    tables = load_script("benchmarks/tables.py")
    cs = [25, 50, 100, 200]
    judges = {"gmsd": {"methods": {"ours": {"optimises": False}}},
              "ssim_distance": {"methods": {"ours": {"optimises": True}}}}
    anytime = {"ours": {str(c): {"gmsd": 100 / c, "ssim_distance": 1.0} for c in cs},
               "ddn": {str(c): {"gmsd": 200 / c, "ssim_distance": 1.0} for c in cs},
               "fmn": {str(c): {"gmsd": 0.4, "ssim_distance": 1.0} for c in cs},
               "pgd": {str(c): {"gmsd": 8.0, "ssim_distance": 1.0} for c in cs}}
    s = {"ours": "ours", "peers": ["ddn", "fmn", "pgd"], "budget": 200, "checkpoints": cs,
         "minimal": {"judges": judges, "anytime": anytime}}
    text = tables.passes(s)
    rows = [r for r in text.splitlines() if r.startswith("| GMSD")]
    assert rows == ["| GMSD x1000 | 100 (2.0x) | > 200 (< 1x) | <= 25 (>= 8.0x) |"]
    assert "1-SSIM" not in text  # the judge ours optimises is left out


def test_the_tables_script_names_judges_not_tracked_at_the_checkpoints_instead_of_a_row_of_na():
    """A judge scored on final images only (every anytime median None) gets no row of n/a cells; the caption names
    it. A peer whose median at the budget is undefined keeps its n/a cell, which the caption explains."""

    tables = load_script("benchmarks/tables.py")
    cs = [50, 100]
    judges = {k: {"methods": {"ours": {"optimises": False}}} for k in ("gmsd", "fsim_distance")}
    anytime = {"ours": {str(c): {"gmsd": 1.0, "fsim_distance": None} for c in cs},
               "ddn": {str(c): {"gmsd": 2.0, "fsim_distance": None} for c in cs},
               "cw": {str(c): {"gmsd": None, "fsim_distance": None} for c in cs}}
    s = {"ours": "ours", "peers": ["ddn", "cw"], "budget": 100, "checkpoints": cs,
         "minimal": {"judges": judges, "anytime": anytime}}
    text = tables.passes(s)
    rows = [r for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert rows == ["| GMSD x1000 | <= 50 (>= 2.0x) | n/a |"]
    assert "without a row: 1-FSIM x1000 (judged on the final images only)" in text
    assert "n/a where the peer's median at 100 passes is not defined" in text
