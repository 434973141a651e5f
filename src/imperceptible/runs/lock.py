"""One job per run directory: an advisory lock held by the job's main process.

The lock is ``DIR/.lock`` (``fcntl.flock``, released by the OS when the process dies, so a killed run never
leaves a stale lock). The ranks of one distributed job share their main process's lock: only the process
that is global rank 0 (or the launcher, before it starts the other ranks) takes it. A second job on the
same directory is refused with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from ..validation import (
    MSG_LOCKED,
    RunLockedError,
)

_HELD: dict[Path, IO] = {}


def is_secondary_rank() -> bool:
    """True in a process started as a non-zero rank of a distributed job (torchrun, fabric run, SLURM or
    Fabric's own launcher set these variables)."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        v = os.environ.get(var)
        if v not in (None, "", "0"):
            return True
    return False


def acquire(run_dir: str | os.PathLike) -> None:
    """Take the lock of ``run_dir`` for this process (a no-op if it holds it already)."""
    path = Path(run_dir).resolve() / ".lock"
    if path in _HELD:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise RunLockedError.of(MSG_LOCKED, path=path.parent, pid=pid) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _HELD[path] = f


def release(run_dir: str | os.PathLike) -> None:
    path = Path(run_dir).resolve() / ".lock"
    f = _HELD.pop(path, None)
    if f is not None:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


__all__ = ["MSG_LOCKED", "RunLockedError", "acquire", "is_secondary_rank", "release"]
