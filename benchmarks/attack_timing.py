"""Seconds per counted pass, ours against the peers and the bare model, in one interleaved run (issue 34, item 2),
and where ours' time goes.

    python benchmarks/attack_timing.py [--dataset imagenet-samples] [--model efficientnet-lite0] [--batch 8]
                                       [--limit 8] [--budget 60] [--repeats 3] [--layout fast]
                                       [--json benchmarks/results/attack_timing.json]

Every attack runs under the same counted budget (the counter's guard), on the same correctly classified images, the
methods interleaved ``--repeats`` times (each reports its median; the bare pass is timed 5 times per repeat, after a
warm-up, its median kept). *Overhead* = an attack's seconds per counted pass and image over the bare model's (one
forward and one backward to the input of the same batch, median of the repeats): 1 means the model is the whole cost.
A pass is (forwards + backwards) / 2, and a forward costs less than a backward, so an attack that queries more
forward-only is cheaper per pass; *overhead against the model's work* divides an attack's seconds by what its own
counted forwards and backwards cost the bare model (the forward alone timed as the pair, the backward as their
difference), which compares attacks with another mix of the two. A profile of ours (``cProfile``) splits its time into
the model's passes, its cost's evaluations (the refinement's record of the best, the anytime tracker's ranking) and
gradients, and the rest (Python per step). ``--layout fast`` (the default) puts the model in its device's fast memory
layout, as the commands do (:func:`imperceptible.models.layout.fast_layout`); ``--layout default`` keeps the
library's."""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import time

import torch
import torch.nn.functional as F

from imperceptible.attacks import DDN, FMN, PGDL2, BoundaryProjection, HumanPercOT, PerCAL, adv_lib_available
from imperceptible.attacks.registry import label
from imperceptible.data import load
from imperceptible.models import get
from imperceptible.models.layout import fast_layout


def forward_backward_time(model, x, y, repeats: int, sync=None, *, backward: bool = True) -> float:
    """Median seconds of one bare forward+backward to the input of the batch ``x`` (as attacks take it) over
    ``repeats`` runs after one warm-up; ``sync`` (``torch.cuda.synchronize`` on a GPU) is called around each so that
    the clock sees the device's work, not its queue. The one bare-model timing of every benchmark. ``backward=False``:
    the forward alone (its graph built, as an attack's forward before a backward)."""
    sync = sync or (lambda: None)
    times = []
    for _ in range(repeats + 1):
        xi = x.clone().requires_grad_(True)
        sync()
        t = time.perf_counter()
        loss = F.cross_entropy(model(xi), y, reduction="sum")
        if backward:
            torch.autograd.grad(loss, xi)  # input gradient only, as attacks
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])  # the first is a warm-up


#: the functions whose cumulative time the profile of ours reports: (label, file suffix, function name)
PARTS = (("model forward passes (counted; the anytime tracker's looks included)", "counting.py", "_query"),
         ("backward passes", "autograd/__init__.py", "grad"),
         ("cost evaluations and gradients", "costs/base.py", "unchecked"),
         ("anytime tracker", "attacks/anytime.py", "observe"))


def profile_ours(model, batches, budget: int) -> dict:
    atk = HumanPercOT(budget=budget)
    atk.max_passes = budget
    pr = cProfile.Profile()
    pr.enable()
    t = time.perf_counter()
    for xb, yb in batches:
        atk(model, xb, yb)
    total = time.perf_counter() - t
    pr.disable()
    stats = pstats.Stats(pr).stats
    out = {"total_s": total}
    for lab, suffix, fn in PARTS:
        out[lab] = sum(v[3] for (f, _, name), v in stats.items() if f.endswith(suffix) and name == fn)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="imagenet-samples")
    p.add_argument("--model", default="efficientnet-lite0")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--limit", type=int, default=8, help="first N correctly classified images")
    p.add_argument("--budget", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layout", choices=("fast", "default"), default="fast")
    p.add_argument("--json", default="benchmarks/results/attack_timing.json")
    a = p.parse_args()
    model = get(a.model, progress=False)
    if a.layout == "fast":
        model = fast_layout(model)
    ds = load(a.dataset)
    ok = model.predict(ds.images, 10) == ds.labels
    x, y = ds.images[ok][: a.limit], ds.labels[ok][: a.limit]
    batches = [(x[i:i + a.batch], y[i:i + a.batch]) for i in range(0, len(y), a.batch)]
    attacks = [HumanPercOT(budget=a.budget), PGDL2(), PerCAL(max_iterations=2 * a.budget),
               BoundaryProjection(steps=a.budget)]
    if adv_lib_available():
        attacks += [DDN(steps=a.budget), FMN(steps=a.budget)]
    for atk in attacks:
        atk.max_passes = a.budget
    names = [label(atk) for atk in attacks]
    times = {m: [] for m in names}
    bare, bare_fwd = [], []
    passes, counts = {}, {}
    for _ in range(a.repeats):  # interleaved: every method sees the same machine state
        bare.append(sum(forward_backward_time(model, xb, yb, 5) for xb, yb in batches) / len(y))
        bare_fwd.append(sum(forward_backward_time(model, xb, yb, 5, backward=False) for xb, yb in batches) / len(y))
        for m, atk in zip(names, attacks):
            res = [atk(model, xb, yb) for xb, yb in batches]
            times[m].append(sum(r.time_s for r in res))
            passes[m] = float(torch.cat([r.passes for r in res]).sum())
            counts[m] = (float(torch.cat([r.forwards for r in res]).sum()),
                         float(torch.cat([r.backwards for r in res]).sum()))
    t_bare, t_fwd = statistics.median(bare), statistics.median(bare_fwd)
    t_bwd = max(t_bare - t_fwd, 0.0)
    rows = {}
    for m in names:
        per_pass = statistics.median(times[m]) / max(passes[m], 1e-9)
        fwd, bwd = counts[m]
        work = fwd * t_fwd + bwd * t_bwd  # the model's own seconds for the passes the attack was counted
        rows[m] = {"time_s": statistics.median(times[m]), "passes": passes[m], "forwards": fwd, "backwards": bwd,
                   "s_per_pass_and_image": per_pass, "overhead_vs_bare_model": per_pass / t_bare,
                   "overhead_vs_model_work": statistics.median(times[m]) / max(work, 1e-9)}
    prof = profile_ours(model, batches, a.budget)
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "threads": torch.get_num_threads(),
                       "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
           "dataset": a.dataset, "model": a.model, "layout": a.layout, "images": len(y), "batch": a.batch, "budget": a.budget,
           "repeats": a.repeats, "bare_forward_backward_s_per_image": t_bare, "bare_forward_s_per_image": t_fwd,
           "methods": rows, "profile_ours": prof}
    print(f"{a.model}, {len(y)} images in batches of {a.batch}, budget {a.budget} passes, median of {a.repeats} "
          f"interleaved runs; bare forward+backward {1000 * t_bare:.1f} ms per image")
    print(f"bare forward alone {1000 * t_fwd:.1f} ms per image")
    print(f"{'method':24s}{'time s':>9s}{'passes':>9s}{'fwd/bwd':>13s}{'ms/pass':>9s}{'overhead':>10s}{'vs work':>9s}")
    for m, r in rows.items():
        print(f"{m:24s}{r['time_s']:9.2f}{r['passes']:9.0f}{r['forwards']:7.0f}/{r['backwards']:<5.0f}"
              f"{1000 * r['s_per_pass_and_image']:9.1f}{r['overhead_vs_bare_model']:10.3f}{r['overhead_vs_model_work']:9.3f}")
    print("ours, profiled: " + ", ".join(f"{k} {v:.2f} s" for k, v in prof.items()))
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
