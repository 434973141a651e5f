"""The classifier wrapper: models take ``[0, 1]`` images; normalisation and resizing live here.

Attacks and metrics never normalise. The wrapper refuses a model in training mode and inputs out of
``[0, 1]`` (typed errors from :mod:`imperceptible.validation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_eval_mode, check_images


class Scripted(nn.Module):
    """A TorchScript network inside a plain module, so that forward hooks (the pass counter's) can be set on it."""

    def __init__(self, scripted: nn.Module) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, x: torch.Tensor):
        return self.scripted(x)


class ImageClassifier(nn.Module):
    """Wrap ``net`` so it takes ``(N, C, H, W)`` images in ``[0, 1]`` and returns logits ``(N, K)``.

    Args:
        net: the network, expecting normalised input at ``input_size``.
        mean, std: per-channel normalisation ``(x - mean) / std`` applied inside.
        input_size: ``(H, W)`` the network expects; other sizes are resized inside (``None``: no resizing).
        interpolation: how (``bilinear``, ``bicubic`` or ``nearest``; a timm model's own).
        crop_pct: when given, an image of another size is resized so that its shorter side is
            ``input_size / crop_pct`` and the centre ``input_size`` cropped (timm's and torchvision's evaluation
            transform); ``None``: resized to ``input_size`` whole.
        num_classes: number of logits (``None`` when unknown, e.g. a TorchScript model).
        name: registry name, for reports.
        feature_modules: sub-modules whose outputs are the model's "features" (used by the LPIPS
            "self" distance of PPGD/LPA); default: evenly spaced convolution layers.
    """

    mean: torch.Tensor  # buffers (registered in __init__)
    std: torch.Tensor
    luma: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        num_classes: int | None,
        input_size: tuple[int, int] | None = None,
        name: str = "model",
        feature_modules: Sequence[nn.Module] | None = None,
        check_inputs: bool = True,
        interpolation: str = "bilinear",
        crop_pct: float | None = None,
    ) -> None:
        """See the class docstring.

        Examples:
            >>> import torch
            >>> from imperceptible.models import ImageClassifier
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            >>> m = ImageClassifier(net, mean=(0.5,) * 3, std=(0.5,) * 3, num_classes=2, input_size=(4, 4))
            >>> m(torch.rand(1, 1, 8, 8)).shape  # grey repeated to RGB, resized to 4x4 inside
            torch.Size([1, 2])
        """
        super().__init__()
        # a TorchScript module takes no Python hooks (the pass counter needs one): held in a plain module
        self.net = Scripted(net) if isinstance(net, torch.jit.ScriptModule) else net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)
        self.num_classes = num_classes
        self.input_size: tuple[int, ...] | None = tuple(input_size) if input_size else None
        self.name = name
        self.check_inputs = check_inputs
        self.interpolation = interpolation
        self.crop_pct = crop_pct
        self._feature_modules = list(feature_modules) if feature_modules is not None else None
        self.eval()

    @property
    def in_channels(self) -> int:
        return self.mean.shape[1]

    def describe(self) -> dict:
        """What the wrapper does to inputs (for run records and reports)."""
        return {"name": self.name, "in_channels": self.in_channels, "num_classes": self.num_classes,
                "input_size": list(self.input_size) if self.input_size else None,
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "interpolation": self.interpolation, "crop_pct": self.crop_pct,
                "channel_rule": "grey repeated to RGB / RGB to luma, as the network needs"}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Cast to the network's dtype, resize, match its channels and normalise ``x`` (no checks): grey
        images are repeated for an RGB network; RGB images become luma (0.299 R + 0.587 G + 0.114 B) for
        a grey one."""
        if x.dtype != self.mean.dtype:
            x = x.to(self.mean.dtype)
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = self._resize(x, self.input_size)
        if x.shape[1] == 1 and self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.in_channels == 1:
            x = (x * self.luma.to(x.dtype)).sum(1, keepdim=True)
        return (x - self.mean) / self.std

    def _resize(self, x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        mode = {"bilinear": "bilinear", "bicubic": "bicubic"}.get(self.interpolation, "nearest")
        kw = {"align_corners": False} if mode != "nearest" else {}
        if self.crop_pct is None:
            return F.interpolate(x, size=size, mode=mode, **kw)
        h, w = x.shape[-2:]
        th, tw = size
        s = (min(th, tw) / self.crop_pct) / min(h, w)
        nh, nw = max(th, round(h * s)), max(tw, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode=mode, **kw)
        top, left = (nh - th) // 2, (nw - tw) // 2
        return x[..., top : top + th, left : left + tw]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.check_inputs:
            check_images(x, "x")
            check_eval_mode(self, self.name)
        return self.logits(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits without the input checks, for callers that validated ``x`` once (an attack checks
        its input at entry, then calls this in its loop: a check reads values back from the device)."""
        return self.net(self.prepare(x))

    def feature_modules(self) -> list[nn.Module]:
        if self._feature_modules is not None:
            return self._feature_modules
        convs = [m for m in self.net.modules() if isinstance(m, nn.Conv2d)]
        k = min(5, len(convs))
        idx = [round(i * (len(convs) - 1) / max(k - 1, 1)) for i in range(k)]
        return [convs[i] for i in sorted(set(idx))]

    def features_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The outputs of :meth:`feature_modules` and the logits, in one forward pass. No range check:
        finite-difference probes (PPGD/LPA) may step slightly outside ``[0, 1]``."""
        feats: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: feats.append(out)) for m in self.feature_modules()]
        try:
            logits = self.net(self.prepare(x))
        finally:
            for h in hooks:
                h.remove()
        return feats, logits

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Predicted labels, batched."""
        return torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
