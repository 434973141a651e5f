"""``imperceptible bench onestep``: the paper's Figures 3 and 9 - the one-step SSIM attack (equation 5)
against one-step PGD-L2 at the same ``eps`` on MNIST, with how much each changes the digit.

Structure is measured by SSIM and MS-SSIM to the original (7-pixel window on 28x28 digits) and by an
independently trained second classifier (``mnist-cnn-b``: another architecture and seed): the share of
attacked digits it still reads as the true label (the digit kept its meaning) and the share it reads as
the attacked model's new label (the digit turned into the other one)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from dataclasses import dataclass  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from .. import __version__  # noqa: E402
from ..attacks import PGDOneStep, SSIMOneStep  # noqa: E402
from ..attacks.onestep import check_dense_size  # noqa: E402
from ..config import check_number_option, identity, option, record  # noqa: E402
from ..costs.ms_ssim import ms_ssim  # noqa: E402
from ..costs.ssim import ssim  # noqa: E402
from ..data import load as load_dataset  # noqa: E402
from ..engine import Engine  # noqa: E402
from ..fileio import save_figure  # noqa: E402
from ..models import get as get_model  # noqa: E402
from ..runs.fingerprint import model_digest  # noqa: E402
from ..runs.report import Html, esc, write_report  # noqa: E402
from ..runs.rundir import RunDir  # noqa: E402
from .common import DataModelOptions, data_and_model  # noqa: E402

COLS = [("success_rate", "success", "pct"), ("l2", "L2", 3), ("ssim", "SSIM", 4), ("ms_ssim", "MS-SSIM", 4),
        ("second_true_rate", "2nd model: true label", "pct"),
        ("second_follows_rate", "2nd model: attacker's label", "pct"), ("time_s", "time (s)", 2)]
#: the report's note when no digit was fooled by both attacks (no figure to draw)
NO_FIGURE = "No digit was fooled by both one-step attacks, so there is no Figure 3 / 9 grid (n/a: no successful attack)."


@dataclass(frozen=True, kw_only=True)
class OnestepConfig(DataModelOptions):
    """``imperceptible bench onestep``'s settings."""

    dataset: str = option("mnist", "dataset (MNIST-size images: the dense solver is 784 Hessian columns a digit)")
    model: str = option("mnist-cnn", "attacked model")
    second: str = option("mnist-cnn-b", "the second opinion: another architecture and seed", flag="--second-model")
    eps: float = option(10.0, "L2 size of both steps (paper: 10)", type=float)
    solver: str = option("cg", "Hessian solver of the SSIM step", choices=("cg", "dense"))
    batch_size: int = option(50, "images per batch", type=int, fingerprint=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number_option("eps", self.eps)


def _mean(v: torch.Tensor, mask: torch.Tensor) -> float | None:
    """The mean of ``v`` over ``mask``; ``None`` (not NaN) when the mask is empty."""
    return float(v[mask].float().mean()) if bool(mask.any()) else None


def _figure(path: Path, x, y, advs: dict, picks: list[int], eps: float) -> Path:
    """Figure 3 / 9: for each picked digit, the original and both attacked images, titled by predicted label."""
    fig, axes = plt.subplots(3, len(picks), figsize=(1.3 * len(picks) + 0.6, 4.4), squeeze=False)
    try:
        for j, i in enumerate(picks):
            for r, (title, img, lab) in enumerate([
                    ("original", x[i], int(y[i])),
                    ("SSIM 1-step", advs["ssim-onestep"][0][i], int(advs["ssim-onestep"][2][i])),
                    ("PGD-L2 1-step", advs["pgd-onestep"][0][i], int(advs["pgd-onestep"][2][i]))]):
                ax = axes[r, j]
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{lab}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(title, fontsize=8)
        fig.suptitle(f"First digit of each class fooled by both one-step attacks (eps = {eps:g}); titles: predicted "
                     "label", fontsize=9)
        fig.tight_layout()
        return save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)


def bench_onestep(config: OnestepConfig | None = None, *, out: str | Path, overwrite: bool = False,
                  progress: bool = True, **settings) -> dict:
    cfg = config or OnestepConfig(**settings)
    dataset, model, second, eps, solver, batch_size = (cfg.dataset, cfg.model, cfg.second, cfg.eps, cfg.solver,
                                                       cfg.batch_size)
    ds = load_dataset(dataset, limit=cfg.limit)
    if solver == "dense":
        check_dense_size(ds.images.shape)  # before the models, the run directory and the work
    ds, net = data_and_model(cfg, Engine(), progress=progress)
    net2 = get_model(second, progress=progress)
    attacks = {"ssim-onestep": SSIMOneStep(eps=eps, solver=solver, kernel_size=7),
               "pgd-onestep": PGDOneStep(eps=eps)}
    run = RunDir.open(out, job="bench onestep", overwrite=overwrite, fingerprint={
        "config": identity(cfg), "models": [model_digest(net), model_digest(net2)], "version": __version__})
    run.write_config({"job": "bench onestep", **record(cfg), "n_images": len(ds)})
    x, y = ds.images, ds.labels
    results: dict = {}
    advs: dict = {}
    for name, atk in attacks.items():
        parts = []
        for s in tqdm(range(0, len(ds), batch_size), desc=name, disable=not progress):
            parts.append(atk(net, x[s : s + batch_size], y[s : s + batch_size]))
        adv = torch.cat([p.adv for p in parts])
        succ = torch.cat([p.success for p in parts])
        correct = torch.cat([p.clean_correct for p in parts])
        f = succ & correct
        with torch.no_grad():
            pred1 = net.predict(adv)
            pred2 = net2.predict(adv)
        results[name] = {
            "n": len(ds), "n_clean_correct": int(correct.sum()),
            "success_rate": float(f.sum() / correct.sum()) if bool(correct.any()) else None,
            "l2": _mean((adv - x).flatten(1).norm(dim=1), f), "ssim": _mean(ssim(adv, x, kernel_size=7), f),
            "ms_ssim": _mean(ms_ssim(adv, x, kernel_size=7), f), "second_true_rate": _mean(pred2 == y, f),
            "second_follows_rate": _mean(pred2 == pred1, f), "time_s": sum(p.time_s for p in parts),
        }
        advs[name] = (adv, f, pred1)
        run.save_images(name, ds.ids, adv)
    run.save_images("original", ds.ids, x)
    summary = {"methods": results, "unavailable": {}, "dataset": dataset, "model": model, "second_model": second,
               "eps": eps, "solver": solver, "n_images": len(ds)}
    both = advs["ssim-onestep"][1] & advs["pgd-onestep"][1]  # the first digit of each class fooled by both
    picks = [int(torch.nonzero(both & (y == c))[0]) for c in range(10) if (both & (y == c)).any()]
    summary["figure_ids"] = [ds.ids[i] for i in picks]
    grids = [_figure(run.path / "plots" / "onestep_digits.png", x, y, advs, picks, eps)] if picks else []
    run.write_json("summary.json", summary)
    write_report(run.path / "report.html", title="imperceptible: one-step SSIM attack vs one-step PGD-L2",
                 intro=Html(f"Equation 5 (dense/CG solve of the damped SSIM Hessian; solver <code>{esc(solver)}</code>) "
                            f"against one normalised gradient step, both of L2 size {eps:g}, on "
                            f"<code>{esc(dataset)}</code> with <code>{esc(model)}</code>; second opinion from "
                            f"<code>{esc(second)}</code>."),
                 summary=summary, plots=[], grids=grids, notes=[] if picks else [NO_FIGURE],
                 tables={"Figures 3 and 9 analogue": COLS})
    return summary
