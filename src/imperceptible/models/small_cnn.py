"""Small CNNs for 28x28 grey images (MNIST, Fashion-MNIST)."""

from __future__ import annotations

import torch
from torch import nn


class ToSize(nn.AdaptiveAvgPool2d):
    """Adaptive average pooling that passes an input already of its output size through untouched (the same
    values: each output averages one input; it saves the pooling and its backward, about 8 % of a training step of
    :func:`cnn_any_size` on 28x28)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.output_size  # None (the whole size, or one side) keeps the input's size
        size = (out, out) if out is None or isinstance(out, int) else tuple(out)
        same = all(s is None or s == d for s, d in zip(size, x.shape[-2:]))
        return x if same else super().forward(x)


def cnn_a(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """Two 3x3 conv blocks with max-pooling and a 128-unit head (about 0.4 M parameters)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, num_classes),
    )


def cnn_b(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """A different architecture (5x5 convs, average pooling), used as an independent second opinion."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(50 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, num_classes),
    )


def cnn_any_size(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """:func:`cnn_a` with an adaptive 7x7 pooling before the head, so it takes images of any size >= 7
    (identical to ``cnn_a`` on 28x28); the fairness study's model. A separate function because inserting
    the pooling shifts the layer indices, i.e. the state-dict keys of ``cnn_a``'s cached weights."""
    layers = list(cnn_a(num_classes, in_channels))
    layers.insert(layers.index(next(m for m in layers if isinstance(m, nn.Flatten))), ToSize(7))
    return nn.Sequential(*layers)


ARCHITECTURES = {"a": cnn_a, "b": cnn_b}
