"""The cost registry: ``get(name, **options)`` returns a :class:`~imperceptible.costs.base.Cost`."""

from __future__ import annotations

from collections.abc import Callable

from .. import backbones
from ..validation import check_choice
from .base import Cost
from .ciede2000 import CIEDE2000Cost
from .dists import DISTSCost
from .illumination import IlluminationL2Cost
from .iqa import FSIMCost, GMSDCost, HaarPSICost, VSICost
from .lp import L1Cost, L2Cost, LinfCost
from .lpips import BACKBONES, LPIPSCost
from .ms_ssim import MSSSIMCost
from .pieapp import PIEAPP, PieAPPCost
from .ssim import SSIMCost
from .ssim_y import SSIMLuminanceCost
from .vision import ButteraugliCost, CVVDPCost, FLIPCost, SSIMULACRA2Cost
from .vision import missing as vision_missing

_REGISTRY: dict[str, Callable[..., Cost]] = {
    "ssim": SSIMCost,
    "ms-ssim": MSSSIMCost,
    "ciede2000": CIEDE2000Cost,
    "l1": L1Cost,
    "l2": L2Cost,
    "linf": LinfCost,
    "lpips": LPIPSCost,
    "dists": DISTSCost,
    "pieapp": PieAPPCost,
    "ssim-y": SSIMLuminanceCost,
    "fsim": FSIMCost,
    "gmsd": GMSDCost,
    "vsi": VSICost,
    "haarpsi": HaarPSICost,
    "illumination-l2": IlluminationL2Cost,
    "cvvdp": CVVDPCost,
    "flip": FLIPCost,
    "ssimulacra2": SSIMULACRA2Cost,
    "butteraugli": ButteraugliCost,
}

DESCRIPTIONS = {
    "ssim": "1 - SSIM (Wang et al. 2004), Gaussian 11x11 window, sigma 1.5 (piq)",
    "ms-ssim": "1 - MS-SSIM (Wang et al. 2003), scales that fit the image (piq)",
    "ciede2000": "L2 norm of the per-pixel CIEDE2000 map (PerC's C2; Lab from kornia)",
    "l1": "L1 norm of x - x0",
    "l2": "L2 norm of x - x0",
    "linf": "Linf norm of x - x0",
    "lpips": "LPIPS (Zhang et al. 2018), net alex|vgg|squeeze (lpips package)",
    "dists": "DISTS (Ding et al. 2020) (DISTS_pytorch package)",
    "pieapp": "PieAPP (Prashnani et al. 2018) (piq architecture)",
    "ssim-y": "1 - SSIM of Wang et al.'s reference ssim.m: luma, automatic down-sampling (a judge)",
    "fsim": "1 - FSIM(c) (Zhang et al. 2011) (piq; a judge)",
    "gmsd": "GMSD (Xue et al. 2014) (piq; a judge)",
    "vsi": "1 - VSI (Zhang et al. 2014) (piq; a judge)",
    "haarpsi": "1 - HaarPSI (Reisenhofer et al. 2018) (piq; a judge)",
    "illumination-l2": "L2 of x - x0 off the span of x0 times two linear illumination ramps (an oracle cost for the "
                       "fairness study's positive control, not a judge)",
    "cvvdp": "10 - JOD of ColorVideoVDP (Mantiuk et al. 2024), display standard_fhd (cvvdp; extra vision; a judge)",
    "flip": "mean LDR-FLIP error (Andersson et al. 2020), 67 pixels per degree (flip-evaluator; extra vision; a judge)",
    "ssimulacra2": "100 - SSIMULACRA2 (Sneyers; JPEG XL's metric) (ssimulacra2; extra vision; a judge)",
    "butteraugli": "butteraugli max-norm distance (Alakuijala et al.) (libjxl's butteraugli_main, Debian "
                   "libjxl-devtools; a judge)",
}


def names() -> list[str]:
    return list(_REGISTRY)


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
    check_choice("cost", name, _REGISTRY)
    return _REGISTRY[name](**options)


def weight_status(name: str) -> list[dict]:
    """Where each weights file of cost ``name`` was looked for, and whether it was found."""
    if name == "lpips":
        return [dict(backbones.status(BACKBONES[n][0]), net=n) for n in BACKBONES]
    if name == "dists":
        return [backbones.status("vgg16")]
    if name == "pieapp":
        return [PIEAPP.status()]
    return []


def info() -> list[dict]:
    out = []
    for n in names():
        st = weight_status(n)
        out.append(
            {
                "name": n,
                "description": DESCRIPTIONS[n],
                "needs_weights": bool(st),
                "available": ((not st) or any(s["found"] for s in st)) and vision_missing(n) is None,
                "weights": st,
                "missing": vision_missing(n),
            }
        )
    return out


def available(name: str, **options) -> bool:
    """True when the cost can be built here: its weights are found, or (LPIPS, DISTS) can be fetched."""
    if vision_missing(name) is not None:
        return False
    if name == "pieapp":
        return PIEAPP.find(options.get("weights")) is not None
    if name in ("lpips", "dists"):
        bb = backbones.get_backbone(BACKBONES[options.get("net", "alex")][0] if name == "lpips" else "vgg16")
        return (backbones.find(bb.name, options.get("weights")) is not None
                or (not backbones.offline() and options.get("weights") is None))
    return True
