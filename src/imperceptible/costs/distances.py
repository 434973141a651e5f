"""The distance table the paper reports (Table 1) and the judges, per sample, as the metric table
(:mod:`.metrics`) defines them.

``distance_table(x_adv, x)`` returns a dict of ``(N,)`` tensors keyed by the metrics' keys: ``l1``, ``l2``,
``linf`` on ``[0, 1]``, ``ssim`` (the index itself), ``ssim_distance`` (1 - SSIM over RGB channels: the cost
Human_Perc_OT optimises), ``ms_ssim_distance``, ``ciede2000`` (PerC's C2), ``lpips_x1000`` and
``lpips_vgg_x1000`` (LPIPS-alex and -vgg) and ``dists_x1000`` (their ImageNet backbones found or fetched), and the
weight-free judges ``ssim_y_distance`` (Wang et al.'s reference luminance SSIM), ``fsim_distance``, ``gmsd``,
``vsi_distance``, ``haarpsi_distance``. What cannot be computed is listed in ``unavailable`` with the reason,
never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import MSG_LPIPS_SIZE, ImperceptibleError, ParameterError
from ..validation import check_images, check_same_shape
from .lpips import LPIPS_MIN_SIZE
from .metrics import KEYS, METRICS
from .registry import get as get_cost

#: the costs that take the SSIM window
WINDOWED = ("ssim", "ms-ssim")


@dataclass
class DistanceMeter:
    """Computes the distance table; builds the learned metrics once (or records why it cannot).

    Args:
        learned: compute LPIPS and DISTS (their backbones found or fetched).
        ssim_kernel: the SSIM window (11; 7 for tiny images).
        judges: compute the judge group too (``ssim_y_distance`` ... ``haarpsi_distance``).
        image_size: the images' smaller side, when known: LPIPS is left out below its minimum.
        keys: only these metrics (default: all of :data:`~imperceptible.costs.metrics.KEYS`).
    """

    learned: bool = True
    ssim_kernel: int = 11
    judges: bool = True
    image_size: int | None = None
    keys: tuple[str, ...] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wanted = [k for k in (self.keys or KEYS) if self.judges or METRICS[k].group != "judge"]
        self._costs = {}
        for k in wanted:
            m = METRICS[k]
            if m.cost is None:
                continue
            if m.learned and not self.learned:
                self.unavailable[k] = "learned metrics switched off"
                continue
            opts = dict(m.options, **({"kernel_size": self.ssim_kernel} if m.cost in WINDOWED else {}))
            try:
                if m.cost == "lpips" and self.image_size is not None and self.image_size < LPIPS_MIN_SIZE:
                    raise ParameterError.of(MSG_LPIPS_SIZE, name=f"LPIPS-{opts['net']}", expected=LPIPS_MIN_SIZE,
                                            got=self.image_size)
                self._costs[k] = get_cost(m.cost, **opts)
            except ImperceptibleError as e:
                self.unavailable[k] = str(e)
        self._ssim = "ssim" in wanted

    def keys_computed(self) -> list[str]:
        """The keys a call returns."""
        return [k for k in KEYS if k in self._costs or (k == "ssim" and self._ssim and "ssim_distance" in self._costs)]

    def identity(self) -> dict:
        """What determines the values (for a run's fingerprint)."""
        return {"learned": self.learned, "judges": self.judges, "ssim_kernel": self.ssim_kernel,
                "keys": sorted(self._costs) + (["ssim"] if self._ssim else [])}

    @torch.no_grad()
    def __call__(self, x_adv: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(x_adv, "x_adv")
        check_images(x, "x")
        check_same_shape(x_adv, x, "x_adv, x")
        out = {}
        for k, cost in self._costs.items():
            m = METRICS[k]
            cost.to(x.device)
            a, b = (x_adv.double(), x.double()) if m.exact else (x_adv, x)
            out[k] = m.factor * cost.unchecked(a, b)
        if self._ssim and "ssim_distance" in out:
            out["ssim"] = 1.0 - out["ssim_distance"]
        return {k: out[k].detach().float().cpu() for k in KEYS if k in out}


def distance_table(x_adv: torch.Tensor, x: torch.Tensor, *, learned: bool = True) -> dict[str, torch.Tensor]:
    """One-shot form of :class:`DistanceMeter` (builds the learned metrics each call)."""
    return DistanceMeter(learned=learned)(x_adv, x)
