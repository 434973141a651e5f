"""The run directory contract (README, "The run directory")::

    fingerprint.json  what determines the results (job, dataset, model and its weights' digest, every
                      parameter, precision, package version); a re-run must match it
    config.json       the command, arguments, fingerprint, seed, package versions, the code (version, folder, git
                      commit; each one a resume brought), machine, start time
    results.sqlite    per-sample rows and per-sample digests (see :mod:`.store`)
    images/METHOD/ID.png  adversarial images (lossless), images/original/ID.png once
    plots/*.png       figures
    summary.json      every reported number (of this run's samples only)
    report.html       one self-contained page

:meth:`RunDir.open` is how every job starts: it checks the path, takes the directory's lock, and either
starts a fresh directory or checks that a resumed one was made by the same job with the same settings,
refusing with the list of differences otherwise (``overwrite=True`` starts again from nothing).

**One rule for every folder the tool writes** (run directories, and through :func:`output_folder` the study,
analysis and simulated-answers folders), each kind described by a :class:`Contract`: the tool writes only into
a folder that is empty (or new) or is its own kind of output; ``--overwrite`` removes only the entries its
contract names and refuses, naming them, when anything else is there; it never follows a symbolic link out of
the folder (a contract entry that is a link, or of the wrong type - ``summary.json`` a folder - is refused
before anything is written or deleted; the ``.lock`` too, see :mod:`.lock`); the checks of the path come before
the lock, and a refusal hands the lock back and removes what taking it created (the lock file, a new
``--out`` folder), so a refused command leaves nothing behind. A job refused after it opened a new run
directory (before it computed anything) leaves nothing either: at exit, a run directory this process started
that still holds only its bookkeeping (fingerprint, config, empty folders) is removed again.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import fnmatch
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import __version__
from ..errors import (
    MSG_OUT_CWD,
    MSG_OUT_EMPTY,
    MSG_OUT_EXISTS,
    MSG_OUT_FILE,
    MSG_OUT_FOREIGN,
    MSG_OUT_FOREIGN_KIND,
    MSG_OUT_IN_DATA,
    MSG_OUT_LINK,
    MSG_OUT_MISMATCH,
    MSG_OUT_NOT_A_RUN,
    MSG_OUT_NOT_KIND,
    MSG_OUT_NOT_OURS,
    MSG_OUT_OTHER_JOB,
    MSG_OUT_SAMPLES_CHANGED,
    MSG_OUT_UNREADABLE_FINGERPRINT,
    MSG_OUT_UNWRITABLE,
    MSG_OUT_WRONG_TYPE,
    ImperceptibleError,
    Message,
    RunDirError,
)
from ..fileio import atomic_write_json, atomic_write_text, read_json, save_image, to_json
from ..notices import MSG_OUT_FINGERPRINT_EDITED, MSG_RESUMED_OTHER_CODE, log_warning
from . import lock as run_lock
from .fingerprint import canonical, differences
from .store import ResultStore, open_store

log = logging.getLogger(__name__)

PACKAGES = ("imperceptible", "torch", "torchvision", "numpy", "scipy", "piq", "lpips", "kornia", "statsmodels",
            "opencv-contrib-python-headless", "scikit-image", "adv-lib")


#: the top-level entries of every run directory (the contract above), besides the lock; a job adds its own
#: (``RunDir.open(owned=...)``: the fairness study's stage folders and tables)
CONTRACT = ("fingerprint.json", "config.json", "results.sqlite", "results.sqlite-wal", "results.sqlite-shm",
            "results.sqlite.damaged", "images", "plots", "summary.json", "report.html",
            "per_image.json", "tuning.json")  # the last two: bench minimal's tables
#: what files inside a run directory's own folders may be (images, plots, stage records, models, temporaries)
OWNED_SUFFIXES = (".png", ".json", ".pt", ".csv", ".html", ".jpg", ".tmp")
#: what a run directory holds right after a fresh start, before the job computed anything
BOOKKEEPING = ("fingerprint.json", "config.json", "plots", "images")


def _is_temporary(name: str) -> bool:
    """A temporary file of an atomic write in progress (or left by a killed one): never the user's."""
    return name.startswith(".") and name.endswith(".tmp") or name.startswith(".write-test-")


@dataclass(frozen=True)
class Contract:
    """What one kind of output folder holds: its top-level ``files`` and ``folders`` (whose files end in
    :data:`OWNED_SUFFIXES`), the top-level file-name ``patterns`` it writes, the sub-folders of other kinds it may
    hold (``nested``: a study's ``analysis/``), and ``marker``, which says whether a folder is one of this kind.
    ``error``/``exists``: the error type of its refusals and the message refusing an existing folder of its kind
    when the command was not told to ``--overwrite`` it (``None``: a resumable kind)."""

    kind: str
    files: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    nested: tuple[Contract, ...] = ()
    marker: Callable[[Path], bool] | None = None
    error: type[ImperceptibleError] = RunDirError
    exists: Message | None = MSG_OUT_EXISTS

    def expects(self, name: str) -> str | None:
        """``"file"`` or ``"folder"`` for a top-level entry of the contract, else ``None``."""
        if name in self.files or any(fnmatch.fnmatchcase(name, p) for p in self.patterns):
            return "file"
        return "folder" if name in self.folders else None

    def is_ours(self, path: Path) -> bool:
        try:
            return bool(self.marker and self.marker(Path(path)))
        except (OSError, ValueError):  # an unreadable marker file: not recognisably ours
            return False


def _is_run(path: Path) -> bool:
    return any(os.path.lexists(path / n) for n in ("fingerprint.json", "config.json"))


def run_contract(owned: tuple[str, ...] = ()) -> Contract:
    """The run directory's contract, with a job's own top-level entries (names with a suffix are files)."""
    names = CONTRACT + tuple(owned)
    return Contract(kind="run directory", files=tuple(n for n in names if "." in n),
                    folders=tuple(n for n in names if "." not in n), marker=_is_run)


@dataclass
class Survey:
    """What a folder holds against a contract (relative paths): links and wrongly typed entries of the contract,
    entries it does not name, and its own top-level entries (what ``--overwrite`` removes)."""

    links: list[tuple[str, str]] = field(default_factory=list)
    wrong: list[tuple[str, str, str]] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    ours: list[str] = field(default_factory=list)

    def absorb(self, name: str, inner: Survey) -> None:
        self.links += [(f"{name}/{e}", t) for e, t in inner.links]
        self.wrong += [(f"{name}/{e}", x, g) for e, x, g in inner.wrong]
        self.foreign += [f"{name}/{e}" for e in inner.foreign]


def _kind_of(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "symbolic link"
    if entry.is_dir(follow_symlinks=False):
        return "folder"
    return "file" if entry.is_file(follow_symlinks=False) else "special file"


def _walk(top: Path, rel: str = "") -> Iterator[tuple[str, str, str | None]]:
    """Every entry under ``top`` (``relative path, kind, link target``), never following a link."""
    with os.scandir(top) as it:
        for e in sorted(it, key=lambda e: e.name):
            r, k = rel + e.name, _kind_of(e)
            if k == "folder":
                yield from _walk(Path(e.path), r + "/")
            else:
                yield r, k, os.readlink(e.path) if k == "symbolic link" else None


def content(path: Path) -> list[str]:
    """A folder's entries but its lock and the temporaries of writes in progress (sorted; none if it is absent)."""
    if not path.is_dir():
        return []
    return sorted(n for n in os.listdir(path) if n != run_lock.LOCK and not _is_temporary(n))


def survey(path: Path, contract: Contract) -> Survey:
    """``path`` against ``contract`` (see :class:`Survey`); links are listed, never followed."""
    s = Survey()
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        name, kind, expected = e.name, _kind_of(e), contract.expects(e.name)
        if name == run_lock.LOCK or _is_temporary(name):
            continue
        if kind == "symbolic link":
            s.links.append((name, os.readlink(e.path))) if expected else s.foreign.append(name)
        elif expected is None:
            sub = next((c for c in contract.nested if kind == "folder" and c.is_ours(Path(e.path))), None)
            inner = survey(Path(e.path), sub) if sub is not None else None
            if inner is not None and not (inner.links or inner.wrong or inner.foreign):
                s.ours.append(name)
            elif inner is not None:
                s.absorb(name, inner)
            else:
                s.foreign.append(name + ("/" if kind == "folder" else ""))
        elif kind != expected:
            s.wrong.append((name, expected, kind))
        else:
            s.ours.append(name)
            for rel, k, target in _walk(Path(e.path)) if kind == "folder" else ():
                if k == "symbolic link":
                    s.links.append((f"{name}/{rel}", target or ""))
                elif k != "file" or not rel.endswith(OWNED_SUFFIXES):
                    s.foreign.append(f"{name}/{rel}")
    return s


def check_survey(path: Path, contract: Contract, s: Survey) -> None:
    """Refuse a folder whose contract entries include a symbolic link or an entry of the wrong type."""
    if s.links:
        entry, target = s.links[0]
        raise contract.error.of(MSG_OUT_LINK, path=path, kind=contract.kind, entry=entry, target=target)
    if s.wrong:
        entry, expected, got = s.wrong[0]
        raise contract.error.of(MSG_OUT_WRONG_TYPE, path=path, kind=contract.kind, entry=entry, expected=expected,
                                got=got)


def remove_own(path: Path, names: list[str]) -> None:
    """Delete the top-level entries ``names`` of ``path`` (checked by :func:`survey`: no link among them)."""
    for n in names:
        p = path / n
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def check_outside(path: Path, roots, message: Message = MSG_OUT_IN_DATA) -> None:
    """Refuse an ``--out`` inside one of the folders ``roots`` (or equal to one): the dataset's by default, or another
    folder it must stay out of with its own ``message`` (formatted with ``path`` and ``root``)."""
    out = Path(path).expanduser().resolve()
    for root in roots or ():
        r = Path(root).expanduser().resolve()
        if out == r or r in out.parents:
            raise RunDirError.of(message, path=path, root=root)


def versions() -> dict[str, str | None]:
    """The versions of the packages a run's numbers depend on (this package's from its own ``__version__``: an
    editable install's metadata keeps the version it was installed at)."""
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = __version__ if p == "imperceptible" else metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def code_identity() -> dict:
    """Where the running package's code comes from: its version, its folder and, in a git checkout, the commit and
    whether the package's files differ from it (``None`` where git cannot tell)."""
    src = Path(__file__).resolve().parents[1]
    out: dict = {"version": __version__, "source": str(src), "revision": None, "modified": None}
    try:
        tracked = subprocess.run(["git", "-C", str(src), "ls-files", "__init__.py"], capture_output=True, text=True,
                                 timeout=20)  # the package's own files in a checkout (not an install inside one)
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
        if tracked.returncode == 0 and tracked.stdout.strip() and rev.returncode == 0:
            out["revision"] = rev.stdout.strip()
            st = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "."],
                                capture_output=True, text=True, timeout=20)
            out["modified"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _code_history(old: list | None, path: Path, now: str) -> list:
    """``config.json``'s ``code``: each code identity the run was started or resumed with, in order, with when; a
    resume with other code than the last is added and warned about."""
    history, code = list(old or []), code_identity()
    last = {k: v for k, v in history[-1].items() if k != "at"} if history else None
    if last != code:
        if last is not None:
            def show(c: dict) -> str:
                rev = (c.get("revision") or "?")[:10] + (" (modified)" if c.get("modified") else "")
                return f"{c.get('source')}, version {c.get('version')}, commit {rev}"
            log_warning(log, MSG_RESUMED_OTHER_CODE, path=path, before=show(last), now=show(code))
        history.append(dict(code, at=now))
    return history


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


def check_out(path: str | Path, data_roots=(), *, kind: str = "run directory") -> None:
    """Refuse an ``--out`` that is empty, the working directory itself, a file, inside the dataset or not writable.
    Creates nothing: the folder is made when its lock is taken (:func:`claimed`)."""
    if str(path) == "":
        raise RunDirError.of(MSG_OUT_EMPTY)
    path = Path(path)
    if path.expanduser().resolve() == Path.cwd().resolve():
        raise RunDirError.of(MSG_OUT_CWD, path=path, kind=kind)
    check_outside(path, data_roots)
    if path.exists() and not path.is_dir():
        raise RunDirError.of(MSG_OUT_FILE, path=path)
    near = path.expanduser().absolute()
    while not os.path.lexists(near):
        near = near.parent
    if near.is_dir() and not os.access(near, os.W_OK | os.X_OK):
        raise RunDirError.of(MSG_OUT_UNWRITABLE, path=path, error="permission denied")


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Hold ``path``'s lock (made with the folder if needed) while the body checks the folder; a refusal (or any
    error) in the body hands the lock back and removes what taking it created. Yields whether this call took it
    (``False``: this process held it already - a launcher's reservation, an earlier job - and keeps it)."""
    took = not run_lock.holds(path)
    run_lock.acquire(path)
    try:
        yield took
    except BaseException:
        if took:
            run_lock.release(path, discard=True)
        raise


@contextlib.contextmanager
def output_folder(out: str | Path, contract: Contract, *, overwrite: bool | None = None,
                  data_roots=()) -> Iterator[Path]:
    """The folder ``out`` of a command that writes its results in one go (``study make``, ``study analyze``,
    ``study simulate``), under the rule of the module docstring, locked while the body writes into it.

    ``overwrite``: ``None`` for a command without the option, which writes into its own kind of folder again
    (replacing its own files only); ``False``: an existing folder of its kind is refused with ``contract.exists``;
    ``True``: that folder's own entries are removed first, after checking that it holds nothing else."""
    check_out(out, data_roots, kind=contract.kind)
    path = Path(out)
    with claimed(path) as took:
        there = content(path)
        if there:
            if not contract.is_ours(path):
                raise contract.error.of(MSG_OUT_NOT_KIND, path=path, kind=contract.kind, example=", ".join(there[:3]))
            s = survey(path, contract)
            check_survey(path, contract, s)
            if overwrite is False and contract.exists:
                given = {"path": path, "kind": contract.kind}  # a kind's own message may leave out its kind
                raise contract.error.of(contract.exists, **{k: given[k] for k in contract.exists.fields})
            if overwrite:
                if s.foreign:
                    n = len(s.foreign)
                    raise contract.error.of(MSG_OUT_FOREIGN_KIND, path=path, kind=contract.kind, n=n,
                                            ies="y" if n == 1 else "ies", example=", ".join(s.foreign[:5]))
                remove_own(path, s.ours)
        yield path
    if took:
        run_lock.release(path)


def data_roots(dataset: str | None) -> list:
    """The folder of a dataset given by path (``folder:PATH``...), which no ``--out`` may be inside."""
    if not dataset:
        return []
    from ..data.registry import root

    r = root(dataset)
    return [r] if r else []


def reserve(out: str | Path | None, *, processes: int, dataset: str | None = None) -> None:
    """What a command calls before it loads anything: check ``out`` (creating nothing) and, for a job of several
    processes, take its lock now, so that the other ranks never start on a folder another job holds (they share
    this lock; a job of one process takes it in :meth:`RunDir.open`, after every input check). Secondary ranks do
    nothing. A job refused before it wrote anything leaves nothing: the lock and any folder made for it go at exit."""
    if out is None or run_lock.is_secondary_rank():
        return
    check_out(out, data_roots(dataset))
    if processes > 1:
        run_lock.acquire(out)


_FRESH: set[Path] = set()


def _unused(path: Path) -> bool:
    """True for a folder this process locked that holds nothing (a run directory it started: only the
    bookkeeping of a fresh start - fingerprint, config, folders without a file)."""
    allowed = BOOKKEEPING if path in _FRESH else ()
    for n in content(path):
        p = path / n
        if n not in allowed or p.is_symlink() or (p.is_dir() and next(_walk(p), None) is not None):
            return False
    return True


def _discard_unused() -> None:
    """At exit: remove again what this process made for a job that wrote nothing but its bookkeeping."""
    for p in run_lock.held():
        with contextlib.suppress(OSError):
            if run_lock.created(p) and _unused(p):
                remove_own(p, content(p))
                run_lock.release(p, discard=True)


atexit.register(_discard_unused)


def _read_json(p: Path) -> dict | None:
    try:
        d = read_json(p) if p.is_file() else None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) else None


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
        run = cls(path)
        run.fingerprint = fp = canonical({"job": job, **fingerprint})
        run.owned = tuple(owned)
        if not main:
            return run
        check_out(path, data_roots)  # the raw value: "" is refused as empty, not taken for the working directory
        path = run.path
        with claimed(path):
            run._start(job, fp, overwrite)
        return run

    def _start(self, job: str, fp: dict, overwrite: bool) -> None:
        """Check the (locked) folder and write the fingerprint ``fp`` of a fresh start, or check a resume against it."""
        path, contract = self.path, run_contract(self.owned)
        there = content(path)
        if there and not contract.is_ours(path):
            if overwrite:
                raise RunDirError.of(MSG_OUT_NOT_OURS, path=path, example=", ".join(there[:3]))
            raise RunDirError.of(MSG_OUT_NOT_A_RUN, path=path, example=there[0])
        s = survey(path, contract) if there else Survey()
        check_survey(path, contract, s)
        if overwrite and there:
            if s.foreign:
                n = len(s.foreign)
                raise RunDirError.of(MSG_OUT_FOREIGN, path=path, n=n, ies="y" if n == 1 else "ies",
                                     example=", ".join(s.foreign[:5]))
            remove_own(path, s.ours)
            there = []
        old = self._stored_fingerprint() if there else None
        if old is None:
            if there:
                raise RunDirError.of(MSG_OUT_UNREADABLE_FINGERPRINT, path=path)
            atomic_write_json(path / "fingerprint.json", fp)
            _FRESH.add(run_lock.lock_path(path).parent)
        elif old.get("job") != job:
            raise RunDirError.of(MSG_OUT_OTHER_JOB, path=path, job=job, other=old.get("job"))
        else:
            diffs = differences(old, fp)
            if diffs and self._config_fingerprint() == fp:  # fingerprint.json edited; config.json's copy agrees
                log_warning(log, MSG_OUT_FINGERPRINT_EDITED, path=path, diffs="; ".join(diffs))
                atomic_write_json(path / "fingerprint.json", fp)
            elif diffs:
                raise RunDirError.of(MSG_OUT_MISMATCH, path=path, diffs="\n  ".join(diffs))
            if _read_json(path / "fingerprint.json") is None:
                atomic_write_json(path / "fingerprint.json", fp)  # repaired from config.json
        (path / "plots").mkdir(exist_ok=True)

    def _config_fingerprint(self) -> dict | None:
        cfg = _read_json(self.path / "config.json")
        return cfg.get("fingerprint") if isinstance(cfg, dict) else None

    def _stored_fingerprint(self) -> dict | None:
        fp = _read_json(self.path / "fingerprint.json")
        return fp if fp is not None else self._config_fingerprint()

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
                   code=_code_history(old.get("code"), self.path, now), machine=machine(), started=old.get("started", now),
                   resumed=old.get("resumed", []) + ([now] if old else []))
        atomic_write_text(p, to_json(cfg, indent=2))

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
            save_image(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a), self.image_path(method, i))

    def save_missing_originals(self, ids: list[str], images: torch.Tensor) -> int:
        """Save again the originals whose file is missing (a deleted ``images/original/`` is repaired as other
        damage is: the dataset still holds them); returns how many."""
        missing = [j for j, i in enumerate(ids) if not self.has_image("original", i)]
        if missing:
            self.save_images("original", [ids[j] for j in missing], images[missing])
        return len(missing)

    def load_image(self, method: str, sample_id: str) -> torch.Tensor:
        with Image.open(self.image_path(method, sample_id)) as im:
            a = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())


__all__ = ["CONTRACT", "Contract", "RunDir", "RunDirError", "Survey", "check_out", "check_outside", "claimed", "code_identity",
           "content", "data_roots", "machine", "output_folder", "remove_own", "reserve", "run_contract", "safe_name",
           "survey", "versions"]
