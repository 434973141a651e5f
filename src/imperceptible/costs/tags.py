"""What a cost declares about itself, once, beside its class: the registry, ``imperceptible info`` and the registry-wide
tests (identity, symmetry, bounds, finite gradients) read it from here.

Examples:
    >>> from imperceptible.costs import SSIMCost, GMSDCost
    >>> SSIMCost.TAGS.differentiable, GMSDCost.TAGS.symmetric
    (True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CostTags:
    """A cost's declaration.

    Args:
        description: one line for ``info`` (its paper and the implementation it wraps).
        needs: the optional packages or programs it needs (an extra's name, ``libjxl-devtools``).
        differentiable: a gradient w.r.t. ``x`` exists (an attack may use it as its cost).
        symmetric: ``c(x, x0) == c(x0, x)`` (the Lp norms, SSIM ...; not CIEDE2000's asymmetric weights, nor a cost whose
            reference image decides a scale or a span).
        test_settings: options for the registry-wide tests (e.g. a smaller window).
    """

    description: str
    needs: tuple[str, ...] = ()
    differentiable: bool = True
    symmetric: bool = True
    test_settings: Mapping[str, Any] = field(default_factory=dict)


__all__ = ["CostTags"]
