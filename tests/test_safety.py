"""Never a wrong number, never a lost file: clean images on the 8-bit grid for every dataset kind, an --overwrite
that deletes only its own, an --out inside the dataset refused, and a run directory never read back as data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imperceptible.cli.main import main
from imperceptible.data import load
from imperceptible.pixels import off_grid, quantize_8bit

from .conftest import require_imagenet_compatible, skip_or_fail


def _photos(root: Path, sizes=((40, 30), (37, 52), (64, 64))) -> Path:
    """A labels.csv folder of RGB photos of several sizes (so the loader must resize)."""
    root.mkdir(parents=True)
    g = np.random.default_rng(0)
    rows = ["file,label"]
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"p{i}.png")
        rows.append(f"p{i}.png,{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_every_dataset_kind_loads_clean_images_on_the_8bit_grid(tmp_path):
    root = _photos(tmp_path / "photos")
    for name, kw in (("mnist", {"limit": 50}), ("imagenet-samples", {}), (f"folder:{root}", {}),
                     (f"folder:{root}", {"size": 24})):
        ds = load(name, **kw)
        assert off_grid(ds.images) == 0, (name, kw)
    resized = load(f"folder:{root}", size=24).images
    assert resized.shape[-2:] == (24, 24) and torch.equal(resized, quantize_8bit(resized))


def test_the_papers_images_and_geo_fashion_are_on_the_grid():
    folder = require_imagenet_compatible()
    ds = load(f"imagenet-compatible:{folder}", limit=4, size=160)
    assert off_grid(ds.images) == 0
    from imperceptible.data.fashion_mnist import fashion_mnist
    from imperceptible.validation import DatasetNotFoundError

    try:
        fashion_mnist("test")
    except DatasetNotFoundError as e:
        skip_or_fail(f"Fashion-MNIST is absent here ({e})")
    assert off_grid(load("geo-fashion", split="test", limit=200).images) == 0


def test_an_attack_refuses_an_image_off_the_grid(mnist_cnn):
    from imperceptible.attacks import PGDL2
    from imperceptible.validation import MSG_OFF_GRID, MSG_ROUND_FIRST, GridError

    x = torch.full((1, 1, 28, 28), 0.5)  # 0.5 * 255 = 127.5: between two levels
    with pytest.raises(GridError) as e:
        PGDL2()(mnist_cnn, x, torch.tensor([3]))
    assert str(e.value) == MSG_OFF_GRID.format(name="x", count=784, example=0.5, how=MSG_ROUND_FIRST)
    PGDL2(quantize=False, steps=1)(mnist_cnn, x, torch.tensor([3]))  # a float attack takes float images


def _attack_cli(data: str, out: Path, *extra: str) -> int:
    return main(["attack", "--dataset", data, "--model", "mnist-cnn", "--attack", "pgd-l2", "--param", "steps=2",
                 "--limit", "2", "--no-learned", "--out", str(out), "--quiet", *extra])


def _digits(root: Path) -> Path:
    d = load("mnist", limit=4)
    root.mkdir(parents=True)
    for i in range(len(d)):
        cls = root / str(int(d.labels[i]))
        cls.mkdir(exist_ok=True)
        Image.fromarray((d.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(cls / f"{i}.png")
    return root


def test_overwrite_deletes_only_what_the_tool_wrote(tmp_path, capsys):
    from imperceptible.validation import MSG_OUT_FOREIGN, MSG_OUT_NOT_OURS

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.tex").write_bytes(b"\\section{mine}")
    assert _attack_cli("mnist", mine, "--overwrite") == 2
    assert capsys.readouterr().err.strip().endswith(MSG_OUT_NOT_OURS.format(path=mine, example="notes.tex"))
    assert (mine / "notes.tex").read_bytes() == b"\\section{mine}"

    run = tmp_path / "run"
    assert _attack_cli("mnist", run) == 0
    (run / "notes.tex").write_bytes(b"kept")
    capsys.readouterr()
    assert _attack_cli("mnist", run, "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(MSG_OUT_FOREIGN.format(path=run, n=1, ies="y", example="notes.tex"))
    assert (run / "notes.tex").read_bytes() == b"kept" and (run / "summary.json").is_file()
    (run / "notes.tex").unlink()
    assert _attack_cli("mnist", run, "--overwrite") == 0  # only its own files: replaced


def test_out_inside_the_dataset_is_refused_and_a_run_directory_is_never_data(tmp_path, capsys):
    from imperceptible.validation import MSG_OUT_IN_DATA

    root = _digits(tmp_path / "digits")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    n = len(load(f"folder:{root}"))
    inside = root / "runs" / "a"
    assert _attack_cli(f"folder:{root}", inside) == 2
    assert capsys.readouterr().err.strip().endswith(MSG_OUT_IN_DATA.format(path=inside, root=root))
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the data
    # a run directory of ours that a user moved into the data folder is skipped, not read as a class
    run = tmp_path / "run"
    assert _attack_cli("mnist", run) == 0
    os.rename(run, root / "zz-run")
    assert len(load(f"folder:{root}")) == n


def test_a_class_folder_linking_out_of_the_dataset_is_refused(tmp_path):
    from imperceptible.validation import MSG_FOLDER_CLASS_LINK, TableError

    root = _digits(tmp_path / "digits")
    elsewhere = _digits(tmp_path / "elsewhere")
    link = root / "linked"
    link.symlink_to(next(p for p in elsewhere.iterdir() if p.is_dir()))
    with pytest.raises(TableError) as e:
        load(f"folder:{root}")
    assert str(e.value) == MSG_FOLDER_CLASS_LINK.format(path=link, target=link.resolve(), root=root.resolve()) or \
        str(e.value) == MSG_FOLDER_CLASS_LINK.format(path=link, target=link.resolve(), root=root)


def test_gpu_asked_for_without_one_is_one_line(tmp_path, capsys, monkeypatch):
    from imperceptible.validation import MSG_NO_GPU

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "pgd-l2", "--limit", "1",
                 "--accelerator", "gpu", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().endswith(MSG_NO_GPU.format(accelerator="gpu"))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_model_whose_output_ignores_its_input_is_one_line():
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.models import ImageClassifier
    from imperceptible.validation import MSG_NO_GRADIENT, ModelOutputError

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[2.0, 0.0]]).expand(x.shape[0], 2)

    m = ImageClassifier(Constant(), mean=(0.0,), std=(1.0,), num_classes=2, input_size=None, name="constant")
    x = quantize_8bit(torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    for attack in (PGDL2(), HumanPercOT()):
        with pytest.raises(ModelOutputError) as e:
            attack(m, x, torch.tensor([0, 0]))
        assert str(e.value) == MSG_NO_GRADIENT.format(attack=attack.label())


def test_fairness_test_refuses_a_group_given_twice(tmp_path, capsys):
    import pandas as pd

    from imperceptible.fairness import read_table
    from imperceptible.validation import MSG_DUPLICATE_GROUP, TableError

    rows = {"group": list("abcdefb"), "covariate": [7.0, 7.5, 8, 8.5, 9, 9.5, 7.5], "n": [60] * 7,
            "accuracy": [0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.72]}
    p = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    with pytest.raises(TableError) as e:
        read_table(p)
    assert str(e.value) == MSG_DUPLICATE_GROUP.format(group="b", rows=[2, 7],
                                                      how=" (identical: counted twice it would add a group)")
    rows["accuracy"][-1] = 0.9
    pd.DataFrame(rows).to_csv(p, index=False)
    assert main(["fairness", "test", "--table", str(p), "--min-count", "10"]) == 2
    assert "(with different values)" in capsys.readouterr().err


def _script(tmp_path: Path, name: str, net: torch.nn.Module, *, trace_train: bool = False) -> str:
    path = tmp_path / f"{name}.pt"
    if trace_train:  # dropout baked in: traced in training mode
        net.train()
        torch.jit.trace(net, torch.rand(1, 1, 28, 28)).save(str(path))
    else:
        torch.jit.script(net.eval()).save(str(path))
    return f"torchscript:{path}"


def test_models_that_are_not_logit_classifiers_are_refused_or_warned(tmp_path, capsys, caplog):
    from imperceptible.validation import MSG_NONDETERMINISTIC, MSG_PROBABILITIES, MSG_ZERO_ACCURACY

    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    soft = _script(tmp_path, "softmax", torch.nn.Sequential(body, torch.nn.Softmax(dim=1)))
    assert _attack_cli("mnist", tmp_path / "r1", "--model", soft) == 2
    assert capsys.readouterr().err.strip().endswith(MSG_PROBABILITIES.format(name=soft))
    noisy = _script(tmp_path, "dropout", torch.nn.Sequential(torch.nn.Dropout(0.5), body), trace_train=True)
    assert _attack_cli("mnist", tmp_path / "r2", "--model", noisy) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    head, tail = MSG_NONDETERMINISTIC.replace("{diff:.3g}", "\0").format(name=noisy).split("\0")  # around the number
    assert head in err and err.endswith(tail) and float(err[err.index(head) + len(head):-len(tail)]) > 0

    class Bytes(torch.nn.Module):  # a model that expects 0-255 input: on [0, 1] images it always says class 9
        def forward(self, x):
            s = x.flatten(1).sum(1, keepdim=True)
            return torch.cat([torch.zeros(x.shape[0], 9), 5 * (s < 1e4).float()], 1)

    zero = _script(tmp_path, "bytes", Bytes())
    d = load("mnist", limit=16)
    keep = (d.labels != 9).nonzero().squeeze(1)
    data = tmp_path / "digits"
    data.mkdir()
    rows = ["file,label"]
    for i in keep.tolist():
        Image.fromarray((d.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(data / f"{i}.png")
        rows.append(f"{i}.png,{int(d.labels[i])}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING"):
        assert main(["attack", "--dataset", f"folder:{data}", "--model", zero, "--attack", "pgd-l2", "--param",
                     "steps=2", "--no-learned", "--out", str(tmp_path / "r3"), "--quiet"]) == 0
    assert MSG_ZERO_ACCURACY.format(name=zero, n=min(16, len(keep))) in caplog.text


def test_infinite_or_non_numeric_parameters_are_refused_in_one_rule():
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.validation import MSG_PARAM, ParameterError

    for make, name in ((lambda v: PGDL2(eps=v), "eps"), (lambda v: HumanPercOT(confidence=1.0, eps=v), "eps")):
        for bad in (float("inf"), float("nan"), "1", -1.0):
            with pytest.raises(ParameterError) as e:
                make(bad)
            assert str(e.value) == MSG_PARAM.format(name=name, expected="a finite number > 0", got=bad)


def test_exif_orientation_is_applied(tmp_path):
    """A portrait photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view) loads upright."""
    root = tmp_path / "photos"
    root.mkdir()
    a = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high; the left half white
    a[:, :20] = 255
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(root / "p.jpg", exif=exif.tobytes(), quality=95)
    (root / "labels.csv").write_text("file,label\np.jpg,0\n")
    x = load(f"folder:{root}").images[0]
    assert tuple(x.shape[-2:]) == (40, 20)  # upright: 40 high, 20 wide
    assert x[:, :20].mean() > 0.9 and x[:, 20:].mean() < 0.1  # the white half is now on top


def test_messages_say_what_is_wrong(tmp_path, capsys):
    from imperceptible.costs import get as get_cost
    from imperceptible.validation import MSG_LABEL_BEYOND, MSG_TOO_SMALL, ParameterError

    x = torch.full((1, 3, 1, 1), 0.5)
    with pytest.raises(ParameterError) as e:
        get_cost("ssim")(x, x)
    assert str(e.value) == MSG_TOO_SMALL.format(metric="SSIM", k=11, h=1, w=1)
    root = _digits(tmp_path / "digits")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    rows = ["file,label"] + [f"{f},{12 if i == 1 else 1}" for i, f in enumerate(files)]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    assert _attack_cli(f"folder:{root}", tmp_path / "run") == 2
    err = capsys.readouterr().err.strip()
    ds = load(f"folder:{root}", limit=2)
    row = int((ds.labels == 12).nonzero()[0, 0])
    assert err.endswith(MSG_LABEL_BEYOND.format(dataset=f"folder:{root}", k=10, label=12, sample=ds.ids[row],
                                                row=row + 1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_float64_or_half_torchscript_model_is_cast_and_said(tmp_path, caplog, dtype):
    import copy

    from imperceptible.models.torchscript import torchscript_model
    from imperceptible.validation import MSG_TORCHSCRIPT_CAST

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10)).eval()
    stored = copy.deepcopy(net).to(dtype)
    path = tmp_path / "net.pt"
    torch.jit.script(stored).save(str(path))
    with caplog.at_level("WARNING"):
        m = torchscript_model(path, channels=1, size=(28, 28))
    assert MSG_TORCHSCRIPT_CAST.format(path=path, dtype=str(dtype).replace("torch.", "")) in caplog.text
    x = torch.rand(3, 1, 28, 28)
    logits = m(x)
    assert logits.dtype == torch.float32
    # the float32 network with the stored weights, exactly
    assert torch.allclose(logits, stored.float()(x), atol=1e-6)


def test_a_hand_edited_fingerprint_is_restored_from_config_json(tmp_path, caplog):
    import json

    from imperceptible.runs.rundir import RunDir
    from imperceptible.validation import MSG_OUT_FINGERPRINT_EDITED, RunDirError

    out = tmp_path / "run"
    run = RunDir.open(out, job="attack", fingerprint={"steps": 10})
    run.write_config({"job": "attack"})
    (out / "fingerprint.json").write_text(json.dumps({"job": "attack", "steps": 99}))  # edited by hand
    with caplog.at_level("WARNING"):
        RunDir.open(out, job="attack", fingerprint={"steps": 10})  # resumes: config.json holds the same
    assert MSG_OUT_FINGERPRINT_EDITED.format(path=out, diffs="steps: 99 -> 10") in caplog.text
    assert json.loads((out / "fingerprint.json").read_text()) == {"job": "attack", "steps": 10}
    # with settings that agree with neither, the resume is still refused
    (out / "fingerprint.json").write_text(json.dumps({"job": "attack", "steps": 99}))
    with pytest.raises(RunDirError, match="steps: 99 -> 20"):
        RunDir.open(out, job="attack", fingerprint={"steps": 20})


def test_config_json_records_the_code_and_a_resume_with_other_code_says_so(tmp_path, caplog, monkeypatch):
    """config.json's "code" holds the package's version, folder and git commit (this checkout's HEAD); a resume with the
    same code adds nothing, one with other code adds it with its time and warns that the rows may come from both."""
    import json
    import subprocess

    from imperceptible import __version__
    from imperceptible.notices import MSG_RESUMED_OTHER_CODE
    from imperceptible.runs import rundir
    from imperceptible.runs.rundir import RunDir

    out = tmp_path / "run"
    RunDir.open(out, job="attack", fingerprint={"steps": 10}).write_config({"job": "attack"})
    cfg = json.loads((out / "config.json").read_text())
    (first,) = cfg["code"]
    assert first["version"] == __version__ == cfg["versions"]["imperceptible"]
    assert first["source"].endswith("imperceptible")
    head = subprocess.run(["git", "-C", first["source"], "rev-parse", "HEAD"], capture_output=True, text=True)
    assert first["revision"] == (head.stdout.strip() if head.returncode == 0 else None)
    RunDir.open(out, job="attack", fingerprint={"steps": 10}).write_config({"job": "attack"})
    assert len(json.loads((out / "config.json").read_text())["code"]) == 1  # the same code: nothing added
    other = dict(rundir.code_identity(), revision="0" * 40, modified=False)
    monkeypatch.setattr(rundir, "code_identity", lambda: other)
    with caplog.at_level("WARNING"):
        RunDir.open(out, job="attack", fingerprint={"steps": 10}).write_config({"job": "attack"})
    codes = json.loads((out / "config.json").read_text())["code"]
    assert [c["revision"] for c in codes] == [first["revision"], "0" * 40] and "at" in codes[1]
    assert MSG_RESUMED_OTHER_CODE.split("{before}")[0].format(path=out) in caplog.text
    assert "commit 0000000000" in caplog.text
