"""A crash-safe per-sample results store (SQLite, one transaction per batch).

Two tables:

* ``results`` - a row per ``(id, method)``: the attack's per-sample outcome and every per-sample
  measurement (as JSON), committed as each batch finishes, so an interrupted run keeps what it finished
  and a resume skips it;
* ``samples`` - a row per sample id: the digest of its pixels and label, so a resume can check that an id
  still means the same image (a changed dataset is refused, not mixed in).

A damaged database file is detected when it is opened (:func:`open_store`): what can still be read is
copied into a new file, the damaged one is kept beside it as ``results.sqlite.damaged``, and the run
carries on, re-running only what was lost.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

from ..notices import MSG_STORE_DAMAGED, log_warning
from .record import CORE

log = logging.getLogger(__name__)




def _retry_locked(fn, wait_s: float = 120.0):
    """Run ``fn``, retrying while another process holds the database (switching to WAL mode takes an
    exclusive lock that SQLite's busy timeout does not wait for when processes open the file at once)."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(0.5, delay * 2)


class ResultStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=120)  # several ranks may write at once
        cols = ", ".join(f"{c} REAL" for c in CORE)
        _retry_locked(lambda: self._con.execute("PRAGMA journal_mode=WAL"))
        _retry_locked(lambda: self._con.execute(
            f"CREATE TABLE IF NOT EXISTS results (id TEXT NOT NULL, method TEXT NOT NULL, label INTEGER, "
            f"{cols}, metrics TEXT, PRIMARY KEY (id, method))"
        ))
        _retry_locked(lambda: self._con.execute(
            "CREATE TABLE IF NOT EXISTS samples (id TEXT PRIMARY KEY, digest TEXT NOT NULL)"))
        self._con.commit()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self) -> None:
        """Raise ``sqlite3.DatabaseError`` if the file is damaged."""
        r = self._con.execute("PRAGMA quick_check").fetchone()
        if r is None or r[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {r[0] if r else 'no answer'}")
        self._con.execute("SELECT COUNT(*) FROM results").fetchone()

    # --- samples --------------------------------------------------------------------------------
    def sample_digests(self, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in range(0, len(ids), 500):
            chunk = ids[s : s + 500]
            q = f"SELECT id, digest FROM samples WHERE id IN ({', '.join('?' * len(chunk))})"
            out.update(dict(self._con.execute(q, chunk).fetchall()))
        return out

    def put_samples(self, digests: dict[str, str]) -> None:
        with self._con:
            self._con.executemany("INSERT OR IGNORE INTO samples (id, digest) VALUES (?, ?)", list(digests.items()))

    # --- results --------------------------------------------------------------------------------
    def done(self, method: str) -> set[str]:
        return {r[0] for r in self._con.execute("SELECT id FROM results WHERE method = ?", (method,))}

    def put_many(self, method: str, rows: list[dict]) -> None:
        """Insert (or replace) the rows of one batch atomically."""
        cols = ["id", "method", "label", *CORE, "metrics"]
        q = f"INSERT OR REPLACE INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with self._con:
            self._con.executemany(
                q,
                [
                    (r["id"], method, int(r["label"]), *[float(r[c]) for c in CORE],
                     json.dumps(r.get("metrics", {})))
                    for r in rows
                ],
            )

    def methods(self) -> list[str]:
        return [r[0] for r in self._con.execute("SELECT DISTINCT method FROM results ORDER BY rowid")]

    def rows(self, method: str, ids: list[str] | None = None) -> list[dict]:
        """The rows of ``method`` (only those whose id is in ``ids`` when given), by id."""
        cur = self._con.execute("SELECT * FROM results WHERE method = ? ORDER BY id", (method,))
        names = [d[0] for d in cur.description]
        keep = set(ids) if ids is not None else None
        out = []
        for rec in cur:
            r = dict(zip(names, rec))
            if keep is not None and r["id"] not in keep:
                continue
            r["metrics"] = json.loads(r["metrics"] or "{}")
            out.append(r)
        return out


def _salvage(path: Path) -> list[tuple]:
    """Whatever rows of a damaged store can still be read, one at a time."""
    rows: list[tuple] = []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for tbl in ("results", "samples"):
                try:
                    cur = con.execute(f"SELECT * FROM {tbl}")
                    while True:
                        try:
                            rec = cur.fetchone()
                        except sqlite3.DatabaseError:
                            break
                        if rec is None:
                            break
                        rows.append((tbl, rec))
                except sqlite3.DatabaseError:
                    continue
        finally:
            con.close()
    except sqlite3.DatabaseError:
        pass
    return rows


def open_store(path: str | Path) -> ResultStore:
    """Open the store; a damaged file is set aside and its readable rows carried into a new one."""
    path = Path(path)
    try:
        store = ResultStore(path)
        store.check()
        return store
    except sqlite3.DatabaseError as e:
        error = str(e)
    try:
        store.close()  # unbound when ResultStore() itself raised: caught below
    except Exception:  # noqa: BLE001 - it may never have opened
        pass
    kept = path.with_name(path.name + ".damaged")
    salvaged = _salvage(path)
    path.replace(kept)
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    store = ResultStore(path)
    n = 0
    with store._con:
        for tbl, rec in salvaged:
            try:
                store._con.execute(f"INSERT OR IGNORE INTO {tbl} VALUES ({', '.join('?' * len(rec))})", rec)
                n += tbl == "results"
            except sqlite3.DatabaseError:
                continue
    log_warning(log, MSG_STORE_DAMAGED, path=path, error=error, kept=kept, rows=n)
    return store


__all__ = ["CORE", "MSG_STORE_DAMAGED", "ResultStore", "open_store"]
