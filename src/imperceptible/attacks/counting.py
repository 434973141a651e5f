"""Counting an attack's passes through the model, per sample: AttackBench's propagations.

:class:`CountingModel` wraps the attacked model for the length of one attack call. Hooks on the innermost
network (an :class:`~imperceptible.models.ImageClassifier`'s ``net``, else the model itself) count every
forward pass, whatever entry point the attack used (``forward``, ``logits``, ``features_and_logits``), and
every backward pass through its output (a hook on the output tensor fires once per backward through it). A
pass is charged to the samples whose rows were in the batch: :meth:`CountingModel.rows` says which samples
of the attack call the next batches hold (the attack loop sets it; contexts nest, each indexing into the
enclosing one). A batch that is ``j`` times as large as the current rows (candidates stacked per sample)
charges ``j`` passes to each.

One *pass* of an image is a forward and a backward (AttackBench: two propagations); a forward-only
evaluation is half a pass. Budgets (``HumanPercOT(budget=...)``) and the tables count passes this way.

**The budget guard** (``budget=B``, AttackBench 2.0's semantics): a sample that has used ``B`` passes is *spent*.
Its rows of a later batch are not evaluated (the attack gets logits of zeros for them, with a zero gradient, and
nothing is charged), so no sample ever spends more than ``B`` passes (a last backward may add half a pass to a
query whose forward was within ``B``); a batch whose samples are all spent raises :class:`BudgetExhausted`, which
ends the attack (:class:`~.base.Attack` catches it). A query past the budget is never observed by the tracker,
so what the attack returns under a budget is the best 8-bit adversarial it queried within it, and the clean image
(a failure) where it queried none. An attack's returned image that the tracker has not seen and that is not the clean
image (a loop that steps after its last query, as PGD's) is queried once more as the attack's last counted query,
refused past the budget. The
harness's other looks (the clean image, the final margins) run inside :meth:`CountingModel.uncounted`: neither
charged nor observed.

Examples:
    >>> import torch
    >>> from imperceptible.attacks.counting import CountingModel
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> x = torch.rand(3, 1, 2, 2, requires_grad=True)
    >>> with CountingModel(net, 3) as m:
    ...     m(x).sum().backward()
    ...     with m.rows(torch.tensor([2])):
    ...         _ = m(x[2:])
    >>> m.forwards.tolist(), m.backwards.tolist(), m.passes().tolist()
    ([1.0, 1.0, 2.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.5])
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import MSG_MODEL_OUTPUT, ModelOutputError

if TYPE_CHECKING:
    from .anytime import Anytime


def inner_network(model: nn.Module) -> nn.Module:
    """The module whose forward is one pass of the model (``model.net`` for a wrapper that has one)."""
    net = getattr(model, "net", None)
    return net if isinstance(net, nn.Module) else model


class BudgetExhausted(Exception):
    """Every sample of the batch the attack asked about has spent its pass budget: the attack ends here (control
    flow between :class:`CountingModel` and :class:`~.base.Attack`, never seen by users)."""


class CountingModel(nn.Module):
    """The attacked model, counting per-sample forward and backward passes (see the module docstring).
    Logits are returned in float32 even under a mixed-precision autocast, so margins and stopping rules
    are always computed in full precision; the model's unchecked ``logits`` is called when it has one (the
    attack validated its input at entry)."""

    def __init__(self, model: nn.Module, n: int, budget: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.budget = budget
        self._paused = False
        self.train(model.training)  # the wrapped model's mode (an attack run inside another checks it)
        self._logits = getattr(model, "logits", model)
        self.forwards = torch.zeros(n, dtype=torch.float64)
        self.backwards = torch.zeros(n, dtype=torch.float64)
        self._rows = [torch.arange(n)]
        self._hooks: list = []
        self.tracker: Anytime | None = None  # an :class:`~.anytime.Anytime` watching every query, when one is attached

    def __enter__(self) -> CountingModel:
        net = inner_network(self.model)
        self._hooks = [net.register_forward_hook(self._on_forward)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    @contextlib.contextmanager
    def rows(self, idx: torch.Tensor):
        """The next batches hold the samples ``idx`` of the enclosing rows (in that order)."""
        self._rows.append(self._rows[-1][idx.to(self._rows[-1].device)])
        try:
            yield self
        finally:
            self._rows.pop()

    @contextlib.contextmanager
    def uncounted(self):
        """The harness's own evaluations: not charged to any sample, not seen by the tracker, never refused (by this
        counter nor by the counters it wraps: an attack run inside another, as :class:`~.polish.Polished` does)."""
        chain, m = [], self
        while isinstance(m, CountingModel):
            chain.append((m, m._paused))
            m._paused = True
            m = m.model
        try:
            yield self
        finally:
            for c, was in chain:
                c._paused = was

    def _charge(self, counter: torch.Tensor, batch: int, rows: torch.Tensor) -> None:
        n = rows.numel()
        if n and batch % n == 0:
            counter.index_add_(0, rows.cpu(), torch.full((n,), float(batch // n), dtype=torch.float64))
        elif n:  # a batch the rows do not describe: spread evenly over them
            counter.index_add_(0, rows.cpu(), torch.full((n,), batch / n, dtype=torch.float64))

    def _on_forward(self, _module, inputs, output) -> None:
        if self._paused:
            return
        x = inputs[0] if inputs else None
        batch = int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() > 0 else self._rows[-1].numel()
        rows = self._rows[-1]
        self._charge(self.forwards, batch, rows)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda g, b=batch, r=rows: self._charge(self.backwards, b, r))

    def passes(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Passes so far per sample (forward + backward over 2), of the rows ``idx`` of the current context."""
        p = (self.forwards + self.backwards) / 2
        return p if idx is None else p[self._rows[-1][idx].cpu()]

    def spent(self, rows: torch.Tensor) -> torch.Tensor:
        """Which of ``rows`` have used their whole budget (all False without one)."""
        if self.budget is None:
            return torch.zeros(rows.numel(), dtype=torch.bool)
        return ((self.forwards + self.backwards) / 2)[rows.cpu()] >= self.budget

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._paused:
            return self.model_output(self._logits(x))
        rows = self._rows[-1]
        spent = self.spent(rows)
        if bool(spent.all()) and rows.numel():
            raise BudgetExhausted
        if spent.any() and x.shape[0] == rows.numel():  # evaluate the samples with budget left, only
            live = (~spent).nonzero().squeeze(1).to(x.device)
            with self.rows(live):
                out_live = self._query(x[live])
            out = torch.zeros(x.shape[0], out_live.shape[1], dtype=out_live.dtype, device=out_live.device)
            out = out + 0.0 * x.flatten(1).sum(1, keepdim=True)  # spent rows: zeros, a zero gradient
            return out.index_copy(0, live, out_live)
        return self._query(x)

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model_output(self._logits(x))
        if self.tracker is not None:
            rows = self._rows[-1]
            judge = self.full_precision_logits if torch.is_autocast_enabled(x.device.type) else None
            self.tracker.observe(rows, x, out, ((self.forwards + self.backwards) / 2)[rows.cpu()], judge=judge)
        return out

    def full_precision_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's float32 logits of ``x`` outside any autocast, charged to no sample: the harness's own verdict
        (under a mixed-precision autocast, a success is what the full-precision model says)."""
        with full_precision_verdict(x.device), self.uncounted():
            return self.model_output(self._logits(x.float()))

    def model_output(self, out) -> torch.Tensor:
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError.of(MSG_MODEL_OUTPUT, got=type(out).__name__)
        return out.float()

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)


def full_precision_verdict(device: torch.device):
    """No autocast on ``device``: the context of every success verdict (the clean check, the anytime tracker's
    candidates, the final margins), so that a mixed-precision run's successes are the float32 model's."""
    return torch.autocast(device_type=device.type, enabled=False)


def rows(model: nn.Module, idx: torch.Tensor):
    """``model.rows(idx)`` for a :class:`CountingModel`, a no-op context for any other model."""
    return model.rows(idx) if isinstance(model, CountingModel) else contextlib.nullcontext(model)


__all__ = ["BudgetExhausted", "CountingModel", "full_precision_verdict", "inner_network", "rows"]
