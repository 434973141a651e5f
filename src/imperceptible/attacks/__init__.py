"""Attacks: one algorithm per file; :class:`Attack` owns validate -> run -> clip -> result."""

from .adv_lib_peers import ALMA, DDN, adv_lib_available
from .base import ActiveSet, Attack, AttackResult, margin, quantize_8bit
from .human_perc_ot import HumanPercOT
from .linalg import conjugate_gradient
from .onestep import PGDOneStep, SSIMOneStep, dense_hessian, ssim_hvp
from .perc_al import PerCAL
from .pgd_l2 import PGDL2
from .ppgd_lpa import LPA, PPGD, project_lpips
from .registry import ATTACKS, DESCRIPTIONS, get, label, names

__all__ = ["ALMA", "DDN", "adv_lib_available", "ActiveSet", "Attack", "AttackResult", "margin", "quantize_8bit",
           "HumanPercOT", "PGDOneStep",
           "SSIMOneStep", "conjugate_gradient", "dense_hessian", "ssim_hvp", "PerCAL", "PGDL2", "LPA", "PPGD",
           "project_lpips", "ATTACKS", "DESCRIPTIONS", "get", "label", "names"]
