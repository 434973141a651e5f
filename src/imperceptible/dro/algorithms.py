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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..attacks.base import Attack
from ..validation import check_images, check_int, check_labels, check_positive
from .kmeans_cache import KMeansCache


@dataclass
class WeightedDataset:
    """Algorithm 2's output: images, labels, weights ``P``, whether each row is adversarial, and the index
    of the original sample each row comes from."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor
    adversarial: torch.Tensor
    origin: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


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
                              progress: bool = True) -> tuple[WeightedDataset, nn.Module]:
    """Algorithm 2. ``model`` is trained in place (a classifier taking ``[0, 1]`` images)."""
    check_images(x, "x")
    y = check_labels(y, x.shape[0])
    check_positive("lr", lr)
    check_int("epochs", epochs, minimum=1)
    N = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    xs, ys, ws, adv_flags, origins = [x], [y], [torch.ones(N)], [torch.zeros(N, dtype=torch.bool)], [torch.arange(N)]
    bar = tqdm(total=epochs * N, desc="Algorithm 2", disable=not progress, unit="img")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout, inside the fork only: the caller's global RNG is restored after
        for k in range(1, epochs + 1):
            W = torch.cat(ws)
            pool_x, pool_y, pool_o = torch.cat(xs), torch.cat(ys), torch.cat(origins)
            draw = weighted_indices(W, N, g)
            for s in range(0, N, batch_size):
                idx = draw[s : s + batch_size]
                xb, yb, wb, ob = pool_x[idx], pool_y[idx], W[idx], pool_o[idx]
                _sgd_step(model, opt, xb, yb, wb)
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
                bar.update(idx.numel())
    bar.close()
    data = WeightedDataset(torch.cat(xs), torch.cat(ys), torch.cat(ws), torch.cat(adv_flags), torch.cat(origins))
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
