"""The run directory, summary, report, resume, and the defenses."""

import json
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser

import pytest
import torch

from imperceptible.attacks import HumanPercOT, PGDL2
from imperceptible.defenses import bit_depth_reduction, jpeg_compression
from imperceptible.experiments.bench_attacks import bench_attacks
from imperceptible.runs.store import ResultStore
from imperceptible.runs.summary import DISTANCE_KEYS
from imperceptible.validation import ParameterError

EXPECTED_KEYS = {"n", "n_clean_correct", "success_rate", "success_rate_float", "confidence_reached_rate",
                 "time_s", "time_per_image_s", "mean_steps", "forwards_per_image", "time_ratio_to_pgd_l2",
                 *DISTANCE_KEYS, "defense_jpeg_q75", "defense_bits_4"}
TIME_KEYS = {"time_s", "time_per_image_s", "time_ratio_to_pgd_l2", "forwards_per_image"}  # cost: depends on batching


def _attacks():
    return [HumanPercOT(), HumanPercOT(confidence=1), PGDL2(eps=3.0, alpha=0.25, steps=40)]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "run"
    s = bench_attacks(dataset="mnist", model="mnist-cnn", out=out, limit=6, batch_size=4, progress=False,
                      attacks=_attacks(), n_grids=1)
    return out, s


def test_summary_has_every_field_for_every_method(bench_run):
    out, s = bench_run
    assert set(s["methods"]) == {"human-perc-ot", "human-perc-ot@a=1", "pgd-l2"}
    for m, row in s["methods"].items():
        assert EXPECTED_KEYS <= set(row), EXPECTED_KEYS - set(row)
        assert row["n"] == 6
    assert "lpips_x1000" in s["unavailable"] and s["methods"]["pgd-l2"]["lpips_x1000"] is None
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["methods"].keys() == s["methods"].keys()
    cfg = json.loads((out / "config.json").read_text())
    assert {"command", "versions", "machine", "started", "dataset", "model", "attacks"} <= set(cfg)


def test_summary_equals_numbers_recomputed_from_the_store(bench_run):
    out, s = bench_run
    con = sqlite3.connect(out / "results.sqlite")
    for m, row in s["methods"].items():
        recs = con.execute("SELECT success, clean_correct, steps, time_s, metrics FROM results WHERE method = ?",
                           (m,)).fetchall()
        correct = [r for r in recs if r[1]]
        fooled = [r for r in correct if r[0]]
        assert row["success_rate"] == pytest.approx(len(fooled) / len(correct))
        assert row["mean_steps"] == pytest.approx(sum(r[2] for r in correct) / len(correct))
        assert row["time_s"] == pytest.approx(sum(r[3] for r in recs))
        assert fooled, m
        for k in ("l2", "ssim_distance", "saliency_l1"):
            vals = [json.loads(r[4])[k] for r in fooled]
            assert row[k] == pytest.approx(sum(vals) / len(vals))
    assert s["methods"]["pgd-l2"]["time_ratio_to_pgd_l2"] == pytest.approx(1.0)
    recs = con.execute("SELECT clean_correct, metrics FROM results WHERE method = 'pgd-l2'").fetchall()
    base = [json.loads(r[1])["clean_defense_bits_4"] for r in recs if r[0]]
    assert s["clean_defense"]["bits_4"] == pytest.approx(sum(base) / len(base))


def test_images_are_lossless_and_match_the_store(bench_run):
    out, _ = bench_run
    assert len(list((out / "images" / "original").glob("*.png"))) == 6
    for m in ("human-perc-ot", "pgd-l2"):
        assert len(list((out / "images" / m).glob("*.png"))) == 6
    from imperceptible.runs.rundir import RunDir
    from imperceptible.costs import SSIMCost

    run = RunDir(out)
    row = [r for r in run.store.rows("human-perc-ot") if r["success"]][0]
    x, a = run.load_image("original", row["id"]), run.load_image("human-perc-ot", row["id"])
    d = SSIMCost(kernel_size=11)(a[None], x[None]).item()
    assert d == pytest.approx(row["metrics"]["ssim_distance"], rel=1e-4, abs=1e-7)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1


def test_report_is_self_contained_html(bench_run):
    out, _ = bench_run
    text = (out / "report.html").read_text()
    p = _Collect()
    p.feed(text)
    assert p.tables == 4
    assert len(p.imgs) >= 5 and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    assert text.rstrip().endswith("</html>")
    for f in ("ssim_distance.png", "defenses.png"):
        assert (out / "plots" / f).stat().st_size > 10_000


def test_report_renders_in_headless_chromium(bench_run, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    out, _ = bench_run
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
                    (out / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000


def test_interrupted_run_resumes_to_the_same_summary(bench_run, tmp_path):
    out, s = bench_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    with ResultStore(copy / "results.sqlite") as st:  # a crash after the first batch of two methods
        st._con.execute("DELETE FROM results WHERE method = 'pgd-l2'")
        st._con.execute("DELETE FROM results WHERE method = 'human-perc-ot@a=1' AND id IN "
                        "(SELECT id FROM results WHERE method = 'human-perc-ot@a=1' ORDER BY id LIMIT 2)")
        st._con.commit()
    s2 = bench_attacks(dataset="mnist", model="mnist-cnn", out=copy, limit=6, batch_size=4, progress=False,
                       attacks=_attacks(), n_grids=1)
    for m in s["methods"]:
        for k, v in s["methods"][m].items():
            if k not in TIME_KEYS:
                assert s2["methods"][m][k] == pytest.approx(v), (m, k)
    cfg = json.loads((copy / "config.json").read_text())
    assert len(cfg["resumed"]) == 1


def test_resume_redoes_nothing_finished(bench_run, tmp_path, monkeypatch):
    out, _ = bench_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    calls = []
    import imperceptible.attacks.base as base

    orig = base.Attack.__call__
    monkeypatch.setattr(base.Attack, "__call__", lambda self, *a, **k: calls.append(1) or orig(self, *a, **k))
    bench_attacks(dataset="mnist", model="mnist-cnn", out=copy, limit=6, batch_size=4, progress=False,
                  attacks=_attacks(), n_grids=1)
    assert calls == []


def test_jpeg_defense():
    x = torch.rand(2, 3, 32, 32)
    y = jpeg_compression(x, 75)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert (y - x).abs().mean() > 0.01  # noise does not survive JPEG
    assert (jpeg_compression(x, 95) - x).abs().mean() < (y - x).abs().mean()
    flat = torch.full((1, 1, 16, 16), 128 / 255)
    assert torch.allclose(jpeg_compression(flat, 50), flat, atol=1 / 255)
    with pytest.raises(ParameterError):
        jpeg_compression(x, 0)


@pytest.mark.parametrize("bits", [1, 4, 6])
def test_bit_depth_defense(bits):
    x = torch.rand(1, 3, 32, 32)
    y = bit_depth_reduction(x, bits)
    levels = torch.unique(torch.round(y * (2**bits - 1)))
    assert len(torch.unique(y)) <= 2**bits and torch.allclose(levels, levels.round())
    assert (y - x).abs().max() <= 0.5 / (2**bits - 1) + 1e-6
    assert 0 <= y.min() and y.max() <= 1


def test_defense_baseline_is_computed_once_per_image(mnist_cnn, mnist_correct):
    from imperceptible.attacks.base import CountingModel
    from imperceptible.evaluate import Evaluator

    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    ev = Evaluator(learned=False, saliency=None, ssim_kernel=7)
    res = PGDL2(eps=3.0, alpha=0.5, steps=10)(mnist_cnn, x, y)
    counted = CountingModel(mnist_cnn)
    first = ev(counted, x, y, res, ids=list("abcd"))
    n_first = counted.forwards
    second = ev(counted, x, y, res, ids=list("abcd"))
    assert counted.forwards - n_first == n_first // 2  # attacked images only; the clean baseline is reused
    for k in first:
        assert torch.equal(first[k], second[k]), k
