"""``imperceptible``: attacks, benchmarks, fairness tests and what the tool knows (``info``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..validation import ImperceptibleError


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def _options(pairs: Sequence[str]) -> dict:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            raise ImperceptibleError(f"--param: expected KEY=VALUE, got {p!r}")
        out[k.replace("-", "_")] = _parse_value(v)
    return out


ENGINE_FLAGS = ("accelerator", "devices", "num_nodes", "strategy", "precision")  # EngineConfig's fields


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Fabric's options; their values are checked by :class:`~imperceptible.engine.EngineConfig`."""
    g = p.add_argument_group("scale-out (Lightning Fabric; defaults: one process on the CPU)")
    g.add_argument("--accelerator", default="cpu", help="cpu (default), gpu, cuda or auto")
    g.add_argument("--devices", type=int, default=1, help="processes (CPU) or GPUs per node")
    g.add_argument("--num-nodes", type=int, default=1, help="nodes (launch with torchrun / fabric run / SLURM)")
    g.add_argument("--strategy", default="auto", help="Fabric strategy (auto: ddp when more than one process)")
    g.add_argument("--precision", default="32-true",
                   help="32-true (default), bf16-mixed or 16-mixed: under mixed precision the attacks run in "
                   "autocast and success is re-judged in float32")


def engine_config(args):
    from ..engine import EngineConfig

    return EngineConfig(**{k: getattr(args, k) for k in ENGINE_FLAGS})


def make_cli_engine(args):
    from ..engine import make_engine

    return make_engine(engine_config(args))


def cmd_info(args) -> int:
    from ..attacks import DESCRIPTIONS as ATK
    from ..costs import info as cost_info
    from ..data import DESCRIPTIONS as DATA
    from ..models import info as model_info

    info = {
        "version": __version__,
        "datasets": [{"name": k, "description": v} for k, v in DATA.items()],
        "models": model_info(),
        "costs": cost_info(),
        "attacks": [{"name": k, "description": v} for k, v in ATK.items()],
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
            state = f"found at {w['path']}" if w["found"] else "NOT FOUND; looked in " + "; ".join(w.get("searched", [w.get("path") or ""]))
            extra = f" (held-out accuracy {w['test_accuracy']:.3f})" if w.get("test_accuracy") else ""
            print(f"  {'':28s} weights {w['file']}: {state}{extra}")
    print("\nCosts:")
    for c in info["costs"]:
        print(f"  {c['name']:28s} {c['description']}")
        for w in c["weights"]:
            state = f"found at {w['path']}" if w["found"] else "NOT FOUND; looked in " + "; ".join(w["searched"])
            print(f"  {'':28s} weights {w['file']}{' (' + w['net'] + ')' if 'net' in w else ''}: {state}")
    print("\nAttacks:")
    for a in info["attacks"]:
        print(f"  {a['name']:28s} {a['description']}")
    return 0


def cmd_attack(args) -> int:
    from ..runs.attack_job import attack_job

    opts = _options(args.param)
    if args.cost:
        opts["cost"] = args.cost
    if args.confidence is not None:
        opts["confidence"] = args.confidence
    s = attack_job(dataset=args.dataset, model=args.model, attack=args.attack, out=args.out, options=opts,
                   limit=args.limit, batch_size=args.batch_size, learned=not args.no_learned,
                   progress=not args.quiet, engine=make_cli_engine(args))
    if s is None:  # not rank 0: rank 0 reports
        return 0
    _print_summary(s)
    print(f"\nrun directory: {args.out}")
    return 0


def _print_summary(s: dict) -> None:
    cols = [("success_rate", "success"), ("l2", "L2"), ("linf", "Linf"), ("ssim_distance", "1-SSIM"),
            ("ms_ssim_distance", "1-MS-SSIM"), ("lpips_x1000", "LPIPSx1000"), ("ssim", "SSIM"),
            ("ms_ssim", "MS-SSIM"), ("second_true_rate", "2nd:true"), ("mean_steps", "steps"),
            ("time_s", "time s"), ("time_ratio_to_pgd_l2", "t/PGD")]
    cols = [c for c in cols if any(c[0] in r for r in s["methods"].values())]
    print(f"{'method':28s}" + "".join(f"{c[1]:>12s}" for c in cols))
    for m, r in s["methods"].items():
        cells = "".join(f"{'n/a':>12s}" if r.get(k) is None else f"{r[k]:12.5g}" for k, _ in cols)
        print(f"{m:28s}{cells}")
    for k, v in s.get("unavailable", {}).items():
        print(f"  {k}: not computed ({v.split(':')[0]})")


MSG_ENGINE_ONLY = "bench {bench}: expected the default engine (one process, 32-true); {flags} apply to bench attacks"


def cmd_bench(args) -> int:
    if args.bench != "attacks":
        from ..engine import EngineConfig

        default, asked = EngineConfig(), engine_config(args)
        flags = [f"--{k.replace('_', '-')}" for k in ENGINE_FLAGS if getattr(asked, k) != getattr(default, k)]
        if flags:
            raise ImperceptibleError(MSG_ENGINE_ONLY.format(bench=args.bench, flags=", ".join(flags)))
    if args.bench == "attacks":
        from ..runs.bench_attacks import bench_attacks

        s = bench_attacks(dataset=args.dataset or "imagenet-samples", model=args.model or "efficientnet-lite0",
                          out=args.out, limit=args.limit, batch_size=args.batch_size,
                          perc_al_iterations=args.perc_al_iterations, learned=not args.no_learned,
                          quick=args.quick, progress=not args.quiet, engine=make_cli_engine(args))
        if s is None:  # not rank 0: rank 0 reports
            return 0
    elif args.bench == "onestep":
        from ..runs.bench_onestep import bench_onestep

        s = bench_onestep(dataset=args.dataset or "mnist", model=args.model or "mnist-cnn", out=args.out,
                          limit=args.limit, eps=args.eps, solver=args.solver, progress=not args.quiet)
    else:
        from ..runs.bench_ablation import bench_ablation

        s = bench_ablation(dataset=args.dataset or "imagenet-samples", model=args.model or "efficientnet-lite0",
                           out=args.out, limit=args.limit, batch_size=args.batch_size, progress=not args.quiet)
    _print_summary(s)
    print(f"\nrun directory: {args.out}  (report: {args.out}/report.html)")
    return 0


def cmd_fairness_test(args) -> int:
    from ..fairness import accuracy_columns_of, compare_slopes, read_table, slope_test

    table = read_table(args.table)
    cols = accuracy_columns_of(table)
    results = {c: slope_test(table, accuracy=c, min_count=args.min_count) for c in cols}
    out: dict = {"slope_tests": results}
    if args.ours and args.other:
        ours = [results[c]["beta"] for c in cols if c.startswith(f"accuracy_{args.ours}")]
        other = [results[c]["beta"] for c in cols if c.startswith(f"accuracy_{args.other}")]
        out["t_test"] = compare_slopes(ours, other)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'accuracy column':28s}{'beta':>10s}{'F':>10s}{'df1':>5s}{'df2':>5s}{'p':>10s}{'groups':>8s}")
    for c, r in results.items():
        print(f"{c:28s}{r['beta']:10.4f}{r['F']:10.3f}{r['df1']:5d}{r['df2']:5d}{r['p']:10.4g}{r['n_groups']:8d}")
    if "t_test" in out:
        t = out["t_test"]
        print(f"\nH0: mean beta({args.ours}) >= mean beta({args.other}): t = {t['t']:.3f}, df = {t['df']:g}, "
              f"p = {t['p']:.4g} ({t['test']}, K = {t['k_ours']} vs {t['k_other']})")
    return 0


def cmd_fairness_study(args) -> int:
    if not args.out:
        raise ImperceptibleError("fairness: expected --out DIR (the run directory), got none")
    from ..runs.fairness_study import fairness_study

    s = fairness_study(dataset=args.dataset, out=args.out, models=args.models, dro_size=args.dro_size,
                       covariates=args.covariates, size=args.size, seed=args.seed, t1=args.t1, t2=args.t2,
                       lr=args.lr, kmeans=not args.no_kmeans, min_count=args.min_count, pgd_eps=args.pgd_eps,
                       progress=not args.quiet, engine=make_cli_engine(args))
    if s is None:  # not rank 0: rank 0 reports
        return 0
    pre = s["pretrained"]
    if s["simulation"]:
        print(s["note"])
    sl = pre["slope"]
    print(f"pre-trained model: accuracy {pre['accuracy']:.4f}; beta = {sl['beta']:.4f}, "
          f"F({sl['df1']}, {sl['df2']}) = {sl['F']:.3f}, p = {sl['p']:.4g} ({sl['n_groups']} groups)")
    for f, r in s["families"].items():
        print(f"{f:16s} K = {r['k']}: mean beta = {r['beta_mean']:.4f} (sd {r['beta_sd']:.4f}), "
              f"{100 * r['significant_share']:.0f}% with p < 0.05, mean accuracy {r['accuracy_mean']:.4f}")
    t = s["t_test"]
    if t:
        print(f"H0: mean beta({s['ours']}) >= mean beta({s['other']}): t = {t['t']:.3f}, df = {t['df']:g}, "
              f"p = {t['p']:.4g}")
    print("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_times_s"].items()))
    print(f"\nrun directory: {args.out}  (report: {args.out}/report.html)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imperceptible", description=__doc__)
    p.add_argument("--version", action="version", version=f"imperceptible {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    pi = sub.add_parser("info", help="datasets, models, costs, attacks, and which weights were found")
    pi.add_argument("--json", action="store_true", help="machine-readable output")
    pi.set_defaults(func=cmd_info)

    pa = sub.add_parser("attack", help="run one attack over a dataset into a run directory (resumable)")
    pa.add_argument("--dataset", required=True)
    pa.add_argument("--model", required=True)
    pa.add_argument("--attack", required=True)
    pa.add_argument("--cost", help="perceptual cost for human-perc-ot (default ssim)")
    pa.add_argument("--confidence", type=float, help="margin a a sample must exceed (default 0)")
    pa.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="attack hyper-parameter, repeatable (e.g. --param steps=50 --param preset=paper)")
    pa.add_argument("--limit", type=int, help="first N images only")
    pa.add_argument("--batch-size", type=int, default=8)
    pa.add_argument("--out", required=True, help="run directory (re-run the same command to resume)")
    pa.add_argument("--no-learned", action="store_true", help="skip LPIPS/DISTS even if their weights exist")
    pa.add_argument("--quiet", action="store_true", help="no progress bars")
    add_engine_args(pa)
    pa.set_defaults(func=cmd_attack)

    pb = sub.add_parser("bench", help="the paper's benchmarks: attacks | onestep | ablation")
    pb.add_argument("bench", choices=["attacks", "onestep", "ablation"])
    pb.add_argument("--dataset")
    pb.add_argument("--model")
    pb.add_argument("--out", required=True)
    pb.add_argument("--limit", type=int)
    pb.add_argument("--batch-size", type=int, default=8)
    pb.add_argument("--perc-al-iterations", type=int, default=100,
                    help="PerC-AL budget (authors: 1000; 100 keeps the CPU run under 15 minutes)")
    pb.add_argument("--eps", type=float, default=10.0, help="onestep: step size (paper: 10)")
    pb.add_argument("--solver", default="cg", choices=["cg", "dense"], help="onestep: Hessian solver")
    pb.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    pb.add_argument("--no-learned", action="store_true")
    pb.add_argument("--quiet", action="store_true")
    add_engine_args(pb)
    pb.set_defaults(func=cmd_bench)

    pf = sub.add_parser(
        "fairness", help="the DRO fairness study (default), or 'fairness test' on a table",
        description="Without a sub-command: the whole study of the paper's section 4 into --out (resumable): the "
        "pre-trained model and its F-test, Algorithm 2 with human-perc-ot and with pgd-l2, K models of each "
        "family by Algorithm 3, the t-test, plots, summary.json and report.html. 'fairness test' runs the "
        "tests alone on a CSV table.")
    pf.add_argument("--dataset", default="geo-fashion",
                    help="geo-fashion (a simulation, default) or folder:PATH with a group column in labels.csv")
    pf.add_argument("--covariates", help="CSV group,covariate (required for folder:PATH)")
    pf.add_argument("--models", type=int, default=10, help="K models per family (default 10; the paper: 50)")
    pf.add_argument("--dro-size", type=int, default=3000, help="training images given to Algorithm 2 (default 3000)")
    pf.add_argument("--size", type=int, default=30000, help="geo-fashion: images in the simulation (default 30000)")
    pf.add_argument("--t1", type=int, default=3, help="Algorithm 2 epochs (paper: 3)")
    pf.add_argument("--t2", type=int, default=3, help="Algorithm 3 passes (paper: 3)")
    pf.add_argument("--lr", type=float, default=0.1, help="SGD learning rate of Algorithms 2 and 3 (paper: 0.1)")
    pf.add_argument("--pgd-eps", type=float, default=2.0, help="L2 budget of the pgd-l2 family (default 2.0)")
    pf.add_argument("--no-kmeans", action="store_true", help="run the attack on every image (no k-means cache)")
    pf.add_argument("--min-count", type=int, default=50, help="drop groups with fewer test images (paper: 50)")
    pf.add_argument("--seed", type=int, default=0)
    pf.add_argument("--out", help="run directory (re-run the same command to resume)")
    pf.add_argument("--quiet", action="store_true")
    add_engine_args(pf)
    pf.set_defaults(func=cmd_fairness_study)
    fsub = pf.add_subparsers(dest="fairness_command", required=False)
    pt = fsub.add_parser("test", help="GLS slope F-test per accuracy column of a table (and the family t-test)")
    pt.add_argument("--table", required=True,
                    help="CSV with group,covariate,n and accuracy (or one accuracy_<model> column per model)")
    pt.add_argument("--min-count", type=int, default=50, help="drop groups with fewer images (paper: 50)")
    pt.add_argument("--ours", help="prefix of our family's columns, e.g. 'ours' for accuracy_ours_1..K")
    pt.add_argument("--other", help="prefix of the other family's columns, e.g. 'pgd'")
    pt.add_argument("--json", action="store_true")
    pt.set_defaults(func=cmd_fairness_test)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
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
