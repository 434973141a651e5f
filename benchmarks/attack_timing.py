"""Time Human_Perc_OT against PGD-L2 and PerC-AL on the same images, in one run, and the overhead of our
attack over the bare model cost.

    python benchmarks/attack_timing.py [--dataset imagenet-samples] [--model efficientnet-lite0] [--batch 8]
                                       [--limit N] [--repeats 3] [--perc-al-iterations 100] [--json out.json]

Every correctly classified image (or the first ``--limit``), in batches of ``--batch``; the methods run
interleaved (PGD-L2, ours, ..., then again) ``--repeats`` times and each reports its median total. Prints a
table and writes JSON. Overhead = attack seconds / (sum over samples of steps taken x the time of one
forward+backward pass per sample), that per-sample cost measured as the median over batches of the median of
``--repeats`` forward+backward passes (gradient w.r.t. the input only, as in the attacks). The attack's own
time also holds its clean forward pass, its final success checks (8-bit and float) and, for Human_Perc_OT,
the cost gradients (counted and timed: the JSON says how many per image and their share of the time); an
overhead near 1 means the model is the whole cost."""

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


class CostGradTimer:
    """Wraps an attack's ``cost_grad`` to count the samples it is taken for and the seconds it takes."""

    def __init__(self, atk) -> None:
        self.inner, self.samples, self.seconds = atk.cost_grad, 0, 0.0
        atk.cost_grad = self

    def __call__(self, x, x0):
        t = time.perf_counter()
        out = self.inner(x, x0)
        self.seconds += time.perf_counter() - t
        self.samples += x.shape[0]
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="imagenet-samples")
    p.add_argument("--model", default="efficientnet-lite0")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="first N correctly classified images (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--perc-al-iterations", type=int, default=100)
    p.add_argument("--json", default="benchmarks/attack_timing.json")
    a = p.parse_args()
    model = get(a.model, progress=False)
    ds = load(a.dataset)
    ok = model.predict(ds.images, 10) == ds.labels
    x, y = ds.images[ok][: a.limit], ds.labels[ok][: a.limit]
    batches = [(x[i:i + a.batch], y[i:i + a.batch]) for i in range(0, len(y), a.batch)]
    t_fb = statistics.median(forward_backward_time(model, xb, yb, a.repeats) / len(yb) for xb, yb in batches)
    attacks = {"pgd-l2": PGDL2(), "human-perc-ot": HumanPercOT(), "human-perc-ot[paper]": HumanPercOT(preset="paper"),
               "perc-al": PerCAL(max_iterations=a.perc_al_iterations)}
    timer = CostGradTimer(attacks["human-perc-ot"])
    times = {m: [] for m in attacks}
    steps = {}
    success = {}
    for _ in range(a.repeats):  # interleaved: every method sees the same machine state
        for m, atk in attacks.items():
            res = [atk(model, xb, yb) for xb, yb in batches]
            times[m].append(sum(r.time_s for r in res))
            steps[m] = torch.cat([r.steps for r in res])
            success[m] = sum(r.success_rate * int(r.clean_correct.sum()) for r in res) / len(y)
    rows = {}
    for m in attacks:
        t = statistics.median(times[m])
        n_steps = int(steps[m].sum())
        rows[m] = {"time_s": t, "times_s": times[m], "success_rate": success[m],
                   "mean_steps": steps[m].float().mean().item(),
                   "overhead_vs_bare_model": t / max(n_steps * t_fb, 1e-12)}
    for r in rows.values():
        r["time_ratio_to_pgd_l2"] = r["time_s"] / rows["pgd-l2"]["time_s"]
        r["time_ratio_to_perc_al"] = r["time_s"] / rows["perc-al"]["time_s"]
    hp = rows["human-perc-ot"]
    hp["cost_gradients_per_image"] = timer.samples / a.repeats / len(y)
    hp["cost_gradient_share_of_time"] = timer.seconds / sum(times["human-perc-ot"])
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "threads": torch.get_num_threads(),
                       "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
           "dataset": a.dataset, "model": a.model, "images": len(y), "batch": a.batch, "repeats": a.repeats,
           "forward_backward_s_per_sample": t_fb, "perc_al_iterations": a.perc_al_iterations, "methods": rows}
    print(f"{a.model} on {len(y)} correctly classified {a.dataset} images in batches of {a.batch}, median of "
          f"{a.repeats} interleaved runs; one forward+backward = {1000 * t_fb:.1f} ms per image")
    print(f"{'method':24s}{'time s':>9s}{'steps':>8s}{'success':>9s}{'/PGD-L2':>9s}{'/PerC-AL':>10s}{'overhead':>10s}")
    for m, r in rows.items():
        print(f"{m:24s}{r['time_s']:9.2f}{r['mean_steps']:8.1f}{r['success_rate']:9.2f}{r['time_ratio_to_pgd_l2']:9.2f}"
              f"{r['time_ratio_to_perc_al']:10.2f}{r['overhead_vs_bare_model']:10.2f}")
    print(f"human-perc-ot: {hp['cost_gradients_per_image']:.1f} cost gradients per image, "
          f"{100 * hp['cost_gradient_share_of_time']:.0f}% of its time")
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
