"""One look at a model before a run, on the first images it will be given: is it the logit classifier the attacks
assume? Refused: outputs that differ between two identical forward passes (dropout or other randomness left in
the graph: every success would be a coin flip) and probabilities instead of logits (every output in [0, 1], by a
softmax or a sigmoid: margins in probability units, so a confidence is never reached and an attack pushes the
images anywhere). Warned: a clean accuracy of 0 on these images, however few (the usual causes: the input range,
the normalisation, the label order). :func:`probe_once` probes a model once (the Python API's attacks call it; the
command line probes at load).

Examples:
    >>> import torch
    >>> from imperceptible.models.probe import probe_model
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> _ = torch.nn.init.constant_(net[1].bias, -2.0)  # logits, some negative
    >>> probe_model(net, torch.rand(5, 1, 2, 2), torch.zeros(5, dtype=torch.long))["deterministic"]
    True
    >>> try:
    ...     probe_model(torch.nn.Sequential(net, torch.nn.Softmax(1)), torch.rand(5, 1, 2, 2), torch.zeros(5).long())
    ... except TypeError as e:  # a ModelOutputError
    ...     print(str(e)[:40])
    model: expected logits, got probabilitie
"""

from __future__ import annotations

import logging
import weakref

import torch

from ..errors import MSG_NONDETERMINISTIC, MSG_PROBABILITIES, ModelOutputError
from ..notices import MSG_ZERO_ACCURACY, log_warning

log = logging.getLogger(__name__)
PROBE_IMAGES = 16


@torch.no_grad()
def probe_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "model") -> dict:
    """Check ``model`` on (the first :data:`PROBE_IMAGES` of) ``x``; raise :class:`ModelOutputError` or warn (see
    the module docstring). Returns what it found."""
    dev = next(iter(model.parameters()), torch.empty(0)).device
    x, y = x[:PROBE_IMAGES].to(dev), y[:PROBE_IMAGES].to(dev)
    with torch.random.fork_rng(devices=[]):
        a, b = model(x), model(x)
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.dim() != 2 or \
            not bool(torch.isfinite(a).all()):  # not logits at all: the attack's own checks say what is wrong, typed
        return {"checked": False, "images": len(y)}
    a, b = a.float(), b.float()
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
        raise ModelOutputError.of(MSG_NONDETERMINISTIC, name=name, diff=float((a - b).abs().max()))
    if a.dim() == 2 and a.shape[1] > 1 and bool((a >= 0).all()) and bool((a <= 1).all()):
        raise ModelOutputError.of(MSG_PROBABILITIES, name=name)
    accuracy = float((a.argmax(1) == y).float().mean()) if a.dim() == 2 else float("nan")
    if accuracy == 0:
        log_warning(log, MSG_ZERO_ACCURACY, name=name, n=len(y))
    return {"deterministic": True, "probabilities": False, "accuracy": accuracy, "images": len(y)}


_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_once(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "model") -> dict:
    """:func:`probe_model` the first time ``model`` is seen (while it lives), its stored answer afterwards."""
    try:
        return _PROBED[model]
    except (KeyError, TypeError):
        pass
    out = probe_model(model, x, y, name=name)
    try:
        _PROBED[model] = out
    except TypeError:  # an object that cannot be weakly referenced: probed every time
        pass
    return out


__all__ = ["PROBE_IMAGES", "probe_model", "probe_once"]
