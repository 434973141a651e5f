"""``imperceptible bench attacks``: every attack on the same images and model, with the paper's
Tables 1, 2, 6 and Figures 4, 5, 7, 12 analogues, into one run directory (resumable)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..attacks import ALMA, DDN, LPA, PGDL2, PPGD, HumanPercOT, PerCAL, adv_lib_available
from ..attacks.registry import label
from ..config import check_int_option, identity, option, record
from ..costs import available
from ..engine import Engine
from ..errors import ImperceptibleError
from ..evaluate.evaluator import Evaluator
from ..runs.attack_report import make_report
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.summary import summarize
from .attack import DEFENSES_NOTE, DISTANCES_OVER, SUCCESS_RULE
from .common import DataModelOptions, data_and_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchAttacksConfig(DataModelOptions):
    """``imperceptible bench attacks``'s settings."""

    perc_al_iterations: int = option(100, "PerC-AL budget (authors: 1000; 100 keeps the CPU run short)", type=int)
    learned: bool = option(True, "LPIPS and DISTS columns (backbones fetched on first use)", type=bool)
    deep_costs: bool = option(True, "also run human-perc-ot with LPIPS and DISTS as its cost (the stand-ins for "
                              "the paper's PieAPP; its first-success preset)", type=bool)
    peers: bool = option(True, "also run adv-lib's ALMA-SSIM and DDN when adv-lib is installed", type=bool)
    self_lpips: bool = option(False, "also run PPGD and LPA with the classifier's own features as LPIPS", type=bool)
    quick: bool = option(False, "tiny budgets (a smoke test)", type=bool)
    n_grids: int = option(3, "image grids in the report", type=int, fingerprint=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int_option("perc_al_iterations", self.perc_al_iterations)
        check_int_option("n_grids", self.n_grids, minimum=0)


def default_attacks(cfg: BenchAttacksConfig, *, image_size: int = 224) -> tuple[list, dict[str, str]]:
    """The benchmark's methods for ``cfg``, and the methods left out with the reason."""
    q = cfg.quick
    hp: dict[str, Any] = {"budget": 30} if q else {}
    first: dict[str, Any] = {"steps": 30, "max_steps": 60} if q else {}
    atks = [
        HumanPercOT(**hp),
        HumanPercOT(confidence=1, **hp),
        HumanPercOT(confidence=5, **hp),
        HumanPercOT.from_preset("first-success", **first),
        HumanPercOT.from_preset("paper", **({"steps": 30} if q else {})),
        PGDL2(),
        PerCAL(max_iterations=10 if q else cfg.perc_al_iterations),
    ]
    left_out: dict[str, str] = {}
    small = image_size < 63
    for cls in (PPGD, LPA):
        kw: dict[str, Any] = {"steps": 10} if q else {}
        if cls is LPA and q:
            kw["binary_steps"] = 2
        variants = (["self"] if small else ["alexnet"] + (["self"] if cfg.self_lpips else []))
        if small:
            left_out[cls.name] = "AlexNet LPIPS needs images of at least 63 pixels: the [self] variant runs instead"
        atks += [cls(lpips_model=v, **kw) for v in variants]
    if cfg.deep_costs:
        for cost in ("lpips", "dists"):
            if small:
                left_out[f"human-perc-ot[{cost}]"] = "the deep costs need images of at least 63 pixels"
            elif available(cost):  # first-success: the refinement would judge its deep cost at every step
                atks.append(HumanPercOT.from_preset("first-success", cost=cost, **first))
            else:
                left_out[f"human-perc-ot[{cost}]"] = "its ImageNet backbone is neither here nor fetchable (offline)"
    if available("pieapp") and not small:
        atks.insert(1, HumanPercOT.from_preset("first-success", cost="pieapp", **first))
    else:
        left_out["human-perc-ot[pieapp]"] = ("PieAPP's checkpoint cannot be had offline (put PieAPPv0.1.pth in the "
                                             "torch hub cache)" if not small else "PieAPP needs 64-pixel patches")
    if cfg.peers:
        if adv_lib_available():
            atks += [ALMA(steps=10 if q else 100), DDN(steps=10 if q else 100)]
        else:
            left_out["alma[ssim], ddn"] = "adv-lib is not installed (tools/install-adv-lib.sh)"
    return atks, left_out


def bench_attacks(config: BenchAttacksConfig | None = None, *, out: str | Path, attacks: list | None = None,
                  overwrite: bool = False, progress: bool = True, engine: Engine | None = None,
                  **settings) -> dict | None:
    """Every method on the same images; ``engine`` shards the images over processes (the summary and report
    are written by rank 0, which returns the summary; other ranks return ``None``). ``attacks`` replaces the
    default methods (tests, studies of your own)."""
    cfg = config or BenchAttacksConfig(**settings)
    engine = engine or Engine()
    ds, net = data_and_model(cfg, engine, progress=progress)
    if attacks is None:
        atks, left_out = default_attacks(cfg, image_size=min(ds.images.shape[-2:]))
    else:
        atks, left_out = list(attacks), {}
    methods = {label(a): a for a in atks}
    evaluator = Evaluator.for_images(ds.images, learned=cfg.learned)
    run = open_attack_run(out, job="bench attacks", config=identity(cfg), ds=ds, model=net, methods=methods,
                          evaluator=evaluator, engine=engine, overwrite=overwrite)
    if engine.is_main:
        run.write_config({"job": "bench attacks", **record(cfg), "n_images": len(ds), "engine": engine.describe(),
                          "attacks": {m: {"class": type(a).__name__, **a.params()} for m, a in methods.items()},
                          "left_out": left_out})
    failed: dict[str, str] = {}
    for m, a in methods.items():
        try:
            run_attack(run, m, a, net, ds, evaluator, batch_size=cfg.batch_size, progress=progress, engine=engine)
        except ImperceptibleError as e:  # e.g. a deep cost whose weights vanished: report, do not invent
            if engine.world_size > 1:
                raise
            failed[m] = str(e)
            log.warning("%s: left out (%s)", m, e)
    if not engine.is_main:
        return None
    done = [m for m in methods if m not in failed]
    summary = summarize(run.store, done, ids=ds.ids, unavailable=evaluator.unavailable,
                        optimises={m: a.optimises() for m, a in methods.items()})
    summary.update(dataset=cfg.dataset, model=cfg.model, n_images=len(ds), defenses=DEFENSES_NOTE,
                   saliency_model="OpenCV spectral residual (Hou & Zhang 2007)", success_rule=SUCCESS_RULE,
                   distances_over=DISTANCES_OVER, left_out={**left_out, **failed})
    run.write_json("summary.json", summary)
    make_report(run, ds, summary, done, n_grids=cfg.n_grids,
                intro="Human_Perc_OT against PGD-L2, PerC-AL, PPGD and LPA (and ALMA-SSIM and DDN where adv-lib is "
                      "installed) on the same images and model.")
    return summary


__all__ = ["BenchAttacksConfig", "bench_attacks", "default_attacks"]
