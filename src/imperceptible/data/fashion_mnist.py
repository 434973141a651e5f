"""Fashion-MNIST from gzipped idx files: Debian's ``dataset-fashion-mnist`` package, a folder you
give (or ``$IMPERCEPTIBLE_FASHION_MNIST``), or torchvision's download where there is internet."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import MSG_DATASET_NOT_FOUND, DatasetNotFoundError
from ..validation import check_option
from .base import ImageDataset

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV = "IMPERCEPTIBLE_FASHION_MNIST"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.gz", folder / stem, folder / "FashionMNIST" / "raw" / stem):
        if cand.is_file():
            return cand
    return None


def candidate_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    dirs = []
    if root is not None:
        dirs.append(Path(root))
    if os.environ.get(ENV):
        dirs.append(Path(os.environ[ENV]))
    dirs.append(DEBIAN_DIR)
    return dirs


def fashion_mnist(split: str = "test", root: str | os.PathLike | None = None, download: bool = False) -> ImageDataset:
    """Fashion-MNIST ``split`` (``train``: 60,000, ``test``: 10,000) as ``[0, 1]`` tensors."""
    check_option("split", split, tuple(FILES))
    img_stem, lab_stem = FILES[split]
    for d in candidate_dirs(root):
        ip, lp = _find(d, img_stem), _find(d, lab_stem)
        if ip and lp:
            x, y = _read_idx(ip), _read_idx(lp)
            break
    else:
        if not download:
            raise DatasetNotFoundError.of(
                MSG_DATASET_NOT_FOUND,
                name="fashion-mnist",
                expected=f"{img_stem}.gz and {lab_stem}.gz",
                got="nothing in " + ", ".join(str(d) for d in candidate_dirs(root)),
                how="Install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), set "
                f"{ENV}=FOLDER, or pass download=True where there is internet.",
            )
        import torchvision

        ds = torchvision.datasets.FashionMNIST(str(root or Path.home() / ".cache"), train=split == "train",
                                               download=True)
        x, y = ds.data.numpy(), ds.targets.numpy()
    images = torch.from_numpy(x.astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    return ImageDataset("fashion-mnist", images, torch.from_numpy(y.astype(np.int64)),
                        [f"fashion-{split}-{i:05d}" for i in range(len(y))], 10, class_names=list(CLASSES),
                        info={"split": split})
