"""The one-step attacks of the paper's §3.1 (equation 5, Appendix A) and their comparison.

``ssim-onestep``: ``x_adv = x + eps * D / ||D||_2`` with ``D = (1/lambda) H^{-1} grad_x loss``, where
``H`` is the Hessian of ``d_x(D) = 1 - SSIM(x, x + D)`` at ``D = 0``. ``H`` is positive semi-definite and
may be singular, so we solve the damped system ``(H + mu I) D = g`` with
``mu = damping * tr(H) / n`` (the trace estimated with Hutchinson probes, so the damping is relative to
``H``'s scale). Two solvers:

* ``dense``: build ``H`` column by column from Hessian-vector products (batched over basis vectors)
  and solve by Cholesky: exact, for small images (MNIST 1x28x28: 784 columns); refused above
  :data:`DENSE_MAX_VALUES` values per image (CIFAR's 3x32x32; ``H`` alone is ``4 n^2`` bytes per image:
  38 MB there, 90.6 GB for a 3x224x224 ImageNet image), before anything is allocated;
* ``cg``: matrix-free conjugate gradient on Hessian-vector products (double backward through SSIM),
  for any image size and batch. The paper calls the method "only practical with small images"; the
  CG solver lifts that (one HVP costs about two SSIM gradients).

``pgd-onestep``: one L2-normalised gradient step ``x + eps * g / ||g||_2`` at the same ``eps``.
Paper: ``eps = 10`` on ``[0, 1]`` MNIST for both (Figure 3).

These are single steps: ``steps`` is 1 for every attacked sample and ``confidence`` only decides which
samples are left alone (already misclassified with margin above it).
"""

from __future__ import annotations

import torch

from ..costs.ssim import ssim_raw
from ..errors import MSG_DENSE_TOO_BIG, ParameterError
from ..validation import check_int, check_option, check_positive
from .base import Attack, l2_norm
from .linalg import conjugate_gradient
from .tags import AttackTags

#: the most values (C x H x W) per image the dense solver takes: CIFAR-10's 3x32x32 (its Hessian: 38 MB per image)
DENSE_MAX_VALUES = 3 * 32 * 32


def check_dense_size(shape) -> None:
    """Refuse the dense solver for images of ``shape`` (``(..., C, H, W)``) above :data:`DENSE_MAX_VALUES` values,
    naming the size, the memory its Hessian would take and ``--solver cg``."""
    c, h, w = (int(v) for v in tuple(shape)[-3:])
    n = c * h * w
    if n > DENSE_MAX_VALUES:
        raise ParameterError.of(MSG_DENSE_TOO_BIG, limit=DENSE_MAX_VALUES, gb=4 * n * n / 1e9, c=c, h=h, w=w, n=n)


class PGDOneStep(Attack):
    """One normalised L2 gradient step of size ``eps`` (paper: 10 on MNIST).

    Examples:
        >>> from imperceptible.attacks import PGDOneStep
        >>> from imperceptible.data import load
        >>> from imperceptible.models import get
        >>> model, ds = get("mnist-cnn"), load("mnist-test20")
        >>> res = PGDOneStep(eps=10)(model, ds.images[:4], ds.labels[:4])
        >>> res.steps.tolist()
        [1, 1, 1, 1]
    """

    name = "pgd-onestep"
    TAGS = AttackTags("one L2-normalised gradient step", "one-step", ("l2",), test_settings={"eps": 10.0})

    def __init__(self, *, eps: float = 10.0, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.eps = float(check_positive("eps", eps))

    def run(self, model, x, y):
        _, g = self.logits_and_grad(model, x, y)
        return (x + self.eps * g / l2_norm(g)).clamp(0, 1), torch.ones(x.shape[0], dtype=torch.long)


def ssim_hvp(x: torch.Tensor, v: torch.Tensor, kernel_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """``H_x v`` per sample, ``H_x`` the Hessian of ``D -> 1 - SSIM(x, x + D)`` at ``D = 0``."""
    d = torch.zeros_like(x, requires_grad=True)
    with torch.enable_grad():
        c = (1 - ssim_raw(x + d, x, kernel_size=kernel_size, sigma=sigma)).sum()
        (gd,) = torch.autograd.grad(c, d, create_graph=True)
        (hv,) = torch.autograd.grad((gd * v).sum(), d)
    return hv


def dense_hessian(x: torch.Tensor, kernel_size: int = 11, sigma: float = 1.5, chunk: int = 1024) -> torch.Tensor:
    """The full Hessian ``(N, n, n)`` of ``1 - SSIM`` at ``D = 0`` (``n = C*H*W``), from HVPs with basis
    vectors, batched. Memory ``N n^2``: for small images only."""
    N = x.shape[0]
    n = x[0].numel()
    H = torch.empty(N, n, n, dtype=x.dtype, device=x.device)
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    for s in range(N):
        for j in range(0, n, chunk):
            e = eye[j : j + chunk].view(-1, *x.shape[1:])
            H[s, :, j : j + chunk] = ssim_hvp(x[s : s + 1].expand_as(e).contiguous(), e, kernel_size, sigma) \
                .flatten(1).T
    return H


def hutchinson_trace(x: torch.Tensor, probes: list[torch.Tensor], kernel_size=11, sigma=1.5):
    """Per-sample estimate of ``tr(H)`` from Rademacher ``probes`` (tensors of +-1 shaped like ``x``)."""
    tr = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for v in probes:
        tr += (ssim_hvp(x, v, kernel_size, sigma) * v).flatten(1).sum(1)
    return tr / len(probes)


class SSIMOneStep(Attack):
    """Equation 5 with ``c0 = 1 - SSIM``.

    Args:
        eps: L2 size of the step (paper: 10 on MNIST).
        lam: lambda (scales ``D`` but not the normalised step; kept for completeness).
        solver: ``cg`` (matrix-free, any size) or ``dense`` (exact, small images).
        damping: ``mu = damping * tr(H)/n`` added to ``H``'s diagonal (default 1e-3).
        cg_iters, cg_tol: conjugate-gradient budget and relative residual tolerance.
        kernel_size, sigma: the SSIM window (11 / 1.5; 7 suits 28x28 digits too).

    Examples:
        >>> from imperceptible.attacks import SSIMOneStep
        >>> from imperceptible.costs import ssim
        >>> from imperceptible.data import load
        >>> from imperceptible.models import get
        >>> model, ds = get("mnist-cnn"), load("mnist-test20")
        >>> x, y = ds.images[:2], ds.labels[:2]
        >>> res = SSIMOneStep(eps=10, kernel_size=7, cg_iters=30)(model, x, y)
        >>> bool((ssim(res.adv, x, kernel_size=7) > 0.3).all())
        True
    """

    name = "ssim-onestep"
    TAGS = AttackTags("equation 5: one step along (H_SSIM + mu I)^-1 grad loss (dense or CG solver)", "one-step",
                      ("ssim_distance",), test_settings={"eps": 10.0, "kernel_size": 7, "cg_iters": 20})

    def __init__(self, *, eps: float = 10.0, lam: float = 1.0, solver: str = "cg", damping: float = 1e-3,
                 cg_iters: int = 100, cg_tol: float = 1e-5, trace_probes: int = 4, kernel_size: int = 11,
                 sigma: float = 1.5, confidence: float = 0.0, quantize: bool = True, seed: int = 0) -> None:
        super().__init__(confidence=confidence, quantize=quantize, seed=seed)
        self.eps = float(check_positive("eps", eps))
        self.lam = float(check_positive("lam", lam))
        self.solver = check_option("solver", solver, ("cg", "dense"))
        self.damping = float(check_positive("damping", damping))
        self.cg_iters = check_int("cg_iters", cg_iters)
        self.cg_tol = float(check_positive("cg_tol", cg_tol))
        self.trace_probes = check_int("trace_probes", trace_probes)
        self.kernel_size, self.sigma = kernel_size, sigma
        self.last_cg_iters = 0

    def direction(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``D = (1/lambda) (H + mu I)^{-1} g`` per sample."""
        if self.solver == "dense":
            check_dense_size(x.shape)  # before any work: its Hessian grows as the square of the image
        n = x[0].numel()
        probes = [torch.sign(self.sample_randn(x, stream=s)) for s in range(self.trace_probes)]
        tr = hutchinson_trace(x, probes, self.kernel_size, self.sigma)
        mu = (self.damping * tr.clamp_min(0) / n).clamp_min(1e-12)
        if self.solver == "dense":
            H = dense_hessian(x, self.kernel_size, self.sigma)
            A = H + mu.view(-1, 1, 1) * torch.eye(n, dtype=x.dtype, device=x.device)
            # H + mu I is symmetric positive definite: Cholesky (batched LU solve hangs in some MKL builds
            # when the thread count is set explicitly)
            D = torch.cholesky_solve(g.flatten(1)[..., None], torch.linalg.cholesky(A))[..., 0].view_as(g)
        else:
            def matvec(v):
                return ssim_hvp(x, v, self.kernel_size, self.sigma) + mu.view(-1, 1, 1, 1) * v

            D, self.last_cg_iters = conjugate_gradient(matvec, g, iters=self.cg_iters, tol=self.cg_tol)
        return D / self.lam

    def run(self, model, x, y):
        _, g = self.logits_and_grad(model, x, y)
        D = self.direction(x, g)
        return (x + self.eps * D / l2_norm(D)).clamp(0, 1), torch.ones(x.shape[0], dtype=torch.long)
