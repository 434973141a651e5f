"""Grouped data for the fairness study: train/test splits whose images carry a group (country) and a
covariate table (group -> e.g. log GDP per capita).

* ``geo-fashion`` (the simulation, :mod:`.geo_fashion`): its own splits and covariates.
* ``folder:PATH`` (a real dataset): ``labels.csv`` must have a ``group`` column; the covariates come
  from a CSV with columns ``group,covariate``; the split is stratified by group (seeded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..validation import (
    MSG_COVARIATE_COLUMNS,
    MSG_MISSING_COVARIATE,
    MSG_NO_COVARIATES,
    MSG_NO_GROUPS,
    MSG_NONFINITE_COVARIATE,
    TableError,
)
from .base import ImageDataset, stratified_split
from .geo_fashion import DEFAULT_DESIGN, TEST_FRACTION, geo_fashion_splits
from .registry import load


@dataclass
class GroupedSplits:
    train: ImageDataset
    test: ImageDataset
    covariates: dict[str, float]
    covariate_name: str
    simulation: bool
    note: str = ""


def read_covariates(path: str | os.PathLike) -> dict[str, float]:
    """A ``group,covariate`` CSV as a dict (covariates must be finite numbers)."""
    t = pd.read_csv(path, dtype={"group": str})
    if not {"group", "covariate"} <= set(t.columns):
        raise TableError.of(MSG_COVARIATE_COLUMNS, path=path, got=",".join(map(str, t.columns)))
    v = pd.to_numeric(t["covariate"], errors="coerce")
    bad = ~np.isfinite(v.to_numpy(float))
    if bad.any():
        row = t[bad].iloc[0]
        value = row["covariate"].item() if hasattr(row["covariate"], "item") else row["covariate"]
        raise TableError.of(MSG_NONFINITE_COVARIATE, path=path, value=value, group=row["group"])
    return dict(zip(t["group"].astype(str), v.astype(float)))


def grouped_splits(name: str = "geo-fashion", *, covariates: str | os.PathLike | None = None, size: int = 30000,
                   seed: int = 0, test_fraction: float = TEST_FRACTION, design: str = DEFAULT_DESIGN) -> GroupedSplits:
    """Train and test splits with groups and covariates for ``name`` (``geo-fashion``, whose world ``seed`` in
    ``design``, or ``folder:PATH``)."""
    if name == "geo-fashion":
        train, test = geo_fashion_splits(size=size, seed=seed, design=design)
        cov = dict(train.info["covariates"])
        if covariates is not None:
            cov = read_covariates(covariates)
        return GroupedSplits(train, test, cov, train.info["covariate"], True, train.info["note"])
    ds = load(name)
    if ds.groups is None:
        raise TableError.of(MSG_NO_GROUPS, name=name)
    if covariates is None:
        raise TableError.of(MSG_NO_COVARIATES, name=name)
    cov = read_covariates(covariates)
    missing = sorted(set(ds.groups) - set(cov))
    if missing:
        raise TableError.of(MSG_MISSING_COVARIATE, groups=missing[:5])
    codes = np.unique(np.asarray(ds.groups), return_inverse=True)[1]
    tr, te = stratified_split(codes, test_fraction, seed)
    return GroupedSplits(ds.subset(np.sort(tr)), ds.subset(np.sort(te)), cov, "covariate", False)
