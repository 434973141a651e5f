"""The ImageNet-compatible development set (NIPS 2017 adversarial competition; PerC's and the paper's
1000 evaluation images): ``images/<ImageId>.png`` (299x299) and ``images.csv`` whose ``TrueLabel`` is
1-based (Inception's 1001 classes, 0 = background), so the ImageNet-1k label is ``TrueLabel - 1``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
from PIL import Image

from ..errors import MSG_DATASET_NOT_FOUND, MSG_IDS_MISSING, DatasetNotFoundError
from .base import ImageDataset, pil_to_tensor

ENV = "IMPERCEPTIBLE_IMAGENET_COMPATIBLE"
HOW = ("Get the development set of the NIPS 2017 adversarial competition (it is distributed with "
       "PerC-Adversarial as dataset/images/*.png and dataset/images.csv), then pass "
       f"imagenet-compatible:PATH or set {ENV}=PATH.")


def imagenet_compatible(path: str | os.PathLike | None = None, size: int = 224, limit: int | None = None,
                        ids: list[str] | None = None) -> ImageDataset:
    """The images sorted by ImageId (or the images ``ids``, in that order; the first ``limit`` of them), resized to
    ``size`` (no crop); an id the table does not hold is refused."""
    root = Path(path or os.environ.get(ENV, ""))
    table = root / "images.csv"
    if not str(path or os.environ.get(ENV, "")) or not table.is_file():
        raise DatasetNotFoundError.of(MSG_DATASET_NOT_FOUND, name="imagenet-compatible",
                                      expected="a folder with images.csv and images/<ImageId>.png",
                                      got=f"no file {table}" if str(root) not in ("", ".") else "no path", how=HOW)
    with open(table, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["ImageId"])
    if ids is not None:
        by_id = {r["ImageId"]: r for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DatasetNotFoundError.of(MSG_IDS_MISSING, name="imagenet-compatible", n=len(missing), got=missing[0],
                                          expected=f"ids of {table}")
        rows = [by_id[i] for i in ids]
    if limit is not None:
        rows = rows[:limit]
    imgs = []
    for r in rows:
        with Image.open(root / "images" / f"{r['ImageId']}.png") as im:
            imgs.append(pil_to_tensor(im, size=size))
    labels = torch.tensor([int(r["TrueLabel"]) - 1 for r in rows], dtype=torch.long)
    return ImageDataset("imagenet-compatible", torch.stack(imgs), labels, [r["ImageId"] for r in rows], 1000,
                        info={"path": str(root), "size": size, "label": "TrueLabel - 1",
                              "targets": [int(r["TargetClass"]) - 1 for r in rows],
                              "credits": [r.get("Author", "") for r in rows],
                              "licenses": [r.get("License", "") for r in rows]})
