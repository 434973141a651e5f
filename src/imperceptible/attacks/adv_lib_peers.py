"""The strongest minimal-perturbation attacks, run through their maintained implementation in ``adv-lib``
(jeromerony/adversarial-library 0.2.8, BSD), at their authors' settings:

* **DDN** (Rony et al., "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial Attacks and
  Defenses", CVPR 2019, arXiv 1811.09600): ``adv_lib.attacks.ddn``, ``steps = 100``, ``gamma = 0.05``,
  ``init_norm = 1``.
* **FMN-L2** (Pintor et al., "Fast Minimum-norm Adversarial Attacks through Adaptive Norm Constraints",
  NeurIPS 2021, arXiv 2102.12827): ``adv_lib.attacks.fmn``, ``norm = 2``, ``alpha_init = 1``,
  ``alpha_final = alpha_init / 100``, ``gamma_init = 0.05``, ``gamma_final = 0.001``; ``steps`` 100 here (adv-lib's
  signature default is 10; AttackBench runs 1000).
* **ALMA** (Rony et al., "Augmented Lagrangian Adversarial Attacks", ICCV 2021, arXiv 2011.11857):
  ``adv_lib.attacks.alma`` with penalty P2, ``lr_init = 0.1``, ``lr_reduction = 0.01``, ``mu_init = rho_init = 1``,
  ``check_steps = 10``, ``tau = 0.95``, ``gamma = 1.2`` and the initial distance step of the authors' ImageNet script
  (``minimal_attack_imagenet.py``): SSIM 1e-4, LPIPS 0.01, CIEDE2000 0.03, L2 0.1; ``alpha = 0.5`` at 100 steps
  (their setting for short runs), adv-lib's 0.9 at 1000. ALMA-LPIPS minimises adv-lib's LPIPS: AlexNet features
  normalised per channel (no learned linear layers), the L2 norm of their difference, the ImageNet AlexNet found or
  fetched as for PPGD (:mod:`.feature_lpips`); it is not the official LPIPS the tables judge by.
* **C&W-L2** (Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", S&P 2017):
  ``adv_lib.attacks.carlini_wagner_l2`` with ``learning_rate = 0.01``, ``initial_const = 0.001``,
  ``binary_search_steps = 9`` and ``max_iterations = steps // 9`` (AttackBench's way to fit it into a budget: 9 x 111
  within 1000 passes). Early abort is **off** by default: adv-lib checks it every tenth of the iterations, so at
  ``steps // 9 = 22`` it stopped each search after about 2 iterations and C&W spent 26 of its 200 passes.
* **SuperDeepFool** (Abdollahpour et al., "SuperDeepFool: a new fast and accurate minimal adversarial attack",
  NeurIPS 2024, arXiv 2303.12481): ``adv_lib.attacks.superdeepfool.sdf`` with its defaults (``steps = 100``,
  ``df_steps = 100``, ``overshoot = 0.02``, ``search_iter = 10``). DeepFool takes one backward pass per candidate
  class; adv-lib's port uses every class, which on ImageNet is 999 passes per DeepFool step. As DeepFool's authors
  do (their ``num_classes = 10``), the attack sees the logits of ``candidates`` classes per image (its label and the
  9 others highest at the clean image), one image at a time; an image adversarial among its candidates is
  adversarial for the whole model (a candidate above the label is above it among all classes).

**The 8-bit rule, two ways** (``mode``). ``levels``: the attack rounds every iterate to the 8-bit grid inside its own
loop (adv-lib's ``levels = 256``; DDN and ALMA have it). ``view``: the attack keeps a float iterate and sees the model
composed with the 8-bit rounding of its input (the gradient passes straight through it, as in every attack of this
project); the best 8-bit image it queried is kept (:mod:`.anytime`, under a pass budget; else its own output,
rounded). FMN, C&W and SuperDeepFool have no ``levels`` and run in the ``view`` mode; DDN and ALMA run in either
(their authors: ``levels`` for DDN's 8-bit results, none for ALMA); the benchmark's protocol picks each one's mode
on its tune split.

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
from ..errors import MSG_NO_ADV_LIB, MSG_PARAM, AdvLibMissingError, ParameterError
from ..pixels import quantize_8bit
from ..validation import check_bool, check_int, check_option, check_positive
from .base import Attack
from .counting import BudgetExhausted, rows
from .tags import AttackTags

#: the initial distance step (ALMA's init_lr_distance) per distance, from the authors' ImageNet script
ALMA_INIT_DISTANCE = {"ssim": 1e-4, "lpips": 0.01, "ciede2000": 0.03, "l2": 0.1}
#: adv-lib's distances ALMA can minimise
ALMA_DISTANCES = ("ssim", "msssim", "ciede2000", "lpips", "l2", "l1")
LEVELS = 256
#: the 8-bit rule of an attack: rounded inside its loop, or a float iterate seeing the rounded model
MODES = ("levels", "view")
NEEDS = ("adv-lib",)


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
    """What the adv-lib peers share: no confidence, their RNG in a fork, the steps reported as the budget, the
    8-bit rule (:data:`MODES`; the label says ``view`` where an attack that has both runs without its levels)."""

    #: the attack has adv-lib's in-loop ``levels`` (else it runs in the ``view`` mode only)
    HAS_LEVELS = False

    def __init__(self, *, steps: int, confidence: float, quantize: bool, seed: int, mode: str | None = None) -> None:
        if confidence:
            raise ParameterError.of(MSG_PARAM, name=f"{self.name} confidence", expected="0 (a minimal attack)", got=confidence)
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.steps = check_int("steps", steps)
        self.mode = check_option("mode", mode if mode is not None else ("levels" if self.HAS_LEVELS else "view"),
                                 MODES if self.HAS_LEVELS else ("view",))

    def tag(self) -> list[str]:
        """What distinguishes this variant in its label: the mode where not the default, the steps where not 100."""
        out = ["view"] if self.HAS_LEVELS and self.mode == "view" else []
        return out + ([str(self.steps)] if self.steps != 100 else [])

    def label(self) -> str:
        t = self.tag()
        return f"{self.name}[{','.join(t)}]" if t else self.name

    def _net(self, model: nn.Module) -> nn.Module:
        return EightBitView(model) if self.quantize and self.mode == "view" else model

    def _levels(self) -> int | None:
        return LEVELS if self.quantize and self.mode == "levels" else None

    def _call(self, fn, model, x, y, **kw) -> torch.Tensor:
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(self.seed)
            return fn(model, x, y, **kw).detach()

    def _done(self, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return adv, torch.full((adv.shape[0],), self.steps, dtype=torch.long)


class DDN(_AdvLibAttack):
    """DDN (adv-lib), L2: ``steps`` (100), ``gamma`` (0.05), ``init_norm`` (1.0), ``mode`` (``levels``: 256 levels
    inside its loop, its authors' 8-bit setting; or ``view``).

    Examples:
        >>> from imperceptible.attacks import DDN
        >>> DDN().label(), DDN(steps=1000).label(), DDN(mode="view").label()
        ('ddn', 'ddn[1000]', 'ddn[view]')
    """

    name = "ddn"
    HAS_LEVELS = True
    TAGS = AttackTags("DDN (Rony et al. 2019), minimal L2, 8-bit levels in its loop or on the 8-bit view, adv-lib "
                      "(optional)", "minimal", ("l2",), needs=NEEDS, confidence=False, budget="steps",
                      test_settings={"steps": 60})

    def __init__(self, *, steps: int = 100, gamma: float = 0.05, init_norm: float = 1.0, mode: str | None = None,
                 confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed, mode=mode)
        self.gamma = float(check_positive("gamma", gamma))
        self.init_norm = float(check_positive("init_norm", init_norm))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        return self._done(self._call(lib.ddn, self._net(model), x, y, steps=self.steps, γ=self.gamma,
                                     init_norm=self.init_norm, levels=self._levels()))


class FMN(_AdvLibAttack):
    """FMN-L2 (adv-lib) on the 8-bit view of the model: ``steps`` (100), ``alpha_init`` (1.0), ``gamma_init``
    (0.05), ``gamma_final`` (0.001); ``alpha_final`` is ``alpha_init / 100``."""

    name = "fmn"
    TAGS = AttackTags("FMN-L2 (Pintor et al. 2021), minimal L2, on the 8-bit view of the model, adv-lib (optional)",
                      "minimal", ("l2",), needs=NEEDS, confidence=False, budget="steps", test_settings={"steps": 60})

    def __init__(self, *, steps: int = 100, alpha_init: float = 1.0, gamma_init: float = 0.05,
                 gamma_final: float = 0.001, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.alpha_init = float(check_positive("alpha_init", alpha_init))
        self.gamma_init = float(check_positive("gamma_init", gamma_init))
        self.gamma_final = float(check_positive("gamma_final", gamma_final))

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        return self._done(self._call(lib.fmn, self._net(model), x, y, norm=2, steps=self.steps, α_init=self.alpha_init,
                                     γ_init=self.gamma_init, γ_final=self.gamma_final))


class CarliniWagnerL2(_AdvLibAttack):
    """C&W-L2 (adv-lib) on the 8-bit view of the model: ``steps`` passes as ``binary_search_steps`` (9) searches
    of ``steps // 9`` iterations, ``learning_rate`` (0.01), ``initial_const`` (0.001), ``abort_early`` (off, so that
    it spends its budget; adv-lib's default is on)."""

    name = "cw"
    TAGS = AttackTags("C&W-L2 (Carlini & Wagner 2017), 9 binary searches in the step budget, no early abort, adv-lib "
                      "(optional)", "minimal", ("l2",), needs=NEEDS, confidence=False, budget="steps",
                      test_settings={"steps": 180, "learning_rate": 0.05, "initial_const": 1.0})

    def __init__(self, *, steps: int = 100, binary_search_steps: int = 9, learning_rate: float = 0.01,
                 initial_const: float = 0.001, abort_early: bool = False, confidence: float = 0.0,
                 quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.binary_search_steps = check_int("binary_search_steps", binary_search_steps)
        if self.steps < self.binary_search_steps:
            raise ParameterError.of(MSG_PARAM, name="steps", expected=f"at least binary_search_steps = "
                                    f"{self.binary_search_steps}", got=steps)
        self.learning_rate = float(check_positive("learning_rate", learning_rate))
        self.initial_const = float(check_positive("initial_const", initial_const))
        self.abort_early = check_bool("abort_early", abort_early)

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.name)
        iters = self.steps // self.binary_search_steps
        return self._done(self._call(lib.carlini_wagner_l2, self._net(model), x, y,
                                     binary_search_steps=self.binary_search_steps, max_iterations=iters,
                                     learning_rate=self.learning_rate, initial_const=self.initial_const,
                                     abort_early=self.abort_early and iters >= 10))


class ALMA(_AdvLibAttack):
    """ALMA (adv-lib) with a distance (``ssim`` default, ``lpips``, ``ciede2000``, ``l2`` ...).

    Args:
        distance: adv-lib's distance name.
        steps: ALMA's ``num_steps`` (100).
        init_lr_distance: the first step's distance increase (default: the authors', :data:`ALMA_INIT_DISTANCE`).
        alpha: the moving averages' weight (default: 0.5 below 1000 steps, the authors' short-run value; 0.9 at
            1000 or more, adv-lib's default).
        mode: ``levels`` (256 levels inside its loop) or ``view`` (its authors' float iterate, on the 8-bit view).
        lpips_weights: the ImageNet AlexNet file for ``lpips`` (found or fetched when ``None``).

    Examples:
        >>> from imperceptible.attacks import ALMA
        >>> ALMA().label(), ALMA(distance="lpips", steps=1000).label(), ALMA(mode="view").label()
        ('alma[ssim]', 'alma[lpips,1000]', 'alma[ssim,view]')
    """

    name = "alma"
    HAS_LEVELS = True
    TAGS = AttackTags("ALMA (Rony et al. 2021), minimal SSIM (or LPIPS, CIEDE2000 ...) distance, 8-bit levels in its "
                      "loop or on the 8-bit view, adv-lib (optional)", "minimal", ("ssim_distance",), needs=NEEDS,
                      confidence=False, budget="steps", test_settings={"steps": 60, "distance": "l2"})

    def __init__(self, *, distance: str = "ssim", steps: int = 100, init_lr_distance: float | None = None,
                 alpha: float | None = None, mode: str | None = None, lpips_weights: str | None = None,
                 confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed, mode=mode)
        self.distance = check_option("distance", distance, ALMA_DISTANCES)
        lr = ALMA_INIT_DISTANCE.get(self.distance) if init_lr_distance is None else init_lr_distance
        self.init_lr_distance = None if lr is None else float(check_positive("init_lr_distance", lr))
        self.alpha = float(check_positive("alpha", alpha if alpha is not None else (0.5 if self.steps < 1000 else 0.9)))
        self._lpips_weights = lpips_weights

    def label(self) -> str:
        return f"alma[{','.join([self.distance, *self.tag()])}]"

    def optimises(self) -> tuple[str, ...]:
        """Its distance's metric (adv-lib's LPIPS is the unweighted AlexNet one: the judged LPIPS's family)."""
        key = {"msssim": "ms_ssim_distance"}.get(self.distance) or for_cost(self.distance)
        return (key,) if key else ()

    def run(self, model, x, y):
        lib = _adv_lib_attacks(self.label())
        from adv_lib.utils.lagrangian_penalties import all_penalties

        with self._distance_functions(x):
            adv = self._call(lib.alma, self._net(model), x, y, penalty=all_penalties["P2"], distance=self.distance,
                             num_steps=self.steps, init_lr_distance=self.init_lr_distance, α=self.alpha,
                             levels=self._levels())
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


class CandidateClasses(nn.Module):
    """``model``'s logits restricted to fixed classes per image (DeepFool's candidate classes): ``classes`` is
    ``(N, k)``, the label first; the attack then sees labels 0."""

    def __init__(self, model: nn.Module, classes: torch.Tensor) -> None:
        super().__init__()
        self.model, self.classes = model, classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).gather(1, self.classes[: x.shape[0]])


class SuperDeepFool(_AdvLibAttack):
    """SuperDeepFool (adv-lib's ``sdf``) on the 8-bit view of the model: ``steps`` (100), ``df_steps`` (100),
    ``overshoot`` (0.02), ``search_iter`` (10), ``candidates`` (10: DeepFool's own ``num_classes``; every class where
    the model has at most that many). See the module docstring."""

    name = "sdf"
    TAGS = AttackTags("SuperDeepFool (Abdollahpour et al. 2024), minimal L2, DeepFool over 10 candidate classes, on "
                      "the 8-bit view, adv-lib (optional)", "minimal", ("l2",), needs=NEEDS, confidence=False,
                      budget="steps", test_settings={"steps": 20}, float64=False)

    def __init__(self, *, steps: int = 100, df_steps: int = 100, overshoot: float = 0.02, search_iter: int = 10,
                 candidates: int = 10, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(steps=steps, confidence=confidence, quantize=quantize, seed=seed)
        self.df_steps = check_int("df_steps", df_steps)
        self.overshoot = float(check_positive("overshoot", overshoot))
        self.search_iter = check_int("search_iter", search_iter, minimum=0)
        self.candidates = check_int("candidates", candidates, minimum=2)

    def run(self, model, x, y):
        from adv_lib.attacks.superdeepfool import sdf

        _adv_lib_attacks(self.name)
        net = self._net(model)
        kw = dict(steps=self.steps, df_steps=self.df_steps, overshoot=self.overshoot, search_iter=self.search_iter)
        with torch.no_grad():
            logits = model(x)
        if logits.shape[1] <= self.candidates:
            return self._done(self._call(sdf, net, x, y, **kw))
        others = logits.scatter(1, y[:, None], float("-inf")).topk(self.candidates - 1, dim=1).indices
        classes = torch.cat([y[:, None], others], 1)
        out = x.clone()
        for j in range(x.shape[0]):  # the candidates are per image; adv-lib drops finished rows inside its loop
            with rows(model, torch.tensor([j], device=x.device)):
                zero = torch.zeros(1, dtype=torch.long, device=x.device)
                try:
                    out[j] = self._call(sdf, CandidateClasses(net, classes[j : j + 1]), x[j : j + 1], zero, **kw)[0]
                except BudgetExhausted:  # this image's budget is spent (its best query is the tracker's); the next
                    pass
        return self._done(out)


def adv_lib_available() -> bool:
    try:
        importlib.import_module("adv_lib.attacks")
    except ImportError:
        return False
    return True


__all__ = ["ALMA", "ALMA_INIT_DISTANCE", "DDN", "FMN", "MODES", "AdvLibMissingError", "CandidateClasses",
           "CarliniWagnerL2", "EightBitView", "MSG_NO_ADV_LIB", "SuperDeepFool", "adv_lib_available"]
