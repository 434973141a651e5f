"""``torchvision:NAME``: any torchvision classifier with ImageNet weights from a local file.

The file is the one torchvision would download (e.g. ``resnet50-11ad3fa6.pth`` for ``resnet50``'s
default weights), looked for as an explicit path, in ``$IMPERCEPTIBLE_TORCHVISION_WEIGHTS`` (file or
folder), ``$IMPERCEPTIBLE_WEIGHTS`` or the torch hub cache. Nothing downloads.
"""

from __future__ import annotations

import os

import torchvision

from ..validation import UnknownNameError, check_choice
from ..weights import WeightSpec, load_state_dict
from .wrapper import ImageClassifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def spec(name: str) -> WeightSpec:
    try:
        w = torchvision.models.get_model_weights(name).DEFAULT
    except ValueError as e:
        raise UnknownNameError(f"unknown torchvision model {name!r}: {e}") from None
    return WeightSpec(f"torchvision {name} ({w})", os.path.basename(w.url), "IMPERCEPTIBLE_TORCHVISION_WEIGHTS")


def torchvision_model(name: str, weights: str | os.PathLike | None = None) -> ImageClassifier:
    check_choice("torchvision model", name, torchvision.models.list_models(module=torchvision.models))
    s = spec(name)
    path = s.resolve(weights)
    net = torchvision.models.get_model(name, weights=None)
    net.load_state_dict(load_state_dict(path, s.what))
    w = torchvision.models.get_model_weights(name).DEFAULT
    crop = w.transforms().crop_size
    size = crop[0] if isinstance(crop, (list, tuple)) else crop
    return ImageClassifier(net.eval(), mean=IMAGENET_MEAN, std=IMAGENET_STD, num_classes=len(w.meta["categories"]),
                           input_size=(size, size), name=f"torchvision:{name}")
