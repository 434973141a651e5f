"""``torchvision:NAME``: any torchvision classifier with its default ImageNet weights.

The file is the one torchvision downloads (e.g. ``resnet50-11ad3fa6.pth`` for ``resnet50``'s default
weights), looked for as an explicit path, in ``$IMPERCEPTIBLE_TORCHVISION_WEIGHTS`` (file or folder),
``$IMPERCEPTIBLE_WEIGHTS`` or the torch hub cache; when absent it is downloaded as torchvision does (into
the torch hub cache, checked against the hash prefix in its name) unless ``IMPERCEPTIBLE_OFFLINE=1``, in
which case the error names every place searched. The wrapper resizes to the weights' crop size and
normalises with ImageNet's mean and std.
"""

from __future__ import annotations

import os

import torchvision

from ..backbones import FetchError, download_torchvision_file
from ..errors import MSG_NOT_DOWNLOADED, MSG_TORCHVISION_UNKNOWN, UnknownNameError, WeightsNotFoundError
from ..validation import check_choice
from ..weights import WeightSpec, load_into, load_state_dict
from .wrapper import ImageClassifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def spec(name: str) -> WeightSpec:
    try:
        w = torchvision.models.get_model_weights(name).DEFAULT
    except ValueError as e:
        raise UnknownNameError.of(MSG_TORCHVISION_UNKNOWN, name=name, error=e) from None
    return WeightSpec(f"torchvision {name} ({w})", os.path.basename(w.url), "IMPERCEPTIBLE_TORCHVISION_WEIGHTS")


def torchvision_model(name: str, weights: str | os.PathLike | None = None, *,
                      progress: bool = True) -> ImageClassifier:
    check_choice("torchvision model", name, torchvision.models.list_models(module=torchvision.models))
    s = spec(name)
    path = s.find(weights)
    if path is None and weights is None:
        try:
            path = download_torchvision_file(s.filename, progress=progress)
        except FetchError as e:
            try:
                s.resolve(weights)
            except WeightsNotFoundError as nf:
                raise WeightsNotFoundError.of(MSG_NOT_DOWNLOADED, missing=nf, error=e) from None
    if path is None:
        path = s.resolve(weights)
    net = torchvision.models.get_model(name, weights=None)
    load_into(net, load_state_dict(path, s.what), what=s.what, path=path)
    w = torchvision.models.get_model_weights(name).DEFAULT
    t = w.transforms()
    size = _side(t)
    return ImageClassifier(net.eval(), mean=IMAGENET_MEAN, std=IMAGENET_STD, num_classes=len(w.meta["categories"]),
                           input_size=(size, size), interpolation=t.interpolation.value,
                           crop_pct=size / (t.resize_size[0] if t.resize_size else size), name=f"torchvision:{name}")


def crop_size(name: str) -> int | None:
    """The side of the images a torchvision model's default weights were evaluated at."""
    try:
        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    except ValueError:
        return None
    return _side(t)


def _side(transforms) -> int:
    """The crop side of a torchvision weights' evaluation transform."""
    crop = transforms.crop_size
    return crop[0] if isinstance(crop, (list, tuple)) else crop
