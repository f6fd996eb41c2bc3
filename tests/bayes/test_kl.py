"""bayes.kl: closed-form KLs and the Concrete sample refuse bad arguments and stay finite."""

import math

import mpmath
import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from redundancy.bayes.kl import kl_bernoulli, kl_normal, relaxed_bernoulli, spike_slab_kl
from redundancy.errors import RedundancyError


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
