"""The distance table the paper reports (Table 1), per sample.

``distance_table(x_adv, x)`` returns a dict of ``(N,)`` tensors: ``l1``, ``l2``, ``linf`` on ``[0, 1]``,
``ssim`` (the index itself), ``ssim_distance`` (1 - SSIM over RGB channels: the cost Human_Perc_OT
optimises), ``ms_ssim_distance`` (1 - MS-SSIM), ``ciede2000`` (PerC's C2), ``lpips_x1000`` (LPIPS-alex)
and ``dists_x1000`` (their ImageNet backbones found or fetched), and the judges no attack here optimises:
``ssim_y_distance`` (Wang et al.'s reference luminance SSIM), ``fsim_distance``, ``gmsd``,
``vsi_distance``, ``haarpsi_distance``. What cannot be computed is listed in ``unavailable`` with the
reason, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..validation import ImperceptibleError, check_images, check_same_shape
from .ciede2000 import CIEDE2000Cost
from .dists import DISTSCost
from .iqa import FSIMCost, GMSDCost, HaarPSICost, VSICost
from .lp import lp_distance
from .lpips import LPIPS_MIN_SIZE, LPIPSCost
from .ms_ssim import MSSSIMCost
from .ssim import SSIMCost
from .ssim_y import SSIMLuminanceCost

#: every key a distance table may hold, in report order
KEYS = ("l1", "l2", "linf", "ssim", "ssim_distance", "ms_ssim_distance", "ciede2000", "lpips_x1000",
        "dists_x1000", "ssim_y_distance", "fsim_distance", "gmsd", "vsi_distance", "haarpsi_distance")

#: the weight-free judges (key -> cost class); no attack in this project optimises them
JUDGES = {"ssim_y_distance": SSIMLuminanceCost, "fsim_distance": FSIMCost, "gmsd": GMSDCost,
          "vsi_distance": VSICost, "haarpsi_distance": HaarPSICost}


@dataclass
class DistanceMeter:
    """Computes the distance table; builds the learned metrics once (or records why it cannot)."""

    learned: bool = True
    lpips_net: str = "alex"
    ssim_kernel: int = 11
    judges: bool = True
    image_size: int | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ssim = SSIMCost(kernel_size=self.ssim_kernel)
        self._msssim = MSSSIMCost(kernel_size=self.ssim_kernel)
        self._ciede = CIEDE2000Cost()
        self._judges = {k: c() for k, c in JUDGES.items()}
        self._lpips = self._dists = None
        if self.learned:
            try:
                if self.image_size is not None and self.image_size < LPIPS_MIN_SIZE:
                    raise ImperceptibleError(f"LPIPS-{self.lpips_net} needs images of at least {LPIPS_MIN_SIZE} pixels "
                                             f"a side, these have {self.image_size}")
                self._lpips = LPIPSCost(net=self.lpips_net)
            except ImperceptibleError as e:
                self.unavailable["lpips_x1000"] = str(e)
            try:
                self._dists = DISTSCost()
            except ImperceptibleError as e:
                self.unavailable["dists_x1000"] = str(e)
        else:
            self.unavailable["lpips_x1000"] = self.unavailable["dists_x1000"] = "learned metrics switched off"

    @torch.no_grad()
    def __call__(self, x_adv: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(x_adv, "x_adv")
        check_images(x, "x")
        check_same_shape(x_adv, x, "x_adv, x")
        for m in (self._lpips, self._dists):
            if m is not None:
                m.to(x.device)
        out = {
            "l1": lp_distance(x_adv, x, 1),
            "l2": lp_distance(x_adv, x, 2),
            "linf": lp_distance(x_adv, x, float("inf")),
        }
        sd = self._ssim(x_adv, x)
        out["ssim"] = 1.0 - sd
        out["ssim_distance"] = sd
        out["ms_ssim_distance"] = self._msssim(x_adv, x)
        out["ciede2000"] = self._ciede(x_adv, x)
        if self.judges:
            for k, cost in self._judges.items():
                out[k] = cost(x_adv, x)
        if self._lpips is not None:
            out["lpips_x1000"] = 1000.0 * self._lpips(x_adv, x)
        if self._dists is not None:
            out["dists_x1000"] = 1000.0 * self._dists(x_adv, x)
        return {k: v.detach().float().cpu() for k, v in out.items()}


def distance_table(x_adv: torch.Tensor, x: torch.Tensor, *, learned: bool = True) -> dict[str, torch.Tensor]:
    """One-shot form of :class:`DistanceMeter` (builds the learned metrics each call)."""
    return DistanceMeter(learned=learned)(x_adv, x)
