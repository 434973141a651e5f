"""One job per output folder: an advisory lock held by the job's main process.

The lock is ``DIR/.lock`` (``fcntl.flock``, released by the OS when the process dies, so a killed run never
leaves a stale lock). The ranks of one distributed job share their main process's lock: only the process
that is global rank 0 (or the launcher, before it starts the other ranks) takes it. A second job on the
same directory is refused with a message naming the holder.

The lock file is never followed out of its folder: a new one is created with ``O_CREAT | O_EXCL |
O_NOFOLLOW`` (exclusive, no link followed), an existing one is opened with ``O_NOFOLLOW``, and a ``.lock``
that is a symbolic link, a folder, a device or a hard link to another file is refused, left untouched
(its target too). What taking a lock created (the folders of a new ``--out``, the lock file) is recorded,
so :func:`release` with ``discard=True`` removes it again (the folders only while they are empty): a refused
command leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MSG_LOCK_LINK, MSG_LOCK_NOT_FILE, MSG_LOCKED, MSG_OUT_UNWRITABLE, RunDirError, RunLockedError

LOCK = ".lock"
_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # O_NONBLOCK: a FIFO named .lock never blocks


@dataclass
class _Held:
    fd: int
    created_lock: bool
    created_dirs: list[Path] = field(default_factory=list)  # outermost first


_HELD: dict[Path, _Held] = {}


def is_secondary_rank() -> bool:
    """True in a process started as a non-zero rank of a distributed job (torchrun, fabric run, SLURM or
    Fabric's own launcher set these variables)."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        v = os.environ.get(var)
        if v not in (None, "", "0"):
            return True
    return False


def lock_path(run_dir: str | os.PathLike) -> Path:
    """``run_dir``'s lock file (``--out`` itself may be a link the user made: it is resolved; nothing inside is)."""
    return Path(run_dir).resolve() / LOCK


def make_folder(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders created (outermost first). A failure removes
    what it created and is refused naming ``path``."""
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    made: list[Path] = []
    try:
        for d in reversed(missing):
            os.mkdir(d)
            made.append(d)
    except OSError as e:
        remove_folders(made)
        raise RunDirError.of(MSG_OUT_UNWRITABLE, path=path, error=e.strerror or e) from None
    return made


def remove_folders(made: list[Path]) -> None:
    """Remove the folders ``made`` (outermost first) that are still empty, innermost first."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            return


def _open(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether this call created it."""
    for _ in range(3):  # a lock file removed between the two opens: try again
        try:
            return os.open(path, _FLAGS | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        if path.is_symlink():
            raise RunDirError.of(MSG_LOCK_LINK, path=path, target=os.readlink(path))
        try:
            fd = os.open(path, _FLAGS)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RunDirError.of(MSG_LOCK_LINK, path=path, target=os.readlink(path)) from None
            what = "a folder" if e.errno == errno.EISDIR else f"something that cannot be opened ({e.strerror})"
            raise RunDirError.of(MSG_LOCK_NOT_FILE, path=path, got=what) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            what = "a hard link to another file" if stat.S_ISREG(st.st_mode) else "a special file"
            raise RunDirError.of(MSG_LOCK_NOT_FILE, path=path, got=what)
        return fd, False
    raise RunDirError.of(MSG_LOCK_NOT_FILE, path=path, got="a file that keeps disappearing")


def acquire(run_dir: str | os.PathLike) -> None:
    """Take the lock of ``run_dir`` for this process (a no-op if it holds it already), creating the folder if
    needed; refused if another process holds it, or if ``.lock`` is not a plain file of its own."""
    path = lock_path(run_dir)
    if path in _HELD:
        return
    made = make_folder(path.parent)
    try:
        fd, new = _open(path)
    except BaseException:
        remove_folders(made)
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise RunLockedError.of(MSG_LOCKED, path=path.parent, pid=pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _HELD[path] = _Held(fd, new, made)


def holds(run_dir: str | os.PathLike) -> bool:
    """True if this process holds the lock of ``run_dir``."""
    return lock_path(run_dir) in _HELD


def created(run_dir: str | os.PathLike) -> bool:
    """True if this process created the lock file of ``run_dir`` (the folder had none before)."""
    h = _HELD.get(lock_path(run_dir))
    return h is not None and h.created_lock


def release(run_dir: str | os.PathLike, *, discard: bool = False) -> None:
    """Give the lock of ``run_dir`` back. ``discard``: also remove what taking it created - the lock file, and
    the folders made for it when they hold nothing else - what a refused command does."""
    path = lock_path(run_dir)
    h = _HELD.pop(path, None)
    if h is None:
        return
    if discard and h.created_lock:
        path.unlink(missing_ok=True)
        remove_folders(h.created_dirs)
    fcntl.flock(h.fd, fcntl.LOCK_UN)
    os.close(h.fd)


def held() -> list[Path]:
    """The folders whose lock this process holds."""
    return [p.parent for p in _HELD]


__all__ = ["LOCK", "MSG_LOCKED", "RunLockedError", "acquire", "created", "held", "holds", "is_secondary_rank",
           "lock_path", "make_folder", "release", "remove_folders"]
