"""Peak memory per image of ours and the peers (issue #34, item 6), against the estimate the default batch size uses.

    python benchmarks/attack_memory.py [--dataset imagenet-samples] [--model efficientnet-lite0] [--budget 30]
                                       [--batches 1 8] [--json benchmarks/results/attack_memory.json]

Every attack of the minimal protocol's ``effnet-200`` run (``benchmarks/protocols/minimal.toml``, its chosen settings
for 200 passes) stopped by the pass counter at a small budget (memory does not grow with the passes: an attack keeps
its iterate and its best, not its history), and the bare model's gradient pass. Each measurement is a fresh process
(one thread) that loads the model and the images, reads its resident memory (``VmRSS``), resets the kernel's peak
(``/proc/self/clear_refs``, value 5), runs one batch, and reads the peak (``VmHWM``): the peak above what was resident
before the batch. A fresh process per measurement keeps one attack's freed memory (held by the allocator) from hiding
the next one's. Reported per attack: the peak per image at batch 8, the marginal bytes per extra image ((peak at 8 -
peak at 1) / 7), and the marginal against :func:`imperceptible.runs.memory.saved_bytes_per_image` (the estimate's
unit; the default batch assumes at most :data:`~imperceptible.runs.memory.ATTACK_MULTIPLE` of it). Linux only
(``/proc``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

PROTOCOL = Path(__file__).parent / "protocols" / "minimal.toml"
BARE = "bare gradient pass"


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def child(method: str, dataset: str, model_name: str, budget: int, batch: int) -> dict:
    """One measurement, in this (fresh) process."""
    import torch
    import torch.nn.functional as F

    from imperceptible.data import load
    from imperceptible.experiments.protocol import load_protocol
    from imperceptible.models import get
    from imperceptible.runs.memory import saved_bytes_per_image

    torch.set_num_threads(1)
    model = get(model_name, progress=False)
    ds = load(dataset)
    ok = model.predict(ds.images, 10) == ds.labels
    x, y = ds.images[ok][:batch], ds.labels[ok][:batch]
    if len(y) < batch:
        raise SystemExit(f"{dataset}: {len(y)} correctly classified images, {batch} asked")
    estimate = saved_bytes_per_image(model, x)
    atk = None
    if method != BARE:
        proto = load_protocol(PROTOCOL)
        atk = proto.attacks(proto.run("effnet-200"), "test")[method]
        atk.max_passes = budget  # the counter's guard stops it there; its own settings are the 200-pass run's
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    if atk is None:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)
    else:
        atk(model, x, y)
    peak = _status("VmHWM")
    return {"method": method, "batch": batch, "peak_above_resident": peak - before, "estimate_per_image": estimate}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="imagenet-samples")
    p.add_argument("--model", default="efficientnet-lite0")
    p.add_argument("--budget", type=int, default=30)
    p.add_argument("--batches", type=int, nargs=2, default=[1, 8])
    p.add_argument("--json", default="benchmarks/results/attack_memory.json")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "BATCH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.dataset, a.model, a.budget, int(a.child[1]))))
        return
    from imperceptible.experiments.protocol import load_protocol
    from imperceptible.runs.memory import ATTACK_MULTIPLE

    proto = load_protocol(PROTOCOL)
    methods = [BARE, *[s.name for s in proto.specs(proto.run("effnet-200"))]]
    small, big = a.batches
    rows = {}
    for m in methods:
        got = {}
        for b in (small, big):
            cmd = [sys.executable, __file__, "--dataset", a.dataset, "--model", a.model, "--budget", str(a.budget),
                   "--child", m, str(b)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{m} at batch {b} failed:\n{out.stderr[-2000:]}")
            got[b] = json.loads(out.stdout.strip().splitlines()[-1])
        est = got[big]["estimate_per_image"]
        marginal = (got[big]["peak_above_resident"] - got[small]["peak_above_resident"]) / (big - small)
        rows[m] = {"peak_per_image_at_batch": got[big]["peak_above_resident"] / big,
                   "peak_at_batch_1": got[small]["peak_above_resident"], "marginal_per_image": marginal,
                   "marginal_over_estimate": marginal / est, "estimate_per_image": est}
        print(f"{m:32s} peak/img at {big} {rows[m]['peak_per_image_at_batch'] / 2**20:7.1f} MiB  marginal "
              f"{marginal / 2**20:7.1f} MiB  x{marginal / est:5.2f} of the estimate ({est / 2**20:.1f} MiB)", flush=True)
    worst = max(r["marginal_over_estimate"] for r in rows.values())
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
           "dataset": a.dataset, "model": a.model, "budget": a.budget, "batches": [small, big], "threads": 1,
           "protocol": str(PROTOCOL.name), "attack_multiple": ATTACK_MULTIPLE, "largest_multiple": worst,
           "methods": rows}
    print(f"largest marginal over the estimate: x{worst:.2f} (the default batch assumes x{ATTACK_MULTIPLE:g})")
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
