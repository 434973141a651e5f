"""One look at a model before a run, on the first images it will be given: is it the logit classifier the attacks
assume? Refused: outputs that differ between two identical forward passes (dropout or other randomness left in
the graph: every success would be a coin flip) and probabilities instead of logits (rows non-negative and summing
to one: margins in probability units, so a confidence is never reached). Warned: a clean accuracy of 0 on these
images (the usual causes: the input range, the normalisation, the label order).

Examples:
    >>> import torch
    >>> from imperceptible.models.probe import probe_model
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> probe_model(net, torch.rand(5, 1, 2, 2), torch.zeros(5, dtype=torch.long))["deterministic"]
    True
"""

from __future__ import annotations

import logging

import torch

from ..validation import MSG_NONDETERMINISTIC, MSG_PROBABILITIES, MSG_ZERO_ACCURACY, ModelOutputError

log = logging.getLogger(__name__)
PROBE_IMAGES = 16


@torch.no_grad()
def probe_model(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "model") -> dict:
    """Check ``model`` on (the first :data:`PROBE_IMAGES` of) ``x``; raise :class:`ModelOutputError` or warn (see
    the module docstring). Returns what it found."""
    dev = next(iter(model.parameters()), torch.empty(0)).device
    x, y = x[:PROBE_IMAGES].to(dev), y[:PROBE_IMAGES].to(dev)
    with torch.random.fork_rng(devices=[]):
        a, b = model(x).float(), model(x).float()
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
        raise ModelOutputError.of(MSG_NONDETERMINISTIC, name=name, diff=float((a - b).abs().max()))
    if a.shape[1] > 1 and bool((a >= 0).all()) and torch.allclose(a.sum(1), torch.ones(len(a), device=dev), atol=1e-4):
        raise ModelOutputError.of(MSG_PROBABILITIES, name=name)
    accuracy = float((a.argmax(1) == y).float().mean())
    if accuracy == 0 and len(y) >= 4:
        log.warning(MSG_ZERO_ACCURACY.format(name=name, n=len(y)))
    return {"deterministic": True, "probabilities": False, "accuracy": accuracy, "images": len(y)}


__all__ = ["PROBE_IMAGES", "probe_model"]
