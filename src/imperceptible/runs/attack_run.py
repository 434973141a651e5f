"""Run one attack over a dataset into a run directory, batch by batch, resumably, sharded over the
engine's processes.

Sharding is by whole batches: every rank reads which samples are done, waits for the others (so no one
writes before all have read), forms the same batches a single process would, and attacks batches
``rank, rank + world, ...``. Per-sample results are therefore the same as a one-process run's; each rank
commits its own batches to the one SQLite store (one transaction per batch), so a killed run keeps every
finished batch of every rank."""

from __future__ import annotations

import contextlib
import logging
import time

import torch
from tqdm.auto import tqdm

from ..attacks.base import Attack, AttackResult
from ..data.base import ImageDataset
from ..engine import Engine
from ..errors import MSG_OUT_OF_MEMORY, OutOfMemoryError
from ..evaluate.evaluator import Evaluator
from .fingerprint import model_digest, sample_digests
from .memory import default_batch_size
from .record import rows_of
from .rundir import RunDir

log = logging.getLogger(__name__)

def anytime_metrics(evaluator: Evaluator, res: AttackResult, x: torch.Tensor, final: dict) -> dict:
    """Per checkpoint of ``res.anytime``, per sample, the distances of the best adversarial queried by then (a
    list of dicts, ``None`` where none was found); an image equal to the final one reuses its distances."""
    meter = evaluator.anytime_meter
    keys = [k for k in final if k in meter.keys_computed()]
    out = {}
    for c, snap in (res.anytime or {}).items():
        adv, found = snap["adv"], snap["found"].cpu()
        same = (adv == res.adv).flatten(1).all(1).cpu()
        rows: list = [None] * len(found)
        todo = (found & ~same).nonzero().squeeze(1)
        fresh = meter(adv[todo], x[todo]) if len(todo) else {}
        for j in range(len(found)):
            if not found[j]:
                continue
            src, pos = (final, j) if same[j] else (fresh, int((todo == j).nonzero()[0, 0]))
            rows[j] = {k: float(src[k][pos]) for k in keys}
        out[str(c)] = rows
    return out


def run_attack(run: RunDir, method: str, attack: Attack, model, ds: ImageDataset, evaluator: Evaluator, *,
               batch_size: int | None = None, progress: bool = True, save_images: bool = True,
               engine: Engine | None = None, derived: dict | None = None) -> int:
    """Attack every sample of ``ds`` not yet in the store under ``method`` (this rank's share of the
    batches); returns how many this rank ran. ``derived``: ``{method: fn(model, x, y, result) -> AttackResult}``,
    results computed from each batch's result (a polished twin) and stored under their own method; a sample is done
    when ``method`` and every derived method hold it. ``batch_size`` ``None``: the largest batch whose memory estimate
    fits the device (:func:`~.memory.default_batch_size`; every rank takes the smallest of the ranks' choices, so that
    all form the same batches)."""
    engine = engine or Engine()
    derived = derived or {}
    done = set.intersection(*[_done(run, m, save_images) for m in (method, *derived)])
    if save_images and engine.is_main:  # lost originals (a deleted images/original/) are saved again from the dataset
        run.save_missing_originals(ds.ids, ds.images)
    engine.barrier()  # everyone has read the store before anyone writes to it
    todo = [i for i, sid in enumerate(ds.ids) if sid not in done]
    if batch_size is None:
        mine_fits = default_batch_size(model, ds.images[todo[:1]], engine.device) if todo else 1
        batch_size = min(engine.all_gather_object(mine_fits))
        log.info("%s: %d images per batch (the largest whose memory estimate fits; --batch-size sets it)", method,
                 batch_size)
    batches = engine.shard([todo[s : s + batch_size] for s in range(0, len(todo), batch_size)])
    mine = sum(len(b) for b in batches)
    bar = tqdm(total=mine, desc=method + (f" [rank {engine.rank}/{engine.world_size}]" if engine.world_size > 1 else ""),
               disable=not progress or not engine.is_main, unit="img")
    dev = engine.device
    for idx in batches:
        ids = [ds.ids[i] for i in idx]
        x, y = ds.images[idx].to(dev), ds.labels[idx].to(dev)
        if save_images:
            new = [j for j, sid in enumerate(ids) if not run.has_image("original", sid)]
            if new:
                run.save_images("original", [ids[j] for j in new], ds.images[idx][new])
        t0 = time.perf_counter()
        with engine.autocast(), out_of_memory_as_error(method, x):
            res = attack(model, x, y)
        attack_time = time.perf_counter() - t0
        results = {method: (res, attack_time)}
        for name, fn in derived.items():
            t1 = time.perf_counter()
            results[name] = (fn(model, x, y, res), attack_time + time.perf_counter() - t1)
        for name, (r, secs) in results.items():
            _store(run, name, r, secs, ids, x, y, evaluator, model, save_images)
        bar.update(len(idx))
    bar.close()
    engine.barrier()  # the store holds every rank's rows before anyone summarises
    return mine


@contextlib.contextmanager
def out_of_memory_as_error(method: str, x: torch.Tensor):
    """An allocation that fails inside a batch (CUDA's ``OutOfMemoryError``, the CPU allocator's "can't allocate")
    becomes one line naming ``--batch-size``."""
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as e:
        text = str(e)
        if not isinstance(e, (torch.OutOfMemoryError, MemoryError)) and "allocate" not in text and \
                "out of memory" not in text:
            raise
        raise OutOfMemoryError.of(MSG_OUT_OF_MEMORY, attack=method, batch=x.shape[0], shape="x".join(map(str, x.shape[1:])),
                                  device=x.device.type.upper(), error=text.splitlines()[0][:120]) from None


def _done(run: RunDir, method: str, save_images: bool) -> set[str]:
    done = run.store.done(method)
    if save_images:  # a result whose image was lost is run again (attacks are deterministic per sample)
        done = {sid for sid in done if run.has_image(method, sid)}
    return done


def _store(run: RunDir, method: str, res: AttackResult, secs: float, ids: list[str], x, y, evaluator: Evaluator, model,
           save_images: bool) -> None:
    metrics = evaluator(model, x, y, res, ids=ids)
    anytime = anytime_metrics(evaluator, res, x, metrics) if res.anytime else None
    if save_images:
        run.save_images(method, ids, res.adv)
    run.store.put_many(method, rows_of(res, ids, y, metrics, secs, anytime))


def open_attack_run(out, *, job: str, config: dict, ds: ImageDataset, model, methods: dict[str, Attack],
                    evaluator: Evaluator, engine: Engine, overwrite: bool = False) -> RunDir:
    """Start or resume an attack run directory: its fingerprint holds the job's settings, the dataset's
    name and image shape, the model's name and weights digest, every method's parameters, the evaluator's
    settings, the precision and this package's version; the per-sample digests of ``ds`` go into the store
    (a resumed run whose images changed is refused)."""
    from .. import __version__

    fp = {"config": config, "dataset": {"name": ds.name, "image_shape": list(ds.images.shape[1:])},
          "model": {"name": getattr(model, "name", type(model).__name__), "digest": model_digest(model)},
          "methods": {m: {"class": type(a).__name__, **a.params()} for m, a in methods.items()},
          "evaluator": evaluator.identity(), "precision": engine.config.precision, "version": __version__}
    roots = [ds.info["path"]] if ds.info.get("path") else []
    run = RunDir.open(out, job=job, fingerprint=fp, overwrite=overwrite, main=engine.is_main, data_roots=roots)
    if engine.is_main:
        run.register_samples(ds.ids, sample_digests(ds.images, ds.labels))
    engine.barrier()
    return run
