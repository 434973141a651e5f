"""Figures: box plots and empirical CDFs of per-image distances (the paper's Figures 5 and 12), and
success after defenses (Figure 7)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..costs.metrics import METRICS  # noqa: E402
from ..fileio import save_figure  # noqa: E402

#: tab20's ten darker colours, then its ten lighter ones: the methods' colours in every figure, in order
COLOURS = tuple(matplotlib.color_sequences["tab20"][i] for i in (*range(0, 20, 2), *range(1, 20, 2)))


def method_style(j: int, method: str) -> dict:
    """The line of the ``j``-th method of a figure: its own colour for the first 20 methods (then the colours again with
    another dash pattern), solid for ours and its variants, dashed for every other attack."""
    ours = method.startswith("human-perc-ot")
    return {"color": COLOURS[j % len(COLOURS)],
            "linestyle": ("-" if ours else "--") if j < len(COLOURS) else ("-." if ours else ":")}


#: axis labels: the metric table's, without the display factor (plots show the stored values)
LABELS = {k: m.label.replace(" x1000", "") + (" (x1000)" if m.factor == 1000.0 else "") for k, m in METRICS.items()}


def distance_plot(values: dict[str, list[float]], key: str, path: Path, title: str = "") -> Path:
    """Box plot (left) and empirical CDF (right) of one distance for each method."""
    methods = [m for m, v in values.items() if v]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.45 * len(methods) + 2.6))
    data = [np.asarray(values[m]) for m in methods]
    ax1.boxplot(data, vert=False, showfliers=True)
    ax1.set_yticks(range(1, len(methods) + 1), methods)
    ax1.set_xlabel(LABELS.get(key, key))
    ax1.set_xscale("log")
    ax1.grid(alpha=0.3)
    for j, (m, d) in enumerate(zip(methods, data)):
        s = np.sort(d)
        ax2.step(s, np.arange(1, len(s) + 1) / len(s), where="post", label=m, **method_style(j, m))
    ax2.set_xscale("log")
    ax2.set_xlabel(LABELS.get(key, key))
    ax2.set_ylabel("P(distance <= d)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or f"{LABELS.get(key, key)} between attacked and original images (lower is better)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def defense_plot(summary: dict, defenses: list[str], path: Path) -> Path:
    """Grouped bars: success rate without defense and after each defense, per method."""
    methods = list(summary)
    cols = ["success_rate"] + [f"defense_{d}" for d in defenses]
    names = ["no defense"] + [d.replace("jpeg_q", "JPEG q=").replace("bits_", "bit depth ") for d in defenses]
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(methods) + 3), 4.2))
    w = 0.8 / len(cols)
    for j, (c, nm) in enumerate(zip(cols, names)):
        vals = [summary[m].get(c) or 0 for m in methods]
        ax.bar(np.arange(len(methods)) + j * w, vals, w, label=nm)
    ax.set_xticks(np.arange(len(methods)) + 0.4 - w / 2, methods, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=7, ncol=len(cols), loc="upper center", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Attack success after JPEG compression and bit-depth reduction")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
