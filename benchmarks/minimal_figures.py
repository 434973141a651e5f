"""A finished ``bench minimal`` run's figures drawn again by this version's plotting, from what the run stored (its
``summary.json``, ``per_image.json`` and per-sample rows): the anytime curves and the robust-accuracy curves. For runs
made by older code (the protocol runs are pinned to theirs), so that docs show every method with its own line; the
numbers are the run's own, nothing is recomputed.

    python benchmarks/minimal_figures.py runs/protocol/test-effnet-200 --out docs/figures --prefix heldout_effnet-200_
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imperceptible.runs.minimal_report import draw_figures
from imperceptible.runs.store import ResultStore


def figures(run: Path, out: Path, prefix: str = "") -> list[Path]:
    """Draw ``run``'s anytime and robust-accuracy figures into ``out``; returns the files written."""
    summary = json.loads((run / "summary.json").read_text())
    ids = json.loads((run / "per_image.json").read_text())["ids"]
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(run / "results.sqlite")
    return draw_figures(summary, {m: store.rows(m, ids) for m in summary["methods"]}, out, prefix)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a finished bench minimal run directory")
    p.add_argument("--out", type=Path, required=True, help="the folder the figures go to")
    p.add_argument("--prefix", default="", help="put before each file name")
    a = p.parse_args()
    for f in figures(a.run, a.out, a.prefix):
        print(f"wrote {f}")


if __name__ == "__main__":
    main()
