"""``torchscript:PATH``: a user's TorchScript model that takes ``[0, 1]`` images (its own
normalisation inside). The number of classes is not known until the first forward pass, so labels are
only range-checked by the model itself."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..validation import MSG_WEIGHTS_NOT_FOUND, WeightsNotFoundError
from .wrapper import ImageClassifier


def torchscript_model(path: str | os.PathLike, *, channels: int = 3) -> ImageClassifier:
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(MSG_WEIGHTS_NOT_FOUND.format(
            what="TorchScript model", filename=p.name, places=str(p), env_hint=" (torchscript:PATH)"))
    net = torch.jit.load(str(p), map_location="cpu").eval()
    return ImageClassifier(net, mean=(0.0,) * channels, std=(1.0,) * channels, num_classes=None,
                           name=f"torchscript:{p}")
