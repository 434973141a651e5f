"""A plain, seeded training loop for image classifiers (with optional per-sample weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..validation import check_images, check_int, check_labels, check_positive


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels (zero padding): cheap augmentation for digits."""
    if max_shift <= 0:
        return x
    n = x.shape[0]
    pad = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    h, w = x.shape[-2:]
    return torch.stack([pad[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train_classifier(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    max_shift: int = 0,
    sample_weight: torch.Tensor | None = None,
    optimizer: str = "adam",
    momentum: float = 0.9,
    progress: bool = True,
    desc: str = "train",
    preprocess=None,
    adversarial: dict | None = None,
) -> nn.Module:
    """Train ``net`` on ``x`` (``[0, 1]``) and ``y`` with cross-entropy; returns it in eval mode.

    ``preprocess`` maps a ``[0, 1]`` batch to the network's input (e.g. a wrapper's ``prepare``).
    ``sample_weight`` scales each sample's loss (normalised to mean 1 over the batch).
    ``adversarial`` (``{"eps": .., "steps": .., "alpha": ..}``) trains on PGD-L2 examples of every batch instead
    of the batch itself (Madry et al. 2018), made by :func:`pgd_l2_examples`.
    Randomness (shuffling, augmentation) comes only from ``seed``; global RNGs are untouched.
    """
    check_images(x, "x")
    y = check_labels(y, x.shape[0])
    check_int("epochs", epochs, minimum=0)
    check_positive("lr", lr)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout inside the forked RNG only; restored on exit
        opt: torch.optim.Optimizer
        if optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
        net.train()
        n = x.shape[0]
        steps = epochs * ((n + batch_size - 1) // batch_size)
        bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                xb = random_shift(x[idx], max_shift, g)
                if adversarial is not None:
                    net.eval()  # the examples against the network as it stands (no dropout)
                    xb = pgd_l2_examples(net, xb, y[idx], generator=g, preprocess=preprocess, **adversarial)
                    net.train()
                if preprocess is not None:
                    xb = preprocess(xb)
                loss = F.cross_entropy(net(xb), y[idx], reduction="none")
                if sample_weight is not None:
                    w = sample_weight[idx]
                    loss = loss * (w / w.mean())
                opt.zero_grad()
                loss.mean().backward()
                opt.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.mean().item():.3f}")
        bar.close()
    return net.eval()


def pgd_l2_examples(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float,
                    generator: torch.Generator, preprocess=None) -> torch.Tensor:
    """PGD-L2 training examples (Madry et al. 2018): a random start in the ``eps`` ball, ``steps`` normalised
    cross-entropy ascent steps of ``alpha``, projected onto the ball and ``[0, 1]``. The library's attack
    (:class:`imperceptible.attacks.PGDL2`) sits above this package; a training recipe needs only these lines."""
    def norm(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)

    d = torch.randn(x.shape, generator=generator)
    d = d / norm(d) * eps * torch.rand(x.shape[0], 1, 1, 1, generator=generator)
    adv = (x + d).clamp(0, 1)
    for _ in range(steps):
        xi = adv.detach().requires_grad_(True)
        logits = net(preprocess(xi) if preprocess is not None else xi)
        (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xi)
        delta = adv + alpha * g / norm(g) - x
        adv = (x + delta * (eps / norm(delta)).clamp(max=1.0)).clamp(0, 1).detach()
    return adv


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        correct += (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
    return correct / max(1, x.shape[0])
