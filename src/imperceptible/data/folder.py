"""Bring your own data: ``folder:PATH``, a folder of images as people have them.

Two layouts:

* ``PATH/labels.csv`` with columns ``file,label[,group]``; ``file`` is relative to ``PATH`` and may name a
  sub-folder (``cat/x.png``); ``label`` an integer class index;
* no ``labels.csv``: torchvision's ``ImageFolder`` layout, one sub-folder per class (``PATH/cat/*.png``,
  ``PATH/dog/*.jpg``); class indices follow the sorted folder names, as in torchvision.

Images are read with Pillow and converted, never clipped: palette images through their palette, images with
transparency composited over white, 16-bit grey images scaled by 65535; if any image has colour every image is
RGB (grey ones repeated), else all are grey. After every conversion and resize the image is rounded to the 8-bit
grid (:mod:`imperceptible.pixels`), as a saved file would be: an attack image is an 8-bit file, so the clean
image it is measured against must be one too (a float resize left on its own adds half a grey level of noise to
every sub-pixel, an L2 of about 0.44 at 224x224x3, to every distance). A 16-bit image loses its low bits there.

Sizes: ``image_size=S`` resizes each image's shorter side to ``S`` (bicubic, antialiased) and crops the
centre ``S x S`` (torchvision's evaluation transform). Without it, images of one size are kept as they are,
and images of several sizes are brought to the smallest shorter side among them the same way (no image is
enlarged), with a warning that says so.

A bad row is refused with a typed error naming the row and the file: a non-integer or negative label, a
missing, unreadable or truncated file, a duplicate row, a path that leaves the folder.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import (
    MSG_DATASET_NOT_FOUND,
    MSG_FOLDER_CLASS_LINK,
    MSG_FOLDER_COLUMNS,
    MSG_FOLDER_DUPLICATE,
    MSG_FOLDER_LABEL,
    MSG_FOLDER_MISSING,
    MSG_FOLDER_OUTSIDE,
    MSG_FOLDER_UNREADABLE,
    DatasetNotFoundError,
    ImageFileError,
    TableError,
)
from ..notices import MSG_FOLDER_MIXED_SIZES, MSG_FOLDER_SKIPPED_RUN, log_warning
from ..pixels import quantize_array
from .base import ImageDataset

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _read_image(path: Path, where: str) -> tuple[np.ndarray, bool]:
    """``(H, W, C)`` float32 in ``[0, 1]`` and whether it has colour."""
    try:
        with Image.open(path) as raw:
            raw.load()
            im = ImageOps.exif_transpose(raw)  # as a camera meant it: its EXIF orientation applied
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                a = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
                return (np.clip(a / peak, 0, 1)[..., None]).astype(np.float32), False
            if mode == "F":
                return np.clip(np.asarray(im, dtype=np.float32), 0, 1)[..., None], False
            if mode in ("P", "PA"):
                im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
            if im.mode in ("LA", "RGBA") or "transparency" in im.info:  # composite over white
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, rgba).convert("L" if mode == "LA" else "RGB")
            if im.mode in ("1", "L"):
                return (np.asarray(im.convert("L"), dtype=np.float32) / 255)[..., None], False
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
            colour = not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))
            return rgb, colour
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageFileError.of(MSG_FOLDER_UNREADABLE, where=where, file=path, error=f"{type(e).__name__}: {e}") from None


def resize_crop(a: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (bicubic, antialiased) and crop the centre ``size x size``."""
    h, w = a.shape[:2]
    if (h, w) == (size, size):
        return a
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    chans = [np.asarray(Image.fromarray(a[..., c]).resize((nw, nh), Image.Resampling.BICUBIC), dtype=np.float32)
             for c in range(a.shape[2])]
    r = np.clip(np.stack(chans, -1), 0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    return r[top : top + size, left : left + size]


def _rows_from_csv(root: Path, table: Path) -> list[dict]:
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if not {"file", "label"} <= {c.strip() for c in fields}:
            raise TableError.of(MSG_FOLDER_COLUMNS, table=table, got=",".join(fields) or "no header")
        raw = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    rows: list[dict] = []
    seen: dict[str, int] = {}
    base = root.resolve()
    for n, r in enumerate(raw, start=2):  # row 1 is the header
        file = r["file"]
        path = (root / file).resolve()
        if base not in path.parents:
            raise TableError.of(MSG_FOLDER_OUTSIDE, table=table, row=n, root=root, file=file)
        try:
            label = int(r["label"])
            if label < 0:
                raise ValueError
        except ValueError:
            raise TableError.of(MSG_FOLDER_LABEL, table=table, row=n, file=file, label=r["label"]) from None
        key = path.as_posix()
        if key in seen:
            raise TableError.of(MSG_FOLDER_DUPLICATE, table=table, row=n, file=file, first=seen[key])
        seen[key] = n
        if not path.is_file():
            raise TableError.of(MSG_FOLDER_MISSING, table=table, row=n, file=root / file)
        rows.append({"file": file, "path": path, "label": label, "group": r.get("group") or "", "where": f"{table} row {n}"})
    return rows


def _is_run_dir(d: Path) -> bool:
    """A run directory of this tool (it holds the lock or a fingerprint; see :mod:`imperceptible.runs.rundir`):
    never read as data."""
    return (d / ".lock").is_file() or (d / "fingerprint.json").is_file()


def _class_files(root: Path, folder: Path) -> list[Path]:
    """The image files under a class folder, sorted, leaving out run directories of this tool; a link that
    leads out of the dataset is refused."""
    base, out = root.resolve(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        if base not in here.resolve().parents:
            raise TableError.of(MSG_FOLDER_CLASS_LINK, path=here, target=here.resolve(), root=root)
        skip = [d for d in dirnames if _is_run_dir(here / d)]
        for d in skip:
            log_warning(log, MSG_FOLDER_SKIPPED_RUN, path=here / d)
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
        for f in filenames:
            p = here / f
            if p.suffix.lower() in IMAGE_SUFFIXES:
                if base not in p.resolve().parents:
                    raise TableError.of(MSG_FOLDER_CLASS_LINK, path=p, target=p.resolve(), root=root)
                out.append(p)
    return sorted(out)


def _rows_from_class_folders(root: Path) -> tuple[list[dict], list[str]]:
    classes = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        if _is_run_dir(d):
            log_warning(log, MSG_FOLDER_SKIPPED_RUN, path=d)
        else:
            classes.append(d.name)
    rows = []
    for k, c in enumerate(classes):
        for p in _class_files(root, root / c):
            rel = p.relative_to(root).as_posix()
            rows.append({"file": rel, "path": p, "label": k, "group": "", "where": f"{root} ({rel})"})
    return rows, classes


def image_folder(path: str, size: int | None = None, grey: bool | None = None,
                 num_classes: int | None = None) -> ImageDataset:
    """Load the folder (see the module docstring). ``size``: the ``--image-size`` policy; ``grey``: force
    grey (True) or RGB (False) instead of deciding from the images."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError.of(MSG_DATASET_NOT_FOUND, name=f"folder:{path}",
                                      expected="a folder with labels.csv (file,label[,group]) or one sub-folder per class",
                                      got="no such folder", how="Check the path.")
    table = root / "labels.csv"
    class_names = None
    if table.is_file():
        rows = _rows_from_csv(root, table)
    else:
        rows, class_names = _rows_from_class_folders(root)
    if not rows:
        raise DatasetNotFoundError.of(MSG_DATASET_NOT_FOUND, name=f"folder:{path}",
                                      expected="labels.csv rows or class sub-folders of images", got="no images",
                                      how="Write labels.csv beside your images (file,label[,group]) or put them in one "
                                          "sub-folder per class.")
    arrays, colour = [], False
    for r in rows:
        a, c = _read_image(r["path"], r["where"])
        arrays.append(a)
        colour |= c
    rgb = (not grey) if grey is not None else colour
    shapes = {a.shape[:2] for a in arrays}
    target = size
    if target is None and len(shapes) > 1:
        target = min(min(s) for s in shapes)
        log_warning(log, MSG_FOLDER_MIXED_SIZES, path=path, n=len(shapes), size=target)
    images = []
    for a in arrays:
        if rgb and a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif not rgb and a.shape[2] == 3:
            a = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        if target is not None:
            a = resize_crop(a, target)
        images.append(torch.from_numpy(np.ascontiguousarray(quantize_array(a).transpose(2, 0, 1))))
    y = torch.tensor([r["label"] for r in rows], dtype=torch.long)
    groups = [r["group"] for r in rows]
    info = {"path": str(root), "layout": "labels.csv" if class_names is None else "class folders",
            "image_size": target, "channels": 3 if rgb else 1,
            "size_policy": None if target is None else "shorter side resized, centre crop"}
    return ImageDataset(f"folder:{path}", torch.stack(images).clamp_(0, 1), y, [r["file"] for r in rows],
                        num_classes or max(int(y.max()) + 1, len(class_names or [])),
                        groups=groups if any(groups) else None, class_names=class_names, info=info)


__all__ = ["ImageFileError", "image_folder", "resize_crop"]
