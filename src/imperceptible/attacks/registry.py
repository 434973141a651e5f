"""Attacks by name: ``get("human-perc-ot", confidence=1)``."""

from __future__ import annotations

from ..validation import check_choice
from .base import Attack
from .human_perc_ot import HumanPercOT
from .onestep import PGDOneStep, SSIMOneStep
from .perc_al import PerCAL
from .pgd_l2 import PGDL2
from .ppgd_lpa import LPA, PPGD

ATTACKS: dict[str, type[Attack]] = {
    "human-perc-ot": HumanPercOT,
    "ssim-onestep": SSIMOneStep,
    "pgd-onestep": PGDOneStep,
    "pgd-l2": PGDL2,
    "perc-al": PerCAL,
    "ppgd": PPGD,
    "lpa": LPA,
}

DESCRIPTIONS = {
    "human-perc-ot": "Algorithm 1 of Hua et al.: ascent on loss - lambda * c0 (cost: any registered cost)",
    "ssim-onestep": "equation 5: one step along (H_SSIM + mu I)^-1 grad loss (dense or CG solver)",
    "pgd-onestep": "one L2-normalised gradient step",
    "pgd-l2": "PGD with L2 bound (Madry et al. 2018; torchattacks defaults)",
    "perc-al": "PerC-AL (Zhao et al. 2020): alternating CE / CIEDE2000 steps",
    "ppgd": "Perceptual PGD (Laidlaw et al. 2021), LPIPS bound 0.5",
    "lpa": "Lagrangian Perceptual Attack (Laidlaw et al. 2021), LPIPS bound 0.5",
}


def names() -> list[str]:
    return list(ATTACKS)


def get(name: str, **options) -> Attack:
    check_choice("attack", name, ATTACKS)
    return ATTACKS[name](**options)


def label(attack: Attack) -> str:
    """The name used in results: ``human-perc-ot``, ``ppgd[self]``, ``human-perc-ot@a=1`` ..."""
    base = attack.label() if hasattr(attack, "label") else attack.name
    if attack.name == "human-perc-ot":
        if getattr(attack, "cost", "ssim") != "ssim":
            base += f"[{attack.cost}]"
        if getattr(attack, "preset", "calibrated") != "calibrated":
            base += f"[{attack.preset}]"
    if attack.confidence:
        base += f"@a={attack.confidence:g}"
    return base
