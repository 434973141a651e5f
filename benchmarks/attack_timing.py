"""Time Human_Perc_OT against PGD-L2 and PerC-AL on the same batch, in one run, and the overhead of our
attack over the bare model cost.

    python benchmarks/attack_timing.py [--dataset imagenet-samples] [--model efficientnet-lite0]
                                       [--batch 8] [--repeats 3] [--perc-al-iterations 100] [--json out.json]

Prints a table and writes JSON. Overhead = attack seconds / (sum over samples of steps taken x the time of
one forward+backward pass per sample), the per-sample cost measured here as the median of ``--repeats``
forward+backward passes (gradient w.r.t. the input only, as in the attacks) of the whole batch. The
attack's own time also holds its clean forward pass, its final success check and, for Human_Perc_OT, the
cost gradients; an overhead near 1 means the model is the whole cost.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from imperceptible.attacks import PGDL2, HumanPercOT, PerCAL
from imperceptible.data import load
from imperceptible.models import get


def forward_backward_time(model, x, y, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        t = time.perf_counter()
        torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)  # input gradient only, as attacks
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])  # the first is a warm-up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="imagenet-samples")
    p.add_argument("--model", default="efficientnet-lite0")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--perc-al-iterations", type=int, default=100)
    p.add_argument("--json", default="benchmarks/attack_timing.json")
    a = p.parse_args()
    model = get(a.model, progress=False)
    ds = load(a.dataset)
    ok = model.predict(ds.images, 10) == ds.labels
    x, y = ds.images[ok][: a.batch], ds.labels[ok][: a.batch]
    t_fb = forward_backward_time(model, x, y, a.repeats) / len(y)
    rows = {}
    for name, atk in [("pgd-l2", PGDL2()), ("human-perc-ot", HumanPercOT()),
                      ("human-perc-ot[paper]", HumanPercOT(preset="paper")),
                      ("perc-al", PerCAL(max_iterations=a.perc_al_iterations))]:
        times, res = [], None
        for _ in range(a.repeats):
            res = atk(model, x, y)
            times.append(res.time_s)
        t = statistics.median(times)
        steps = int(res.steps.sum())
        rows[name] = {"time_s": t, "success_rate": res.success_rate, "mean_steps": res.steps.float().mean().item(),
                      "overhead_vs_bare_model": t / max(steps * t_fb, 1e-12)}
    for r in rows.values():
        r["time_ratio_to_pgd_l2"] = r["time_s"] / rows["pgd-l2"]["time_s"]
        r["time_ratio_to_perc_al"] = r["time_s"] / rows["perc-al"]["time_s"]
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "threads": torch.get_num_threads(),
                       "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
           "dataset": a.dataset, "model": a.model, "batch": len(y), "repeats": a.repeats,
           "forward_backward_s_per_sample": t_fb, "perc_al_iterations": a.perc_al_iterations, "methods": rows}
    print(f"{a.model} on {len(y)} {a.dataset} images; one forward+backward = {1000 * t_fb:.1f} ms per image")
    print(f"{'method':24s}{'time s':>9s}{'steps':>8s}{'success':>9s}{'/PGD-L2':>9s}{'/PerC-AL':>10s}{'overhead':>10s}")
    for m, r in rows.items():
        print(f"{m:24s}{r['time_s']:9.2f}{r['mean_steps']:8.1f}{r['success_rate']:9.2f}{r['time_ratio_to_pgd_l2']:9.2f}"
              f"{r['time_ratio_to_perc_al']:10.2f}{r['overhead_vs_bare_model']:10.2f}")
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
