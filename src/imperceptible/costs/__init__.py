"""Perceptual costs and distances: each a function and an ``nn.Module`` with a per-sample ``(N,)``
output, differentiable in ``x``, zero at ``x == x0``. Build one by name with :func:`get`."""

from .base import Cost
from .ciede2000 import CIEDE2000Cost, ciede2000_map, delta_e_ciede2000
from .distances import KEYS, DistanceMeter, distance_table
from .dists import DISTSCost
from .iqa import FSIMCost, GMSDCost, HaarPSICost, VSICost
from .lp import L1Cost, L2Cost, LinfCost, lp_distance
from .lpips import LPIPSCost
from .ms_ssim import MSSSIMCost, ms_ssim
from .pieapp import PieAPPCost
from .registry import COSTS, available, cost_class, get, info, names
from .ssim import SSIMCost, ssim
from .ssim_y import SSIMLuminanceCost, ssim_luminance
from .tags import CostTags
from .vision import ButteraugliCost, CVVDPCost, FLIPCost, SSIMULACRA2Cost

__all__ = [
    "Cost", "CIEDE2000Cost", "ciede2000_map", "delta_e_ciede2000", "KEYS", "DistanceMeter", "distance_table",
    "DISTSCost", "FSIMCost", "GMSDCost", "HaarPSICost", "VSICost", "SSIMLuminanceCost", "ssim_luminance",
    "L1Cost", "L2Cost", "LinfCost", "lp_distance", "LPIPSCost", "MSSSIMCost", "ms_ssim",
    "PieAPPCost", "COSTS", "CostTags", "available", "cost_class", "get", "info", "names", "SSIMCost", "ssim",
    "ButteraugliCost", "CVVDPCost", "FLIPCost", "SSIMULACRA2Cost",
]
