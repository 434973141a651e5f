"""``torchscript:PATH``: a user's TorchScript model that takes ``[0, 1]`` images (its own
normalisation inside). The number of classes is read from one forward pass on a blank image."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..validation import MSG_WEIGHTS_NOT_FOUND, WeightsNotFoundError
from .wrapper import ImageClassifier


def torchscript_model(path: str | os.PathLike, *, channels: int = 3, size: int = 224) -> ImageClassifier:
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(MSG_WEIGHTS_NOT_FOUND.format(
            what="TorchScript model", filename=p.name, places=str(p), env_hint=" (torchscript:PATH)"))
    net = torch.jit.load(str(p), map_location="cpu").eval()
    with torch.no_grad():
        k = net(torch.zeros(1, channels, size, size)).shape[-1]
    return ImageClassifier(net, mean=(0.0,) * channels, std=(1.0,) * channels, num_classes=int(k),
                           name=f"torchscript:{p}")
