"""Image grids: original, each attack, the amplified difference, and saliency maps (the paper's
Figures 4, 10 and 11)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..fileio import save_figure  # noqa: E402


def _show(ax, t: torch.Tensor, title: str = "", cmap=None) -> None:
    a = t.detach().cpu().clamp(0, 1)
    if a.shape[0] == 1:
        ax.imshow(a[0].numpy(), cmap=cmap or "gray", vmin=0, vmax=1)
    else:
        ax.imshow(a.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def image_grid(original: torch.Tensor, advs: dict[str, torch.Tensor], path: Path, *, saliency=None,
               caption: str = "", amplify: float | None = None) -> Path:
    """One sample: row 1 the images, row 2 ``|adv - x|`` amplified by one factor for every method (so they
    compare; the factor maps the median method's 99th-percentile difference to full scale and is printed),
    row 3 saliency maps (if ``saliency`` is given)."""
    cols = 1 + len(advs)
    rows = 3 if saliency is not None else 2
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.25 * rows), squeeze=False)
    diffs = {m: (a - original).abs() for m, a in advs.items()}
    q99 = sorted(float(torch.quantile(d.flatten(), 0.99)) for d in diffs.values()) or [1.0]
    amp = amplify or min(200.0, 1.0 / max(q99[len(q99) // 2], 1e-4))
    _show(axes[0, 0], original, "original")
    axes[1, 0].axis("off")
    axes[1, 0].text(0.5, 0.5, f"|x_adv - x|\nx {amp:.0f}", ha="center", va="center", fontsize=9)
    for j, (m, a) in enumerate(advs.items(), start=1):
        _show(axes[0, j], a, m)
        _show(axes[1, j], (diffs[m] * amp).clamp(0, 1).mean(0, keepdim=True), cmap="magma")
    if saliency is not None:
        _show(axes[2, 0], saliency(original[None])[0], "saliency (original)", cmap="inferno")
        for j, a in enumerate(advs.values(), start=1):
            _show(axes[2, j], saliency(a[None])[0], cmap="inferno")
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
