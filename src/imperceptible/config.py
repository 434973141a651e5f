"""One source for every experiment setting: a frozen dataclass per experiment whose fields carry their help
text. From it come the command-line options (:func:`add_options`), the experiment's arguments
(:func:`from_args`), the ``config.json`` record (:func:`record`) and the part of the run fingerprint that
determines results (:func:`identity`: every field not marked ``fingerprint=False``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
from typing import Any

from .validation import check_int, check_number


def option(default: Any = dataclasses.MISSING, help: str = "", *, type: Any = None, choices=None,
           flag: str | None = None, fingerprint: bool = True, cli: bool = True, metavar: str | None = None,
           action: str | None = None):
    """A config field. ``type`` converts the command-line string (``bool`` fields become switches);
    ``fingerprint=False`` marks settings that do not change results (progress bars, batching of the
    evaluation); ``cli=False`` keeps a field off the command line."""
    meta = dict(help=help, type=type, choices=choices, flag=flag, fingerprint=fingerprint, cli=cli,
                metavar=metavar, action=action)
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=functools.partial(copy.copy, default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or flag(f.name)


def add_options(parser: argparse.ArgumentParser | Any, cls, *, defaults: dict | None = None,
                required: tuple[str, ...] = ()) -> None:
    """Add an option per CLI field of the dataclass ``cls`` (its default shown in the help)."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        default = (defaults or {}).get(f.name, f.default)
        help_ = meta.get("help", "")
        kw: dict[str, Any] = {"dest": f.name, "help": help_}
        if meta.get("action"):
            kw["action"] = meta["action"]
            kw["default"] = None
            if meta.get("metavar"):
                kw["metavar"] = meta["metavar"]
        elif meta.get("type") is bool:
            kw["action"] = argparse.BooleanOptionalAction
            kw["default"] = default
            kw["help"] = f"{help_} (default: {'on' if default else 'off'})"
        else:
            kw["type"] = meta.get("type") or str
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
            if meta.get("metavar"):
                kw["metavar"] = meta["metavar"]
            if default is dataclasses.MISSING or f.name in required:
                kw["required"] = True
            else:
                kw["default"] = default
                if default is not None:
                    kw["help"] = f"{help_} (default: {default})"
        parser.add_argument(_flag(f), **kw)


def from_args(cls, args: argparse.Namespace, **extra):
    """The dataclass ``cls`` built from parsed arguments (fields absent from ``args`` keep their default)."""
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
          if hasattr(args, f.name) and getattr(args, f.name) is not None or (
              hasattr(args, f.name) and f.default is None)}
    kw.update(extra)
    return cls(**kw)


def record(cfg) -> dict:
    """Every field, for ``config.json``."""
    return dataclasses.asdict(cfg)


def identity(cfg) -> dict:
    """The fields that determine results, for the run fingerprint."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("fingerprint", True)}


#: the largest --image-size (pixels a side): 2048x2048x3 float32 is 50 MB per image, already far above any model's input
MAX_IMAGE_SIZE = 2048


def flag(name: str) -> str:
    """The command-line flag of the setting ``name``: ``--image-size`` for ``image_size``."""
    return "--" + name.replace("_", "-")


def check_int_option(name: str, value, *, minimum: int = 1, maximum: int | None = None, allow_none: bool = False) -> None:
    """Refuse a non-integer, too small or (with ``maximum``) too large integer setting, naming its flag
    (:func:`imperceptible.validation.check_int`)."""
    if value is None and allow_none:
        return
    check_int(flag(name), value, minimum=minimum, maximum=maximum)


def check_number_option(name: str, value, *, minimum: float = 0.0, inclusive: bool = False,
                        allow_none: bool = False) -> None:
    """Refuse a non-finite or out-of-range number, naming its flag (:func:`imperceptible.validation.check_number`:
    the one rule for numbers, NaN and infinities refused)."""
    if value is None and allow_none:
        return
    check_number(flag(name), value, low=minimum, low_open=not inclusive)


__all__ = ["add_options", "check_int_option", "check_number_option", "flag", "from_args", "identity", "option", "record"]
