"""The cost interface: ``c(x, x0) -> (N,)``, differentiable in ``x``, zero when ``x == x0``."""

from __future__ import annotations

import contextlib
from typing import ClassVar

import torch
from torch import nn

from ..validation import check_images, check_positive, check_same_shape
from .tags import CostTags


@contextlib.contextmanager
def full_precision(device: torch.device | str | None = None):
    """Compute a perceptual distance in full precision: no autocast, and no TF32 in cuDNN's convolutions.

    SSIM-like distances subtract nearly equal filtered moments (``E[x^2] - mu^2``), so the 10-bit mantissa of
    TF32 (the default for convolutions on Ampere and later GPUs) or bf16 under autocast turns a 1 - SSIM of
    5e-4 into noise (measured on an H100: 1.5e-5 instead of 4.7e-4). On the CPU this changes nothing."""
    dev = torch.device(device) if device is not None else None
    cudnn = torch.backends.cudnn
    with contextlib.ExitStack() as stack:
        if dev is None or dev.type == "cuda":
            stack.enter_context(cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                                             deterministic=cudnn.deterministic, allow_tf32=False))
        if dev is not None:
            stack.enter_context(torch.autocast(device_type=dev.type, enabled=False))
        yield


def as_full_precision(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Cost(nn.Module):
    """Base class of every perceptual cost / distance.

    Subclasses implement :meth:`compute` on validated inputs scaled to ``[0, 1]``; the base class
    validates shapes, finiteness and the range ``[0, data_range]`` and rescales.

    Args:
        data_range: the images' maximum value (1.0 for ``[0, 1]`` images, 255 for 8-bit scale). Inputs
            are divided by it, so every cost (the Lp norms included) is in ``[0, 1]``-image units.
    """

    #: registry name
    name: str = "cost"
    #: True for costs backed by learned weights (PieAPP, LPIPS, DISTS)
    learned: bool = False
    #: what the cost declares about itself (:class:`~.tags.CostTags`): description, needs, differentiable, symmetric
    TAGS: ClassVar[CostTags] = CostTags("a cost")

    @classmethod
    def weight_status(cls) -> list[dict]:
        """Where each weights file it needs was looked for, and whether it was found (none: no weights)."""
        return []

    @classmethod
    def missing(cls) -> str | None:
        """Why it cannot be built here (a package or program it needs is absent), or ``None``."""
        return None

    @classmethod
    def available(cls, **options) -> bool:
        """Whether it can be built here with ``options``: nothing missing, and its weights found or fetchable."""
        return cls.missing() is None

    def __init__(self, *, data_range: float = 1.0) -> None:
        super().__init__()
        self.data_range = float(check_positive("data_range", data_range))

    def forward(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        check_images(x, "x", bounds=(0.0, self.data_range))
        check_images(x0, "x0", bounds=(0.0, self.data_range))
        check_same_shape(x, x0, "x, x0")
        return self.unchecked(x, x0)

    def unchecked(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The cost without the input checks, for callers that validated their inputs once (the attacks'
        inner loops: a check reads values back from the device every call)."""
        if self.data_range != 1.0:
            x, x0 = x / self.data_range, x0 / self.data_range
        with full_precision(x.device):
            return self.compute(as_full_precision(x), as_full_precision(x0))

    def compute(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def step_scale(self, x0: torch.Tensor) -> torch.Tensor | None:
        """How much change each sub-pixel of ``x0`` takes per unit of this cost, relative to the mean
        (``(N, C, H, W)``, mean 1 per image): the inverse of the diagonal of the cost's local quadratic form at
        ``x0``, the metric a minimal attack can take its steps in. ``None``: Euclidean (every sub-pixel alike)."""
        return None

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}"


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Repeat a grey channel three times (the colour-only metrics need RGB)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
