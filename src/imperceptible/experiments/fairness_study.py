"""``imperceptible fairness``: the paper's §4 question with its controls, in one resumable run directory.

Does DRO with ``human-perc-ot`` lower the slope of group accuracy on log GDP more than DRO with ``pgd-l2``,
beyond what plain continued training and the same reweighted schedule without attacks do? Arms, every one
trained from the same pre-trained model ``theta0`` with the same number of SGD steps
(``T2 x M_ref`` draws, ``M_ref = dro_size x (1 + T1)``, the size of a literal ``D``):

* ``theta0`` - the pre-trained model (Adam, ``pretrain_epochs`` on the train split);
* ``erm`` - plain continued training: uniform draws of the replicate's training subset;
* ``FAMILY`` - DRO: Algorithm 3 on the replicate's Algorithm 2 dataset ``D`` built with that attack;
* ``FAMILY/no-attack`` - the control: Algorithm 3 on the same ``D`` with every adversarial row replaced by
  its original image (same weights, same draws, same seeds), so the difference to ``FAMILY`` is the attack.

Replicates: ``dro_seeds`` independent training subsets (``dro_size`` images each); on each, Algorithm 2 runs
once per family (so ``D`` is a replicate), and every arm samples ``models`` models (seeds ``1..K``, shared
across arms, so draws and dropout are paired). Each model is evaluated on the test split: overall accuracy,
per-group accuracy, the GLS slope and its F-test, and the reliance on each spurious cue (accuracy where the
cue agrees with the label minus where it misleads). The comparisons treat ``D`` as the unit
(:mod:`imperceptible.fairness.arms`) and adjust for accuracy; the mechanism is measured as the share of
each attack's perturbation energy on each cue.

Stages are written as they finish (``pretrain.json``, ``algorithm2/FAMILY/rR.*``, ``algorithm3/ARM/rR_kK.json``),
so a re-run skips what is done; the run directory's fingerprint refuses a re-run with other settings.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..attacks import PGDL2, HumanPercOT
from ..attacks.base import Attack
from ..config import check_int_option, check_number_option, identity, option, record
from ..costs import get as get_cost
from ..data.geo_fashion import POSITIONS, cue_energy
from ..data.grouped import GroupedSplits, grouped_splits
from ..dro import (
    READINGS,
    WEIGHTINGS,
    BatchAttacker,
    KMeansCache,
    WeightedDataset,
    build_adversarial_dataset,
    sample_model,
)
from ..dro.algorithms import WEIGHT_DECAY
from ..engine import Engine
from ..fairness import group_accuracy, slope_test
from ..fairness.arms import adjusted_for_accuracy, compare_arms
from ..fileio import atomic_save
from ..models.small_cnn import cnn_any_size
from ..models.training import train_classifier
from ..models.wrapper import ImageClassifier
from ..runs.fairness_plots import frontier_plot, regression_plot, slopes_plot
from ..runs.report import Html, esc, table_html, write_report
from ..runs.rundir import RunDir

OURS, BASELINE = "human-perc-ot", "pgd-l2"
ERM = "erm"
CONTROL = "/no-attack"
#: the pre-trained model's optimiser (Adam), learning rate and batch size: used and recorded from here
PRETRAIN = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64}


@dataclass(frozen=True)
class FairnessConfig:
    """``imperceptible fairness``'s settings (defaults: under 30 minutes on 2 CPU cores)."""

    dataset: str = option("geo-fashion", "geo-fashion (a SIMULATION) or folder:PATH with a group column in labels.csv")
    covariates: str | None = option(None, "CSV group,covariate (required for folder:PATH)")
    size: int = option(30000, "geo-fashion: images in the simulation", type=int)
    marker: str = option("interior", "geo-fashion: marker positions (interior: where SSIM sees them; border: the "
                         "first version's)", choices=tuple(POSITIONS))
    texture: bool = option(True, "geo-fashion: the second, low-contrast texture cue", type=bool)
    models: int = option(3, "K models per arm and replicate (the paper: 50 over one D)", type=int)
    dro_seeds: int = option(3, "independent replicates: training subsets, each with its own Algorithm 2 dataset "
                            "per family", type=int)
    dro_size: int = option(2000, "training images per replicate (Algorithm 2's N)", type=int)
    reading: str = option("eq3", "Algorithm 2: eq3 (attack the row's original, keep successful attacks) or literal "
                          "(re-attack the sampled row, keep every output)", choices=READINGS)
    weighting: str = option("sample", "where the weights P act: sample (draws), gradient (loss scale) or both (the "
                            "printed algorithms: P^2)", choices=WEIGHTINGS)
    t1: int = option(3, "Algorithm 2 epochs (paper: 3)", type=int)
    t2: int = option(3, "Algorithm 3 passes (paper: 3)", type=int)
    lr: float = option(0.1, "SGD learning rate of Algorithms 2 and 3 (paper: 0.1)", type=float)
    batch_size: int = option(64, "SGD batch size", type=int)
    pretrain_epochs: int = option(3, "epochs of the pre-trained model (Adam, lr 1e-3)", type=int)
    pgd_eps: float = option(2.0, "L2 budget of the pgd-l2 family (10 steps of eps/5)", type=float)
    kmeans: bool = option(True, "the k-means cache of Appendix D", type=bool)
    per_cluster: int = option(5, "images per k-means cluster", type=int)
    min_count: int = option(50, "drop groups with fewer test images (paper: 50)", type=int)
    seed: int = option(0, "seed of the data, subsets, pre-training and Algorithm 2", type=int)

    def __post_init__(self) -> None:
        for name, minimum in (("size", 100), ("models", 2), ("dro_seeds", 1), ("dro_size", 10), ("t1", 1),
                              ("t2", 1), ("batch_size", 1), ("pretrain_epochs", 1), ("per_cluster", 1),
                              ("min_count", 1), ("seed", 0)):
            check_int_option(name, getattr(self, name), minimum=minimum)
        check_number_option("lr", self.lr)
        check_number_option("pgd_eps", self.pgd_eps)

    @property
    def draws(self) -> int:
        """``M_ref``: rows per Algorithm 3 pass in every arm (the size of a literal ``D``)."""
        return self.dro_size * (1 + self.t1)


def default_family_attacks(*, pgd_eps: float = 2.0) -> dict[str, Attack]:
    """The two families' attacks: Algorithm 1 with its calibrated first-success preset (1 - SSIM; the refinement
    would multiply Algorithm 2's cost by about ten), and PGD-L2 with the usual 28x28 budget (``eps`` = 2, 10 steps
    of ``eps / 5``)."""
    return {OURS: HumanPercOT.from_preset("first-success"), BASELINE: PGDL2(eps=pgd_eps, alpha=0.2 * pgd_eps, steps=10)}


def make_model(splits: GroupedSplits, seed: int = 0) -> ImageClassifier:
    """The study's small CNN, initialised from ``seed`` (the caller's global RNG is left as it was)."""
    c = splits.train.images.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cnn_any_size(splits.train.num_classes, c)
    return ImageClassifier(net, mean=(0.0,) * c, std=(1.0,) * c, num_classes=splits.train.num_classes,
                           input_size=None, name="fairness-cnn")


def load_model(splits: GroupedSplits, path: Path) -> ImageClassifier:
    m = make_model(splits)
    m.net.load_state_dict(torch.load(path, weights_only=True))
    return m.eval()


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    dev = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(dev)).argmax(1).cpu()
                      for i in range(0, x.shape[0], batch_size)]).numpy()


def reliance(ok: np.ndarray, agrees) -> dict | None:
    """Accuracy where a cue agrees with the label, where it misleads, and their difference."""
    if agrees is None:
        return None
    a = np.asarray(agrees, bool)
    if not a.any() or a.all():
        return None
    return {"agrees": float(ok[a].mean()), "misleads": float(ok[~a].mean()), "reliance": float(ok[a].mean() - ok[~a].mean())}


def evaluate(model, splits: GroupedSplits, *, min_count: int) -> dict:
    """Per-group test accuracy, the slope test, overall accuracy, and the reliance on each spurious cue."""
    test = splits.test
    pred = predict(model, test.images)
    ok = pred == test.labels.numpy()
    table = group_accuracy(pred, test.labels.numpy(), test.groups)
    table.insert(1, "covariate", table["group"].map(splits.covariates).astype(float))
    return {"accuracy": float(ok.mean()), "slope": slope_test(table, min_count=min_count),
            "groups": table.to_dict("list"), "marker": reliance(ok, test.info.get("marker_agrees")),
            "texture": reliance(ok, test.info.get("texture_agrees"))}


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:  # a damaged stage file is redone
        return None


def mechanism(data: WeightedDataset, *, marker: str | None) -> dict:
    """What the attack did in Algorithm 2: success, perturbation size (L2 and 1 - SSIM to the attacked image
    and to the original) and, on geo-fashion, the share of its energy on each cue."""
    adv = data.adversarial & ~data.cached
    if not adv.any():
        return {"attacked_rows": 0}
    xa, src, orig = data.x[adv], data.x[data.attacked_from[adv]], data.x[data.origin[adv]]
    delta = xa - src
    moved = delta.flatten(1).abs().amax(1) > 0
    ssim = get_cost("ssim", kernel_size=11 if min(xa.shape[-2:]) >= 11 else 7)
    with torch.no_grad():
        d_src = torch.cat([ssim(xa[i : i + 512], src[i : i + 512]) for i in range(0, len(xa), 512)])
        d_orig = torch.cat([ssim(xa[i : i + 512], orig[i : i + 512]) for i in range(0, len(xa), 512)])
    out = {"attacked_rows": int(adv.sum()), "changed_rows": int(moved.sum()),
           "l2_step": float(delta.flatten(1).norm(dim=1)[moved].mean()) if moved.any() else None,
           "ssim_distance_step": float(d_src[moved].mean()) if moved.any() else None,
           "l2_to_original": float((xa - orig).flatten(1).norm(dim=1).mean()),
           "ssim_distance_to_original": float(d_orig.mean()),
           "cached_rows": int((data.adversarial & data.cached).sum())}
    if marker is not None and moved.any() and xa.shape[1] == 1:
        e = cue_energy(delta[moved], positions=POSITIONS[marker])
        out.update(marker_energy_share=float(e["marker_share"].mean()), marker_chance=float(e["marker_chance"]),
                   texture_energy_share=float(e["texture_share"].mean()), texture_chance=float(e["texture_chance"]))
    return out


def fairness_study(config: FairnessConfig | None = None, *, out: str | Path, attacks: dict[str, Attack] | None = None,
                   overwrite: bool = False, progress: bool = True, engine: Engine | None = None,
                   **settings) -> dict | None:
    """Run (or resume) the study into ``out``; returns the summary on rank 0 (other ranks: ``None``). With
    an engine of several processes Algorithm 2 runs data-parallel and the Algorithm 3 models are spread over
    the ranks; the (short) pre-training runs on rank 0 while the others wait."""
    cfg = config or FairnessConfig(**settings)
    engine = engine or Engine()
    families = attacks if attacks is not None else default_family_attacks(pgd_eps=cfg.pgd_eps)
    from ..data.registry import root

    run = RunDir.open(out, job="fairness study", main=engine.is_main, overwrite=overwrite,
                      owned=("pretrain.json", "algorithm2", "algorithm3", "models", "models.csv", "accuracy.csv"),
                      data_roots=[root(cfg.dataset)] if root(cfg.dataset) else [], fingerprint={
        "config": identity(cfg), "families": {f: {"class": type(a).__name__, **a.params()} for f, a in families.items()},
        "version": __version__})
    splits = grouped_splits(cfg.dataset, covariates=cfg.covariates, size=cfg.size, seed=cfg.seed, marker=cfg.marker,
                            texture=cfg.texture)
    arms = [ERM] + [a for f in families for a in (f, f + CONTROL)]
    if engine.is_main:
        run.write_config({"job": "fairness study", **record(cfg), "simulation": splits.simulation,
                          "families": {f: {"class": type(a).__name__, **a.params()} for f, a in families.items()},
                          "arms": arms, "draws_per_pass": cfg.draws, "n_train": len(splits.train),
                          "n_test": len(splits.test), "engine": engine.describe(),
                          "pretrain": {**PRETRAIN, "epochs": cfg.pretrain_epochs},
                          "sgd": {"optimizer": "SGD", "lr": cfg.lr, "weight_decay": WEIGHT_DECAY,
                                  "batch_size": cfg.batch_size}})
    mdir = run.path / "models"
    marker = cfg.marker if splits.simulation else None

    # 1. the pre-trained model
    pre = _read(run.path / "pretrain.json") if (mdir / "theta0.pt").is_file() else None
    if pre is None and engine.is_main:
        t0 = time.perf_counter()
        theta0 = make_model(splits, cfg.seed)
        train_classifier(theta0.net, splits.train.images, splits.train.labels, epochs=cfg.pretrain_epochs,
                         seed=cfg.seed, progress=progress, desc="pre-training theta0", **PRETRAIN)
        atomic_save(theta0.net.state_dict(), mdir / "theta0.pt")
        pre = {**evaluate(theta0, splits, min_count=cfg.min_count), "time_s": time.perf_counter() - t0}
        run.write_json("pretrain.json", pre)
    engine.barrier()
    pre = pre or _read(run.path / "pretrain.json")
    theta0 = load_model(splits, mdir / "theta0.pt")

    # 2. per replicate: its training subset, then Algorithm 2 per family
    subsets = {}
    for r in range(1, cfg.dro_seeds + 1):
        g = torch.Generator().manual_seed(cfg.seed * 7919 + r)
        subsets[r] = torch.randperm(len(splits.train), generator=g)[: min(cfg.dro_size, len(splits.train))].sort().values
        xs, ys = splits.train.images[subsets[r]], splits.train.labels[subsets[r]]
        for fam, attack in families.items():
            stem = run.path / "algorithm2" / fam / f"r{r}"
            if _read(stem.with_suffix(".json")) is not None and stem.with_suffix(".dataset.pt").is_file():
                continue
            t0 = time.perf_counter()
            cache = KMeansCache(xs, ys, per_cluster=cfg.per_cluster, random_state=cfg.seed + r) if cfg.kmeans \
                else BatchAttacker()
            model = copy.deepcopy(theta0).to(engine.device)
            data, model = build_adversarial_dataset(
                model, xs, ys, attack, lr=cfg.lr, weight_decay=WEIGHT_DECAY, epochs=cfg.t1, batch_size=cfg.batch_size,
                seed=cfg.seed * 1000 + r,
                reading=cfg.reading, weighting=cfg.weighting, cache=cache, progress=progress, engine=engine,
                checkpoint=stem.with_suffix(".checkpoint.pt"))
            if engine.is_main:
                model = model.cpu()
                data.save(stem.with_suffix(".dataset.pt"))
                atomic_save(model.net.state_dict(), mdir / fam / f"algorithm2_r{r}.pt")
                run.write_json(str(stem.relative_to(run.path)) + ".json", {
                    "rows": len(data), "adversarial_rows": int(data.adversarial.sum()), "calls": cache.stats(),
                    "mechanism": mechanism(data, marker=marker),
                    "model": {k: v for k, v in evaluate(model, splits, min_count=cfg.min_count).items() if k != "groups"},
                    "time_s": time.perf_counter() - t0, "processes": engine.world_size})
                stem.with_suffix(".checkpoint.pt").unlink(missing_ok=True)
            engine.barrier()

    # 3. Algorithm 3: every arm, replicate and seed (the models spread over the ranks)
    jobs = [(arm, r, k) for r in subsets for arm in arms for k in range(1, cfg.models + 1)]
    mine = [j for j in engine.shard(jobs) if _read(_model_json(run, *j)) is None]
    cached_d: dict = {}
    for arm, r, k in tqdm(mine, desc="Algorithm 3", disable=not progress or not engine.is_main, unit="model"):
        t0 = time.perf_counter()
        data = _arm_data(run, arm, r, splits, subsets, cached_d)
        weighting = "gradient" if arm == ERM else cfg.weighting  # ERM: uniform draws of weight-1 rows
        m = sample_model(theta0, data, lr=cfg.lr, weight_decay=WEIGHT_DECAY, epochs=cfg.t2, batch_size=cfg.batch_size,
                         seed=k, weighting=weighting, draws=cfg.draws, device=engine.device).cpu()
        atomic_save(m.net.state_dict(), mdir / arm.replace("/", "_") / f"r{r}_k{k}.pt")
        res = {"arm": arm, "replicate": r, "seed": k, **evaluate(m, splits, min_count=cfg.min_count),
               "time_s": time.perf_counter() - t0}
        run.write_json(str(_model_json(run, arm, r, k).relative_to(run.path)), res)
    engine.barrier()
    if not engine.is_main:
        return None
    results = [_read(_model_json(run, *j)) for j in jobs]
    alg2 = {f: {r: _read(run.path / "algorithm2" / f / f"r{r}.json") for r in subsets} for f in families}
    return _finish(run, cfg, splits, pre, alg2, results, list(families), arms)


def _model_json(run: RunDir, arm: str, r: int, k: int) -> Path:
    return run.path / "algorithm3" / arm.replace("/", "_") / f"r{r}_k{k}.json"


def _arm_data(run: RunDir, arm: str, r: int, splits: GroupedSplits, subsets: dict, memo: dict) -> WeightedDataset:
    """The dataset an arm's Algorithm 3 draws from (loaded once per arm and replicate)."""
    key = (arm, r)
    if key not in memo:
        if arm == ERM:
            memo[key] = WeightedDataset.originals(splits.train.images[subsets[r]], splits.train.labels[subsets[r]])
        else:
            fam = arm.removesuffix(CONTROL)
            d = WeightedDataset.load(run.path / "algorithm2" / fam / f"r{r}.dataset.pt")
            memo[key] = d.without_attacks() if arm.endswith(CONTROL) else d
    return memo[key]


def models_table(results: list[dict]) -> pd.DataFrame:
    """One row per sampled model: arm, replicate, seed, beta, its p, accuracy and the cue reliances."""
    return pd.DataFrame([{
        "arm": r["arm"], "replicate": r["replicate"], "seed": r["seed"], "beta": r["slope"]["beta"],
        "p": r["slope"]["p"], "F": r["slope"]["F"], "accuracy": r["accuracy"],
        "marker_reliance": (r.get("marker") or {}).get("reliance"),
        "texture_reliance": (r.get("texture") or {}).get("reliance")} for r in results])


def accuracy_table(pre: dict, results: list[dict]) -> pd.DataFrame:
    """``group, covariate, n, accuracy_theta0, accuracy_ARM_rR_kK ...`` (the ``fairness test`` format)."""
    t = pd.DataFrame(pre["groups"]).rename(columns={"accuracy": "accuracy_theta0"})
    cols = {f"accuracy_{r['arm'].replace('/', '_')}_r{r['replicate']}_k{r['seed']}": r["groups"]["accuracy"]
            for r in results}
    return pd.concat([t, pd.DataFrame(cols, index=t.index)], axis=1)


def _mean_ci(v: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    v = np.asarray(v, float)
    if v.size < 2:
        return float(v.mean()), float("nan"), float("nan")
    ci = stats.ttest_1samp(v, 0).confidence_interval(0.95)
    return float(v.mean()), float(ci.low), float(ci.high)


def _finish(run: RunDir, cfg: FairnessConfig, splits: GroupedSplits, pre: dict, alg2: dict, results: list[dict],
            families: list[str], arms: list[str]) -> dict:
    accuracy_table(pre, results).to_csv(run.path / "accuracy.csv", index=False)
    table = models_table(results)
    table.to_csv(run.path / "models.csv", index=False)
    arm_summary = {}
    for arm in arms:
        t = table[table.arm == arm]
        dl = t.groupby("replicate").beta.mean().to_numpy()
        mean, lo, hi = _mean_ci(dl)
        arm_summary[arm] = {
            "models": int(len(t)), "replicates": int(t.replicate.nunique()), "beta_mean": float(t.beta.mean()),
            "beta_sd": float(t.beta.std(ddof=1)), "beta_replicate_means": [float(v) for v in dl],
            "beta_ci_low": lo, "beta_ci_high": hi, "significant_share": float((t.p < 0.05).mean()),
            "accuracy_mean": float(t.accuracy.mean()),
            "marker_reliance_mean": float(t.marker_reliance.mean()) if t.marker_reliance.notna().any() else None,
            "texture_reliance_mean": float(t.texture_reliance.mean()) if t.texture_reliance.notna().any() else None,
            "time_per_model_s": float(np.mean([r["time_s"] for r in results if r["arm"] == arm]))}
    pairs = [(OURS, BASELINE)] if {OURS, BASELINE} <= set(families) else []
    pairs += [(f, f + CONTROL) for f in families] + [(f, ERM) for f in families] + [(f + CONTROL, ERM) for f in families]
    comparisons = {f"{a} vs {b}": compare_arms(table, a, b) for a, b in pairs}
    adjusted = adjusted_for_accuracy(table, ERM)
    dro = {f: {
        "rows_mean": float(np.mean([alg2[f][r]["rows"] for r in alg2[f]])),
        "calls": {k: int(sum(alg2[f][r]["calls"][k] for r in alg2[f])) for k in
                  ("attack_calls_run", "attack_calls_saved", "no_attack_needed")},
        "mechanism": {k: float(np.mean([alg2[f][r]["mechanism"][k] for r in alg2[f]]))
                      for k in alg2[f][1]["mechanism"] if isinstance(alg2[f][1]["mechanism"][k], (int, float))},
        "algorithm2_model_beta_mean": float(np.mean([alg2[f][r]["model"]["slope"]["beta"] for r in alg2[f]])),
        "algorithm2_model_accuracy_mean": float(np.mean([alg2[f][r]["model"]["accuracy"] for r in alg2[f]])),
        "time_s": float(sum(alg2[f][r]["time_s"] for r in alg2[f]))} for f in families}
    for f in families:
        c = dro[f]["calls"]
        needing = c["attack_calls_run"] + c["attack_calls_saved"]
        c["saved_fraction"] = c["attack_calls_saved"] / needing if needing else None
    stage_times = {"pretrain": pre["time_s"], **{f"algorithm2 ({f})": dro[f]["time_s"] for f in families},
                   **{f"algorithm3 ({a})": float(sum(r["time_s"] for r in results if r["arm"] == a)) for a in arms}}
    summary = {
        "dataset": cfg.dataset, "simulation": splits.simulation, "note": splits.note, "config": record(cfg),
        "covariate": splits.covariate_name, "n_train": len(splits.train), "n_test": len(splits.test),
        "pretrained": {k: v for k, v in pre.items() if k != "groups"}, "arms": arm_summary, "ours": OURS,
        "other": BASELINE, "comparisons": comparisons, "adjusted_for_accuracy": adjusted, "algorithm2": dro,
        "stage_times_s": stage_times, "total_time_s": float(sum(stage_times.values())),
    }
    run.write_json("summary.json", summary)
    betas = {a: table[table.arm == a].beta.tolist() for a in arms}
    head = comparisons.get(f"{OURS} vs {BASELINE}")
    plots = [regression_plot(pd.DataFrame(pre["groups"]), pre["slope"], run.path / "plots" / "regression_theta0.png",
                             title="Pre-trained model: accuracy per group", xlabel=splits.covariate_name,
                             simulation=splits.simulation),
             slopes_plot(betas, pre["slope"]["beta"], run.path / "plots" / "slopes.png",
                         replicate_means={a: arm_summary[a]["beta_replicate_means"] for a in arms},
                         test=(head or {}).get("d_level_welch"), pair=(OURS, BASELINE) if head else None,
                         simulation=splits.simulation),
             frontier_plot(table, (pre["accuracy"], pre["slope"]["beta"]), run.path / "plots" / "frontier.png",
                           simulation=splits.simulation)]
    write_study_report(run, summary, plots)
    return summary


COMPARISON_COLS = [("difference", "difference of mean slopes", 4), ("ci_low", "95% CI low", 4),
                   ("ci_high", "95% CI high", 4), ("t", "t", 2), ("df", "df", 1), ("p", "one-sided p", "g")]


def write_study_report(run: RunDir, summary: dict, plots: list[Path]) -> Path:
    pre = summary["pretrained"]
    rows = {"pre-trained (theta0)": {"beta_mean": pre["slope"]["beta"], "accuracy_mean": pre["accuracy"],
                                     "marker_reliance_mean": (pre.get("marker") or {}).get("reliance"),
                                     "texture_reliance_mean": (pre.get("texture") or {}).get("reliance"),
                                     "significant_share": float(pre["slope"]["p"] < 0.05)}}
    rows.update(summary["arms"])
    cols = [("beta_mean", "mean slope", 4), ("beta_ci_low", "95% CI low (replicates)", 4),
            ("beta_ci_high", "95% CI high", 4), ("beta_sd", "sd over models", 4),
            ("significant_share", "share p < 0.05", "pct"), ("accuracy_mean", "test accuracy", "pct"),
            ("marker_reliance_mean", "marker reliance", 3), ("texture_reliance_mean", "texture reliance", 3),
            ("models", "models", 0)]
    parts = ["<h2>Comparisons (H1: the first arm's mean slope is lower)</h2>"]
    for name, c in summary["comparisons"].items():
        tests = {"D-level Welch": c.get("d_level_welch"), "paired by replicate": c.get("paired"),
                 "model-level Welch (models as if independent)": c.get("model_level_welch"),
                 "model-level Student (the paper's)": c.get("model_level_student")}
        mm = c.get("mixed_model")
        if mm:
            tests["mixed model (random intercept per D)"] = {"difference": mm["effect"], "ci_low": mm["ci_low"],
                                                            "ci_high": mm["ci_high"], "t": mm["z"], "p": mm["p"]}
        parts.append(f"<h3>{esc(name)}</h3>" + table_html({k: v for k, v in tests.items() if v}, COMPARISON_COLS))
    adj = summary.get("adjusted_for_accuracy")
    if adj:
        parts.append(f"<h2>Slopes at matched accuracy (OLS slope ~ arm + accuracy, clustered by D; against "
                     f"{esc(adj['reference'])})</h2>")
        parts.append(table_html(adj["effects"], [("effect", "slope difference", 4), ("ci_low", "95% CI low", 4),
                                                 ("ci_high", "95% CI high", 4), ("p_two_sided", "two-sided p", "g")]))
    dro_rows = {}
    for f, d in summary["algorithm2"].items():
        m, c = d["mechanism"], d["calls"]
        dro_rows[f] = {**m, **c, "rows": d["rows_mean"], "time": d["time_s"]}
    dro_cols = [("rows", "|D| (mean)", 0), ("attack_calls_run", "attack calls run", 0),
                ("attack_calls_saved", "saved by k-means", 0), ("no_attack_needed", "no attack needed", 0),
                ("saved_fraction", "saved", "pct"), ("l2_step", "L2 per attack", 3),
                ("ssim_distance_step", "1-SSIM x1000 per attack", "x1000"),
                ("marker_energy_share", "energy on marker", "pct"), ("marker_chance", "(chance)", "pct"),
                ("texture_energy_share", "energy on texture", "pct"), ("texture_chance", "(chance)", "pct"),
                ("time", "time (s)", 1)]
    parts.append("<h2>Algorithm 2: the attacks, their calls and where their perturbations go</h2>"
                 + table_html(dro_rows, dro_cols))
    times = "".join(f"<tr><th class='m'>{esc(k)}</th><td>{v:.1f}</td></tr>" for k, v in summary["stage_times_s"].items())
    parts.append(f"<h2>Stage times (s; Algorithm 3: the sum of its models' times, over all ranks)</h2><table>{times}</table>")
    notes = [f"Simulation. {summary['note']}"] if summary["simulation"] else []
    cfg = summary["config"]
    intro = Html(f"Dataset <code>{esc(summary['dataset'])}</code>: {summary['n_train']} training and "
                 f"{summary['n_test']} test images. {cfg['dro_seeds']} replicates (training subsets of "
                 f"{cfg['dro_size']}), Algorithm 2 read as <code>{esc(cfg['reading'])}</code>, weights used for "
                 f"<code>{esc(cfg['weighting'])}</code>; K = {cfg['models']} models per arm and replicate, every arm "
                 f"with the same number of SGD steps. Slope: GLS of per-group test accuracy on "
                 f"{esc(summary['covariate'])} with Sigma = diag(1/sqrt(n)).")
    return write_report(run.path / "report.html", title="imperceptible: fairness study", intro=intro,
                        summary={"methods": rows}, plots=plots, grids=[], notes=notes, extra_html=Html("".join(parts)),
                        tables={"Arms (slope of accuracy on the covariate; Figure 8 analogue)": cols})


def print_study(s: dict) -> None:
    """The study's answer on the terminal."""
    if s["simulation"]:
        print(s["note"])
    pre = s["pretrained"]
    sl = pre["slope"]
    print(f"pre-trained model: accuracy {pre['accuracy']:.4f}; beta = {sl['beta']:.4f}, "
          f"F({sl['df1']}, {sl['df2']}) = {sl['F']:.3f}, p = {sl['p']:.4g} ({sl['n_groups']} groups)")
    for arm, a in s["arms"].items():
        print(f"{arm:26s} mean beta {a['beta_mean']:.4f} (95% CI {a['beta_ci_low']:.4f} .. {a['beta_ci_high']:.4f}), "
              f"accuracy {a['accuracy_mean']:.4f}, {a['models']} models")
    for name, c in s["comparisons"].items():
        w, kind = c.get("d_level_welch"), "D-level Welch"
        if w is None:  # one replicate: only the models, which share their D, can be compared
            w, kind = c["model_level_welch"], "model-level Welch (one replicate: about these datasets only)"
        print(f"{name}: difference {w['difference']:+.4f} (95% CI {w['ci_low']:+.4f} .. {w['ci_high']:+.4f}), "
              f"{kind} t = {w['t']:.3f}, df = {w['df']:.3g}, p = {w['p']:.4g}")
    print("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in s["stage_times_s"].items()))


__all__ = ["FairnessConfig", "accuracy_table", "default_family_attacks", "evaluate", "fairness_study", "load_model",
           "make_model", "mechanism", "models_table", "print_study", "BASELINE", "OURS"]
