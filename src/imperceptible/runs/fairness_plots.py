"""The fairness study's figures: per-group accuracy against the covariate with the GLS line (the paper's
Figure 8a) and the slopes of two model families as box plots (Figure 8b)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

SIM = " [simulation]"


def regression_plot(table: pd.DataFrame, slope: dict, path: Path, *, title: str = "", xlabel: str = "covariate",
                    simulation: bool = False) -> Path:
    """Dots: groups kept by the test (colour = image count, log scale), hollow: groups dropped; the line
    is the GLS fit with its F-test in the legend."""
    kept = table[table["n"] >= slope["min_count"]]
    dropped = table[table["n"] < slope["min_count"]]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    sc = ax.scatter(kept["covariate"], kept["accuracy"], c=kept["n"], cmap="viridis", s=36,
                    norm=LogNorm(vmin=max(1, kept["n"].min()), vmax=max(2, kept["n"].max())), zorder=3)
    if len(dropped):
        ax.scatter(dropped["covariate"], dropped["accuracy"], facecolors="none", edgecolors="#aaa", s=18,
                   label=f"dropped (n < {slope['min_count']}): {len(dropped)} groups", zorder=2)
    xs = np.linspace(table["covariate"].min(), table["covariate"].max(), 50)
    ax.plot(xs, slope["intercept"] + slope["beta"] * xs, color="crimson", lw=2,
            label=f"GLS: beta = {slope['beta']:.4f}, F({slope['df1']}, {slope['df2']}) = {slope['F']:.2f}, "
                  f"p = {slope['p']:.3g}")
    fig.colorbar(sc, ax=ax, label="images in group (test split)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy in group")
    ax.set_ylim(max(0.0, table["accuracy"].min() - 0.05), 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title((title or "Accuracy per group") + (SIM if simulation else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def slopes_plot(betas: dict[str, list[float]], beta0: float, path: Path, *, t_test: dict | None = None,
                simulation: bool = False) -> Path:
    """One horizontal box per family (with its K slopes as dots); dashed line: the pre-trained model's slope."""
    fams = list(betas)
    fig, ax = plt.subplots(figsize=(7.5, 1.1 * len(fams) + 1.8))
    ax.boxplot([betas[f] for f in fams], vert=False, widths=0.5, showfliers=False)
    rng = np.random.RandomState(0)
    for i, f in enumerate(fams, start=1):
        b = np.asarray(betas[f])
        ax.scatter(b, i + rng.uniform(-0.12, 0.12, len(b)), s=14, alpha=0.7, zorder=3)
    ax.axvline(beta0, ls="--", color="tab:blue", label=f"pre-trained model: beta0 = {beta0:.4f}")
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_yticks(range(1, len(fams) + 1), [f"{f}\n(K = {len(betas[f])})" for f in fams])
    ax.set_xlabel("beta: GLS slope of group accuracy on the covariate")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    title = "Slopes of the DRO-trained model families" + (SIM if simulation else "")
    if t_test:
        title += f"\none-sided t-test, H1: mean beta({fams[0]}) < mean beta({fams[1]}): t = {t_test['t']:.2f}, p = {t_test['p']:.3g}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
