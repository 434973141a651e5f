"""What determines a run's results, as comparable data: the digests of datasets and models, and the
differences between two fingerprints (what a resumed run must not change)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch


def tensor_digest(t: torch.Tensor, h=None) -> str:
    """blake2b of a tensor's dtype, shape and bytes (CPU, contiguous)."""
    h = h or hashlib.blake2b(digest_size=16)
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def sample_digests(images: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """One digest per sample: its pixels (as float32) and its label."""
    out = []
    for x, y in zip(images, labels):
        h = hashlib.blake2b(digest_size=16)
        h.update(str(int(y)).encode())
        out.append(tensor_digest(x.float(), h))
    return out


def model_digest(model: torch.nn.Module) -> str:
    """Digest of a model's class, parameters and buffers (names, shapes, values)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(model).__name__.encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        tensor_digest(t, h)
    return h.hexdigest()


def canonical(obj: Any) -> Any:
    """A JSON round trip, so tuples and lists, ints and floats compare as they will once stored."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Human-readable lines ``key: old -> new`` for every leaf that differs."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        key = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(differences(a, b, key + "."))
        elif a != b:
            out.append(f"{key}: {_short(a)} -> {_short(b)}")
    return out


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 80 else s[:77] + "..."


__all__ = ["canonical", "differences", "model_digest", "sample_digests", "tensor_digest"]
