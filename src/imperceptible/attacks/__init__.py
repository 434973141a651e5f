"""Attacks: one algorithm per file; :class:`Attack` owns validate -> run -> clip -> result; each declares its
:class:`AttackTags` beside its class and :mod:`.registry` lists them."""

from .adv_lib_peers import ALMA, DDN, FMN, CarliniWagnerL2, SuperDeepFool, adv_lib_available
from .base import Attack, AttackResult, margin, quantize_8bit
from .boundary_projection import BoundaryProjection
from .counting import BudgetExhausted, CountingModel
from .human_perc_ot import HumanPercOT
from .linalg import conjugate_gradient
from .loop import ActiveSet, EarlyStop
from .onestep import PGDOneStep, SSIMOneStep, dense_hessian, ssim_hvp
from .perc_al import PerCAL
from .pgd_l2 import PGDL2
from .ppgd_lpa import LPA, PPGD, project_lpips
from .registry import ATTACKS, CLASSES, attack_class, describe, get, label, names
from .tags import THREATS, AttackTags

__all__ = ["ALMA", "ATTACKS", "CLASSES", "DDN", "FMN", "LPA", "PGDL2", "PPGD", "THREATS", "ActiveSet", "Attack",
           "AttackResult", "AttackTags", "BoundaryProjection", "BudgetExhausted", "CarliniWagnerL2", "CountingModel",
           "EarlyStop", "HumanPercOT", "PGDOneStep", "PerCAL", "SSIMOneStep", "SuperDeepFool", "adv_lib_available",
           "attack_class", "conjugate_gradient", "dense_hessian", "describe", "get", "label", "margin", "names",
           "project_lpips", "quantize_8bit", "ssim_hvp"]
