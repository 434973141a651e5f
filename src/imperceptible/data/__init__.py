"""Datasets by name (``load``), the GDP table, and the in-memory :class:`ImageDataset`."""

from .base import ImageDataset, pil_to_tensor, stratified_split
from .fashion_mnist import fashion_mnist
from .folder import image_folder
from .gapminder import gdp_table
from .geo_fashion import geo_fashion
from .grouped import GroupedSplits, grouped_splits, read_covariates
from .imagenet_compatible import imagenet_compatible
from .mnist import imagenet_samples, mnist, mnist_test20
from .registry import DESCRIPTIONS, load, names

__all__ = ["ImageDataset", "pil_to_tensor", "stratified_split", "fashion_mnist", "image_folder", "gdp_table", "geo_fashion",
           "GroupedSplits", "grouped_splits", "read_covariates",
           "imagenet_compatible", "imagenet_samples", "mnist", "mnist_test20", "DESCRIPTIONS", "load", "names"]
