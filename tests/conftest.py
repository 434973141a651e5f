"""Shared fixtures. Real offline data and models; nothing downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMPERCEPTIBLE_SHARED", ROOT.parent / "shared"))
IMAGENET_COMPATIBLE = SHARED / "data" / "imagenet-compatible"


@pytest.fixture(scope="session")
def effnet():
    from imperceptible.models import get

    return get("efficientnet-lite0")


@pytest.fixture(scope="session")
def imagenet_samples():
    from imperceptible.data import load

    return load("imagenet-samples")


@pytest.fixture(scope="session")
def imagenet_correct(effnet, imagenet_samples):
    """The imagenet-samples photos EfficientNet-Lite0 classifies correctly."""
    ok = effnet.predict(imagenet_samples.images, 10) == imagenet_samples.labels
    return imagenet_samples.images[ok], imagenet_samples.labels[ok]


@pytest.fixture(scope="session")
def mnist_cnn():
    from imperceptible.models import get

    return get("mnist-cnn", progress=False)


@pytest.fixture(scope="session")
def mnist_test():
    from imperceptible.data import load

    return load("mnist", split="test")


@pytest.fixture(scope="session")
def mnist_correct(mnist_cnn, mnist_test):
    x, y = mnist_test.images[:64], mnist_test.labels[:64]
    ok = mnist_cnn.predict(x) == y
    return x[ok], y[ok]


def require_imagenet_compatible() -> Path:
    if not (IMAGENET_COMPATIBLE / "images.csv").is_file():
        pytest.skip(f"the ImageNet-compatible dataset is absent here (looked in {IMAGENET_COMPATIBLE}; "
                    "set IMPERCEPTIBLE_SHARED to the folder holding data/imagenet-compatible)")
    return IMAGENET_COMPATIBLE
