"""What the tool says without refusing: its one warning class and the text of every warning and log line it gives
about the user's input (what it refuses, and why, is in :mod:`imperceptible.errors`).

A notice's message is declared as an error's is, ``MSG_X = message(ImperceptibleWarning, "...")``, and filled with
exactly its fields: :func:`warn` gives it as a Python warning (an :class:`ImperceptibleWarning`), :func:`log_warning`
writes it on a module's logger (where a warning would repeat, or the notice is about data rather than a call). Imports
only :mod:`imperceptible.errors`; no torch.

>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     warn(MSG_VISION_ROUNDED, name="flip", count=3)
>>> caught[0].category.__name__, str(caught[0].message)[:34]
('ImperceptibleWarning', 'flip: rounded 3 values that were n')
"""

from __future__ import annotations

import logging
import sys
import warnings
from types import FrameType
from typing import Any

from . import errors as _errors
from .errors import Message, TemplateError, declare, message, owned_by


class ImperceptibleWarning(UserWarning):
    """A warning this library gives on purpose: the input was used, and something about it deserves a look."""

    @classmethod
    def templates(cls) -> dict[str, Message]:
        """The messages declared with this class as their owner, by constant name."""
        return owned_by(cls)


# ----------------------------------------------------------------------------------------------
# Messages (tests check these verbatim)
# ----------------------------------------------------------------------------------------------

# models (models/probe.py, models/torchscript.py, models/layout.py)
MSG_LAYOUT_KEPT = message(ImperceptibleWarning, "{name}: runs in the default memory layout (channels-last {why})")
MSG_ZERO_ACCURACY = message(ImperceptibleWarning, "{name}: classifies none of the first {n} images correctly; check the "
                            "input range (the tool gives [0, 1] images), the normalisation and the label order")
MSG_TORCHSCRIPT_CAST = message(ImperceptibleWarning, "torchscript:{path}: its parameters are {dtype}; cast to float32, the "
                               "precision the tool computes in (save it in float32 to silence this)")

# folder datasets (data/folder.py)
MSG_FOLDER_SKIPPED_RUN = message(ImperceptibleWarning, "{path}: a run directory of this tool, not a class folder: left out "
                                 "of the data")
MSG_FOLDER_MIXED_SIZES = message(ImperceptibleWarning, "folder:{path}: images of {n} sizes; each was resized (shorter side) "
                                 "and centre-cropped to {size}x{size}, the smallest shorter side among them; pass "
                                 "--image-size to choose")

# run directories and result stores (runs/rundir.py, runs/store.py)
MSG_OUT_FINGERPRINT_EDITED = message(ImperceptibleWarning, "{path}: fingerprint.json differs from the fingerprint in "
                                     "config.json ({diffs}), which matches these settings: fingerprint.json was edited, "
                                     "and is restored from config.json")
MSG_RESUMED_OTHER_CODE = message(ImperceptibleWarning, "{path}: this run was started with the package at {before} and "
                                 "resumes with it at {now}: its rows may come from both (config.json's \"code\" lists "
                                 "each, with when it started)")
MSG_STUDY_STOPPED = message(ImperceptibleWarning, "{path}: {done} of {worlds} worlds finished (--worlds-per-call "
                            "{per_call}); run the same command again to go on")
MSG_STORE_DAMAGED = message(ImperceptibleWarning, "{path} was damaged ({error}); kept it as {kept} and recovered {rows} "
                            "result rows into a new store: the rest will be re-run")

# human-vision judges (costs/vision.py)
MSG_VISION_ROUNDED = message(ImperceptibleWarning, "{name}: rounded {count} values that were not on the 8-bit grid to their "
                             "nearest level (this judge reads 8-bit PNG files, as a saved image would be)")

# JSON files (fileio.py)
MSG_JSON_NON_FINITE_ROOT = message(ImperceptibleWarning, "{n} NaN or infinite value(s) written as null in a JSON file "
                                   "whose top level is not an object (no room for the note that lists them)")


# ----------------------------------------------------------------------------------------------
# Giving them
# ----------------------------------------------------------------------------------------------


def _filled(template: Message, where: str, /, **fields: Any) -> str:
    """``template``, a message of :class:`ImperceptibleWarning`, filled with exactly its ``fields``."""
    if not isinstance(template, Message):
        raise TemplateError.of(_errors.MSG_TEMPLATE_UNDECLARED, where=where, got=type(template).__name__, text=str(template)[:60])
    template.check_owner(ImperceptibleWarning, where)
    return template.fill(**fields)


def _first_outside() -> int:
    """The stack level (as :func:`warnings.warn` counts it from :func:`warn`'s caller) of the first frame outside this
    package and torch (its module calls, its no_grad decorators): the user's line that led here."""
    frame: FrameType | None = sys._getframe(2)
    level = 1
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name in ("imperceptible", "torch") or name.startswith(("imperceptible.", "torch."))):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def warn(template: Message, /, *, stacklevel: int | None = None, **fields: Any) -> None:
    """Give ``template`` filled with ``fields`` as an :class:`ImperceptibleWarning`. ``stacklevel`` counts from the
    caller, as :func:`warnings.warn`'s does (1: the line that calls this); by default the warning names the first line
    outside this package and torch, the user's."""
    level = _first_outside() if stacklevel is None else stacklevel
    warnings.warn(_filled(template, "notices.warn", **fields), ImperceptibleWarning, stacklevel=level + 1)


def log_warning(logger: logging.Logger, template: Message, /, **fields: Any) -> None:
    """Write ``template`` filled with ``fields`` on ``logger`` at the WARNING level, as the caller's line."""
    logger.warning(_filled(template, "notices.log_warning", **fields), stacklevel=2)


__all__ = declare(globals()) + ["ImperceptibleWarning", "log_warning", "warn"]
