"""The attack interface: a base class whose final ``__call__`` validates, runs, clips, quantises and
reports per-sample results (the foolbox pattern), and the pieces iterative attacks share.

Conventions:

* images ``(N, C, H, W)`` in ``[0, 1]``, labels int64 ``(N,)``; the model takes ``[0, 1]`` input;
* the logit margin ``m(x) = max_{i != y} z_i(x) - z_y(x)``; a sample is *finished* when ``m > a``
  (``a`` = ``confidence``), checked before each step, so it stops at the first iterate that satisfies
  it; finished samples are frozen and cost no further model evaluations;
* with ``quantize=True`` (default) the model is always evaluated at the 8-bit rounding of the iterate
  (gradients pass straight through the rounding), so "finished" means finished *as an 8-bit image*;
  success is reported both for the returned 8-bit image and for the float iterate;
* samples the model already gets wrong with margin above ``a`` are returned unchanged (0 steps).
"""

from __future__ import annotations

import inspect
import time
import typing
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, final

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MSG_MODEL_LOGITS, MSG_NO_GRADIENT, MSG_NONFINITE_ATTACK, MSG_ROUND_FIRST, ModelOutputError, NonFiniteError
from ..models.probe import probe_once
from ..pixels import quantize_8bit
from ..seeds import derive
from ..validation import check_8bit, check_bool, check_eval_mode, check_images, check_int, check_labels, check_positive
from .anytime import Anytime
from .counting import BudgetExhausted, CountingModel, full_precision_verdict
from .margins import classified_correctly, margin
from .tags import AttackTags

EPS_NORM = 1e-12


def l2_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped ``(N, 1, 1, 1)`` for broadcasting."""
    return t.flatten(1).norm(dim=1).clamp_min(EPS_NORM).view(-1, *([1] * (t.dim() - 1)))


@dataclass
class AttackResult:
    """Per-sample results of one attack call (index ``i`` always refers to input sample ``i``). What can be
    derived from the margins is: ``success`` (the returned image misclassified, margin > 0), ``success_float``
    (the float iterate), ``reached`` (margin above the confidence) and ``clean_correct`` (the clean image
    classified correctly, margin < 0)."""

    adv: torch.Tensor                 # returned images (8-bit values if quantize) in [0, 1]
    adv_float: torch.Tensor           # the float iterate before quantisation
    steps: torch.Tensor               # int: update steps taken
    margin: torch.Tensor              # float: final margin of the returned image
    margin_float: torch.Tensor        # float: final margin of the float iterate
    clean_margin: torch.Tensor        # float: margin of the clean image
    forwards: torch.Tensor            # float64 per sample: forward passes through the model (counted by hooks)
    backwards: torch.Tensor           # float64 per sample: backward passes through the model
    time_s: float                     # wall time of the whole call
    confidence: float = 0.0
    anytime: dict | None = None       # {passes: {"adv", "found"}} when the attack's ``anytime`` asked for it
    attack: str = ""
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.adv.shape[0]

    @property
    def success(self) -> torch.Tensor:
        return self.margin > 0

    @property
    def success_float(self) -> torch.Tensor:
        return self.margin_float > 0

    @property
    def reached(self) -> torch.Tensor:
        return self.margin > self.confidence

    @property
    def clean_correct(self) -> torch.Tensor:
        return classified_correctly(self.clean_margin)

    @property
    def passes(self) -> torch.Tensor:
        """Passes per sample: (forwards + backwards) / 2 (a forward-only evaluation is half a pass)."""
        return (self.forwards + self.backwards) / 2

    @property
    def success_rate(self) -> float:
        """Images whose label went from correct to incorrect / images correctly classified."""
        n = int(self.clean_correct.sum())
        return float((self.success & self.clean_correct).sum()) / n if n else float("nan")


class Attack(ABC):
    """Base class. Subclasses set ``name`` and implement :meth:`run` on the samples to attack; the final
    ``__call__`` validates the input once, runs :meth:`run` on the samples still to attack, clips, quantises
    and returns an :class:`AttackResult` of per-sample tensors.

    Args:
        confidence: the margin ``a`` a sample must exceed to be finished (paper: 0, 1, 5).
        quantize: evaluate and return 8-bit images (see the module docstring).
        seed: seed of the attack's own ``torch.Generator`` (random starts); no global RNG is touched.

    Examples:
        >>> import torch
        >>> from imperceptible.attacks import Attack, AttackTags
        >>> class Nudge(Attack):  # a toy attack: one fixed step along the input gradient
        ...     name = "nudge"
        ...     TAGS = AttackTags("one signed step", "one-step")
        ...     def run(self, model, x, y):
        ...         _, g = self.logits_and_grad(model, x, y)
        ...         return x + 0.1 * g.sign(), torch.ones(len(x), dtype=torch.long)
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
        >>> _ = torch.nn.init.constant_(net[1].bias, -2.0)  # logits, not probabilities (the model is probed)
        >>> res = Nudge()(net, torch.full((2, 1, 2, 2), 128 / 255), torch.tensor([0, 1]))
        >>> sorted(f for f in ("adv", "success", "steps", "margin", "time_s") if hasattr(res, f))
        ['adv', 'margin', 'steps', 'success', 'time_s']
    """

    name = "attack"
    #: what the attack declares about itself (:class:`~.tags.AttackTags`): its description, threat model, the metric
    #: keys it minimises or bounds (its own objective, marked in the tables so that the judges it does not see are the
    #: fair ones), the packages it needs and its settings for the registry-wide tests (an instance may carry its own:
    #: :class:`~.polish.Polished` takes its attack's)
    TAGS: AttackTags = AttackTags("an attack", "bounded")
    #: a frozen dataclass whose fields are keywords of the constructor too (Human_Perc_OT's :class:`Settings`)
    SETTINGS: ClassVar[type | None] = None

    def __init__(self, *, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        self.confidence = float(check_positive("confidence", confidence, allow_zero=True))
        self.quantize = check_bool("quantize", quantize)
        self.seed = check_int("seed", seed, minimum=0)

    @classmethod
    def parameter_types(cls) -> dict[str, Any]:
        """Every keyword the constructor takes, with its annotation: the signature's keyword-only parameters and,
        for an attack with :attr:`SETTINGS`, that dataclass's fields (the command line parses ``--param`` by them)."""
        hints = typing.get_type_hints(cls.__init__)
        out = {p.name: hints.get(p.name) for p in inspect.signature(cls.__init__).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY}
        if cls.SETTINGS is not None:
            out.update(typing.get_type_hints(cls.SETTINGS))
        return out

    @classmethod
    def parameters(cls) -> list[str]:
        """The keyword parameters the attack accepts (sorted)."""
        return sorted(cls.parameter_types())

    # --- helpers for subclasses -----------------------------------------------------------------
    def returned(self, x: torch.Tensor) -> torch.Tensor:
        """The image this attack returns for the float image ``x``: rounded to 8 bits, or ``x`` without ``quantize``
        (the values :meth:`view` shows the model, without its straight-through gradient)."""
        return quantize_8bit(x) if self.quantize else x

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """What the model sees: the 8-bit rounding (straight-through for gradients) or ``x``."""
        if not self.quantize:
            return x
        return x + (quantize_8bit(x) - x).detach()

    def logits_and_grad(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "ce",
                        kappa: float = float("inf")) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at ``view(x)`` and the gradient w.r.t. ``x`` of the summed loss: cross-entropy
        (``ce``) or the margin clamped at ``kappa`` (``margin``)."""
        xi = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(self.view(xi))
            if loss == "ce":
                obj = F.cross_entropy(logits, y, reduction="sum")
            else:
                obj = margin(logits, y).clamp(max=kappa).sum()
            (g,) = torch.autograd.grad(obj, xi)
        return logits.detach(), g

    def finished(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return margin(logits, y) > self.confidence

    def sample_randn(self, x: torch.Tensor, stream: int = 0) -> torch.Tensor:
        """Standard normal noise shaped like ``x`` whose value for each sample depends only on
        ``seed`` and that sample's pixels, never on its batch or position: results are the same
        batched and one by one, and across resumed runs."""
        out = torch.empty_like(x)
        for j in range(x.shape[0]):
            key = zlib.crc32(x[j].detach().float().cpu().numpy().tobytes())
            g = torch.Generator().manual_seed(derive(self.seed, stream, key))
            out[j] = torch.randn(x.shape[1:], generator=g, dtype=torch.float32).to(x)
        return out

    def label(self) -> str:
        """The variant's name in results (subclasses add what distinguishes their variants)."""
        return self.name

    def optimises(self) -> tuple[str, ...]:
        """The metric keys this attack minimises or bounds (its :attr:`TAGS`; a variant may override)."""
        return tuple(self.TAGS.optimises)

    #: pass budgets at which to keep the best adversarial queried so far (:mod:`.anytime`); empty: none
    anytime: tuple[int, ...] = ()
    #: the pass budget the counter enforces (:mod:`.counting`'s guard): ``None``, none; else a sample is stopped
    #: when it has used it and the attack returns the best 8-bit adversarial it queried within it; an image it
    #: returns that differs from the clean one and that no counted query saw is looked at as its last query if its
    #: budget allows, and a sample with no adversarial queried within the budget is a failure that returns the clean
    #: image (its ``adv_float`` stays the attack's float iterate, whose margin says what rounding lost). Without
    #: ``quantize`` the tracker, which keeps 8-bit queries only, sees none: the attack's own image is returned and
    #: judged, as without a budget. Its ``steps`` are -1 when the guard ended the attack.
    max_passes: int | None = None
    #: its returned image is always one it queried within its budget through counters of its own (an attack run
    #: inside this one, whose queries this attack's tracker does not see: :class:`~.polish.Polished`), so it is
    #: kept as returned, not looked at again
    RETURNS_QUERIED: ClassVar[bool] = False

    def tracked_distance(self):
        """The distance its anytime results (and its best-seen result under a budget) rank queries by: the cost of its
        metric (:meth:`optimises`, with the metric table's options), else L2. An attack whose own cost object is
        that distance may return it instead (ours does: then a cost with options, or one without a metric such as
        PieAPP, ranks as the attack sees it)."""
        from ..costs import get as get_cost
        from ..costs.metrics import METRICS

        m = METRICS[(self.optimises() or ("l2",))[0]]
        return get_cost(m.cost, **m.options).unchecked
    def params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and isinstance(v, (int, float, str, bool))}

    # --- the template ------------------------------------------------------------------------
    @abstractmethod
    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attack the samples ``x`` (all still to be attacked). Return ``(adv_float, steps)``."""

    @final
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackResult:
        check_images(x, "x")
        if self.quantize:  # an 8-bit attack image is measured against an 8-bit clean image
            check_8bit(x, "x", how=MSG_ROUND_FIRST)
        y = check_labels(y, x.shape[0], "y", getattr(model, "num_classes", None))
        check_eval_mode(model, getattr(model, "name", "model"))
        x = x.detach()
        if not isinstance(model, CountingModel):  # an attack run inside another: its model was probed already
            with full_precision_verdict(x.device):  # what the model is, not what its mixed-precision pass says
                probe_once(model, x, y, name=getattr(model, "name", type(model).__name__))
        t0 = time.perf_counter()
        budget = self.max_passes
        with CountingModel(model, x.shape[0], budget=budget) as counted:
            checkpoints = set(self.anytime) | ({budget} if budget is not None else set())
            if checkpoints:
                counted.tracker = Anytime(x, y, self.tracked_distance(), checkpoints, self.confidence)
            with torch.no_grad(), counted.uncounted(), full_precision_verdict(x.device):
                clean_logits = counted(x)
            check_logits(clean_logits, x.shape[0], y)
            clean_margin = margin(clean_logits, y)
            todo = ~(clean_margin > self.confidence)
            adv_float = x.clone()
            steps = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            if todo.any():
                idx = todo.nonzero().squeeze(1)
                a, s = self._run_counted(counted, x[idx], y[idx], idx)
                if a is not None:
                    adv_float[idx] = a.detach().clamp(0, 1)
                steps[idx] = s.to(steps)
            if not bool(torch.isfinite(adv_float).all()):
                raise NonFiniteError.of(MSG_NONFINITE_ATTACK, attack=self.label())
            adv = self.returned(adv_float)
            if budget is not None:  # the best 8-bit adversarial queried within the budget (AttackBench 2.0)
                tracker = typing.cast(Anytime, counted.tracker)
                keep_own = self.RETURNS_QUERIED or not self.quantize  # see max_passes
                if not keep_own:  # an image it stepped to and never queried: its last counted query, if any budget
                    unseen = todo & ~tracker.results()[budget]["found"] & (adv != x).flatten(1).any(1)
                    self._last_look(counted, adv, unseen)
                best = tracker.results()[budget]  # a budget is a checkpoint
                found = best["found"].view(-1, 1, 1, 1)
                adv = torch.where(found, best["adv"], adv if keep_own else x)  # else a failure: the clean image
                adv_float = torch.where(found, best["adv"], adv_float)  # a failure's float iterate: what rounding lost
            adv = torch.where(todo.view(-1, 1, 1, 1), adv, x)  # untouched samples stay bit-identical
            with torch.no_grad(), counted.uncounted(), full_precision_verdict(x.device):
                m_adv = margin(counted(adv), y)
                m_float = m_adv.clone()  # a sample whose float iterate is its 8-bit image needs no second look
                moved = (adv != adv_float).flatten(1).any(1).nonzero().squeeze(1)
                if len(moved):
                    m_float[moved] = margin(counted(adv_float[moved]), y[moved])
        forwards, backwards = counted.forwards, counted.backwards
        if budget is not None:  # a backward past the budget (DeepFool's one per class) can inform no counted query
            excess = ((forwards + backwards) / 2 - budget).clamp_min(0)
            backwards = (backwards - 2 * excess).clamp_min(0)
        anytime = counted.tracker.results() if counted.tracker is not None else None
        if anytime is not None and budget is not None and budget not in self.anytime:
            anytime.pop(budget)
        return AttackResult(
            adv=adv, adv_float=adv_float, steps=steps.cpu(), margin=m_adv, margin_float=m_float,
            clean_margin=clean_margin, forwards=forwards, backwards=backwards,
            time_s=time.perf_counter() - t0, confidence=self.confidence, attack=self.name, params=self.params(),
            anytime=anytime,
        )

    @staticmethod
    def _last_look(counted: CountingModel, adv: torch.Tensor, miss: torch.Tensor) -> None:
        """The returned 8-bit image of each sample in ``miss`` (attacked, no adversarial queried yet), queried as the
        attack's last counted query: charged, observed by the tracker, and refused to a sample with no budget left,
        so that an image nobody queried within the budget never counts (the final step of a loop that steps after
        its last query, as PGD's, is looked at here if its budget allows)."""
        idx = miss.nonzero().squeeze(1)
        if not len(idx):
            return
        with torch.no_grad(), counted.rows(idx), full_precision_verdict(adv.device):
            try:
                counted(adv[idx])
            except BudgetExhausted:
                pass

    def _run_counted(self, counted: CountingModel, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor):
        """:meth:`run` on the samples ``idx``; ``(None, -1 steps)`` when the budget guard ended it (its samples'
        results are then the tracker's)."""
        with counted.rows(idx):
            try:
                return self.run(counted, x, y)
            except BudgetExhausted:
                return None, torch.full((x.shape[0],), -1, dtype=torch.long)
            except RuntimeError as e:  # autograd's message for a model whose output ignores its input
                if "does not require grad" not in str(e):
                    raise
                raise ModelOutputError.of(MSG_NO_GRADIENT, attack=self.label()) from None


def check_logits(logits: torch.Tensor, n: int, y: torch.Tensor) -> None:
    """Refuse model outputs that are not ``(N, K)`` finite logits with ``K`` above every label."""
    if logits.dim() != 2 or logits.shape[0] != n or logits.shape[1] < 2:
        raise ModelOutputError.of(MSG_MODEL_LOGITS, n=n, got=tuple(logits.shape), detail="wrong shape")
    if not bool(torch.isfinite(logits).all()):
        raise ModelOutputError.of(MSG_MODEL_LOGITS, n=n, got=tuple(logits.shape), detail="NaN or Inf values")
    if int(y.max()) >= logits.shape[1]:
        raise ModelOutputError.of(MSG_MODEL_LOGITS, n=n, got=tuple(logits.shape),
                                  detail=f"{logits.shape[1]} classes but a label {int(y.max())}")


