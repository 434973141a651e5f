"""``imperceptible fairness``: the paper's §4 question, as a study that could find it true or false.

Does DRO with ``human-perc-ot`` lower the slope of group accuracy on log GDP more than DRO with ``pgd-l2``, beyond
what the same schedule without attacks, plain continued training, random noise of the same size and an oracle
that removes the cue do? And does it do so through the paper's mechanism: a cue the perceptual cost finds cheap
(``--design mechanism``), which its attacks change and PGD's do not, so that training removes the model's reliance
on it? The negative control (``reversed``: a cue the cost finds dear) and the ``null`` design (no link to GDP)
say whether an effect is the mechanism's.

Stages (:mod:`.stages`), each written as it finishes (paths: :mod:`.layout`): per replicate - its own world
(:mod:`.worlds`) - the pre-trained model and Algorithm 2 per family; the gates (:mod:`.gates`), fixed before any
Algorithm 3 run; Algorithm 3 for every arm (:mod:`.datasets`), replicate and seed; then the summary
(:mod:`.summary`: the primary endpoint, the secondary outcomes, Holm) and the report (:mod:`.report`). With
``--worlds-per-call N`` the worlds are finished one at a time, N per call (for time-limited jobs: a finished world
needs only its JSON records; a world whose records lost their files is computed whole again), and the gates are
computed after the last world from the same records by the same rule and thresholds.

``--arms protocol`` runs the arms of the protocol fixed before the run (:mod:`.protocol`, a TOML file given with
``--protocol``; issue 36): a positive control, the refined and the paper's presets, a dose-response in lambda and
the A/A family beside the primary pair; its analysis (:mod:`.analysis`) is paired by world and ends in the
protocol's verdict.
"""

from __future__ import annotations

import logging
import typing
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ... import __version__
from ...config import identity, record
from ...data.registry import root
from ...engine import Engine
from ...notices import MSG_STUDY_STOPPED, log_warning
from ...runs.rundir import RunDir
from .analysis import protocol_analysis
from .config import ARM_SETS, FairnessConfig
from .layout import OWNED, StudyLayout
from .protocol import Protocol, ProtocolAnalysis, apply_protocol, check_arms, check_resume, given_settings, load_protocol
from .report import print_study, study_plots, write_study_report
from .stages import (
    AA,
    BASELINE,
    OURS,
    PRETRAIN,
    Study,
    algorithm2,
    algorithm3,
    arms_of,
    default_families,
    forget_world,
    gate_stage,
    load_model,
    make_model,
    pretrain,
    world_finished,
    written,
)
from .summary import models_table, summarize_study
from .worlds import Worlds

log = logging.getLogger(__name__)


def _open(cfg: FairnessConfig, out, families, overwrite: bool, engine: Engine, protocol: Protocol | None) -> RunDir:
    if engine.is_main:
        check_resume(out, protocol, overwrite)  # one line, before the run directory's own (longer) comparison
    fingerprint = {"config": identity(cfg), "version": __version__,
                   "families": {f: {"class": type(a).__name__, **a.params()} for f, a in families.items()}}
    if protocol is not None:  # only then: the fingerprints of studies run without one are unchanged
        fingerprint["protocol"] = protocol.fingerprint()
    run = RunDir.open(out, job="fairness study", main=engine.is_main, overwrite=overwrite, owned=OWNED,
                      data_roots=[root(cfg.dataset)] if root(cfg.dataset) else [], fingerprint=fingerprint)
    if engine.is_main:
        run.write_config({"job": "fairness study", **record(cfg), "engine": engine.describe(),
                          "families": {f: {"class": type(a).__name__, **a.params()} for f, a in families.items()},
                          "arms": arms_of(cfg, list(families)), "draws_per_pass": cfg.draws,
                          "pretrain": {**PRETRAIN, "epochs": cfg.pretrain_epochs},
                          **({"protocol": protocol.record()} if protocol is not None else {})})
    return run


def _configure(config: FairnessConfig | None, protocol, settings: dict) -> tuple[FairnessConfig, Protocol | None]:
    """The study's settings: ``config`` (or the ``settings`` keywords) with a protocol file's ``[study]`` applied
    (a setting given both ways with different values is refused, naming both)."""
    cfg = config or FairnessConfig(**settings)
    if protocol is None:
        return cfg, None
    proto = load_protocol(protocol)
    return apply_protocol(cfg, proto, set(settings) if config is None else given_settings(cfg)), proto


def fairness_study(config: FairnessConfig | None = None, *, out: str | Path, attacks: dict | None = None,
                   overwrite: bool = False, progress: bool = True, engine: Engine | None = None,
                   protocol: str | Path | None = None, **settings) -> dict | None:
    """Run (or resume) the study into ``out``; returns the summary on rank 0 (other ranks: ``None``). ``attacks``
    replaces the families' attacks (tests). ``protocol``: a protocol file (:mod:`.protocol`) whose settings the run
    takes and whose sha256 its fingerprint holds. With several processes Algorithm 2 runs data-parallel and the
    Algorithm 3 models are spread over the ranks."""
    cfg, proto = _configure(config, protocol, settings)
    engine = engine or Engine()
    families = attacks if attacks is not None else default_families(cfg)
    if proto is not None and attacks is None:
        check_arms(proto, cfg, families)
    run = _open(cfg, out, families, overwrite, engine, proto)
    study = Study(cfg, StudyLayout(run.path), engine, families, Worlds(cfg), progress, protocol=proto)
    replicates = range(1, cfg.dro_seeds + 1)
    pre: dict[int, dict] = {}
    alg2: dict[str, dict[int, dict]] = {f: {} for f in families}
    if cfg.worlds_per_call is not None:
        if not _world_by_world(study, pre, alg2):
            return None
        gate = gate_stage(study, pre, alg2, after_models=True)
    else:
        for r in replicates:
            pre[r] = pretrain(study, r)
            for f in families:
                alg2[f][r] = algorithm2(study, r, f)
        gate = gate_stage(study, pre, alg2)
    results = algorithm3(study)
    if not engine.is_main:
        return None
    return finish(study, pre, alg2, gate, results)


def _world_by_world(study: Study, pre: dict, alg2: dict) -> bool:
    """Finish the worlds one at a time (``--worlds-per-call``): a finished world is read from its records alone; at
    most ``worlds_per_call`` others are computed whole (pre-training, Algorithm 2, their Algorithm 3 models). Whether
    every world is finished."""
    cfg = study.cfg
    computed = 0
    for r in range(1, cfg.dro_seeds + 1):
        if world_finished(study, r):
            pre[r] = written(study.layout.pretrain(r))
            for f in study.families:
                alg2[f][r] = written(study.layout.algorithm2(f, r))
            continue
        if computed == cfg.worlds_per_call:
            if study.engine.is_main:
                done = sum(world_finished(study, q) for q in range(1, cfg.dro_seeds + 1))
                log_warning(log, MSG_STUDY_STOPPED, path=study.layout.root, done=done, worlds=cfg.dro_seeds,
                            per_call=cfg.worlds_per_call)
            return False
        forget_world(study, r)  # records kept without their files: computed whole again, not mixed
        pre[r] = pretrain(study, r)
        for f in study.families:
            alg2[f][r] = algorithm2(study, r, f)
        algorithm3(study, [r])
        computed += 1
    return True


def finish(study: Study, pre: dict, alg2: dict, gate: dict, results: list[dict]) -> dict:
    """The tables, summary, figures and report of a finished study."""
    L, cfg = study.layout, study.cfg
    table = models_table(results)
    table.to_csv(L.models_csv, index=False)
    test_groups = {}
    for r in pre:
        splits = study.worlds[r]
        groups = typing.cast(list, splits.test.groups)  # grouped data: every image has its group
        test_groups[r] = (groups, np.array([splits.covariates[g] for g in groups]))
        _accuracy_csv(L, r, pre[r], [x for x in results if x["replicate"] == r])
    first = study.worlds[next(iter(pre))]
    summary = summarize_study(record(cfg), pre, alg2, gate, results, list(study.families), study.arms, test_groups)
    if cfg.arms == "protocol":
        proto = study.protocol
        summary.update(protocol_analysis(table, results, test_groups, gate, proto.analysis if proto else
                                         ProtocolAnalysis(), proto.record() if proto else {"file": None, "sha256": None,
                                         "analysis": asdict(ProtocolAnalysis())}))
    summary.update(dataset=cfg.dataset, simulation=first.simulation, note=first.note, covariate=first.covariate_name,
                   n_train=len(first.train), n_test=len(first.test))
    atomic = RunDir(L.root)
    atomic.write_json("summary.json", summary)
    plots = study_plots(L, summary, table, next(iter(pre.values())), first.covariate_name)
    write_study_report(L, summary, plots)
    return summary


def _accuracy_csv(L: StudyLayout, r: int, pre: dict, results: list[dict]) -> None:
    """World ``r``'s ``group, covariate, n, accuracy_theta0, accuracy_ARM_kK...`` (the ``fairness test`` format)."""
    import pandas as pd

    t = pd.DataFrame(pre["groups"]).rename(columns={"accuracy": "accuracy_theta0"})
    cols = {f"accuracy_{x['arm'].replace('/', '_')}_r{r}_k{x['seed']}": x["groups"]["accuracy"] for x in results}
    L.accuracy_csv(r).parent.mkdir(parents=True, exist_ok=True)
    pd.concat([t, pd.DataFrame(cols, index=t.index)], axis=1).to_csv(L.accuracy_csv(r), index=False)


__all__ = ["AA", "ARM_SETS", "BASELINE", "OURS", "FairnessConfig", "Protocol", "default_families", "fairness_study",
           "finish", "load_model", "load_protocol", "make_model", "print_study"]
