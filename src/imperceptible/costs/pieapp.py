"""PieAPP (Prashnani et al. 2018), with piq's architecture and forward.

The checkpoint (``PieAPPv0.1.pth``, piq's conversion of the authors' weights) is read from a local
file only (see :mod:`imperceptible.weights`); piq's constructor would download it. Gradients are on
(``enable_grad=True``) because the attack differentiates through it. Inputs must be at least 64x64
(PieAPP compares 64-pixel patches, ``stride`` apart).

Reference: E. Prashnani, H. Cai, Y. Mostofi, P. Sen, "PieAPP: Perceptual image-error assessment
through pairwise preference", CVPR 2018.
"""

from __future__ import annotations

import os

import torch
from piq.pieapp import PieAPP, PieAPPModel
from torch.nn.modules.loss import _Loss

from ..errors import MSG_PARAM, ParameterError
from ..weights import WeightSpec, load_state_dict
from .base import Cost, to_rgb
from .tags import CostTags

PIEAPP = WeightSpec("PieAPP checkpoint (piq's PieAPPv0.1.pth)", "PieAPPv0.1.pth", "IMPERCEPTIBLE_PIEAPP")


class LocalPieAPP(PieAPP):
    """``piq.PieAPP`` whose weights come from a local state dict instead of a download."""

    def __init__(self, state_dict: dict, *, stride: int = 27) -> None:
        _Loss.__init__(self)
        sd = dict(state_dict)
        w = sd.get("ref_score_subtract.weight")
        if w is not None and w.dim() == 1:  # the same fix piq applies to the original file
            sd["ref_score_subtract.weight"] = w.unsqueeze(1)
        self.model = PieAPPModel()
        self.model.load_state_dict(sd)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.data_range = 1.0
        self.reduction = "none"
        self.stride = stride
        self.enable_grad = True


class PieAPPCost(Cost):
    """PieAPP per sample. ``weights``: path of ``PieAPPv0.1.pth``; ``stride``: patch stride (piq: 27)."""

    name = "pieapp"
    TAGS = CostTags('PieAPP (Prashnani et al. 2018) (piq architecture)', symmetric=False)
    learned = True

    def __init__(self, *, weights: str | os.PathLike | None = None, stride: int = 27,
                 data_range: float = 1.0) -> None:
        super().__init__(data_range=data_range)
        self.model = LocalPieAPP(load_state_dict(PIEAPP.resolve(weights), PIEAPP.what), stride=stride).eval()

    @classmethod
    def weight_status(cls) -> list[dict]:
        return [PIEAPP.status()]

    @classmethod
    def available(cls, **options) -> bool:
        return PIEAPP.find(options.get("weights")) is not None

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 64:
            raise ParameterError.of(MSG_PARAM, name="image size", expected="at least 64x64 for PieAPP", got=tuple(x.shape[-2:]))
        return self.model(to_rgb(x), to_rgb(x0))
