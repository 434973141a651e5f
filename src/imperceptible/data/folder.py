"""Bring your own data: a folder of images with a ``labels.csv`` (``file,label[,group]``)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from PIL import Image

from ..validation import MSG_DATASET_NOT_FOUND, DatasetNotFoundError, TableError
from .base import ImageDataset, pil_to_tensor


def image_folder(path: str, size: int | None = None, grey: bool | None = None,
                 num_classes: int | None = None) -> ImageDataset:
    """Load every row of ``PATH/labels.csv``. Images of different sizes need ``size``."""
    root = Path(path)
    table = root / "labels.csv"
    if not table.is_file():
        raise DatasetNotFoundError(MSG_DATASET_NOT_FOUND.format(
            name=f"folder:{path}", expected="a folder with labels.csv (columns file,label[,group])",
            got=f"no file {table}", how="Write labels.csv beside your images."))
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise TableError(f"{table}: expected columns file,label[,group], got {list(rows[0]) if rows else 'no rows'}")
    imgs, labels, groups = [], [], []
    for r in rows:
        with Image.open(root / r["file"]) as im:
            g = grey if grey is not None else im.mode in ("L", "1", "I", "I;16")
            imgs.append(pil_to_tensor(im, size=size, grey=g))
        labels.append(int(r["label"]))
        groups.append(r.get("group") or "")
    shapes = {tuple(t.shape) for t in imgs}
    if len(shapes) > 1:
        raise TableError(f"{table}: expected images of one size (pass size=), got sizes {sorted(shapes)}")
    y = torch.tensor(labels, dtype=torch.long)
    return ImageDataset(f"folder:{path}", torch.stack(imgs), y, [r["file"] for r in rows],
                        num_classes or int(y.max()) + 1,
                        groups=groups if any(groups) else None, info={"path": str(root)})
