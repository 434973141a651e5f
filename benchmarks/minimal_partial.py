"""The finished methods of an unfinished ``bench minimal`` run, analysed with the benchmark's own functions (the
same per-sample rows, ensemble, optimality, paired tests and goal; nothing recomputed but the analysis), for a run
that was stopped before its last attacks. The ensemble is over the finished methods only, so optimality can fall
when the others finish.

    python benchmarks/minimal_partial.py runs/minimal-bench-200 --json benchmarks/results/minimal_partial.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imperceptible.attacks.registry import label
from imperceptible.costs.metrics import judges
from imperceptible.data import load
from imperceptible.experiments.bench_minimal import BenchMinimalConfig, checkpoints_of, minimal_attacks
from imperceptible.experiments.minimal_analysis import minimal_summary
from imperceptible.runs.store import ResultStore


def partial(run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    bench = BenchMinimalConfig(**{k: cfg[k] for k in ("dataset", "model", "weights", "limit", "image_size",
                                                       "budget", "peers", "anytime") if k in cfg})
    ds = load(bench.dataset, limit=bench.limit, size=cfg["fingerprint"]["dataset"]["image_shape"][-1]
              if "fingerprint" in cfg else None)
    store = ResultStore(run / "results.sqlite")
    methods = {label(a): a for a in minimal_attacks(bench)[0]}
    done = [m for m in methods if len(store.rows(m, ds.ids)) == len(ds)]
    rows = store.rows(done[0], ds.ids)
    keys = [j.key for j in judges() if any(j.key in r["metrics"] for r in rows)]
    s = minimal_summary(store, methods, done, ds, bench, keys=keys, checkpoints=checkpoints_of(bench))
    s.update(partial=True, finished=done, unfinished=[m for m in methods if m not in done], run=str(run),
             run_version=json.loads((run / "fingerprint.json").read_text()).get("version"))
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    s = partial(a.run)
    if a.json:
        a.json.write_text(json.dumps(s, indent=1))
    print(f"finished: {', '.join(s['finished'])}; unfinished: {', '.join(s['unfinished']) or 'none'}")


if __name__ == "__main__":
    main()
