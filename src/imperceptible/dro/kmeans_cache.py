"""The k-means speed-up of the paper's Appendix D.

The images of each label are clustered (about ``per_cluster`` images a cluster, scikit-learn's KMeans
with ``random_state``); the image nearest each cluster mean is its *centre*. During Algorithm 2 an image
first tries its centre's current perturbation; only if that does not fool the model is the attack run.
Centres are always attacked themselves, so their perturbations refresh every epoch. The cache counts
the attack calls it saved.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.cluster import KMeans

from ..attacks.base import margin, quantize_8bit


class KMeansCache:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, per_cluster: int = 5, random_state: int = 0) -> None:
        n = x.shape[0]
        self.centre_of = torch.empty(n, dtype=torch.long)
        flat = x.flatten(1).numpy()
        for label in torch.unique(y).tolist():
            idx = torch.nonzero(y == label).squeeze(1).numpy()
            k = max(1, math.ceil(len(idx) / per_cluster))
            km = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(flat[idx])
            for c in range(k):
                members = idx[km.labels_ == c]
                d = np.linalg.norm(flat[members] - km.cluster_centers_[c], axis=1)
                self.centre_of[torch.as_tensor(members)] = int(members[np.argmin(d)])
        self.delta: dict[int, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    @property
    def centres(self) -> torch.Tensor:
        return torch.unique(self.centre_of)

    def is_centre(self, index: torch.Tensor) -> torch.Tensor:
        return self.centre_of[index] == index

    @torch.no_grad()
    def try_cached(self, model, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                   count: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """For each sample (not a centre) whose centre has a perturbation, try it: returns (images, fooled).
        ``count=False`` leaves the counters to the caller (:meth:`count`), e.g. after gathering ranks."""
        out = x.clone()
        centre = self.centre_of[index]
        usable = (centre != index) & torch.tensor([int(c) in self.delta for c in centre], dtype=torch.bool)
        fooled = torch.zeros(x.shape[0], dtype=torch.bool)
        if usable.any():
            cand = torch.stack([quantize_8bit(x[j] + self.delta[int(centre[j])].to(x.device))
                                for j in torch.nonzero(usable).squeeze(1).tolist()])
            ok = (margin(model(cand), y[usable]) > 0).cpu()
            pos = torch.nonzero(usable).squeeze(1)
            out[pos[ok]] = cand[ok]
            fooled[pos[ok]] = True
        if count:
            self.count(fooled)
        return out, fooled

    def count(self, fooled: torch.Tensor) -> None:
        """Add a batch's outcomes: ``True`` = the centre's perturbation was used (an attack call saved)."""
        self.hits += int(fooled.sum())
        self.misses += int((~fooled).sum())

    def update(self, index: torch.Tensor, x: torch.Tensor, adv: torch.Tensor) -> None:
        """Store the perturbations of the centres among ``index``."""
        for j in torch.nonzero(self.is_centre(index)).squeeze(1).tolist():
            self.delta[int(index[j])] = (adv[j] - x[j]).detach().clone()

    def state(self) -> dict:
        """What a checkpoint needs to resume: the centres' perturbations and the counters."""
        keys = sorted(self.delta)
        return {"centres": torch.tensor(keys, dtype=torch.long),
                "delta": torch.stack([self.delta[k] for k in keys]) if keys else torch.empty(0),
                "hits": self.hits, "misses": self.misses}

    def load_state(self, state: dict) -> None:
        self.delta = {int(k): d.clone() for k, d in zip(state["centres"].tolist(), state["delta"])}
        self.hits, self.misses = int(state["hits"]), int(state["misses"])

    def stats(self) -> dict:
        total = self.hits + self.misses
        return {"attack_calls_saved": self.hits, "attack_calls_run": self.misses,
                "saved_fraction": self.hits / total if total else None, "clusters": int(self.centres.numel())}
