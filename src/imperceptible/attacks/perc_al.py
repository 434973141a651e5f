"""PerC-AL: Zhao, Liu & Larson, "Towards Large yet Imperceptible Adversarial Image Perturbations with
Perceptual Color Distance", CVPR 2020 (arXiv 1911.02466); algorithm and defaults from the authors'
code (ZhengyuZhao/PerC-Adversarial, ``perc_al.py``; also adv_lib's batched port).

Each iteration every sample takes one kind of step: while not adversarial, an L2-normalised step of
size ``alpha_l`` up the cross-entropy; once adversarial, an L2-normalised step of size ``alpha_c`` down
the perceptual colour distance ``C2 = ||CIEDE2000 map||_2``. Both step sizes are cosine-annealed from
their initial values to 1/100 (``alpha_l``) and 1/10 (``alpha_c``) of them. The perturbation is
rounded to 8 bits every iteration and the best (smallest C2) adversarial image is kept.

Defaults (authors): ``max_iterations = 1000``, ``alpha_l_init = 1.0``, ``alpha_c_init = 0.5``. "Adversarial"
here means margin > ``confidence`` (the shared rule; the authors hard-code a threshold of 40 when a
confidence is set). PerC-AL deliberately keeps refining after success, so it has no early exit; a
sample's ``steps`` is the iteration of its best image. ``max_iterations`` is the knob for a CPU budget.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..costs.ciede2000 import ciede2000_map
from ..validation import check_int, check_positive
from .base import Attack, l2_norm, margin, quantize_8bit


def perc_c2(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of the CIEDE2000 map."""
    return ciede2000_map(x, x0).flatten(1).pow(2).sum(1).clamp_min(1e-30).sqrt()


class PerCAL(Attack):
    name = "perc-al"

    def __init__(self, *, max_iterations: int = 1000, alpha_l_init: float = 1.0, alpha_c_init: float = 0.5,
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
        best_c2 = torch.full((x.shape[0],), float("inf"), device=x.device)
        best_step = torch.zeros(x.shape[0], dtype=torch.long)
        for i in range(T):
            cos = 0.5 * (1 + math.cos(math.pi * i / T))
            alpha_c = ac_min + (self.alpha_c_init - ac_min) * cos
            alpha_l = al_min + (self.alpha_l_init - al_min) * cos
            d = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                xa = x + d
                if (~is_adv).any():
                    loss = F.cross_entropy(model(xa[~is_adv]), y[~is_adv], reduction="sum")
                    (g_l,) = torch.autograd.grad(loss, d)
                    delta = delta + alpha_l * (~is_adv).view(-1, 1, 1, 1) * g_l / l2_norm(g_l)
                if is_adv.any():
                    c2 = perc_c2(xa[is_adv], x[is_adv]).sum()
                    (g_c,) = torch.autograd.grad(c2, d)
                    delta = delta - alpha_c * is_adv.view(-1, 1, 1, 1) * g_c / l2_norm(g_c)
            delta = (x + delta).clamp(0, 1) - x
            xq = quantize_8bit(x + delta) if self.quantize else x + delta
            delta = (xq - x).detach()
            with torch.no_grad():
                is_adv = margin(model(xq), y) > self.confidence
                c2_now = perc_c2(xq, x)
            better = is_adv & (c2_now < best_c2)
            best[better] = xq[better]
            best_c2[better] = c2_now[better]
            best_step[better.cpu()] = i + 1
        return best, best_step
