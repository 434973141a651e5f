"""Algorithms 2 and 3 of Hua et al. (2021), mini-batched (DESIGN.md §3).

**Algorithm 2** (:func:`build_adversarial_dataset`) starts from ``D = {(x_i, y_i, P_i = 1)}``. For each
of ``T1`` epochs it draws ``N`` samples from ``D`` with probability ``P_i / sum P`` (with replacement)
and walks through them in mini-batches. Each batch takes an SGD step on the cross-entropy scaled by
``P_i / mean(P_batch)``, then the attack (any :class:`~imperceptible.attacks.base.Attack`) is run on the
batch at the current model. Each adversarial example is appended to ``D`` with weight
``P = (k - 1) N + i``, ``i`` its position in the epoch. The result is ``D`` (``N + T1 N`` rows) and the
model.

**Algorithm 3** (:func:`sample_model`) trains from ``theta0`` for ``T2`` passes of ``M`` draws from ``D``
with probability ``P / sum P``, with the same weighted SGD step; different seeds give the K models of
a family.

Defaults follow the paper's Table 5: SGD, learning rate 0.1, ``T1 = T2 = 3``; its "momentum 5e-4" is
read as weight decay 5e-4.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..attacks.base import Attack
from ..validation import check_images, check_int, check_labels, check_positive
from .kmeans_cache import KMeansCache


@dataclass
class WeightedDataset:
    """Algorithm 2's output: images, labels, weights ``P``, whether each row is adversarial, the index
    of the original sample each row comes from, and whether an adversarial row came from the k-means
    cache (a centre's perturbation) rather than from a run of the attack."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor
    adversarial: torch.Tensor
    origin: torch.Tensor
    cached: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.cached is None:
            self.cached = torch.zeros(self.x.shape[0], dtype=torch.bool)

    def __len__(self) -> int:
        return self.x.shape[0]

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` atomically; 8-bit images (the attacks' output) are stored as ``uint8``."""
        u = (self.x * 255).round()
        x = u.to(torch.uint8) if torch.equal(u / 255, self.x) else self.x
        return atomic_save({"x": x, "y": self.y, "weight": self.weight, "adversarial": self.adversarial,
                            "origin": self.origin, "cached": self.cached}, path)

    @classmethod
    def load(cls, path: str | Path) -> "WeightedDataset":
        d = torch.load(path, weights_only=True)
        x = d.pop("x")
        return cls(x.float() / 255 if x.dtype == torch.uint8 else x, **d)


def atomic_save(obj, path: str | Path) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def weighted_indices(weight: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` indices drawn with replacement with probability ``weight / weight.sum()``."""
    return torch.multinomial(weight.double() / weight.double().sum(), n, replacement=True, generator=generator)


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    """One SGD step on the P-weighted cross-entropy. An :class:`ImageClassifier` refuses training mode in
    its checked forward, so its network is trained through ``prepare`` directly."""
    model.train()
    logits = model.net(model.prepare(x)) if hasattr(model, "prepare") else model(x)
    loss = (F.cross_entropy(logits, y, reduction="none") * (w / w.mean())).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    return float(loss.detach())


def build_adversarial_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
                              lr: float = 0.1, weight_decay: float = 5e-4, epochs: int = 3, batch_size: int = 64,
                              seed: int = 0, cache: KMeansCache | None = None,
                              checkpoint: str | Path | None = None,
                              progress: bool = True) -> tuple[WeightedDataset, nn.Module]:
    """Algorithm 2. ``model`` is trained in place (a classifier taking ``[0, 1]`` images).

    With ``checkpoint`` (a file path) the whole state - model, optimiser, random generators, ``D`` so far
    and the cache - is written after every epoch, and a call that finds the file resumes after the last
    finished epoch; the result is the same as an uninterrupted run's.
    """
    check_images(x, "x")
    y = check_labels(y, x.shape[0])
    check_positive("lr", lr)
    check_int("epochs", epochs, minimum=1)
    N = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    xs, ys, ws = [x], [y], [torch.ones(N)]
    adv_flags, origins, cached = [torch.zeros(N, dtype=torch.bool)], [torch.arange(N)], [torch.zeros(N, dtype=torch.bool)]
    first = 1
    rng_state = None
    if checkpoint is not None and Path(checkpoint).is_file():
        st = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["generator"])
        rng_state = st["torch_rng"]
        d = WeightedDataset(**st["data"])
        xs, ys, ws = [d.x], [d.y], [d.weight]
        adv_flags, origins, cached = [d.adversarial], [d.origin], [d.cached]
        if cache is not None:
            cache.load_state(st["cache"])
        first = st["epoch"] + 1
    bar = tqdm(total=epochs * N, initial=(first - 1) * N, desc="Algorithm 2", disable=not progress, unit="img")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout, inside the fork only: the caller's global RNG is restored after
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        for k in range(first, epochs + 1):
            W = torch.cat(ws)
            pool_x, pool_y, pool_o = torch.cat(xs), torch.cat(ys), torch.cat(origins)
            draw = weighted_indices(W, N, g)
            for s in range(0, N, batch_size):
                idx = draw[s : s + batch_size]
                xb, yb, wb, ob = pool_x[idx], pool_y[idx], W[idx], pool_o[idx]
                _sgd_step(model, opt, xb, yb, wb)
                hit = torch.zeros(idx.numel(), dtype=torch.bool)
                if cache is not None:
                    adv, hit = cache.try_cached(model, xb, yb, ob)
                    if (~hit).any():
                        miss = torch.nonzero(~hit).squeeze(1)
                        adv[miss] = attack(model, xb[miss], yb[miss]).adv
                    cache.update(ob, xb, adv)
                else:
                    adv = attack(model, xb, yb).adv
                pos = torch.arange(s + 1, s + 1 + idx.numel(), dtype=torch.float32)
                xs.append(adv.detach())
                ys.append(yb)
                ws.append((k - 1) * N + pos)
                adv_flags.append(torch.ones(idx.numel(), dtype=torch.bool))
                origins.append(ob)
                cached.append(hit)
                bar.update(idx.numel())
            if checkpoint is not None:
                data = WeightedDataset(torch.cat(xs), torch.cat(ys), torch.cat(ws), torch.cat(adv_flags),
                                       torch.cat(origins), torch.cat(cached))
                atomic_save({"epoch": k, "model": model.state_dict(), "opt": opt.state_dict(),
                             "generator": g.get_state(), "torch_rng": torch.get_rng_state(), "data": asdict(data),
                             "cache": cache.state() if cache is not None else None}, checkpoint)
    bar.close()
    data = WeightedDataset(torch.cat(xs), torch.cat(ys), torch.cat(ws), torch.cat(adv_flags), torch.cat(origins),
                           torch.cat(cached))
    return data, model.eval()


def sample_model(theta0: nn.Module, data: WeightedDataset, *, lr: float = 0.1, weight_decay: float = 5e-4,
                 epochs: int = 3, batch_size: int = 64, seed: int = 0, progress: bool = False) -> nn.Module:
    """Algorithm 3: one model trained from a copy of ``theta0`` on weighted draws from ``data``."""
    check_int("epochs", epochs, minimum=1)
    model = copy.deepcopy(theta0)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    M = len(data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout, inside the fork only
        for _ in tqdm(range(epochs), desc=f"Algorithm 3 (seed {seed})", disable=not progress):
            draw = weighted_indices(data.weight, M, g)
            for s in range(0, M, batch_size):
                idx = draw[s : s + batch_size]
                _sgd_step(model, opt, data.x[idx], data.y[idx], data.weight[idx])
    return model.eval()
