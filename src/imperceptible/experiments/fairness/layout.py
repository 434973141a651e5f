"""The one owner of every path in a fairness-study directory (beside the run directory's own contract)::

    pretrain/rR.json               the pre-trained model of world R: its evaluation
    algorithm2/FAMILY/rR.json      Algorithm 2 of FAMILY in world R: calls, mechanism, the model's evaluation
    algorithm2/FAMILY/rR.dataset.pt    its weighted dataset D (8-bit images, weights, flags, origins)
    algorithm2/FAMILY/rR.checkpoint.pt written after each epoch while it runs
    gates.json                     the manipulation checks, fixed before any Algorithm 3 run (--worlds-per-call:
                                   computed after it, from the same records by the same rule)
    algorithm3/ARM/rR_kK.json      one sampled model: its evaluation (a crash loses no finished model)
    models/...                     every model's weights
    models.csv, accuracy/rR.csv    one row per model; per world the ``fairness test`` table
"""

from __future__ import annotations

from pathlib import Path

#: the top-level entries a study writes beside the run-directory contract (``--overwrite`` may delete these)
OWNED = ("pretrain", "algorithm2", "algorithm3", "models", "gates.json", "models.csv", "accuracy")


def _arm(arm: str) -> str:
    return arm.replace("/", "_")


class StudyLayout:
    """Paths of one study directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def pretrain(self, r: int) -> Path:
        return self.root / "pretrain" / f"r{r}.json"

    def pretrain_model(self, r: int) -> Path:
        return self.root / "models" / f"theta0_r{r}.pt"

    def algorithm2(self, family: str, r: int, what: str = "json") -> Path:
        """``what``: ``json``, ``dataset``, ``checkpoint`` or ``model``."""
        if what == "model":
            return self.root / "models" / family / f"algorithm2_r{r}.pt"
        suffix = {"json": ".json", "dataset": ".dataset.pt", "checkpoint": ".checkpoint.pt"}[what]
        return self.root / "algorithm2" / family / f"r{r}{suffix}"

    def algorithm3(self, arm: str, r: int, k: int, what: str = "json") -> Path:
        if what == "model":
            return self.root / "models" / _arm(arm) / f"r{r}_k{k}.pt"
        return self.root / "algorithm3" / _arm(arm) / f"r{r}_k{k}.json"

    @property
    def gates(self) -> Path:
        return self.root / "gates.json"

    @property
    def models_csv(self) -> Path:
        return self.root / "models.csv"

    def accuracy_csv(self, r: int) -> Path:
        return self.root / "accuracy" / f"r{r}.csv"

    def plot(self, name: str) -> Path:
        return self.root / "plots" / f"{name}.png"


__all__ = ["OWNED", "StudyLayout"]
