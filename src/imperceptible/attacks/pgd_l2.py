"""PGD with an L2 bound (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018, arXiv 1706.06083).

Defaults are torchattacks' ``PGDL2`` (3.5.1): ``eps = 1.0``, ``alpha = 0.2``, ``steps = 10``,
``random_start = True``; cross-entropy ascent with L2-normalised steps, projection onto the L2 ball,
clipping to ``[0, 1]``. Like every attack here it stops each sample at the first iterate whose margin
exceeds the confidence ``a`` (torchattacks runs all steps).
"""

from __future__ import annotations

import torch

from ..validation import check_bool, check_int, check_positive
from .base import Attack, l2_norm
from .loop import EarlyStop
from .tags import AttackTags


class PGDL2(Attack):
    """PGD-L2. Args: ``eps`` (L2 radius), ``alpha`` (step), ``steps``, ``random_start``, plus the common ones.

    Examples:
        >>> import torch
        >>> from imperceptible.attacks import PGDL2
        >>> from imperceptible.data import load
        >>> from imperceptible.models import get
        >>> model, ds = get("mnist-cnn"), load("mnist-test20")
        >>> res = PGDL2(eps=3.0, alpha=0.25, steps=40)(model, ds.images[:8], ds.labels[:8])
        >>> res.success_rate >= 0.75, bool(((res.adv_float - ds.images[:8]).flatten(1).norm(dim=1) <= 3.0 + 1e-4).all())
        (True, True)
    """

    name = "pgd-l2"
    TAGS = AttackTags("PGD with L2 bound (Madry et al. 2018; torchattacks defaults)", "bounded", ("l2",),
                      test_settings={"eps": 3.0, "alpha": 0.5, "steps": 20})

    def __init__(self, *, eps: float = 1.0, alpha: float = 0.2, steps: int = 10, random_start: bool = True,
                 confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.eps = float(check_positive("eps", eps))
        self.alpha = float(check_positive("alpha", alpha))
        self.steps = check_int("steps", steps, minimum=0)
        self.random_start = check_bool("random_start", random_start)

    def project(self, adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        delta = adv - x
        factor = (self.eps / l2_norm(delta)).clamp(max=1.0)
        return (x + delta * factor).clamp(0, 1)

    def run(self, model, x, y):
        adv = x.clone()
        if self.random_start:
            delta = self.sample_randn(x)
            # radius uniform in [0, eps], drawn from the same per-sample stream (Phi of one normal)
            r = 0.5 * (1 + torch.erf(self.sample_randn(x, stream=1)[:, :1, :1, :1] / 2**0.5))
            adv = self.project(x + delta / l2_norm(delta) * r * self.eps, x)
        loop = EarlyStop(self, model, adv, y, steps=self.steps)
        for s in loop:
            adv[s.idx] = self.project(adv[s.idx] + self.alpha * s.grad / l2_norm(s.grad), x[s.idx])
        return adv, loop.steps
