"""Algorithms 2 and 3 (both readings, every weighting) and the k-means cache, on the real MNIST CNN and
digits, and their SGD step against a hand-computed gradient."""

import copy

import numpy as np
import pytest
import torch
from scipy import stats

from imperceptible.attacks import PGDL2
from imperceptible.dro import (
    ATTACKED,
    FROM_CACHE,
    NOT_NEEDED,
    KMeansCache,
    WeightedDataset,
    build_adversarial_dataset,
    sample_model,
    weighted_indices,
)


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
    data, trained = build_adversarial_dataset(model, x, y, _attack(), epochs=2, batch_size=16, reading="literal",
                                              progress=False)  # the printed algorithm: one row per draw
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


def test_kmeans_cache_is_used_falls_back_and_counts_honestly(mnist_cnn, digits):
    x, y = digits
    cache = KMeansCache(x, y, per_cluster=5, random_state=0)
    assert 48 / 5 <= cache.centres.numel() <= 48
    member = next(i for i in range(48) if cache.centre_of[i] != i and mnist_cnn(x[i : i + 1]).argmax(1) == y[i])
    centre = int(cache.centre_of[member])
    # a perturbation that fools the model on the member: the cache uses it and saves the call
    adv = PGDL2(eps=3.0, alpha=0.5, steps=20)(mnist_cnn, x[member : member + 1], y[member : member + 1]).adv
    assert bool(mnist_cnn(adv).argmax(1) != y[member])
    cache.delta[centre] = adv[0] - x[member]
    calls = []

    def attack(model, xb, yb):
        calls.append(len(xb))
        return _attack()(model, xb, yb)

    key = torch.tensor([member])
    out, fooled, status = cache.attack(mnist_cnn, attack, x[key], y[key], key)
    assert status.tolist() == [FROM_CACHE] and fooled.all() and calls == []
    assert torch.allclose(out, adv, atol=1 / 255)
    # a perturbation that does not fool: the attack runs instead
    cache.delta[centre] = torch.zeros_like(x[member])
    out, fooled, status = cache.attack(mnist_cnn, attack, x[key], y[key], key)
    assert status.tolist() == [ATTACKED] and calls == [1]
    # an image the model already gets wrong needs no attack and is not counted as a saved call
    wrong = y[key].clone()
    wrong[0] = (wrong[0] + 1) % 10
    _, fooled, status = cache.attack(mnist_cnn, attack, x[key], wrong, key)
    assert status.tolist() == [NOT_NEEDED] and fooled.all() and calls == [1]
    st = cache.stats()
    assert (st["attack_calls_saved"], st["attack_calls_run"], st["no_attack_needed"]) == (1, 1, 1)
    assert st["saved_fraction"] == 0.5


def test_algorithm2_with_the_cache_saves_attack_calls(mnist_cnn, digits):
    x, y = digits
    cache = KMeansCache(x, y, per_cluster=5, random_state=0)
    data, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=2, batch_size=16,
                                        reading="literal", cache=cache, progress=False)
    st = cache.stats()
    assert st["attack_calls_saved"] + st["attack_calls_run"] + st["no_attack_needed"] == 2 * 48
    assert st["attack_calls_saved"] > 0 and data.cached.sum() == st["attack_calls_saved"]
    assert len(data) == 3 * 48


def test_eq3_reading_attacks_originals_and_keeps_successes(mnist_cnn, digits):
    """Every stored perturbation is measured to an original (attacked_from is an original's row), and only
    attacks that changed the image and fooled the model are stored; the literal reading re-attacks rows."""
    x, y = digits
    N = len(y)
    lit, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=3, batch_size=16,
                                       reading="literal", weighting="both", progress=False)
    assert (lit.attacked_from[N:] >= N).any()  # some rows came from attacking adversarial rows
    eq3, model = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=3, batch_size=16,
                                           reading="eq3", progress=False)
    adv = eq3.adversarial
    assert (eq3.attacked_from[adv] < N).all() and torch.equal(eq3.attacked_from[adv], eq3.origin[adv])
    assert len(eq3) <= 4 * N
    changed = (eq3.x[adv] != x[eq3.origin[adv]]).flatten(1).any(1)
    assert changed.all() and adv.sum() > N  # changed images only, and most attacks succeed


def test_no_attack_control_has_the_same_rows_weights_and_draws(mnist_cnn, digits):
    x, y = digits
    data, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=2, batch_size=16,
                                        progress=False)
    ctrl = data.without_attacks()
    assert torch.equal(ctrl.weight, data.weight) and torch.equal(ctrl.y, data.y) and torch.equal(ctrl.origin, data.origin)
    assert torch.equal(ctrl.x, x[data.origin]) and not ctrl.adversarial.any()
    from imperceptible.dro import draw

    for w in ("sample", "gradient", "both"):
        a = draw(data.weight, 100, w, torch.Generator().manual_seed(3))
        b = draw(ctrl.weight, 100, w, torch.Generator().manual_seed(3))
        assert torch.equal(a, b)


def test_replicates_with_other_seeds_give_other_datasets(mnist_cnn, digits):
    x, y = digits
    a, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=1, batch_size=16, seed=1,
                                     progress=False)
    b, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=1, batch_size=16, seed=2,
                                     progress=False)
    c, _ = build_adversarial_dataset(copy.deepcopy(mnist_cnn), x, y, _attack(), epochs=1, batch_size=16, seed=1,
                                     progress=False)
    assert not torch.equal(a.origin, b.origin) and torch.equal(a.origin, c.origin) and torch.equal(a.x, c.x)


def test_weighted_sgd_step_equals_a_hand_computed_gradient():
    """On a linear softmax model the step is theta - lr * sum_i w_i grad_i / sum_i w_i, with
    grad_i = (softmax(W x_i + b) - onehot(y_i)) x_i^T, computed here in numpy."""
    from imperceptible.dro.algorithms import _sgd_step

    rng = np.random.RandomState(0)
    X, Y, w = rng.rand(5, 6), np.array([0, 2, 1, 2, 0]), np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    net = torch.nn.Linear(6, 3).double()
    W0, b0 = net.weight.detach().numpy().copy(), net.bias.detach().numpy().copy()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    _sgd_step(net, opt, torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(w))
    z = X @ W0.T + b0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = p - np.eye(3)[Y]
    gW = (w[:, None, None] * d[:, :, None] * X[:, None, :]).sum(0) / w.sum()
    gb = (w[:, None] * d).sum(0) / w.sum()
    assert np.allclose(net.weight.detach().numpy(), W0 - 0.1 * gW, atol=1e-12)
    assert np.allclose(net.bias.detach().numpy(), b0 - 0.1 * gb, atol=1e-12)


def test_algorithm3_draws_follow_the_weights(monkeypatch):
    """The rows Algorithm 3 trains on are drawn with probability P / sum P (chi-square against the weights)."""
    import imperceptible.dro.algorithms as alg

    seen = []
    monkeypatch.setattr(alg, "_sgd_step", lambda model, opt, x, y, w, **k: seen.append(y.clone()))
    n = 5
    data = WeightedDataset(torch.zeros(n, 1, 2, 2), torch.arange(n), torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0]),
                           torch.zeros(n, dtype=torch.bool), torch.arange(n))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 5))
    alg.sample_model(net, data, epochs=2, batch_size=100, seed=0, draws=5000)
    counts = torch.bincount(torch.cat(seen), minlength=n).numpy()
    assert counts.sum() == 10000
    assert stats.chisquare(counts, 10000 * (data.weight / data.weight.sum()).numpy()).pvalue > 0.01
    seen.clear()
    alg.sample_model(net, data, epochs=1, batch_size=100, seed=0, draws=5000, weighting="gradient")  # uniform
    counts = torch.bincount(torch.cat(seen), minlength=n).numpy()
    assert stats.chisquare(counts, [1000] * n).pvalue > 0.01


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

        def label(self):
            return "crashing"

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
    for f in ("x", "y", "weight", "adversarial", "origin", "cached", "attacked_from"):
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
