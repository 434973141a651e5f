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

from ..fileio import save_figure  # noqa: E402

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
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def slopes_plot(betas: dict[str, list[float]], beta0: float, path: Path, *,
                replicate_means: dict[str, list[float]] | None = None, test: dict | None = None,
                pair: tuple[str, str] | None = None, simulation: bool = False, beta0_label: str = "pre-trained model") -> Path:
    """One horizontal box per arm with its models' slopes as dots and its replicates' means as black
    diamonds; dashed line: the pre-trained model's slope (``beta0_label`` says which: one, or a mean)."""
    arms = list(betas)
    fig, ax = plt.subplots(figsize=(8.5, 0.8 * len(arms) + 2.0))
    ax.boxplot([betas[a] for a in arms], vert=False, widths=0.5, showfliers=False)
    rng = np.random.RandomState(0)
    for i, a in enumerate(arms, start=1):
        b = np.asarray(betas[a])
        ax.scatter(b, i + rng.uniform(-0.15, 0.15, len(b)), s=12, alpha=0.6, zorder=3)
        if replicate_means and replicate_means.get(a):
            ax.scatter(replicate_means[a], [i] * len(replicate_means[a]), marker="D", s=30, color="black", zorder=4,
                       label="replicate (D) mean" if i == 1 else None)
    ax.axvline(beta0, ls="--", color="tab:blue", label=f"{beta0_label}: beta0 = {beta0:.4f}")
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_yticks(range(1, len(arms) + 1), [f"{a}\n({len(betas[a])} models)" for a in arms], fontsize=8)
    ax.set_xlabel("beta: GLS slope of group accuracy on the covariate")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    title = "Slopes of the sampled models, per arm" + (SIM if simulation else "")
    if test and pair:
        title += (f"\nD-level Welch, H1: mean beta({pair[0]}) < mean beta({pair[1]}): t = {test['t']:.2f}, "
                  f"p = {test['p']:.3g};\ndifference {test['difference']:+.4f}, "
                  f"95% CI [{test['ci_low']:+.4f}, {test['ci_high']:+.4f}]")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def frontier_plot(models: pd.DataFrame, theta0: tuple[float, float], path: Path, *, simulation: bool = False) -> Path:
    """Accuracy against slope for every sampled model, one colour per arm (a less accurate arm can look
    fairer: this shows both at once); the star is the pre-trained model."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for arm, t in models.groupby("arm", sort=False):
        ax.scatter(t["accuracy"], t["beta"], s=18, alpha=0.75, label=f"{arm} ({len(t)})")
    ax.scatter([theta0[0]], [theta0[1]], marker="*", s=160, color="black", label="pre-trained (theta0)", zorder=5)
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("beta: slope of group accuracy on the covariate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("Accuracy and fairness together: every sampled model" + (SIM if simulation else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
