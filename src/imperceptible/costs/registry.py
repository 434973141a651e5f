"""The cost registry: ``get(name, **options)`` returns a :class:`~imperceptible.costs.base.Cost`.

Each cost declares itself beside its class (its ``name`` and :class:`~.tags.CostTags`; where it needs weights or a
package, its ``weight_status``, ``missing`` and ``available``); this module only lists the classes, and ``info``, the
command line's choices, the unknown-name suggestions and the registry-wide tests come from those declarations.
"""

from __future__ import annotations

from typing import cast

from ..registry import Entry, Registry
from .base import Cost
from .ciede2000 import CIEDE2000Cost
from .dists import DISTSCost
from .illumination import IlluminationL2Cost
from .iqa import FSIMCost, GMSDCost, HaarPSICost, VSICost
from .lp import L1Cost, L2Cost, LinfCost
from .lpips import LPIPSCost
from .ms_ssim import MSSSIMCost
from .pieapp import PieAPPCost
from .ssim import SSIMCost
from .ssim_y import SSIMLuminanceCost
from .vision import ButteraugliCost, CVVDPCost, FLIPCost, SSIMULACRA2Cost

#: every cost of the package, in the order ``info`` lists them
CLASSES: tuple[type[Cost], ...] = (SSIMCost, MSSSIMCost, CIEDE2000Cost, L1Cost, L2Cost, LinfCost, LPIPSCost, DISTSCost,
                                   PieAPPCost, SSIMLuminanceCost, FSIMCost, GMSDCost, VSICost, HaarPSICost,
                                   IlluminationL2Cost, CVVDPCost, FLIPCost, SSIMULACRA2Cost, ButteraugliCost)
COSTS = Registry("cost", [Entry.of_class(c) for c in CLASSES])


def names() -> list[str]:
    return COSTS.names()


def cost_class(name: str) -> type[Cost]:
    """The class registered as ``name`` (an unknown name is refused with the closest known ones)."""
    return cast(type[Cost], COSTS.entry(name).factory)  # registered by Entry.of_class: the factory is the class


def get(name: str, **options) -> Cost:
    """Build the cost ``name`` with keyword ``options`` (e.g. ``get("lpips", net="vgg")``).

    Examples:
        >>> import torch
        >>> from imperceptible import costs
        >>> x = torch.zeros(1, 1, 8, 8)
        >>> costs.get("l2")(x + 0.5, x).item()
        4.0
        >>> costs.get("gmsd")(x, x).item()
        0.0
    """
    return COSTS.get(name, **options)


def weight_status(name: str) -> list[dict]:
    """Where each weights file of cost ``name`` was looked for, and whether it was found."""
    return cost_class(name).weight_status()


def info() -> list[dict]:
    out = []
    for e in COSTS.entries():
        cls = cost_class(e.name)
        st = cls.weight_status()
        out.append({"name": e.name, "description": e.description, "needs_weights": bool(st),
                    "available": ((not st) or any(s["found"] for s in st)) and cls.missing() is None, "weights": st,
                    "missing": cls.missing(), "differentiable": e.tags.differentiable, "needs": list(e.needs)})
    return out


def available(name: str, **options) -> bool:
    """True when the cost can be built here: nothing it needs is missing, and its weights are found or (LPIPS, DISTS)
    can be fetched."""
    return cost_class(name).available(**options)


__all__ = ["CLASSES", "COSTS", "available", "cost_class", "get", "info", "names", "weight_status"]
