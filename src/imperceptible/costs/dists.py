"""DISTS (Ding et al. 2020), with the official ``DISTS_pytorch`` code.

The structure/texture weights ``alpha`` and ``beta`` ship in the ``dists-pytorch`` wheel
(``DISTS_pytorch/weights.pt``); the VGG16 backbone is torchvision's, found locally or fetched on first use
(see :mod:`imperceptible.backbones`). The forward computation is the package's own
(``DISTS_pytorch.DISTS.forward``); only construction is ours, because the package's constructor
downloads the backbone.

Reference: K. Ding, K. Ma, S. Wang, E. P. Simoncelli, "Image quality assessment: unifying structure
and texture similarity", IEEE TPAMI 2020. DOI 10.1109/TPAMI.2020.3045810.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from DISTS_pytorch import DISTS_pt
from torch import nn

from .. import backbones
from ..weights import load_state_dict
from .base import Cost, to_rgb
from .lpips import backbone_available, torchvision_features
from .tags import CostTags

ALPHA_BETA = Path(DISTS_pt.__file__).with_name("weights.pt")

# stage -> indices of vgg16.features it holds (the max-pools 4, 9, 16, 23 become L2 pooling)
_STAGES = [range(0, 4), range(5, 9), range(10, 16), range(17, 23), range(24, 30)]
_POOL_CHANNELS = {4: 64, 9: 128, 16: 256, 23: 512}


class DISTSNet(DISTS_pt.DISTS):
    """``DISTS_pytorch.DISTS`` built from a given VGG16 ``features`` and alpha/beta, offline."""

    def __init__(self, features: nn.Sequential, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        nn.Module.__init__(self)
        for s, idx in enumerate(_STAGES, start=1):
            stage = nn.Sequential()
            if idx.start - 1 in _POOL_CHANNELS:
                stage.add_module(str(idx.start - 1), DISTS_pt.L2pooling(channels=_POOL_CHANNELS[idx.start - 1]))
            for i in idx:
                stage.add_module(str(i), features[i])
            setattr(self, f"stage{s}", stage)
        for p in self.parameters():
            p.requires_grad = False
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))
        self.chns = [3, 64, 128, 256, 512, 512]
        self.alpha = nn.Parameter(alpha.clone(), requires_grad=False)
        self.beta = nn.Parameter(beta.clone(), requires_grad=False)


class DISTSCost(Cost):
    """DISTS distance per sample (the paper reports it x1000). ``weights``: the VGG16 file (default: found
    or fetched, see :mod:`imperceptible.backbones`)."""

    name = "dists"
    TAGS = CostTags('DISTS (Ding et al. 2020) (DISTS_pytorch package)')
    learned = True

    def __init__(self, *, weights: str | os.PathLike | None = None, data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        features = torchvision_features("vgg16", torchvision.models.vgg16, weights)
        ab = load_state_dict(ALPHA_BETA, "DISTS alpha/beta")
        self.model = DISTSNet(features, ab["alpha"], ab["beta"]).eval()

    @classmethod
    def weight_status(cls) -> list[dict]:
        return [backbones.status("vgg16")]

    @classmethod
    def available(cls, **options) -> bool:
        return backbone_available("vgg16", options.get("weights"))

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return self.model(to_rgb(x), to_rgb(x0), require_grad=True).reshape(-1)


__all__ = ["DISTSCost", "DISTSNet", "ALPHA_BETA"]
