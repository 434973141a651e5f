"""The in-memory dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..errors import MSG_IDS_COUNT, ShapeError
from ..validation import check_8bit, check_images, check_labels


@dataclass
class ImageDataset:
    """Images ``(N, C, H, W)`` float32 in ``[0, 1]`` on the 8-bit grid (every loader rounds after any resize or
    conversion, as a saved file would be: the attacks start from these images and every distance is measured to
    them), int64 labels ``(N,)``, string ids, optional groups."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]
    num_classes: int
    groups: list[str] | None = None
    class_names: list[str] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_images(self.images, f"{self.name}.images")
        check_8bit(self.images, f"{self.name}.images", how="a loader must round them (imperceptible.pixels.quantize_8bit)")
        self.labels = check_labels(self.labels, self.images.shape[0], f"{self.name}.labels", self.num_classes)
        if len(self.ids) != self.images.shape[0]:
            raise ShapeError.of(MSG_IDS_COUNT, name=f"{self.name}.ids", expected=self.images.shape[0], got=len(self.ids))

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index) -> ImageDataset:
        """The rows ``index``; per-row entries of ``info`` (tensors and lists with one item per image, also inside
        a list of dicts, such as geo-fashion's base images and cue draws) are taken along."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return ImageDataset(
            name=self.name,
            images=self.images[idx],
            labels=self.labels[idx],
            ids=[self.ids[i] for i in idx.tolist()],
            num_classes=self.num_classes,
            groups=[self.groups[i] for i in idx.tolist()] if self.groups is not None else None,
            class_names=self.class_names,
            info={k: _rows_of(v, idx, len(self)) for k, v in self.info.items()},
        )

    def head(self, limit: int | None) -> ImageDataset:
        return self if limit is None or limit >= len(self) else self.subset(range(limit))


def _rows_of(v, idx: torch.Tensor, n: int):
    """``v`` restricted to the rows ``idx`` when it holds one item per image (a tensor, a list, or a list of dicts
    of such lists); unchanged otherwise."""
    if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n:
        return v[idx]
    if isinstance(v, list) and len(v) == n and n > 0 and not all(isinstance(e, dict) for e in v):
        return [v[i] for i in idx.tolist()]
    if isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
        return [{k: _rows_of(x, idx, n) for k, x in e.items()} for e in v]
    return v


def pil_to_tensor(img: Image.Image, size: int | tuple[int, int] | None = None, grey: bool = False) -> torch.Tensor:
    """A PIL image as a ``(C, H, W)`` float tensor in ``[0, 1]``, optionally resized (bicubic, antialiased)."""
    img = img.convert("L" if grey else "RGB")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if img.size != (hw[1], hw[0]):
            img = img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr)).clamp_(0, 1)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic per-class split; returns (train_index, test_index), each in a fixed shuffled order
    so that the first ``k`` of a split mix the classes."""
    rng = np.random.RandomState(seed)
    train: list[int] = []
    test: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * test_fraction))
        test.extend(idx[:k])
        train.extend(idx[k:])
    train_a, test_a = np.array(train, dtype=int), np.array(test, dtype=int)
    return train_a[rng.permutation(len(train_a))], test_a[rng.permutation(len(test_a))]
