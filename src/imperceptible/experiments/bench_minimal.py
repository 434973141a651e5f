"""``imperceptible bench minimal``: the perceptual minimal-attack benchmark, after AttackBench (Cina, Rony et al.,
AAAI 2025) but judged on the 8-bit images by the perceptual judges instead of Lp norms.

The minimal attacks get the same budget of ``budget`` passes per image (a pass: one forward and one backward of
the model, counted by hooks): Human_Perc_OT refined (ours), adv-lib's DDN (at the budget, and at its authors' 100
steps when the budget allows), FMN-L2, ALMA with the SSIM and the LPIPS distance, C&W-L2 and PerC-AL. Two
reference points run at their own defaults and their counted passes are reported beside them: Human_Perc_OT's
first-success preset (it stops at its first 8-bit success; up to 400 steps on a hard image) and PGD-L2
(torchattacks' eps 1, 10 steps: bounded, not minimal). For every judge of the metric table (LPIPS
alex and vgg, DISTS, 1-SSIM, 1-MS-SSIM, 1-SSIM_Y, FSIM, GMSD, VSI, HaarPSI, CIEDE2000):

* per image, the *ensemble*: the best value any attack reached;
* per attack, AttackBench's *optimality* against the ensemble (:mod:`imperceptible.evaluate.optimality`);
* the median over the images each attack fooled, and the one-sided paired Wilcoxon signed-rank test of ours
  against each peer (on the images both fooled), with the median paired ratio;
* the *anytime* curve: the median, over the correctly classified images (``inf`` for one not fooled yet), of the
  best adversarial each attack had queried within 10, 25, 50, ... passes;
* the *goal*: on every judge ours does not optimise, ours beats every peer: a higher optimality, and a paired
  p < 0.01 (or a peer that fooled fewer than 10 of the images ours fooled: its median says nothing).

Everything goes into one run directory (per-sample rows with their anytime distances, images, ``summary.json``,
plots and ``report.html``), resumable like every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..attacks import ALMA, DDN, FMN, PGDL2, CarliniWagnerL2, HumanPercOT, PerCAL, adv_lib_available
from ..attacks.registry import label
from ..config import check_int_option, identity, option, record
from ..costs.metrics import METRICS, judges
from ..engine import Engine
from ..evaluate.evaluator import Evaluator
from ..evaluate.optimality import ensemble, optimality, paired_test
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.minimal_report import write_minimal_report
from ..runs.summary import summarize
from ..validation import ImperceptibleError
from .common import DataModelOptions, data_and_model

log = logging.getLogger(__name__)

OURS = "human-perc-ot"
CHECKPOINTS = (10, 25, 50, 100, 200, 500, 1000)
#: the goal's significance level, and the fewest images both attacks fooled for the paired test to decide
ALPHA = 0.01
MIN_PAIRS = 10


@dataclass(frozen=True)
class BenchMinimalConfig(DataModelOptions):
    """``imperceptible bench minimal``'s settings."""

    budget: int = option(200, "passes per image for every attack (forward + backward of the model)", type=int)
    peers: bool = option(True, "adv-lib's DDN, FMN, ALMA and C&W (when installed)", type=bool)
    anytime: bool = option(True, "anytime curves (the best adversarial queried within 10, 25, 50 ... passes, each "
                           "judged: about 4 more judgements per image and method)", type=bool)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int_option("budget", self.budget, minimum=20)


def minimal_attacks(cfg: BenchMinimalConfig) -> tuple[list, dict[str, str]]:
    """The benchmark's attacks at ``cfg.budget`` passes, and those left out with the reason."""
    b = cfg.budget
    atks = [HumanPercOT(budget=b), HumanPercOT.from_preset("first-success"), PGDL2(), PerCAL(max_iterations=b)]
    left_out = {}
    if cfg.peers and adv_lib_available():
        ddn = [DDN()] if b == 100 else [DDN(steps=b)] + ([DDN()] if b > 100 else [])  # and at its authors' 100 steps
        atks += ddn + [FMN(steps=b), ALMA(steps=b), ALMA(distance="lpips", steps=b), CarliniWagnerL2(steps=b)]
    elif cfg.peers:
        left_out["ddn, fmn, alma, cw"] = "adv-lib is not installed (tools/install-adv-lib.sh)"
    return atks, left_out


def per_image(rows: list[dict], key: str) -> np.ndarray:
    """AttackBench's per-image distances: 0 where the clean image was misclassified, ``inf`` where the attack
    failed, else the judge's value."""
    out = []
    for r in rows:
        v = r["metrics"].get(key)
        out.append(0.0 if not r["clean_correct"] else (v if r["success"] and v is not None else np.inf))
    return np.asarray(out, float)


def analyse(rows: dict[str, list[dict]], keys: list[str], optimises: dict[str, tuple], checkpoints) -> dict:
    """Ensemble, optimality, medians, paired tests, anytime medians and the goal (see the module docstring)."""
    per_judge = {}
    for k in keys:
        d = {m: per_image(r, k) for m, r in rows.items()}
        if not all(np.isfinite(v).any() for v in d.values() if len(v)):
            continue
        best = ensemble(d)
        correct = np.isfinite(best) & (best > 0)
        entry = {"ensemble_median": float(np.median(best[correct])) if correct.any() else None, "methods": {}}
        for m, v in d.items():
            fooled = np.isfinite(v) & (v > 0)
            test = paired_test(d[OURS], v) if m != OURS and OURS in d else None
            entry["methods"][m] = {"optimality": optimality(v, best), "median": float(np.median(v[fooled])) if
                                   fooled.any() else None, "vs_ours": test, "optimises": k in optimises.get(m, ())}
        per_judge[k] = entry
    anytime = {m: {str(c): {k: _median([_snapshot(r, c, k) for r in rs if r["clean_correct"]]) for k in keys}
                   for c in checkpoints} for m, rs in rows.items()}
    return {"judges": per_judge, "anytime": anytime if checkpoints else {}, "goal": goal(per_judge, optimises.get(OURS, ()))}


def _snapshot(row: dict, c: int, key: str) -> float:
    """The judge value of the best adversarial a sample's attack had queried within ``c`` passes; ``inf`` when it
    had found none (so that a median over all images only falls as the budget grows)."""
    snap = ((row["metrics"].get("anytime") or {}).get(str(c)) or {}).get(key)
    return float("inf") if snap is None else snap


def _median(vals) -> float | None:
    """The median, ``None`` when it is infinite (more than half not fooled yet) or there is nothing."""
    if not vals:
        return None
    m = float(np.median(np.asarray(vals, float)))
    return m if np.isfinite(m) else None


def goal(per_judge: dict, ours_optimises) -> dict:
    """Per judge ours does not optimise: does ours beat every peer? Ours beats a peer when its optimality is higher
    and either the paired one-sided Wilcoxon p on the images both fooled is below :data:`ALPHA`, or the peer fooled
    fewer than :data:`MIN_PAIRS` of the images ours fooled (a median over the few images a weak attack fools is no
    comparison; its optimality already charges it for the rest). Which peers ours falls short of, and why."""
    out = {}
    for k, e in per_judge.items():
        if k in ours_optimises or OURS not in e["methods"]:
            continue
        mine = e["methods"][OURS]
        short = {}
        for m, r in e["methods"].items():
            if m == OURS:
                continue
            t = r["vs_ours"] or {}
            better_opt = (mine["optimality"] or 0) > (r["optimality"] or 0)
            by_test = t.get("p") is not None and t["p"] < ALPHA
            few = (t.get("n") or 0) < MIN_PAIRS
            if not (better_opt and (by_test or few)):
                short[m] = {"peer_median": r["median"], "peer_optimality": r["optimality"], "p": t.get("p"),
                            "pairs": t.get("n"), "median_ratio": t.get("median_ratio")}
        out[k] = {"met": not short, "ours_median": mine["median"], "ours_optimality": mine["optimality"],
                  "short_of": short}
    return {"judges": out, "met": all(v["met"] for v in out.values()) if out else None, "alpha": ALPHA,
            "min_pairs": MIN_PAIRS}


def checkpoints_of(cfg: BenchMinimalConfig) -> tuple[int, ...]:
    """The pass budgets of the anytime curves: the standard ones below the budget, and the budget."""
    return tuple(c for c in CHECKPOINTS if c < cfg.budget) + (cfg.budget,) if cfg.anytime else ()


def minimal_summary(store, methods: dict, done: list[str], ds, cfg: BenchMinimalConfig, *, keys: list[str],
                    checkpoints, unavailable: dict | None = None, left_out: dict | None = None) -> dict:
    """The benchmark's summary of the finished methods ``done`` from the store's per-sample rows: the usual
    per-method summary plus the minimal-attack analysis (:func:`analyse`) over ``keys``."""
    optimises = {m: methods[m].optimises() for m in done}
    summary = summarize(store, done, ids=ds.ids, unavailable=unavailable or {}, optimises=optimises)
    rows = {m: store.rows(m, ds.ids) for m in done}
    summary.update(dataset=cfg.dataset, model=cfg.model, n_images=len(ds), budget=cfg.budget, ours=OURS,
                   checkpoints=list(checkpoints), left_out=left_out or {},
                   judges=[{"key": k, "label": METRICS[k].label, "show": METRICS[k].show} for k in keys],
                   minimal=analyse(rows, keys, optimises, checkpoints))
    return summary


def bench_minimal(config: BenchMinimalConfig | None = None, *, out: str | Path, attacks: list | None = None,
                  overwrite: bool = False, progress: bool = True, engine: Engine | None = None,
                  **settings) -> dict | None:
    """Run (or resume) the benchmark into ``out``; returns the summary on rank 0. ``attacks`` replaces the
    default list (tests); each gets the anytime checkpoints of the budget."""
    cfg = config or BenchMinimalConfig(**settings)
    engine = engine or Engine()
    ds, net = data_and_model(cfg, engine, progress=progress)
    atks, left_out = minimal_attacks(cfg) if attacks is None else (list(attacks), {})
    checkpoints = checkpoints_of(cfg)
    for a in atks:
        a.anytime = a.anytime or checkpoints
    methods = {label(a): a for a in atks}
    keys = [m.key for m in judges()]
    evaluator = Evaluator.for_images(ds.images, saliency=None, defenses=[], keys=tuple(keys))
    run = open_attack_run(out, job="bench minimal", config=identity(cfg), ds=ds, model=net, methods=methods,
                          evaluator=evaluator, engine=engine, overwrite=overwrite)
    if engine.is_main:
        run.write_config({"job": "bench minimal", **record(cfg), "n_images": len(ds), "engine": engine.describe(),
                          "checkpoints": list(checkpoints), "left_out": left_out,
                          "attacks": {m: {"class": type(a).__name__, **a.params()} for m, a in methods.items()}})
    failed: dict[str, str] = {}
    for m, a in methods.items():
        try:
            run_attack(run, m, a, net, ds, evaluator, batch_size=cfg.batch_size, progress=progress, engine=engine)
        except ImperceptibleError as e:
            if engine.world_size > 1:
                raise
            failed[m] = str(e)
            log.warning("%s: left out (%s)", m, e)
    if not engine.is_main:
        return None
    done = [m for m in methods if m not in failed]
    summary = minimal_summary(run.store, methods, done, ds, cfg, keys=[k for k in keys if k not in evaluator.unavailable],
                              checkpoints=checkpoints, unavailable=evaluator.unavailable,
                              left_out={**left_out, **failed})
    run.write_json("summary.json", summary)
    write_minimal_report(run, ds, summary, done)
    return summary


__all__ = ["BenchMinimalConfig", "analyse", "bench_minimal", "checkpoints_of", "goal", "minimal_attacks",
           "minimal_summary", "per_image"]
