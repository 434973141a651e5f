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

import contextlib
import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..attacks.base import Attack
from ..engine import Engine
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


def _trainable(model: nn.Module) -> nn.Module:
    """The module SGD trains: an :class:`ImageClassifier`'s network (its checked forward refuses training
    mode), otherwise the model itself."""
    return model.net if hasattr(model, "prepare") else model


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
              *, net: nn.Module | None = None, engine: Engine | None = None, w_total: float | None = None) -> float:
    """One SGD step on the P-weighted cross-entropy ``sum_i w_i ce_i / sum_i w_i`` of the batch.

    An :class:`ImageClassifier` refuses training mode in its checked forward, so its network is trained
    through ``prepare`` directly. Data-parallel: ``net`` is the DDP-wrapped network, ``x`` this rank's
    slice and ``w_total`` the weight of the whole batch; each rank's loss is scaled by the world size
    because DDP averages the ranks' gradients, so the step equals the single-process step.
    """
    model.train()
    net = net if net is not None else _trainable(model)
    logits = net(model.prepare(x)) if hasattr(model, "prepare") else net(x)
    world = engine.world_size if engine is not None else 1
    total = float(w.sum()) if w_total is None else w_total
    loss = (F.cross_entropy(logits.float(), y, reduction="none") * w).sum() * (world / total)
    opt.zero_grad()
    if engine is not None:
        engine.backward(loss)
    else:
        loss.backward()
    opt.step()
    model.eval()
    return float(loss.detach())


def _forked_rng(device) -> "contextlib.AbstractContextManager":
    """Fork the CPU RNG (and the GPU's, when training there) so seeding dropout leaves the caller's RNG."""
    d = torch.device(device)
    return torch.random.fork_rng(devices=[d.index or 0] if d.type == "cuda" else [])


def _local_slice(n: int, engine: Engine | None) -> slice:
    """This rank's contiguous part of a batch of ``n`` (the parts in rank order make up the batch)."""
    if engine is None or engine.world_size == 1:
        return slice(0, n)
    bounds = torch.linspace(0, n, engine.world_size + 1).round().long().tolist()
    return slice(bounds[engine.rank], bounds[engine.rank + 1])


def build_adversarial_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
                              lr: float = 0.1, weight_decay: float = 5e-4, epochs: int = 3, batch_size: int = 64,
                              seed: int = 0, cache: KMeansCache | None = None,
                              checkpoint: str | Path | None = None, engine: Engine | None = None,
                              progress: bool = True) -> tuple[WeightedDataset, nn.Module]:
    """Algorithm 2. ``model`` is trained in place (a classifier taking ``[0, 1]`` images).

    With ``checkpoint`` (a file path) the whole state - model, optimiser, random generators, ``D`` so far
    and the cache - is written after every epoch, and a call that finds the file resumes after the last
    finished epoch; the result is the same as an uninterrupted run's.

    With an ``engine`` of several processes it runs data-parallel: every rank draws the same batch, takes
    an SGD step on its slice (DDP averages the gradients), attacks its slice, and the adversarial
    examples of all slices are gathered so that every rank holds the same ``D`` and cache. Rank 0 writes
    the checkpoint.
    """
    check_images(x, "x")
    y = check_labels(y, x.shape[0])
    check_positive("lr", lr)
    check_int("epochs", epochs, minimum=1)
    engine = engine or Engine()
    dev = engine.device
    N = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    net = engine.data_parallel(_trainable(model))
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    xs, ys, ws = [x], [y], [torch.ones(N)]
    adv_flags, origins, cached = [torch.zeros(N, dtype=torch.bool)], [torch.arange(N)], [torch.zeros(N, dtype=torch.bool)]
    first = 1
    rng_state = None

    def collect() -> WeightedDataset:
        return WeightedDataset(torch.cat(xs), torch.cat(ys), torch.cat(ws), torch.cat(adv_flags),
                               torch.cat(origins), torch.cat(cached))

    if checkpoint is not None and Path(checkpoint).is_file():
        st = torch.load(checkpoint, weights_only=True, map_location="cpu")
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
    bar = tqdm(total=epochs * N, initial=(first - 1) * N, desc="Algorithm 2", unit="img",
               disable=not progress or not engine.is_main)
    with _forked_rng(dev):
        torch.manual_seed(seed + 7919 * engine.rank)  # dropout, inside the fork only; the caller's RNG is restored
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        for k in range(first, epochs + 1):
            W = torch.cat(ws)
            pool_x, pool_y, pool_o = torch.cat(xs), torch.cat(ys), torch.cat(origins)
            draw = weighted_indices(W, N, g)
            for s in range(0, N, batch_size):
                idx = draw[s : s + batch_size]
                part = _local_slice(idx.numel(), engine)
                xb, yb, wb, ob = pool_x[idx], pool_y[idx], W[idx], pool_o[idx]
                xl, yl = xb[part].to(dev), yb[part].to(dev)
                _sgd_step(model, opt, xl, yl, wb[part].to(dev), net=net, engine=engine, w_total=float(wb.sum()))
                hit = torch.zeros(xl.shape[0], dtype=torch.bool)
                if cache is not None:
                    adv, hit = cache.try_cached(model, xl, yl, ob[part], count=False)
                    if (~hit).any():
                        miss = torch.nonzero(~hit).squeeze(1)
                        adv[miss] = attack(model, xl[miss], yl[miss]).adv
                else:
                    adv = attack(model, xl, yl).adv
                adv, hit = adv.detach().cpu(), hit.cpu()
                if engine.world_size > 1:  # every rank gets the whole batch, in rank order
                    parts = engine.all_gather_object((adv, hit))
                    adv, hit = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
                if cache is not None:
                    cache.count(hit)
                    cache.update(ob, xb, adv)
                pos = torch.arange(s + 1, s + 1 + idx.numel(), dtype=torch.float32)
                xs.append(adv)
                ys.append(yb)
                ws.append((k - 1) * N + pos)
                adv_flags.append(torch.ones(idx.numel(), dtype=torch.bool))
                origins.append(ob)
                cached.append(hit)
                bar.update(idx.numel())
            if checkpoint is not None and engine.is_main:
                atomic_save({"epoch": k, "model": model.state_dict(), "opt": opt.state_dict(),
                             "generator": g.get_state(), "torch_rng": torch.get_rng_state(), "data": asdict(collect()),
                             "cache": cache.state() if cache is not None else None}, checkpoint)
    bar.close()
    return collect(), model.eval()


def sample_model(theta0: nn.Module, data: WeightedDataset, *, lr: float = 0.1, weight_decay: float = 5e-4,
                 epochs: int = 3, batch_size: int = 64, seed: int = 0, device: torch.device | str = "cpu",
                 progress: bool = False) -> nn.Module:
    """Algorithm 3: one model trained from a copy of ``theta0`` on weighted draws from ``data`` (on
    ``device``; the draws depend only on ``seed``)."""
    check_int("epochs", epochs, minimum=1)
    model = copy.deepcopy(theta0).to(device)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    M = len(data)
    with _forked_rng(device):
        torch.manual_seed(seed)  # dropout, inside the fork only
        for _ in tqdm(range(epochs), desc=f"Algorithm 3 (seed {seed})", disable=not progress):
            draw = weighted_indices(data.weight, M, g)
            for s in range(0, M, batch_size):
                idx = draw[s : s + batch_size]
                _sgd_step(model, opt, data.x[idx].to(device), data.y[idx].to(device), data.weight[idx].to(device))
    return model.eval()
