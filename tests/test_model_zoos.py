"""timm:NAME and robustbench:DATASET/THREAT/NAME without the network: models built here with random weights, saved
as a user saves them, loaded by name with their own preprocessing; and the one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from imperceptible.cli.main import main
from imperceptible.models import get, input_size
from imperceptible.validation import UnknownNameError, WeightsMismatchError, WeightsNotFoundError

from .conftest import skip_or_fail


def _need(module: str):
    from imperceptible.models import registry  # noqa: F401 - the zoos' loaders live beside it

    mod = __import__(f"imperceptible.models.{module}_models", fromlist=["available"])
    if not mod.available():
        skip_or_fail(f"{module} is not installed here; .ci/run installs the extras timm and robustbench")
    return mod


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    _need("timm")
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = timm.create_model("test_vit", pretrained=False)
    path = tmp_path_factory.mktemp("timm") / "test_vit.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return net.eval(), path


def test_timm_model_by_name_with_its_own_preprocessing(timm_file):
    net, path = timm_file
    m = get("timm:test_vit", weights=str(path))
    # test_vit's pretrained config: mean = std = 0.5 (not ImageNet's), 160 x 160, bicubic, crop 0.875
    assert m.mean.flatten().tolist() == [0.5] * 3 and m.std.flatten().tolist() == [0.5] * 3
    assert m.input_size == (160, 160) and m.interpolation == "bicubic" and m.crop_pct == pytest.approx(0.875)
    assert input_size("timm:test_vit") == 160  # --image-size's default
    x = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(m(x), net((x - 0.5) / 0.5), atol=1e-5)  # the model's own size goes in unchanged


def test_timm_errors_are_one_line(timm_file, tmp_path, monkeypatch):
    _, path = timm_file
    with pytest.raises(UnknownNameError, match=r"did you mean: test_vit"):
        get("timm:test_vitt")
    monkeypatch.setenv("IMPERCEPTIBLE_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="fetching is off") as e:
        get("timm:test_vit")
    assert "\n" not in str(e.value)
    import timm

    other = tmp_path / "efficientnet.pt"
    torch.save(timm.create_model("test_efficientnet", pretrained=False).state_dict(), other)
    with pytest.raises(WeightsMismatchError) as e:
        get("timm:test_vit", weights=str(other))
    assert "\n" not in str(e.value) and "timm test_vit" in str(e.value)


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_timm_model_attacks_end_to_end_from_the_cli(timm_file, tmp_path, capsys):
    _, path = timm_file
    out = tmp_path / "run"
    rc = main(["attack", "--dataset", "imagenet-samples", "--model", "timm:test_vit", "--weights", str(path),
               "--attack", "pgd-l2", "--limit", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fingerprint"]["dataset"]["image_shape"] == [3, 160, 160]  # loaded at the model's own size
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"]["pgd-l2"]["n"] == 2  # random weights: no image is correct, and the run says so
    assert summary["methods"]["pgd-l2"]["n_clean_correct"] == 0 and summary["methods"]["pgd-l2"]["success_rate"] is None


@pytest.fixture(scope="module")
def robustbench_file(tmp_path_factory):
    rb = _need("robustbench")
    _, zoo = rb._robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    net = zoo[BenchmarkDataset("cifar10")][ThreatModel("L2")]["Ding2020MMA"]["model"]().eval()
    root = tmp_path_factory.mktemp("robustbench")
    (root / "cifar10" / "L2").mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               root / "cifar10" / "L2" / "Ding2020MMA.pt")  # the layout and key prefix of its published files
    return net, root


def test_robustbench_model_loads_offline_from_its_folder(robustbench_file, monkeypatch):
    net, root = robustbench_file
    monkeypatch.setenv("IMPERCEPTIBLE_ROBUSTBENCH", str(root))
    monkeypatch.setenv("IMPERCEPTIBLE_OFFLINE", "1")
    m = get("robustbench:cifar10/L2/Ding2020MMA")
    assert m.input_size == (32, 32) and m.num_classes == 10 and input_size("robustbench:cifar10/L2/Ding2020MMA") == 32
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(m(x), net(x), atol=1e-5)  # RobustBench's models carry their own normalisation
    w = get("robustbench:cifar10/L2/Ding2020MMA", weights=str(root / "cifar10" / "L2" / "Ding2020MMA.pt"))
    with torch.no_grad():
        assert torch.allclose(w(x), net(x), atol=1e-5)


def test_robustbench_errors_are_one_line(robustbench_file, tmp_path, monkeypatch):
    from imperceptible.validation import ParameterError

    monkeypatch.setenv("IMPERCEPTIBLE_ROBUSTBENCH", str(tmp_path / "empty"))
    monkeypatch.setenv("IMPERCEPTIBLE_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="put the file there") as e:
        get("robustbench:cifar10/L2/Ding2020MMA")
    assert "\n" not in str(e.value) and str(tmp_path / "empty" / "cifar10" / "L2" / "Ding2020MMA.pt") in str(e.value)
    with pytest.raises(UnknownNameError, match="did you mean: Ding2020MMA"):
        get("robustbench:cifar10/L2/Ding2020MMX")
    with pytest.raises(ParameterError, match="DATASET/THREAT/NAME"):
        get("robustbench:cifar10/Ding2020MMA")
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, bad)
    with pytest.raises(WeightsMismatchError) as e:
        get("robustbench:cifar10/L2/Ding2020MMA", weights=str(bad))
    assert "\n" not in str(e.value)



def test_the_zoos_import_without_a_warning_on_screen(monkeypatch):
    """`imperceptible info` imports timm to say whether it is there; timm's import calls torch.jit.interface, which
    torch 2.14 deprecates with a FutureWarning: the user must not see it at every start (timm imported afresh here)."""
    import sys
    import warnings

    mod = _need("timm")
    for name in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
        monkeypatch.delitem(sys.modules, name)  # put back after the test
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod._timm()
    assert "timm" in sys.modules and not [str(w.message) for w in caught if w.category is FutureWarning]
