"""Local weight files: where we look for them, and safe loading.

Nothing here downloads (:mod:`imperceptible.backbones` fetches the ImageNet backbones). A weights file is found, in this order, at

1. the path given explicitly (an argument),
2. the path (file, or folder holding the file) in a per-part environment variable,
3. the folder ``$IMPERCEPTIBLE_WEIGHTS``,
4. the torch hub cache ``$TORCH_HOME/hub/checkpoints`` (where torchvision and friends put downloads),

and loaded with ``torch.load(..., weights_only=True)`` (or safetensors): no arbitrary unpickling.
A missing file raises :class:`~imperceptible.validation.WeightsNotFoundError` naming the file and
every place searched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import (
    MSG_WEIGHTS_BAD_FILE,
    MSG_WEIGHTS_MISMATCH,
    MSG_WEIGHTS_NOT_FOUND,
    DTypeError,
    WeightsMismatchError,
    WeightsNotFoundError,
)

WEIGHTS_ENV = "IMPERCEPTIBLE_WEIGHTS"


def hub_checkpoint_dir() -> Path:
    """The torch hub cache folder for checkpoints (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass(frozen=True)
class WeightSpec:
    """Where the weights of one part live: a file name, and the env variable that may point at it."""

    what: str
    filename: str
    env: str | tuple[str, ...] | None = None

    @property
    def envs(self) -> tuple[str, ...]:
        return (self.env,) if isinstance(self.env, str) else tuple(self.env or ())

    def candidates(self, explicit: str | os.PathLike | None = None) -> list[Path]:
        places: list[Path] = []
        if explicit is not None:
            places.append(Path(explicit))
        for env in self.envs:
            if os.environ.get(env):
                p = Path(os.environ[env])
                places.append(p / self.filename if p.is_dir() else p)
        if os.environ.get(WEIGHTS_ENV):
            places.append(Path(os.environ[WEIGHTS_ENV]) / self.filename)
        places.append(hub_checkpoint_dir() / self.filename)
        return places

    def find(self, explicit: str | os.PathLike | None = None) -> Path | None:
        for p in self.candidates(explicit):
            if p.is_file():
                return p
        return None

    def resolve(self, explicit: str | os.PathLike | None = None) -> Path:
        found = self.find(explicit)
        if found is None:
            places = "; ".join(str(p) for p in self.candidates(explicit))
            env_hint = "".join(f", or set {e}=PATH" for e in self.envs) + f", or set {WEIGHTS_ENV}=FOLDER"
            raise WeightsNotFoundError.of(MSG_WEIGHTS_NOT_FOUND, what=self.what, filename=self.filename, places=places,
                                          env_hint=env_hint)
        return found

    def status(self, explicit: str | os.PathLike | None = None) -> dict:
        found = self.find(explicit)
        return {
            "file": self.filename,
            "found": found is not None,
            "path": str(found) if found else None,
            "searched": [str(p) for p in self.candidates(explicit)],
            "env": list(self.envs),
        }


def load_state_dict(path: str | os.PathLike, what: str = "model") -> dict[str, torch.Tensor]:
    """Load a state dict safely: safetensors, or ``torch.load(weights_only=True)``."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - damaged, truncated, or a pickle of more than tensors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DTypeError.of(MSG_WEIGHTS_BAD_FILE, what=what, path=path, got=f"a file that will not load ({first})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise DTypeError.of(MSG_WEIGHTS_BAD_FILE, what=what, path=path, got=type(sd).__name__)
    return sd


def load_into(module: torch.nn.Module, sd: dict[str, torch.Tensor], *, what: str, path) -> torch.nn.Module:
    """``module.load_state_dict(sd)``, with weights of another architecture refused in one line naming what does
    not fit (missing and unexpected keys, shapes) instead of PyTorch's multi-line error."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} for {tuple(v.shape)}" for k, v in own.items()
              if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("other shapes", shapes)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {items[0]})")
        raise WeightsMismatchError.of(MSG_WEIGHTS_MISMATCH, what=what, path=path, n=f"{len(own)} ", got="; ".join(parts))
    module.load_state_dict(sd)
    return module


def cache_dir() -> Path:
    """Where the library caches what it builds (e.g. trained MNIST models): ``$IMPERCEPTIBLE_CACHE``
    or ``~/.cache/imperceptible``."""
    p = Path(os.environ.get("IMPERCEPTIBLE_CACHE", Path.home() / ".cache" / "imperceptible"))
    p.mkdir(parents=True, exist_ok=True)
    return p
