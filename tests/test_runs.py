"""The run directory (contract, fingerprint, lock, damage recovery), summary, report, resume, defenses."""

import json
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser

import pytest
import torch

from imperceptible.attacks import PGDL2, HumanPercOT
from imperceptible.defenses import bit_depth_reduction, jpeg_compression
from imperceptible.experiments.bench_attacks import bench_attacks
from imperceptible.runs.store import ResultStore
from imperceptible.runs.summary import DISTANCE_KEYS
from imperceptible.validation import ParameterError

EXPECTED_KEYS = {"n", "n_clean_correct", "success_rate", "success_rate_float", "confidence_reached_rate",
                 "time_s", "time_per_image_s", "mean_steps", "forwards_per_image", "time_ratio_to_pgd_l2",
                 *DISTANCE_KEYS, "defense_jpeg_q75", "defense_bits_4"}
# cost (depends on batching), and the medians and the visibility shares (dicts, compared on their own where it matters)
TIME_KEYS = {"time_s", "time_per_image_s", "time_ratio_to_pgd_l2", "forwards_per_image", "backwards_per_image",
             "passes_per_image", "passes_max", "median", "optimises", "visibility"}


def _attacks():
    return [HumanPercOT(budget=30), HumanPercOT(confidence=1, budget=30), PGDL2(eps=3.0, alpha=0.25, steps=40)]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "run"
    s = bench_attacks(dataset="mnist", model="mnist-cnn", out=out, limit=6, batch_size=4, progress=False,
                      attacks=_attacks(), n_grids=1)
    return out, s


def test_summary_has_every_field_for_every_method(bench_run):
    out, s = bench_run
    assert set(s["methods"]) == {"human-perc-ot", "human-perc-ot@a=1", "pgd-l2"}
    for row in s["methods"].values():
        assert EXPECTED_KEYS <= set(row), EXPECTED_KEYS - set(row)
        assert row["n"] == 6
    assert "lpips_x1000" in s["unavailable"] and s["methods"]["pgd-l2"]["lpips_x1000"] is None  # MNIST: 28 pixels
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["methods"].keys() == s["methods"].keys()
    cfg = json.loads((out / "config.json").read_text())
    assert {"command", "versions", "machine", "started", "dataset", "model", "attacks", "fingerprint"} <= set(cfg)
    fp = json.loads((out / "fingerprint.json").read_text())
    assert fp == cfg["fingerprint"] and fp["job"] == "bench attacks" and len(fp["model"]["digest"]) == 32


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
    from imperceptible.costs import SSIMCost
    from imperceptible.runs.rundir import RunDir

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
    assert p.tables >= 5
    assert len(p.imgs) >= 5 and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    assert text.rstrip().endswith("</html>")
    for f in ("ssim_distance.png", "defenses.png"):
        assert (out / "plots" / f).stat().st_size > 10_000


class _Never(PGDL2):
    """An attack that never moves: fools no image."""

    name = "never"

    def run(self, model, x, y):
        return x.clone(), torch.zeros(len(x), dtype=torch.long)


def test_a_method_that_fools_nothing_does_not_empty_the_image_grids(tmp_path):
    out = tmp_path / "run"
    bench_attacks(dataset="mnist", model="mnist-cnn", out=out, limit=4, batch_size=4, progress=False,
                  attacks=[PGDL2(eps=3.0, alpha=0.25, steps=40), _Never()], n_grids=1, learned=False)
    assert len(list((out / "plots").glob("grid_*.png"))) == 1
    assert "Not in the image grids (no image fooled as an 8-bit image): never." in (out / "report.html").read_text()


class _Cells(HTMLParser):
    """Every table as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None


def test_report_cells_equal_summary_json(bench_run):
    """Every number in the report's tables is the summary's, formatted: nothing is computed twice."""
    from imperceptible.runs.report import TABLES, fmt

    out, s = bench_run
    p = _Cells()
    p.feed((out / "report.html").read_text())
    checked = 0
    for (title, cols), table in zip(TABLES.items(), p.tables):
        head, *rows = table
        assert head[1:] == [c[1] for c in cols], title
        for row in rows:
            method = row[0]
            if method not in s["methods"]:
                continue
            for (key, _, how), cell in zip(cols, row[1:]):
                expected = fmt(s["methods"][method].get(key), how)
                if key in (s["methods"][method].get("optimises") or ()):
                    expected += "†"  # the method's own objective
                assert cell == (expected if "<" not in expected else "n/a"), (title, method, key)
                checked += 1
    assert checked > 60


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
    """Every output is one of the 2^b levels k / (2^b - 1), the nearest one to the input."""
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(bits))
    y = bit_depth_reduction(x, bits)
    scaled = y * (2**bits - 1)
    assert torch.allclose(scaled, scaled.round(), atol=1e-5)  # on a level (checked before any rounding)
    assert len(torch.unique(y)) <= 2**bits
    assert (y - x).abs().max() <= 0.5 / (2**bits - 1) + 1e-6  # the nearest level
    assert 0 <= y.min() and y.max() <= 1


def test_defense_baseline_is_computed_once_per_image(mnist_cnn, mnist_correct):
    from imperceptible.attacks.base import CountingModel
    from imperceptible.evaluate import Evaluator

    x, y = mnist_correct[0][:4], mnist_correct[1][:4]
    ev = Evaluator(learned=False, saliency=None, ssim_kernel=7)
    res = PGDL2(eps=3.0, alpha=0.5, steps=10)(mnist_cnn, x, y)
    with CountingModel(mnist_cnn, len(x)) as counted:
        first = ev(counted, x, y, res, ids=list("abcd"))
        n_first = counted.forwards.sum()
        second = ev(counted, x, y, res, ids=list("abcd"))
        assert counted.forwards.sum() - n_first == n_first // 2  # attacked images only; the clean baseline is reused
    for k in first:
        assert torch.equal(first[k], second[k]), k


def test_opencv_without_contrib_leaves_the_saliency_columns_out_saying_why(mnist_cnn, mnist_correct, monkeypatch):
    import cv2

    from imperceptible.costs.metrics import SALIENCY_KEYS
    from imperceptible.evaluate import Evaluator
    from imperceptible.validation import MSG_NO_SALIENCY

    x, y = mnist_correct[0][:2], mnist_correct[1][:2]
    res = PGDL2(eps=3.0, alpha=0.5, steps=10)(mnist_cnn, x, y)
    with_cv = Evaluator(learned=False, ssim_kernel=7, defenses=[])
    assert set(SALIENCY_KEYS) <= set(with_cv(mnist_cnn, x, y, res)) and not set(SALIENCY_KEYS) & set(with_cv.unavailable)
    monkeypatch.delattr(cv2, "saliency")
    ev = Evaluator(learned=False, ssim_kernel=7, defenses=[])
    assert {k: ev.unavailable.get(k) for k in SALIENCY_KEYS} == \
        {k: MSG_NO_SALIENCY.format(version=cv2.__version__) for k in SALIENCY_KEYS}
    out = ev(mnist_cnn, x, y, res)
    assert not set(SALIENCY_KEYS) & set(out) and "ssim_distance" in out
    assert ev.identity()["saliency"] is None


# --- the run directory contract: fingerprint, lock, damage ----------------------------------------------

def _attack(out, **kw):
    from imperceptible.experiments.attack import attack

    args = dict(dataset="mnist", model="mnist-cnn", attack="pgd-l2", params=("eps=3", "alpha=0.25", "steps=20"),
                limit=8, batch_size=4, learned=False)
    args.update(kw)
    return attack(out=out, progress=False, **args)


@pytest.fixture(scope="module")
def attack_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "run"
    return out, _attack(out)


def test_resume_with_other_settings_is_refused_saying_what_differs(attack_run, tmp_path):
    from imperceptible.runs.rundir import RunDirError

    out, _ = attack_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    with pytest.raises(RunDirError) as e:
        _attack(copy, params=("eps=3", "alpha=0.25", "steps=1"))
    msg = str(e.value)
    assert "methods.pgd-l2.steps: 20 -> 1" in msg and "--overwrite" in msg
    with pytest.raises(RunDirError, match="model.digest"):
        _attack(copy, model="mnist-cnn-b")
    with pytest.raises(RunDirError, match="config.dataset"):
        _attack(copy, dataset="mnist-test20")
    s = _attack(copy, params=("eps=3", "alpha=0.25", "steps=1"), overwrite=True)  # starts again
    assert s["methods"]["pgd-l2"]["mean_steps"] <= 1
    assert json.loads((copy / "fingerprint.json").read_text())["methods"]["pgd-l2"]["steps"] == 1


def test_a_smaller_limit_summarises_only_its_own_samples(attack_run, tmp_path):
    out, s8 = attack_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    s4 = _attack(copy, limit=4)
    assert s4["methods"]["pgd-l2"]["n"] == 4 and s8["methods"]["pgd-l2"]["n"] == 8
    with ResultStore(copy / "results.sqlite") as st:
        assert len(st.rows("pgd-l2")) == 8  # nothing lost: a larger limit resumes
    s8b = _attack(copy)
    assert {k: v for k, v in s8b["methods"]["pgd-l2"].items() if k not in TIME_KEYS} == \
        pytest.approx({k: v for k, v in s8["methods"]["pgd-l2"].items() if k not in TIME_KEYS})
    assert s8b["methods"]["pgd-l2"]["visibility"] == s8["methods"]["pgd-l2"]["visibility"]  # seeded bootstrap


def test_other_job_and_other_data_are_refused(attack_run, tmp_path):
    from imperceptible.experiments.fairness import fairness_study
    from imperceptible.runs.rundir import RunDir, RunDirError

    out, _ = attack_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    with pytest.raises(RunDirError, match="expected a run directory of 'fairness study', got one of 'attack'"):
        fairness_study(out=copy, dataset="geo-fashion", size=500, progress=False)
    run = RunDir(copy)
    with pytest.raises(RunDirError, match="sample"):
        run.register_samples([run.store.rows("pgd-l2")[0]["id"]], ["0" * 32])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holding other files"):
        _attack(tmp_path / "other")


def test_a_second_job_on_the_same_directory_is_refused(tmp_path):
    import subprocess
    import sys
    import time

    from imperceptible.runs import lock

    out = tmp_path / "locked"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from imperceptible.runs import lock; "
                               f"lock.acquire({str(out)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.RunLockedError) as e:
            lock.acquire(out)
        assert str(holder.pid) in str(e.value)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    lock.acquire(out)  # released by the OS when the holder died
    lock.release(out)


def test_damaged_store_deleted_images_and_truncated_config_are_recovered(attack_run, tmp_path, caplog):
    out, s = attack_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "images" / "pgd-l2")
    (copy / "config.json").write_text('{"job": "att')  # truncated
    s2 = _attack(copy)
    assert len(list((copy / "images" / "pgd-l2").glob("*.png"))) == 8  # re-run where the image was lost
    assert json.loads((copy / "config.json").read_text())["job"] == "attack"
    for k, v in s["methods"]["pgd-l2"].items():
        if k not in TIME_KEYS:
            assert s2["methods"]["pgd-l2"][k] == pytest.approx(v), k
    db = copy / "results.sqlite"
    con = sqlite3.connect(db)  # everything into the main file first (else the damage below may hit a near-empty
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # file whose rows still sit in the WAL: the test was flaky)
    con.close()
    for extra in ("-wal", "-shm"):
        (copy / f"results.sqlite{extra}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\x00" * (4096 - 100)  # clobber the schema page
    db.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        s3 = _attack(copy)
    assert (copy / "results.sqlite.damaged").is_file() and "damaged" in caplog.text
    for k, v in s["methods"]["pgd-l2"].items():
        if k not in TIME_KEYS:
            assert s3["methods"]["pgd-l2"][k] == pytest.approx(v), k


def test_sub_folder_ids_get_distinct_files(tmp_path):
    from imperceptible.runs.rundir import RunDir, safe_name

    run = RunDir(tmp_path)
    assert safe_name("x.png") == "x.png"
    assert run.image_path("m", "a/x.png") != run.image_path("m", "a_x.png")
    assert run.image_path("m", "../../etc/passwd").parent == tmp_path / "images" / "m"
    run.save_images("m", ["a/x.png"], torch.zeros(1, 1, 4, 4))
    assert run.has_image("m", "a/x.png") and not run.has_image("m", "a_x.png")


def test_report_escapes_user_given_names(tmp_path):
    from imperceptible.runs.report import Html, esc, write_report

    evil = "<script>alert(1)</script>"
    write_report(tmp_path / "r.html", title=evil, intro=Html(f"<code>{esc(evil)}</code>"),
                 summary={"methods": {evil: {"success_rate": 1.0}}, "unavailable": {evil: evil}}, plots=[], grids=[],
                 notes=[evil], tables={evil: [("success_rate", evil, "pct")]})
    text = (tmp_path / "r.html").read_text()
    assert "<script>alert" not in text and "&lt;script&gt;" in text
