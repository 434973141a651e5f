import importlib
import json

import pytest
import torch
import torchvision

from imperceptible import models as M
from imperceptible.validation import ModelModeError, NonFiniteError, RangeError, UnknownNameError, WeightsNotFoundError


def test_efficientnet_top1_on_imagenet_samples(effnet, imagenet_samples):
    correct = (effnet.predict(imagenet_samples.images, 10) == imagenet_samples.labels).sum().item()
    assert correct >= 16  # measured: 17 of 20


def test_mnist_cnn_held_out_accuracy(mnist_cnn, mnist_test):
    acc = M.accuracy(mnist_cnn, mnist_test.images, mnist_test.labels)
    assert acc >= 0.97
    cache_path = importlib.import_module("imperceptible.models.mnist_cnn").cache_path
    meta = json.loads(cache_path("a").with_suffix(".json").read_text())
    assert abs(meta["test_accuracy"] - acc) < 1e-9


def test_wrapper_refuses_training_mode_and_bad_input(mnist_cnn):
    x = torch.rand(2, 1, 28, 28)
    mnist_cnn.train()
    try:
        with pytest.raises(ModelModeError, match="training mode"):
            mnist_cnn(x)
    finally:
        mnist_cnn.eval()
    with pytest.raises(RangeError):
        mnist_cnn(x * 3)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        mnist_cnn(bad)


def test_wrapper_resizes_and_normalises(effnet, imagenet_samples):
    x = imagenet_samples.images[:2]
    big = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
    assert effnet(big).shape == (2, 1000)
    ref = effnet.net((x - 0.5) / 0.5)
    assert torch.allclose(effnet(x), ref, atol=1e-5)


def test_torchvision_loader_with_weights_made_here(tmp_path, monkeypatch):
    net = torchvision.models.resnet18(weights=None).eval()
    fname = M.torchvision_models.spec("resnet18").filename
    torch.save(net.state_dict(), tmp_path / fname)
    monkeypatch.setenv("IMPERCEPTIBLE_TORCHVISION_WEIGHTS", str(tmp_path))
    model = M.get("torchvision:resnet18")
    x = torch.rand(1, 3, 224, 224)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(model(x), net((x - mean) / std), atol=1e-5)


def test_missing_weights_error_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("IMPERCEPTIBLE_TORCHVISION_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as e:
        M.get("torchvision:resnet50")
    msg = str(e.value)
    assert "resnet50-11ad3fa6.pth" in msg and str(tmp_path) in msg and "IMPERCEPTIBLE_TORCHVISION_WEIGHTS" in msg
    with pytest.raises(WeightsNotFoundError, match="efficientnet-lite0-57934424.pth"):
        M.efficientnet_lite0(tmp_path / "missing.pth")


def test_torchscript_loader(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    scripted = torch.jit.script(net)
    scripted.save(str(tmp_path / "m.pt"))
    model = M.get(f"torchscript:{tmp_path / 'm.pt'}")
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(model(x), net(x))
    with pytest.raises(WeightsNotFoundError):
        M.get(f"torchscript:{tmp_path / 'nope.pt'}")


def test_unknown_model():
    with pytest.raises(UnknownNameError, match="unknown model 'resnet'"):
        M.get("resnet")


def test_training_loop_is_seeded_and_leaves_global_rng_alone(mnist_test):
    x, y = mnist_test.images[:128], mnist_test.labels[:128]
    state = torch.random.get_rng_state()
    nets = []
    for seed in (3, 3, 4):
        torch.manual_seed(123)  # initialisation only; training randomness comes from `seed`
        net = M.cnn_a()
        M.train_classifier(net, x, y, epochs=1, seed=seed, progress=False, max_shift=1)
        nets.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(nets[0], nets[1])
    assert not torch.equal(nets[0], nets[2])
    torch.random.set_rng_state(state)
