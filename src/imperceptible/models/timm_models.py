"""``timm:NAME``: any timm model with its own preprocessing (timm is an optional extra: ``pip install
imperceptible[timm]``).

The architecture is timm's (``timm.create_model(NAME)``). Weights: a local file (``weights=PATH``, a state dict
or safetensors; checked to fit the architecture) or, without one, timm's own pretrained mechanism (the Hugging
Face hub, where the internet is reachable; ``IMPERCEPTIBLE_OFFLINE=1`` turns it off, and an absent file is then a
one-line error). The preprocessing comes from the model's pretrained config (``timm.data.resolve_data_config``):
its mean and std, input size, interpolation and crop fraction, all inside the ``[0, 1]`` wrapper, so that an
image of the model's own size (the default ``--image-size`` for this model) goes in unchanged and any other is
resized and centre-cropped as timm's evaluation transform does.
"""

from __future__ import annotations

import difflib
import os
import warnings

import torch

from ..errors import (
    MSG_OPTIONAL_PACKAGE,
    MSG_TIMM_FETCH,
    MSG_TIMM_OFFLINE,
    MSG_UNKNOWN_SUGGEST,
    ImperceptibleError,
    OptionalPackageError,
    UnknownNameError,
    WeightsNotFoundError,
)
from ..weights import load_into, load_state_dict
from .wrapper import ImageClassifier


def _timm():
    try:
        with warnings.catch_warnings():  # timm's hrnet calls torch.jit.interface, which torch 2.14 deprecates on import
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning)
            import timm
    except ImportError:
        raise OptionalPackageError.of(MSG_OPTIONAL_PACKAGE, what="timm:NAME models", package="timm", extra="timm") from None
    return timm


def available() -> bool:
    try:
        _timm()
    except OptionalPackageError:
        return False
    return True


def check_name(name: str) -> str:
    """Refuse a name timm does not know, with its closest names."""
    timm = _timm()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise UnknownNameError.of(MSG_UNKNOWN_SUGGEST, kind="timm model", name=name, hint=hint, choices="timm.list_models()")
    return name


def data_config(name: str, net: torch.nn.Module | None = None) -> dict:
    """The model's preprocessing from its pretrained config: mean, std, input_size ``(C, H, W)``, interpolation,
    crop_pct."""
    timm = _timm()
    from timm.data import resolve_data_config

    if net is None:
        return resolve_data_config({}, pretrained_cfg=timm.get_pretrained_cfg(name).to_dict())
    return resolve_data_config({}, model=net)


def input_size(name: str) -> int | None:
    """The model's own input side (for ``--image-size``'s default), without building it."""
    try:
        return int(data_config(check_name(name))["input_size"][-1])
    except (ImperceptibleError, AttributeError, KeyError, RuntimeError):
        return None


def timm_model(name: str, weights: str | os.PathLike | None = None) -> ImageClassifier:
    """The timm model ``name`` with its preprocessing (see the module docstring)."""
    timm = _timm()
    check_name(name)
    if weights is not None:
        net = timm.create_model(name, pretrained=False)
        load_into(net, load_state_dict(weights, f"timm {name}"), what=f"timm {name}", path=weights)
    elif os.environ.get("IMPERCEPTIBLE_OFFLINE"):
        raise WeightsNotFoundError.of(MSG_TIMM_OFFLINE, name=name)
    else:
        try:
            net = timm.create_model(name, pretrained=True)
        except Exception as e:  # noqa: BLE001 - the hub's errors are many (no network, no file, gated)
            raise WeightsNotFoundError.of(MSG_TIMM_FETCH, name=name, error=str(e).splitlines()[0][:160]) from None
    cfg = data_config(name, net)
    c, h, w = cfg["input_size"]
    return ImageClassifier(net.eval(), mean=cfg["mean"], std=cfg["std"], num_classes=net.num_classes,
                           input_size=(h, w), interpolation=cfg.get("interpolation", "bilinear"),
                           crop_pct=cfg.get("crop_pct"), name=f"timm:{name}")


__all__ = ["available", "check_name", "data_config", "input_size", "timm_model"]
