"""tools/carry.py: an unfinished run packed into the repository and rebuilt resumes without recomputing anything."""

import json
import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from imperceptible.attacks import PGDL2
from imperceptible.experiments.bench_attacks import bench_attacks

from .conftest import load_script


def _carry():
    return load_script("tools/carry.py")


def _run(out):
    return bench_attacks(dataset="mnist", model="mnist-cnn", out=out, limit=5, batch_size=5, progress=False,
                         attacks=[PGDL2(eps=2.0, alpha=0.25, steps=10)], n_grids=0)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A finished small run and its carry folder (made once for the module)."""
    root = tmp_path_factory.mktemp("carry")
    s = _run(root / "run")
    return root / "run", s, _carry().pack(root / "run", root / "carry"), root / "carry"


def _rows(path):
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute("SELECT * FROM results").fetchall())
    finally:
        con.close()


def test_pack_unpack_rebuilds_pixels_and_rows_and_the_run_resumes_without_recomputing(packed, tmp_path):
    carry = _carry()
    run, s, manifest, dest = packed
    assert set(manifest["methods"]) == {"pgd-l2"} and len(manifest["methods"]["pgd-l2"]["ids"]) == 5
    assert not list(dest.rglob("*.png"))  # images travel as differences, not files

    rebuilt = tmp_path / "rebuilt"
    carry.unpack(dest, rebuilt)
    for p in sorted((run / "images").rglob("*.png")):
        q = rebuilt / p.relative_to(run)
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(q))), p
    assert _rows(rebuilt / "results.sqlite") == _rows(run / "results.sqlite")

    s2 = _run(rebuilt)  # a resume: every row is found (a recomputed row would carry a new time)
    assert _rows(rebuilt / "results.sqlite") == _rows(run / "results.sqlite")
    assert s2["methods"]["pgd-l2"]["success_rate"] == s["methods"]["pgd-l2"]["success_rate"]
    assert json.loads((rebuilt / "fingerprint.json").read_text()) == json.loads((run / "fingerprint.json").read_text())

    again = tmp_path / "again"
    packed_again = carry.pack(rebuilt, again)  # the rebuilt run packs to the same manifest and blobs
    assert {k: v for k, v in packed_again.items() if k != "sittings"} == \
        {k: v for k, v in manifest.items() if k != "sittings"}
    (sitting,) = manifest["sittings"]  # when, where and how many rows: the provenance of each sitting's rows
    assert sitting["rows"] == {"pgd-l2": 5} and sitting["cpu"] and sitting["cpu_threads"] >= 1
    for f in sorted(p.relative_to(dest) for p in dest.rglob("*.xz")):
        assert (again / f).read_bytes() == (dest / f).read_bytes(), f


def test_an_unfinished_run_with_rows_still_in_the_wal_resumes_only_what_it_lacks(packed, tmp_path):
    carry = _carry()
    run, _, _, _ = packed
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    con = sqlite3.connect(partial / "results.sqlite")
    con.execute("PRAGMA wal_autocheckpoint=0")  # what follows stays in the WAL file while this connection is open
    lost = [r[0] for r in con.execute("SELECT id FROM results ORDER BY id LIMIT 2")]
    con.executemany("DELETE FROM results WHERE id = ?", [(i,) for i in lost])  # a run stopped before these two
    con.commit()
    for i in lost:
        (partial / "images" / "pgd-l2" / f"{i}.png").unlink()
    try:
        assert (partial / "results.sqlite-wal").stat().st_size > 0
        manifest = carry.pack(partial, tmp_path / "carry")  # while another connection holds the WAL
    finally:
        con.close()
    assert manifest["sittings"][-1]["rows"] == {"pgd-l2": 3}  # the packed snapshot's rows, the WAL's deletion counted
    assert not list(tmp_path.glob("carry.*"))  # built beside and swapped in: nothing left over
    rebuilt = tmp_path / "rebuilt"
    carry.unpack(tmp_path / "carry", rebuilt)
    kept = [r for r in _rows(run / "results.sqlite") if r[0] not in lost]
    assert _rows(rebuilt / "results.sqlite") == kept
    _run(rebuilt)  # the resume runs the two lost samples and keeps the others' rows as they were
    after = _rows(rebuilt / "results.sqlite")
    assert [r for r in after if r[0] not in lost] == kept and sorted(r[0] for r in after if r[0] in lost) == sorted(lost)
    for p in sorted((run / "images").rglob("*.png")):  # attacks are deterministic per sample: the same pixels again
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(rebuilt / p.relative_to(run)))), p


def test_unpack_refuses_a_changed_image_and_a_folder_that_is_not_empty(packed, tmp_path):
    carry = _carry()
    _, _, manifest, src = packed
    dest = tmp_path / "carry"
    shutil.copytree(src, dest)
    manifest = json.loads(json.dumps(manifest))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(SystemExit, match="not empty"):
        carry.unpack(dest, tmp_path / "busy")
    sid = manifest["methods"]["pgd-l2"]["ids"][0]
    manifest["methods"]["pgd-l2"]["sha256"][sid] = "0" * 64
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="does not rebuild"):
        carry.unpack(dest, tmp_path / "rebuilt")
    assert not (tmp_path / "rebuilt").exists()  # no half-built run directory for a resume to trip on


def test_a_fairness_study_is_carried_as_its_json_records(tmp_path):
    carry = _carry()
    run = tmp_path / "study"
    files = {"fingerprint.json": "{}", "config.json": '{"job": "fairness study"}', "pretrain/r1.json": '{"a": 1}',
             "algorithm2/pgd-l2/r1.json": '{"rows": 3}', "algorithm3/erm/r1_k1.json": '{"seed": 1}'}
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    (run / "models").mkdir()
    (run / "models" / "theta0_r1.pt").write_bytes(b"weights")  # recomputable: not carried
    (run / "algorithm2" / "pgd-l2" / "r1.dataset.pt").write_bytes(b"rows")
    assert carry.main(["pack", str(run), str(tmp_path / "carry")]) == 0  # the command line, as sitting.sh calls it
    m = json.loads((tmp_path / "carry" / "manifest.json").read_text())
    assert m["kind"] == "study" and m["files"] == sorted(files)
    assert m["sittings"][-1]["records"] == {"algorithm2": 1, "algorithm3": 1, "models": 0, "pretrain": 1}
    blob = (tmp_path / "carry" / "records.tar.xz").read_bytes()
    again = carry.pack(run, tmp_path / "carry")
    assert (tmp_path / "carry" / "records.tar.xz").read_bytes() == blob  # the same records pack to the same bytes
    assert len(again["sittings"]) == 1  # nothing changed, on the same machine: no new entry
    carry.unpack(tmp_path / "carry", tmp_path / "back")
    back = sorted(p.relative_to(tmp_path / "back").as_posix() for p in (tmp_path / "back").rglob("*") if p.is_file())
    assert back == sorted(files) and all((tmp_path / "back" / f).read_text() == t for f, t in files.items())
