"""Speed-up of the heavy stages on 2 processes over 1 (Lightning Fabric, gloo on CPUs).

Each configuration runs the real command in a fresh run directory and is timed end to end (start-up,
launch and the final report included):

* ``attack``: Human_Perc_OT on MNIST digits with the MNIST CNN (images sharded by batch);
* ``fairness``: a reduced study on geo-fashion (Algorithm 2 data-parallel, Algorithm 3 seeds spread).

Configurations: 1 process x 1 thread, 1 process x 2 threads (what a user gets by default on 2 cores),
2 processes x 1 thread (``--devices 2``). Prints a table and writes ``benchmarks/results/scale_out.json``.

    python benchmarks/scale_out.py [--limit 1000] [--models 4] [--dro-size 1000] [--jobs attack fairness]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = [("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)]


def timed(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=1000, help="MNIST digits attacked (at most 1000)")
    ap.add_argument("--jobs", nargs="+", default=["attack", "fairness"], choices=["attack", "fairness"])
    ap.add_argument("--models", type=int, default=4, help="K per family in the fairness job")
    ap.add_argument("--dro-size", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale_out.json"))
    args = ap.parse_args()
    exe = [sys.executable, "-m", "imperceptible"]
    jobs = {
        "attack": lambda d, dev: exe + ["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack",
                                        "human-perc-ot", "--limit", str(args.limit), "--batch-size", "32",
                                        "--no-learned", "--quiet", "--devices", str(dev), "--out", d],
        "fairness": lambda d, dev: exe + ["fairness", "--dro-size", str(args.dro_size), "--models", str(args.models),
                                          "--dro-seeds", "1", "--t1", "1", "--t2", "1", "--quiet", "--devices", str(dev),
                                          "--out", d],
    }
    subprocess.run(exe + ["info"], capture_output=True)  # warm the import caches
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for job, cmd in ((j, jobs[j]) for j in args.jobs):
            results[job] = {}
            for name, dev, threads in CONFIGS:
                d = str(Path(tmp) / f"{job}-{dev}-{threads}")
                results[job][name] = timed(cmd(d, dev), threads)
                print(f"{job:10s} {name:24s} {results[job][name]:8.1f} s", flush=True)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    params = {**old.get("params", {}), **{j: ({"limit": args.limit} if j == "attack" else
                                              {"models": args.models, "dro_size": args.dro_size}) for j in args.jobs}}
    results = {**old.get("results_s", {}), **results}  # a run of some jobs keeps the others' figures
    table = ["| job | " + " | ".join(n for n, _, _ in CONFIGS) + " | speed-up, 2 processes over 1 x 1 | over 1 x 2 |",
             "|---|" + "---:|" * (len(CONFIGS) + 2)]
    for job, r in results.items():
        base1, base2, two = r[CONFIGS[0][0]], r[CONFIGS[1][0]], r[CONFIGS[2][0]]
        table.append(f"| {job} | " + " | ".join(f"{r[n]:.1f} s" for n, _, _ in CONFIGS)
                     + f" | {base1 / two:.2f}x | {base2 / two:.2f}x |")
    print("\n".join(table))
    out = {"results_s": results, "params": params,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
           "table_markdown": "\n".join(table)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
