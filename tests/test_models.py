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


def test_shipped_mnist_cnns_have_their_recorded_accuracy(mnist_cnn, mnist_test):
    """The weights ship with the package (trained by this module's recipe on one thread): every machine gets
    the same model, with the held-out accuracy recorded beside it (a = 97.4 %, b = 98.0 %)."""
    mc = importlib.import_module("imperceptible.models.mnist_cnn")
    for variant, model in (("a", mnist_cnn), ("b", M.get("mnist-cnn-b"))):
        acc = M.accuracy(model, mnist_test.images, mnist_test.labels)
        meta = json.loads(mc.packaged_path(variant).with_suffix(".json").read_text())
        assert acc == pytest.approx(meta["test_accuracy"], abs=1e-9) and acc >= 0.97, variant


def test_mnist_recipe_retrains_and_a_damaged_cache_is_retrained(monkeypatch, tmp_path, caplog):
    """The recipe, shortened to one epoch on the first 1024 digits; a damaged cached file is named and redone."""
    mc = importlib.import_module("imperceptible.models.mnist_cnn")
    from imperceptible.data import load

    monkeypatch.setenv("IMPERCEPTIBLE_CACHE", str(tmp_path))
    monkeypatch.setattr(mc, "EPOCHS", 1)
    small = load("mnist", split="train", limit=1024)
    monkeypatch.setattr(mc, "mnist", lambda split: small if split == "train" else load("mnist", split="test"))
    threads = torch.get_num_threads()
    m = mc.mnist_cnn("a", retrain=True, progress=False)
    assert torch.get_num_threads() == threads  # pinned to 1 for the recipe, then restored
    assert M.accuracy(m, small.images, small.labels) > 0.5
    mc.cache_path("a").write_bytes(b"damaged")
    with caplog.at_level("WARNING"):
        m2 = mc.mnist_cnn("a", retrain=True, progress=False)
    assert "damaged" in caplog.text and str(mc.cache_path("a")) in caplog.text
    assert all(torch.equal(p, q) for p, q in zip(m.state_dict().values(), m2.state_dict().values()))


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
    ref = effnet.net((x - 0.5) / 0.5)
    assert torch.allclose(effnet(x), ref, atol=1e-5)
    big = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
    resized = torch.nn.functional.interpolate(big, size=(224, 224), mode="bilinear", align_corners=False)
    assert torch.allclose(effnet(big), effnet.net((resized - 0.5) / 0.5), atol=1e-5)  # resized inside, bilinearly
    assert (effnet(big).argmax(1) == effnet(x).argmax(1)).all()


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
        M.get("torchvision:resnet50")  # offline (the suite's setting): nothing is downloaded
    msg = str(e.value)
    assert "resnet50-11ad3fa6.pth" in msg and str(tmp_path) in msg and "IMPERCEPTIBLE_TORCHVISION_WEIGHTS" in msg
    assert "fetching is switched off" in msg
    with pytest.raises(WeightsNotFoundError, match="efficientnet-lite0-57934424.pth"):
        M.efficientnet_lite0(tmp_path / "missing.pth")


def test_torchscript_loader_probes_channels_and_classes(tmp_path, caplog):
    rgb = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    torch.jit.script(rgb).save(str(tmp_path / "rgb.pt"))
    model = M.get(f"torchscript:{tmp_path / 'rgb.pt'}", data=_data(3))
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(model(x), rgb(x)) and model.num_classes == 4 and model.in_channels == 3
    grey = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8, 5)).eval()
    torch.jit.script(grey).save(str(tmp_path / "grey.pt"))
    with caplog.at_level("WARNING"):
        g = M.get(f"torchscript:{tmp_path / 'grey.pt'}", data=_data(3))  # 1-channel model, RGB data
    assert g.in_channels == 1 and g.num_classes == 5 and "converted" in caplog.text
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose(g(x), grey((x * w).sum(1, keepdim=True)), atol=1e-6)  # RGB -> luma for it
    xg = torch.rand(2, 1, 8, 8)
    assert torch.allclose(model(xg), rgb(xg.expand(-1, 3, -1, -1)), atol=1e-6)  # grey -> RGB for the RGB one
    with pytest.raises(WeightsNotFoundError):
        M.get(f"torchscript:{tmp_path / 'nope.pt'}")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="expected a TorchScript file"):
        M.get(f"torchscript:{tmp_path / 'junk.pt'}")


def _data(channels):
    from imperceptible.data.base import ImageDataset

    return ImageDataset("d", torch.rand(2, channels, 8, 8).mul(255).round().div(255), torch.tensor([0, 1]), ["a", "b"], 4)


class _TupleNet(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :4], x


def test_torchscript_model_returning_a_tuple_is_refused(tmp_path):
    from imperceptible.validation import ModelOutputError

    torch.jit.script(_TupleNet().eval()).save(str(tmp_path / "t.pt"))
    with pytest.raises(ModelOutputError, match="got a tuple"):
        M.get(f"torchscript:{tmp_path / 't.pt'}", data=_data(3))


def test_torchvision_download_is_used_when_online(tmp_path, monkeypatch):
    """No local file: torchvision's file is fetched (here from a local server) and checked by its hash."""
    import hashlib
    import http.server
    import io
    import threading

    net = torchvision.models.resnet18(weights=None).eval()
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    payload = buf.getvalue()
    served = tmp_path / "served"
    served.mkdir()
    real = M.torchvision_models.spec("resnet18").filename
    fake = f"resnet18-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    (served / fake).write_bytes(payload)
    monkeypatch.setattr(M.torchvision_models, "spec", lambda name: M.torchvision_models.WeightSpec(
        "torchvision resnet18", fake, "IMPERCEPTIBLE_TORCHVISION_WEIGHTS"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        monkeypatch.setenv("IMPERCEPTIBLE_TORCHVISION_BASE_URL", f"http://127.0.0.1:{srv.server_address[1]}/")
        monkeypatch.delenv("IMPERCEPTIBLE_OFFLINE")
        model = M.get("torchvision:resnet18", progress=False)
        x = torch.rand(1, 3, 224, 224)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        assert torch.allclose(model(x), net((x - mean) / std), atol=1e-5)
        assert (tmp_path / "torch" / "hub" / "checkpoints" / fake).is_file() and real != fake
    finally:
        srv.shutdown()


def test_unknown_model():
    with pytest.raises(UnknownNameError, match="unknown model 'resnet'"):
        M.get("resnet")


def test_training_loop_is_seeded_and_leaves_global_rng_alone(mnist_test):
    x, y = mnist_test.images[:128], mnist_test.labels[:128]
    nets = []
    for seed in (3, 3, 4):
        torch.manual_seed(123)  # initialisation only; training randomness comes from `seed`
        net = M.cnn_a()
        before = torch.random.get_rng_state()
        M.train_classifier(net, x, y, epochs=1, seed=seed, progress=False, max_shift=1)
        assert torch.equal(torch.random.get_rng_state(), before)  # dropout and shuffling drew from their own RNGs
        nets.append(torch.cat([p.flatten() for p in net.parameters()]))
    assert torch.equal(nets[0], nets[1])
    assert not torch.equal(nets[0], nets[2])


def test_fast_layout_changes_strides_not_values_and_to_size_passes_a_fitting_input_through():
    """On the CPU the fast layout is channels-last (in place, the same state dict and logits up to summation order);
    cnn_any_size's pooling returns a 7x7 input itself and still pools a larger one as AdaptiveAvgPool2d does."""
    from imperceptible.models.layout import fast_layout, in_fast_layout
    from imperceptible.models.small_cnn import ToSize, cnn_any_size

    torch.manual_seed(0)
    net = cnn_any_size(10, 1).eval()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        before, state = net(x), {k: v.clone() for k, v in net.state_dict().items()}
        assert not in_fast_layout(net) and fast_layout(net) is net and in_fast_layout(net)
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
        assert torch.allclose(net(x), before, atol=1e-5)
    pool, h = ToSize(7), torch.rand(2, 3, 7, 7)
    assert pool(h) is h
    big = torch.rand(2, 3, 14, 21)
    assert torch.equal(pool(big), torch.nn.AdaptiveAvgPool2d(7)(big))
    assert pool(big).shape == (2, 3, 7, 7)
