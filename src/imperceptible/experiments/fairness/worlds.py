"""The replicates' worlds: each independent replicate R draws its own simulated world (for geo-fashion: its own
images, country assignment and cue draws, from a seed derived from the study's seed and R), so that the variation
of the world itself is sampled; a real dataset has one world, and its replicates differ in their training subset
and seeds only. Worlds are rebuilt deterministically, one at a time."""

from __future__ import annotations

import torch

from ...data.grouped import GroupedSplits, grouped_splits
from ...seeds import derive
from .config import FairnessConfig


class Worlds:
    """``worlds[r]``: the splits of replicate ``r`` (the last one kept in memory)."""

    def __init__(self, cfg: FairnessConfig) -> None:
        self.cfg = cfg
        self._r: int | None = None
        self._splits: GroupedSplits | None = None

    def seed(self, r: int) -> int:
        """The world seed of replicate ``r`` (geo-fashion; a real dataset's split uses the study's seed)."""
        return derive(self.cfg.seed, "world", r, bits=31) if self.cfg.dataset == "geo-fashion" else self.cfg.seed

    def __getitem__(self, r: int) -> GroupedSplits:
        if self._splits is None or self._r != r:
            cfg = self.cfg
            self._splits = grouped_splits(cfg.dataset, covariates=cfg.covariates, size=cfg.size, seed=self.seed(r),
                                          design=cfg.design)
            self._r = r
        return self._splits

    def subset(self, r: int) -> torch.Tensor:
        """The indices (into the world's training split) of replicate ``r``'s Algorithm 2 subset."""
        train = self[r].train
        g = torch.Generator().manual_seed(derive(self.cfg.seed, "subset", r))
        return torch.randperm(len(train), generator=g)[: min(self.cfg.dro_size, len(train))].sort().values


__all__ = ["Worlds"]
