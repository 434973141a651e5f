import csv
import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from imperceptible import data as D
from imperceptible.validation import DatasetNotFoundError, UnknownNameError

from .conftest import require_imagenet_compatible, skip_or_fail


def _check(ds, n, shape, num_classes):
    assert len(ds) == n
    assert tuple(ds.images.shape[1:]) == shape
    assert ds.images.dtype == torch.float32 and ds.labels.dtype == torch.int64
    assert 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.labels.min() >= 0 and ds.labels.max() < num_classes
    assert len(set(ds.ids)) == n


def test_mnist_splits_are_deterministic_and_stratified():
    tr, te, al = D.load("mnist", split="train"), D.load("mnist"), D.load("mnist", split="all")
    _check(tr, 4000, (1, 28, 28), 10)
    _check(te, 1000, (1, 28, 28), 10)
    _check(al, 5000, (1, 28, 28), 10)
    assert torch.bincount(te.labels).tolist() == [100] * 10
    assert not set(tr.ids) & set(te.ids)
    assert D.load("mnist").ids == te.ids
    # the first few test digits mix classes (a --limit run is not all zeros)
    assert len(set(te.labels[:20].tolist())) >= 5
    assert te.images.max() == 1.0  # real digits reach full ink


def test_mnist_test20_labels_from_file_names():
    ds = D.load("mnist-test20")
    _check(ds, 20, (1, 28, 28), 10)
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_imagenet_samples():
    ds = D.load("imagenet-samples")
    _check(ds, 20, (3, 224, 224), 1000)
    assert ds.labels[:3].tolist() == [243, 559, 438]
    assert D.load("imagenet-samples", size=64).images.shape[-1] == 64


def test_fashion_mnist():
    try:
        ds = D.load("fashion-mnist")
    except DatasetNotFoundError as e:
        skip_or_fail(f"Debian's dataset-fashion-mnist is not installed: {e}")
    _check(ds, 10000, (1, 28, 28), 10)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    F = importlib.import_module("imperceptible.data.fashion_mnist")

    monkeypatch.setattr(F, "DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.delenv(F.ENV, raising=False)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        F.fashion_mnist("test")


def test_folder_dataset(tmp_path):
    rng = np.random.RandomState(0)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "group"])
        for i in range(5):
            Image.fromarray(rng.randint(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
            w.writerow([f"{i}.png", i % 3, "A" if i < 3 else "B"])
    ds = D.load(f"folder:{tmp_path}")
    _check(ds, 5, (3, 16, 16), 3)
    assert ds.groups == ["A", "A", "A", "B", "B"]
    assert ds.labels.tolist() == [0, 1, 2, 0, 1]
    with Image.open(tmp_path / "0.png") as im:
        assert torch.allclose(ds.images[0], torch.from_numpy(np.asarray(im) / 255.0).permute(2, 0, 1).float())


def _save(path, arr, mode=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path, **kw)


def test_folders_as_people_have_them(tmp_path):
    """Sub-folders, several sizes, RGBA, palette, 16-bit grey and grey mixed with RGB."""
    rng = np.random.RandomState(1)
    root = tmp_path / "photos"
    rgb = rng.randint(0, 256, (40, 60, 3), dtype=np.uint8)
    _save(root / "cat" / "a.png", rgb)
    rgba = np.dstack([rgb[:30, :30], np.full((30, 30), 128, np.uint8)])
    rgba[0, 0, 3] = 0  # fully transparent: white
    _save(root / "cat" / "b.png", rgba, "RGBA")
    (root / "dog").mkdir()
    Image.fromarray(rgb[:32, :48]).convert("P", palette=Image.ADAPTIVE).save(root / "dog" / "c.png")
    grey16 = (np.linspace(0, 65535, 36 * 36).reshape(36, 36)).astype(np.uint16)
    Image.fromarray(grey16).save(root / "dog" / "d.png")
    _save(root / "e.jpg", rng.randint(0, 256, (50, 50), dtype=np.uint8), quality=95)
    (root / "labels.csv").write_text("file,label\ncat/a.png,0\ncat/b.png,0\ndog/c.png,1\ndog/d.png,1\ne.jpg,2\n")
    ds = D.load(f"folder:{root}")
    _check(ds, 5, (3, 30, 30), 3)  # the smallest shorter side, RGB because some images have colour
    assert ds.ids == ["cat/a.png", "cat/b.png", "dog/c.png", "dog/d.png", "e.jpg"]
    # 16-bit grey is scaled by 65535, not clipped at 255: its pixels span the whole range
    d = ds.images[3]
    assert d.min() < 0.05 and d.max() > 0.95 and torch.equal(d[0], d[1])
    # transparency composited over white
    b = D.folder.image_folder(str(root), size=30)
    assert torch.allclose(b.images[1][:, 0, 0], torch.ones(3))
    sized = D.load(f"folder:{root}", size=24)
    _check(sized, 5, (3, 24, 24), 3)
    grey = D.folder.image_folder(str(root), grey=True, size=16)
    _check(grey, 5, (1, 16, 16), 3)


def test_image_folder_layout_without_labels_csv(tmp_path):
    rng = np.random.RandomState(2)
    for cls, n in (("zebra", 2), ("ant", 3)):
        for i in range(n):
            _save(tmp_path / cls / f"{i}.png", rng.randint(0, 256, (20, 20, 3), dtype=np.uint8))
    (tmp_path / "zebra" / "notes.txt").write_text("not an image")
    ds = D.load(f"folder:{tmp_path}")
    _check(ds, 5, (3, 20, 20), 2)
    assert ds.class_names == ["ant", "zebra"] and ds.labels.tolist() == [0, 0, 0, 1, 1]  # torchvision's order
    assert ds.ids[0] == "ant/0.png"


@pytest.mark.parametrize("rows,files,msg", [
    ("file,label\na.png,x\n", ["a.png"], "labels.csv row 2 (a.png): expected an integer class label >= 0, got 'x'"),
    ("file,label\na.png,-1\n", ["a.png"], "expected an integer class label >= 0, got '-1'"),
    ("file,label\nb.png,0\n", [], "labels.csv row 2: expected an image file at"),
    ("file,label\na.png,0\na.png,1\n", ["a.png"],
     "labels.csv row 3: expected each file once, got 'a.png' again (first at row 2)"),
    ("file,label\n../outside.png,0\n", [], "labels.csv row 2: expected a path inside"),
    ("file,label\nbad.png,0\n", ["bad.png:garbage"], "labels.csv row 2: expected a readable image file at"),
    ("file,label\ncut.png,0\n", ["cut.png:truncated"], "labels.csv row 2: expected a readable image file at"),
    ("name,cls\na.png,1\n", ["a.png"], "expected columns file,label"),
])
def test_bad_rows_name_the_row_and_the_file(tmp_path, rows, files, msg):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(b"")
    for f in files:
        name, _, kind = f.partition(":")
        if kind == "garbage":
            (root / name).write_bytes(b"not an image at all")
        else:
            _save(root / name, np.zeros((8, 8, 3), np.uint8))
            if kind == "truncated":
                data = (root / name).read_bytes()
                (root / name).write_bytes(data[: len(data) // 2])
    (root / "labels.csv").write_text(rows)
    with pytest.raises(ValueError) as e:
        D.load(f"folder:{root}")
    assert msg in str(e.value)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        D.load(f"folder:{tmp_path / 'absent'}")
    with pytest.raises(DatasetNotFoundError, match="no images"):
        D.load(f"folder:{tmp_path}")


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar10'"):
        D.load("cifar10")


def test_gdp_table():
    t = D.gdp_table()
    assert len(t) == 142
    assert {"country", "gdp_per_capita", "log_gdp"} <= set(t.columns)
    us = t[t.country == "United States"].iloc[0]
    assert 40000 < us.gdp_per_capita < 50000
    assert np.isclose(us.log_gdp, np.log(us.gdp_per_capita))


def test_imagenet_compatible_loader():
    root = require_imagenet_compatible()
    ds = D.load(f"imagenet-compatible:{root}", limit=12)
    _check(ds, 12, (3, 224, 224), 1000)
    with open(root / "images.csv", newline="") as f:
        rows = {r["ImageId"]: r for r in csv.DictReader(f)}
    assert ds.ids == sorted(rows)[:12]
    for sid, lab in zip(ds.ids, ds.labels.tolist()):
        assert lab == int(rows[sid]["TrueLabel"]) - 1  # 1-based Inception labels
    full = D.imagenet_compatible(root, size=299, limit=2)
    assert tuple(full.images.shape[1:]) == (3, 299, 299)


def test_imagenet_compatible_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("IMPERCEPTIBLE_IMAGENET_COMPATIBLE", raising=False)
    with pytest.raises(DatasetNotFoundError, match="PerC-Adversarial"):
        D.load(f"imagenet-compatible:{tmp_path}")
    with pytest.raises(DatasetNotFoundError, match="IMPERCEPTIBLE_IMAGENET_COMPATIBLE"):
        D.load("imagenet-compatible")


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_short_attack_run_on_imagenet_compatible(effnet, tmp_path):
    """The bench machinery end to end on a handful of the paper's own evaluation images."""
    root = require_imagenet_compatible()
    from imperceptible.attacks import PGDL2, HumanPercOT
    from imperceptible.experiments.bench_attacks import bench_attacks

    s = bench_attacks(dataset=f"imagenet-compatible:{root}", model="efficientnet-lite0", out=tmp_path / "run",
                      limit=2, batch_size=2, progress=False, attacks=[HumanPercOT(budget=20), PGDL2()], n_grids=1)
    hpo = s["methods"]["human-perc-ot"]
    assert s["n_images"] == 2 and hpo["n_clean_correct"] >= 1
    assert hpo["success_rate"] == 1.0
    assert "Flickr" in (tmp_path / "run" / "report.html").read_text()
