"""Everything measured about one batch of attack results, per sample: the distance table, saliency
distances, and whether the attack survives each defense."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attacks.base import AttackResult, margin
from ..costs.distances import DistanceMeter
from ..costs.metrics import SALIENCY_KEYS
from ..defenses import bit_depth_reduction, jpeg_compression
from .saliency import saliency_distances, saliency_unavailable, spectral_residual_saliency

#: the defenses evaluated: key -> transformation (JPEG qualities as in PerC's sweep; bit depths)
DEFENSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "jpeg_q90": lambda x: jpeg_compression(x, 90),
    "jpeg_q75": lambda x: jpeg_compression(x, 75),
    "jpeg_q50": lambda x: jpeg_compression(x, 50),
    "bits_6": lambda x: bit_depth_reduction(x, 6),
    "bits_5": lambda x: bit_depth_reduction(x, 5),
    "bits_4": lambda x: bit_depth_reduction(x, 4),
}


class Evaluator:
    """Per-sample measurements of attack results against the originals.

    Args:
        learned: compute LPIPS/DISTS when their weights are found (or fetched).
        keys: the distance metrics to compute (default: every one of the metric table).
        ssim_kernel: the SSIM window (11; 7 for tiny images).
        image_size: the images' smaller side, when known: LPIPS is left out (with the reason) below 32.
        saliency: a saliency model (default: OpenCV spectral residual; skipped, with the reason under
            ``unavailable``, where OpenCV lacks its contrib modules); ``None`` to skip.
        defenses: which of :data:`DEFENSES` to apply (default: all).
    """

    def __init__(self, *, learned: bool = True, saliency=spectral_residual_saliency, defenses=None,
                 ssim_kernel: int = 11, image_size: int | None = None, keys: tuple[str, ...] | None = None,
                 anytime_keys: tuple[str, ...] | None = None) -> None:
        self.meter = DistanceMeter(learned=learned, ssim_kernel=ssim_kernel, image_size=image_size, keys=keys)
        #: the judges of the anytime snapshots (default: all of ``keys``; fewer where judging is the run's cost)
        self.anytime_meter = self.meter if anytime_keys is None else DistanceMeter(
            learned=learned, ssim_kernel=ssim_kernel, image_size=image_size, keys=anytime_keys)
        self._saliency_missing = saliency_unavailable() if saliency is spectral_residual_saliency else None
        self.saliency = None if self._saliency_missing else saliency
        self.defenses = list(DEFENSES) if defenses is None else list(defenses)
        self._clean_defense: dict[tuple[str, str], float] = {}  # (sample id, defense) -> clean misclassified

    @classmethod
    def for_images(cls, images: torch.Tensor, **options) -> Evaluator:
        """An evaluator sized for ``images``: the 11-pixel SSIM window (7 below 11 pixels), LPIPS only where it
        fits."""
        side = int(min(images.shape[-2:]))
        return cls(ssim_kernel=11 if side >= 11 else 7, image_size=side, **options)

    @property
    def unavailable(self) -> dict[str, str]:
        out = dict(self.meter.unavailable)
        if self._saliency_missing:
            out.update({k: self._saliency_missing for k in SALIENCY_KEYS})
        return out

    def identity(self) -> dict:
        """What determines the measurements (part of a run's fingerprint): which metrics, saliency model,
        defenses and SSIM window, and which metrics could not be computed here."""
        return {**self.meter.identity(), **({"anytime": self.anytime_meter.identity()} if self.anytime_meter is not
                                            self.meter else {}),
                "saliency": getattr(self.saliency, "__name__", None) if self.saliency is not None else None,
                "defenses": self.defenses, "unavailable": sorted(self.unavailable)}

    @torch.no_grad()
    def __call__(self, model, x: torch.Tensor, y: torch.Tensor, res: AttackResult,
                 ids: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Per-sample measurements. With ``ids``, the defense-alone baseline of each original is computed
        once per image and reused for every method (it does not depend on the attack)."""
        out = dict(self.meter(res.adv, x))
        if self.saliency is not None:
            out.update(saliency_distances(self.saliency(res.adv), self.saliency(x)))
        for name in self.defenses:
            out[f"defense_{name}"] = (margin(model(DEFENSES[name](res.adv)), y) > 0).float().cpu()
            out[f"clean_defense_{name}"] = self._clean_baseline(model, x, y, name, ids)
        return out

    def _clean_baseline(self, model, x, y, name: str, ids: list[str] | None) -> torch.Tensor:
        """The defense's own damage: 1 where the clean image is misclassified after it."""
        keys = [(i, name) for i in ids] if ids is not None else None
        if keys is not None and all(k in self._clean_defense for k in keys):
            return torch.tensor([self._clean_defense[k] for k in keys])
        flags = (margin(model(DEFENSES[name](x)), y) > 0).float().cpu()
        if keys is not None:
            self._clean_defense.update(zip(keys, flags.tolist()))
        return flags
