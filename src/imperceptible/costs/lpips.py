"""LPIPS (Zhang et al. 2018), through the official ``lpips`` package.

The learned linear heads ship inside the ``lpips`` wheel; the ImageNet backbones (AlexNet, VGG16,
SqueezeNet 1.1) are torchvision's and are read from local files only (see
:mod:`imperceptible.weights`): ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``,
``squeezenet1_1-b8a52dc0.pth`` - the names torchvision gives them in the torch hub cache.
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

from ..validation import check_option
from ..weights import WeightSpec, load_state_dict
from .base import Cost, to_rgb

BACKBONES = {
    "alex": (WeightSpec("LPIPS AlexNet backbone (torchvision alexnet)", "alexnet-owt-7be5be79.pth",
                        "IMPERCEPTIBLE_LPIPS_ALEX"), torchvision.models.alexnet),
    "vgg": (WeightSpec("LPIPS VGG16 backbone (torchvision vgg16)", "vgg16-397923af.pth",
                       "IMPERCEPTIBLE_LPIPS_VGG"), torchvision.models.vgg16),
    "squeeze": (WeightSpec("LPIPS SqueezeNet backbone (torchvision squeezenet1_1)", "squeezenet1_1-b8a52dc0.pth",
                           "IMPERCEPTIBLE_LPIPS_SQUEEZE"), torchvision.models.squeezenet1_1),
}


def copy_backbone(slices: torch.nn.Module, features: torch.nn.Sequential) -> None:
    """Copy torchvision ``features`` into a network split in slices whose children keep the
    original indices as names (the layout of ``lpips`` and DISTS)."""
    for sl in slices.children():
        for idx, module in sl.named_children():
            if idx.isdigit():
                module.load_state_dict(features[int(idx)].state_dict())


class LPIPSCost(Cost):
    """LPIPS distance per sample. ``net`` in ``alex | vgg | squeeze``; ``weights`` is the path of the
    torchvision backbone file (default: searched as described in the module docstring)."""

    name = "lpips"
    learned = True

    def __init__(self, *, net: str = "alex", weights: str | os.PathLike | None = None,
                 data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        import lpips

        self.net = check_option("net", net, tuple(BACKBONES))
        spec, ctor = BACKBONES[net]
        path = spec.resolve(weights)
        tv = ctor(weights=None)
        tv.load_state_dict(load_state_dict(path, spec.what))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        copy_backbone(self.model.net, tv.features)
        self.model.eval().requires_grad_(False)

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return self.model(to_rgb(x), to_rgb(x0), normalize=True).flatten()
