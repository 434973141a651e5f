"""Shared fixtures. Real offline data and models; nothing downloads.

The suite runs isolated from the user's files and the network: the cache folder, the torch hub folder and
the weights folder point into a session temporary folder, ``IMPERCEPTIBLE_OFFLINE=1`` switches fetching off
(tests that exercise fetching serve their files locally), and torch's threads are pinned to two (and to one
in subprocesses) so a busy machine does not slow the suite by oversubscription.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMPERCEPTIBLE_SHARED", ROOT.parent / "shared"))
IMAGENET_COMPATIBLE = SHARED / "data" / "imagenet-compatible"
ASSETS = Path(__file__).resolve().parent / "assets"
#: set in CI, where every optional dataset and package is installed: a loader that cannot find its data fails
#: the test there instead of skipping it
STRICT = bool(os.environ.get("IMPERCEPTIBLE_STRICT_TESTS"))


def pytest_configure(config):
    import tempfile

    import torch

    base = Path(tempfile.mkdtemp(prefix="imperceptible-tests-"))
    for var, sub in (("IMPERCEPTIBLE_CACHE", "cache"), ("TORCH_HOME", "torch"), ("IMPERCEPTIBLE_WEIGHTS", "weights")):
        (base / sub).mkdir()
        os.environ[var] = str(base / sub)
    os.environ["IMPERCEPTIBLE_OFFLINE"] = "1"
    for var in ("IMPERCEPTIBLE_LPIPS_ALEX", "IMPERCEPTIBLE_LPIPS_VGG", "IMPERCEPTIBLE_DISTS_VGG", "IMPERCEPTIBLE_PIEAPP"):
        os.environ.pop(var, None)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for subprocesses
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def skip_or_fail(reason: str) -> None:
    """Skip, saying why - except under ``IMPERCEPTIBLE_STRICT_TESTS`` (CI), where the data must be there."""
    if STRICT:
        pytest.fail(f"{reason} (IMPERCEPTIBLE_STRICT_TESTS is set: CI installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def random_backbones():
    """Random AlexNet and VGG16 ``features`` weights, written where the backbones are looked for (the
    converted-file names in ``$IMPERCEPTIBLE_WEIGHTS``): LPIPS, DISTS and PPGD/LPA's AlexNet run on them
    without any download. Returns ``{name: state dict}``."""
    import torch
    import torchvision
    from safetensors.torch import save_file

    out = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for name, ctor in (("alexnet", torchvision.models.alexnet), ("vgg16", torchvision.models.vgg16)):
            sd = {f"features.{k}": v.contiguous() for k, v in ctor(weights=None).features.state_dict().items()}
            save_file(sd, str(Path(os.environ["IMPERCEPTIBLE_WEIGHTS"]) / f"{name}-features.safetensors"))
            out[name] = sd
    return out


@pytest.fixture(scope="session")
def effnet():
    from imperceptible.models import get

    return get("efficientnet-lite0")


@pytest.fixture(scope="session")
def imagenet_samples():
    from imperceptible.data import load

    return load("imagenet-samples")


@pytest.fixture(scope="session")
def imagenet_correct(effnet, imagenet_samples):
    """The imagenet-samples photos EfficientNet-Lite0 classifies correctly."""
    ok = effnet.predict(imagenet_samples.images, 10) == imagenet_samples.labels
    return imagenet_samples.images[ok], imagenet_samples.labels[ok]


@pytest.fixture(scope="session")
def mnist_cnn():
    from imperceptible.models import get

    return get("mnist-cnn", progress=False)


@pytest.fixture(scope="session")
def mnist_test():
    from imperceptible.data import load

    return load("mnist", split="test")


@pytest.fixture(scope="session")
def mnist_correct(mnist_cnn, mnist_test):
    x, y = mnist_test.images[:64], mnist_test.labels[:64]
    ok = mnist_cnn.predict(x) == y
    return x[ok], y[ok]


def require_imagenet_compatible() -> Path:
    """The folder of the paper's images (``images.csv`` and its PNGs) under ``SHARED``, or a skip saying where it
    looked."""
    places = (IMAGENET_COMPATIBLE, SHARED / "imagenet-compatible", SHARED)
    for p in places:
        if (p / "images.csv").is_file():
            return p
    pytest.skip(f"the ImageNet-compatible dataset is absent here (looked in {', '.join(map(str, places))}; "
                "set IMPERCEPTIBLE_SHARED to the folder holding data/imagenet-compatible)")


def load_asset(name: str):
    """A test image from ``tests/assets`` as a ``(1, C, H, W)`` float tensor in ``[0, 1]``."""
    import numpy as np
    import torch
    from PIL import Image

    a = np.asarray(Image.open(ASSETS / f"{name}.png"), dtype=np.float32) / 255
    t = torch.from_numpy(a)
    return t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None].contiguous()


#: fixtures that bring real data, real models or real weights: a test using one is an integration test
INTEGRATION_FIXTURES = {"random_backbones", "effnet", "imagenet_samples", "imagenet_correct", "mnist_cnn",
                        "mnist_test", "mnist_correct", "digits", "geo", "grouped_folder", "bench_run", "attack_run",
                        "timm_file", "robustbench_file", "single_process_run", "capsys", "tmp_path"}


def pytest_collection_modifyitems(config, items):
    """Mark every test ``unit`` or ``integration``: integration when it uses a
    fixture of real data, models or files (:data:`INTEGRATION_FIXTURES`), unit otherwise."""
    for item in items:
        real = INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.integration if real else pytest.mark.unit)
