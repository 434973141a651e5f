"""One validation module: the project's error types, their messages, and the input checks.

Every public entry point validates its input here and raises a typed error that says what was
expected and what came. Messages are module constants so tests can check them word for word.
Nothing here clamps or repairs an input: bad input is refused, never silently fixed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .errors import *  # noqa: F403  (validation re-exports every error type and message)
from .errors import (  # the checks' own errors and messages
    MSG_CHANNELS,
    MSG_EMPTY,
    MSG_LABEL_BEYOND,
    MSG_LABEL_COUNT,
    MSG_LABEL_DTYPE,
    MSG_LABEL_RANGE,
    MSG_LABEL_RANK,
    MSG_NONFINITE,
    MSG_NOT_FLOAT,
    MSG_NOT_TENSOR,
    MSG_OFF_GRID,
    MSG_PARAM,
    MSG_RANGE,
    MSG_RANK,
    MSG_SHAPE_MISMATCH,
    MSG_TRAINING_MODE,
    MSG_UNKNOWN_SUGGEST,
    DTypeError,
    GridError,
    ModelModeError,
    NonFiniteError,
    ParameterError,
    RangeError,
    ShapeError,
    UnknownNameError,
)

# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def check_tensor(x: Any, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DTypeError.of(MSG_NOT_TENSOR, name=name, got=type(x).__name__)
    return x


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    bad = (~torch.isfinite(x)).sum().item()
    if bad:
        raise NonFiniteError.of(MSG_NONFINITE, name=name, count=int(bad))
    return x


def check_range(x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0), name: str = "x") -> torch.Tensor:
    lo, hi = bounds
    xmin, xmax = x.min().item(), x.max().item()
    if xmin < lo or xmax > hi:
        raise RangeError.of(MSG_RANGE, name=name, lo=lo, hi=hi, min=xmin, max=xmax)
    return x


def check_images(
    x: Any,
    name: str = "x",
    *,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    channels: Sequence[int] | None = (1, 3),
) -> torch.Tensor:
    """Check a batch of images: a float tensor ``(N, C, H, W)``, finite, inside ``bounds``."""
    x = check_tensor(x, name)
    if x.dim() != 4:
        raise ShapeError.of(MSG_RANK, name=name, expected=4, layout="N, C, H, W", got=x.dim(), shape=tuple(x.shape))
    if x.shape[0] == 0:
        raise ShapeError.of(MSG_EMPTY, name=name, shape=tuple(x.shape))
    if channels is not None and x.shape[1] not in channels:
        raise ShapeError.of(MSG_CHANNELS, name=name, got=x.shape[1], shape=tuple(x.shape))
    if not x.is_floating_point():
        raise DTypeError.of(MSG_NOT_FLOAT, name=name, got=x.dtype)
    check_finite(x, name)
    if bounds is not None:
        check_range(x, bounds, name)
    return x


def check_8bit(x: torch.Tensor, name: str = "x", how: str = "round them with imperceptible.pixels.quantize_8bit") -> torch.Tensor:
    """Refuse images that are not on the 8-bit grid (see :mod:`imperceptible.pixels`)."""
    from .pixels import first_off_grid, off_grid

    count = off_grid(x)
    if count:
        raise GridError.of(MSG_OFF_GRID, name=name, count=count, example=first_off_grid(x), how=how)
    return x


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name: str = "x, x0") -> None:
    if a.shape != b.shape:
        raise ShapeError.of(MSG_SHAPE_MISMATCH, name=name, a=tuple(a.shape), b=tuple(b.shape))


def check_labels(y: Any, n: int, name: str = "y", num_classes: int | None = None) -> torch.Tensor:
    """Check class labels: an int64 (or other integer) tensor of shape ``(n,)``."""
    y = check_tensor(y, name)
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise DTypeError.of(MSG_LABEL_DTYPE, name=name, got=y.dtype)
    if y.dim() != 1:
        raise ShapeError.of(MSG_LABEL_RANK, name=name, shape=tuple(y.shape))
    if y.shape[0] != n:
        raise ShapeError.of(MSG_LABEL_COUNT, name=name, expected=n, got=y.shape[0])
    if num_classes is not None and y.numel():
        ymin, ymax = int(y.min()), int(y.max())
        if ymin < 0 or ymax >= num_classes:
            raise RangeError.of(MSG_LABEL_RANGE, name=name, hi=num_classes - 1, min=ymin, max=ymax)
    return y.long()


def check_labels_below(labels: torch.Tensor, k: int, *, dataset: str, ids: Sequence[str]) -> None:
    """A dataset's labels against a model's ``k`` classes, naming the first sample beyond them (its id and its
    1-based row) rather than a tensor's range (that is :func:`check_labels`)."""
    if len(labels) and int(labels.max()) >= k:
        row = int((labels >= k).nonzero()[0, 0])
        raise RangeError.of(MSG_LABEL_BEYOND, dataset=dataset, k=k, label=int(labels[row]), sample=ids[row], row=row + 1)


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    """Refuse a name not among ``choices``, suggesting the closest ones (the registries' rule)."""
    choices = list(choices)
    if name not in choices:
        raise UnknownNameError.of(MSG_UNKNOWN_SUGGEST, kind=kind, name=name, hint=suggestion(name, choices),
                                  choices=", ".join(sorted(choices)))
    return name


def suggestion(name, choices: Iterable[str]) -> str:
    """`` (did you mean: a, b?)`` with the names of ``choices`` closest to ``name``, or nothing."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""


def check_eval_mode(model: torch.nn.Module, name: str = "model") -> None:
    """Refuse a model any of whose sub-modules is in training mode."""
    if any(m.training for m in model.modules()):
        raise ModelModeError.of(MSG_TRAINING_MODE, name=name)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``): the one rule for infinities is that they are refused,
    here as in the configs (an infinite step or budget fails later, and blames something else)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not (value >= 0 if allow_zero else value > 0):
        raise ParameterError.of(MSG_PARAM, name=name, expected="a finite number >= 0" if allow_zero else "a finite number > 0",
                                got=value)
    return value


def check_int(name: str, value: int, *, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParameterError.of(MSG_PARAM, name=name, expected=f"an integer >= {minimum}", got=value)
    return value


def check_bool(name: str, value) -> bool:
    """A switch: ``True`` or ``False`` only (a string such as ``"no"`` is truthy in Python: refused, not guessed)."""
    if not isinstance(value, bool):
        raise ParameterError.of(MSG_PARAM, name=name, expected="True or False", got=value)
    return value


def check_option(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParameterError.of(MSG_PARAM, name=name, expected=f"one of {list(choices)}", got=value)
    return value
