"""Files written so that a crash never leaves half of one, and an advisory lock between processes.

Every file the tool writes goes through :func:`atomic_write` (directly, or through the JSON, text, figure,
image and ``torch.save`` writers below): written to a temporary name beside the target, then renamed over it,
so a crash leaves the old file or the new one, never half of one, and a target that is a symbolic link is
replaced, never written through. A full disk (or quota) is the typed :class:`DiskFullError`, one line naming
the folder and saying what was kept, with the temporary file removed.

JSON is strict (RFC 8259, what a browser's ``JSON.parse`` accepts): a NaN or an infinity is written as ``null``
and listed, with its place, under the top-level key ``"_non_finite"`` (:data:`NON_FINITE_KEY`); :func:`read_json`
puts the values back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MSG_DISK_FULL, DiskFullError
from .notices import MSG_JSON_NON_FINITE_ROOT, log_warning

log = logging.getLogger(__name__)

#: the errors that mean "no room left": the disk is full, or the user's quota is spent
FULL = (errno.ENOSPC, errno.EDQUOT)
#: the top-level key that lists the non-finite values a JSON file holds as null
NON_FINITE_KEY = "_non_finite"
_SPELLING = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def disk_full(e: BaseException, path: Path) -> DiskFullError | None:
    """The typed error for ``e`` if it says the disk (or quota) is full while writing ``path``, else ``None``."""
    if isinstance(e, OSError) and e.errno in FULL:
        return DiskFullError.of(MSG_DISK_FULL, folder=path.parent, name=path.name, error=e.strerror or e)
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` by calling ``write(temporary_path)``, then renaming the temporary file over ``path``.
    A failure removes the temporary file; a full disk raises :class:`DiskFullError`."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)  # a stale temporary (or a link put there) is replaced, never written through
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        full = disk_full(e, path)
        if full is not None:
            raise full from None
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda t: t.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`atomic_write` (serialised in memory first, so a full disk is an ``OSError``
    there rather than torch's ``RuntimeError``)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def save_figure(fig, path: str | os.PathLike, **savefig) -> Path:
    """``fig.savefig(path, **savefig)`` through :func:`atomic_write` (the format from ``path``'s suffix)."""
    path = Path(path)
    return atomic_write(path, lambda t: fig.savefig(t, format=path.suffix.lstrip(".") or "png", **savefig))


def save_image(image, path: str | os.PathLike) -> Path:
    """A PIL image through :func:`atomic_write` (the format from ``path``'s suffix: lossless PNG for ``.png``)."""
    path = Path(path)
    return atomic_write(path, lambda t: image.save(t, format=path.suffix.lstrip(".").upper().replace("JPG", "JPEG")))


def json_default(o: Any) -> Any:
    """JSON for the values results hold: numpy scalars, tensors, paths."""
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def _finite(o: Any, where: list, found: list) -> Any:
    """``o`` with every non-finite float replaced by ``None``, each recorded in ``found`` with its place."""
    if isinstance(o, float):
        if math.isfinite(o):
            return o
        found.append({"path": list(where), "value": _SPELLING.get(o, "NaN")})
        return None
    if isinstance(o, dict):
        return {k: _finite(v, [*where, k], found) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v, [*where, i], found) for i, v in enumerate(o)]
    if o is None or isinstance(o, (str, int)):
        return o
    return _finite(json_default(o), where, found)


def to_json(data: Any, **dumps) -> str:
    """Strict JSON for ``data`` (see the module docstring: non-finite values become ``null``, listed under
    :data:`NON_FINITE_KEY`).

    Examples:
        >>> from imperceptible.fileio import to_json
        >>> to_json({"n": [1.5, float("inf")]})
        '{"n": [1.5, null], "_non_finite": [{"path": ["n", 1], "value": "Infinity"}]}'
    """
    found: list = []
    clean = _finite(data, [], found)
    if found:
        if isinstance(clean, dict):
            clean[NON_FINITE_KEY] = found
        else:
            log_warning(log, MSG_JSON_NON_FINITE_ROOT, n=len(found))
    return json.dumps(clean, allow_nan=False, **dumps)


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, to_json(data, indent=2))


def restore_non_finite(data: Any) -> Any:
    """The values a :func:`to_json` file listed under :data:`NON_FINITE_KEY` put back in place (the key removed)."""
    if not isinstance(data, dict) or not isinstance(data.get(NON_FINITE_KEY), list):
        return data
    for rec in data.pop(NON_FINITE_KEY):
        try:
            *head, last = rec["path"]
            node = data
            for k in head:
                node = node[k]
            node[last] = {"Infinity": math.inf, "-Infinity": -math.inf}.get(rec["value"], math.nan)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a note that no longer fits (edited by hand): the value stays null
    return data


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file written by :func:`atomic_write_json`, with its non-finite values back (see the module docstring)."""
    return restore_non_finite(json.loads(Path(path).read_text(encoding="utf-8")))


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed), waiting for it if another process
    holds it. Released on exit, and by the OS if the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


__all__ = ["FULL", "NON_FINITE_KEY", "atomic_save", "atomic_write", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "disk_full", "file_lock", "json_default", "read_json", "restore_non_finite",
           "save_figure", "save_image", "to_json"]
