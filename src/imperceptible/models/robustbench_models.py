"""``robustbench:DATASET/THREAT/NAME``: a model of the RobustBench leaderboard (Croce et al. 2021), e.g.
``robustbench:cifar10/L2/Ding2020MMA`` or ``robustbench:imagenet/L2/Engstrom2019Robustness``.

Loaded with RobustBench's own ``load_model`` from its model folder: ``MODEL_DIR/DATASET/THREAT/NAME.pt``, with
``MODEL_DIR`` = ``$IMPERCEPTIBLE_ROBUSTBENCH`` or ``~/.cache/imperceptible/robustbench`` (``weights=PATH``: a
checkpoint file of that model anywhere, linked into that layout in a temporary folder). A checkpoint already there
loads offline; where the internet is reachable RobustBench downloads an absent one as usual; offline and absent,
the error is one line saying where to put the file. RobustBench's models include their normalisation, so the
wrapper only checks the ``[0, 1]`` input and resizes to the leaderboard's input size (32 for CIFAR, 224 for
ImageNet).

Install: ``pip install 'imperceptible[robustbench]'`` (RobustBench 1.1.1 from PyPI, which pins timm 1.0.9, so it
installs together with the ``timm`` extra at that version). Two packaging faults of RobustBench 1.1.1 are worked
around here: it imports ``pkg_resources`` (the extra pins ``setuptools<81``, which still has it) and
``autoattack``, a name its declared dependency ``pyautoattack`` (the same AutoAttack code) does not provide: the
module is registered under that name before RobustBench is imported.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

from ..errors import (
    MSG_OPTIONAL_PACKAGE,
    MSG_PARAM,
    MSG_ROBUSTBENCH_ABSENT,
    MSG_ROBUSTBENCH_FETCH,
    MSG_ROBUSTBENCH_NOT_A_FILE,
    MSG_UNKNOWN_SUGGEST,
    MSG_WEIGHTS_MISMATCH,
    ImperceptibleError,
    OptionalPackageError,
    ParameterError,
    UnknownNameError,
    WeightsMismatchError,
    WeightsNotFoundError,
)
from ..weights import cache_dir
from .wrapper import ImageClassifier

ENV = "IMPERCEPTIBLE_ROBUSTBENCH"
#: the leaderboards' input sides and classes
DATASETS = {"cifar10": (32, 10), "cifar100": (32, 100), "imagenet": (224, 1000)}
THREATS = ("Linf", "L2", "corruptions")


def _robustbench():
    try:
        if "autoattack" not in sys.modules:
            pa = importlib.import_module("pyautoattack")
            sys.modules["autoattack"] = pa
            sys.modules["autoattack.state"] = importlib.import_module("pyautoattack.state")
        with warnings.catch_warnings():  # its pkg_resources import warns on every import
            warnings.simplefilter("ignore")
            from robustbench.model_zoo import model_dicts
            from robustbench.utils import load_model
    except ImportError:
        raise OptionalPackageError.of(MSG_OPTIONAL_PACKAGE, what="robustbench:DATASET/THREAT/NAME models",
                                      package="robustbench", extra="robustbench") from None
    return load_model, model_dicts


def available() -> bool:
    try:
        _robustbench()
    except OptionalPackageError:
        return False
    return True


def model_dir() -> Path:
    p = Path(os.environ.get(ENV) or cache_dir() / "robustbench")
    p.mkdir(parents=True, exist_ok=True)
    return p


def parse(spec: str) -> tuple[str, str, str]:
    """``DATASET/THREAT/NAME`` checked against the leaderboard (closest names for a typo)."""
    parts = spec.split("/")
    if len(parts) != 3 or not all(parts):
        raise ParameterError.of(MSG_PARAM, name="robustbench model", expected="DATASET/THREAT/NAME, e.g. "
                                "cifar10/L2/Ding2020MMA", got=spec)
    dataset, threat, name = parts
    _, zoo = _robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    try:
        ds, tm = BenchmarkDataset(dataset), ThreatModel(threat)
    except ValueError:
        expected = f"a dataset in {list(DATASETS)} and a threat in {list(THREATS)}"
        raise ParameterError.of(MSG_PARAM, name="robustbench model", got=spec, expected=expected) from None
    known = list(zoo[ds][tm])
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        raise UnknownNameError.of(MSG_UNKNOWN_SUGGEST, kind=f"RobustBench {dataset}/{threat} model", name=name,
                                  hint=f" (did you mean: {', '.join(close)}?)" if close else "",
                                  choices=f"{len(known)} names (robustbench)")
    return dataset, threat, name


def checkpoint_path(dataset: str, threat: str, name: str) -> Path:
    return model_dir() / dataset / threat / f"{name}.pt"


def _first(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def input_size(spec: str) -> int | None:
    return DATASETS.get(spec.split("/")[0], (None,))[0]


def robustbench_model(spec: str, weights: str | os.PathLike | None = None) -> ImageClassifier:
    """The RobustBench model ``spec`` (see the module docstring)."""
    load_model, _ = _robustbench()
    dataset, threat, name = parse(spec)
    path = checkpoint_path(dataset, threat, name)
    with tempfile.TemporaryDirectory() as tmp:
        root = model_dir()
        if weights is not None:  # a file anywhere: linked into RobustBench's layout in a folder of its own
            src = Path(weights).resolve()
            if not src.is_file():
                raise WeightsNotFoundError.of(MSG_ROBUSTBENCH_NOT_A_FILE, name=spec, path=weights)
            root = Path(tmp)
            (root / dataset / threat).mkdir(parents=True)
            (root / dataset / threat / f"{name}.pt").symlink_to(src)
            path = src
        elif not path.is_file() and os.environ.get("IMPERCEPTIBLE_OFFLINE"):
            raise WeightsNotFoundError.of(MSG_ROBUSTBENCH_ABSENT, name=spec, path=path, env=ENV)
        try:
            net = load_model(model_name=name, model_dir=str(root), dataset=dataset, threat_model=threat)
        except RuntimeError as e:
            if "state_dict" not in str(e):
                raise WeightsNotFoundError.of(MSG_ROBUSTBENCH_FETCH, name=spec, error=_first(e), path=path) from None
            raise WeightsMismatchError.of(MSG_WEIGHTS_MISMATCH, what=f"robustbench:{spec}", path=path, n="",
                                          got=_first(e)) from None
        except ImperceptibleError:
            raise
        except Exception as e:  # noqa: BLE001 - RobustBench raises whatever a download or torch.load raises
            raise WeightsNotFoundError.of(MSG_ROBUSTBENCH_FETCH, name=spec, error=_first(e), path=path) from None
    side, classes = DATASETS[dataset]
    return ImageClassifier(net.eval(), mean=(0.0,) * 3, std=(1.0,) * 3, num_classes=classes, input_size=(side, side),
                           name=f"robustbench:{spec}")


__all__ = ["DATASETS", "ENV", "available", "checkpoint_path", "input_size", "model_dir", "parse", "robustbench_model"]
