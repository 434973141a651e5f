"""The per-sample record of an attack result: one definition that drives the store's columns (:mod:`.store`), the rows a
run writes (:func:`rows_of`) and what the summaries read (:mod:`.summary`). Each field says how it is read off an
:class:`~imperceptible.attacks.base.AttackResult` for sample ``j``; ``time_s`` is the batch's attack time shared
equally by its samples.

Examples:
    >>> from imperceptible.runs.record import FIELDS
    >>> [f.name for f in FIELDS][:4]
    ['success', 'success_float', 'reached', 'clean_correct']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..attacks.base import AttackResult


@dataclass(frozen=True)
class Field:
    """One column of the record: its name, its type in the rows, and how it is read off a result (sample ``j``; the
    batch's attack seconds ``secs`` and its size ``n``)."""

    name: str
    kind: type
    read: Callable[[AttackResult, int, float, int], Any]


FIELDS: tuple[Field, ...] = (
    Field("success", bool, lambda r, j, s, n: bool(r.success[j])),
    Field("success_float", bool, lambda r, j, s, n: bool(r.success_float[j])),
    Field("reached", bool, lambda r, j, s, n: bool(r.reached[j])),
    Field("clean_correct", bool, lambda r, j, s, n: bool(r.clean_correct[j])),
    Field("steps", int, lambda r, j, s, n: int(r.steps[j])),
    Field("margin", float, lambda r, j, s, n: float(r.margin[j])),
    Field("margin_float", float, lambda r, j, s, n: float(r.margin_float[j])),
    Field("clean_margin", float, lambda r, j, s, n: float(r.clean_margin[j])),
    Field("time_s", float, lambda r, j, s, n: s / n),
    Field("forwards", float, lambda r, j, s, n: float(r.forwards[j])),
    Field("backwards", float, lambda r, j, s, n: float(r.backwards[j])),
)
#: the store's per-sample columns, in order
CORE = tuple(f.name for f in FIELDS)


def rows_of(res: AttackResult, ids: list[str], y: torch.Tensor, metrics: dict, secs: float,
            anytime: dict | None = None) -> list[dict]:
    """The store's rows of one batch's result: ``id``, ``label``, every field of the record, and every measurement
    (``metrics``, with the anytime snapshots' under ``metrics["anytime"]``)."""
    rows: list[dict] = []
    for j, sid in enumerate(ids):
        row: dict = {"id": sid, "label": int(y[j]), **{f.name: f.read(res, j, secs, len(ids)) for f in FIELDS}}
        row["metrics"] = {k: float(v[j]) for k, v in metrics.items()}
        if anytime is not None:
            row["metrics"]["anytime"] = {c: (v[j] if v is not None else None) for c, v in anytime.items()}
        rows.append(row)
    return rows


__all__ = ["CORE", "FIELDS", "Field", "rows_of"]
