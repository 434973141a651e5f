"""Weight-free perceptual judges from piq, as distances (0 means identical): FSIM, GMSD, VSI, HaarPSI.

No attack in this project optimises them, so they judge imperceptibility without favouring one method.
piq's implementations reproduce their authors' MATLAB values (the tests check the published numbers on a
TID2013 pair). Inputs ``[0, 1]``; grey images are repeated to RGB for VSI (which is defined on colour)
and use FSIM's grey form.

References: L. Zhang et al., "FSIM: a feature similarity index for image quality assessment", IEEE TIP
2011 (DOI 10.1109/TIP.2011.2109730); W. Xue et al., "Gradient magnitude similarity deviation", IEEE TIP
2014 (DOI 10.1109/TIP.2013.2293423); L. Zhang, Y. Shen, H. Li, "VSI: a visual saliency-induced index",
IEEE TIP 2014 (DOI 10.1109/TIP.2014.2346028); R. Reisenhofer et al., "A Haar wavelet-based perceptual
similarity index", Signal Processing: Image Communication 2018 (DOI 10.1016/j.image.2017.11.001).
"""

from __future__ import annotations

import piq
import torch

from .base import Cost, to_rgb
from .tags import CostTags


class FSIMCost(Cost):
    """``1 - FSIM`` (FSIMc on colour images, FSIM on grey ones), per sample.

    Examples:
        >>> import torch
        >>> from imperceptible.costs import FSIMCost
        >>> x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        >>> round(float(FSIMCost()(x, x)), 6)
        0.0
    """

    name = "fsim"
    TAGS = CostTags('1 - FSIM(c) (Zhang et al. 2011) (piq; a judge)')

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - piq.fsim(x, x0, data_range=1.0, reduction="none", chromatic=x.shape[1] == 3)


class GMSDCost(Cost):
    """GMSD (already a distance: 0 for identical images), per sample."""

    name = "gmsd"
    TAGS = CostTags('GMSD (Xue et al. 2014) (piq; a judge)')

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return piq.gmsd(x, x0, data_range=1.0, reduction="none")


class VSICost(Cost):
    """``1 - VSI``, per sample (grey images are repeated to RGB)."""

    name = "vsi"
    TAGS = CostTags('1 - VSI (Zhang et al. 2014) (piq; a judge)')

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - piq.vsi(to_rgb(x), to_rgb(x0), data_range=1.0, reduction="none")


class HaarPSICost(Cost):
    """``1 - HaarPSI``, per sample."""

    name = "haarpsi"
    TAGS = CostTags('1 - HaarPSI (Reisenhofer et al. 2018) (piq; a judge)')

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return 1.0 - piq.haarpsi(x, x0, data_range=1.0, reduction="none")


__all__ = ["FSIMCost", "GMSDCost", "HaarPSICost", "VSICost"]
