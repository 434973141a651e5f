"""What the attack experiments share: the dataset at the model's own image size, and the model."""

from __future__ import annotations

from ..data import load as load_dataset
from ..engine import Engine
from ..models import get as get_model
from ..models import input_size


def data_and_model(cfg, engine: Engine, *, progress: bool = True):
    """``(dataset, model)`` for a config with ``dataset``, ``model``, ``limit``, ``image_size`` and ``weights``: the
    images at ``--image-size``, else at the model's own input size (where the model says it before it is built;
    a dataset of fixed size, such as MNIST, keeps its own), the model on the engine's device."""
    size = cfg.image_size or input_size(cfg.model)
    ds = load_dataset(cfg.dataset, limit=cfg.limit, size=size)
    net = get_model(cfg.model, weights=getattr(cfg, "weights", None), progress=progress and engine.is_main, data=ds)
    return ds, net.to(engine.device)


__all__ = ["data_and_model"]
