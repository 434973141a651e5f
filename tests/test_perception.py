"""The perceptibility study: the page in a real browser (headless Chromium driven by Playwright), the answers
file, its checks, and the analysis against scripted and simulated participants; the statistics against their
formulas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from imperceptible.cli.main import main
from imperceptible.perception import stats as S
from imperceptible.perception.analyze import analyze_study
from imperceptible.perception.answers import AnswersError, checksum
from imperceptible.perception.make import StudyError, load_study, make_study
from imperceptible.perception.simulate import simulate_answers

from .conftest import skip_or_fail

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small attack run with three methods (and the literal preset, the catch images)."""
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.experiments.bench_attacks import bench_attacks

    out = tmp_path_factory.mktemp("bench") / "run"
    bench_attacks(dataset="mnist", model="mnist-cnn", out=out, limit=10, batch_size=5, progress=False, learned=False,
                  n_grids=0, attacks=[HumanPercOT(budget=30), HumanPercOT(preset="paper"),
                                      PGDL2(eps=3.0, alpha=0.25, steps=20),
                                      HumanPercOT(confidence=1, budget=30)])
    return out


def test_make_refuses_what_it_cannot_use(run_dir, tmp_path):
    with pytest.raises(StudyError, match="expected a run directory"):
        make_study(run=tmp_path, out=tmp_path / "s")
    with pytest.raises(StudyError, match="expected methods of this run"):
        make_study(run=run_dir, out=tmp_path / "s", methods=("fgsm",))
    from imperceptible.errors import MSG_OUT_IN_RUN, RunDirError

    before = sorted(p.name for p in Path(run_dir).iterdir())
    with pytest.raises(RunDirError) as inside:  # a study folder inside the run would be a folder the run does not own
        make_study(run=run_dir, out=Path(run_dir) / "study", trials=2)
    assert str(inside.value) == MSG_OUT_IN_RUN.format(path=Path(run_dir) / "study", root=run_dir)
    assert sorted(p.name for p in Path(run_dir).iterdir()) == before
    make_study(run=run_dir, out=tmp_path / "s", trials=2)
    with pytest.raises(StudyError, match="use --overwrite"):
        make_study(run=run_dir, out=tmp_path / "s", trials=2)
    # a catch method that is the run's only method leaves nothing to test
    from imperceptible.attacks import PGDL2
    from imperceptible.experiments.bench_attacks import bench_attacks
    from imperceptible.validation import MSG_ONLY_CATCH

    one = tmp_path / "one"
    bench_attacks(dataset="mnist", model="mnist-cnn", out=one, limit=2, progress=False, learned=False, n_grids=0,
                  attacks=[PGDL2(eps=3.0, alpha=0.25, steps=5)])
    with pytest.raises(StudyError) as e:
        make_study(run=one, out=tmp_path / "s1", catch="pgd-l2")
    assert str(e.value) == MSG_ONLY_CATCH.format(catch="pgd-l2", available="pgd-l2")


def test_study_page_holds_no_answer_key(run_dir, tmp_path):
    info = make_study(run=run_dir, out=tmp_path / "s", trials=5, seed=3)
    study = load_study(tmp_path / "s")
    assert info["catch"] == "noise" and info["per_method"] == 5  # the paper preset is neither tested nor a catch
    assert study["methods"] == ["human-perc-ot", "pgd-l2", "human-perc-ot@a=1"]
    page = (tmp_path / "s" / "index.html").read_text()
    payload = json.loads(page.split('id="study">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert payload["hash"] == study["hash"] and len(payload["trials"]) == len(study["trials"])
    for t in payload["trials"]:
        assert set(t) == {"id", "a", "b"}  # no method, no side, no kind
    shipped = json.dumps(payload["trials"]) + " ".join(payload["images"])
    for word in ("modified", "human-perc-ot", "pgd-l2", "catch", "original", "noise", "mnist-"):
        assert word not in shipped, word  # trial ids and image keys say nothing
    sides = [t["modified"] for t in study["trials"]]
    assert 0.2 < sides.count("a") / len(sides) < 0.8  # sides drawn at random
    counts = {m: sum(t["method"] == m and t["kind"] == "test" for t in study["trials"]) for m in study["methods"]}
    assert set(counts.values()) == {5}  # the same number per method


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright's Python package is not installed (pip install playwright)")
    chromium = shutil.which("chromium")
    if chromium is None:
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    return sync_playwright, chromium


@pytest.mark.parametrize("design", ["2afc", "single"])
def test_a_scripted_participant_in_headless_chromium(run_dir, tmp_path, design):
    """The page from a file:// URL: instructions, trials answered by keyboard and by touch-size buttons, the
    answers file downloaded; analyze recovers the scripted rates exactly."""
    sync_playwright, chromium = _browser()
    make_study(run=run_dir, out=tmp_path / "s", trials=2, catch_trials=2, design=design, seed=1)
    study = load_study(tmp_path / "s")
    truth = {t["id"]: t for t in study["trials"]}
    good, bad = study["methods"][0], study["methods"][1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True, viewport={"width": 390, "height": 844})  # a phone
        page.goto((tmp_path / "s" / "index.html").as_uri())
        assert "modified" in page.inner_text("#instructions")
        page.fill("#pid", "scripted-1")
        page.click("#start")
        for n in range(len(study["trials"])):
            assert page.inner_text("#count") == f"Trial {n + 1} of {len(study['trials'])}"
            tid = page.evaluate("S.trials[order[pos]].id")
            t = truth[tid]
            right = t["method"] != bad  # detect everything but the 'bad' method
            if design == "2afc":
                choice = t["modified"] if right else ("b" if t["modified"] == "a" else "a")
                key = {"a": "1", "b": "ArrowRight"}[choice]
            else:
                choice = ("yes" if t["modified"] else "no") if right else ("no" if t["modified"] else "yes")
                key = {"yes": "y", "no": "n"}[choice]
            if n % 2:
                page.keyboard.press(key)
            else:
                page.click(f"button[data-choice='{choice}']")
        with page.expect_download() as dl:
            page.click("#download")
        path = tmp_path / "answers.json"
        dl.value.save_as(path)
        copied = json.loads(page.input_value("#answers"))
        browser.close()
    data = json.loads(path.read_text())
    assert data == copied and data["participant"] == "scripted-1" and len(data["answers"]) == len(truth)
    assert data["checksum"] == checksum(study["hash"], data["answers"])
    s = analyze_study(tmp_path / "s", [path])
    assert s["included"] == 1
    assert s["methods"][good]["rate"] == 1.0 and s["methods"][bad]["rate"] == 0.0
    if design == "single":
        assert s["false_alarms"]["rate"] == 0.0 and s["methods"][good]["d_prime"] > 1.5
    assert (tmp_path / "s" / "analysis" / "report.html").is_file()


def test_tampered_or_mismatched_answers_are_refused(run_dir, tmp_path):
    make_study(run=run_dir, out=tmp_path / "s", trials=3)
    make_study(run=run_dir, out=tmp_path / "other", trials=3, seed=9)
    paths = simulate_answers(tmp_path / "s", tmp_path / "a", participants=1, judge="l2", inattentive=0.0)
    data = json.loads(paths[0].read_text())
    data["answers"][0]["choice"] = "b" if data["answers"][0]["choice"] == "a" else "a"
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(AnswersError, match="do not match their checksum"):
        analyze_study(tmp_path / "s", [tmp_path / "edited.json"])
    with pytest.raises(AnswersError, match="answers to another study"):
        analyze_study(tmp_path / "other", paths)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(AnswersError, match="unreadable content"):
        analyze_study(tmp_path / "s", [tmp_path / "junk.json"])
    assert main(["study", "analyze", str(tmp_path / "s"), str(tmp_path / "edited.json")]) == 2
    # the same answers given twice (or a copy under another name) are one participant, not two
    shutil.copy(paths[0], tmp_path / "copy.json")
    from imperceptible.validation import MSG_SAME_ANSWERS

    with pytest.raises(AnswersError) as e:
        analyze_study(tmp_path / "s", [paths[0], tmp_path / "copy.json"])
    assert str(e.value) == MSG_SAME_ANSWERS.format(first=paths[0], second=tmp_path / "copy.json")


def test_simulated_participants_analysis_and_exclusions(run_dir, tmp_path, capsys):
    assert main(["study", "make", "--run", str(run_dir), "--out", str(tmp_path / "s"), "--trials", "8",
                 "--catch-trials", "6"]) == 0
    assert main(["study", "simulate", str(tmp_path / "s"), "--out", str(tmp_path / "a"), "--participants", "30",
                 "--judge", "l2", "--inattentive", "0.2", "--seed", "4"]) == 0
    assert main(["study", "analyze", str(tmp_path / "s"), *map(str, sorted((tmp_path / "a").glob("*.json")))]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    s = json.loads((tmp_path / "s" / "analysis" / "summary.json").read_text())
    assert s["simulated"] and s["excluded"] >= 2 and s["included"] >= 20  # the careless ones fail the catch trials
    rates = {m: r["rate"] for m, r in s["methods"].items()}
    assert all(0.5 <= v <= 1 for v in rates.values())
    # detection follows the L2 distance, so the L2 judge agrees with the people (here, by construction)
    assert s["judges"]["l2"]["pooled"]["rho"] > 0.3
    assert {p["a"] for p in s["pairwise"]} and all("p_holm" in p for p in s["pairwise"])


def test_statistics_against_their_formulas():
    k, n = 37, 50
    w = S.wilson(k, n)
    p, z = k / n, stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (w["ci_low"], w["ci_high"]) == pytest.approx((centre - half, centre + half))
    assert S.above_chance(k, n) == pytest.approx(sum(stats.binom.pmf(i, n, 0.5) for i in range(k, n + 1)))
    h, f = (40 + 0.5) / 51, (10 + 0.5) / 51
    assert S.d_prime(40, 50, 10, 50) == pytest.approx(stats.norm.ppf(h) - stats.norm.ppf(f))
    rows = S.pairwise({"a": (40, 50), "b": (25, 50), "c": (27, 50)})
    ps = sorted(r["p"] for r in rows)
    holm = sorted(r["p_holm"] for r in rows)
    assert holm[0] == pytest.approx(min(1, 3 * ps[0]))  # Holm: the smallest p times the number of tests
    x = np.arange(10.0)
    r = S.spearman_ci(x, x ** 2, np.arange(10))
    assert r["rho"] == pytest.approx(1.0) and r["ci_low"] <= 1.0
