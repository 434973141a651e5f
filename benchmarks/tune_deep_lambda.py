"""How Human_Perc_OT's calibrated lambda was chosen for a deep cost (LPIPS, DISTS): a sweep on the first
correctly classified foolbox photos, every cell judged by three measures (the cost itself and two it does
not optimise). This is our method's tuning, done openly; no judge or baseline is tuned.

    python benchmarks/tune_deep_lambda.py --cost dists --lams 0 0.1 0.3 1 3 10 --n 8 --json out.json

Prints one row per lambda (success, mean steps, seconds, LPIPS x1000, 1-SSIM x1000, DISTS x1000 over the
fooled images) and writes them as JSON. On 2 CPU cores, 8 photos take 15-90 s per lambda.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import imperceptible.attacks as A
import imperceptible.costs as C
import imperceptible.data as D
import imperceptible.models as M

JUDGES = ("lpips", "ssim", "dists")


def sweep(cost: str, lams: list[float], n: int) -> list[dict]:
    model, ds = M.get("efficientnet-lite0"), D.load("imagenet-samples")
    ok = model.predict(ds.images, 10) == ds.labels
    x, y = ds.images[ok][:n], ds.labels[ok][:n]
    judges = {k: C.get(k) for k in JUDGES}
    rows = []
    for lam in lams:
        r = A.HumanPercOT(cost=cost, lam=lam)(model, x, y)
        s = r.success
        with torch.no_grad():
            scores = {f"{k}_x1000": float(j(r.adv, x)[s].mean()) * 1000 for k, j in judges.items()}
        rows.append({"cost": cost, "lam": lam, "n": int(len(y)), "success": int(s.sum()),
                     "mean_steps": float(r.steps.float().mean()), "time_s": r.time_s, **scores})
        print(f"lam {lam:<5g} success {int(s.sum())}/{len(y)}  steps {rows[-1]['mean_steps']:5.1f}  "
              f"{r.time_s:6.1f} s  " + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cost", default="lpips")
    p.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0, 3.0, 10.0])
    p.add_argument("--n", type=int, default=8, help="first N correctly classified photos")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    rows = sweep(a.cost, a.lams, a.n)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
