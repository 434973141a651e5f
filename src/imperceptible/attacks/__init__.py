"""Attacks: one algorithm per file; :class:`Attack` owns validate -> run -> clip -> result."""

from .adv_lib_peers import ALMA, DDN, FMN, CarliniWagnerL2, adv_lib_available
from .base import Attack, AttackResult, margin, quantize_8bit
from .counting import CountingModel
from .human_perc_ot import HumanPercOT
from .linalg import conjugate_gradient
from .loop import ActiveSet, EarlyStop
from .onestep import PGDOneStep, SSIMOneStep, dense_hessian, ssim_hvp
from .perc_al import PerCAL
from .pgd_l2 import PGDL2
from .ppgd_lpa import LPA, PPGD, project_lpips
from .registry import ATTACKS, DESCRIPTIONS, get, label, names

__all__ = ["ALMA", "ATTACKS", "DDN", "DESCRIPTIONS", "FMN", "LPA", "PGDL2", "PPGD", "ActiveSet", "Attack", "AttackResult",
           "CarliniWagnerL2", "CountingModel", "EarlyStop", "HumanPercOT", "PGDOneStep", "PerCAL", "SSIMOneStep",
           "adv_lib_available", "conjugate_gradient", "dense_hessian", "get", "label", "margin", "names", "project_lpips",
           "quantize_8bit", "ssim_hvp"]
