"""Algorithms 2 and 3 and the k-means cache, on the real MNIST CNN and digits."""

import copy

import numpy as np
import pytest
import torch
from scipy import stats

from imperceptible.attacks import PGDL2
from imperceptible.dro import KMeansCache, WeightedDataset, build_adversarial_dataset, sample_model, weighted_indices


@pytest.fixture(scope="module")
def digits():
    from imperceptible.data import load

    d = load("mnist", split="train", limit=48)
    return d.images, d.labels


def _attack():
    return PGDL2(eps=3.0, alpha=0.5, steps=10)


def test_algorithm2_dataset_size_and_weights(mnist_cnn, digits):
    x, y = digits
    model = copy.deepcopy(mnist_cnn)
    data, trained = build_adversarial_dataset(model, x, y, _attack(), epochs=2, batch_size=16, progress=False)
    N = len(y)
    assert len(data) == N + 2 * N
    assert torch.equal(data.weight[:N], torch.ones(N))
    for k in (1, 2):
        w = data.weight[N * k : N * (k + 1)]
        assert torch.equal(w, (k - 1) * N + torch.arange(1, N + 1, dtype=torch.float32))
    assert not data.adversarial[:N].any() and data.adversarial[N:].all()
    assert torch.equal(data.y[N:], y[data.origin[N:]])
    assert 0 <= data.x.min() and data.x.max() <= 1
    assert not trained.training


def test_weighted_sampling_follows_the_weights():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    idx = weighted_indices(w, 20000, torch.Generator().manual_seed(0))
    counts = torch.bincount(idx, minlength=4).numpy()
    chi = stats.chisquare(counts, 20000 * (w / w.sum()).numpy())
    assert chi.pvalue > 0.01
    assert np.allclose(counts / 20000, (w / w.sum()).numpy(), atol=0.01)


def test_kmeans_cache_is_used_and_falls_back(mnist_cnn, digits):
    x, y = digits
    cache = KMeansCache(x, y, per_cluster=5, random_state=0)
    assert 48 / 5 <= cache.centres.numel() <= 48
    member = next(i for i in range(48) if cache.centre_of[i] != i)
    centre = int(cache.centre_of[member])
    # a perturbation that fools the model on the member: the cache must use it
    adv = PGDL2(eps=3.0, alpha=0.5, steps=20)(mnist_cnn, x[member : member + 1], y[member : member + 1]).adv
    assert bool(mnist_cnn(adv).argmax(1) != y[member])
    cache.delta[centre] = adv[0] - x[member]
    out, hit = cache.try_cached(mnist_cnn, x[member : member + 1], y[member : member + 1], torch.tensor([member]))
    assert hit.all() and torch.allclose(out, adv, atol=1 / 255)
    # a perturbation that does not fool: the cache reports a miss and Algorithm 1 runs instead
    cache.delta[centre] = torch.zeros_like(x[member])
    _, hit = cache.try_cached(mnist_cnn, x[member : member + 1], y[member : member + 1], torch.tensor([member]))
    assert not hit.any()
    assert cache.stats()["attack_calls_saved"] == 1 and cache.stats()["attack_calls_run"] == 1


def test_algorithm2_with_the_cache_saves_attack_calls(mnist_cnn, digits):
    x, y = digits
    cache = KMeansCache(x, y, per_cluster=5, random_state=0)
    data, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=2, batch_size=16,
                                        cache=cache, progress=False)
    st = cache.stats()
    assert st["attack_calls_saved"] + st["attack_calls_run"] == 2 * 48
    assert st["attack_calls_saved"] > 0
    assert len(data) == 3 * 48


def test_algorithm3_seeds(mnist_cnn, digits):
    x, y = digits
    data, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=1, batch_size=16,
                                        progress=False)
    state = torch.random.get_rng_state()
    a = sample_model(mnist_cnn, data, epochs=1, batch_size=16, seed=1)
    b = sample_model(mnist_cnn, data, epochs=1, batch_size=16, seed=1)
    c = sample_model(mnist_cnn, data, epochs=1, batch_size=16, seed=2)
    flat = [torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c)]
    assert torch.equal(flat[0], flat[1]) and not torch.equal(flat[0], flat[2])
    assert torch.equal(torch.random.get_rng_state(), state)  # no global side effect
    assert not torch.equal(flat[0], torch.cat([p.flatten() for p in mnist_cnn.parameters()]))


def test_algorithm2_resumes_from_its_checkpoint_with_the_same_result(mnist_cnn, digits, tmp_path):
    x, y = digits
    ref, ref_model = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=2, batch_size=16,
                                               cache=KMeansCache(x, y, random_state=0), progress=False)

    class Crash(Exception):
        pass

    class CrashingAttack:  # the real attack, stopped in the middle of the second epoch
        calls = 0

        def __call__(self, model, xb, yb):
            CrashingAttack.calls += 1
            if CrashingAttack.calls == 5:
                raise Crash
            return _attack()(model, xb, yb)

    ck = tmp_path / "alg2.pt"
    with pytest.raises(Crash):
        build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, CrashingAttack(), epochs=2, batch_size=16,
                                  cache=KMeansCache(x, y, random_state=0), checkpoint=ck, progress=False)
    assert torch.load(ck, weights_only=True)["epoch"] == 1  # the first epoch was kept
    data, model = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=2, batch_size=16,
                                            cache=KMeansCache(x, y, random_state=0), checkpoint=ck, progress=False)
    for f in ("x", "y", "weight", "adversarial", "origin", "cached"):
        assert torch.equal(getattr(data, f), getattr(ref, f)), f
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)


def test_weighted_dataset_round_trip(tmp_path):
    x = torch.randint(0, 256, (6, 1, 4, 4)).float() / 255
    d = WeightedDataset(x, torch.arange(6), torch.arange(1, 7).float(), torch.tensor([0, 0, 0, 1, 1, 1]).bool(),
                        torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 0, 0, 0, 1, 0]).bool())
    d.save(tmp_path / "d.pt")
    assert torch.load(tmp_path / "d.pt", weights_only=True)["x"].dtype == torch.uint8  # 8-bit images kept as uint8
    e = WeightedDataset.load(tmp_path / "d.pt")
    assert all(torch.equal(getattr(d, f), getattr(e, f)) for f in ("x", "y", "weight", "adversarial", "origin", "cached"))
    d.x[0, 0, 0, 0] = 0.5001  # not an 8-bit value: stored as float, still exact
    d.save(tmp_path / "f.pt")
    assert torch.equal(WeightedDataset.load(tmp_path / "f.pt").x, d.x)
