"""Issue 12 for ``redundancy.bayes``: bad arguments get a RedundancyError naming them, extreme values
are refused instead of returning NaN/inf, and the checks do not change legal answers."""

import math

import mpmath
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from redundancy.bayes import (expected_calibration_error, fit_spike_slab, inclusion_curve, kl_bernoulli, kl_normal,
                              prune_to_counts, relaxed_bernoulli, spike_slab_kl)
from redundancy.zoo.small import mlp, plain_cnn
from redundancy.bayes.fit import posterior_predictive
from redundancy.errors import RedundancyError


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    return fit_spike_slab((4,), (X, y), epochs=1, n_samples=2, seed=0), (X, y)


# ----------------------------------------------------------------------------------- kl
@pytest.mark.parametrize("logit,lam,match", [(None, 0.5, "logit"), (torch.tensor([1, 2]), 0.5, "logit"),
                                             (torch.tensor([float("nan")]), 0.5, "logit"),
                                             (torch.zeros(2), 1.0, "prior_inclusion"),
                                             (torch.zeros(2), 0.0, "prior_inclusion"),
                                             (torch.zeros(2), "a", "prior_inclusion")])
def test_kl_bernoulli_refuses(logit, lam, match):
    with pytest.raises(RedundancyError, match=match):
        kl_bernoulli(logit, lam)


def test_kl_bernoulli_extreme_prior_stays_finite():
    # λ = 1e-300 underflows to 0 in float32; the log is taken in float64, so the KL is finite
    logit = torch.tensor([-3.0, 0.0, 3.0])
    out = kl_bernoulli(logit, 1e-300)
    p = torch.sigmoid(logit.double())
    ref = p * (torch.log(p) - math.log(1e-300)) + (1 - p) * torch.log(1 - p)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mu,sigma,s0,match", [
    (torch.zeros(2), torch.zeros(2), 1.0, "sigma"), (torch.zeros(2), -torch.ones(2), 1.0, "sigma"),
    (torch.zeros(2), torch.ones(3), 1.0, "broadcast"), ("x", torch.ones(2), 1.0, "mu"),
    (torch.zeros(2), torch.ones(2), 0.0, "slab_scale"), (torch.zeros(2), torch.ones(2), float("inf"), "slab_scale"),
    (torch.tensor([1e200], dtype=torch.float64), torch.ones(1, dtype=torch.float64), 1e-200, "not finite")])
def test_kl_normal_refuses(mu, sigma, s0, match):
    with pytest.raises(RedundancyError, match=match):
        kl_normal(mu, sigma, s0)


def test_kl_normal_wide_range_matches_exact():
    # log(σ0/σ) written as log σ0 − log σ: σ0/σ = 1e300/1e-10 would overflow, the KL does not
    mu = torch.tensor([0.0, 3.0, -1e5], dtype=torch.float64)
    sigma = torch.tensor([1e-10, 2.0, 1e3], dtype=torch.float64)
    s0 = 1e150
    ours = kl_normal(mu, sigma, s0)
    mp = mpmath.mpf
    with mpmath.workdps(50):
        exact = [float(mpmath.log(mp(s0) / mp(s)) + (mp(s) ** 2 + mp(m) ** 2) / (2 * mp(s0) ** 2) - mp(0.5))
                 for m, s in zip(mu.tolist(), sigma.tolist())]
    np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-14)
    # torch.distributions agrees where (σ/σ0)² does not underflow to a denormal
    ref = kl_divergence(Normal(mu[1:], sigma[1:]), Normal(0.0, torch.tensor(s0, dtype=torch.float64)))
    torch.testing.assert_close(ours[1:], ref, rtol=1e-12, atol=1e-9)
    # arrays and numbers are accepted too (as float64)
    assert float(kl_normal([0.0], [2.0], 2.0)[0]) == 0.0


def test_spike_slab_kl_shapes_are_checked():
    with pytest.raises(RedundancyError, match="logit"):
        spike_slab_kl(torch.zeros(2), torch.zeros(3, 2), torch.ones(3, 2), 0.5, 1.0)
    with pytest.raises(RedundancyError, match="sigma"):
        spike_slab_kl(torch.zeros(3), torch.zeros(3, 2), torch.ones(3, 1), 0.5, 1.0)
    with pytest.raises(RedundancyError, match="prior_inclusion"):
        spike_slab_kl(torch.zeros(3), torch.zeros(3, 2), torch.ones(3, 2), 2.0, 1.0)


def test_relaxed_bernoulli_refuses_and_keeps_gradient():
    with pytest.raises(RedundancyError, match="temperature"):
        relaxed_bernoulli(torch.zeros(3), 1e-9)
    with pytest.raises(RedundancyError, match="temperature"):
        relaxed_bernoulli(torch.zeros(3), float("nan"))
    with pytest.raises(RedundancyError, match="generator"):
        relaxed_bernoulli(torch.zeros(3), 0.5, generator=np.random.default_rng(0))
    with pytest.raises(RedundancyError, match="logit"):
        relaxed_bernoulli(torch.tensor([float("inf")]), 0.5)
    logit = torch.zeros(4, requires_grad=True)
    s = relaxed_bernoulli(logit, 1e-6, generator=torch.Generator().manual_seed(0))
    assert ((s >= 0) & (s <= 1)).all()
    relaxed_bernoulli(logit, 0.5).sum().backward()
    assert logit.grad is not None


# ----------------------------------------------------------------------------------- builders
@pytest.mark.parametrize("kw,match", [
    (dict(input_shape=(5,), widths=3, n_out=2), "widths"), (dict(input_shape=(5,), widths=(0,), n_out=2), "widths"),
    (dict(input_shape=(5,), widths=(4,), n_out=0), "n_out"),
    (dict(input_shape="ab", widths=(4,), n_out=2), "input_shape"),
    (dict(input_shape=(5,), widths=(4,), n_out=2, seed=-1), "seed"),
    (dict(input_shape=(10 ** 4, 10 ** 4), widths=(1000,), n_out=2), "parameters")])
def test_mlp_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        mlp(**kw)


def test_mlp_builds_and_keeps_the_caller_rng():
    state = torch.random.get_rng_state()
    net = mlp((1, 4), (3,), 2, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert sum(p.numel() for p in net.parameters()) == (4 + 1) * 3 + (3 + 1) * 2
    assert torch.equal(net[1].weight, mlp((1, 4), [3], 2, seed=5)[1].weight)
    assert mlp((5,), (), 3)(torch.zeros(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("kw,match", [
    (dict(input_shape=(1, 8), channels=None, n_out=2), "channels"), (dict(input_shape=(8,), channels=(2,), n_out=2),
                                                                     "input_shape"),
    (dict(input_shape=(1, 8), channels=(2,) * 9, n_out=2), "channels"),
    (dict(input_shape=(1, 8), channels=(2,), n_out=2.5), "n_out"),
    (dict(input_shape=(1, 8), channels=(2,), n_out=2, hidden=0), "hidden"),
    (dict(input_shape=(1, 8000, 8000), channels=(4096,), n_out=2), "parameters")])
def test_plain_cnn_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        plain_cnn(**kw)


# ----------------------------------------------------------------------------------- ECE
def test_ece_refuses_bad_probabilities_and_labels():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(RedundancyError, match="probs"):
        expected_calibration_error(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(RedundancyError, match="probs"):
        expected_calibration_error(np.array([[0.5, 0.1]]), np.array([0]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0, 2]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0, 0.5]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0]))
    with pytest.raises(RedundancyError, match="n_bins"):
        expected_calibration_error(p, np.array([0, 1]), n_bins=0)


def test_ece_against_brute_force():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, size=50)
    conf, hit = p.max(1), p.argmax(1) == y
    want = 0.0
    for lo in np.arange(10) / 10:  # bins [lo, lo + 0.1)
        m = (conf >= lo) & (conf < lo + 0.1)
        if m.any():
            want += m.mean() * abs(hit[m].mean() - conf[m].mean())
    assert expected_calibration_error(p, y, n_bins=10) == pytest.approx(want, abs=1e-12)


# ----------------------------------------------------------------------------------- fitted results
def test_posterior_predictive_checks_and_restores(fitted):
    res, (X, _) = fitted
    net = res.net
    with pytest.raises(RedundancyError, match="net"):
        posterior_predictive(nn.Linear(5, 2), X, 2, 0)
    with pytest.raises(RedundancyError, match="X"):
        posterior_predictive(net, X[:, :3], 2, 0)
    with pytest.raises(RedundancyError, match="X"):
        posterior_predictive(net, np.full((2, 5), np.nan), 2, 0)
    with pytest.raises(RedundancyError, match="n_samples"):
        posterior_predictive(net, X, 0, 0)
    with pytest.raises(RedundancyError, match="seed"):
        posterior_predictive(net, X, 2, -3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_state, mode = torch.random.get_rng_state(), net.mode
    a = posterior_predictive(net, X[:7], 3, seed=1)
    b = posterior_predictive(net, torch.as_tensor(X[:7]), 3, seed=1)
    assert a.shape == (3, 7, 2) and torch.equal(a, b)
    assert net.mode == mode and torch.equal(rng_state, torch.random.get_rng_state())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_prune_to_counts_refuses(fitted):
    res, _ = fitted
    with pytest.raises(RedundancyError, match="result"):
        prune_to_counts(None, {"1": 2})
    with pytest.raises(RedundancyError, match="counts"):
        prune_to_counts(res, [2])
    with pytest.raises(RedundancyError, match="nope"):
        prune_to_counts(res, {"nope": 2})
    with pytest.raises(RedundancyError, match="counts"):
        prune_to_counts(res, {"1": 5})
    with pytest.raises(RedundancyError, match="order"):
        prune_to_counts(res, {"1": 2}, order="random")
    pr = prune_to_counts(res, {"1": 2})
    top2 = sorted(np.argsort(-res.node_pip["1"], kind="stable")[:2].tolist())
    kept = sorted(set(range(4)) - {r["channel"] for r in pr.removed})
    assert pr.nodes_after == {"1": 2} and kept == top2


def test_inclusion_curve_refuses(fitted):
    res, data = fitted
    with pytest.raises(RedundancyError, match="fractions"):
        inclusion_curve(res, data, fractions=(0.0,))
    with pytest.raises(RedundancyError, match="fractions"):
        inclusion_curve(res, data, fractions="a")
    with pytest.raises(RedundancyError, match="result"):
        inclusion_curve({"net": None}, data)
    with pytest.raises(RedundancyError, match="shape"):
        inclusion_curve(res, (np.zeros((20, 3), "float32"), np.arange(20) % 2))
    with pytest.raises(RedundancyError, match="regression"):
        inclusion_curve(res, (data[0], data[0][:, 0].astype("float64")))
    with pytest.raises(RedundancyError, match="device"):
        inclusion_curve(res, data, device="nope")
    assert inclusion_curve(res, data, fractions=[0.5]).nodes_kept.tolist() == [2]


@pytest.mark.parametrize("kw,match", [(dict(prior_inclusion=1.001), "prior_inclusion"),
                                      (dict(slab_scale=float("nan")), "slab_scale"),
                                      (dict(temperature=(0,)), "temperature"),
                                      (dict(temperature=(1.0, 1e-9)), "temperature"),
                                      (dict(select_features=2.0), "select_features"),
                                      (dict(init_inclusion=1.0), "init_inclusion"),
                                      (dict(total_steps=0.5), "total_steps"),
                                      (dict(init_scale=1e308), "init_scale"),
                                      (dict(input_shape=(3,)), "shape")])
def test_to_spike_slab_refuses(kw, match):
    from redundancy.bayes import to_spike_slab

    args = dict(model=nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), input_shape=(4,))
    with pytest.raises(RedundancyError, match=match):
        to_spike_slab(**{**args, **kw})


def test_to_spike_slab_refuses_an_init_scale_its_dtype_cannot_hold():
    from redundancy.bayes import to_spike_slab

    half = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).half()
    with pytest.raises(RedundancyError, match="init_scale"):
        to_spike_slab(half, (4,), init_scale=1e5)  # softplus^-1(1e5) = 1e5 > float16 max 65504
