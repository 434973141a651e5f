"""Shared fixtures. Real offline data and models; nothing downloads.

The suite runs isolated from the user's files and the network: the cache folder, the torch hub folder and
the weights folder point into a session temporary folder, ``IMPERCEPTIBLE_OFFLINE=1`` switches fetching off
(tests that exercise fetching serve their files locally), and torch's threads are pinned to two (and to one
in subprocesses) so a busy machine does not slow the suite by oversubscription.
"""

from __future__ import annotations

import inspect
import os
import re
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


def load_script(path: str):
    """A script of the repository (``benchmarks/tables.py``, ``tools/carry.py``, ...) loaded as a module."""
    import importlib.util

    file = Path(__file__).resolve().parents[1] / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_asset(name: str):
    """A test image from ``tests/assets`` as a ``(1, C, H, W)`` float tensor in ``[0, 1]``."""
    import numpy as np
    import torch
    from PIL import Image

    a = np.asarray(Image.open(ASSETS / f"{name}.png"), dtype=np.float32) / 255
    t = torch.from_numpy(a)
    return t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None].contiguous()


#: what a test loads, found in its own source and in the source of every fixture it uses (transitively): a real model,
#: real data, network weights, or a subprocess (the command line run in-process counts, its jobs load models and data)
LOADS = {
    "model": re.compile(r"""\bget\(\s*["'](mnist-cnn|efficientnet|timm:|robustbench:|torchvision:|torchscript:)|"""
                        r"""get_model\(|models import get\b|["']--model["']|model=["']|fairness_study\(|bench_\w+\(|"""
                        r"""train_classifier\(|pretrain\(|sample_model\(|build_adversarial_dataset\("""),
    "data": re.compile(r"""\bload\(\s*["']|load_dataset\(|["']--dataset["']|dataset=["']|geo_fashion|fashion_mnist|"""
                       r"""IMAGENET_COMPATIBLE|require_imagenet_compatible|Worlds\(|gdp_table|gapminder"""),
    "weights": re.compile(r"random_backbones|safetensors|load_features\(|torch\.load\("),
    "subprocess": re.compile(r"subprocess\.|\bmain\(\[|Popen\("),
}


def _sources(item) -> str:
    """The test function's source, that of every fixture it uses, and that of the helpers of its module they call (three
    levels deep)."""
    info = getattr(item, "_fixtureinfo", None)
    fns = [getattr(item, "function", None)] + ([d.func for defs in info.name2fixturedefs.values() for d in defs]
                                               if info is not None else [])
    module = getattr(item, "module", None)
    parts, seen = [], set()
    for _ in range(3):
        more = []
        for fn in fns:
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            try:
                src = inspect.getsource(fn)
            except (OSError, TypeError):
                continue
            parts.append(src)
            for name in set(re.findall(r"\b(_\w+)\(", src)):  # the module's helpers it calls
                helper = getattr(module, name, None)
                if inspect.isfunction(helper):
                    more.append(helper)
        fns = more
    return "\n".join(parts)


def pytest_collection_modifyitems(config, items):
    """Mark every test by what it loads (:data:`LOADS`: ``model``, ``data``, ``weights``, ``subprocess``), and ``integration``
    when it loads any of them, ``unit`` otherwise (a temporary folder alone does not make a test an integration test)."""
    for item in items:
        src = _sources(item)
        loads = [k for k, pat in LOADS.items() if pat.search(src)]
        for k in loads:
            item.add_marker(getattr(pytest.mark, k))
        item.add_marker(pytest.mark.integration if loads else pytest.mark.unit)


#: the grouped digits folder's groups and their covariate (a log-GDP-like value)
GROUPS = {f"g{i}": float(6 + i) for i in range(6)}


@pytest.fixture(scope="module")
def grouped_folder(tmp_path_factory):
    """A real small grouped dataset: 480 MNIST digits in 6 groups, PNG files + labels.csv + covariates.csv."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from imperceptible.data import load

    d = load("mnist", split="train", limit=480)
    root = tmp_path_factory.mktemp("grouped")
    rows = []
    for i in range(len(d)):
        f = f"{i:04d}.png"
        Image.fromarray((d.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(root / f)
        rows.append({"file": f, "label": int(d.labels[i]), "group": f"g{i % 6}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"group": list(GROUPS), "covariate": list(GROUPS.values())}).to_csv(root / "cov.csv", index=False)
    return root
