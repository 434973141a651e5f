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
* **A country-dependent spurious feature**, like the paper's red mailboxes: every image carries a 3x3
  white marker at one of 10 border positions. In a country with log GDP ``g`` the marker sits at the
  position of the image's own label with probability
  ``q(g) = q_lo + (q_hi - q_lo) * clip((g - 7) / 3.8, 0, 1)`` (defaults 0.5 and 0.95), else at another
  label's position chosen at random. A classifier trained on the pooled data, dominated by rich
  countries, learns to trust the marker and so errs more in poor countries: a plainly trained small
  CNN shows a clearly positive accuracy-on-log-GDP slope (README, "Fairness study").

Splits are stratified by country (seeded): ``train`` 60 %, ``test`` 40 % (the per-country accuracies and
the tests use ``test``). Everything is a deterministic function of ``seed``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from ..validation import check_int, check_option
from .base import ImageDataset, stratified_split
from .fashion_mnist import CLASSES, fashion_mnist
from .gapminder import gdp_table

NAME = "geo-fashion"
SIMULATION_NOTE = ("geo-fashion is a SIMULATION: Fashion-MNIST images assigned to gapminder countries with "
                   "skewed counts and a country-dependent spurious marker; not real geo-located photos.")
TOP_SHARES = {"United States": 0.36, "United Kingdom": 0.14}
TEST_FRACTION = 0.4
MARKER = 3
MARKER_POSITIONS = [(1, 1 + 5 * i) for i in range(5)] + [(24, 1 + 5 * i) for i in range(5)]
G_LO, G_HI = 7.0, 10.8


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


def paint_markers(x: torch.Tensor, position: np.ndarray) -> torch.Tensor:
    """Paint the 3x3 white marker of ``MARKER_POSITIONS[position[i]]`` onto image ``i`` (a copy)."""
    out = x.clone()
    for p, (r, c) in enumerate(MARKER_POSITIONS):
        idx = torch.as_tensor(np.flatnonzero(position == p), dtype=torch.long)
        out[idx, :, r : r + MARKER, c : c + MARKER] = 1.0
    return out


def _build(size: int, seed: int, root, q_lo: float, q_hi: float, year: int) -> tuple[ImageDataset, np.ndarray]:
    """All ``size`` images with their countries; returns the dataset and the country code of each image."""
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
    x = paint_markers(pool_x[pick], position)
    names = counts["country"].to_numpy()
    ids = [f"geo-{i:05d}" for i in range(size)]
    info = {"simulation": True, "note": SIMULATION_NOTE, "seed": seed, "q_lo": q_lo, "q_hi": q_hi, "year": year,
            "covariate": "log GDP per capita (gapminder)",
            "covariates": dict(zip(names.tolist(), counts["covariate"].astype(float).tolist())),
            "marker_agrees": agrees.tolist(), "split": "all"}
    ds = ImageDataset(NAME, x, y, ids, 10, groups=names[country].tolist(), class_names=list(CLASSES), info=info)
    return ds, country


def _take(ds: ImageDataset, index: np.ndarray, split: str) -> ImageDataset:
    """The rows ``index`` of ``ds``, with the per-image ``marker_agrees`` flags taken along."""
    sub = ds.subset(index)
    sub.info.update(split=split, marker_agrees=[ds.info["marker_agrees"][i] for i in index])
    return sub


def geo_fashion_splits(*, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None,
                       q_lo: float = 0.5, q_hi: float = 0.95, year: int = 2007) -> tuple[ImageDataset, ImageDataset]:
    """``(train, test)`` from one build of the simulation (what :func:`geo_fashion` returns per split)."""
    ds, country = _build(size, seed, root, q_lo, q_hi, year)
    train, test = stratified_split(country, TEST_FRACTION, seed)
    return _take(ds, np.sort(train), "train"), _take(ds, np.sort(test), "test")


def geo_fashion(split: str = "test", *, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None,
                q_lo: float = 0.5, q_hi: float = 0.95, year: int = 2007) -> ImageDataset:
    """The simulated geo benchmark's ``split`` (``train``, ``test`` or ``all``); see the module docstring.

    ``info["covariates"]`` maps each country to its log GDP per capita; ``groups`` holds the countries.
    """
    check_option("split", split, ("train", "test", "all"))
    if split == "all":
        return _build(size, seed, root, q_lo, q_hi, year)[0]
    train, test = geo_fashion_splits(size=size, seed=seed, root=root, q_lo=q_lo, q_hi=q_hi, year=year)
    return train if split == "train" else test
