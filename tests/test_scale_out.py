"""Scale-out with Lightning Fabric: 2 CPU processes (gloo) give the same per-sample results and the same
sampled models as one process, a killed run resumes without losing anything, and bf16 autocast does not
change attack success on the CPU."""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """The real command, in a fresh interpreter (Fabric's launcher re-runs it for rank 1)."""
    return subprocess.run([sys.executable, "-m", "imperceptible", *args], env=ENV, capture_output=True, text=True,
                          timeout=600, **kw)


def rows(run: Path) -> dict:
    """Per-sample results, without the wall-clock columns."""
    con = sqlite3.connect(run / "results.sqlite")
    cur = con.execute("SELECT * FROM results")
    names = [d[0] for d in cur.description]
    out = {}
    for r in cur:
        d = dict(zip(names, r))
        d.pop("time_s")
        out[(d.pop("id"), d.pop("method"))] = d
    con.close()
    return out


ATTACK = ["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "human-perc-ot", "--batch-size", "8",
          "--no-learned", "--quiet", "--accelerator", "cpu"]


@pytest.fixture(scope="module")
def single_process_run(mnist_cnn, tmp_path_factory):
    """One process, one thread: the reference (the mnist-cnn fixture has cached the model first)."""
    out = tmp_path_factory.mktemp("one") / "run"
    r = cli(*ATTACK, "--limit", "16", "--out", str(out), "--devices", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_two_processes_give_exactly_the_single_process_results(single_process_run, tmp_path):
    out = tmp_path / "two"
    r = cli(*ATTACK, "--limit", "16", "--out", str(out), "--devices", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = rows(single_process_run), rows(out)
    assert len(one) == 16 and one.keys() == two.keys()  # no loss, no duplicates
    assert one == two
    cfg = (out / "config.json").read_text()
    assert '"world_size": 2' in cfg and '"backend": "gloo"' in cfg
    assert sorted(p.name for p in (out / "images" / "human-perc-ot").iterdir()) == \
        sorted(p.name for p in (single_process_run / "images" / "human-perc-ot").iterdir())


@pytest.mark.slow  # 50 s of process start-ups (pytest -m slow)
def test_killed_two_process_run_resumes_without_loss(single_process_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "imperceptible", *ATTACK, "--limit", "16", "--out", str(out), "--devices", "2"]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = out / "results.sqlite"
    deadline = time.time() + 300
    n = 0
    while time.time() < deadline and p.poll() is None:
        if db.is_file():
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    n = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= 4:
                break
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)  # both ranks, mid-run
    p.wait()
    kept = rows(out)
    assert 4 <= len(kept) < 16, f"the kill should land mid-run, found {len(kept)} rows"
    r = cli(*ATTACK, "--limit", "16", "--out", str(out), "--devices", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    final, ref = rows(out), rows(single_process_run)
    assert final == ref
    assert all(final[k] == v for k, v in kept.items())  # what was finished before the kill is untouched


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_distributed_algorithm2_and_sampled_models_match_one_process(tmp_path, mnist_cnn):
    import numpy as np
    import pandas as pd
    from PIL import Image

    from imperceptible.data import load
    from imperceptible.data.grouped import grouped_splits
    from imperceptible.dro import KMeansCache, WeightedDataset, build_adversarial_dataset, sample_model
    from imperceptible.dro.algorithms import WEIGHT_DECAY
    from imperceptible.experiments.fairness import FairnessConfig, default_families, load_model
    from imperceptible.experiments.fairness.worlds import Worlds
    from imperceptible.seeds import derive

    d = load("mnist", split="train", limit=240)
    root = tmp_path / "data"
    root.mkdir()
    recs = []
    for i in range(len(d)):
        Image.fromarray((d.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(root / f"{i}.png")
        recs.append({"file": f"{i}.png", "label": int(d.labels[i]), "group": f"g{i % 4}"})
    pd.DataFrame(recs).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"group": [f"g{i}" for i in range(4)], "covariate": [7.0, 8.0, 9.0, 10.0]}).to_csv(
        root / "cov.csv", index=False)
    out = tmp_path / "study"
    r = cli("fairness", "--dataset", f"folder:{root}", "--covariates", str(root / "cov.csv"), "--models", "2",
            "--dro-seeds", "1", "--dro-size", "32", "--t1", "1", "--t2", "1", "--min-count", "5", "--reading", "literal",
            "--quiet", "--accelerator", "cpu", "--devices", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "pre-trained model (world 1)" in r.stdout and "gate cue_changed_ratio: n/a" in r.stdout
    assert all(f"{arm:26s} mean beta" in r.stdout for arm in ("human-perc-ot", "pgd-l2"))
    cfg = FairnessConfig(dataset=f"folder:{root}", covariates=str(root / "cov.csv"), models=2, dro_seeds=1,
                         dro_size=32, t1=1, t2=1, min_count=5, reading="literal")
    splits = grouped_splits(cfg.dataset, covariates=cfg.covariates)
    theta0 = load_model(splits.train, out / "models" / "theta0_r1.pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # Algorithm 2 ran data-parallel: the same draws, weights and origins as one process (the steps
        # differ by the ranks' own dropout masks; test_data_parallel_algorithm2_equals_one_process checks
        # the steps on a dropout-free network)
        sub = Worlds(cfg).subset(1)
        xs, ys = splits.train.images[sub], splits.train.labels[sub]
        for fam, attack in default_families(cfg).items():
            one, _ = build_adversarial_dataset(
                copy.deepcopy(theta0), xs, ys, attack, epochs=1, lr=cfg.lr, weight_decay=WEIGHT_DECAY,
                batch_size=cfg.batch_size, seed=derive(cfg.seed, "algorithm2", fam, 1) % 2**31, reading="literal",
                cache=KMeansCache(xs, ys, per_cluster=cfg.per_cluster, random_state=derive(cfg.seed, "kmeans", 1) % 2**31),
                progress=False)
            two = WeightedDataset.load(out / "algorithm2" / fam / "r1.dataset.pt")
            for f in ("y", "weight", "adversarial", "origin"):
                assert torch.equal(getattr(one, f), getattr(two, f)), (fam, f)
            assert len(two) == 2 * 32
        data = WeightedDataset.load(out / "algorithm2" / "pgd-l2" / "r1.dataset.pt")
        for k in (1, 2):  # the arms' models were spread over the ranks
            ref = sample_model(theta0, data, lr=cfg.lr, weight_decay=WEIGHT_DECAY, epochs=cfg.t2,
                               batch_size=cfg.batch_size, seed=derive(cfg.seed, "algorithm3", 1, k) % 2**31,
                               weighting=cfg.weighting, draws=cfg.draws).net.state_dict()
            got = torch.load(out / "models" / "pgd-l2" / f"r1_k{k}.pt", weights_only=True)
            assert all(torch.equal(ref[n], got[n]) for n in ref), k
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow  # 27 s (pytest -m slow); the distributed study test above covers the same engine in the default run
def test_data_parallel_algorithm2_equals_one_process(tmp_path, mnist_cnn):
    script = Path(__file__).parent / "scripts" / "alg2_ddp.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    sys.path.insert(0, str(script.parent))
    try:
        from alg2_ddp import problem
    finally:
        sys.path.pop(0)
    from imperceptible.dro import KMeansCache, WeightedDataset, build_adversarial_dataset

    model, x, y, attack = problem()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one, one_model = build_adversarial_dataset(copy.deepcopy(model), x, y, attack, epochs=2, batch_size=16,
                                                   lr=0.05, cache=KMeansCache(x, y, random_state=0), progress=False)
    finally:
        torch.set_num_threads(threads)
    two = WeightedDataset.load(tmp_path / "D.pt")
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert len(two) == 3 * 64
    for f in ("y", "weight", "adversarial", "origin"):
        assert torch.equal(getattr(one, f), getattr(two, f)), f
    assert saved["checksums"][0] == saved["checksums"][1]  # both ranks hold the same D
    for n, p in one_model.net.state_dict().items():  # the same SGD steps, up to float summation order
        assert torch.allclose(p, saved["model"][n], atol=1e-5, rtol=1e-4), n
    same = (one.x == two.x).flatten(1).all(1).float().mean()
    assert same >= 0.95, float(same)  # an attack may stop one step apart on a float tie
    assert one.cached.any() and (one.cached == two.cached).float().mean() >= 0.95  # the k-means cache, shared


@pytest.mark.slow  # the default suite's 6 minutes (CONTRIBUTING)
def test_bf16_autocast_keeps_success_and_rejudges_it_in_float32(mnist_cnn, mnist_correct, tmp_path):
    """Under bf16-mixed the attack runs in autocast; success, margins and 'reached' are what the float32 model
    says about the returned images. A borderline sample may end on the other side, so the check is that
    (nearly) every sample succeeds both ways and that the recorded success is the float32 verdict."""
    from imperceptible.attacks import HumanPercOT, margin
    from imperceptible.data.base import ImageDataset
    from imperceptible.engine import EngineConfig, make_engine
    from imperceptible.evaluate.evaluator import Evaluator
    from imperceptible.runs.attack_run import run_attack
    from imperceptible.runs.rundir import RunDir

    x, y = mnist_correct
    ds = ImageDataset("mnist", x, y, [f"m{i:02d}" for i in range(len(y))], 10)
    success, margins = {}, {}
    for prec in ("32-true", "bf16-mixed"):
        run = RunDir(tmp_path / prec)
        engine = make_engine(EngineConfig(precision=prec))
        run_attack(run, "hpo", HumanPercOT(budget=30), mnist_cnn, ds, Evaluator(learned=False, saliency=None, ssim_kernel=7),
                   batch_size=16, progress=False, engine=engine)
        rows = run.store.rows("hpo")
        success[prec] = {r["id"]: bool(r["success"]) for r in rows}
        margins[prec] = [r["margin_float"] for r in rows]
        with torch.no_grad():
            adv = torch.stack([run.load_image("hpo", r["id"]) for r in rows])
            m32 = margin(mnist_cnn(adv), torch.tensor([r["label"] for r in rows]))
        assert [r["success"] == 1 for r in rows] == (m32 > 0).tolist()  # the float32 verdict is what is stored
    assert len(success["32-true"]) == len(y) >= 50
    agree = np.mean([success["bf16-mixed"][k] == v for k, v in success["32-true"].items()])
    assert agree >= 0.95 and np.mean(list(success["bf16-mixed"].values())) >= 0.95
    assert all(success["32-true"].values())
    assert margins["bf16-mixed"] != margins["32-true"]  # autocast did engage: the iterates differ
