"""PPGD and LPA: Laidlaw, Singla & Feizi, "Perceptual Adversarial Robustness: Defense Against Unseen
Threat Models", ICLR 2021 (arXiv 2006.12655); algorithms and defaults from the authors' code
(cassidylaidlaw/perceptual-advex, ``perceptual_attacks.py``).

Both bound the LPIPS distance of :mod:`.feature_lpips` by ``bound`` (0.5) and maximise the margin loss
``min(max_{j != y} z_j - z_y, kappa)`` (``kappa = 1``). The LPIPS network is ``lpips_model``: ``self``
(the attacked model's features; needs no extra weights; the default here, and named
``ppgd[self]`` / ``lpa[self]`` in results) or ``alexnet`` (the authors' ImageNet setting; needs
torchvision's AlexNet file).

PPGD (``PerceptualPGDAttack``): ``steps`` iterations (evaluation setting: 40; the class default is 5) of
the step ``eps_s = 2 bound / steps`` along ``v``, the solution of ``(J^T J) v = grad`` by ``cg_iterations``
(5) conjugate-gradient steps, ``J^T J v`` from a finite-difference Jacobian-vector product (``h = 1e-3``),
scaled so that ``||J delta|| = eps_s``; then a projection back onto the LPIPS ball.

LPA (``LagrangePerceptualAttack``): ``binary_steps`` (5) rounds of ``steps`` (40) normalised descent steps
on ``-margin + lambda * relu(d - bound)`` of size ``eta_t = bound * 0.1^(t/steps)`` in LPIPS units
(finite difference, ``h = 0.1``); ``lambda`` starts at 0.01 and is multiplied by 10 for samples still
over the bound after a round; a final Newton projection puts over-bound samples on the ball.

Early stop (shared rule, which also avoids perceptual-advex issue #6): a sample stops at the first
iterate with margin > ``confidence`` inside the bound.
"""

from __future__ import annotations

import torch

from ..validation import check_int, check_positive
from .base import ActiveSet, Attack, l2_norm, margin
from .feature_lpips import FeatureLPIPS
from .onestep import conjugate_gradient


def _lpips_grad(fl: FeatureLPIPS, x: torch.Tensor, phi0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xi = x.detach().requires_grad_(True)
    with torch.enable_grad():
        d = fl.distance(xi, phi0)
        (g,) = torch.autograd.grad(d.sum(), xi)
    return d.detach(), g


def project_lpips(fl: FeatureLPIPS, adv: torch.Tensor, x: torch.Tensor, phi0: torch.Tensor, bound: float,
                  newton_steps: int = 10, bisection_steps: int = 10) -> torch.Tensor:
    """Move samples with ``d(x, adv) > bound`` back inside the ball: Newton steps on ``d = bound``
    (perceptual-advex's ``NewtonsPerceptualProjection``), then bisection on the segment to ``x`` for any
    still outside, so the result is always inside."""
    adv = adv.clone()
    for _ in range(newton_steps):
        with torch.no_grad():
            d = fl.distance(adv, phi0)
        over = d > bound
        if not over.any():
            return adv
        idx = over.nonzero().squeeze(1)
        dv, g = _lpips_grad(fl, adv[idx], phi0[idx])
        step = (1.1 * (dv - bound)).view(-1, 1, 1, 1) * g / l2_norm(g) ** 2
        adv[idx] = (adv[idx] - step).clamp(0, 1)
    with torch.no_grad():
        d = fl.distance(adv, phi0)
        over = (d > bound).nonzero().squeeze(1)
        if over.numel():
            lo = torch.zeros(over.numel(), device=x.device)
            hi = torch.ones(over.numel(), device=x.device)
            for _ in range(bisection_steps):
                mid = (lo + hi) / 2
                cand = x[over] + mid.view(-1, 1, 1, 1) * (adv[over] - x[over])
                inside = fl.distance(cand, phi0[over]) <= bound
                lo = torch.where(inside, mid, lo)
                hi = torch.where(inside, hi, mid)
            adv[over] = x[over] + lo.view(-1, 1, 1, 1) * (adv[over] - x[over])
    return adv


class _LPIPSBounded(Attack):
    """What PPGD and LPA share: the LPIPS ball (``bound``), the margin cap ``kappa``, the finite-difference
    size ``h``, the feature network, and a result label naming it."""

    def __init__(self, *, bound: float, steps: int, h: float, kappa: float, lpips_model: str, lpips_weights,
                 confidence: float, quantize: bool, seed: int) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.bound = float(check_positive("bound", bound))
        self.steps = check_int("steps", steps)
        self.h = float(check_positive("h", h))
        self.kappa = float(check_positive("kappa", kappa))
        self.lpips_model = lpips_model
        self._weights = lpips_weights

    def label(self) -> str:
        return f"{self.name}[{self.lpips_model}]"

    def features(self, model, x: torch.Tensor) -> tuple[FeatureLPIPS, torch.Tensor]:
        fl = FeatureLPIPS(model, self.lpips_model, self._weights)
        with torch.no_grad():
            return fl, fl.phi(x)


class PPGD(_LPIPSBounded):
    name = "ppgd"

    def __init__(self, *, bound: float = 0.5, steps: int = 40, cg_iterations: int = 5, h: float = 1e-3,
                 kappa: float = 1.0, lpips_model: str = "self", lpips_weights=None, confidence: float = 0.0,
                 quantize: bool = True, seed: int = 0) -> None:
        super().__init__(bound=bound, steps=steps, h=h, kappa=kappa, lpips_model=lpips_model,
                         lpips_weights=lpips_weights, confidence=confidence, quantize=quantize, seed=seed)
        self.cg_iterations = check_int("cg_iterations", cg_iterations)

    def run(self, model, x, y):
        fl, phi0 = self.features(model, x)
        eps_s = 2 * self.bound / self.steps
        adv = (x + 0.01 * self.sample_randn(x)).clamp(0, 1)
        adv = project_lpips(fl, adv, x, phi0, self.bound)
        act = ActiveSet(x.shape[0], x.device)
        for k in range(self.steps + 1):
            i = act.active
            logits, g = self.logits_and_grad(model, adv[i], y[i], loss="margin", kappa=self.kappa)
            running = ~self.finished(logits, y[i])
            act.keep(running)
            if k == self.steps or len(act) == 0:
                break
            i, g = act.active, g[running]
            xi = adv[i].detach().requires_grad_(True)
            with torch.enable_grad():
                p = fl.phi(xi)

                def jtj(v: torch.Tensor) -> torch.Tensor:
                    with torch.no_grad():
                        jv = (fl.phi(xi + self.h * v) - p) / self.h
                    (out,) = torch.autograd.grad((p * jv).sum(), xi, retain_graph=True)
                    return out

                v, _ = conjugate_gradient(jtj, g, iters=self.cg_iterations, tol=1e-10)
            with torch.no_grad():
                jv_norm = ((fl.phi(adv[i] + self.h * v) - p.detach()) / self.h).norm(dim=1).clamp_min(1e-12)
            moving = g.flatten(1).norm(dim=1) > 1e-4
            delta = eps_s * v / jv_norm.view(-1, 1, 1, 1) * moving.view(-1, 1, 1, 1)
            adv[i] = project_lpips(fl, (adv[i] + delta).clamp(0, 1), x[i], phi0[i], self.bound)
            act.step()
        return adv, act.steps


class LPA(_LPIPSBounded):
    name = "lpa"

    def __init__(self, *, bound: float = 0.5, steps: int = 40, binary_steps: int = 5, h: float = 0.1,
                 kappa: float = 1.0, lam_init: float = 0.01, lpips_model: str = "self", lpips_weights=None,
                 confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(bound=bound, steps=steps, h=h, kappa=kappa, lpips_model=lpips_model,
                         lpips_weights=lpips_weights, confidence=confidence, quantize=quantize, seed=seed)
        self.binary_steps = check_int("binary_steps", binary_steps)
        self.lam_init = float(check_positive("lam_init", lam_init))

    def run(self, model, x, y):
        fl, phi0 = self.features(model, x)
        n = x.shape[0]
        lam = torch.full((n,), self.lam_init, device=x.device)
        out = x.clone()
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        steps = torch.zeros(n, dtype=torch.long, device=x.device)
        for _ in range(self.binary_steps):
            adv = x.clone()
            act = ActiveSet(n, x.device)
            act.keep(~done)
            for t in range(self.steps + 1):
                i = act.active
                xi = adv[i].detach().requires_grad_(True)
                with torch.enable_grad():
                    logits = model(self.view(xi))
                    d = fl.distance(xi, phi0[i])
                    m = margin(logits, y[i])
                    fin = (m > self.confidence) & (d <= self.bound)
                    loss = (-m.clamp(max=self.kappa) + lam[i] * torch.relu(d - self.bound)).sum()
                    (g,) = torch.autograd.grad(loss, xi)
                done[i[fin]] = True
                out[i[fin]] = adv[i[fin]]
                running = ~fin.detach()
                act.keep(running)
                if t == self.steps or len(act) == 0:
                    break
                i, g, xi = act.active, g[running], adv[act.active]
                ghat = g / l2_norm(g)
                with torch.no_grad():
                    speed = (fl.phi(xi - self.h * ghat) - fl.phi(xi)).norm(dim=1) / self.h
                eta = self.bound * 0.1 ** (t / self.steps)
                adv[i] = (xi - eta * ghat / speed.clamp_min(1e-12).view(-1, 1, 1, 1)).clamp(0, 1)
                act.step()
            steps += act.steps
            left = (~done).nonzero().squeeze(1)
            if left.numel() == 0:
                break
            with torch.no_grad():
                over = fl.distance(adv[left], phi0[left]) >= self.bound
            lam[left[over]] *= 10
            out[left] = adv[left]
        left = (~done).nonzero().squeeze(1)
        if left.numel():
            out[left] = project_lpips(fl, out[left], x[left], phi0[left], self.bound)
        return out, steps
