"""How many of a benchmark's successes were images nobody queried within the budget: the minimal benchmark's attacks
(``--full``) on the protocol's MNIST tune digits (never its test digits), their successes and passes as the installed
package counts them. Run it under two versions of the package (``PYTHONPATH=<worktree>/src``) and compare: before
c98407e an attack's last image, which its tracker had not seen, was judged by the harness's uncounted look; since
(789b46a), it is the attack's last counted query where its budget allows (unless it is the clean image), else a failure.

    python benchmarks/last_look.py --out benchmarks/results/last_look_789b46a.json
    PYTHONPATH=../pinned-fe5d1e3/src python benchmarks/last_look.py --out benchmarks/results/last_look_fe5d1e3.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import tomllib
import torch

import imperceptible
from imperceptible.attacks.margins import classified_correctly
from imperceptible.data import load
from imperceptible.errors import ParameterError
from imperceptible.experiments.bench_minimal import BenchMinimalConfig, minimal_attacks
from imperceptible.models import get

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mnist-cnn-robust")
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--n", type=int, default=100, help="tune digits (the protocol's [splits.mnist] tune, in order)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    tune = tomllib.loads((ROOT / "benchmarks/protocols/minimal.toml").read_text())["splits"]["mnist"]["tune"][: a.n]
    ds = load("mnist")
    idx = [ds.ids.index(i) for i in tune]
    x, y = ds.images[idx], ds.labels[idx]
    model = get(a.model).eval()
    attacks, left_out = minimal_attacks(BenchMinimalConfig(dataset="mnist", model=a.model, budget=a.budget, full=True))
    out = {"package": imperceptible.__file__, "commit": subprocess.run(
        ["git", "-C", str(Path(imperceptible.__file__).parent), "rev-parse", "HEAD"], capture_output=True,
        text=True).stdout.strip(), "model": a.model, "budget": a.budget, "ids": tune, "left_out": left_out,
        "attacks": {}}
    for name, atk in attacks.items():
        try:
            r = atk(model, x, y)
        except ParameterError as e:  # an attack that refuses 28x28 images (ALMA's LPIPS): said in the output
            out["left_out"][name] = str(e)
            continue
        attacked = classified_correctly(r.clean_margin)
        out["attacks"][name] = {"attacked": int(attacked.sum()), "success": [bool(s) for s in r.success],
                                "fooled": int((r.success & attacked).sum()), "passes": r.passes.tolist(),
                                "mean_passes": float(r.passes[attacked].mean()) if attacked.any() else None}
        print(name, out["attacks"][name]["fooled"], "of", out["attacks"][name]["attacked"], flush=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
