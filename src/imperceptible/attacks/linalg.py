"""Linear algebra the attacks share: a batched conjugate-gradient solver (the one-step SSIM attack's
``(H + mu I) D = g`` and PPGD's ``(J^T J) v = grad``)."""

from __future__ import annotations

import torch


def conjugate_gradient(matvec, b: torch.Tensor, *, iters: int = 50, tol: float = 1e-6) -> tuple[torch.Tensor, int]:
    """Batched CG for SPD systems ``A x = b``, one system per sample, each stopped on its own (relative
    residual below ``tol``, or a non-positive curvature): a sample's solution does not depend on the
    batch it is in. Returns (x, iterations run)."""
    xk = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = r.flatten(1).pow(2).sum(1)
    b_norm = b.flatten(1).norm(dim=1).clamp_min(1e-30)
    shape = (-1,) + (1,) * (b.dim() - 1)
    active = rs.sqrt() / b_norm >= tol
    k = 0
    for k in range(1, iters + 1):
        if not bool(active.any()):
            k -= 1
            break
        Ap = matvec(p)
        pAp = (p * Ap).flatten(1).sum(1)
        active = active & (pAp > 0)
        alpha = torch.where(active, rs / pAp.clamp_min(1e-30), torch.zeros_like(rs))
        xk = xk + alpha.view(shape) * p
        r = r - alpha.view(shape) * Ap
        rs_new = r.flatten(1).pow(2).sum(1)
        active = active & (rs_new.sqrt() / b_norm >= tol)
        beta = torch.where(active, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
        p = torch.where(active.view(shape), r + beta.view(shape) * p, p)
        rs = torch.where(active, rs_new, rs)
    return xk, k
