"""``imperceptible bench minimal``: the perceptual minimal-attack benchmark, after AttackBench (Cina, Rony et al., AAAI
2025) but judged on the 8-bit images by the perceptual judges instead of Lp norms.

Every attack runs under the same budget of ``budget`` passes per image (a pass: one forward and one backward of the
model), **enforced by the counter** (:mod:`imperceptible.attacks.counting`): a sample that has spent it is stopped,
and what an attack returns is the best 8-bit adversarial it queried within the budget (AttackBench 2.0's
semantics), ranked by its own distance. For every judge of the run:

* per image, the *ensemble*: the best value any attack reached;
* per attack, AttackBench's *optimality* against the ensemble (exact step areas, :mod:`~imperceptible.evaluate.
  optimality`; AttackBench's trapezoid form printed beside it), with a bootstrap interval;
* the median over the images each attack fooled; against each peer, the one-sided paired Wilcoxon test on
  ``log(ours / peer)`` over the images both fooled, the median paired ratio with its interval;
* the *anytime* curve: the median, over the correctly classified images (``inf`` for one not fooled yet), of the best
  adversarial each attack had queried within 10, 25, 50, ... passes;
* per attack and human-vision judge with a visibility threshold (ColorVideoVDP, SSIMULACRA2, butteraugli), the share of
  the images it fooled whose change the judge predicts to be below its threshold, with a bootstrap interval (in each
  method's summary, :mod:`imperceptible.runs.summary`): how often a person would not notice;
* the *decision* (:mod:`imperceptible.evaluate.decision`): per judge ours does not optimise, does ours hold against
  every peer (the highest optimality with a bootstrap interval of the difference above 0, and Holm-corrected paired
  p below 0.01 against every peer that fooled at least 90 % of the images)?

Without a protocol it runs the main job's attacks (ours; the minimal peers that install with the package, Boundary
Projection and PerC-AL; adv-lib's DDN and FMN when it is installed; PGD-L2, the paper's baseline, as a reference) at
50 passes on ``--dataset``'s first ``--limit`` images, every judge on the final images and :data:`ANYTIME_JUDGES` on
the anytime snapshots (judging, not attacking, is most of a run's time on 2 cores); ``--full`` adds ALMA-SSIM, ALMA-LPIPS, C&W and
SuperDeepFool (adv-lib), ours' first-success preset and every peer's polished twin. It is an exploratory run, not a
held-out claim. **With a protocol** (``--protocol FILE --run NAME
--stage tune|test``, :mod:`.protocol`) the file decides everything: the run's split of images (the tune images for
``tune``, the held-out test images for ``test``), the model, the budget, every attack with its settings, the judges,
the statistics; the run directory's fingerprint holds the file's sha256 (of everything above its ``[chosen]`` tables;
a changed protocol is refused on resume).
The tune stage scores every grid point by the protocol's rule and writes ``tuning.json`` (the choices, to be
committed into the protocol's ``[chosen]`` table before the test stage).

With ``--polish`` (and for a protocol's attacks marked ``polish``), each peer also runs *polished*: its best 8-bit
adversarial within the budget less the lattice stage's 12 passes (its anytime snapshot), then
:func:`~imperceptible.attacks.polish.polish`, all inside the same budget (a twin stored as ``PEER+polish``).

Everything goes into one run directory (per-sample rows with their anytime distances, images, ``per_image.json``
with every judge value per image and method, ``summary.json``, plots and ``report.html``), resumable like every run.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..attacks import (
    ALMA,
    DDN,
    FMN,
    PGDL2,
    BoundaryProjection,
    CarliniWagnerL2,
    HumanPercOT,
    PerCAL,
    SuperDeepFool,
    adv_lib_available,
)
from ..attacks.base import AttackResult
from ..attacks.margins import margin
from ..attacks.polish import GEOMETRY, polish
from ..attacks.registry import label
from ..config import check_int_option, identity, option, record
from ..costs.metrics import METRICS, judges
from ..data import load as load_dataset
from ..data.base import ImageDataset
from ..engine import Engine
from ..errors import MSG_PROTOCOL_CONFLICT, MSG_PROTOCOL_JUDGE, ImperceptibleError, ParameterError
from ..evaluate.evaluator import Evaluator
from ..models import input_size
from ..runs.attack_run import open_attack_run, run_attack
from ..runs.minimal_report import write_minimal_report
from ..validation import check_choice
from .common import DataModelOptions, data_and_model, model_for
from .minimal_analysis import minimal_summary, per_image_table
from .protocol import STAGES, TUNED, Protocol, choose, load_protocol, polish_passes

log = logging.getLogger(__name__)

OURS = "human-perc-ot"
CHECKPOINTS = (10, 25, 50, 100, 200, 500, 1000)
#: the largest budget taken (passes per image; AttackBench's largest is 2000): beyond it a run would take days here
MAX_BUDGET = 100_000
#: the judges of the anytime snapshots without a protocol (the run's final images get every judge): the cheaper
#: ones of each kind (colour, deep, gradient, wavelet, human vision), 0.19 of all judges' 2.45 s per 224x224 image on
#: 2 idle cores (benchmarks/judge_speed.py); the run's other judges where --judges names none of them
ANYTIME_JUDGES = ("ciede2000", "lpips_x1000", "gmsd", "haarpsi_distance", "flip", "butteraugli")
#: the options a protocol's run decides itself (its attacks and judges): refused beside --protocol, and no setting of
#: a protocol run (``polish`` and ``peers`` too are refused; they stay in the fingerprint at their defaults, as in the
#: first protocol runs)
PROTOCOL_DECIDES = ("full", "judges")


@dataclass(frozen=True)
class BenchMinimalConfig(DataModelOptions):
    """``imperceptible bench minimal``'s settings."""

    budget: int = option(50, "passes per image for every attack (forward + backward of the model), enforced by the "
                         "counter", type=int)
    peers: bool = option(True, "adv-lib's DDN and FMN, and with --full ALMA, C&W and SuperDeepFool (when installed)",
                         type=bool)
    full: bool = option(False, "every peer (adv-lib's ALMA-SSIM, ALMA-LPIPS, C&W, SuperDeepFool), ours' first-success "
                        "preset and every peer polished, beside the main job's ours, Boundary Projection, PerC-AL, "
                        "PGD-L2, DDN and FMN", type=bool)
    anytime: bool = option(True, "anytime curves (the best adversarial queried within 10, 25, 50 ... passes, each "
                           "judged: about 4 more judgements per image and method)", type=bool)
    polish: bool = option(False, "each peer also polished: its best adversarial within the budget less 12 passes, "
                          "then the lattice stage (imperceptible.polish), inside the same budget", type=bool)
    judges: str | None = option(None, "comma-separated judge keys of the metric table to rank by (default: every "
                                "judge; imperceptible info lists them)")
    protocol: str | None = option(None, "a protocol file (benchmarks/protocols/minimal.toml): its run --run decides the "
                                  "images, model, budget, attacks, judges and statistics")
    run: str | None = option(None, "the protocol's run (e.g. effnet-200)")
    stage: str = option("test", "with --protocol: tune (every attack's grid on the tune images) or test (the chosen "
                        "settings on the held-out test images)", choices=STAGES)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int_option("budget", self.budget, minimum=20, maximum=MAX_BUDGET)
        if (self.protocol is None) != (self.run is None):
            raise ParameterError.of(MSG_PROTOCOL_CONFLICT, name="--protocol and --run", expected="both or neither",
                                    got=f"--protocol {self.protocol}, --run {self.run}")


def minimal_attacks(cfg: BenchMinimalConfig) -> tuple[dict, dict[str, str]]:
    """The benchmark's attacks at ``cfg.budget`` passes (each stopped by the counter there), by method name, and those
    left out with the reason."""
    b = cfg.budget
    atks = [HumanPercOT(budget=b), BoundaryProjection(steps=b), PerCAL(max_iterations=2 * b), PGDL2()]
    if cfg.full:
        atks.insert(1, HumanPercOT.from_preset("first-success"))
    left_out = {}
    if cfg.peers and adv_lib_available():
        atks += [DDN(steps=b), FMN(steps=b)]
        if cfg.full:
            atks += [ALMA(steps=b), ALMA(distance="lpips", steps=b), CarliniWagnerL2(steps=b), SuperDeepFool()]
    elif cfg.peers:
        left_out["ddn, fmn" + (", alma, cw, sdf" if cfg.full else "")] = ("adv-lib is not installed "
                                                                          "(tools/install-adv-lib.sh)")
    for a in atks:
        a.max_passes = b
    return {label(a): a for a in atks}, left_out


def checkpoints_of(budget: int, anytime: bool = True, extra=()) -> tuple[int, ...]:
    """The pass budgets of the anytime curves: the standard ones below the budget, ``extra`` and the budget."""
    if not anytime:
        return tuple(sorted(set(extra)))
    return tuple(sorted({c for c in CHECKPOINTS if c < budget} | set(extra) | {budget}))


def polished_twin(snapshot: int, cost: str = "ssim", geometry: float = GEOMETRY):
    """The derived result of a peer's polished twin (:func:`~imperceptible.runs.attack_run.run_attack`'s ``derived``):
    its best 8-bit adversarial queried within ``snapshot`` passes, polished in the step metric's ``geometry``; its
    passes: the peer's, capped at ``snapshot``, plus the polish's."""

    def twin(model, x: torch.Tensor, y: torch.Tensor, res: AttackResult) -> AttackResult:
        snap = typing.cast(dict, res.anytime)[snapshot]  # the peer ran with this checkpoint
        start = torch.where(snap["found"].view(-1, 1, 1, 1), snap["adv"], x)
        p = polish(model, x, start, y, cost=cost, geometry=geometry)
        with torch.no_grad():
            m = margin(model(p.adv), y).cpu()
        share = (snapshot / res.passes.clamp_min(1e-9)).clamp(max=1.0)
        return dataclasses.replace(res, adv=p.adv, adv_float=p.adv, margin=m, margin_float=m,
                                   forwards=res.forwards * share + p.forwards, backwards=res.backwards * share + p.backwards,
                                   anytime=None, attack=res.attack + "+polish")

    return twin


def twin_geometry(plan: Plan) -> float:
    """The geometry of the polished twins' lattice stage: ours' (its chosen one under a protocol that tunes it), so
    that a twin polishes as ours' own lattice stage does; the package's default where ours is not in the plan."""
    ours = plan.methods.get(plan.ours)
    return float(ours.params().get("geometry", GEOMETRY)) if ours is not None else GEOMETRY


@dataclass
class Plan:
    """What a benchmark run runs: its data, model, attacks, judges, budget and roles."""

    ds: ImageDataset
    net: object
    methods: dict
    keys: list[str]
    budget: int
    ours: str
    peers: list[str]
    polished: dict  # twin -> its peer
    stats: dict
    left_out: dict
    describe: dict
    variants: list = dataclasses.field(default_factory=list)  # ours with another cost: each its own decision
    anytime_keys: tuple[str, ...] | None = None  # judges of the anytime snapshots (None: every judge)
    checkpoints: tuple[int, ...] | None = None  # the anytime checkpoints (None: the standard ones below the budget)


def _plan_default(cfg: BenchMinimalConfig, engine: Engine, progress: bool, attacks) -> Plan:
    ds, net = data_and_model(cfg, engine, progress=progress)
    if attacks is None:
        methods, left_out = minimal_attacks(cfg)
    else:
        methods, left_out = {label(a): a for a in attacks}, {}
        for a in methods.values():
            a.max_passes = a.max_passes or cfg.budget
    peers = [m for m, a in methods.items() if m != OURS and a.TAGS.threat == "minimal" and
             not m.startswith(OURS + "[")]
    polished = {f"{p}+polish": p for p in peers} if cfg.polish or cfg.full else {}
    keys = judge_keys(cfg.judges)
    anytime = tuple(k for k in ANYTIME_JUDGES if k in keys) or tuple(keys)
    return Plan(ds, net, methods, keys, cfg.budget, OURS, peers, polished, {}, left_out, {}, anytime_keys=anytime)


def judge_keys(spec: str | None) -> list[str]:
    """The judges of ``--judges`` (comma-separated metric keys), every judge of the metric table without it; an unknown
    key is refused with the close ones."""
    every = [m.key for m in judges()]
    if not spec:
        return every
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    for k in keys:
        check_choice("judge", k, every)
    return keys


def _plan_protocol(cfg: BenchMinimalConfig, engine: Engine, progress: bool) -> Plan:
    proto = load_protocol(typing.cast(str, cfg.protocol))  # set, with --run (BenchMinimalConfig checks)
    run = proto.run(typing.cast(str, cfg.run))
    _check_no_conflict(cfg, run)
    split = proto.split(run)
    ds = load_dataset(split["dataset"], ids=proto.ids(run, cfg.stage), size=input_size(run.model))
    net = model_for(run.model, ds, engine, dataset=split["dataset"], progress=progress)
    methods = proto.attacks(run, cfg.stage)
    specs = {s.name: s for s in proto.specs(run)}
    ours = next(s.name for s in specs.values() if s.role == "ours")
    if cfg.stage == "tune":
        peers = [m for m in methods if m.split("|")[0] != ours]
        polished, variants = {}, []
    else:
        peers = [m for m in methods if specs[m].role == "peer"]
        polished = proto.polished(run)
        variants = [m for m in methods if specs[m].role == "variant"]
    for j in run.judges:
        if j not in METRICS or not METRICS[j].judge:
            raise ParameterError.of(MSG_PROTOCOL_JUDGE, path=proto.path, run=run.name, got=j)
    stats = {k: proto.raw["statistics"][k] for k in ("alpha", "min_success", "n_boot", "random_state")
             if k in proto.raw["statistics"]}
    return Plan(ds, net, methods, list(run.judges), run.budget, ours, peers, polished, stats, {},
                {"protocol": proto.describe(), "protocol_run": run.name, "stage": cfg.stage, "model": run.model,
                 "split": run.split}, anytime_keys=run.anytime_judges or None,
                checkpoints=(run.anytime_checkpoints + (run.budget,)) if run.anytime_checkpoints else None,
                variants=variants)


def _check_no_conflict(cfg: BenchMinimalConfig, run) -> None:
    """A data or model option given beside a protocol and differing from its run is refused, naming both."""
    defaults = BenchMinimalConfig.__dataclass_fields__
    for name, theirs in (("model", run.model), ("budget", run.budget)):
        mine = getattr(cfg, name)
        if mine != defaults[name].default and mine != theirs:
            raise ParameterError.of(MSG_PROTOCOL_CONFLICT, name=f"--{name}", expected=f"the protocol's {theirs}", got=mine)
    for name in ("dataset", "limit", "image_size", "weights", "polish", "peers", *PROTOCOL_DECIDES):
        mine = getattr(cfg, name)
        if mine != defaults[name].default:
            raise ParameterError.of(MSG_PROTOCOL_CONFLICT, name=f"--{name.replace('_', '-')}",
                                    expected="none (the protocol decides it)", got=mine)


def _identity(cfg: BenchMinimalConfig, plan: Plan) -> dict:
    """The settings that determine a run's results: under a protocol the budget is its run's, and the options the
    protocol decides (refused beside it) are not settings of the run."""
    ident = identity(cfg)
    if cfg.protocol:
        ident = {k: v for k, v in ident.items() if k not in PROTOCOL_DECIDES} | {"budget": plan.budget}
    return ident


def bench_minimal(config: BenchMinimalConfig | None = None, *, out: str | Path, attacks: list | None = None,
                  overwrite: bool = False, progress: bool = True, engine: Engine | None = None,
                  **settings) -> dict | None:
    """Run (or resume) the benchmark into ``out``; returns the summary on rank 0. ``attacks`` replaces the
    default list (tests); each gets the anytime checkpoints of the budget and the budget as its guard."""
    cfg = config or BenchMinimalConfig(**settings)
    engine = engine or Engine()
    plan = _plan_protocol(cfg, engine, progress) if cfg.protocol else _plan_default(cfg, engine, progress, attacks)
    snapshot = int(plan.budget - polish_passes())
    # the tune stage scores final images only (its rule reads no anytime curve): no snapshot is judged there
    anytime = cfg.anytime and not (cfg.protocol and cfg.stage == "tune")
    checkpoints = (plan.checkpoints if anytime else None) or checkpoints_of(plan.budget, anytime)
    for m, a in plan.methods.items():
        a.anytime = tuple(sorted(set(a.anytime) | set(checkpoints) | ({snapshot} if m in plan.polished.values() else set())))
    keys = plan.keys
    evaluator = Evaluator.for_images(plan.ds.images, saliency=None, defenses=[], keys=tuple(keys),
                                     anytime_keys=plan.anytime_keys)
    missing = [k for k in keys if k in evaluator.unavailable]
    if missing and cfg.protocol:  # a protocol's judge that cannot be computed here is not silently dropped
        raise ParameterError.of(MSG_PROTOCOL_JUDGE, path=cfg.protocol, run=cfg.run,
                                got=f"{missing[0]} ({evaluator.unavailable[missing[0]]})")
    all_methods = {**plan.methods, **{t: plan.methods[p] for t, p in plan.polished.items()}}
    ident = _identity(cfg, plan)
    geometry = twin_geometry(plan)
    fp_config = {**ident, **plan.describe}
    run = open_attack_run(out, job="bench minimal", config=fp_config, ds=plan.ds, model=plan.net, methods=all_methods,
                          evaluator=evaluator, engine=engine, overwrite=overwrite)
    if engine.is_main:
        run.write_config({"job": "bench minimal", **record(cfg), **ident, **plan.describe,
                          "n_images": len(plan.ds),
                          "ids": plan.ds.ids, "engine": engine.describe(), "checkpoints": list(checkpoints),
                          "left_out": plan.left_out, "budget_enforced": plan.budget,
                          "attacks": {m: {"class": type(a).__name__, **a.params()} for m, a in plan.methods.items()},
                          "polished": plan.polished, "polish_geometry": geometry})
    failed: dict[str, str] = {}
    for m, a in plan.methods.items():
        twins = {t: polished_twin(snapshot, geometry=geometry) for t, p in plan.polished.items() if p == m}
        try:
            run_attack(run, m, a, plan.net, plan.ds, evaluator, batch_size=cfg.batch_size, progress=progress,
                       engine=engine, derived=twins)
        except ImperceptibleError as e:
            if engine.world_size > 1:
                raise
            failed[m] = str(e)
            log.warning("%s: left out (%s)", m, e)
    if not engine.is_main:
        return None
    done = [m for m in all_methods if m not in failed and plan.polished.get(m) not in failed]
    keys = [k for k in keys if k not in evaluator.unavailable]
    summary = minimal_summary(run.store, all_methods, done, plan.ds, keys=keys, checkpoints=checkpoints,
                              budget=plan.budget, ours=plan.ours, peers=plan.peers, polished=list(plan.polished),
                              variants=plan.variants, stats=plan.stats, unavailable=evaluator.unavailable,
                              left_out={**plan.left_out, **failed},
                              describe={"model": cfg.model, **plan.describe})
    run.write_json("per_image.json", per_image_table(run.store, done, plan.ds.ids, keys))
    if cfg.protocol and cfg.stage == "tune":
        summary["tuning"] = tuning(load_protocol(cfg.protocol), typing.cast(str, cfg.run), summary)
        run.write_json("tuning.json", summary["tuning"])
    run.write_json("summary.json", summary)
    write_minimal_report(run, plan.ds, summary, done)
    return summary


def tuning(proto: Protocol, run_name: str, summary: dict) -> dict:
    """The tune stage's choice per attack: each grid point scored by the protocol's rule (the mean optimality over the
    run's judges against the ensemble of every grid point of every attack), the best chosen (ties: the earlier point,
    the authors' default first)."""
    run = proto.run(run_name)
    judged = summary["minimal"]["judges"]
    scores = {}
    for m in summary["methods"]:
        vals = [judged[k]["methods"][m]["optimality"] for k in judged if m in judged[k]["methods"]]
        vals = [v for v in vals if v is not None and np.isfinite(v)]
        scores[m] = float(np.mean(vals)) if vals else None
    out = {"rule": proto.raw["tuning"]["rule"], "scores": scores, "chosen": {}}
    for spec in proto.specs(run):
        if spec.role in TUNED and (spec.tune or spec.modes):
            lab, extra = choose({k: v for k, v in scores.items() if v is not None}, spec)
            out["chosen"][spec.name] = {"label": lab, "settings": extra}
    return out


__all__ = ["BenchMinimalConfig", "bench_minimal", "checkpoints_of", "minimal_attacks", "polished_twin", "tuning"]
