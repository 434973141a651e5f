"""A crash-safe per-sample results store (SQLite, one transaction per batch).

A row per ``(id, method)``: the attack's per-sample outcome and every per-sample measurement (as JSON).
Rows are committed as each batch finishes, so an interrupted run keeps what it finished and a resume
skips it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

CORE = ("success", "success_float", "reached", "clean_correct", "steps", "margin", "margin_float",
        "clean_margin", "time_s", "forwards")


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
        self._con.commit()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    def rows(self, method: str) -> list[dict]:
        cur = self._con.execute("SELECT * FROM results WHERE method = ? ORDER BY id", (method,))
        names = [d[0] for d in cur.description]
        out = []
        for rec in cur:
            r = dict(zip(names, rec))
            r["metrics"] = json.loads(r["metrics"] or "{}")
            out.append(r)
        return out
