"""The run directory contract (README, "The run directory")::

    fingerprint.json  what determines the results (job, dataset, model and its weights' digest, every
                      parameter, precision, package version); a re-run must match it
    config.json       the command, arguments, fingerprint, seed, package versions, machine, start time
    results.sqlite    per-sample rows and per-sample digests (see :mod:`.store`)
    images/METHOD/ID.png  adversarial images (lossless), images/original/ID.png once
    plots/*.png       figures
    summary.json      every reported number (of this run's samples only)
    report.html       one self-contained page

:meth:`RunDir.open` is how every job starts: it checks the path, takes the directory's lock, and either
starts a fresh directory or checks that a resumed one was made by the same job with the same settings,
refusing with the list of differences otherwise (``overwrite=True`` starts again from nothing).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..fileio import atomic_write_json, atomic_write_text, json_default
from ..validation import (
    MSG_OUT_EMPTY,
    MSG_OUT_FILE,
    MSG_OUT_FINGERPRINT_EDITED,
    MSG_OUT_FOREIGN,
    MSG_OUT_IN_DATA,
    MSG_OUT_MISMATCH,
    MSG_OUT_NOT_A_RUN,
    MSG_OUT_NOT_OURS,
    MSG_OUT_OTHER_JOB,
    MSG_OUT_SAMPLES_CHANGED,
    MSG_OUT_UNREADABLE_FINGERPRINT,
    MSG_OUT_UNWRITABLE,
    RunDirError,
)
from . import lock as run_lock
from .fingerprint import canonical, differences
from .store import ResultStore, open_store

log = logging.getLogger(__name__)

PACKAGES = ("imperceptible", "torch", "torchvision", "numpy", "scipy", "piq", "lpips", "kornia", "statsmodels",
            "opencv-contrib-python-headless", "scikit-image", "adv-lib")


#: the top-level entries of every run directory (the contract above), besides the lock; a job adds its own
#: (``RunDir.open(owned=...)``: the fairness study's stage folders and tables)
CONTRACT = ("fingerprint.json", "config.json", "results.sqlite", "results.sqlite-wal", "results.sqlite-shm",
            "results.sqlite.damaged", "images", "plots", "summary.json", "report.html")
#: what files inside a run directory's own folders may be (images, plots, stage records, models, temporaries)
OWNED_SUFFIXES = (".png", ".json", ".pt", ".csv", ".html", ".jpg", ".tmp")
#: files that mark a folder as a run directory of this tool (the loaders never read one as data)
MARKERS = ("fingerprint.json", ".lock")


def is_run_dir(path: Path) -> bool:
    """True for a folder this tool made as a run directory (it holds the lock file or a fingerprint)."""
    return any((Path(path) / m).is_file() for m in MARKERS)


def foreign_entries(path: Path, owned: tuple[str, ...] = ()) -> list[str]:
    """What ``path`` holds that no job of this tool writes there: top-level entries outside the contract and
    ``owned``, and files of other kinds inside the contract's folders (relative paths, sorted)."""
    names = set(CONTRACT) | set(owned) | {".lock"}
    out = []
    for p in sorted(path.iterdir()):
        if p.name.startswith(".") and p.name.endswith(".tmp") or p.name.startswith(".write-test-"):
            continue
        if p.name not in names:
            out.append(p.name + ("/" if p.is_dir() else ""))
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_symlink() or (q.is_file() and not q.name.endswith(OWNED_SUFFIXES)):
                    out.append(q.relative_to(path).as_posix())
    return out


def check_outside(path: Path, roots) -> None:
    """Refuse an ``--out`` inside one of the dataset folders ``roots`` (or equal to one)."""
    out = Path(path).expanduser().resolve()
    for root in roots or ():
        r = Path(root).expanduser().resolve()
        if out == r or r in out.parents:
            raise RunDirError.of(MSG_OUT_IN_DATA, path=path, root=root)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": sys.version.split()[0],
    }


def safe_name(s: str) -> str:
    """A file name for an id or method: unchanged if already safe, else made safe plus a short digest of
    the original, so two different ids never share a file (``a/x.png`` and ``a_x.png``)."""
    clean = "".join(c if c.isalnum() or c in "-_.=@[]" else "_" for c in s)
    if clean == s and not s.startswith("."):
        return s
    return f"{clean.lstrip('.')}-{hashlib.blake2b(s.encode(), digest_size=4).hexdigest()}"


def check_out(path: Path, data_roots=()) -> None:
    """Refuse an ``--out`` that is empty, a file, not writable or inside the dataset; create the folder."""
    if str(path) in ("", "."):
        raise RunDirError(MSG_OUT_EMPTY)
    check_outside(path, data_roots)
    if path.exists() and not path.is_dir():
        raise RunDirError.of(MSG_OUT_FILE, path=path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunDirError.of(MSG_OUT_UNWRITABLE, path=path, error=e.strerror or e) from None


def _read_json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class RunDir:
    """A run directory. Build it with :meth:`open` to start or resume a job; ``RunDir(path)`` alone opens an
    existing directory for reading (reports, tests).

    Examples:
        >>> import tempfile
        >>> from imperceptible.runs.rundir import RunDir, RunDirError
        >>> out = tempfile.mkdtemp() + "/run"
        >>> run = RunDir.open(out, job="attack", fingerprint={"steps": 10})
        >>> try:
        ...     RunDir.open(out, job="attack", fingerprint={"steps": 20})
        ... except RunDirError as e:
        ...     print(str(e).splitlines()[1])
          steps: 10 -> 20
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fingerprint: dict | None = None
        self.owned: tuple[str, ...] = ()

    @classmethod
    def open(cls, path: str | Path, *, job: str, fingerprint: dict, overwrite: bool = False,
             main: bool = True, owned: tuple[str, ...] = (), data_roots=()) -> RunDir:
        """Start or resume ``job`` in ``path`` (see the module docstring). ``main``: this process is the
        job's rank 0 (it checks, locks and writes; the other ranks only read). ``owned``: the job's own
        top-level entries beside the contract's; ``data_roots``: dataset folders ``path`` must not be inside.

        ``overwrite`` deletes only what a run directory of this tool holds: a folder that is not one (no
        fingerprint or config), or that holds anything else, is refused, naming what it would have deleted."""
        path = Path(path)
        run = cls(path)
        fp = canonical({"job": job, **fingerprint})
        run.fingerprint = fp
        run.owned = tuple(owned)
        if not main:
            return run
        check_out(path, data_roots)
        run_lock.acquire(path)
        old = run._stored_fingerprint()
        if overwrite and (old is not None or run._has_content()):
            run._wipe()
            old = None
        if old is None:
            if run._has_content():
                example = next(p.name for p in sorted(path.iterdir()) if not p.name.startswith("."))
                if (path / "config.json").exists() or (path / "fingerprint.json").exists():
                    raise RunDirError.of(MSG_OUT_UNREADABLE_FINGERPRINT, path=path)
                raise RunDirError.of(MSG_OUT_NOT_A_RUN, path=path, example=example)
            atomic_write_json(path / "fingerprint.json", fp)
        elif old.get("job") != job:
            raise RunDirError.of(MSG_OUT_OTHER_JOB, path=path, job=job, other=old.get("job"))
        else:
            diffs = differences(old, fp)
            if diffs and run._config_fingerprint() == fp:  # fingerprint.json edited; config.json's copy agrees
                log.warning(MSG_OUT_FINGERPRINT_EDITED.format(path=path, diffs="; ".join(diffs)))
                atomic_write_json(path / "fingerprint.json", fp)
            elif diffs:
                raise RunDirError.of(MSG_OUT_MISMATCH, path=path, diffs="\n  ".join(diffs))
            if not (path / "fingerprint.json").is_file() or _read_json(path / "fingerprint.json") is None:
                atomic_write_json(path / "fingerprint.json", fp)  # repaired from config.json
        (path / "plots").mkdir(exist_ok=True)
        return run

    def _config_fingerprint(self) -> dict | None:
        cfg = _read_json(self.path / "config.json")
        return cfg.get("fingerprint") if isinstance(cfg, dict) else None

    def _stored_fingerprint(self) -> dict | None:
        fp = _read_json(self.path / "fingerprint.json")
        return fp if fp is not None else self._config_fingerprint()

    def _has_content(self) -> bool:
        return self.path.is_dir() and any(not p.name.startswith(".") for p in self.path.iterdir())

    def _wipe(self) -> None:
        """Delete this run directory's results, after checking that it is one and holds nothing else."""
        visible = [p.name for p in sorted(self.path.iterdir()) if not p.name.startswith(".")]
        if not any((self.path / n).exists() for n in ("fingerprint.json", "config.json")):
            raise RunDirError.of(MSG_OUT_NOT_OURS, path=self.path, example=", ".join(visible[:3]))
        foreign = foreign_entries(self.path, self.owned)
        if foreign:
            raise RunDirError.of(MSG_OUT_FOREIGN, path=self.path, n=len(foreign), ies="y" if len(foreign) == 1 else "ies",
                                 example=", ".join(foreign[:5]))
        for p in self.path.iterdir():
            if p.name == ".lock":
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    @cached_property
    def store(self) -> ResultStore:
        """The per-sample results store, opened (created) on first use: a run with no per-sample attack
        results (the fairness study) has no ``results.sqlite``. A damaged file is recovered."""
        return open_store(self.path / "results.sqlite")

    def register_samples(self, ids: list[str], digests: list[str]) -> None:
        """Record the samples' digests; refuse ids whose stored digest differs (the data changed)."""
        stored = self.store.sample_digests(ids)
        changed = [i for i, d in zip(ids, digests) if i in stored and stored[i] != d]
        if changed:
            raise RunDirError.of(MSG_OUT_SAMPLES_CHANGED, path=self.path, n=len(changed), example=changed[0])
        self.store.put_samples({i: d for i, d in zip(ids, digests) if i not in stored})

    def write_config(self, config: dict) -> None:
        """Write ``config.json`` atomically; on a resume keep the first start time and append the new one."""
        p = self.path / "config.json"
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        old = _read_json(p) or {}
        cfg = dict(config, fingerprint=self.fingerprint, command=" ".join(sys.argv), versions=versions(),
                   machine=machine(), started=old.get("started", now),
                   resumed=old.get("resumed", []) + ([now] if old else []))
        atomic_write_text(p, json.dumps(cfg, indent=2, default=json_default))

    def write_json(self, name: str, data: dict) -> Path:
        return atomic_write_json(self.path / name, data)

    def image_path(self, method: str, sample_id: str) -> Path:
        d = self.path / "images" / safe_name(method)
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{safe_name(sample_id)}.png"

    def has_image(self, method: str, sample_id: str) -> bool:
        return (self.path / "images" / safe_name(method) / f"{safe_name(sample_id)}.png").is_file()

    def save_images(self, method: str, ids: list[str], x: torch.Tensor) -> None:
        """Save ``[0, 1]`` images as 8-bit lossless PNG (written to a temporary name, then renamed)."""
        arr = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, a in zip(ids, arr):
            p = self.image_path(method, i)
            tmp = p.with_name(f".{p.name}.tmp.png")
            Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(tmp)
            tmp.replace(p)

    def load_image(self, method: str, sample_id: str) -> torch.Tensor:
        with Image.open(self.image_path(method, sample_id)) as im:
            a = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())


__all__ = ["CONTRACT", "RunDir", "RunDirError", "check_out", "check_outside", "foreign_entries", "is_run_dir", "machine",
           "safe_name", "versions"]
