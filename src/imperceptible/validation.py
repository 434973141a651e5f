"""One validation module: the project's error types, their messages, and the input checks.

Every public entry point validates its input here and raises a typed error that says what was
expected and what came. Messages are module constants so tests can check them word for word.
Nothing here clamps or repairs an input: bad input is refused, never silently fixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

# ----------------------------------------------------------------------------------------------
# Error types
# ----------------------------------------------------------------------------------------------


class ImperceptibleError(Exception):
    """Base class of every error this library raises on purpose."""


class ShapeError(ImperceptibleError, ValueError):
    """A tensor has the wrong rank or shape, or two tensors do not match."""


class RangeError(ImperceptibleError, ValueError):
    """Values lie outside the declared bounds."""


class NonFiniteError(ImperceptibleError, ValueError):
    """A tensor holds NaN or Inf."""


class DTypeError(ImperceptibleError, TypeError):
    """A tensor (or argument) has the wrong type."""


class UnknownNameError(ImperceptibleError, ValueError):
    """A name (dataset, model, cost, attack, option) that the registry does not know."""


class ModelModeError(ImperceptibleError, ValueError):
    """A model is in training mode where evaluation mode is required."""


class ParameterError(ImperceptibleError, ValueError):
    """A hyper-parameter is out of its allowed range."""


class WeightsNotFoundError(ImperceptibleError, FileNotFoundError):
    """A weights file is missing; the message says which file and where to put it."""


class OptionalPackageError(ImperceptibleError, ImportError):
    """An optional package a name or a method needs is not installed."""


class WeightsMismatchError(ImperceptibleError, ValueError):
    """A weights file holds the weights of another architecture."""


class DatasetNotFoundError(ImperceptibleError, FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""


class TableError(ImperceptibleError, ValueError):
    """A table (CSV) handed to the fairness tests is malformed."""


class ModelOutputError(ImperceptibleError, TypeError):
    """A model returned something other than finite ``(N, K)`` logits."""


class GridError(ImperceptibleError, ValueError):
    """Images that should be 8-bit images (every value a multiple of 1/255) are not."""


# ----------------------------------------------------------------------------------------------
# Messages (tests check these verbatim)
# ----------------------------------------------------------------------------------------------

MSG_NOT_TENSOR = "{name}: expected a torch.Tensor, got {got}"
MSG_NOT_FLOAT = "{name}: expected a floating-point tensor, got dtype {got}"
MSG_RANK = "{name}: expected a tensor of rank {expected} ({layout}), got rank {got} with shape {shape}"
MSG_CHANNELS = "{name}: expected 1 or 3 channels in dimension 1 (N, C, H, W), got {got} with shape {shape}"
MSG_EMPTY = "{name}: expected at least one sample, got an empty batch with shape {shape}"
MSG_NONFINITE = "{name}: expected finite values, got {count} NaN or Inf entries"
MSG_RANGE = "{name}: expected values in [{lo}, {hi}], got min {min:.6g} and max {max:.6g}"
MSG_SHAPE_MISMATCH = "{name}: expected matching shapes, got {a} and {b}"
MSG_LABEL_DTYPE = "{name}: expected integer class labels (int64), got dtype {got}"
MSG_LABEL_RANK = "{name}: expected a 1-D tensor of labels of shape (N,), got shape {shape}"
MSG_LABEL_COUNT = "{name}: expected {expected} labels (one per image), got {got}"
MSG_LABEL_RANGE = "{name}: expected labels in [0, {hi}], got min {min} and max {max}"
MSG_UNKNOWN = "unknown {kind} {name!r}; expected one of: {choices}"
MSG_UNKNOWN_SUGGEST = "unknown {kind} {name!r}{hint}; expected one of: {choices}"
MSG_UNKNOWN_PLACEHOLDER = "{kind} {name!r}: replace {placeholder} after the colon with a value (see imperceptible info)"
MSG_TRAINING_MODE = (
    "{name}: expected a model in evaluation mode, got one in training mode; call .eval() on it first"
)
MSG_PARAM = "{name}: expected {expected}, got {got!r}"
MSG_WEIGHTS_NOT_FOUND = (
    "weights not found for {what}: expected the file {filename!r}; looked in: {places}. "
    "Put the file in one of those places, pass its path explicitly{env_hint}."
)
MSG_OPTIONAL_PACKAGE = ("{what}: expected the optional package {package}, got none installed; install it with "
                        "pip install 'imperceptible[{extra}]'")
MSG_WEIGHTS_BAD_FILE = "weights for {what} at {path}: expected a state dict of tensors, got {got}"
MSG_WEIGHTS_MISMATCH = ("weights for {what} at {path}: expected the {n}tensors of that architecture, got a state dict "
                        "that does not fit ({got}); are they another model's?")
MSG_MODEL_OUTPUT = "model: expected a logits tensor of shape (N, K), got a {got} (return only the logits)"
MSG_MODEL_LOGITS = "model: expected finite logits of shape ({n}, K), got shape {got} ({detail})"
MSG_NO_GRADIENT = ("{attack}: expected a model whose logits depend on its input (a gradient to follow), got logits "
                   "that do not (no gradient reaches the image: a constant, detached or no-grad model)")
MSG_NO_GPU = ("--accelerator {accelerator}: expected a machine with a CUDA GPU, got none (torch.cuda.is_available() "
              "is False); use --accelerator cpu or auto")
MSG_DUPLICATE_GROUP = ("table: expected each group once, got {group!r} in rows {rows}{how}; merge or remove the "
                       "repeated rows")
MSG_SAME_ANSWERS = ("study analyze: expected each participant's answers once, got the same answers in {first} and "
                    "{second} (one file given twice, or a copy); pass each file once")
MSG_ONLY_CATCH = ("study make: expected at least one method to test besides the catch images' {catch!r}, got none "
                  "(the run holds only {available}); name another --catch, or use --catch noise")
MSG_NONDETERMINISTIC = ("{name}: expected the same logits for the same images twice, got outputs that differ by up to "
                        "{diff:.3g} (dropout or other randomness left in the model: trace or save it in eval mode)")
MSG_PROBABILITIES = ("{name}: expected logits, got probabilities (every output non-negative, each row summing to 1): "
                     "margins would be in probability units; remove the final softmax, or return its log")
MSG_ZERO_ACCURACY = ("{name}: classifies none of the first {n} images correctly; check the input range (the tool gives "
                     "[0, 1] images), the normalisation and the label order")
MSG_TOO_SMALL = ("{metric}: expected images of at least {k}x{k} pixels (its window), got {h}x{w}; use a smaller "
                 "kernel_size (odd) or larger images")
MSG_LABEL_BEYOND = ("{dataset}: expected labels below the model's {k} classes, got label {label} for sample {sample!r} "
                    "(row {row}); is the dataset's label order the model's?")
MSG_NONFINITE_ATTACK = ("{attack}: the attack produced NaN or Inf pixels (the model's gradients are not finite); "
                        "nothing is returned")
MSG_DATASET_NOT_FOUND = "dataset {name!r} not found: expected {expected}, got {got}. {how}"
MSG_OFF_GRID = ("{name}: expected 8-bit images (every value a multiple of 1/255, as an image file holds), got {count} "
                "values off that grid (e.g. {example:.6g}); {how}")

# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def check_tensor(x: Any, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DTypeError(MSG_NOT_TENSOR.format(name=name, got=type(x).__name__))
    return x


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    bad = (~torch.isfinite(x)).sum().item()
    if bad:
        raise NonFiniteError(MSG_NONFINITE.format(name=name, count=int(bad)))
    return x


def check_range(x: torch.Tensor, bounds: tuple[float, float] = (0.0, 1.0), name: str = "x") -> torch.Tensor:
    lo, hi = bounds
    xmin, xmax = x.min().item(), x.max().item()
    if xmin < lo or xmax > hi:
        raise RangeError(MSG_RANGE.format(name=name, lo=lo, hi=hi, min=xmin, max=xmax))
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
        raise ShapeError(
            MSG_RANK.format(name=name, expected=4, layout="N, C, H, W", got=x.dim(), shape=tuple(x.shape))
        )
    if x.shape[0] == 0:
        raise ShapeError(MSG_EMPTY.format(name=name, shape=tuple(x.shape)))
    if channels is not None and x.shape[1] not in channels:
        raise ShapeError(MSG_CHANNELS.format(name=name, got=x.shape[1], shape=tuple(x.shape)))
    if not x.is_floating_point():
        raise DTypeError(MSG_NOT_FLOAT.format(name=name, got=x.dtype))
    check_finite(x, name)
    if bounds is not None:
        check_range(x, bounds, name)
    return x


def check_8bit(x: torch.Tensor, name: str = "x", how: str = "round them with imperceptible.pixels.quantize_8bit") -> torch.Tensor:
    """Refuse images that are not on the 8-bit grid (see :mod:`imperceptible.pixels`)."""
    from .pixels import first_off_grid, off_grid

    count = off_grid(x)
    if count:
        raise GridError(MSG_OFF_GRID.format(name=name, count=count, example=first_off_grid(x), how=how))
    return x


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name: str = "x, x0") -> None:
    if a.shape != b.shape:
        raise ShapeError(MSG_SHAPE_MISMATCH.format(name=name, a=tuple(a.shape), b=tuple(b.shape)))


def check_labels(y: Any, n: int, name: str = "y", num_classes: int | None = None) -> torch.Tensor:
    """Check class labels: an int64 (or other integer) tensor of shape ``(n,)``."""
    y = check_tensor(y, name)
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise DTypeError(MSG_LABEL_DTYPE.format(name=name, got=y.dtype))
    if y.dim() != 1:
        raise ShapeError(MSG_LABEL_RANK.format(name=name, shape=tuple(y.shape)))
    if y.shape[0] != n:
        raise ShapeError(MSG_LABEL_COUNT.format(name=name, expected=n, got=y.shape[0]))
    if num_classes is not None and y.numel():
        ymin, ymax = int(y.min()), int(y.max())
        if ymin < 0 or ymax >= num_classes:
            raise RangeError(MSG_LABEL_RANGE.format(name=name, hi=num_classes - 1, min=ymin, max=ymax))
    return y.long()


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if name not in choices:
        raise UnknownNameError(MSG_UNKNOWN.format(kind=kind, name=name, choices=", ".join(sorted(choices))))
    return name


def check_eval_mode(model: torch.nn.Module, name: str = "model") -> None:
    """Refuse a model any of whose sub-modules is in training mode."""
    if any(m.training for m in model.modules()):
        raise ModelModeError(MSG_TRAINING_MODE.format(name=name))


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``): the one rule for infinities is that they are refused,
    here as in the configs (an infinite step or budget fails later, and blames something else)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not (value >= 0 if allow_zero else value > 0):
        raise ParameterError(MSG_PARAM.format(
            name=name, expected="a finite number >= 0" if allow_zero else "a finite number > 0", got=value))
    return value


def check_int(name: str, value: int, *, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParameterError(MSG_PARAM.format(name=name, expected=f"an integer >= {minimum}", got=value))
    return value


def check_option(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParameterError(MSG_PARAM.format(name=name, expected=f"one of {list(choices)}", got=value))
    return value
