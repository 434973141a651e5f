"""The LPIPS distance of perceptual-advex (Laidlaw et al. 2021), used by PPGD and LPA.

``phi(x)`` concatenates the activations of a few layers, each normalised to unit L2 norm over channels
at every position and divided by ``sqrt(H_l W_l)``; ``d(x, x') = ||phi(x) - phi(x')||_2`` (no learned
weights: this is the square root of an unweighted LPIPS, the unit in which their bound 0.5 is set).

Feature networks: ``self`` - the attacked classifier's own intermediate activations (their
``lpips_model='self'``; the input itself for a classifier with no intermediate layers, such as a linear one), which
needs no extra weights; ``alexnet`` - torchvision AlexNet's ReLU
outputs, ImageNet-normalised, with ImageNet weights found locally or fetched on first use
(:mod:`imperceptible.backbones`; their default for ImageNet). Results name which one was used.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from ..costs.lpips import torchvision_features
from ..errors import MSG_PARAM, ParameterError
from ..validation import check_option

#: AlexNet's smallest input: its third max-pooling needs a 3x3 map
ALEXNET_MIN_SIZE = 63


def normalize_features(feats: list[torch.Tensor]) -> torch.Tensor:
    out = []
    for f in feats:
        if f.dim() == 2:
            f = f[:, :, None, None]
        f = f / (f.norm(dim=1, keepdim=True) + 1e-10)
        out.append((f / (f.shape[2] * f.shape[3]) ** 0.5).flatten(1))
    return torch.cat(out, 1)


class AlexNetFeatures(nn.Module):
    """AlexNet's five ReLU outputs on ImageNet-normalised ``[0, 1]`` input."""

    mean: torch.Tensor  # buffers (registered in __init__)
    std: torch.Tensor

    def __init__(self, weights=None) -> None:
        super().__init__()
        self.features = torchvision_features("alexnet", torchvision.models.alexnet, weights).eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < ALEXNET_MIN_SIZE:
            raise ParameterError.of(MSG_PARAM, name="lpips_model='alexnet'", got=tuple(x.shape[-2:]),
                                    expected=f"images of at least {ALEXNET_MIN_SIZE}x{ALEXNET_MIN_SIZE} (use lpips_model='self' "
                                    "for small images)")
        h = (x.expand(-1, 3, -1, -1) - self.mean.to(x)) / self.std.to(x)
        feats = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in (1, 4, 7, 9, 11):
                feats.append(h)
        return feats


class FeatureLPIPS:
    """``phi`` and ``d`` for a model (``self``) or AlexNet (``alexnet``)."""

    def __init__(self, model, kind: str = "self", weights=None, *, alexnet: AlexNetFeatures | None = None) -> None:
        self.kind = check_option("lpips_model", kind, ("self", "alexnet"))
        self.model = model
        self._alex = (alexnet or AlexNetFeatures(weights)) if kind == "alexnet" else None

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        if self._alex is not None:
            return normalize_features(self._alex(x))
        feats, _ = self.model.features_and_logits(x)
        return normalize_features(feats or [x])  # a classifier with no intermediate layers (linear): its input

    def distance(self, x: torch.Tensor, x0_phi: torch.Tensor) -> torch.Tensor:
        return (self.phi(x) - x0_phi).norm(dim=1)
