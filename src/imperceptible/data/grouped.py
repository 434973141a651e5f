"""Grouped data for the fairness study: train/test splits whose images carry a group (country) and a
covariate table (group -> e.g. log GDP per capita).

* ``geo-fashion`` (the simulation, :mod:`.geo_fashion`): its own splits and covariates.
* ``folder:PATH`` (a real dataset): ``labels.csv`` must have a ``group`` column; the covariates come
  from a CSV with columns ``group,covariate``; the split is stratified by group (seeded).

Group names are compared after trimming surrounding whitespace (``"g00 "`` is ``g00``, in ``labels.csv`` and in
the covariate table alike); a covariate table that names a group twice, or a column twice, is refused.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import (
    MSG_COVARIATE_COLUMNS,
    MSG_DUPLICATE_COVARIATE,
    MSG_MISSING_COVARIATE,
    MSG_NO_COVARIATES,
    MSG_NO_GROUPS,
    MSG_NONFINITE_COVARIATE,
    MSG_TABLE_DUPLICATE_COLUMN,
    MSG_TABLE_UNREADABLE,
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


def check_header(path: str | os.PathLike) -> list[str]:
    """A CSV file's column names (trimmed), refusing one named twice (pandas would rename the second ``x.1``)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = [c.strip() for c in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TableError.of(MSG_TABLE_UNREADABLE, path=path, error=f"{type(e).__name__}: {e}") from None
    for c in dict.fromkeys(header):
        where = [i + 1 for i, h in enumerate(header) if h == c]
        if len(where) > 1:
            raise TableError.of(MSG_TABLE_DUPLICATE_COLUMN, path=path, column=c, times=len(where), positions=where)
    return header


def trimmed(groups) -> list:
    """Group names without surrounding whitespace (missing names stay missing)."""
    return [g.strip() if isinstance(g, str) else g for g in groups]


def read_covariates(path: str | os.PathLike) -> dict[str, float]:
    """A ``group,covariate`` CSV as a dict (covariates must be finite numbers, each group named once; names are
    trimmed)."""
    header = check_header(path)
    t = pd.read_csv(path, dtype={"group": str}, skipinitialspace=True)
    t.columns = header
    if not {"group", "covariate"} <= set(t.columns):
        raise TableError.of(MSG_COVARIATE_COLUMNS, path=path, got=",".join(map(str, t.columns)))
    v = pd.to_numeric(t["covariate"], errors="coerce")
    bad = ~np.isfinite(v.to_numpy(float))
    if bad.any():
        row = t[bad].iloc[0]
        value = row["covariate"].item() if hasattr(row["covariate"], "item") else row["covariate"]
        raise TableError.of(MSG_NONFINITE_COVARIATE, path=path, value=value, group=row["group"])
    groups = trimmed(t["group"].astype(str))
    seen: dict[str, list[int]] = {}
    for row, g in enumerate(groups, start=1):
        seen.setdefault(g, []).append(row)
    for g, rows in seen.items():
        if len(rows) > 1:
            same = len({float(v.iloc[r - 1]) for r in rows}) == 1
            raise TableError.of(MSG_DUPLICATE_COVARIATE, path=path, group=g, rows=rows,
                                how=" (the same value)" if same else " (with different values)")
    return dict(zip(groups, v.astype(float)))


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
    ds.groups = trimmed(ds.groups)
    if covariates is None:
        raise TableError.of(MSG_NO_COVARIATES, name=name)
    cov = read_covariates(covariates)
    missing = sorted(set(ds.groups) - set(cov))
    if missing:
        raise TableError.of(MSG_MISSING_COVARIATE, groups=missing[:5])
    codes = np.unique(np.asarray(ds.groups), return_inverse=True)[1]
    tr, te = stratified_split(codes, test_fraction, seed)
    return GroupedSplits(ds.subset(np.sort(tr)), ds.subset(np.sort(te)), cov, "covariate", False)
