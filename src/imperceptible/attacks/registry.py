"""Attacks by name: ``get("human-perc-ot", confidence=1)``."""

from __future__ import annotations

import inspect

from ..validation import (
    MSG_UNKNOWN_PARAM,
    UnknownNameError,
    check_choice,
)
from .adv_lib_peers import ALMA, DDN, FMN, CarliniWagnerL2
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
    "alma": ALMA,
    "ddn": DDN,
    "fmn": FMN,
    "cw": CarliniWagnerL2,
}

DESCRIPTIONS = {
    "human-perc-ot": "Algorithm 1 of Hua et al. (ascent on loss - lambda * c0, any registered cost), refined to a "
                     "minimal attack in the cost's geometry (preset refined; first-success and paper available)",
    "ssim-onestep": "equation 5: one step along (H_SSIM + mu I)^-1 grad loss (dense or CG solver)",
    "pgd-onestep": "one L2-normalised gradient step",
    "pgd-l2": "PGD with L2 bound (Madry et al. 2018; torchattacks defaults)",
    "perc-al": "PerC-AL (Zhao et al. 2020): alternating CE / CIEDE2000 steps",
    "ppgd": "Perceptual PGD (Laidlaw et al. 2021), AlexNet LPIPS bound 0.5 (lpips_model=self: own features)",
    "lpa": "Lagrangian Perceptual Attack (Laidlaw et al. 2021), AlexNet LPIPS bound 0.5",
    "alma": "ALMA (Rony et al. 2021), minimal SSIM (or LPIPS, CIEDE2000 ...) distance, 8-bit levels, adv-lib (optional)",
    "ddn": "DDN (Rony et al. 2019), minimal L2, 8-bit levels, through adv-lib (optional)",
    "fmn": "FMN-L2 (Pintor et al. 2021), minimal L2, on the 8-bit view of the model, through adv-lib (optional)",
    "cw": "C&W-L2 (Carlini & Wagner 2017), 9 binary searches in the step budget, through adv-lib (optional)",
}


def names() -> list[str]:
    return list(ATTACKS)


def parameters(name: str) -> list[str]:
    """The keyword parameters attack ``name`` accepts."""
    check_choice("attack", name, ATTACKS)
    if hasattr(ATTACKS[name], "parameters"):  # an attack whose settings are a dataclass says them itself
        return ATTACKS[name].parameters()
    sig = inspect.signature(ATTACKS[name].__init__)
    return sorted(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def get(name: str, **options) -> Attack:
    """Build attack ``name``; an option it does not take is refused, listing those it does."""
    valid = parameters(name)
    for key in options:
        if key not in valid:
            raise UnknownNameError.of(MSG_UNKNOWN_PARAM, key=key, attack=name, choices=", ".join(valid))
    return ATTACKS[name](**options)


def label(attack: Attack) -> str:
    """The name used in results: the attack's own :meth:`~Attack.label` (``human-perc-ot[paper]``,
    ``ppgd[self]`` ...) plus ``@a=<confidence>`` when the confidence is not 0."""
    base = attack.label()
    if attack.confidence:
        base += f"@a={attack.confidence:g}"
    return base
