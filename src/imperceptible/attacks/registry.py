"""Attacks by name: ``get("human-perc-ot", confidence=1)``.

Each attack declares itself beside its class (its ``name`` and :class:`~.tags.AttackTags`); this module only
lists the classes. The registry (``ATTACKS``), ``info``, the command line's choices and help, the close-name
suggestions of an unknown name and the registry-wide tests all come from those declarations; the parameters an
attack takes come from its signature (and its settings dataclass), and ``--param`` text is parsed by their
annotations.

Examples:
    >>> from imperceptible.attacks import registry
    >>> "ddn" in registry.names(), registry.ATTACKS.tags("ddn").threat
    (True, 'minimal')
    >>> registry.get("pgd-l2", steps="5").steps  # a command line's text, parsed by the annotation
    5
"""

from __future__ import annotations

import typing

from ..errors import MSG_UNKNOWN_PARAM, UnknownNameError
from ..registry import Entry, Registry
from .adv_lib_peers import ALMA, DDN, FMN, CarliniWagnerL2, SuperDeepFool
from .base import Attack
from .boundary_projection import BoundaryProjection
from .human_perc_ot import HumanPercOT
from .onestep import PGDOneStep, SSIMOneStep
from .perc_al import PerCAL
from .pgd_l2 import PGDL2
from .ppgd_lpa import LPA, PPGD
from .tags import parse_text

#: every attack of the package, in the order ``info`` lists them
CLASSES: tuple[type[Attack], ...] = (HumanPercOT, SSIMOneStep, PGDOneStep, PGDL2, PerCAL, PPGD, LPA, ALMA, DDN, FMN,
                                     CarliniWagnerL2, SuperDeepFool, BoundaryProjection)
ATTACKS = Registry("attack", [Entry.of_class(c) for c in CLASSES])


def names() -> list[str]:
    return ATTACKS.names()


def attack_class(name: str) -> type[Attack]:
    """The class registered as ``name`` (an unknown name is refused with the closest known ones)."""
    return typing.cast("type[Attack]", ATTACKS.entry(name).factory)


def parameters(name: str) -> list[str]:
    """The keyword parameters attack ``name`` accepts."""
    return attack_class(name).parameters()


def get(name: str, **options) -> Attack:
    """Build attack ``name``; an option it does not take is refused, listing those it does; an option given as text
    (the command line's ``--param KEY=VALUE``) is parsed by the parameter's annotation (a boolean takes true/false,
    yes/no, on/off, 1/0 and nothing else; an integer refuses ``1.5``)."""
    cls = attack_class(name)
    types = cls.parameter_types()
    for key in options:
        if key not in types:
            raise UnknownNameError.of(MSG_UNKNOWN_PARAM, key=key, attack=name, choices=", ".join(sorted(types)))
    parsed = {k: parse_text(k, v, types[k]) if isinstance(v, str) else v for k, v in options.items()}
    return cls(**parsed)


def label(attack: Attack) -> str:
    """The name used in results: the attack's own :meth:`~Attack.label` (``human-perc-ot[paper]``,
    ``ppgd[self]`` ...) plus ``@a=<confidence>`` when the confidence is not 0."""
    base = attack.label()
    if attack.confidence:
        base += f"@a={attack.confidence:g}"
    return base


def describe() -> list[dict]:
    """``[{name, description, threat, optimises, needs}]`` for ``info``."""
    return [{"name": e.name, "description": e.description, "threat": e.tags.threat, "optimises": list(e.tags.optimises),
             "needs": list(e.needs)} for e in ATTACKS.entries()]


__all__ = ["ATTACKS", "CLASSES", "attack_class", "describe", "get", "label", "names", "parameters"]
