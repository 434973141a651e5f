"""One validation module: the input checks, and (re-exported) the project's error types, notices and their messages.

Every public entry point validates its input here and raises a typed error that says what was expected and what came
(:mod:`imperceptible.errors`; what it warns about is in :mod:`imperceptible.notices`). Nothing here clamps or repairs
an input: bad input is refused, never silently fixed.

**Numbers** have one rule, :func:`is_finite_number`, behind every check of a number here, in the configs
(:func:`imperceptible.config.check_number_option`) and in the attacks' settings: an ``int`` or ``float`` (not a
``bool``) whose value is finite. NaN and +-infinity are refused wherever a number is checked, even where the interval
would hold them (an infinite step or budget fails later and blames something else), and so is an integer too large
for a float. Integers (:func:`check_int`) are ``int`` only: ``2.0`` and ``inf`` are refused there too.

The tensor checks import torch when called; importing this module does not (the configs use its number checks).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import errors as _errors
from . import notices as _notices
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
from .notices import *  # noqa: F403  (and every notice's message)

if TYPE_CHECKING:
    import torch

# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def check_tensor(x: Any, name: str = "x") -> torch.Tensor:
    import torch

    if not isinstance(x, torch.Tensor):
        raise DTypeError.of(MSG_NOT_TENSOR, name=name, got=type(x).__name__)
    return x


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    import torch

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
    import torch

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


def is_finite_number(value: Any) -> bool:
    """The one rule for numbers (see the module docstring): an ``int`` or ``float``, not a ``bool``, whose value is
    finite (an ``int`` too large for a float is not).

    >>> [is_finite_number(v) for v in (0, 2.5, True, "1", float("nan"), float("inf"), -float("inf"), 10**400)]
    [True, True, False, False, False, False, False, False]
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """What :func:`check_number` expects, in words: ``a finite number > 0``, ``a number in (0, 1]``..."""
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, expected: str | None = None) -> Any:
    """A finite number (:func:`is_finite_number`) in the interval from ``low`` to ``high`` (either may be left out;
    ``*_open``: that end excluded); ``expected`` words the interval where the default (:func:`_interval`) would not.

    >>> check_number("gamma", 0.5, low=0, high=1, low_open=True, high_open=True)
    0.5
    >>> check_number("gamma", float("inf"), low=0)
    Traceback (most recent call last):
    ...
    imperceptible.errors.ParameterError: gamma: expected a finite number >= 0, got inf
    """
    ok = is_finite_number(value) and (low is None or (value > low if low_open else value >= low)) and (
        high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ParameterError.of(MSG_PARAM, name=name, expected=expected or _interval(low, high, low_open, high_open),
                                got=value)
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``)."""
    return check_number(name, value, low=0, low_open=not allow_zero)


def check_int(name: str, value: int, *, minimum: int = 1, maximum: int | None = None, expected: str | None = None) -> int:
    """An ``int`` (not a ``bool``) from ``minimum`` up (to ``maximum``, if given)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum is not None and value > maximum):
        raise ParameterError.of(MSG_PARAM, name=name, got=value, expected=expected or (
            f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"))
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


#: the checks, and every error, warning and message they re-export (derived, as theirs are)
__all__ = sorted({*_errors.__all__, *(n for n in _notices.__all__ if n.startswith("MSG_")), "ImperceptibleWarning",
                  *(n for n in list(globals()) if n.startswith("check_")), "is_finite_number", "suggestion"})
