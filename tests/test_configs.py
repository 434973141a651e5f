"""The experiments' settings come from one place: every config that loads a dataset and a model extends
``DataModelOptions`` (one source of --dataset, --model, --weights, --limit, --image-size, --batch-size), and what does
not change results stays out of the fingerprint, so raising --limit extends a run instead of being refused."""

from __future__ import annotations

import dataclasses

import pytest

from imperceptible.experiments.attack import AttackConfig
from imperceptible.experiments.bench_ablation import AblationConfig
from imperceptible.experiments.bench_attacks import BenchAttacksConfig
from imperceptible.experiments.bench_minimal import BenchMinimalConfig
from imperceptible.experiments.bench_onestep import OnestepConfig
from imperceptible.experiments.common import DataModelOptions

CONFIGS = [AttackConfig, AblationConfig, BenchAttacksConfig, BenchMinimalConfig, OnestepConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=[c.__name__ for c in CONFIGS])
def test_every_data_and_model_config_extends_the_shared_options(cls):
    assert issubclass(cls, DataModelOptions)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in ("limit", "batch_size"):
        assert fields[name].metadata["fingerprint"] is False, (cls.__name__, name)
    for name in ("dataset", "model", "weights", "image_size"):
        assert fields[name].metadata.get("fingerprint", True), (cls.__name__, name)


def test_raising_the_limit_of_bench_onestep_extends_the_run(tmp_path):
    """Version 0.3's ``OnestepConfig.limit`` lost ``fingerprint=False``: a larger --limit refused the resume, where every
    other command extends the run. Now it resumes and covers the new digits."""
    from imperceptible.experiments.bench_onestep import bench_onestep

    out = tmp_path / "run"
    a = bench_onestep(out=out, limit=2, progress=False)
    b = bench_onestep(out=out, limit=3, progress=False)
    assert a["n_images"] == 2 and b["n_images"] == 3


def test_version_and_help_start_without_torch():
    """``imperceptible --version`` and ``--help`` import neither torch nor any experiment (measured: 0.2 s)."""
    import subprocess
    import sys

    code = ("import sys\nfrom imperceptible.cli.main import main\nfor a in (['--version'], ['--help']):\n    try:\n"
            "        main(a)\n    except SystemExit:\n        pass\nprint(sorted(m for m in ('torch', 'numpy', "
            "'imperceptible.experiments') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
