"""Algorithms 2 and 3 of Hua et al. (2021), mini-batched, each in both of its readings.

**Algorithm 2** (:func:`build_adversarial_dataset`) starts from ``D = {(x_i, y_i, P_i = 1)}`` (the ``N``
originals). For each of ``T1`` epochs it draws ``N`` rows of ``D`` (see ``weighting``) and walks through
them in mini-batches: an SGD step on the batch, then the attack (any
:class:`~imperceptible.attacks.base.Attack`) at the current model, and the new rows are appended with
weight ``P = (k - 1) N + i`` (``i`` the row's position in the epoch). Two readings of what is attacked:

* ``reading="literal"`` (the algorithm as printed): the *sampled row* is attacked, whatever it is - an
  original or an adversarial row appended earlier - and Algorithm 1's output is appended, successful or not.
  Rows are then re-attacked across epochs and perturbations accumulate.
* ``reading="eq3"`` (equation 3's inner problem ``sup_x loss(x, y0) - lambda c(x, x0)``, which is defined for
  the *data point* ``x0``): the sampled row's *original* is attacked, so every stored perturbation is
  measured to an original image, and only successful attacks that changed the image are appended.

``weighting`` says where the weights ``P`` act: ``"sample"`` (default) draws rows with probability
``P / sum P`` and takes plain mini-batch gradients - an unbiased stochastic gradient of the P-weighted risk;
``"gradient"`` draws uniformly and scales each row's loss by ``P_i / mean(P_batch)``; ``"both"`` does both,
as lines 3 and 5 of the printed algorithms read together (each row then weighs ``P^2``: the originals,
``P = 1`` against up to ``T1 N``, hold almost no mass).

The result is ``D`` (a :class:`WeightedDataset`) and the model. **Algorithm 3** (:func:`sample_model`)
trains a copy of ``theta0`` for ``T2`` passes of ``draws`` (default ``|D|``) rows of ``D`` with the same
weighting; different seeds give the K models of a family.

Defaults follow the paper's Table 5: SGD, learning rate 0.1, ``T1 = T2 = 3``; its "momentum 5e-4" is read
as weight decay 5e-4.
"""

from __future__ import annotations

import contextlib
import copy
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..attacks.base import Attack
from ..engine import Engine
from ..fileio import atomic_save
from ..seeds import derive
from ..validation import check_images, check_int, check_labels, check_option, check_positive
from .kmeans_cache import FROM_CACHE, NOT_NEEDED, BatchAttacker

READINGS = ("literal", "eq3")
WEIGHTINGS = ("sample", "gradient", "both")
WEIGHT_DECAY = 5e-4
ModelT = typing.TypeVar("ModelT", bound=nn.Module)  # a trained model is returned as the type it came in


@dataclass
class WeightedDataset:
    """Algorithm 2's ``D``, one row per image: the image, label, weight ``P``, whether it is adversarial,
    the index of the original it comes from, whether it came from the k-means cache (a centre's
    perturbation) rather than a run of the attack, and ``attacked_from``: the row of ``D`` that was attacked
    to make it (``-1`` for originals; an original's row under ``eq3``).

    Examples:
        >>> import torch
        >>> from imperceptible.dro import WeightedDataset
        >>> d = WeightedDataset.originals(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]))
        >>> len(d), d.weight.tolist(), d.attacked_from.tolist()
        (3, [1.0, 1.0, 1.0], [-1, -1, -1])
    """

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor
    adversarial: torch.Tensor
    origin: torch.Tensor
    cached: torch.Tensor | None = None
    attacked_from: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.cached is None:
            self.cached = torch.zeros(n, dtype=torch.bool)
        if self.attacked_from is None:
            self.attacked_from = torch.where(self.adversarial, self.origin, torch.full((n,), -1, dtype=torch.long))

    def __len__(self) -> int:
        return self.x.shape[0]

    @classmethod
    def originals(cls, x: torch.Tensor, y: torch.Tensor) -> WeightedDataset:
        n = x.shape[0]
        return cls(x, y, torch.ones(n), torch.zeros(n, dtype=torch.bool), torch.arange(n))

    @classmethod
    def cat(cls, parts: list[WeightedDataset]) -> WeightedDataset:
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def rows(self, index) -> WeightedDataset:
        return WeightedDataset(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def without_attacks(self) -> WeightedDataset:
        """The control: every adversarial row replaced by its original image (same weights, same rows, so
        Algorithm 3 with the same seed makes the same draws). The originals are the first rows (row ``i``
        is original ``i``), as Algorithm 2 builds ``D``."""
        out = copy.copy(self)
        out.x = self.x[self.origin]
        out.adversarial = torch.zeros_like(self.adversarial)
        return out

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` atomically; 8-bit images (the attacks' output) are stored as ``uint8``."""
        u = (self.x * 255).round()
        x = u.to(torch.uint8) if torch.equal(u / 255, self.x) else self.x
        return atomic_save({**asdict(self), "x": x}, path)

    @classmethod
    def load(cls, path: str | Path) -> WeightedDataset:
        d = torch.load(path, weights_only=True)
        x = d.pop("x")
        return cls(x.float() / 255 if x.dtype == torch.uint8 else x, **d)


def weighted_indices(weight: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` indices drawn with replacement with probability ``weight / weight.sum()``."""
    return torch.multinomial(weight.double() / weight.double().sum(), n, replacement=True, generator=generator)


def draw(weight: torch.Tensor, n: int, weighting: str, generator: torch.Generator) -> torch.Tensor:
    """The rows of one pass: proportional to ``weight`` (``sample``, ``both``) or uniform (``gradient``)."""
    if weighting == "gradient":
        return torch.randint(0, weight.numel(), (n,), generator=generator)
    return weighted_indices(weight, n, generator)


def _trainable(model: nn.Module) -> nn.Module:
    """The module SGD trains: an :class:`ImageClassifier`'s network (its checked forward refuses training
    mode), otherwise the model itself."""
    return typing.cast(nn.Module, model.net) if hasattr(model, "prepare") else model


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
              *, net: nn.Module | None = None, engine: Engine | None = None, w_total: float | None = None) -> float:
    """One SGD step on the weighted cross-entropy ``sum_i w_i ce_i / sum_i w_i`` of the batch (``w = 1``:
    the plain mean).

    Data-parallel: ``net`` is the DDP-wrapped network, ``x`` this rank's slice and ``w_total`` the weight of
    the whole batch; each rank's loss is scaled by the world size because DDP averages the ranks' gradients,
    so the step equals the single-process step."""
    model.train()
    net = net if net is not None else _trainable(model)
    prepare = getattr(model, "prepare", None)
    logits = net(prepare(x)) if prepare is not None else net(x)
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


def _forked_rng(device) -> contextlib.AbstractContextManager:
    """Fork the CPU RNG (and the GPU's, when training there) so seeding dropout leaves the caller's RNG."""
    d = torch.device(device)
    return torch.random.fork_rng(devices=[d.index or 0] if d.type == "cuda" else [])


def _local_slice(n: int, engine: Engine | None) -> slice:
    """This rank's contiguous part of a batch of ``n`` (the parts in rank order make up the batch)."""
    if engine is None or engine.world_size == 1:
        return slice(0, n)
    bounds = torch.linspace(0, n, engine.world_size + 1).round().long().tolist()
    return slice(bounds[engine.rank], bounds[engine.rank + 1])


def _step_weights(w: torch.Tensor, weighting: str) -> torch.Tensor:
    return w if weighting in ("gradient", "both") else torch.ones_like(w)


def _resume(checkpoint, model: nn.Module, opt, g: torch.Generator, attacker: BatchAttacker,
            originals: WeightedDataset) -> tuple[list[WeightedDataset], int, torch.Tensor | None]:
    """Algorithm 2's state from ``checkpoint`` (model, optimiser, generators, ``D``, cache), restored in place:
    the parts of ``D``, the first epoch still to run and the torch RNG state; a fresh start without one."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return [originals], 1, None
    st = torch.load(checkpoint, weights_only=True, map_location="cpu")
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    g.set_state(st["generator"])
    attacker.load_state(st["cache"])
    return [WeightedDataset(**st["data"])], st["epoch"] + 1, st["torch_rng"]


def _adversarial_rows(model: nn.Module, attack: Attack, attacker: BatchAttacker, pool: WeightedDataset,
                      idx: torch.Tensor, b: WeightedDataset, part, reading: str, engine: Engine, *,
                      first_time: int) -> WeightedDataset:
    """The rows one batch adds to ``D``: the attack of each sampled row (``literal``) or of its original
    (``eq3``, keeping only successful attacks that changed the image), timed ``first_time, first_time + 1, ...``."""
    target = idx if reading == "literal" else b.origin  # the row attacked: sampled, or its original
    xa = pool.x[target]
    adv, fooled, status = attacker.attack(model, attack, xa, b.y, b.origin, part=part, engine=engine)
    keep = torch.ones(idx.numel(), dtype=torch.bool)
    if reading == "eq3":
        keep = fooled & (status != NOT_NEEDED) & (adv != xa).flatten(1).any(1)
    when = torch.arange(first_time, first_time + idx.numel(), dtype=torch.float32)
    return WeightedDataset(adv[keep], b.y[keep], when[keep], torch.ones(int(keep.sum()), dtype=torch.bool),
                           b.origin[keep], (status == FROM_CACHE)[keep], target[keep])


def build_adversarial_dataset(model: ModelT, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
                              lr: float = 0.1, weight_decay: float = WEIGHT_DECAY, epochs: int = 3,
                              batch_size: int = 64, seed: int = 0, reading: str = "eq3",
                              weighting: str = "sample", cache: BatchAttacker | None = None,
                              checkpoint: str | Path | None = None, engine: Engine | None = None,
                              progress: bool = True) -> tuple[WeightedDataset, ModelT]:
    """Algorithm 2 (see the module docstring). ``model`` is trained in place (a classifier taking ``[0, 1]``
    images); ``cache`` is a :class:`~imperceptible.dro.kmeans_cache.KMeansCache` over ``x`` (or ``None``).

    Examples:
        >>> import copy
        >>> from imperceptible.attacks import PGDL2
        >>> from imperceptible.data import load
        >>> from imperceptible.dro import build_adversarial_dataset, sample_model
        >>> from imperceptible.models import get
        >>> theta0, ds = get("mnist-cnn"), load("mnist-test20")
        >>> D, model = build_adversarial_dataset(copy.deepcopy(theta0), ds.images, ds.labels,
        ...                                      PGDL2(eps=3.0, alpha=0.5, steps=5), epochs=1, batch_size=10,
        ...                                      reading="eq3", progress=False)
        >>> bool((D.attacked_from[D.adversarial] < 20).all())  # eq3: every attack started from an original
        True
        >>> theta = sample_model(theta0, D, epochs=1, batch_size=10, seed=1)

    With ``checkpoint`` (a file path) the whole state - model, optimiser, random generators, ``D`` so far
    and the cache - is written after every epoch, and a call that finds the file resumes after the last
    finished epoch; the result is the same as an uninterrupted run's.

    With an ``engine`` of several processes it runs data-parallel: every rank draws the same batch, takes
    an SGD step on its slice (DDP averages the gradients), attacks its slice, and the results of all slices
    are gathered so that every rank holds the same ``D`` and cache. Rank 0 writes the checkpoint.
    """
    check_images(x, "x")
    y = check_labels(y, x.shape[0])
    check_positive("lr", lr)
    check_int("epochs", epochs, minimum=1)
    check_option("reading", reading, READINGS)
    check_option("weighting", weighting, WEIGHTINGS)
    engine = engine or Engine()
    dev = engine.device
    attacker = cache if cache is not None else BatchAttacker()
    N = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    net = engine.data_parallel(_trainable(model))
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    parts, first, rng_state = _resume(checkpoint, model, opt, g, attacker, WeightedDataset.originals(x, y))
    bar = tqdm(total=epochs * N, initial=(first - 1) * N, desc=f"Algorithm 2 ({attack.label()})", unit="img",
               disable=not progress or not engine.is_main)
    with _forked_rng(dev):
        # dropout, inside the fork only (the caller's RNG is restored); rank 0 keeps the seed itself
        torch.manual_seed(seed if engine.rank == 0 else derive(seed, "dropout", engine.rank))
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        for k in range(first, epochs + 1):
            pool = WeightedDataset.cat(parts)
            rows = draw(pool.weight, N, weighting, g)
            for s in range(0, N, batch_size):
                idx = rows[s : s + batch_size]
                part = _local_slice(idx.numel(), engine)
                b = pool.rows(idx)
                wb = _step_weights(b.weight, weighting)
                _sgd_step(model, opt, b.x[part].to(dev), b.y[part].to(dev), wb[part].to(dev), net=net, engine=engine,
                          w_total=float(wb.sum()))
                parts.append(_adversarial_rows(model, attack, attacker, pool, idx, b, part, reading, engine,
                                               first_time=(k - 1) * N + s + 1))
                bar.update(idx.numel())
            if checkpoint is not None and engine.is_main:
                atomic_save({"epoch": k, "model": model.state_dict(), "opt": opt.state_dict(),
                             "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                             "data": asdict(WeightedDataset.cat(parts)), "cache": attacker.state()}, checkpoint)
    bar.close()
    return WeightedDataset.cat(parts), model.eval()


def sample_model(theta0: ModelT, data: WeightedDataset, *, lr: float = 0.1, weight_decay: float = WEIGHT_DECAY,
                 epochs: int = 3, batch_size: int = 64, seed: int = 0, weighting: str = "sample",
                 draws: int | None = None, device: torch.device | str = "cpu", progress: bool = False) -> ModelT:
    """Algorithm 3: one model trained from a copy of ``theta0`` for ``epochs`` passes of ``draws`` rows of
    ``data`` (default ``len(data)``) drawn and weighted as ``weighting`` says (on ``device``; the draws depend
    only on ``seed`` and the weights)."""
    check_int("epochs", epochs, minimum=1)
    check_option("weighting", weighting, WEIGHTINGS)
    model = copy.deepcopy(theta0).to(device)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    M = draws or len(data)
    with _forked_rng(device):
        torch.manual_seed(seed)  # dropout, inside the fork only
        for _ in tqdm(range(epochs), desc=f"Algorithm 3 (seed {seed})", disable=not progress):
            rows = draw(data.weight, M, weighting, g)
            for s in range(0, M, batch_size):
                idx = rows[s : s + batch_size]
                w = _step_weights(data.weight[idx], weighting)
                _sgd_step(model, opt, data.x[idx].to(device), data.y[idx].to(device), w.to(device))
    return model.eval()


__all__ = ["READINGS", "WEIGHTINGS", "WeightedDataset", "build_adversarial_dataset", "draw", "sample_model",
           "weighted_indices"]
