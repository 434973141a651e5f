"""The one iteration skeleton of the iterative attacks: per-sample early stop on an active set.

Every iterative attack here (PGD-L2, PPGD, Human_Perc_OT's first phase, LPA's rounds) runs the same loop:
at each step, for the samples still running, evaluate the model and the gradient of the attack's loss at
the iterate (as the model sees it: its 8-bit rounding, straight-through), freeze the samples that are done
(margin above the confidence, or the attack's own rule), and let the attack update the rest. :class:`EarlyStop`
is that loop, as an iterator over the update steps::

    loop = EarlyStop(self, model, adv, y, steps=self.steps)
    for s in loop:                      # s.idx: the running samples; s.grad, s.margin, s.k
        adv[s.idx] = update(adv[s.idx], s.grad)
    return adv, loop.steps

A finished sample is frozen at the first iterate that satisfied the rule (checked before the step) and costs
no further model evaluations; ``steps`` counts each sample's updates. While the body runs, the attacked
model (a :class:`~imperceptible.attacks.counting.CountingModel`) charges its passes to the running samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .counting import rows
from .margins import margin


@dataclass
class Step:
    """One update step: ``idx`` indexes the running samples in the attack's batch."""

    k: int
    idx: torch.Tensor
    grad: torch.Tensor
    margin: torch.Tensor
    logits: torch.Tensor


class ActiveSet:
    """Book-keeping for per-sample early stop: which samples are still running, and their steps."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.active = torch.arange(n, device=device)
        self.steps = torch.zeros(n, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return self.active.numel()

    def keep(self, mask: torch.Tensor) -> torch.Tensor:
        """Keep the active samples where ``mask`` (over the current active set) is True; returns mask."""
        self.active = self.active[mask]
        return mask

    def step(self) -> None:
        self.steps[self.active] += 1


class EarlyStop:
    """Iterate ``steps`` update steps over the samples of ``adv`` that are not done (see the module docstring).

    Args:
        attack: the attack (its ``logits_and_grad``, ``confidence`` and ``view`` are used).
        model: the attacked model.
        adv: the iterates ``(N, C, H, W)``; the loop reads ``adv[idx]`` at each step (the body updates it).
        y: labels ``(N,)``.
        steps: the most update steps per sample.
        loss: ``"ce"`` or ``"margin"`` (clamped at ``kappa``), or a callable ``(model, x, y, idx, k) -> (logits,
            gradient, extra)`` (``k`` the step); ``extra`` is passed to ``done``.
        done: a callable ``(margin, extra) -> bool tensor``; default ``margin > confidence``.
        active: the samples to run (default all).
    """

    def __init__(self, attack, model, adv: torch.Tensor, y: torch.Tensor, *, steps: int, loss="ce",
                 kappa: float = float("inf"), done: Callable | None = None, active: torch.Tensor | None = None) -> None:
        self.attack, self.model, self.adv, self.y = attack, model, adv, y
        self.n_steps, self.loss, self.kappa = steps, loss, kappa
        self.done = done or (lambda m, extra: m > attack.confidence)
        self.act = ActiveSet(adv.shape[0], adv.device)
        if active is not None:
            self.act.active = active

    @property
    def steps(self) -> torch.Tensor:
        return self.act.steps

    @property
    def running(self) -> torch.Tensor:
        """The samples not done when the loop ended (or now)."""
        return self.act.active

    def _evaluate(self, i: torch.Tensor, k: int):
        with rows(self.model, i):
            if callable(self.loss):
                logits, g, extra = self.loss(self.model, self.adv[i], self.y[i], i, k)
            else:
                logits, g = self.attack.logits_and_grad(self.model, self.adv[i], self.y[i], self.loss, self.kappa)
                extra = None
        return logits, g, extra

    def __iter__(self) -> Iterator[Step]:
        for k in range(self.n_steps + 1):
            i = self.act.active
            if len(i) == 0:
                return
            logits, g, extra = self._evaluate(i, k)
            m = margin(logits, self.y[i])
            going = ~self.done(m, extra)
            self.act.keep(going)
            if k == self.n_steps or len(self.act) == 0:
                return
            idx = self.act.active
            with rows(self.model, idx):
                yield Step(k=k, idx=idx, grad=g[going], margin=m[going], logits=logits[going])
            self.act.step()


__all__ = ["ActiveSet", "EarlyStop", "Step"]
