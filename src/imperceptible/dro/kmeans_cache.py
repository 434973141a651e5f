"""The k-means speed-up of the paper's Appendix D, and the one call Algorithm 2 makes per batch.

The images of each label are clustered (about ``per_cluster`` images a cluster, scikit-learn's KMeans with
``random_state``); the image nearest each cluster mean is its *centre*. For a batch, :meth:`BatchAttacker.attack`
does everything in one call: an image the model already misclassifies needs no attack (counted apart, never
as a saved call); an image whose centre has a stored perturbation first tries it, and if that fools the model
the attack call is saved; the attack runs on the rest; with several processes the batch's slices are gathered
so every rank holds the same result; the centres among the batch store their new perturbations (so they
refresh every epoch); the counters are updated. :class:`BatchAttacker` alone (no cache) is the same call
without the cache.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.cluster import KMeans

from ..attacks.base import Attack, margin, quantize_8bit
from ..engine import Engine

#: per-sample outcome codes of :meth:`BatchAttacker.attack`
ATTACKED, FROM_CACHE, NOT_NEEDED = 0, 1, 2


class BatchAttacker:
    """Attack a (possibly sharded) batch: the plain strategy, without a cache."""

    def __init__(self) -> None:
        self.counts = {"attacked": 0, "from_cache": 0, "not_needed": 0}

    @torch.no_grad()
    def attack(self, model, attack: Attack, xb: torch.Tensor, yb: torch.Tensor, key: torch.Tensor, *,
               part: slice = slice(None), engine: Engine | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attack rows ``part`` of the batch ``xb`` (on ``model``'s device) and return, for the whole batch
        (gathered over ranks), the images, whether each fools the model (margin > 0) and its outcome code.
        ``key`` names each row's cache slot (the index of its original image)."""
        dev = next((t.device for t in (*model.parameters(), *model.buffers())), xb.device)
        x, y, k = xb[part].to(dev), yb[part].to(dev), key[part]
        adv, fooled, status = self._attack_local(model, attack, x, y, k)
        adv, fooled, status = adv.detach().cpu(), fooled.cpu(), status.cpu()
        if engine is not None and engine.world_size > 1:  # every rank gets the whole batch, in rank order
            parts = engine.all_gather_object((adv, fooled, status))
            adv, fooled, status = (torch.cat([p[i] for p in parts]) for i in range(3))
        self._record(status)
        self._update(key, xb, adv, status)
        return adv, fooled, status

    def _attack_local(self, model, attack, x, y, key):
        status = torch.full((x.shape[0],), ATTACKED, dtype=torch.long)
        needed = ~(margin(model(quantize_8bit(x)), y) > 0).cpu()
        status[~needed] = NOT_NEEDED
        adv, fooled = x.clone(), (~needed).clone()
        self._from_cache(model, x, y, key, needed, adv, fooled, status)
        todo = needed & (status == ATTACKED)
        if todo.any():
            idx = todo.nonzero().squeeze(1)
            res = attack(model, x[idx.to(x.device)], y[idx.to(y.device)])
            adv[idx.to(x.device)] = res.adv
            fooled[idx] = res.success.cpu()
        return adv, fooled, status

    def _from_cache(self, model, x, y, key, needed, adv, fooled, status) -> None:
        """Fill ``adv``/``fooled``/``status`` in place for the rows a cache serves (none here)."""

    def _record(self, status: torch.Tensor) -> None:
        self.counts["attacked"] += int((status == ATTACKED).sum())
        self.counts["from_cache"] += int((status == FROM_CACHE).sum())
        self.counts["not_needed"] += int((status == NOT_NEEDED).sum())

    def _update(self, key, xb, adv, status) -> None:
        pass

    def stats(self) -> dict:
        c = self.counts
        needing = c["attacked"] + c["from_cache"]
        return {"attack_calls_run": c["attacked"], "attack_calls_saved": c["from_cache"],
                "no_attack_needed": c["not_needed"],
                "saved_fraction": c["from_cache"] / needing if needing else None}

    def state(self) -> dict:
        return {"counts": dict(self.counts)}

    def load_state(self, state: dict) -> None:
        self.counts = dict(state["counts"])


class KMeansCache(BatchAttacker):
    """The cache: clusters per label (``per_cluster`` images each) of the images ``x``, indexed ``0..n-1``
    (the keys :meth:`attack` receives).

    Examples:
        >>> import torch
        >>> from imperceptible.dro import KMeansCache
        >>> from imperceptible.data import load
        >>> ds = load("mnist-test20")
        >>> cache = KMeansCache(ds.images, ds.labels, per_cluster=5)
        >>> bool((cache.centre_of[cache.centres] == cache.centres).all())  # a centre is its own centre
        True
        >>> cache.stats()["attack_calls_saved"]
        0
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, per_cluster: int = 5, random_state: int = 0) -> None:
        super().__init__()
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

    @property
    def centres(self) -> torch.Tensor:
        return torch.unique(self.centre_of)

    def is_centre(self, key: torch.Tensor) -> torch.Tensor:
        return self.centre_of[key] == key

    def _from_cache(self, model, x, y, key, needed, adv, fooled, status) -> None:
        """Rows whose centre has a stored perturbation try it; where it fools the model, the call is saved."""
        centre = self.centre_of[key]
        usable = needed & (centre != key) & torch.tensor([int(c) in self.delta for c in centre], dtype=torch.bool)
        if not usable.any():
            return
        pos = usable.nonzero().squeeze(1)
        cand = torch.stack([quantize_8bit(x[j] + self.delta[int(centre[j])].to(x.device)) for j in pos.tolist()])
        ok = (margin(model(cand), y[pos.to(y.device)]) > 0).cpu()
        adv[pos[ok].to(x.device)] = cand[ok.to(cand.device)]
        fooled[pos[ok]] = True
        status[pos[ok]] = FROM_CACHE

    def _update(self, key, xb, adv, status) -> None:
        """Store the perturbations the attack found for the centres among the batch."""
        for j in torch.nonzero(self.is_centre(key) & (status == ATTACKED)).squeeze(1).tolist():
            self.delta[int(key[j])] = (adv[j] - xb[j]).detach().clone()

    def state(self) -> dict:
        """What a checkpoint needs to resume: the centres' perturbations and the counters."""
        keys = sorted(self.delta)
        return {"centres": torch.tensor(keys, dtype=torch.long),
                "delta": torch.stack([self.delta[k] for k in keys]) if keys else torch.empty(0),
                "counts": dict(self.counts)}

    def load_state(self, state: dict) -> None:
        self.delta = {int(k): d.clone() for k, d in zip(state["centres"].tolist(), state["delta"])}
        self.counts = dict(state["counts"])

    def stats(self) -> dict:
        return {**super().stats(), "clusters": int(self.centres.numel())}


__all__ = ["ATTACKED", "BatchAttacker", "FROM_CACHE", "KMeansCache", "NOT_NEEDED"]
