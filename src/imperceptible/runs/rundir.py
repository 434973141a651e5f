"""The run directory contract (README, "The run directory")::

    config.json   the command, arguments, seed, package versions, machine, start time
    results.sqlite  per-sample rows (see :mod:`.store`)
    images/METHOD/ID.png  adversarial images (lossless), images/original/ID.png once
    plots/*.png   figures
    summary.json  every reported number
    report.html   one self-contained page
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .store import ResultStore

PACKAGES = ("imperceptible", "torch", "torchvision", "numpy", "scipy", "piq", "lpips", "kornia", "statsmodels",
            "opencv-contrib-python-headless", "scikit-image")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": sys.version.split()[0],
    }


def safe_name(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=@[]" else "_" for c in s)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        (self.path / "plots").mkdir(parents=True, exist_ok=True)

    @cached_property
    def store(self) -> ResultStore:
        """The per-sample results store, opened (created) on first use: a run with no per-sample
        attack results (the fairness study) has no ``results.sqlite``."""
        return ResultStore(self.path / "results.sqlite")

    def write_config(self, config: dict) -> None:
        """Write ``config.json``; on a resume keep the first start time and append the new one."""
        p = self.path / "config.json"
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        old = json.loads(p.read_text()) if p.is_file() else {}
        cfg = dict(config, command=" ".join(sys.argv), versions=versions(), machine=machine(),
                   started=old.get("started", now), resumed=old.get("resumed", []) + ([now] if old else []))
        p.write_text(json.dumps(cfg, indent=2, default=str))

    def write_json(self, name: str, data: dict) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))
        tmp.replace(p)
        return p

    def image_path(self, method: str, sample_id: str) -> Path:
        d = self.path / "images" / safe_name(method)
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{safe_name(sample_id)}.png"

    def save_images(self, method: str, ids: list[str], x: torch.Tensor) -> None:
        """Save ``[0, 1]`` images as 8-bit lossless PNG."""
        arr = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i, a in zip(ids, arr):
            p = self.image_path(method, i)
            Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(p)

    def load_image(self, method: str, sample_id: str) -> torch.Tensor:
        with Image.open(self.image_path(method, sample_id)) as im:
            a = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)
