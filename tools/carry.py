"""Carry an unfinished run directory from one sitting to the next on a machine that is wiped between sittings.

The protocol runs (benchmarks/protocols/) take more hours on 2 CPU cores than one sitting has, and the machine they
run on keeps nothing between sittings but the git repository. ``pack`` writes what a resume needs into a folder of the
repository (``carry/NAME/``), compactly; ``unpack`` rebuilds the run directory from it, and the run then resumes as
after any interruption (its fingerprint and per-sample digests are checked by the package itself).

Each pack also appends to ``manifest.json``'s ``sittings`` when, on which processor and with how many rows per method
the run was packed, so that the rows each sitting added can be told from the machine that computed them (a model's
float32 kernels round differently on another CPU, which moves a minimal attack's path).

What is kept: ``results.sqlite`` (a consistent copy through SQLite's backup API, xz-compressed), ``config.json`` and
``fingerprint.json`` as they are, and every method's 8-bit images as their difference from the original image (mod
256; most of it zeros), one xz stream per method in sorted id order, with the sha256 of every image's pixels in
``manifest.json``. The originals are not kept: ``unpack`` takes them from the dataset (the run's own loader and
name) and refuses if one differs from the digest ``pack`` recorded; every rebuilt image is checked against its digest.
Plots, summaries and reports are not kept (a finished run writes them again from its rows).

A fairness study directory (``imperceptible fairness --worlds-per-call N``) is packed as its JSON records alone: a
finished world needs no model or dataset file, and an unfinished one is computed again from its seeds.

Nothing here reads a result: the rows are copied, never opened as values (the protocol runs are blind until they end).

    python tools/carry.py pack runs/protocol/test-effnet-200 carry/test-effnet-200
    python tools/carry.py unpack carry/test-effnet-200 runs/protocol/test-effnet-200
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import lzma
import os
import platform
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

FORMAT = 1
KEPT_JSON = ("config.json", "fingerprint.json")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.uint8)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + repr(a.shape).encode()).hexdigest()


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, preset=9)


def _cpu() -> str:
    """The processor's model name (/proc/cpuinfo; else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _row_counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT method, COUNT(*) FROM results GROUP BY method ORDER BY method"))
    finally:
        con.close()


def _sitting(run: Path, old: dict, db: Path | None = None) -> list[dict]:
    """The packs so far and this one: when, on which processor, and how many rows (or records) each method (or stage)
    had then, so that the rows a sitting added can be told from the machine that computed them. Counts only: of
    ``db``, the snapshot that is packed (so the counts are the packed rows, not the live run's a moment later)."""
    entry: dict = {"packed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cpu": _cpu(),
                   "cpu_threads": os.cpu_count()}
    if db is not None:
        entry["rows"] = _row_counts(db)
    else:
        entry["records"] = {d.name: len(list(d.rglob("*.json"))) for d in sorted(run.iterdir()) if d.is_dir()}
    history = list(old.get("sittings", []))
    if not history or {k: v for k, v in history[-1].items() if k != "packed"} != \
            {k: v for k, v in entry.items() if k != "packed"}:
        history.append(entry)  # a pack of an unchanged run on the same machine adds nothing
    return history


def _is_study(run: Path) -> bool:
    try:
        return json.loads((run / "config.json").read_text()).get("job") == "fairness study"
    except (OSError, ValueError):
        return (run / "pretrain").is_dir()


def _swap(new: Path, dest: Path) -> None:
    gone = dest.with_name(dest.name + ".old")
    shutil.rmtree(gone, ignore_errors=True)
    if dest.exists():
        dest.rename(gone)
    new.rename(dest)
    shutil.rmtree(gone, ignore_errors=True)


def pack_study(run: Path, dest: Path) -> dict:
    """A fairness study directory run with ``--worlds-per-call``: its JSON records alone (a finished world needs no
    model or dataset file; an unfinished one is computed again, to the same records), as one xz-compressed tar."""
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*.json") if p.is_file())
    new = dest.with_name(dest.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    with tarfile.open(new / "records.tar.xz", "w:xz", preset=9) as tar:
        for f in files:
            info = tar.gettarinfo(run / f, arcname=f)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""  # the same bytes for the same files
            with open(run / f, "rb") as fh:
                tar.addfile(info, fh)
    old = json.loads((dest / "manifest.json").read_text()) if (dest / "manifest.json").is_file() else {}
    manifest = {"format": FORMAT, "kind": "study", "files": files, "sittings": _sitting(run, old)}
    (new / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    _swap(new, dest)
    return manifest


def pack(run: Path, dest: Path) -> dict:
    """Pack ``run`` into ``dest``, built beside it and swapped in whole (a pack cut off leaves the old one intact); a
    method whose images are unchanged since the last pack keeps its blob without compressing it again."""
    if _is_study(run):
        return pack_study(run, dest)
    if not (run / "results.sqlite").is_file():
        sys.exit(f"carry: {run} holds no results.sqlite (expected a run directory)")
    old = json.loads((dest / "manifest.json").read_text()) if (dest / "manifest.json").is_file() else {"methods": {}}
    new = dest.with_name(dest.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    (new / "images").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "results.sqlite"
        src = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        src.backup(dst)  # a consistent snapshot, the WAL included, while the run may still write
        src.close()
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("VACUUM")
        dst.close()
        sittings = _sitting(run, old, copy)
        # rows first, images after: the run saves a batch's images before it commits its rows, so every row packed
        # has its image; an image without a row is packed too, and the resume runs that sample again
        (new / "results.sqlite.xz").write_bytes(_xz(copy.read_bytes()))
    for name in KEPT_JSON:
        shutil.copyfile(run / name, new / name)
    originals = {p.stem: _pixels(p) for p in sorted((run / "images" / "original").glob("*.png"))}
    manifest: dict = {"format": FORMAT, "originals": {i: _digest(a) for i, a in originals.items()}, "methods": {},
                      "sittings": sittings}
    for folder in sorted(p for p in (run / "images").iterdir() if p.is_dir() and p.name != "original"):
        ids = sorted(p.stem for p in folder.glob("*.png") if p.stem in originals)
        if not ids:
            continue
        pixels = {i: _pixels(folder / f"{i}.png") for i in ids}
        for i, a in pixels.items():
            if a.shape != originals[i].shape:
                sys.exit(f"carry: {folder.name}/{i}.png has shape {a.shape}, its original {originals[i].shape}")
        entry = {"file": f"{folder.name}.u8.xz", "ids": ids, "sha256": {i: _digest(a) for i, a in pixels.items()}}
        before = old["methods"].get(folder.name)
        if before == entry and (dest / "images" / entry["file"]).is_file():
            shutil.copyfile(dest / "images" / entry["file"], new / "images" / entry["file"])
        else:  # uint8 arithmetic: the difference mod 256
            blob = b"".join((pixels[i] - originals[i]).tobytes() for i in ids)
            (new / "images" / entry["file"]).write_bytes(_xz(blob))
        manifest["methods"][folder.name] = entry
    (new / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    _swap(new, dest)
    return manifest


def _originals(fingerprint: dict, ids: list[str]) -> dict[str, np.ndarray]:
    """The run's original 8-bit images by file stem (``safe_name`` of the id), from the dataset it attacked (a
    protocol run's config names the default dataset; its fingerprint names the one attacked)."""
    import torch

    from imperceptible.data import load
    from imperceptible.runs.rundir import safe_name

    ds = load(fingerprint["dataset"]["name"], ids=ids)
    shape = list(fingerprint["dataset"]["image_shape"])
    if list(ds.images.shape[1:]) != shape:
        ds = load(fingerprint["dataset"]["name"], ids=ids, size=shape[-1])
    arr = (ds.images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return {safe_name(sid): (a[..., 0] if a.shape[-1] == 1 else a) for sid, a in zip(ds.ids, arr)}


def _sample_ids(db: Path) -> list[str]:
    """The ids of the run's samples (the store's ``samples`` table: ids and pixel digests, no result)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT id FROM samples ORDER BY id")]
    finally:
        con.close()


def unpack(src: Path, run: Path) -> None:
    """Rebuild the run directory ``run`` from ``src``, built beside it and renamed into place when every image has
    been checked (an unpack cut off leaves no half-built run directory)."""
    manifest = json.loads((src / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        sys.exit(f"carry: {src} has format {manifest.get('format')}, expected {FORMAT}")
    if run.exists() and any(run.iterdir()):
        sys.exit(f"carry: {run} is not empty; unpack rebuilds a run directory from nothing")
    work = run.with_name(run.name + ".unpacking")
    shutil.rmtree(work, ignore_errors=True)
    if manifest.get("kind") == "study":
        work.mkdir(parents=True)
        with tarfile.open(src / "records.tar.xz", "r:xz") as tar:
            names = sorted(m.name for m in tar.getmembers() if m.isfile())
            if names != manifest["files"]:
                sys.exit(f"carry: {src / 'records.tar.xz'} does not hold the files its manifest lists")
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse links and paths outside the folder
                tar.extractall(work, filter="data")
            else:
                tar.extractall(work)  # noqa: S202 - the names were checked against the manifest above
        if run.exists():
            run.rmdir()
        work.rename(run)
        return
    (work / "images" / "original").mkdir(parents=True)
    (work / "plots").mkdir()
    (work / "results.sqlite").write_bytes(lzma.decompress((src / "results.sqlite.xz").read_bytes()))
    for name in KEPT_JSON:
        shutil.copyfile(src / name, work / name)
    fingerprint = json.loads((src / "fingerprint.json").read_text())
    originals = _originals(fingerprint, _sample_ids(work / "results.sqlite"))
    for stem, d in manifest["originals"].items():
        if stem not in originals or _digest(originals[stem]) != d:
            sys.exit(f"carry: the dataset's image {stem} is not the one the run attacked (digest differs or missing)")
        Image.fromarray(originals[stem]).save(work / "images" / "original" / f"{stem}.png")
    for method, m in manifest["methods"].items():
        data = np.frombuffer(lzma.decompress((src / "images" / m["file"]).read_bytes()), dtype=np.uint8)
        folder = work / "images" / method
        folder.mkdir(parents=True, exist_ok=True)
        at = 0
        for stem in m["ids"]:
            o = originals[stem]
            a = (o + data[at:at + o.size].reshape(o.shape)).astype(np.uint8)
            at += o.size
            if _digest(a) != m["sha256"][stem]:
                sys.exit(f"carry: {method}/{stem} does not rebuild to its recorded pixels")
            Image.fromarray(a).save(folder / f"{stem}.png")
        if at != data.size:
            sys.exit(f"carry: {m['file']} holds {data.size} bytes, its ids {at}")
    if run.exists():
        run.rmdir()
    work.rename(run)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="run directory -> carry folder")
    a.add_argument("run", type=Path)
    a.add_argument("dest", type=Path)
    b = sub.add_parser("unpack", help="carry folder -> run directory")
    b.add_argument("src", type=Path)
    b.add_argument("run", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        m = pack(args.run, args.dest)
        size = sum(f.stat().st_size for f in args.dest.rglob("*") if f.is_file())
        if m.get("kind") == "study":
            what = f"{len(m['files'])} records"
        else:
            n = sum(len(v["ids"]) for v in m["methods"].values())
            what = f"{len(m['methods'])} methods, {n} images, {len(m['originals'])} originals"
        print(f"carry: {what} -> {args.dest} ({size / 1e6:.1f} MB)")
    else:
        unpack(args.src, args.run)
        print(f"carry: rebuilt {args.run} from {args.src}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
