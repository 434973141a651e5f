"""One rule for every folder the tool writes (issue 33): only into an empty folder or its own kind of output;
``--overwrite`` removes only its own files; no symbolic link is ever followed out of the folder (the ``.lock``
included); a refused command leaves nothing behind; every failure is one line and exit status 2 (a full disk,
small or huge inputs, damage); tables, studies and JSON files checked. The user's files are compared byte for
byte afterwards and each message word for word."""

from __future__ import annotations

import difflib
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imperceptible.cli.main import main

DATA = ["--dataset", "mnist-test20", "--model", "mnist-cnn"]
NO_SPACE = os.strerror(errno.ENOSPC)


def _attack(out: Path, *extra: str) -> int:
    return main(["attack", *DATA, "--attack", "pgd-l2", "--param", "steps=2", "--limit", "2", "--no-learned",
                 "--out", str(out), "--quiet", *extra])


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (links not followed) with a file's bytes, a link's target, a folder's None."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = os.readlink(p).encode() if p.is_symlink() else p.read_bytes() if p.is_file() else None
    return out


def _err(capsys) -> str:
    """The refusal: stderr's one line of ours (a library's own start-up warning may come before it), no traceback."""
    err = capsys.readouterr().err.strip()
    ours = [line for line in err.splitlines() if line.startswith("imperceptible: ")]
    assert "Traceback" not in err and len(ours) == 1 and err.endswith(ours[0]), err
    return ours[0].removeprefix("imperceptible: error: ")


def _user_folder(root: Path) -> Path:
    root.mkdir()
    (root / "thesis.tex").write_bytes(b"\\section{mine}\n")
    (root / "figures").mkdir()
    (root / "figures" / "fig.pdf").write_bytes(b"%PDF-1.4 mine")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished attack run (2 digits)."""
    out = tmp_path_factory.mktemp("attack") / "run"
    assert _attack(out) == 0
    return out


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> Path:
    """A run with a successful method (``pgd-l2``), a visibly perturbing one (``pgd-l2@a=2``) and one that fails
    (``pgd-l2@a=1``: a step too small to change any label)."""
    from imperceptible.attacks import PGDL2
    from imperceptible.experiments.bench_attacks import bench_attacks

    out = tmp_path_factory.mktemp("bench") / "run"
    bench_attacks(dataset="mnist-test20", model="mnist-cnn", out=out, limit=4, progress=False, learned=False, n_grids=0,
                  attacks=[PGDL2(eps=3.0, alpha=0.25, steps=12), PGDL2(eps=3.0, alpha=0.25, steps=12, confidence=2),
                           PGDL2(eps=0.01, alpha=0.01, steps=1, confidence=1)])
    return out


# ---------------------------------------------------------------------------------------------------------------
# the lock, links, refusals that leave nothing behind
# ---------------------------------------------------------------------------------------------------------------


def test_a_lock_that_is_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    from imperceptible.validation import MSG_LOCK_LINK, MSG_LOCK_NOT_FILE

    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").symlink_to(notes)
    before = _tree(tmp_path)
    assert _attack(out) == 2
    assert _err(capsys) == MSG_LOCK_LINK.format(path=out.resolve() / ".lock", target=notes)
    assert _tree(tmp_path) == before  # the notes hold no process id; nothing was added
    (out / ".lock").unlink()
    (out / ".lock").symlink_to(tmp_path / "absent")  # a dangling link is not created through either
    assert _attack(out) == 2 and not (tmp_path / "absent").exists()
    capsys.readouterr()
    (out / ".lock").unlink()
    (out / ".lock").mkdir()  # nor is a folder of that name taken for the lock
    assert _attack(out) == 2
    assert _err(capsys) == MSG_LOCK_NOT_FILE.format(path=out.resolve() / ".lock", got="a folder")


def test_a_refused_command_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    from imperceptible.validation import MSG_OUT_CWD, MSG_OUT_NOT_A_RUN, MSG_OUT_NOT_OURS

    new = tmp_path / "new" / "deeper"
    assert _attack(new, "--model", f"torchscript:{tmp_path / 'absent.pt'}") == 2  # a refused model
    capsys.readouterr()
    assert os.listdir(tmp_path) == []  # no --out folder, no parent of it, no lock
    mine = _user_folder(tmp_path / "mine")
    before = _tree(mine)
    assert _attack(mine) == 2
    assert _err(capsys) == MSG_OUT_NOT_A_RUN.format(path=mine, example="figures")
    assert _tree(mine) == before  # byte for byte, and no .lock left
    assert _attack(mine, "--overwrite") == 2
    assert _err(capsys) == MSG_OUT_NOT_OURS.format(path=mine, example="figures, thesis.tex")
    assert _tree(mine) == before
    monkeypatch.chdir(mine)
    assert _attack(Path(".")) == 2
    assert _err(capsys) == MSG_OUT_CWD.format(path=Path("."), kind="run directory")
    assert _tree(mine) == before


@pytest.mark.parametrize("folder", ["plots", "images"])
def test_overwrite_never_deletes_through_a_link(tmp_path, run, capsys, folder):
    import shutil

    from imperceptible.validation import MSG_OUT_LINK

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.png").write_bytes(b"not the tool's")
    shutil.rmtree(copy / folder)
    (copy / folder).symlink_to(elsewhere)
    before = _tree(tmp_path)
    for extra in (("--overwrite",), ()):  # neither deleting nor resuming writes through it
        assert _attack(copy, *extra) == 2
        assert _err(capsys) == MSG_OUT_LINK.format(path=copy, kind="run directory", entry=folder, target=elsewhere)
        assert _tree(tmp_path) == before


def test_damage_is_repaired_or_refused_in_one_line(tmp_path, run, capsys):
    import shutil

    from imperceptible.validation import MSG_OUT_WRONG_TYPE

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    originals = _tree(copy / "images" / "original")
    shutil.rmtree(copy / "images" / "original")
    assert _attack(copy) == 0  # every resume used to crash in the report: the originals are saved again
    assert _tree(copy / "images" / "original") == originals
    (copy / "summary.json").unlink()
    (copy / "summary.json").mkdir()
    (copy / "summary.json" / "mine.txt").write_bytes(b"mine")
    capsys.readouterr()
    before = _tree(copy)
    assert _attack(copy) == 2
    assert _err(capsys) == MSG_OUT_WRONG_TYPE.format(path=copy, kind="run directory", entry="summary.json",
                                                     expected="file", got="folder")
    assert _tree(copy) == before


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, NO_SPACE)


@pytest.mark.parametrize("writer", ["plot", "png", "json"])
def test_a_full_disk_is_one_line_naming_the_folder_and_the_run_resumes(tmp_path, capsys, monkeypatch, writer):
    import matplotlib.figure

    from imperceptible.validation import MSG_DISK_FULL

    out = tmp_path / "run"
    target = {"plot": out / "plots", "png": out / "images" / "original", "json": out}[writer]
    if writer == "plot":
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _no_space)
    elif writer == "png":
        monkeypatch.setattr(Image.Image, "save", _no_space)
    else:
        real = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda p, *a, **k: _no_space() if ".summary.json." in p.name
                            else real(p, *a, **k))
    assert _attack(out) == 2
    err = _err(capsys)
    name = err.split(" to write ")[1].split(",")[0]
    assert err == MSG_DISK_FULL.format(folder=target, name=name, error=NO_SPACE)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    monkeypatch.undo()
    assert _attack(out) == 0 and (out / "summary.json").is_file()  # what was kept resumes


def test_several_processes_reserve_the_folder_and_a_refusal_leaves_nothing(tmp_path):
    """The launcher takes the lock before it starts the ranks; a job refused before it wrote anything - there or
    after it opened a fresh run directory - leaves no lock and no folder when it exits."""
    script = ("import sys; from imperceptible.runs.rundir import RunDir, reserve\n"
              f"reserve({str(tmp_path / 'a' / 'run')!r}, processes=2)\n"
              f"RunDir.open({str(tmp_path / 'b' / 'run')!r}, job='attack', fingerprint={{'x': 1}})\n"
              "sys.exit(2)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert os.listdir(tmp_path) == []


def test_a_huge_image_size_is_refused_before_any_work(tmp_path, capsys):
    from imperceptible.config import MAX_IMAGE_SIZE
    from imperceptible.validation import MSG_PARAM

    assert _attack(tmp_path / "run", "--image-size", "100000") == 2
    assert _err(capsys) == MSG_PARAM.format(name="--image-size", expected=f"an integer from 8 to {MAX_IMAGE_SIZE}",
                                            got=100000)
    assert os.listdir(tmp_path) == []


def test_an_unknown_strategy_is_one_line(tmp_path, capsys):
    from lightning.fabric.strategies import STRATEGY_REGISTRY

    from imperceptible.validation import MSG_PARAM

    assert _attack(tmp_path / "run", "--strategy", "bogus") == 2
    names = ["auto", *STRATEGY_REGISTRY.available_strategies()]
    assert _err(capsys) == MSG_PARAM.format(name="strategy", expected=f"one of {names}", got="bogus")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# bench onestep: small limits, the dense solver's size
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_bench_onestep_with_one_or_two_digits_and_no_success(tmp_path):
    for limit, eps in (("1", "10"), ("2", "0.01")):
        out = tmp_path / f"os{limit}"
        assert main(["bench", "onestep", "--dataset", "mnist-test20", "--limit", limit, "--eps", eps, "--out", str(out),
                     "--quiet"]) == 0
        s = json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        figure = (out / "plots" / "onestep_digits.png").is_file()
        assert figure == bool(s["figure_ids"])
    assert s["figure_ids"] == [] and s["methods"]["pgd-onestep"]["l2"] is None  # nothing fooled at eps 0.01


def test_the_dense_solver_is_refused_on_large_images_before_any_work(tmp_path, capsys):
    from imperceptible.attacks import SSIMOneStep
    from imperceptible.attacks.onestep import DENSE_MAX_VALUES
    from imperceptible.validation import MSG_DENSE_TOO_BIG, ParameterError

    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / "a.png")
    (data / "labels.csv").write_text("file,label\na.png,3\n")  # a colour photo of 3x64x64 = 12288 values
    expected = MSG_DENSE_TOO_BIG.format(limit=DENSE_MAX_VALUES, gb=4 * 12288 ** 2 / 1e9, c=3, h=64, w=64, n=12288)
    assert main(["bench", "onestep", "--dataset", f"folder:{data}", "--solver", "dense", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    assert _err(capsys) == expected
    assert not (tmp_path / "o").exists()
    import torch

    x = torch.zeros(1, 3, 224, 224)
    with pytest.raises(ParameterError) as e:  # the Python API: before the 90.6 GB Hessian is allocated
        SSIMOneStep(solver="dense").direction(x, x)
    assert str(e.value) == MSG_DENSE_TOO_BIG.format(limit=DENSE_MAX_VALUES, gb=4 * 150528 ** 2 / 1e9, c=3, h=224, w=224,
                                                    n=150528)


# ---------------------------------------------------------------------------------------------------------------
# studies: make, analyze, simulate
# ---------------------------------------------------------------------------------------------------------------


def _make(run: Path, out: Path, *extra: str) -> int:
    return main(["study", "make", "--run", str(run), "--out", str(out), "--trials", "2", "--catch-trials", "2",
                 "--method", "pgd-l2", *extra])


def test_study_make_overwrite_deletes_only_a_study(tmp_path, bench_run, capsys, monkeypatch):
    from imperceptible.perception.make import make_study
    from imperceptible.validation import MSG_OUT_CWD, MSG_OUT_FOREIGN_KIND, MSG_OUT_NOT_KIND, MSG_STUDY_EXISTS, StudyError

    thesis = _user_folder(tmp_path / "thesis")
    before = _tree(tmp_path)
    for extra in (("--overwrite",), ()):
        assert _make(bench_run, thesis, *extra) == 2
        assert _err(capsys) == MSG_OUT_NOT_KIND.format(path=thesis, kind="study folder", example="figures, thesis.tex")
        assert _tree(tmp_path) == before
    run_before = _tree(bench_run.parent)
    for target in (bench_run, bench_run.parent):  # the run itself, or the folder holding it
        assert _make(bench_run, target, "--overwrite") == 2
        capsys.readouterr()
    assert _tree(bench_run.parent) == run_before
    monkeypatch.chdir(thesis)
    assert _make(bench_run, Path("."), "--overwrite") == 2
    assert _err(capsys) == MSG_OUT_CWD.format(path=Path("."), kind="study folder")
    assert _tree(tmp_path) == before
    monkeypatch.undo()

    study = tmp_path / "study"
    study.mkdir()  # an empty folder is fine
    assert _make(bench_run, study) == 0
    assert _make(bench_run, study) == 2
    capsys.readouterr()
    assert _make(bench_run, study, "--seed", "1", "--overwrite") == 0  # its own files replaced
    assert main(["study", "simulate", str(study), "--out", str(study / "simulated"), "--participants", "2",
                 "--judge", "l2"]) == 0
    assert main(["study", "analyze", str(study), *map(str, sorted((study / "simulated").glob("*.json")))]) == 0
    people = study / "answers"
    people.mkdir()
    (people / "anna.json").write_bytes(b'{"participant": "anna"}')  # a person's answers: never deleted
    capsys.readouterr()
    before = _tree(study)
    assert _make(bench_run, study, "--overwrite") == 2
    assert _err(capsys) == MSG_OUT_FOREIGN_KIND.format(path=study, kind="study folder", n=1, ies="y",
                                                       example="answers/")
    assert _tree(study) == before
    (people / "anna.json").unlink()
    people.rmdir()
    assert _make(bench_run, study, "--overwrite") == 0  # its analysis and simulated answers go with it
    assert sorted(os.listdir(study)) == [".lock", "index.html", "study.json"]
    with pytest.raises(StudyError) as e:  # the Python API: the same rule
        make_study(run=bench_run, out=study, methods=("pgd-l2",), trials=2)
    assert str(e.value) == MSG_STUDY_EXISTS.format(path=study)


def test_study_make_checks_its_methods_and_catches(tmp_path, bench_run, capsys):
    from imperceptible.perception.make import CATCH_MIN_RMS
    from imperceptible.validation import MSG_STUDY_CATCH_INVISIBLE, MSG_STUDY_CATCH_TESTED, MSG_STUDY_DUPLICATE_METHOD

    out = tmp_path / "s"
    assert _make(bench_run, out, "--method", "pgd-l2") == 2
    assert _err(capsys) == MSG_STUDY_DUPLICATE_METHOD.format(method="pgd-l2", times=2)
    assert _make(bench_run, out, "--catch", "pgd-l2") == 2
    assert _err(capsys) == MSG_STUDY_CATCH_TESTED.format(catch="pgd-l2")
    assert _make(bench_run, out, "--catch", "pgd-l2@a=1") == 2  # a method that fooled nothing is no catch
    err = _err(capsys)
    n = int(err.split("among the ")[1].split(" ")[0])
    assert err == MSG_STUDY_CATCH_INVISIBLE.format(catch="pgd-l2@a=1", rms=CATCH_MIN_RMS, levels=255 * CATCH_MIN_RMS,
                                                   n=n, why="it attacked none of them successfully")
    assert not out.exists()
    assert _make(bench_run, out, "--catch", "pgd-l2@a=2") == 0  # a successful, visible one
    study = json.loads((out / "study.json").read_text())
    assert {t["method"] for t in study["trials"] if t["kind"] == "catch"} == {"pgd-l2@a=2"}


def test_study_analyze_never_overwrites_a_users_files(tmp_path, bench_run, capsys):
    from imperceptible.validation import MSG_OUT_NOT_KIND

    study = tmp_path / "study"
    assert _make(bench_run, study) == 0
    assert main(["study", "simulate", str(study), "--out", str(tmp_path / "a"), "--participants", "2",
                 "--judge", "l2", "--inattentive", "0"]) == 0
    answers = [str(p) for p in sorted((tmp_path / "a").glob("*.json"))]
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("summary.json", "report.html", "detection.png"):
        (mine / name).write_bytes(f"my {name}".encode())
    capsys.readouterr()
    before = _tree(mine)
    assert main(["study", "analyze", str(study), *answers, "--out", str(mine)]) == 2
    assert _err(capsys) == MSG_OUT_NOT_KIND.format(path=mine, kind="study analysis folder",
                                                   example="detection.png, report.html, summary.json")
    assert _tree(mine) == before
    for _ in range(2):  # its own analysis folder is written again
        assert main(["study", "analyze", str(study), *answers, "--out", str(tmp_path / "analysis")]) == 0
    capsys.readouterr()
    s = json.loads((tmp_path / "analysis" / "summary.json").read_text(),
                   parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert s["format"] == "imperceptible-study-analysis/1"


def test_study_simulate_checks_its_judge_and_rates(tmp_path, bench_run, capsys):
    from imperceptible.validation import MSG_OUT_NOT_KIND, MSG_PARAM, MSG_UNKNOWN_SUGGEST

    study = tmp_path / "study"
    assert _make(bench_run, study) == 0
    out = tmp_path / "a"

    def simulate(*extra: str) -> int:
        return main(["study", "simulate", str(study), "--out", str(out), "--judge", "l2", *extra])

    for flag, value, expected in (("--threshold", "0", "a finite number > 0"), ("--slope", "-1", "a finite number > 0"),
                                  ("--lapse", "2", "a number in [0, 1]"), ("--inattentive", "-0.1", "a number in [0, 1]"),
                                  ("--false-alarm", "nan", "a number in [0, 1]")):
        assert simulate(flag, value) == 2
        assert _err(capsys) == MSG_PARAM.format(name=flag, expected=expected, got=float(value))
    assert main(["study", "simulate", str(study), "--out", str(out), "--judge", "l3"]) == 2  # a typo
    trials = json.loads((study / "study.json").read_text())["trials"]
    judges = sorted({k for t in trials if t["kind"] == "test" for k in t["judges"]})
    close = difflib.get_close_matches("l3", judges, n=3, cutoff=0.5)
    assert "l2" in close and _err(capsys) == MSG_UNKNOWN_SUGGEST.format(
        kind="--judge (a judge this study recorded)", name="l3", hint=f" (did you mean: {', '.join(close)}?)",
        choices=", ".join(judges))
    assert not out.exists()
    assert simulate("--participants", "3") == 0
    assert simulate("--participants", "2") == 0  # an earlier simulation's extra participant is not left to mix in
    assert sorted(p.name for p in out.glob("*.json")) == ["answers-simulated-01.json", "answers-simulated-02.json"]
    mine = _user_folder(tmp_path / "mine")
    before = _tree(mine)
    capsys.readouterr()
    assert main(["study", "simulate", str(study), "--out", str(mine), "--judge", "l2"]) == 2
    assert _err(capsys) == MSG_OUT_NOT_KIND.format(path=mine, kind="simulated answers folder",
                                                   example="figures, thesis.tex")
    assert _tree(mine) == before


# ---------------------------------------------------------------------------------------------------------------
# tables and JSON
# ---------------------------------------------------------------------------------------------------------------


def test_fairness_tables_trim_groups_and_refuse_repeated_columns_and_covariates(tmp_path, capsys):
    from imperceptible.data.grouped import read_covariates
    from imperceptible.validation import (
        MSG_DUPLICATE_COVARIATE,
        MSG_DUPLICATE_GROUP,
        MSG_TABLE_DUPLICATE_COLUMN,
        TableError,
    )

    rows = "g00,7,60,0.70\ng01,8,60,0.74\ng02,9,60,0.79\n"
    t = tmp_path / "t.csv"
    t.write_text("group,covariate,n,accuracy\n" + rows + "g00 ,7,60,0.70\n")
    assert main(["fairness", "test", "--table", str(t), "--min-count", "10"]) == 2
    assert _err(capsys) == MSG_DUPLICATE_GROUP.format(group="g00", rows=[1, 4],
                                                      how=" (identical: counted twice it would add a group)")
    t.write_text("group,covariate,n,accuracy_a,accuracy_a\n" + rows.replace("\n", ",0.5\n"))
    assert main(["fairness", "test", "--table", str(t), "--min-count", "10"]) == 2
    assert _err(capsys) == MSG_TABLE_DUPLICATE_COLUMN.format(path=t, column="accuracy_a", times=2, positions=[4, 5])
    c = tmp_path / "c.csv"
    c.write_text("group,covariate\ng00,7.1\ng01,8\ng00 ,7.5\n")
    with pytest.raises(TableError) as e:
        read_covariates(c)
    assert str(e.value) == MSG_DUPLICATE_COVARIATE.format(path=c, group="g00", rows=[1, 3], how=" (with different values)")
    c.write_text("group,covariate\n g00 ,7.1\ng01,8\n")
    assert read_covariates(c) == {"g00": 7.1, "g01": 8.0}


def test_json_files_are_strict_and_non_finite_values_come_back(tmp_path):
    import math

    from imperceptible.fileio import NON_FINITE_KEY, atomic_write_json, read_json

    data = {"rate": float("nan"), "methods": {"a/b": {"l2": [1.5, float("inf"), -math.inf]}}, "n": np.float32(2.5)}
    p = atomic_write_json(tmp_path / "summary.json", data)
    stored = json.loads(p.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert stored["rate"] is None and stored["methods"]["a/b"]["l2"] == [1.5, None, None]
    assert stored[NON_FINITE_KEY] == [{"path": ["rate"], "value": "NaN"},
                                      {"path": ["methods", "a/b", "l2", 1], "value": "Infinity"},
                                      {"path": ["methods", "a/b", "l2", 2], "value": "-Infinity"}]
    back = read_json(p)
    assert math.isnan(back.pop("rate")) and back == {"methods": {"a/b": {"l2": [1.5, math.inf, -math.inf]}}, "n": 2.5}
