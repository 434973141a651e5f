"""SSIM's time, ours (the Gaussian window as two one-dimensional passes over the five moment images at once) against
piq.ssim (five two-dimensional convolutions), forward only and forward with the backward of 1 - SSIM (issue 34).

    python benchmarks/ssim_speed.py [--batch 8] [--size 224] [--repeats 15] [--json benchmarks/results/ssim_speed.json]

The two are interleaved in every repeat and each reports its fastest repeat (another job on the cores only ever
adds time), for one thread and for every core. The values are checked equal before anything is timed."""

from __future__ import annotations

import argparse
import time

import piq
import torch

from imperceptible.costs.ssim import ssim_raw
from imperceptible.fileio import atomic_write_json
from imperceptible.runs.rundir import machine


def piq_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return piq.ssim(x, y, kernel_size=11, kernel_sigma=1.5, data_range=1.0, reduction="none", downsample=False)


def once(f, x: torch.Tensor, x0: torch.Tensor, backward: bool) -> float:
    t = time.perf_counter()
    if backward:
        xi = x.clone().requires_grad_(True)
        (1 - f(xi, x0)).sum().backward()
    else:
        with torch.no_grad():
            f(x, x0)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", default="benchmarks/results/ssim_speed.json")
    a = p.parse_args()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(a.batch, 3, a.size, a.size, generator=g)
    x = (x0 + torch.randint(-2, 3, x0.shape, generator=g).float() / 255).clamp(0, 1)
    diff = (ssim_raw(x.double(), x0.double()) - piq_ssim(x.double(), x0.double())).abs().max().item()
    if diff > 1e-12:
        raise SystemExit(f"ours and piq differ by {diff:.2e} in float64: nothing timed")
    cores = torch.get_num_threads()
    rows = []
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        for backward in (False, True):
            t = {"ours": [], "piq": []}
            for _ in range(a.repeats):
                t["ours"].append(once(ssim_raw, x, x0, backward))
                t["piq"].append(once(piq_ssim, x, x0, backward))
            best = {k: min(v) for k, v in t.items()}
            rows.append({"threads": threads, "pass": "forward and backward" if backward else "forward",
                         "ours_ms": 1000 * best["ours"], "piq_ms": 1000 * best["piq"],
                         "speedup": best["piq"] / best["ours"]})
            r = rows[-1]
            print(f"{threads} thread(s), {r['pass']:20s}: ours {r['ours_ms']:7.1f} ms, piq {r['piq_ms']:7.1f} ms, "
                  f"{r['speedup']:.2f}x")
    torch.set_num_threads(cores)
    out = {"machine": dict(machine(), torch=torch.__version__), "batch": a.batch, "size": a.size,
           "repeats": a.repeats, "statistic": "fastest repeat", "float64_difference": diff, "rows": rows}
    atomic_write_json(a.json, out)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
