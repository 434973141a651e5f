"""The model pass itself, option by option (issue 34, item 3): channels-last memory layout, ``torch.compile``,
``torch.inference_mode`` for forward-only passes, and the thread count, on EfficientNet-Lite0 and the MNIST CNNs.
Each option is timed against the current path in the same run (interleaved repeats, medians) and its logits and
input gradients are compared with the current path's (largest absolute difference), so that an option is adopted
only where it is faster and equal within a stated tolerance.

    python benchmarks/model_speed.py [--repeats 5] [--json benchmarks/results/model_speed.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from imperceptible.data import load
from imperceptible.models import get


def _pass(model, x, y, *, grad: bool, inference: bool = False):
    """One forward (and backward to the input, as the attacks take it) of ``model``; returns (logits, gradient)."""
    if not grad:
        ctx = torch.inference_mode() if inference else torch.no_grad()
        with ctx:
            return model(x), None
    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xi)
    return logits.detach(), g


def _time(model, x, y, **kw) -> float:
    t = time.perf_counter()
    _pass(model, x, y, **kw)
    return time.perf_counter() - t


def options(name: str, batch: int):
    """``{option: (model, how to run it)}`` for one model."""
    base = get(name, progress=False)
    opts = {"current": (base, {})}
    channels_last = copy.deepcopy(base)
    channels_last.net = channels_last.net.to(memory_format=torch.channels_last)
    opts["channels-last"] = (channels_last, {})
    compiled = copy.deepcopy(base)
    with contextlib.suppress(Exception):
        compiled.net = torch.compile(compiled.net, dynamic=False)
        opts["torch.compile"] = (compiled, {})
    return opts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default="benchmarks/results/model_speed.json")
    a = p.parse_args()
    results = {}
    for name, data, batch in (("efficientnet-lite0", "imagenet-samples", 8), ("mnist-cnn", "mnist", 64),
                              ("mnist-cnn-b", "mnist", 64)):
        ds = load(data)
        x, y = ds.images[:batch], ds.labels[:batch]
        opts = options(name, batch)
        failed: dict[str, str] = {}
        ref_logits, ref_grad = _pass(opts["current"][0], x, y, grad=True)
        rows = {}
        for threads in sorted({1, torch.get_num_threads()}):
            torch.set_num_threads(threads)
            for opt, (model, _) in list(opts.items()):
                try:
                    _pass(model, x, y, grad=True)  # warm-up (and compilation)
                except Exception as e:  # noqa: BLE001 - an option that does not run here is reported, not timed
                    failed[opt] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                    del opts[opt]
            times: dict[str, list[float]] = {opt: [] for opt in opts}
            fwd: dict[str, list[float]] = {"no_grad": [], "inference_mode": []}
            current = opts["current"][0]
            for _ in range(a.repeats):  # interleaved
                for opt, (model, _) in opts.items():
                    times[opt].append(_time(model, x, y, grad=True))
                fwd["no_grad"].append(_time(current, x, y, grad=False))
                fwd["inference_mode"].append(_time(current, x, y, grad=False, inference=True))
            for opt, (model, _) in opts.items():
                logits, g = _pass(model, x, y, grad=True)
                rows[f"{opt}, {threads} thread(s)"] = {
                    "forward_backward_ms_per_image": 1000 * statistics.median(times[opt]) / batch,
                    "speed_up": statistics.median(times["current"]) / statistics.median(times[opt]),
                    "max_logit_difference": float((logits - ref_logits).abs().max()),
                    "max_gradient_difference": float((g - ref_grad).abs().max()),
                }
            for k, v in fwd.items():
                rows[f"forward only, {k}, {threads} thread(s)"] = {
                    "forward_ms_per_image": 1000 * statistics.median(v) / batch,
                    "speed_up": statistics.median(fwd["no_grad"]) / statistics.median(v)}
        results[name] = {"batch": batch, "rows": rows, "failed": failed}
        for k, r in rows.items():
            print(f"{name:20s} {k:42s} " + "  ".join(f"{kk} {vv:.4g}" for kk, vv in r.items()))
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "threads": torch.get_num_threads(), "torch": torch.__version__},
           "repeats": a.repeats, "models": results}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
