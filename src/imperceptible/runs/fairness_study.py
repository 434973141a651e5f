"""``imperceptible fairness``: the paper's §4 study in one resumable run directory.

Stages (each written to disk as it finishes, so a re-run skips it):

1. **pretrain** - the "pre-trained model" ``theta0``: a small CNN trained plainly (ERM) on the train
   split; its per-group test accuracy, the GLS slope on the covariate and the F-test (Figure 8a).
2. **algorithm2/FAMILY** - for each attack family (ours: ``human-perc-ot``; baseline: ``pgd-l2``),
   Algorithm 2 from ``theta0`` on ``dro_size`` training images (checkpointed every epoch), with the
   k-means cache unless switched off; what the cache saved and how the cached perturbations compare
   with the attacked ones.
3. **algorithm3/FAMILY/seed_K** - K models of each family by Algorithm 3 (seeds 1..K), each with its
   per-group accuracies and slope test (one file per model: a crash loses no finished model).
4. **t-test** of the families' slopes (Figure 8b), plots, ``accuracy.csv`` (one column per model, the
   input format of ``imperceptible fairness test``), ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attacks import HumanPercOT, PGDL2
from ..attacks.base import Attack
from ..costs import get as get_cost
from ..data.grouped import GroupedSplits, grouped_splits
from ..dro import KMeansCache, WeightedDataset, build_adversarial_dataset, sample_model
from ..dro.algorithms import atomic_save
from ..engine import Engine
from ..fairness import compare_slopes, group_accuracy, slope_test
from ..models.small_cnn import cnn_any_size
from ..models.training import train_classifier
from ..models.wrapper import ImageClassifier
from ..validation import check_int
from .fairness_plots import regression_plot, slopes_plot
from .report import table_html, write_report
from .rundir import RunDir

OURS, BASELINE = "human-perc-ot", "pgd-l2"


def default_family_attacks(*, pgd_eps: float = 2.0) -> dict[str, Attack]:
    """The two families' attacks: Algorithm 1 with its calibrated default (1 - SSIM), and PGD-L2 with the
    usual 28x28 budget (``eps`` = 2, step 0.4, 10 steps)."""
    return {OURS: HumanPercOT(), BASELINE: PGDL2(eps=pgd_eps, alpha=0.2 * pgd_eps, steps=10)}


def make_model(splits: GroupedSplits, seed: int = 0) -> ImageClassifier:
    """The study's small CNN, initialised from ``seed`` (the caller's global RNG is left as it was)."""
    c = splits.train.images.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cnn_any_size(splits.train.num_classes, c)
    return ImageClassifier(net, mean=(0.0,) * c, std=(1.0,) * c, num_classes=splits.train.num_classes,
                           input_size=None, name="fairness-cnn")


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)]).numpy()


def evaluate(model, splits: GroupedSplits, *, min_count: int) -> dict:
    """Per-group test accuracy, the slope test, overall accuracy, and (geo-fashion) the accuracy on images
    whose spurious marker agrees / disagrees with the label."""
    test = splits.test
    pred = predict(model, test.images)
    ok = pred == test.labels.numpy()
    table = group_accuracy(pred, test.labels.numpy(), test.groups)
    table.insert(1, "covariate", table["group"].map(splits.covariates).astype(float))
    out = {"accuracy": float(ok.mean()), "slope": slope_test(table, min_count=min_count),
           "groups": table.to_dict("list")}
    agrees = test.info.get("marker_agrees")
    if agrees is not None:
        a = np.asarray(agrees, bool)
        out["accuracy_marker_agrees"] = float(ok[a].mean())
        out["accuracy_marker_disagrees"] = float(ok[~a].mean()) if (~a).any() else None
    return out


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _write(run: RunDir, rel: str, data: dict) -> dict:
    run.write_json(rel, data)
    return data


def _load_model(splits: GroupedSplits, path: Path) -> ImageClassifier:
    m = make_model(splits)
    m.net.load_state_dict(torch.load(path, weights_only=True))
    return m.eval()


def cache_quality(data: WeightedDataset) -> dict:
    """Mean 1 - SSIM and L2 of the adversarial rows that came from the k-means cache vs from the attack."""
    adv = data.adversarial
    if not adv.any():
        return {}
    x0 = data.x[data.origin[adv]]
    xa = data.x[adv]
    kernel = 11 if min(xa.shape[-2:]) >= 11 else 7
    ssim = get_cost("ssim", kernel_size=kernel)
    with torch.no_grad():
        d_ssim = torch.cat([ssim(xa[i : i + 512], x0[i : i + 512]) for i in range(0, xa.shape[0], 512)])
    d_l2 = (xa - x0).flatten(1).norm(dim=1)
    changed = d_l2 > 0
    cached = data.cached[adv]
    out = {}
    for name, sel in (("cached", cached), ("attacked", ~cached)):
        s = sel & changed
        out[name] = {"rows": int(sel.sum()), "perturbed": int(s.sum()),
                     "ssim_distance": float(d_ssim[s].mean()) if s.any() else None,
                     "l2": float(d_l2[s].mean()) if s.any() else None}
    return out


def fairness_study(*, dataset: str = "geo-fashion", out: str | Path, models: int = 10, dro_size: int = 3000,
                   covariates: str | None = None, size: int = 30000, seed: int = 0, pretrain_epochs: int = 3,
                   t1: int = 3, t2: int = 3, lr: float = 0.1, batch_size: int = 64, kmeans: bool = True,
                   per_cluster: int = 5, min_count: int = 50, pgd_eps: float = 2.0,
                   attacks: dict[str, Attack] | None = None, progress: bool = True,
                   engine: Engine | None = None) -> dict | None:
    """Run (or resume) the whole study into ``out``; returns the summary (on rank 0; other ranks return
    ``None``). See the module docstring. With an ``engine`` of several processes, Algorithm 2 runs
    data-parallel and the K models of each family are spread over the ranks (rank ``r`` trains seeds
    ``r + 1, r + 1 + world, ...``); the (short) pre-training runs on rank 0 while the others wait."""
    engine = engine or Engine()
    check_int("models", models, minimum=2)
    check_int("dro_size", dro_size, minimum=10)
    run = RunDir(out)
    families = attacks if attacks is not None else default_family_attacks(pgd_eps=pgd_eps)
    splits = grouped_splits(dataset, covariates=covariates, size=size, seed=seed)
    config = {"job": "fairness study", "dataset": dataset, "simulation": splits.simulation, "models": models,
              "dro_size": dro_size, "size": size if dataset == "geo-fashion" else None, "seed": seed,
              "pretrain": {"epochs": pretrain_epochs, "optimizer": "Adam", "lr": 1e-3, "batch_size": 64},
              "algorithm2": {"T1": t1, "lr": lr, "weight_decay": 5e-4, "batch_size": batch_size,
                             "kmeans": kmeans, "per_cluster": per_cluster},
              "algorithm3": {"T2": t2, "lr": lr, "weight_decay": 5e-4, "batch_size": batch_size,
                             "seeds": list(range(1, models + 1))},
              "families": {f: {"class": type(a).__name__, **a.params()} for f, a in families.items()},
              "min_count": min_count, "covariates": covariates, "n_train": len(splits.train),
              "n_test": len(splits.test)}
    if engine.is_main:
        run.write_config({**config, "engine": engine.describe()})
    mdir = run.path / "models"

    # 1. the pre-trained model
    pre = _read(run.path / "pretrain.json")
    if pre is None and engine.is_main:
        t0 = time.perf_counter()
        theta0 = make_model(splits, seed)
        train_classifier(theta0.net, splits.train.images, splits.train.labels, epochs=pretrain_epochs, lr=1e-3,
                         batch_size=64, seed=seed, progress=progress, desc="pre-training theta0")
        atomic_save(theta0.net.state_dict(), mdir / "theta0.pt")
        pre = _write(run, "pretrain.json", {**evaluate(theta0, splits, min_count=min_count),
                                            "time_s": time.perf_counter() - t0})
    engine.barrier()
    pre = pre or _read(run.path / "pretrain.json")
    theta0 = _load_model(splits, mdir / "theta0.pt")

    # 2. Algorithm 2 per family, on the same training subset
    g = torch.Generator().manual_seed(seed)
    sub = torch.randperm(len(splits.train), generator=g)[: min(dro_size, len(splits.train))].sort().values
    xs, ys = splits.train.images[sub], splits.train.labels[sub]
    for fam, attack in families.items():
        rel = f"algorithm2/{fam}.json"
        if _read(run.path / rel) is None:  # every rank takes part (data-parallel); rank 0 writes
            t0 = time.perf_counter()
            cache = KMeansCache(xs, ys, per_cluster=per_cluster, random_state=seed) if kmeans else None
            model = copy.deepcopy(theta0).to(engine.device)
            data, model = build_adversarial_dataset(model, xs, ys, attack, lr=lr, epochs=t1, batch_size=batch_size,
                                                    seed=seed, cache=cache, progress=progress, engine=engine,
                                                    checkpoint=run.path / "algorithm2" / f"{fam}.checkpoint.pt")
            if engine.is_main:
                model = model.cpu()
                data.save(run.path / "algorithm2" / f"{fam}.dataset.pt")
                atomic_save(model.net.state_dict(), mdir / fam / "algorithm2.pt")
                _write(run, rel, {"rows": len(data), "adversarial_rows": int(data.adversarial.sum()),
                                  "kmeans": cache.stats() if cache else None,
                                  "perturbation": cache_quality(data),
                                  "model": evaluate(model, splits, min_count=min_count),
                                  "time_s": time.perf_counter() - t0, "processes": engine.world_size})
                (run.path / "algorithm2" / f"{fam}.checkpoint.pt").unlink(missing_ok=True)
            engine.barrier()
    alg2 = {fam: _read(run.path / f"algorithm2/{fam}.json") for fam in families}

    # 3. Algorithm 3: K models per family, the seeds spread over the ranks
    for fam in families:
        seeds = [k for k in engine.shard(list(range(1, models + 1)))
                 if not (run.path / f"algorithm3/{fam}/seed_{k}.json").is_file()]
        data = WeightedDataset.load(run.path / "algorithm2" / f"{fam}.dataset.pt") if seeds else None
        for k in tqdm(seeds, desc=f"Algorithm 3 ({fam})", disable=not progress or not engine.is_main, unit="model"):
            t0 = time.perf_counter()
            m = sample_model(theta0, data, lr=lr, epochs=t2, batch_size=batch_size, seed=k, device=engine.device).cpu()
            atomic_save(m.net.state_dict(), mdir / fam / f"seed_{k}.pt")
            _write(run, f"algorithm3/{fam}/seed_{k}.json", {"seed": k, **evaluate(m, splits, min_count=min_count),
                                                            "time_s": time.perf_counter() - t0})
    engine.barrier()
    if not engine.is_main:
        return None
    results = {fam: [_read(run.path / f"algorithm3/{fam}/seed_{k}.json") for k in range(1, models + 1)]
               for fam in families}
    return _finish(run, splits, config, pre, alg2, results, families=list(families))


def accuracy_table(pre: dict, results: dict[str, list[dict]]) -> pd.DataFrame:
    """``group, covariate, n, accuracy_theta0, accuracy_FAMILY_SEED ...`` (the ``fairness test`` format)."""
    t = pd.DataFrame(pre["groups"]).rename(columns={"accuracy": "accuracy_theta0"})
    cols = {f"accuracy_{fam}_{r['seed']}": r["groups"]["accuracy"] for fam, rs in results.items() for r in rs}
    return pd.concat([t, pd.DataFrame(cols, index=t.index)], axis=1)


def _finish(run: RunDir, splits: GroupedSplits, config: dict, pre: dict, alg2: dict, results: dict,
            *, families: list[str]) -> dict:
    table = accuracy_table(pre, results)
    table.to_csv(run.path / "accuracy.csv", index=False)
    betas = {f: [r["slope"]["beta"] for r in results[f]] for f in families}
    fam_summary = {}
    for f in families:
        rs = results[f]
        b = np.asarray(betas[f])
        fam_summary[f] = {
            "k": len(rs), "beta_mean": float(b.mean()), "beta_sd": float(b.std(ddof=1)),
            "beta_min": float(b.min()), "beta_max": float(b.max()),
            "significant_share": float(np.mean([r["slope"]["p"] < 0.05 for r in rs])),
            "accuracy_mean": float(np.mean([r["accuracy"] for r in rs])),
            "accuracy_marker_disagrees_mean": (float(np.mean([r["accuracy_marker_disagrees"] for r in rs]))
                                               if rs and rs[0].get("accuracy_marker_disagrees") is not None else None),
            "algorithm2": {k: v for k, v in alg2[f].items() if k != "model"},
            "algorithm2_model": {k: v for k, v in alg2[f]["model"].items() if k != "groups"},
            "time_per_model_s": float(np.mean([r["time_s"] for r in rs])),
        }
    ours, other = (families + [None])[:2]
    t_test = compare_slopes(betas[ours], betas[other]) if other else None
    stage_times = {"pretrain": pre["time_s"], **{f"algorithm2 ({f})": alg2[f]["time_s"] for f in families},
                   **{f"algorithm3 ({f}, K={len(results[f])})": float(sum(r["time_s"] for r in results[f]))
                      for f in families}}
    summary = {
        "dataset": config["dataset"], "simulation": splits.simulation, "note": splits.note,
        "covariate": splits.covariate_name, "n_train": len(splits.train), "n_test": len(splits.test),
        "pretrained": {k: v for k, v in pre.items() if k != "groups"},
        "families": fam_summary, "ours": ours, "other": other, "t_test": t_test,
        "stage_times_s": stage_times, "total_time_s": float(sum(stage_times.values())),
    }
    run.write_json("summary.json", summary)
    plots = [regression_plot(pd.DataFrame(pre["groups"]), pre["slope"], run.path / "plots" / "regression_theta0.png",
                             title="Pre-trained model: accuracy per group", xlabel=splits.covariate_name,
                             simulation=splits.simulation),
             slopes_plot(betas, pre["slope"]["beta"], run.path / "plots" / "slopes.png", t_test=t_test,
                         simulation=splits.simulation)]
    write_study_report(run, summary, plots)
    return summary


def write_study_report(run: RunDir, summary: dict, plots: list[Path]) -> Path:
    pre = summary["pretrained"]
    rows = {"pre-trained (theta0)": {"beta": pre["slope"]["beta"], "F": pre["slope"]["F"], "p": pre["slope"]["p"],
                                     "accuracy": pre["accuracy"],
                                     "dis": pre.get("accuracy_marker_disagrees")}}
    for f, s in summary["families"].items():
        m = s["algorithm2_model"]
        rows[f"{f}: Algorithm 2 model"] = {"beta": m["slope"]["beta"], "F": m["slope"]["F"], "p": m["slope"]["p"],
                                           "accuracy": m["accuracy"], "dis": m.get("accuracy_marker_disagrees")}
        rows[f"{f}: Algorithm 3, K = {s['k']} (means)"] = {
            "beta": s["beta_mean"], "beta_sd": s["beta_sd"], "sig": s["significant_share"],
            "accuracy": s["accuracy_mean"], "dis": s["accuracy_marker_disagrees_mean"]}
    cols = [("beta", "slope beta", 4), ("beta_sd", "sd of beta", 4), ("F", "F", 2), ("p", "p", "g"),
            ("sig", "share p < 0.05", "pct"), ("accuracy", "test accuracy", "pct"),
            ("dis", "accuracy, marker disagrees", "pct")]
    dro_rows = {}
    for f, s in summary["families"].items():
        a2 = s["algorithm2"]
        km = a2.get("kmeans") or {}
        pert = a2.get("perturbation", {})
        dro_rows[f] = {"rows": a2["rows"], "saved": km.get("attack_calls_saved"), "run": km.get("attack_calls_run"),
                       "frac": km.get("saved_fraction"),
                       "ssim_c": (pert.get("cached") or {}).get("ssim_distance"),
                       "ssim_a": (pert.get("attacked") or {}).get("ssim_distance"),
                       "l2_c": (pert.get("cached") or {}).get("l2"), "l2_a": (pert.get("attacked") or {}).get("l2"),
                       "time": a2["time_s"]}
    dro_cols = [("rows", "|D|", 0), ("saved", "attack calls saved (k-means)", 0), ("run", "attack calls run", 0),
                ("frac", "saved", "pct"), ("ssim_a", "1-SSIM x1000, attacked", "x1000"),
                ("ssim_c", "1-SSIM x1000, from cache", "x1000"), ("l2_a", "L2, attacked", 3),
                ("l2_c", "L2, from cache", 3), ("time", "time (s)", 1)]
    t = summary["t_test"]
    notes = []
    if summary["simulation"]:
        notes.append("<b>Simulation.</b> " + summary["note"])
    intro = (f"Dataset <code>{summary['dataset']}</code>: {summary['n_train']} training and {summary['n_test']} "
             f"test images. GLS of per-group test accuracy on {summary['covariate']} with "
             "Sigma = diag(1/sqrt(n)); groups under the minimum count dropped; F-test of beta = 0.")
    extra = ""
    if t:
        extra = (f"<h2>Family comparison (Figure 8b analogue)</h2><p>H0: mean beta({summary['ours']}) &ge; "
                 f"mean beta({summary['other']}); one-sided two-sample t-test ({t['test']}): t = {t['t']:.3f}, "
                 f"df = {t['df']:g}, p = {t['p']:.4g} (K = {t['k_ours']} and {t['k_other']}).</p>")
    times = "".join(f"<tr><th class='m'>{k}</th><td>{v:.1f}</td></tr>" for k, v in summary["stage_times_s"].items())
    extra += ("<h2>Algorithm 2: the adversarial datasets and the k-means cache</h2>" + table_html(dro_rows, dro_cols)
              + "<h2>Stage times (s; Algorithm 3: the sum of its models' times, over all ranks)</h2>"
              + f"<table>{times}</table>")
    return write_report(run.path / "report.html", title="imperceptible: fairness study", intro=intro,
                        summary={"methods": rows}, plots=plots, grids=[], notes=notes, extra_html=extra,
                        tables={"Slopes of accuracy on the covariate (Figure 8 analogue)": cols})


__all__ = ["fairness_study", "default_family_attacks", "accuracy_table", "evaluate", "OURS", "BASELINE"]
