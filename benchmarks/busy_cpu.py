"""A model pass on a CPU another job keeps busy, with OpenMP's default wait and with ``OMP_WAIT_POLICY=PASSIVE``
(docs/results.md, Speed). OpenMP reads the policy when a process starts, so each measurement is a fresh child
process: EfficientNet-Lite0 (bench photos, batch 2), one forward+backward per image
(``attack_timing.forward_backward_time``, median of 5 after a warm-up) in the default layout and in channels-last.
"Busy": meanwhile a second process runs the same model's forward+backward in a loop with every core (the shape
of a benchmark or protocol run beside it); "idle": nothing else runs (stop your other jobs first). The conditions
and policies are interleaved over ``--repeats`` rounds.

    python benchmarks/busy_cpu.py [--repeats 3] [--json benchmarks/results/busy_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
POLICIES = ("default", "PASSIVE")
BATCH = 2


def _model_and_batch():
    from imperceptible.data import load
    from imperceptible.models import get

    ds = load("imagenet-samples")
    return get("efficientnet-lite0", progress=False).eval(), ds.images[:BATCH], ds.labels[:BATCH]


def child() -> None:
    """Print the seconds per image of one forward+backward, default layout and channels-last, as JSON."""
    from attack_timing import forward_backward_time

    from imperceptible.models.layout import fast_layout

    model, x, y = _model_and_batch()
    out = {"default layout": forward_backward_time(model, x, y, 5) / BATCH}
    out["channels-last"] = forward_backward_time(fast_layout(model), x, y, 5) / BATCH
    print(json.dumps(out))


def load_loop() -> None:
    """The other job: the same model's forward+backward, over and over, until killed."""
    from attack_timing import forward_backward_time

    model, x, y = _model_and_batch()
    while True:
        forward_backward_time(model, x, y, 1)


def _env(policy: str) -> dict:
    """This process's environment with OpenMP's wait ``policy`` (``default``: the variable unset)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return env if policy == "default" else {**env, "OMP_WAIT_POLICY": policy}


def _run(policy: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child"], env=_env(policy), capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default="benchmarks/results/busy_cpu.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child()
    if a.load:
        return load_loop()
    runs: dict = {f"{c}, {pol}": [] for c in ("idle", "busy") for pol in POLICIES}
    for r in range(a.repeats):
        for cond in ("idle", "busy"):
            other = None
            if cond == "busy":  # the other job, with OpenMP's default wait, as a user's second run would have
                other = subprocess.Popen([sys.executable, __file__, "--load"], env=_env("default"))
                time.sleep(15)  # its model loaded and looping
            try:
                for pol in POLICIES:
                    runs[f"{cond}, {pol}"].append(_run(pol))
                    print(f"round {r + 1}: {cond:4s} {pol:8s} " + "  ".join(
                        f"{k} {1000 * v:.1f} ms" for k, v in runs[f"{cond}, {pol}"][-1].items()), flush=True)
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
    summary = {k: {layout: {"median_ms_per_image": 1000 * statistics.median(x[layout] for x in v),
                            "ms_per_image": [1000 * x[layout] for x in v]} for layout in v[0]}
               for k, v in runs.items()}
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__},
           "model": "efficientnet-lite0", "batch": BATCH, "repeats": a.repeats, "runs": summary}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))  # attack_timing, when run from elsewhere
    main()
