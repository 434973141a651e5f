"""The memory layout a convolutional network runs fastest in on its device: channels-last on the CPU (oneDNN's
convolutions and max-pooling; measured on the fairness study's 0.4 M-parameter CNN, 2 cores: an SGD step of 64
images 42 -> 24 ms, an input gradient 30 -> 21 ms, 512 predictions 139 -> 80 ms), the default layout elsewhere.
A layout changes strides, not values: the state dict, saved files and predictions are the same (up to the
summation order of the convolutions). A model of someone else's may not run in it (a ``.view`` of a convolution's
output needs the default strides): :func:`fast_layout_checked` tries it on a few images and keeps the default layout,
saying why, where the model fails or answers differently."""

from __future__ import annotations

import logging
from typing import TypeVar

import torch
from torch import nn

from ..notices import MSG_LAYOUT_KEPT, log_warning

ModelT = TypeVar("ModelT", bound=nn.Module)
log = logging.getLogger(__name__)


def fast_layout_format(module: nn.Module) -> torch.memory_format:
    """The layout :func:`fast_layout` gives ``module`` on the device its parameters are on."""
    p = next(module.parameters(), None)
    return torch.channels_last if p is not None and p.device.type == "cpu" else torch.contiguous_format


def in_fast_layout(module: nn.Module) -> bool:
    """Whether every 4-D parameter of ``module`` is already in :func:`fast_layout_format`."""
    fmt = fast_layout_format(module)
    return all(p.is_contiguous(memory_format=fmt) for p in module.parameters() if p.dim() == 4)


def fast_layout(module: ModelT) -> ModelT:
    """``module`` itself, its 4-D weights moved (in place) into the fastest layout of their device."""
    return module.to(memory_format=fast_layout_format(module))


#: how far the fast layout's logits may be from the default layout's (relative to the largest logit): float32
#: reassociation in the convolutions moves them by about 1e-6 of it (EfficientNet-Lite0: 8e-6 absolute)
LAYOUT_TOLERANCE = 1e-4


def fast_layout_checked(module: ModelT, x: torch.Tensor, *, name: str) -> ModelT:
    """``module`` in :func:`fast_layout` if it gives the same logits on the images ``x`` in it (within
    :data:`LAYOUT_TOLERANCE`), else ``module`` back in the default layout with a notice naming ``name`` and why."""
    if fast_layout_format(module) == torch.contiguous_format or in_fast_layout(module):
        return module
    with torch.no_grad():
        before = module(x)
        fast_layout(module)
        try:
            after = module(x)
        except RuntimeError as e:
            why = "fails in it: " + (str(e).strip().splitlines() or ["RuntimeError"])[-1][:200]
        else:
            if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor):
                why = "was not checked: the model's output is not a tensor"
            else:
                diff = float((after.float() - before.float()).abs().max())
                scale = float(before.float().abs().max()) or 1.0
                if diff <= LAYOUT_TOLERANCE * scale:
                    return module
                why = f"changes its outputs by up to {diff:.3g}"
    module.to(memory_format=torch.contiguous_format)
    log_warning(log, MSG_LAYOUT_KEPT, name=name, why=why)  # one line, as the model's other notices (probe.py)
    return module


__all__ = ["LAYOUT_TOLERANCE", "fast_layout", "fast_layout_checked", "fast_layout_format", "in_fast_layout"]
