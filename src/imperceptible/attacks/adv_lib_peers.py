"""The strongest minimal-perturbation attacks, run through their maintained implementation in
``adv-lib`` (jeromerony/adversarial-library, BSD): ALMA with the SSIM distance (Rony et al., "Augmented
Lagrangian Adversarial Attacks", ICCV 2021, arXiv 2011.11857) and DDN (Rony et al., "Decoupling Direction
and Norm for Efficient Gradient-Based L2 Adversarial Attacks and Defenses", CVPR 2019, arXiv 1811.09600).

Optional: ``adv-lib`` is not a dependency. Its wheel imports ``visdom`` (for its plotting callback only),
whose source distribution no longer builds under current setuptools, so install both with
``tools/install-adv-lib.sh`` (it builds visdom's wheel once in a throwaway environment with an older
setuptools, then installs it and ``adv-lib==0.2.8`` into the active environment; see the README).

Budgets are the authors' from their ImageNet/CIFAR benchmark scripts: ALMA-SSIM 100 steps with
``init_lr_distance = 1e-4`` and ``alpha = 0.5`` (penalty P2); DDN 100 steps (``gamma = 0.05``,
``init_norm = 1``, 256 quantisation levels inside). Both are *minimal-distance* attacks that run every
step and return the best adversarial iterate found; ALMA returns a float image, which this project, like
every attack here, rounds to 8 bits and judges again - minimal attacks land on the decision boundary, so
many fail once rounded, and the benchmark reports that. They take no confidence ``a`` (it must be 0), and
a sample's ``steps`` is the budget. Their own random draws run in a forked RNG seeded by ``seed``.
"""

from __future__ import annotations

import importlib

import torch

from ..validation import MSG_PARAM, ImperceptibleError, ParameterError, check_int, check_positive
from .base import Attack

MSG_NO_ADV_LIB = ("{attack}: expected the optional package adv-lib (0.2.8), got none installed; install it with "
                  "tools/install-adv-lib.sh (see the README, 'Optional peers')")


class AdvLibMissingError(ImperceptibleError, ImportError):
    """adv-lib is not installed."""


def _adv_lib_attacks(attack: str):
    try:
        return importlib.import_module("adv_lib.attacks")
    except ImportError:
        raise AdvLibMissingError(MSG_NO_ADV_LIB.format(attack=attack)) from None


class _AdvLibAttack(Attack):
    def __init__(self, *, confidence: float, quantize: bool, seed: int) -> None:
        if confidence:
            raise ParameterError(MSG_PARAM.format(name=f"{self.name} confidence", expected="0 (a minimal attack)",
                                                  got=confidence))
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)

    def _call(self, fn, model, x, y, **kw) -> torch.Tensor:
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(self.seed)
            return fn(model, x, y, **kw).detach()


class ALMA(_AdvLibAttack):
    """ALMA (adv-lib) with a distance: ``ssim`` (default), ``ciede2000``, ``lpips``, ``l2`` ...

    Args:
        distance: adv-lib's distance name.
        num_steps, init_lr_distance, alpha: the authors' settings for 100 steps (SSIM: 1e-4 and 0.5).

    Examples:
        >>> from imperceptible.attacks import ALMA
        >>> ALMA().label()
        'alma[ssim]'
    """

    name = "alma"

    def __init__(self, *, distance: str = "ssim", num_steps: int = 100, init_lr_distance: float = 1e-4,
                 alpha: float = 0.5, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.distance = str(distance)
        self.num_steps = check_int("num_steps", num_steps)
        self.init_lr_distance = float(check_positive("init_lr_distance", init_lr_distance))
        self.alpha = float(check_positive("alpha", alpha))

    def label(self) -> str:
        return f"alma[{self.distance}]"

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.label())
        from adv_lib.utils.lagrangian_penalties import all_penalties

        adv = self._call(lib.alma, model, x, y, penalty=all_penalties["P2"], distance=self.distance,
                         num_steps=self.num_steps, init_lr_distance=self.init_lr_distance, α=self.alpha)
        return adv, torch.full((x.shape[0],), self.num_steps, dtype=torch.long)


class DDN(_AdvLibAttack):
    """DDN (adv-lib), L2: ``steps`` (100), ``gamma`` (0.05), ``init_norm`` (1.0), 256 levels."""

    name = "ddn"

    def __init__(self, *, steps: int = 100, gamma: float = 0.05, init_norm: float = 1.0, confidence: float = 0.0,
                 quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.steps = check_int("steps", steps)
        self.gamma = float(check_positive("gamma", gamma))
        self.init_norm = float(check_positive("init_norm", init_norm))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        adv = self._call(lib.ddn, model, x, y, steps=self.steps, γ=self.gamma, init_norm=self.init_norm, levels=256)
        return adv, torch.full((x.shape[0],), self.steps, dtype=torch.long)


def adv_lib_available() -> bool:
    try:
        importlib.import_module("adv_lib.attacks")
    except ImportError:
        return False
    return True


__all__ = ["ALMA", "DDN", "AdvLibMissingError", "MSG_NO_ADV_LIB", "adv_lib_available"]
