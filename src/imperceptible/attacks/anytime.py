"""Anytime results: the best adversarial an attack had *queried* within the first ``b`` passes, for several
budgets ``b`` of one run (AttackBench scores the best point an attack ever queried the same way).

:class:`Anytime` watches every query the counted model answers (:class:`~.counting.CountingModel`): a query on
the 8-bit grid that the model misclassifies (margin above the attack's confidence; under a mixed-precision autocast,
the float32 model's margin) is a candidate, ranked by the
attack's own distance (:meth:`~.base.Attack.tracked_distance`: the cost of its :meth:`~.base.Attack.optimises` metric,
else L2; ours ranks by its own cost object), and kept for every checkpoint ``b``
the sample had not passed yet when it was queried. The images it keeps are judged afterwards like the final
ones, so an attack's curve says how good its answer would have been had it been stopped at ``b`` passes.

Examples:
    >>> import torch
    >>> from imperceptible.attacks import DDN, PGDL2
    >>> from imperceptible.data import load
    >>> from imperceptible.models import get
    >>> model, ds = get("mnist-cnn"), load("mnist-test20")
    >>> atk = PGDL2(eps=3.0, alpha=0.5, steps=20)
    >>> atk.anytime = (2, 5, 25)
    >>> res = atk(model, ds.images[:4], ds.labels[:4])
    >>> sorted(res.anytime), bool(res.anytime[25]["found"].all())
    ([2, 5, 25], True)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..pixels import GRID_TOLERANCE
from .margins import margin


class Anytime:
    """Per checkpoint, the best 8-bit adversarial query so far of each sample (see the module docstring)."""

    def __init__(self, x0: torch.Tensor, y: torch.Tensor, distance: Callable, checkpoints, confidence: float = 0.0) -> None:
        self.x0, self.y, self.distance, self.confidence = x0, y, distance, confidence
        self.checkpoints = tuple(sorted(set(int(c) for c in checkpoints)))
        n = x0.shape[0]
        self.best = {c: x0.clone() for c in self.checkpoints}
        self.cost = {c: torch.full((n,), float("inf"), device=x0.device) for c in self.checkpoints}
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # the last query and the distances it ranked

    def ranked(self, q: torch.Tensor, distance: Callable) -> torch.Tensor | None:
        """The distances the tracker ranked its last query by, where that query is ``q`` (to 1e-6: the same 8-bit
        levels, before and after rounding) and ``distance`` is its own: ``inf`` for the rows it did not rank (not
        misclassified, or off the 8-bit grid); ``None`` where it cannot say. An attack that needs the same distances
        (ours records its best adversarial by its cost) takes them from here instead of computing them twice."""
        if self._last is None or distance != self.distance:
            return None
        xq, d = self._last
        if xq.shape != q.shape or xq.device != q.device or not torch.allclose(xq, q.to(xq.dtype), rtol=0, atol=1e-6):
            return None
        return d

    @torch.no_grad()
    def observe(self, rows: torch.Tensor, xq: torch.Tensor, logits: torch.Tensor, passes: torch.Tensor,
                judge: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """A query ``xq`` of the samples ``rows`` (of the attack call), answered with ``logits``, made when they had
        used ``passes`` each. ``judge``: the full-precision logits of a batch, where ``logits`` came from a
        mixed-precision autocast; a candidate is then kept only if the full-precision model misclassifies it too."""
        self._last = None
        if xq.shape[0] != rows.numel() or xq.shape[1:] != self.x0.shape[1:]:
            return  # a batch that is not one query per sample (a stack of candidates): not tracked
        rows = rows.to(self.x0.device)
        adv = margin(logits.detach().float(), self.y[rows]) > self.confidence
        if not adv.any():
            return
        # the 8-bit check (a float64 copy of the query) only for the queries the model got wrong: most are not
        cand = adv.nonzero().squeeze(1)
        s = xq.detach()[cand].double() * 255
        adv[cand] = ((s - s.round()).abs() <= GRID_TOLERANCE).flatten(1).all(1)
        if judge is not None and adv.any():
            cand = adv.nonzero().squeeze(1)
            adv[cand] = margin(judge(xq.detach()[cand]), self.y[rows[cand]]) > self.confidence
        if not adv.any():
            return
        d = torch.full((rows.numel(),), float("inf"), device=self.x0.device)
        d[adv] = self.distance(xq.detach()[adv].to(self.x0.dtype), self.x0[rows[adv]]).to(d.dtype)
        self._last = (xq.detach().clone(), d)  # a copy: the caller may change its query in place afterwards
        p = passes.to(self.x0.device)
        for c in self.checkpoints:
            better = adv & (p <= c) & (d < self.cost[c][rows])
            if better.any():
                self.best[c][rows[better]] = xq.detach()[better].to(self.x0.dtype)
                self.cost[c][rows[better]] = d[better]

    def results(self) -> dict[int, dict[str, torch.Tensor]]:
        """``{checkpoint: {"adv": images, "found": bool per sample}}``."""
        return {c: {"adv": self.best[c], "found": torch.isfinite(self.cost[c])} for c in self.checkpoints}


__all__ = ["Anytime"]
