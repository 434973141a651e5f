"""The minimal-attack benchmark: AttackBench's optimality (against its own formula), the paired tests, and a
small ``bench minimal`` run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from imperceptible.evaluate.optimality import ensemble, optimality, paired_test

from .conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _attackbench(adv: np.ndarray, best: np.ndarray) -> float:
    """AttackBench's ``analysis/utils.py::eval_optimality``, restated (trapezoids over the distinct distances)."""
    d, c = np.unique(best, return_counts=True)
    ra = 1 - c.cumsum() / len(best)
    clean, top = np.count_nonzero(best) / len(best), d.max()
    best_area = np.trapezoid(ra, d)
    d2, c2 = np.unique(adv.clip(max=top), return_counts=True)
    area = np.trapezoid(1 - c2.cumsum() / len(adv), d2)
    return 1 - (area - best_area) / (clean * top - best_area)


def test_optimality_is_attackbenchs_with_exact_areas_and_stays_in_0_1():
    rng = np.random.default_rng(0)
    for n in (2000, 60, 4):
        for _ in range(10):
            a, b = rng.exponential(1.0, n), rng.exponential(1.4, n)
            a[: n // 15] = b[: n // 15] = 0.0  # misclassified clean images
            b[rng.integers(0, n, max(1, n // 20))] = np.inf  # failures
            best = ensemble({"a": a, "b": b})
            o = optimality(b, best)
            assert 0 <= o <= 1 and optimality(best, best) == pytest.approx(1.0)
            if n == 2000:  # many images: AttackBench's trapezoids and the exact step areas agree
                assert o == pytest.approx(_attackbench(b, best), abs=0.01)
    # few images, all correct: AttackBench's formula puts a uniformly worse attack above 1; ours at 0 (every one of
    # its distances is at or beyond the ensemble's largest), and an attack that never succeeds at 0
    a = np.array([1.0, 1.1, 1.2, 1.3])
    best = ensemble({"a": a, "b": a + 0.5})
    assert _attackbench(a + 0.5, best) > 1 and optimality(a + 0.5, best) == pytest.approx(0.0)
    assert optimality(np.full(4, np.inf), best) == pytest.approx(0.0)
    # the worst attack lands at 0 exactly, not at a rounding below it (a C&W row of the photo benchmark read -2e-16)
    d = np.array([0.1, 0.7, 0.3, 0.2]) * 3
    worst = ensemble({"a": d / 3, "w": np.full(4, d.max())})
    assert optimality(np.full(4, d.max()), worst) == 0.0 and optimality(d / 3, worst) == 1.0
    area = np.minimum(a + 0.05, 1.3).mean()  # the exact area: the mean of the clipped distances
    assert optimality(a + 0.05, best) == pytest.approx(1 - (area - a.mean()) / (1.3 - a.mean()))


def test_paired_test_is_scipys_one_sided_wilcoxon():
    rng = np.random.default_rng(1)
    ours, other = rng.exponential(1.0, 30), rng.exponential(1.5, 30)
    other[3] = np.inf  # not fooled by the other: left out of the pairs
    t = paired_test(ours, other)
    keep = np.isfinite(other)
    ref = stats.wilcoxon(ours[keep], other[keep], alternative="less")
    assert t["n"] == 29 and t["p"] == pytest.approx(ref.pvalue) and t["statistic"] == pytest.approx(ref.statistic)
    assert t["median_ratio"] == pytest.approx(np.median(ours[keep] / other[keep]))
    ours[:2] = other[:2] = 0.0  # misclassified before any attack: no pair (and no 0 / 0 in the ratio)
    t = paired_test(ours, other)
    keep[:2] = False
    ref = stats.wilcoxon(ours[keep], other[keep], alternative="less")
    assert t["n"] == 27 and t["p"] == pytest.approx(ref.pvalue) and np.isfinite(t["median_ratio"])


def test_bench_minimal_small_run(tmp_path, mnist_cnn):
    from imperceptible.experiments.bench_minimal import bench_minimal

    out = tmp_path / "run"
    s = bench_minimal(out=out, dataset="mnist", model="mnist-cnn", limit=4, budget=30, peers=False, progress=False,
                      judges="ssim_distance,ciede2000,fsim_distance,haarpsi_distance")
    judges = s["minimal"]["judges"]
    assert {"ssim_distance", "ciede2000", "fsim_distance", "haarpsi_distance"} <= set(judges)
    for k, e in judges.items():
        for m, r in e["methods"].items():
            assert r["optimality"] is None or 0 <= r["optimality"] <= 1 + 1e-9, (k, m)
        assert e["methods"]["human-perc-ot"]["optimises"] == (k == "ssim_distance")
    assert s["methods"]["human-perc-ot"]["passes_max"] <= 30  # ours within the budget, counted
    assert all(m["passes_per_image"] > 0 for m in s["methods"].values())  # every attack's passes counted
    curve = s["minimal"]["anytime"]["human-perc-ot"]
    vals = [curve[c]["haarpsi_distance"] for c in sorted(curve, key=int)
            if curve[c].get("haarpsi_distance") is not None]
    assert len(vals) >= 2 and vals == sorted(vals, reverse=True)  # the best found so far only improves with the budget
    # the snapshots get the anytime judges among the run's (ciede2000, haarpsi); the final images get every judge
    assert all(curve[c].get("ssim_distance") is None and curve[c].get("fsim_distance") is None for c in curve)
    d = s["minimal"]["decision"]
    assert set(d) >= {"judges", "held", "not_held", "alpha", "tests"} and "ssim_distance" not in d["judges"]
    assert json.loads((out / "summary.json").read_text())["minimal"]["decision"]["held"] == d["held"]
    table = json.loads((out / "per_image.json").read_text())
    assert len(table["ids"]) == 4 and set(table["values"]) == set(s["methods"])
    assert (out / "report.html").is_file() and (out / "plots" / "anytime.png").is_file()
    # benchmarks/minimal_figures.py draws the same figures again from what the run stored

    figs = load_script("benchmarks/minimal_figures.py")
    drawn = figs.figures(out, tmp_path / "figures", prefix="again_")
    assert sorted(f.name for f in drawn) == ["again_anytime.png", "again_robust_accuracy.png"]
    assert all(f.stat().st_size > 10_000 for f in drawn)


def test_judges_option_takes_metric_keys_and_refuses_others():
    from imperceptible.errors import UnknownNameError
    from imperceptible.experiments.bench_minimal import judge_keys

    assert judge_keys("gmsd, ssim_distance") == ["gmsd", "ssim_distance"]
    assert "cvvdp_distance" in judge_keys(None) and "l2" not in judge_keys(None)
    with pytest.raises(UnknownNameError, match="did you mean: gmsd"):
        judge_keys("gmds")


def test_anytime_figure_is_left_out_when_no_checkpoint_has_a_median(tmp_path):
    """A robust model under a small budget: at every checkpoint at most half of the images are fooled, so no median
    exists; the figure is left out (not an empty grid, not a crash); methods with medians in different panels draw."""
    from imperceptible.runs.minimal_report import anytime_plot

    s = {"minimal": {"judges": {"gmsd": {}, "ciede2000": {}},
                     "anytime": {"a": {"10": {"gmsd": None, "ciede2000": None}},
                                 "b": {"10": {"gmsd": None, "ciede2000": None}}}}}
    assert anytime_plot(s, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    s["minimal"]["anytime"]["b"] = {"10": {"gmsd": None, "ciede2000": 3.0}, "20": {"gmsd": None, "ciede2000": 2.0}}
    s["minimal"]["anytime"]["a"] = {"10": {"gmsd": 0.002, "ciede2000": None}, "20": {"gmsd": 0.001, "ciede2000": None}}
    assert anytime_plot(s, tmp_path / "one.png") == tmp_path / "one.png" and (tmp_path / "one.png").stat().st_size > 0


@pytest.mark.parametrize(("n_methods", "n_judges"), [(1, 3), (8, 8), (20, 8), (24, 15)])
def test_the_figures_legend_covers_no_panel(n_methods, n_judges):
    """The legend below the panels lists every method once and sits wholly below every panel's tick labels and axis
    label, however many rows it needs (with 20 methods over two rows of panels it covered the bottom row's labels)."""
    import matplotlib.pyplot as plt

    from imperceptible.runs.minimal_report import _legend_below, _panels

    keys = [f"j{i}" for i in range(n_judges)]
    fig, axes = _panels(keys)
    for ax in list(axes.flat)[:n_judges]:
        for m in range(n_methods):
            ax.plot([1, 10, 100], [3 + m, 2 + m, 1 + m], label=f"method-{m}")
        ax.set_xscale("log")
        ax.set_xlabel("passes per image", fontsize=8)
    leg = _legend_below(fig, axes, n_judges, "title")
    renderer = fig.canvas.get_renderer()
    top = leg.get_window_extent(renderer).y1
    assert [t.get_text() for t in leg.get_texts()] == [f"method-{m}" for m in range(n_methods)]
    for ax in list(axes.flat)[:n_judges]:
        assert ax.get_tightbbox(renderer).y0 > top, (n_methods, n_judges)
    plt.close(fig)


def test_robustness_figure_is_left_out_without_a_judged_image(tmp_path):
    """A user's folder that the model classifies wholly wrong: no image is attacked or judged, so the summary has no
    judge; the report is written without the figure (it crashed in matplotlib on a grid of zero rows)."""
    from imperceptible.runs.minimal_report import robustness_plot

    assert robustness_plot({"a": [{"clean_correct": False, "success": False, "metrics": {}}]}, [],
                           tmp_path / "r.png") is None
    assert not (tmp_path / "r.png").exists()


def test_a_judge_reading_zero_on_a_fooled_image_counts_in_the_median():
    """ColorVideoVDP reads exactly 0 (10 JOD, its float32 resolution) on many of ours' fooled photos; those images are
    fooled, and the median over the fooled images includes them (it had left them out as if misclassified, reporting
    4.3 where the median was 0). An image misclassified before any attack stays out."""
    from imperceptible.experiments.minimal_analysis import analyse

    def rows(vals, correct=(False, True, True, True, True)):
        return [{"clean_correct": c, "success": c, "metrics": {"gmsd": v}} for c, v in zip(correct, vals)]

    out = analyse({"a": rows([0.0, 0.0, 0.0, 0.0, 4.0]), "b": rows([0.0, 1.0, 1.0, 2.0, 3.0])}, ["gmsd"], {}, (),
                  ours="a", peers=["b"])
    j = out["judges"]["gmsd"]
    assert j["methods"]["a"]["median"] == 0.0 and j["methods"]["b"]["median"] == 1.5
    assert j["ensemble_median"] == 0.0


def test_the_judge_table_is_split_so_that_it_fits_a_page():
    """Fourteen judges (three columns each) in tables of at most five judges: three tables, every judge once, every
    method in each, the medians in the table's display units."""
    import re

    from imperceptible.costs.metrics import METRICS
    from imperceptible.runs.minimal_report import JUDGES_PER_TABLE, judge_table

    keys = [k for k, m in METRICS.items() if m.judge][:14]
    assert len(keys) == 14
    judges = {k: {"methods": {"ours": {"median": 0.5, "optimality": 0.9}, "peer": {"median": 1.0, "optimality": 0.4}}}
              for k in keys}
    html = judge_table({"minimal": {"judges": judges}, "methods": {"ours": {}, "peer": {}}})
    tables = html.split("</table>")[:-1]
    assert len(tables) == 3 and JUDGES_PER_TABLE == 5
    heads = [re.findall(r"<th colspan='3'>([^<]*)</th>", t) for t in tables]
    assert [len(h) for h in heads] == [5, 5, 4]
    assert [x for h in heads for x in h] == [METRICS[k].label.replace("&", "&amp;") for k in keys]
    assert all(t.count("<th class='m'>ours</th>") == 1 and t.count("<th class='m'>peer</th>") == 1 for t in tables)


def test_a_tiny_judge_value_is_not_shown_as_zero():
    from imperceptible.runs.minimal_report import _cell

    assert _cell(1.416e-08, 1000.0) == "1.4e-05"
    assert _cell(0.0, 1000.0) == "0.000"
    assert _cell(0.0123) == "0.012" and _cell(None) == "<span class='na'>n/a</span>"


def test_every_method_of_a_figure_has_its_own_line():
    """The held-out run's 22 methods (15 attacks, 7 polished twins) each get their own colour and dash pair in the
    anytime, robust-accuracy and distance figures (before, the 11th method took the 1st one's colour: ours and its
    no-lattice ablation were the same solid blue line); ours and its variants solid, the others dashed."""
    from imperceptible.runs.plots import method_style

    attacks = ["human-perc-ot", "human-perc-ot[cvvdp]", "ddn", "fmn", "cw", "perc-al", "alma[ssim]", "alma[lpips]", "sdf",
               "bp", "human-perc-ot[lam=0]", "human-perc-ot[geometry=0]", "human-perc-ot[no-lattice]",
               "human-perc-ot[first-success]", "pgd-l2"]
    names = attacks + [f"{m}+polish" for m in ("ddn", "fmn", "cw", "perc-al", "alma[ssim]", "alma[lpips]", "sdf")]
    styles = [method_style(j, m) for j, m in enumerate(names)]
    assert len({(s["color"], s["linestyle"]) for s in styles}) == len(names) == 22
    assert len({s["color"] for s in styles[:20]}) == 20  # the first 20 told apart by colour alone
    assert [s["linestyle"] in ("-", "-.") for s in styles] == [m.startswith("human-perc-ot") for m in names]
