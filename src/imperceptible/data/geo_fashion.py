"""``geo-fashion``: a SIMULATED geo-location benchmark, built from real parts, in several designs.

The paper's ImageNet geo-location set (104k Flickr photos from 207 countries) cannot be had offline. This
simulation keeps what its fairness experiment needs:

* **Images**: ``size`` Fashion-MNIST images (train and test pooled, drawn without replacement).
* **Countries**: the 142 gapminder countries with their real GDP per capita (2007); the covariate is its log.
* **Skewed counts**, as in the paper's Figure 13 (Shankar et al. 2017): 36 % of the images from the United
  States, 14 % from the United Kingdom, the other half in proportion to ``sqrt(population x GDP per capita)``
  (at least one image each). With the defaults about 47 countries keep >= 50 test images.
* **Label-keyed spurious cues** (:mod:`.cues`), like the paper's red mailboxes: in a country with log GDP ``g``
  a cue shows the image's own label with probability ``q(g) = q_lo + (q_hi - q_lo) * clip((g - 7) / 3.8, 0, 1)``
  (0.5 to 0.95), else another label's, at random. A model trained on the pooled data, dominated by rich
  countries, learns to trust the cue and errs more in poor countries.

**Designs** (``design=``), to test the paper's mechanism (its Figure 1: a cue people do not use drives the
disparity; perturbations cheap under the perceptual cost change it; DRO against them removes the reliance):

* ``mechanism`` (default): a multiplicative illumination ramp (:class:`~.cues.Ramp`), cheap for ``1 - SSIM``;
* ``reversed``, the negative control: an oriented grating of the same flip L2 and reliability, expensive for
  ``1 - SSIM`` (:class:`~.cues.Grating`): if the mechanism is real, Human_Perc_OT does no better than PGD here;
* ``null``: the mechanism's cue with a reliability flat in GDP (the image-weighted mean of ``q``): every slope
  and every difference should be about 0;
* ``legacy``: the first version (a faint grating of amplitude 0.06 and a 3x3 white marker), for comparison.

Splits are stratified by country (seeded): ``train`` 60 %, ``test`` 40 %. Everything is a deterministic function of
``seed`` (a *world*: its images, country assignment and cue draws). ``info`` holds the base images (before the
cues, 8-bit), each cue's labels and whether they agree with the image's label, so a cue can be repainted on the
same image (interventional reliance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import MSG_PARAM, ParameterError
from ..validation import check_int, check_option
from .base import ImageDataset, stratified_split
from .cues import LABELS, LEGACY_GRATING_AMPLITUDE, Cue, Grating, Marker, Ramp, paint_all
from .fashion_mnist import CLASSES, fashion_mnist
from .gapminder import gdp_table

NAME = "geo-fashion"
SIMULATION_NOTE = ("geo-fashion is a SIMULATION: Fashion-MNIST images assigned to gapminder countries with "
                   "skewed counts and country-dependent label-keyed cues; not real geo-located photos.")
TOP_SHARES = {"United States": 0.36, "United Kingdom": 0.14}
TEST_FRACTION = 0.4
G_LO, G_HI = 7.0, 10.8


@dataclass(frozen=True)
class Design:
    """A world's cues and how their reliability depends on income (``gdp`` or ``flat``)."""

    cues: tuple[Cue, ...]
    reliability: str = "gdp"
    description: str = ""
    extra: dict = field(default_factory=dict)


DESIGNS: dict[str, Design] = {
    "mechanism": Design((Ramp(),), "gdp", "a multiplicative illumination ramp keyed to the label: cheap for 1 - SSIM"),
    "reversed": Design((Grating(),), "gdp", "an oriented grating of the same flip L2: expensive for 1 - SSIM"),
    "null": Design((Ramp(),), "flat", "the mechanism's ramp with a reliability flat in GDP"),
    "legacy": Design((Grating(LEGACY_GRATING_AMPLITUDE, name="texture"), Marker()), "gdp",
                     "the first version: a faint grating and a 3x3 white marker"),
}
DEFAULT_DESIGN = "mechanism"


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
    """``q(g)``: the probability that a cue agrees with the label in a country of log GDP ``g``."""
    return q_lo + (q_hi - q_lo) * np.clip((np.asarray(log_gdp, float) - G_LO) / (G_HI - G_LO), 0.0, 1.0)


def _draw_cue(rng: np.random.RandomState, y: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    agrees = rng.rand(len(y)) < q
    other = (y + rng.randint(1, LABELS, len(y))) % LABELS
    return np.where(agrees, y, other), agrees


def _build(size: int, seed: int, root, q_lo: float, q_hi: float, year: int, design: str) -> tuple[ImageDataset, np.ndarray]:
    """All ``size`` images of the world ``seed``; returns the dataset and each image's country code."""
    d = DESIGNS[check_option("design", design, tuple(DESIGNS))]
    check_int("size", size, minimum=100)
    counts = country_counts(size, year)
    rng = np.random.RandomState(seed)
    tr, te = fashion_mnist("train", root), fashion_mnist("test", root)
    pool_x, pool_y = torch.cat([tr.images, te.images]), torch.cat([tr.labels, te.labels])
    if size > len(pool_y):
        raise ParameterError.of(MSG_PARAM, name="size", expected=f"at most {len(pool_y)} (Fashion-MNIST's images)", got=size)
    pick = np.sort(rng.choice(len(pool_y), size, replace=False))
    y = pool_y[pick]
    country = np.repeat(np.arange(len(counts)), counts["count"].to_numpy())
    rng.shuffle(country)
    q = marker_probability(counts["covariate"].to_numpy(), q_lo, q_hi)[country]
    if d.reliability == "flat":
        q = np.full_like(q, q.mean())
    draws = [_draw_cue(rng, y.numpy(), q) for _ in d.cues]
    base = pool_x[pick]
    x = paint_all(base, list(d.cues), [torch.as_tensor(lab) for lab, _ in draws])
    names = counts["country"].to_numpy()
    info = {"simulation": True, "note": SIMULATION_NOTE, "seed": seed, "q_lo": q_lo, "q_hi": q_hi, "year": year,
            "design": design, "design_description": d.description, "reliability": d.reliability,
            "covariate": "log GDP per capita (gapminder)",
            "covariates": dict(zip(names.tolist(), counts["covariate"].astype(float).tolist())),
            "cues": [{"name": c.name, "labels": lab.tolist(), "agrees": ag.tolist()} for c, (lab, ag) in zip(d.cues, draws)],
            "base": (base * 255).round().to(torch.uint8), "split": "all"}
    ds = ImageDataset(NAME, x, y, [f"geo-{i:05d}" for i in range(size)], LABELS, groups=names[country].tolist(),
                      class_names=list(CLASSES), info=info)
    return ds, country


def _take(ds: ImageDataset, index: np.ndarray, split: str) -> ImageDataset:
    """The rows ``index`` of ``ds`` (the base images and cue draws taken along by :meth:`ImageDataset.subset`)."""
    sub = ds.subset(index)
    sub.info["split"] = split
    return sub


def design_cues(ds: ImageDataset) -> list[Cue]:
    """The cue objects of a geo-fashion dataset's design (for repainting and decoding)."""
    return list(DESIGNS[ds.info["design"]].cues)


def repaint(ds: ImageDataset, cue: int, labels, rows=None) -> torch.Tensor:
    """``ds``'s images (the rows ``rows``, repeats allowed; default all) with cue number ``cue`` (-1: the design's
    primary, the last painted) painted for ``labels`` instead, the other cues as they were: the intervention of
    interventional reliance, and the oracle arm's images."""
    idx = torch.arange(len(ds)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    draws = [torch.as_tensor(c["labels"])[idx] for c in ds.info["cues"]]
    draws[cue] = torch.as_tensor(labels)
    return paint_all(ds.info["base"][idx].float() / 255, design_cues(ds), draws)


def geo_fashion_splits(*, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None, q_lo: float = 0.5,
                       q_hi: float = 0.95, year: int = 2007, design: str = DEFAULT_DESIGN) -> tuple[ImageDataset, ImageDataset]:
    """``(train, test)`` of the world ``seed`` in ``design`` (what :func:`geo_fashion` returns per split)."""
    ds, country = _build(size, seed, root, q_lo, q_hi, year, design)
    train, test = stratified_split(country, TEST_FRACTION, seed)
    return _take(ds, np.sort(train), "train"), _take(ds, np.sort(test), "test")


def geo_fashion(split: str = "test", *, size: int = 30000, seed: int = 0, root: str | os.PathLike | None = None,
                q_lo: float = 0.5, q_hi: float = 0.95, year: int = 2007, design: str = DEFAULT_DESIGN) -> ImageDataset:
    """The simulated geo benchmark's ``split`` (``train``, ``test`` or ``all``); see the module docstring.

    ``info["covariates"]`` maps each country to its log GDP per capita; ``groups`` holds the countries.
    """
    check_option("split", split, ("train", "test", "all"))
    if split == "all":
        return _build(size, seed, root, q_lo, q_hi, year, design)[0]
    train, test = geo_fashion_splits(size=size, seed=seed, root=root, q_lo=q_lo, q_hi=q_hi, year=year, design=design)
    return train if split == "train" else test


__all__ = ["DEFAULT_DESIGN", "DESIGNS", "Design", "NAME", "SIMULATION_NOTE", "country_counts", "design_cues",
           "geo_fashion", "geo_fashion_splits", "marker_probability", "repaint"]
