"""Classifier wrappers, small nets, pretrained loaders and the training loop; ``get(name)`` by name."""

from .efficientnet import efficientnet_lite0
from .layout import fast_layout
from .mnist_cnn import mnist_cnn
from .registry import DESCRIPTIONS, MODELS, get, info, input_size, names
from .small_cnn import cnn_a, cnn_b
from .torchscript import torchscript_model
from .torchvision_models import torchvision_model
from .training import accuracy, train_classifier
from .wrapper import ImageClassifier

__all__ = ["efficientnet_lite0", "fast_layout", "mnist_cnn", "DESCRIPTIONS", "MODELS", "get", "info", "input_size",
           "names", "cnn_a", "cnn_b", "torchscript_model", "torchvision_model", "accuracy", "train_classifier",
           "ImageClassifier"]
