"""The strongest minimal-perturbation attacks, run through their maintained implementation in ``adv-lib``
(jeromerony/adversarial-library 0.2.8, BSD), at their authors' settings:

* **DDN** (Rony et al., "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial Attacks and
  Defenses", CVPR 2019, arXiv 1811.09600): ``adv_lib.attacks.ddn``, ``steps = 100``, ``gamma = 0.05``,
  ``init_norm = 1``, ``levels = 256`` (every iterate rounded to the 8-bit grid inside its loop).
* **FMN-L2** (Pintor et al., "Fast Minimum-norm Adversarial Attacks through Adaptive Norm Constraints",
  NeurIPS 2021, arXiv 2102.12827): ``adv_lib.attacks.fmn``, ``norm = 2``, ``alpha_init = 1``,
  ``alpha_final = alpha_init / 100``, ``gamma_init = 0.05``, ``gamma_final = 0.001``; ``steps`` 100 here (adv-lib's
  signature default is 10; AttackBench runs 1000).
* **ALMA** (Rony et al., "Augmented Lagrangian Adversarial Attacks", ICCV 2021, arXiv 2011.11857):
  ``adv_lib.attacks.alma`` with penalty P2, ``lr_init = 0.1``, ``lr_reduction = 0.01``, ``mu_init = rho_init = 1``,
  ``check_steps = 10``, ``tau = 0.95``, ``gamma = 1.2``, ``levels = 256`` (rounding inside its loop) and the
  initial distance step of the authors' ImageNet script (``minimal_attack_imagenet.py``): SSIM 1e-4, LPIPS 0.01,
  CIEDE2000 0.03, L2 0.1; ``alpha = 0.5`` at 100 steps (their setting for short runs), adv-lib's 0.9 at 1000.
  ALMA-LPIPS minimises adv-lib's LPIPS: AlexNet features normalised per channel (no learned linear layers),
  the L2 norm of their difference, the ImageNet AlexNet found or fetched as for PPGD (:mod:`.feature_lpips`);
  it is not the official LPIPS the tables judge by.
* **C&W-L2** (Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", S&P 2017):
  ``adv_lib.attacks.carlini_wagner_l2`` with its defaults (``learning_rate = 0.01``, ``initial_const = 0.001``,
  ``binary_search_steps = 9``, ``abort_early``, which adv-lib checks every tenth of the iterations, so only from 10
  iterations on) and ``max_iterations = steps // 9`` (AttackBench's way to fit it
  into a budget: 9 x 111 within 1000 passes; the paper's 10,000 iterations per search are out of reach).

FMN and C&W have no ``levels``: they run on the model composed with the 8-bit rounding of its input (the
gradient passes straight through, as in every attack of this project), so the best iterate each keeps is
adversarial as an 8-bit image, and its output is rounded. Without that, a minimal attack's float output sits
on the decision boundary and most of it fails once rounded.

Optional: ``adv-lib`` is not a dependency. Its wheel imports ``visdom`` (for its plotting callback only),
whose source distribution no longer builds under current setuptools, so install both with
``tools/install-adv-lib.sh`` (see the README). They take no confidence ``a`` (it must be 0); a sample's
``steps`` is the budget; their own random draws run in a forked RNG seeded by ``seed``.
"""

from __future__ import annotations

import contextlib
import importlib
from functools import partial

import torch
from torch import nn

from ..costs.metrics import for_cost
from ..pixels import quantize_8bit
from ..validation import (
    MSG_NO_ADV_LIB,
    MSG_PARAM,
    AdvLibMissingError,
    ParameterError,
    check_int,
    check_option,
    check_positive,
)
from .base import Attack

#: the initial distance step (ALMA's init_lr_distance) per distance, from the authors' ImageNet script
ALMA_INIT_DISTANCE = {"ssim": 1e-4, "lpips": 0.01, "ciede2000": 0.03, "l2": 0.1}
#: adv-lib's distances ALMA can minimise
ALMA_DISTANCES = ("ssim", "msssim", "ciede2000", "lpips", "l2", "l1")
LEVELS = 256


def _adv_lib_attacks(attack: str):
    try:
        return importlib.import_module("adv_lib.attacks")
    except ImportError:
        raise AdvLibMissingError.of(MSG_NO_ADV_LIB, attack=attack) from None


class EightBitView(nn.Module):
    """``model`` evaluated at the 8-bit rounding of its input, the gradient straight through the rounding."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x + (quantize_8bit(x) - x).detach())


class _AdvLibAttack(Attack):
    """What the adv-lib peers share: no confidence, their RNG in a fork, the steps reported as the budget."""

    def __init__(self, *, steps: int, confidence: float, quantize: bool, seed: int) -> None:
        if confidence:
            raise ParameterError.of(MSG_PARAM, name=f"{self.name} confidence", expected="0 (a minimal attack)", got=confidence)
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.steps = check_int("steps", steps)

    def label(self) -> str:
        """The name, with the step budget when it is not the authors' 100."""
        return self.name if self.steps == 100 else f"{self.name}[{self.steps}]"

    def _call(self, fn, model, x, y, **kw) -> torch.Tensor:
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(self.seed)
            return fn(model, x, y, **kw).detach()

    def _done(self, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return adv, torch.full((adv.shape[0],), self.steps, dtype=torch.long)


class DDN(_AdvLibAttack):
    """DDN (adv-lib), L2: ``steps`` (100), ``gamma`` (0.05), ``init_norm`` (1.0), 256 levels inside its loop.

    Examples:
        >>> from imperceptible.attacks import DDN
        >>> DDN().label(), DDN(steps=1000).label()
        ('ddn', 'ddn[1000]')
    """

    name = "ddn"
    OPTIMISES = ("l2",)

    def __init__(self, *, steps: int = 100, gamma: float = 0.05, init_norm: float = 1.0, confidence: float = 0.0,
                 quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.gamma = float(check_positive("gamma", gamma))
        self.init_norm = float(check_positive("init_norm", init_norm))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        return self._done(self._call(lib.ddn, model, x, y, steps=self.steps, γ=self.gamma, init_norm=self.init_norm,
                                     levels=LEVELS if self.quantize else None))


class FMN(_AdvLibAttack):
    """FMN-L2 (adv-lib) on the 8-bit view of the model: ``steps`` (100), ``alpha_init`` (1.0), ``gamma_init``
    (0.05), ``gamma_final`` (0.001); ``alpha_final`` is ``alpha_init / 100``."""

    name = "fmn"
    OPTIMISES = ("l2",)

    def __init__(self, *, steps: int = 100, alpha_init: float = 1.0, gamma_init: float = 0.05,
                 gamma_final: float = 0.001, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.alpha_init = float(check_positive("alpha_init", alpha_init))
        self.gamma_init = float(check_positive("gamma_init", gamma_init))
        self.gamma_final = float(check_positive("gamma_final", gamma_final))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        net = EightBitView(model) if self.quantize else model
        return self._done(self._call(lib.fmn, net, x, y, norm=2, steps=self.steps, α_init=self.alpha_init,
                                     γ_init=self.gamma_init, γ_final=self.gamma_final))


class CarliniWagnerL2(_AdvLibAttack):
    """C&W-L2 (adv-lib) on the 8-bit view of the model: ``steps`` passes as ``binary_search_steps`` (9) searches
    of ``steps // 9`` iterations, ``learning_rate`` (0.01), ``initial_const`` (0.001), abort early."""

    name = "cw"
    OPTIMISES = ("l2",)

    def __init__(self, *, steps: int = 100, binary_search_steps: int = 9, learning_rate: float = 0.01,
                 initial_const: float = 0.001, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.binary_search_steps = check_int("binary_search_steps", binary_search_steps)
        if self.steps < self.binary_search_steps:
            raise ParameterError.of(MSG_PARAM, name="steps", expected=f"at least binary_search_steps = "
                                    f"{self.binary_search_steps}", got=steps)
        self.learning_rate = float(check_positive("learning_rate", learning_rate))
        self.initial_const = float(check_positive("initial_const", initial_const))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        net = EightBitView(model) if self.quantize else model
        iters = self.steps // self.binary_search_steps
        return self._done(self._call(lib.carlini_wagner_l2, net, x, y, binary_search_steps=self.binary_search_steps,
                                     max_iterations=iters, learning_rate=self.learning_rate,
                                     initial_const=self.initial_const, abort_early=iters >= 10))


class ALMA(_AdvLibAttack):
    """ALMA (adv-lib) with a distance (``ssim`` default, ``lpips``, ``ciede2000``, ``l2`` ...), 256 levels inside.

    Args:
        distance: adv-lib's distance name.
        steps: ALMA's ``num_steps`` (100).
        init_lr_distance: the first step's distance increase (default: the authors', :data:`ALMA_INIT_DISTANCE`).
        alpha: the moving averages' weight (default: 0.5 below 1000 steps, the authors' short-run value; 0.9 at
            1000 or more, adv-lib's default).
        lpips_weights: the ImageNet AlexNet file for ``lpips`` (found or fetched when ``None``).

    Examples:
        >>> from imperceptible.attacks import ALMA
        >>> ALMA().label(), ALMA(distance="lpips", steps=1000).label()
        ('alma[ssim]', 'alma[lpips,1000]')
    """

    name = "alma"

    def __init__(self, *, distance: str = "ssim", steps: int = 100, init_lr_distance: float | None = None,
                 alpha: float | None = None, lpips_weights=None, confidence: float = 0.0, quantize: bool = True,
                 seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.distance = check_option("distance", distance, ALMA_DISTANCES)
        lr = ALMA_INIT_DISTANCE.get(self.distance) if init_lr_distance is None else init_lr_distance
        self.init_lr_distance = None if lr is None else float(check_positive("init_lr_distance", lr))
        self.alpha = float(check_positive("alpha", alpha if alpha is not None else (0.5 if self.steps < 1000 else 0.9)))
        self._lpips_weights = lpips_weights

    def label(self) -> str:
        return f"alma[{self.distance}]" if self.steps == 100 else f"alma[{self.distance},{self.steps}]"

    def optimises(self) -> tuple[str, ...]:
        """Its distance's metric (adv-lib's LPIPS is the unweighted AlexNet one: the judged LPIPS's family)."""
        key = {"msssim": "ms_ssim_distance"}.get(self.distance) or for_cost(self.distance)
        return (key,) if key else ()

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.label())
        from adv_lib.utils.lagrangian_penalties import all_penalties

        with self._distance_functions(x):
            adv = self._call(lib.alma, model, x, y, penalty=all_penalties["P2"], distance=self.distance,
                             num_steps=self.steps, init_lr_distance=self.init_lr_distance, α=self.alpha,
                             levels=LEVELS if self.quantize else None)
        return self._done(adv)

    @contextlib.contextmanager
    def _distance_functions(self, x: torch.Tensor):
        """adv-lib's LPIPS loads torchvision's AlexNet with ``pretrained=True`` (a download); give it the ImageNet
        AlexNet this project finds or fetches (the same weights), for the length of the call."""
        if self.distance != "lpips":
            yield
            return
        from adv_lib.attacks import augmented_lagrangian as al
        from adv_lib.distances.lpips import LPIPS

        from .feature_lpips import AlexNetFeatures

        features = AlexNetFeatures(self._lpips_weights).to(x.device)
        old = al._distances["lpips"]
        al._distances["lpips"] = partial(LPIPS, model=features)
        try:
            yield
        finally:
            al._distances["lpips"] = old


def adv_lib_available() -> bool:
    try:
        importlib.import_module("adv_lib.attacks")
    except ImportError:
        return False
    return True


__all__ = ["ALMA", "ALMA_INIT_DISTANCE", "DDN", "FMN", "AdvLibMissingError", "CarliniWagnerL2", "EightBitView",
           "MSG_NO_ADV_LIB", "adv_lib_available"]
