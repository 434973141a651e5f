"""The study's stages, each written as it finishes so a re-run skips what is done: per replicate the
pre-trained model and Algorithm 2 per family; the gates; then Algorithm 3 for every arm, replicate and seed."""

from __future__ import annotations

import json
import logging
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...attacks import PGDL2, HumanPercOT
from ...attacks.base import Attack
from ...dro import BatchAttacker, KMeansCache, WeightedDataset, build_adversarial_dataset, sample_model
from ...dro.algorithms import WEIGHT_DECAY
from ...engine import Engine
from ...fileio import atomic_save, atomic_write_json, read_json
from ...models.layout import fast_layout
from ...models.small_cnn import cnn_any_size
from ...models.training import train_classifier
from ...models.wrapper import ImageClassifier
from ...seeds import derive
from .config import FairnessConfig
from .datasets import CONTROL, ERM, NOISE, ORACLE, matched_noise, oracle
from .evaluation import evaluate
from .gates import gates, mechanism
from .layout import StudyLayout
from .worlds import Worlds

log = logging.getLogger(__name__)
OURS, BASELINE, AA = "human-perc-ot", "pgd-l2", "human-perc-ot-aa"
#: the protocol's further families (``--arms protocol``): the refined default preset, the paper's literal Algorithm 1,
#: the primary attack at lambda 0 and 100 (the dose-response; lambda 10 is the primary) and the positive control
REFINED, PAPER, LAMBDA0, LAMBDA100, POSITIVE = ("human-perc-ot[refined]", "human-perc-ot[paper]",
                                                "human-perc-ot[lambda=0]", "human-perc-ot[lambda=100]", "positive-control")
#: the dose-response's arms and their lambda (the first-success preset's calibrated lambda for 1 - SSIM is 10)
DOSE = {LAMBDA0: 0.0, OURS: 10.0, LAMBDA100: 100.0}
#: the refined preset's budget in passes per image inside Algorithm 2: the preset's own 200. Measured in Algorithm 2
#: (one world of 30,000 images, 400 rows, CPU time against the first-success preset's in the same world): budget 200
#: 2.5x, 100 1.3x, 50 1.1x; at 50 the refinement has too few passes to refine (1 - SSIM 0.102 against the
#: first-success preset's 0.080), at 100 and 200 it does (0.074, 0.075)
REFINED_BUDGET = 200
#: the positive control: Human_Perc_OT's first-success preset with the oracle cost ``illumination-l2`` (changes along
#: the ramp cue's span are free), its gradient refreshed every step (``reuse`` 1: with the preset's 5 a strong L2-norm
#: cost overshoots and oscillates off the span), no lambda decay (the preset's halving let rows leave the span) and a
#: margin of 2 (the decoded cue then changes in about 97 % of the rows, against 89 % at margin 0; 200 training images
#: of a reduced world, attacked on its pre-trained model). As the preset's own (lambda decay, cost every 5 steps) it
#: failed gate 2 (1.39x PGD-L2's cue changes); a larger lambda (30, 100) made rows stall before the boundary
POSITIVE_SETTINGS = {"cost": "illumination-l2", "reuse": 1, "lam_decay": 1.0, "confidence": 2.0}
#: the pre-trained model's optimiser (Adam), learning rate and batch size: used and recorded from here
PRETRAIN: dict[str, Any] = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}


def default_families(cfg: FairnessConfig) -> dict[str, Attack]:
    """The DRO families' attacks: Algorithm 1's calibrated first-success preset (1 - SSIM; the refinement would
    multiply Algorithm 2's cost by about ten) and PGD-L2 with the usual 28x28 budget (``eps`` 2, 10 steps of
    ``eps / 5``); with the ``powered`` arms, the A/A family: the same Human_Perc_OT, its own Algorithm 2 draws; with
    the ``protocol`` arms also the refined and the paper's presets, the dose-response's lambda 0 and 100 and the
    positive control (:data:`POSITIVE_SETTINGS`)."""
    fams: dict[str, Attack] = {OURS: HumanPercOT.from_preset("first-success"),
                               BASELINE: PGDL2(eps=cfg.pgd_eps, alpha=0.2 * cfg.pgd_eps, steps=10)}
    if cfg.arms == "powered":
        fams[AA] = HumanPercOT.from_preset("first-success")
    if cfg.arms == "protocol":
        fams = {OURS: fams[OURS], REFINED: HumanPercOT.from_preset("refined", budget=REFINED_BUDGET),
                PAPER: HumanPercOT.from_preset("paper"), LAMBDA0: HumanPercOT.from_preset("first-success", lam=0.0),
                LAMBDA100: HumanPercOT.from_preset("first-success", lam=100.0),
                AA: HumanPercOT.from_preset("first-success"),
                POSITIVE: HumanPercOT.from_preset("first-success", **POSITIVE_SETTINGS), BASELINE: fams[BASELINE]}
    return fams


def arms_of(cfg: FairnessConfig, families: list[str]) -> list[str]:
    if cfg.arms in ("powered", "protocol"):
        return [ERM, *families]
    out = [ERM] + [a for f in families for a in (f, f + CONTROL)]
    if OURS not in families:
        return out
    return out + ([ORACLE] if cfg.dataset == "geo-fashion" else []) + [NOISE]  # the oracle repaints a simulated cue


@dataclass
class Study:
    """Everything a stage needs."""

    cfg: FairnessConfig
    layout: StudyLayout
    engine: Engine
    families: dict[str, Attack]
    worlds: Worlds
    progress: bool = True
    protocol: Any = None  # the protocol file (:class:`~.protocol.Protocol`) the study runs under, if any

    @property
    def arms(self) -> list[str]:
        return arms_of(self.cfg, list(self.families))


#: the mark of a gates.json whose per-family gates were added to a record written before them
FAMILIES_ADDED = ("the per-family gates were added after this record was first written (a later version); the "
                  "thresholds are those fixed before, the values are from the same Algorithm 2 records")


def read(path: Path) -> dict | None:
    try:
        return read_json(path) if path.is_file() else None  # with its NaN/infinities back (strict JSON holds null)
    except json.JSONDecodeError:  # a damaged stage file is redone
        return None


def written(path: Path) -> dict:
    """The record rank 0 has written (read after the barrier)."""
    return typing.cast(dict, read(path))


def make_model(train, seed: int = 0) -> ImageClassifier:
    """The study's small CNN, initialised from ``seed`` (the caller's global RNG is left as it was), in the CPU's
    fast layout (channels-last: pre-training, the attacks and Algorithm 3 run about 1.5-1.8 times faster)."""
    c = train.images.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = fast_layout(cnn_any_size(train.num_classes, c))
    return ImageClassifier(net, mean=(0.0,) * c, std=(1.0,) * c, num_classes=train.num_classes, input_size=None,
                           name="fairness-cnn")


def load_model(train, path: Path, device: torch.device | str = "cpu") -> ImageClassifier:
    """The saved study model at ``path``, on ``device`` in that device's fast layout, in eval mode."""
    m = make_model(train)
    m.net.load_state_dict(torch.load(path, weights_only=True))
    return fast_layout(m.to(device)).eval()


def pretrain(s: Study, r: int) -> dict:
    """Replicate ``r``'s pre-trained model (rank 0 trains, the others wait) and its evaluation."""
    rec = read(s.layout.pretrain(r)) if s.layout.pretrain_model(r).is_file() else None
    if rec is None and s.engine.is_main:
        t0 = time.perf_counter()
        splits = s.worlds[r]
        seed = derive(s.cfg.seed, "pretrain", r, bits=31)
        theta0 = make_model(splits.train, seed)
        train_classifier(theta0.net, splits.train.images, splits.train.labels, epochs=s.cfg.pretrain_epochs,
                         seed=seed, progress=s.progress, desc=f"pre-training theta0 (world {r})", **PRETRAIN)
        atomic_save(theta0.net.state_dict(), s.layout.pretrain_model(r))
        rec = {**evaluate(theta0, splits, min_count=s.cfg.min_count, seed=s.cfg.seed), "world_seed": s.worlds.seed(r),
               "time_s": time.perf_counter() - t0}
        atomic_write_json(s.layout.pretrain(r), rec)
    s.engine.barrier()
    return rec or written(s.layout.pretrain(r))


def stale_mechanism(rec: dict) -> bool:
    """Whether an Algorithm 2 record measured the cue's energy share before the cue's span was found by rank
    (version 0.3.0's first runs orthonormalised all 10 ramps, which span 2 dimensions, adding 8 rounding
    directions to the 'cue'): such a record has a cue but no ``cue_rank``."""
    m = rec.get("mechanism") or {}
    return "cue" in m and "cue_rank" not in m


def remeasure(s: Study, r: int, family: str, rec: dict) -> dict:
    """``rec`` with its mechanism measured again on its saved ``D`` (the data are unchanged; rank 0 writes)."""
    L = s.layout
    splits, idx = s.worlds[r], s.worlds.subset(r)
    was = {k: rec["mechanism"].get(k) for k in ("cue_energy_share", "cue_energy_chance")}
    rec = {**rec, "mechanism": {**mechanism(WeightedDataset.load(L.algorithm2(family, r, "dataset")),
                                            splits.train.subset(idx)), "remeasured_from": was}}
    if s.engine.is_main:
        atomic_write_json(L.algorithm2(family, r), rec)
    log.warning("world %d, %s: the cue's energy share re-measured on the saved D (%s -> %s)", r, family,
             was["cue_energy_share"], rec["mechanism"].get("cue_energy_share"))
    return rec


def algorithm2(s: Study, r: int, family: str) -> dict:
    """Algorithm 2 of ``family`` in replicate ``r`` (data-parallel over the engine's ranks); a finished record
    from before the rank-aware cue span is re-measured on its saved ``D`` (:func:`stale_mechanism`)."""
    L, cfg = s.layout, s.cfg
    rec = read(L.algorithm2(family, r))
    if rec is not None and L.algorithm2(family, r, "dataset").is_file():
        return remeasure(s, r, family, rec) if stale_mechanism(rec) else rec
    t0 = time.perf_counter()
    splits, idx = s.worlds[r], s.worlds.subset(r)
    xs, ys = splits.train.images[idx], splits.train.labels[idx]
    cache = KMeansCache(xs, ys, per_cluster=cfg.per_cluster, random_state=derive(cfg.seed, "kmeans", r, bits=31)) \
        if cfg.kmeans else BatchAttacker()
    model = load_model(splits.train, L.pretrain_model(r), s.engine.device)
    data, model = build_adversarial_dataset(
        model, xs, ys, s.families[family], lr=cfg.lr, weight_decay=WEIGHT_DECAY, epochs=cfg.t1,
        batch_size=cfg.batch_size, seed=derive(cfg.seed, "algorithm2", family, r, bits=31), reading=cfg.reading,
        weighting=cfg.weighting, cache=cache, progress=s.progress, engine=s.engine,
        checkpoint=L.algorithm2(family, r, "checkpoint"))
    if s.engine.is_main:
        model = model.cpu()
        data.save(L.algorithm2(family, r, "dataset"))
        atomic_save(model.net.state_dict(), L.algorithm2(family, r, "model"))
        ev = evaluate(model, splits, min_count=cfg.min_count, seed=cfg.seed)
        rec = {"rows": len(data), "adversarial_rows": int(data.adversarial.sum()), "calls": cache.stats(),
               "mechanism": mechanism(data, splits.train.subset(idx)),
               "model": {k: v for k, v in ev.items() if k not in ("groups", "correct")},
               "time_s": time.perf_counter() - t0, "processes": s.engine.world_size}
        atomic_write_json(L.algorithm2(family, r), rec)
        L.algorithm2(family, r, "checkpoint").unlink(missing_ok=True)
    s.engine.barrier()
    return rec or written(L.algorithm2(family, r))


#: what a gates record says when it was computed after the models (``worlds_per_call``)
AFTER_MODELS = ("computed after every world's Algorithm 3 models (--worlds-per-call), from the pre-trained models' and "
                "Algorithm 2's records alone by the same rule and thresholds; no Algorithm 3 result enters them")


def gate_stage(s: Study, pre: dict, alg2: dict, *, after_models: bool = False) -> dict:
    """The gates from every replicate's pre-trained model and Algorithm 2, written before Algorithm 3 (their
    thresholds fixed in :mod:`.gates`) or, world by world, after it (``after_models``: :data:`AFTER_MODELS`): those
    of ``human-perc-ot`` against ``pgd-l2`` and, under ``families``, of every other family against ``pgd-l2``;
    rewritten, and marked, only where a record was re-measured since (or written before the per-family gates, which
    are then added and marked)."""
    mech = {f: [alg2[f][r]["mechanism"] for r in alg2[f]] for f in alg2}
    rec = gates(list(pre.values()), mech, OURS, BASELINE)
    rec["families"] = {f: gates(list(pre.values()), mech, f, BASELINE) for f in alg2 if f != BASELINE}
    if after_models:
        rec["schedule"] = AFTER_MODELS
    stored = read(s.layout.gates)
    if stored is not None and stored.get("checks") == rec["checks"] and stored.get("families") == rec["families"]:
        return stored
    if stored is not None and stored.get("checks") == rec["checks"] and "families" not in stored:  # an older record
        rec = {**stored, "families": rec["families"], "families_added": FAMILIES_ADDED}
    elif stored is not None:
        rec["remeasured"] = ("Algorithm 2's mechanism was re-measured on the saved datasets after these gates were "
                             "first written (the cue's span found by rank); the thresholds are those fixed before")
        rec["first_written"] = stored.get("first_written", stored.get("checks"))
    if s.engine.is_main:
        atomic_write_json(s.layout.gates, rec)
    return rec


def arm_data(s: Study, arm: str, r: int, memo: dict) -> WeightedDataset:
    """The dataset arm ``arm`` of replicate ``r`` draws from (:mod:`.datasets`; built once per arm and replicate)."""
    key = (arm, r)
    if key in memo:
        return memo[key]
    splits, idx = s.worlds[r], s.worlds.subset(r)
    if arm == ERM:
        d = WeightedDataset.originals(splits.train.images[idx], splits.train.labels[idx])
    elif arm in (ORACLE, NOISE):
        ours = WeightedDataset.load(s.layout.algorithm2(OURS, r, "dataset"))
        seed = derive(s.cfg.seed, arm, r)
        d = oracle(ours, splits.train.subset(idx), seed) if arm == ORACLE else matched_noise(ours, seed)
    else:
        d = WeightedDataset.load(s.layout.algorithm2(arm.removesuffix(CONTROL), r, "dataset"))
        d = d.without_attacks() if arm.endswith(CONTROL) else d
    memo[key] = d
    return d


def world_finished(s: Study, r: int) -> bool:
    """Whether replicate ``r`` has every record: its pre-trained model's, each family's Algorithm 2 and every arm's K
    Algorithm 3 models (then nothing of it is computed again, and its model and dataset files are not needed)."""
    L = s.layout
    return (L.pretrain(r).is_file() and all(L.algorithm2(f, r).is_file() for f in s.families)
            and all(L.algorithm3(arm, r, k).is_file() for arm in s.arms for k in range(1, s.cfg.models + 1)))


def forget_world(s: Study, r: int) -> bool:
    """Before replicate ``r`` is computed world by world: if a record of it has lost the file it was computed with
    (a pre-trained model's or an Algorithm 2 dataset's: only the records were kept between calls), every record and
    file of ``r`` is removed, so that the world is computed whole again and never mixes two computations. Whether
    anything was removed (rank 0 removes; every rank answers the same)."""
    L = s.layout
    orphaned = (L.pretrain(r).is_file() and not L.pretrain_model(r).is_file()) or any(
        L.algorithm2(f, r).is_file() and not L.algorithm2(f, r, "dataset").is_file() for f in s.families)
    if orphaned and s.engine.is_main:
        # the later stages' files first, the records the orphan test reads last: a kill part way through leaves a world
        # that is still found orphaned, never old Algorithm 3 records beside a new D
        paths = [L.algorithm3(arm, r, k, what) for arm in s.arms for k in range(1, s.cfg.models + 1)
                 for what in ("model", "json")]
        for f in s.families:
            paths += [L.algorithm2(f, r, what) for what in ("checkpoint", "model", "dataset", "json")]
        paths += [L.pretrain_model(r), L.pretrain(r)]
        for path in paths:
            path.unlink(missing_ok=True)
    s.engine.barrier()
    return orphaned


def algorithm3(s: Study, replicates: list[int] | None = None) -> list[dict]:
    """Every arm's K models in every replicate, or in ``replicates`` (spread over the ranks; seeds paired across
    arms)."""
    L, cfg = s.layout, s.cfg
    worlds = replicates if replicates is not None else range(1, cfg.dro_seeds + 1)
    jobs = [(arm, r, k) for r in worlds for arm in s.arms for k in range(1, cfg.models + 1)]
    mine = [j for j in s.engine.shard(jobs) if read(L.algorithm3(*j)) is None]
    memo: dict = {}
    for arm, r, k in tqdm(mine, desc="Algorithm 3", disable=not s.progress or not s.engine.is_main, unit="model"):
        t0 = time.perf_counter()
        splits = s.worlds[r]
        memo = {key: v for key, v in memo.items() if key[1] == r}  # one world's datasets in memory
        data = arm_data(s, arm, r, memo)
        theta0 = load_model(splits.train, L.pretrain_model(r), s.engine.device)
        weighting = "gradient" if arm == ERM else cfg.weighting  # ERM: uniform draws of weight-1 rows
        m = sample_model(theta0, data, lr=cfg.lr, weight_decay=WEIGHT_DECAY, epochs=cfg.t2, batch_size=cfg.batch_size,
                         seed=derive(cfg.seed, "algorithm3", r, k, bits=31), weighting=weighting, draws=cfg.draws,
                         device=s.engine.device).cpu()
        atomic_save(m.net.state_dict(), L.algorithm3(arm, r, k, "model"))
        rec = {"arm": arm, "replicate": r, "seed": k, **evaluate(m, splits, min_count=cfg.min_count, seed=cfg.seed),
               "time_s": time.perf_counter() - t0}
        atomic_write_json(L.algorithm3(arm, r, k), rec)
    s.engine.barrier()
    return [written(L.algorithm3(*j)) for j in jobs]


__all__ = ["AA", "AFTER_MODELS", "BASELINE", "DOSE", "FAMILIES_ADDED", "LAMBDA0", "LAMBDA100", "OURS", "PAPER", "POSITIVE",
           "POSITIVE_SETTINGS", "PRETRAIN", "REFINED", "REFINED_BUDGET", "Study", "algorithm2", "algorithm3", "arm_data",
           "arms_of", "default_families", "forget_world", "gate_stage", "load_model", "make_model", "pretrain", "read",
           "remeasure", "stale_mechanism", "world_finished", "written"]
