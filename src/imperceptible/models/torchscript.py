"""``torchscript:PATH``: a user's TorchScript model that takes ``[0, 1]`` images (its own normalisation
inside). What it expects is found by probing it once: the number of input channels (1 or 3: the data's
channel count is tried first, then the other) and the number of classes (the width of its output). Images
with the other channel count are converted by the wrapper (grey repeated to RGB, RGB to luma); the run
records which. A network whose parameters are float64 or half is cast to float32, the precision the tool
computes in (with a warning); one that still fails says its dtype."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import (
    MSG_MODEL_OUTPUT,
    MSG_NOT_TORCHSCRIPT,
    MSG_TORCHSCRIPT_NO_CHANNELS,
    MSG_TORCHSCRIPT_OUTPUT,
    MSG_WEIGHTS_NOT_FOUND,
    ModelOutputError,
    TorchScriptError,
    WeightsNotFoundError,
)
from ..notices import MSG_TORCHSCRIPT_CAST, log_warning
from .wrapper import ImageClassifier

log = logging.getLogger(__name__)


def _probe(net, channels: int, size: tuple[int, ...]) -> torch.Tensor:
    with torch.no_grad():
        out = net(torch.full((2, channels, *size), 0.5))
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError.of(MSG_MODEL_OUTPUT, got=type(out).__name__)
    return out


def _dtype_of(net) -> torch.dtype | None:
    """The dtype of the network's first floating-point parameter or buffer (``None`` when it has none)."""
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def torchscript_model(path: str | os.PathLike, *, channels: int | None = None,
                      size: tuple[int, int] | None = None) -> ImageClassifier:
    """Load a TorchScript classifier. ``channels`` (1 or 3) is tried first, ``size`` is the probe size
    (the data's; default 224x224)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError.of(MSG_WEIGHTS_NOT_FOUND, what="TorchScript model", filename=p.name, places=str(p),
                                      env_hint=" (torchscript:PATH)")
    try:
        net = torch.jit.load(str(p), map_location="cpu").eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise TorchScriptError.of(MSG_NOT_TORCHSCRIPT, path=p, error=str(e).splitlines()[0][:200]) from None
    dtype = _dtype_of(net)
    cast_from = None if dtype in (None, torch.float32) else str(dtype).replace("torch.", "")
    if cast_from:
        net = net.float()
        log_warning(log, MSG_TORCHSCRIPT_CAST, path=p, dtype=cast_from)
    hw = tuple(size or (224, 224))
    order = [channels or 3] + [c for c in (3, 1) if c != (channels or 3)]
    errors = []
    for c in order:
        try:
            out = _probe(net, c, hw)
        except ModelOutputError:
            raise
        except Exception as e:  # noqa: BLE001 - a TorchScript model raises whatever its code raises
            errors.append(str(e).splitlines()[0][:160] if str(e) else type(e).__name__)
            continue
        if out.dim() != 2 or out.shape[0] != 2:
            raise ModelOutputError.of(MSG_TORCHSCRIPT_OUTPUT, path=p, got=tuple(out.shape))
        if channels and c != channels:
            log.warning("torchscript:%s takes %d-channel images; the %d-channel data will be converted", p, c, channels)
        return ImageClassifier(net, mean=(0.0,) * c, std=(1.0,) * c, num_classes=int(out.shape[1]),
                               name=f"torchscript:{p}")
    dtype_note = f" (its parameters were {cast_from}, cast to float32)" if cast_from else ""
    raise TorchScriptError.of(MSG_TORCHSCRIPT_NO_CHANNELS, path=p, size=hw[0], dtype=dtype_note,
                              error="; ".join(dict.fromkeys(errors)))
