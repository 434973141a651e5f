"""Seconds per image of every judge of the metric table, each as the run's meter computes it (float64 where the
metric table says ``exact``), on the bench photos with +-2 grey levels of noise: where a benchmark's judging time
goes, and why the anytime snapshots of ``bench minimal`` get the cheaper judges only (its ``ANYTIME_JUDGES``).

    python benchmarks/judge_speed.py [--images 8] [--repeats 2] [--json benchmarks/results/judge_speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from imperceptible.costs.metrics import judges
from imperceptible.data import load
from imperceptible.evaluate.evaluator import Evaluator
from imperceptible.experiments.bench_minimal import ANYTIME_JUDGES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/judge_speed.json")
    a = p.parse_args()
    ds = load("imagenet-samples")
    x = ds.images[: a.images]
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(-2, 3, x.shape, generator=g).float() / 255
    adv = (x + noise).clamp(0, 1)
    rows, unavailable = {}, {}
    for m in judges():
        ev = Evaluator.for_images(ds.images, saliency=None, defenses=[], keys=(m.key,))
        if m.key in ev.unavailable:
            unavailable[m.key] = ev.unavailable[m.key]
            continue
        ev.meter(adv[:2], x[:2])  # warm-up (weights, caches)
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            ev.meter(adv, x)
            times.append(time.perf_counter() - t)
        rows[m.key] = {"s_per_image": statistics.median(times) / len(x), "exact_float64": m.exact,
                       "anytime": m.key in ANYTIME_JUDGES}
        print(f"{m.label:28s} {1000 * rows[m.key]['s_per_image']:8.1f} ms per image"
              + ("  (anytime)" if m.key in ANYTIME_JUDGES else ""))
    total = sum(r["s_per_image"] for r in rows.values())
    cheap = sum(r["s_per_image"] for r in rows.values() if r["anytime"])
    print(f"every judge {total:.3f} s per image; the anytime judges {cheap:.3f} s ({cheap / total:.0%})")
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "threads": torch.get_num_threads(), "torch": torch.__version__},
           "images": len(x), "repeats": a.repeats, "judges": rows, "unavailable": unavailable,
           "every_judge_s_per_image": total, "anytime_judges_s_per_image": cheap}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
