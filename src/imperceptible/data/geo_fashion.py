"""``geo-fashion``: a SIMULATED geo-location benchmark (DESIGN.md §4), built from real parts.

The paper's ImageNet geo-location set (104k Flickr photos from 207 countries) cannot be had offline.
This simulation keeps what its fairness experiment needs:

* **Images**: ``size`` Fashion-MNIST images (train and test pooled, drawn without replacement).
* **Countries**: the 142 gapminder countries with their real GDP per capita (2007); the group
  covariate is its natural log.
* **Skewed counts**, as in the paper's Figure 13 (Shankar et al. 2017): 36 % of the images from the
  United States, 14 % from the United Kingdom, and the other half shared in proportion to
  ``sqrt(population x GDP per capita)`` (at least one image each). With the defaults 47 countries keep
  >= 50 test images, spanning log GDP 7.2 to 10.8 (the paper kept 41).
* **Country-dependent spurious features**, like the paper's red mailboxes. Two cues, each keyed to a label:

  - a 3x3 white **marker** at one of 10 positions (``marker="interior"``, the default: two rows of five
    at least 4 pixels from the edge, where SSIM's window sees it; ``"border"``: the first version's 10
    positions on the top and bottom border, which SSIM's 11x11 valid window barely covers);
  - a low-contrast **texture** (``texture=True``): a sinusoidal grating of amplitude ``texture_amplitude``
    (0.06) whose orientation (one of 10, 18 degrees apart) is keyed to a label - a perceptually cheap cue.

  In a country with log GDP ``g`` each cue shows the image's own label with probability
  ``q(g) = q_lo + (q_hi - q_lo) * clip((g - 7) / 3.8, 0, 1)`` (defaults 0.5 and 0.95), independently,
  else another label's, chosen at random. A classifier trained on the pooled data, dominated by rich
  countries, learns to trust the cues and so errs more in poor countries: a plainly trained small CNN
  shows a clearly positive accuracy-on-log-GDP slope (README, "Fairness study").

Splits are stratified by country (seeded): ``train`` 60 %, ``test`` 40 % (the per-country accuracies and
the tests use ``test``). Everything is a deterministic function of ``seed``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from ..pixels import quantize_8bit
from ..validation import check_int, check_option
from .base import ImageDataset, stratified_split
from .fashion_mnist import CLASSES, fashion_mnist
from .gapminder import gdp_table

NAME = "geo-fashion"
SIMULATION_NOTE = ("geo-fashion is a SIMULATION: Fashion-MNIST images assigned to gapminder countries with "
                   "skewed counts and country-dependent spurious cues (a marker and a faint texture); not real "
                   "geo-located photos.")
TOP_SHARES = {"United States": 0.36, "United Kingdom": 0.14}
TEST_FRACTION = 0.4
MARKER = 3
BORDER_POSITIONS = [(1, 1 + 5 * i) for i in range(5)] + [(24, 1 + 5 * i) for i in range(5)]
INTERIOR_POSITIONS = [(6, 4 + 4 * i) for i in range(5)] + [(19, 4 + 4 * i) for i in range(5)]
MARKER_POSITIONS = INTERIOR_POSITIONS
POSITIONS = {"interior": INTERIOR_POSITIONS, "border": BORDER_POSITIONS}
G_LO, G_HI = 7.0, 10.8
TEXTURE_PERIOD = 4.0  # pixels per grating cycle


def country_counts(total: int, year: int = 2007) -> pd.DataFrame:
    """Images per country: columns ``country, covariate (log GDP), gdp_per_capita, count``."""
    t = gdp_table(year)
    share = np.sqrt(t["pop"].to_numpy(float) * t["gdp_per_capita"].to_numpy(float))
    top = t["country"].isin(list(TOP_SHARES)).to_numpy()
    share[top] = 0.0
    share = share / share.sum() * (1.0 - sum(TOP_SHARES.values()))
    for c, s in TOP_SHARES.items():
        share[t["country"].to_numpy() == c] = s
    exact = share * total
    count = np.maximum(1, np.floor(exact).astype(int))
    rest = total - count.sum()  # largest remainders first
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    if rest > 0:
        count[order[:rest]] += 1
    elif rest < 0:
        big = np.argsort(-count, kind="stable")
        count[big[: -rest]] -= 1
    return pd.DataFrame({"country": t["country"], "covariate": t["log_gdp"], "gdp_per_capita": t["gdp_per_capita"],
                         "count": count})


def marker_probability(log_gdp: np.ndarray, q_lo: float = 0.5, q_hi: float = 0.95) -> np.ndarray:
    """``q(g)``: the probability that the marker agrees with the label in a country of log GDP ``g``."""
    return q_lo + (q_hi - q_lo) * np.clip((np.asarray(log_gdp, float) - G_LO) / (G_HI - G_LO), 0.0, 1.0)


def paint_markers(x: torch.Tensor, position: np.ndarray, positions=MARKER_POSITIONS) -> torch.Tensor:
    """Paint the 3x3 white marker of ``positions[position[i]]`` onto image ``i`` (a copy)."""
    out = x.clone()
    for p, (r, c) in enumerate(positions):
        idx = torch.as_tensor(np.flatnonzero(position == p), dtype=torch.long)
        out[idx, :, r : r + MARKER, c : c + MARKER] = 1.0
    return out


def marker_mask(size: tuple[int, int] = (28, 28), positions=MARKER_POSITIONS) -> torch.Tensor:
    """``(H, W)`` bool: the pixels of all 10 marker slots."""
    m = torch.zeros(size, dtype=torch.bool)
    for r, c in positions:
        m[r : r + MARKER, c : c + MARKER] = True
    return m


def texture_patterns(size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """``(10, H, W)`` gratings in ``[-1, 1]``: orientation ``k * 18`` degrees, period ``TEXTURE_PERIOD``."""
    h, w = size
    ii, jj = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    out = []
    for k in range(10):
        th = np.pi * k / 10
        out.append(torch.cos(2 * np.pi * (ii * np.cos(th) + jj * np.sin(th)) / TEXTURE_PERIOD))
    return torch.stack(out).float()


def add_texture(x: torch.Tensor, pattern: np.ndarray, amplitude: float) -> torch.Tensor:
    """Add grating ``pattern[i]`` at ``amplitude`` to image ``i``, clipped to ``[0, 1]`` and rounded to the 8-bit
    grid (the simulated images are image files, like every clean image the tool attacks)."""
    t = texture_patterns(tuple(x.shape[-2:]))[torch.as_tensor(pattern, dtype=torch.long)][:, None]
    return quantize_8bit(x + amplitude * t)


def cue_energy(delta: torch.Tensor, *, positions=MARKER_POSITIONS) -> dict[str, torch.Tensor]:
    """Per perturbation ``delta`` ``(N, 1, H, W)``: the share of its energy (squared L2) on the marker slots
    and in the span of the 10 texture gratings, with the shares a perturbation spread evenly would have."""
    d = delta.flatten(1).double()
    total = d.pow(2).sum(1).clamp_min(1e-30)
    m = marker_mask(tuple(delta.shape[-2:]), positions).flatten()
    q, _ = torch.linalg.qr(texture_patterns(tuple(delta.shape[-2:])).flatten(1).double().T)
    return {"marker_share": d[:, m].pow(2).sum(1) / total, "texture_share": (d @ q).pow(2).sum(1) / total,
            "marker_chance": torch.tensor(float(m.float().mean())),
            "texture_chance": torch.tensor(q.shape[1] / d.shape[1])}


def _build(size: int, seed: int, root, q_lo: float, q_hi: float, year: int, marker: str = "interior",
           texture: bool = True, texture_amplitude: float = 0.06) -> tuple[ImageDataset, np.ndarray]:
    """All ``size`` images with their countries; returns the dataset and the country code of each image."""
    check_option("marker", marker, tuple(POSITIONS))
    check_int("size", size, minimum=100)
    counts = country_counts(size, year)
    rng = np.random.RandomState(seed)
    tr, te = fashion_mnist("train", root), fashion_mnist("test", root)
    pool_x, pool_y = torch.cat([tr.images, te.images]), torch.cat([tr.labels, te.labels])
    if size > len(pool_y):
        raise ValueError(f"size: expected at most {len(pool_y)} (Fashion-MNIST's images), got {size}")
    pick = np.sort(rng.choice(len(pool_y), size, replace=False))
    y = pool_y[pick]
    country = np.repeat(np.arange(len(counts)), counts["count"].to_numpy())
    rng.shuffle(country)
    q = marker_probability(counts["covariate"].to_numpy(), q_lo, q_hi)[country]
    agrees = rng.rand(size) < q
    other = (y.numpy() + rng.randint(1, 10, size)) % 10
    position = np.where(agrees, y.numpy(), other)
    x = pool_x[pick]
    t_agrees = np.ones(size, dtype=bool)
    if texture:  # drawn after the marker's draws, so the marker of a given seed is the same with or without it
        t_agrees = rng.rand(size) < q
        t_other = (y.numpy() + rng.randint(1, 10, size)) % 10
        x = add_texture(x, np.where(t_agrees, y.numpy(), t_other), texture_amplitude)
    x = paint_markers(x, position, POSITIONS[marker])
    names = counts["country"].to_numpy()
    ids = [f"geo-{i:05d}" for i in range(size)]
    info = {"simulation": True, "note": SIMULATION_NOTE, "seed": seed, "q_lo": q_lo, "q_hi": q_hi, "year": year,
            "marker": marker, "texture": texture, "texture_amplitude": texture_amplitude if texture else None,
            "covariate": "log GDP per capita (gapminder)",
            "covariates": dict(zip(names.tolist(), counts["covariate"].astype(float).tolist())),
            "marker_agrees": agrees.tolist(), "texture_agrees": t_agrees.tolist() if texture else None,
            "split": "all"}
    ds = ImageDataset(NAME, x, y, ids, 10, groups=names[country].tolist(), class_names=list(CLASSES), info=info)
    return ds, country


def _take(ds: ImageDataset, index: np.ndarray, split: str) -> ImageDataset:
    """The rows ``index`` of ``ds``, with the per-image cue flags taken along."""
    sub = ds.subset(index)
    sub.info.update(split=split, marker_agrees=[ds.info["marker_agrees"][i] for i in index])
    if ds.info.get("texture_agrees") is not None:
        sub.info["texture_agrees"] = [ds.info["texture_agrees"][i] for i in index]
    return sub


def geo_fashion_splits(*, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None,
                       q_lo: float = 0.5, q_hi: float = 0.95, year: int = 2007, marker: str = "interior",
                       texture: bool = True, texture_amplitude: float = 0.06) -> tuple[ImageDataset, ImageDataset]:
    """``(train, test)`` from one build of the simulation (what :func:`geo_fashion` returns per split)."""
    ds, country = _build(size, seed, root, q_lo, q_hi, year, marker, texture, texture_amplitude)
    train, test = stratified_split(country, TEST_FRACTION, seed)
    return _take(ds, np.sort(train), "train"), _take(ds, np.sort(test), "test")


def geo_fashion(split: str = "test", *, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None,
                q_lo: float = 0.5, q_hi: float = 0.95, year: int = 2007, marker: str = "interior",
                texture: bool = True, texture_amplitude: float = 0.06) -> ImageDataset:
    """The simulated geo benchmark's ``split`` (``train``, ``test`` or ``all``); see the module docstring.

    ``info["covariates"]`` maps each country to its log GDP per capita; ``groups`` holds the countries.
    """
    check_option("split", split, ("train", "test", "all"))
    kw = dict(marker=marker, texture=texture, texture_amplitude=texture_amplitude)
    if split == "all":
        return _build(size, seed, root, q_lo, q_hi, year, **kw)[0]
    train, test = geo_fashion_splits(size=size, seed=seed, root=root, q_lo=q_lo, q_hi=q_hi, year=year, **kw)
    return train if split == "train" else test
