"""The lattice stage as a post-process for any attack's output: :func:`polish` takes 8-bit adversarial images from
any library and lowers their perceptual cost on the 8-bit grid while keeping them adversarial, with its passes
counted.

An 8-bit adversarial ``q`` differs from its clean image ``x0`` by one-level sub-pixel changes ``k_i`` (in units of
1/255). Each round takes one gradient ``g`` of the margin at ``q`` and ranks the changes by the margin they buy per
unit of cost, ``g_i k_i / (k_i^2 / P_i)`` (``P`` the cost's per-sub-pixel step scale at ``x0`` raised to
``geometry``, :meth:`~imperceptible.costs.base.Cost.step_scale`: a change where the cost forgives it counts less);
the largest number of the lowest-ranked changes whose reversal keeps the image adversarial (margin above the
confidence, with a small slack against the float noise of another batch) is found by bisection with forward passes
only. A round costs one pass and ``bisections`` forwards (half a pass each): 6 passes with the defaults, 12 for the
default 2 rounds.

:func:`polish` returns an image only where it is adversarial and its cost (the ``cost`` it was given) is not above
that of the input; elsewhere the input comes back unchanged. :class:`Polished` runs any attack and polishes its
output inside one pass budget (the attack gets the budget less the polish's passes).

Examples:
    >>> import torch
    >>> from imperceptible.attacks import PGDL2
    >>> from imperceptible.attacks.polish import polish
    >>> from imperceptible.data import load
    >>> from imperceptible.models import get
    >>> model, ds = get("mnist-cnn"), load("mnist-test20")
    >>> x, y = ds.images[:4], ds.labels[:4]
    >>> adv = PGDL2(eps=3.0, alpha=0.5, steps=20)(model, x, y).adv
    >>> out = polish(model, x, adv, y, cost="l2")
    >>> bool((out.cost <= out.cost_before).all()), bool((out.passes <= 12).all())
    (True, True)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..costs import Cost
from ..costs import get as get_cost
from ..costs.metrics import for_cost
from ..errors import MSG_POLISH_ROUND
from ..validation import check_8bit, check_eval_mode, check_images, check_int, check_labels, check_positive, check_same_shape
from .base import Attack
from .counting import CountingModel
from .margins import margin

#: bisection steps of a round (forward passes), the passes a round takes, and the default rounds
BISECTIONS = 10
ROUND_PASSES = 1 + BISECTIONS / 2
ROUNDS = 2
#: the step metric's exponent (Human_Perc_OT's default ``geometry``)
GEOMETRY = 0.2
#: a kept image's margin must be this far above the confidence (float noise of another batch composition); under a
#: mixed-precision autocast, where a logit of 10 carries about 0.05 of bf16 rounding, the larger one
MARGIN_SLACK = 1e-4
MARGIN_SLACK_MIXED = 0.1


def margin_slack(device: torch.device) -> float:
    """:data:`MARGIN_SLACK`, or :data:`MARGIN_SLACK_MIXED` inside a mixed-precision autocast on ``device``."""
    return MARGIN_SLACK_MIXED if torch.is_autocast_enabled(device.type) else MARGIN_SLACK


def step_metric(cost: Cost, x0: torch.Tensor, geometry: float) -> torch.Tensor:
    """``P``: the cost's step scale at ``x0`` raised to ``geometry``, mean 1 per image (ones for a Euclidean cost or
    ``geometry = 0``)."""
    scale = cost.step_scale(x0) if hasattr(cost, "step_scale") else None
    if scale is None or geometry == 0:
        return torch.ones_like(x0)
    p = scale.to(x0) ** geometry
    return p / p.flatten(1).mean(1).view(-1, 1, 1, 1)


@torch.no_grad()
def prune_lattice(model, x0: torch.Tensor, y: torch.Tensor, q: torch.Tensor, P: torch.Tensor, *, confidence: float = 0.0,
                  rounds: int = ROUNDS, bisections: int = BISECTIONS) -> torch.Tensor:
    """The lattice stage (see the module docstring) on adversarial 8-bit images ``q``, unchecked."""
    n = x0.shape[0]
    base = x0.flatten(1)
    for _ in range(rounds):
        qi = q.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(margin(model(qi), y).sum(), qi)
        k = torch.round((q - x0) * 255)
        score = (g * k) / (k * k / P).clamp_min(1e-12)
        score = torch.where(k != 0, score, torch.full_like(score, float("inf"))).flatten(1)
        rank = torch.empty_like(score, dtype=torch.long)
        order = score.argsort(dim=1)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=q.device).expand_as(order))
        lo = torch.zeros(n, device=q.device)
        hi = (k != 0).flatten(1).sum(1).to(lo.dtype)
        flat = q.flatten(1)
        for _ in range(bisections):
            mid = torch.floor((lo + hi + 1) / 2)
            cand = torch.where(rank < mid.view(-1, 1), base, flat).view_as(q)
            ok = margin(model(cand), y) > confidence + margin_slack(x0.device)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid - 1)
        q = torch.where(rank < lo.view(-1, 1), base, flat).view_as(q)
    return q


@dataclass
class PolishResult:
    """Per sample: the returned image, whether it changed, its cost before and after, and the forward and backward
    passes polish used (``passes`` = their sum over 2, as everywhere)."""

    adv: torch.Tensor
    changed: torch.Tensor
    cost_before: torch.Tensor
    cost: torch.Tensor
    forwards: torch.Tensor
    backwards: torch.Tensor

    @property
    def passes(self) -> torch.Tensor:
        return (self.forwards + self.backwards) / 2


def polish(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, *, cost: str | Cost = "ssim",
           geometry: float = GEOMETRY, rounds: int = ROUNDS, confidence: float = 0.0) -> PolishResult:
    """Lower the perceptual ``cost`` of the 8-bit adversarial images ``x_adv`` of ``x`` on the 8-bit grid, keeping them
    adversarial (see the module docstring). Samples not adversarial (margin not above ``confidence``) come back
    unchanged, and so does any whose cost polish did not lower.

    Args:
        model: the attacked classifier (``[0, 1]`` input, eval mode).
        x, x_adv: clean and adversarial images, ``(N, C, H, W)`` on the 8-bit grid.
        y: labels ``(N,)``.
        cost: the cost whose step scale ranks the changes, and that the result may not raise (a name or a
            :class:`~imperceptible.costs.Cost`).
        geometry: the step metric's exponent (0: Euclidean).
        rounds: lattice rounds (one gradient and :data:`BISECTIONS` forwards each).
        confidence: the margin a returned image keeps above.
    """
    check_images(x, "x")
    check_images(x_adv, "x_adv")
    check_same_shape(x_adv, x, "x_adv, x")
    check_8bit(x, "x", how=MSG_POLISH_ROUND)
    check_8bit(x_adv, "x_adv", how=MSG_POLISH_ROUND)
    y = check_labels(y, x.shape[0], "y", getattr(model, "num_classes", None))
    check_eval_mode(model, getattr(model, "name", "model"))
    check_int("rounds", rounds, minimum=0)
    check_positive("geometry", geometry, allow_zero=True)
    check_positive("confidence", confidence, allow_zero=True)
    c = get_cost(cost) if isinstance(cost, str) else cost
    c = c.to(x.device)
    measure = getattr(c, "unchecked", c)
    x, x_adv = x.detach(), x_adv.detach()
    with torch.no_grad():
        before = measure(x_adv, x).float()
    out = x_adv.clone()
    with CountingModel(model, x.shape[0]) as counted:
        with torch.no_grad(), counted.uncounted():
            todo = margin(counted(x_adv), y) > confidence + margin_slack(x.device)
        idx = todo.nonzero().squeeze(1)
        if len(idx) and rounds:
            with counted.rows(idx):
                q = prune_lattice(counted, x[idx], y[idx], x_adv[idx], step_metric(c, x[idx], geometry),
                                  confidence=confidence, rounds=rounds)
            with torch.no_grad():
                after = measure(q, x[idx]).float()
            keep = after <= before[idx]
            out[idx[keep]] = q[keep]
    with torch.no_grad():
        now = measure(out, x).float()
    changed = (out != x_adv).flatten(1).any(1)
    return PolishResult(adv=out, changed=changed, cost_before=before, cost=now, forwards=counted.forwards,
                        backwards=counted.backwards)


class Polished(Attack):
    """Any attack followed by :func:`polish`, inside one pass budget: with ``max_passes = B`` the attack runs under
    ``B`` less the polish's passes and returns the best 8-bit adversarial it queried within them; polish then spends
    at most its own. Its label is the attack's with ``+polish``.

    Examples:
        >>> from imperceptible.attacks import DDN
        >>> from imperceptible.attacks.polish import Polished
        >>> Polished(DDN(steps=200)).label()
        'ddn[200]+polish'
    """

    name = "polished"
    RETURNS_QUERIED = True  # the attack's best queried adversarial (its own tracker), or one polish queried and kept

    def __init__(self, attack: Attack, *, cost: str = "ssim", geometry: float = GEOMETRY, rounds: int = ROUNDS) -> None:
        super().__init__(confidence=attack.confidence, quantize=attack.quantize, seed=attack.seed)
        self.attack, self.cost = attack, cost
        self.geometry = float(check_positive("geometry", geometry, allow_zero=True))
        self.rounds = check_int("rounds", rounds, minimum=0)
        self.TAGS = attack.TAGS

    @property
    def polish_passes(self) -> float:
        return self.rounds * ROUND_PASSES

    def label(self) -> str:
        return f"{self.attack.label()}+polish"

    def optimises(self) -> tuple[str, ...]:
        """The attack's metrics and the polish cost's (``ssim_distance`` for 1 - SSIM): the twin lowers both."""
        key = for_cost(self.cost)
        return tuple(dict.fromkeys([*self.attack.optimises(), *([key] if key else [])]))

    def tracked_distance(self):
        return self.attack.tracked_distance()

    def params(self) -> dict:
        return {**self.attack.params(), "polish": {"cost": self.cost, "geometry": self.geometry, "rounds": self.rounds}}

    def run(self, model, x, y):
        inner = copy.copy(self.attack)
        if self.max_passes is not None:
            inner.max_passes = max(1, int(self.max_passes - self.polish_passes))
        res = inner(model, x, y)
        out = polish(model, x, res.adv, y, cost=self.cost, geometry=self.geometry, rounds=self.rounds,
                     confidence=self.confidence)
        return out.adv, res.steps


__all__ = ["BISECTIONS", "GEOMETRY", "ROUNDS", "ROUND_PASSES", "PolishResult", "Polished", "margin_slack", "polish",
           "prune_lattice", "step_metric"]
