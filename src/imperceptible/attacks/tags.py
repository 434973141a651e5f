"""What an attack declares about itself, once, beside its class (scikit-learn's estimator tags): the registry,
``imperceptible info``, the command line's choices and help, the reports' legends and the registry-wide tests all
read it from here.

Examples:
    >>> from imperceptible.attacks import DDN, PGDL2
    >>> DDN.TAGS.threat, PGDL2.TAGS.threat, DDN.TAGS.optimises
    ('minimal', 'bounded', ('l2',))
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MSG_PARAM, MSG_PARAM_TYPE, ParameterError

#: the threat models: a *minimal* attack looks for the smallest perturbation that fools the model (and keeps the
#: best it found for its whole budget); a *bounded* one stops at its first success inside a fixed radius; a
#: *one-step* one takes a single step
THREATS = ("minimal", "bounded", "one-step")


@dataclass(frozen=True)
class AttackTags:
    """An attack's declaration.

    Args:
        description: one line for ``info`` and ``--help`` (its paper and what it minimises or bounds).
        threat: one of :data:`THREATS`.
        optimises: the metric keys (:mod:`imperceptible.costs.metrics`) it minimises or bounds: the judges a table
            marks as its own (a variant may say more through :meth:`~.base.Attack.optimises`).
        needs: optional packages it imports (``adv-lib`` ...), for ``info`` and the tests that skip without them.
        confidence: whether it takes a margin ``a > 0``.
        budget: the keyword that sets its pass budget (``steps``, ``budget``, ``max_iterations``), if any.
        test_settings: small settings for the registry-wide tests on analytic models (a few passes on a linear
            classifier); every registered attack is tested with them the day it is registered.
        float64: whether it runs on a float64 model and images (adv-lib's SuperDeepFool makes float32 tensors).
    """

    description: str
    threat: str
    optimises: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    confidence: bool = True
    budget: str | None = None
    test_settings: Mapping[str, Any] = field(default_factory=dict)
    float64: bool = True

    def __post_init__(self) -> None:
        if self.threat not in THREATS:
            raise ParameterError.of(MSG_PARAM, name="threat", expected=f"one of {', '.join(THREATS)}", got=self.threat)


#: the spellings of a boolean a command line accepts
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _scalar_type(tp) -> tuple[type | None, bool]:
    """``(the scalar type, None allowed)`` of an annotation: ``bool``, ``int``, ``float``, ``str`` or ``None`` for
    anything else (``float | None`` -> ``(float, True)``)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        inner = [a for a in args if a is not type(None)]
        t, _ = _scalar_type(inner[0]) if len(inner) == 1 else (None, False)
        return t, type(None) in args
    return (tp if tp in (bool, int, float, str) else None), False


def parse_text(name: str, text: str, tp) -> Any:
    """The value of the command-line text ``text`` for a parameter annotated ``tp``: a boolean takes the usual
    spellings (:data:`TRUE`, :data:`FALSE`) and nothing else, an integer refuses ``1.5``, ``none`` is ``None``
    where the annotation allows it; any other text is refused naming the parameter and its type.

    Examples:
        >>> parse_text("refine", "no", bool), parse_text("steps", "50", int), parse_text("lam", "none", float | None)
        (False, 50, None)
        >>> try:
        ...     parse_text("seed", "1.5", int)
        ... except ValueError as e:
        ...     print(e)
        --param seed: expected an integer, got '1.5'
    """
    t, optional = _scalar_type(tp)
    low = text.strip().lower()
    if optional and low in ("none", "null"):
        return None
    names: dict[type | None, str] = {bool: "true or false (also yes/no, on/off, 1/0)", int: "an integer",
                                     float: "a number", str: "a string", None: "a value"}
    expected = names[t]
    try:
        if t is bool:
            if low in TRUE or low in FALSE:
                return low in TRUE
            raise ValueError(text)
        if t is int:
            return int(text.strip())
        if t is float:
            return float(text.strip())
    except ValueError:
        raise ParameterError.of(MSG_PARAM_TYPE, name=name, expected=expected, got=text) from None
    return text.strip() if t is str else _guess(text.strip())


def _guess(v: str):
    """An unannotated parameter: a number where the text is one, else the text."""
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


__all__ = ["FALSE", "THREATS", "TRUE", "AttackTags", "parse_text"]
