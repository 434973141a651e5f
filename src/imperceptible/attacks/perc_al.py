"""PerC-AL: Zhao, Liu & Larson, "Towards Large yet Imperceptible Adversarial Image Perturbations with
Perceptual Color Distance", CVPR 2020 (arXiv 1911.02466); algorithm and defaults from the authors' code
(ZhengyuZhao/PerC-Adversarial, ``perc_al.py``), which adv_lib's port follows line for line.

The perturbation ``delta`` is kept in floating point. Each iteration every sample takes one kind of step:
while not adversarial, an L2-normalised step of size ``alpha_l`` up the summed cross-entropy (at the float
iterate); once adversarial, an L2-normalised step of size ``alpha_c`` down the perceptual colour distance
``C2 = ||CIEDE2000 map||_2``. Both step sizes are cosine-annealed from their initial values to 1/100
(``alpha_l``) and 1/10 (``alpha_c``) of them. Only a *copy* of the iterate is rounded to 8 bits; that copy
decides "adversarial" for the next iteration and is what is kept: the best image is the rounded copy with
the smallest C2 among the adversarial ones, C2 taken (as in the authors' code) at the float iterate after
the loss step and before the colour step. The attack runs all iterations (no early exit); a sample's
``steps`` is the iteration of its best image.

Defaults (authors): ``max_iterations = 1000``, ``alpha_l_init = 1.0``; ``alpha_c_init = 0.1``, the value the
authors' code comments say the paper used for the "relatively easy untargeted case" (their class default 0.5
is for targeted attacks). "Adversarial" means margin > ``confidence`` (the shared rule of this project; the
authors hard-code a margin of 40 when any confidence is set). ``max_iterations`` is the knob for a CPU budget.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..costs.ciede2000 import ciede2000_map
from ..validation import check_int, check_positive
from .base import Attack, l2_norm, margin
from .counting import rows
from .tags import AttackTags


def perc_c2(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of the CIEDE2000 map."""
    return ciede2000_map(x, x0).flatten(1).pow(2).sum(1).clamp_min(1e-30).sqrt()


class PerCAL(Attack):
    """PerC-AL (see the module docstring).

    Args:
        max_iterations: iterations (authors: 1000).
        alpha_l_init: initial step up the cross-entropy (authors: 1.0).
        alpha_c_init: initial step down the colour distance (authors, untargeted: 0.1).
        confidence, quantize, seed: see :class:`~imperceptible.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from imperceptible.attacks import PerCAL
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
        >>> _ = torch.nn.init.constant_(net[1].bias, -2.0)  # logits, not probabilities (the model is probed)
        >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)).mul(255).round().div(255)
        >>> res = PerCAL(max_iterations=20)(net, x, net(x).argmax(1))
        >>> res.adv.shape, bool((res.adv * 255).round().eq(res.adv * 255).all())
        (torch.Size([2, 3, 8, 8]), True)
    """

    name = "perc-al"
    TAGS = AttackTags("PerC-AL (Zhao et al. 2020): alternating CE / CIEDE2000 steps", "minimal", ("ciede2000",),
                      budget="max_iterations", test_settings={"max_iterations": 100})

    def __init__(self, *, max_iterations: int = 1000, alpha_l_init: float = 1.0, alpha_c_init: float = 0.1,
                 confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.max_iterations = check_int("max_iterations", max_iterations)
        self.alpha_l_init = float(check_positive("alpha_l_init", alpha_l_init))
        self.alpha_c_init = float(check_positive("alpha_c_init", alpha_c_init))

    def run(self, model, x, y):
        T = self.max_iterations
        al_min, ac_min = self.alpha_l_init / 100, self.alpha_c_init / 10
        delta = torch.zeros_like(x)
        is_adv = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        best = x.clone()
        best_c2 = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        best_step = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for i in range(T):
            cos = 0.5 * (1 + math.cos(math.pi * i / T))
            alpha_c = ac_min + (self.alpha_c_init - ac_min) * cos
            alpha_l = al_min + (self.alpha_l_init - al_min) * cos
            if (~is_adv).any():
                d = delta.detach().requires_grad_(True)
                with torch.enable_grad(), rows(model, (~is_adv).nonzero().squeeze(1)):
                    loss = F.cross_entropy(model((x + d)[~is_adv]), y[~is_adv], reduction="sum")
                    (g_l,) = torch.autograd.grad(loss, d)
                delta = delta + alpha_l * (~is_adv).view(-1, 1, 1, 1) * g_l / l2_norm(g_l)
            d = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                c2 = perc_c2(x + d, x)
                (g_c,) = torch.autograd.grad(c2.sum(), d) if is_adv.any() else (None,)
            if g_c is not None:
                delta = delta - alpha_c * is_adv.view(-1, 1, 1, 1) * g_c / l2_norm(g_c)
            delta = ((x + delta).clamp(0, 1) - x).detach()
            xq = self.returned(x + delta)
            with torch.no_grad():
                is_adv = margin(model(xq), y) > self.confidence
            c2 = c2.detach()
            better = is_adv & (c2 < best_c2)
            best[better] = xq[better]
            best_c2[better] = c2[better]
            best_step[better] = i + 1
        return best, best_step
