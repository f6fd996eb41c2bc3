"""Spike-and-slab layers: KL terms against torch.distributions and Monte Carlo, Concrete samples."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from redundancy.bayes.kl import kl_bernoulli, kl_normal, relaxed_bernoulli, spike_slab_kl
from redundancy.bayes.layers import SpikeSlabConv1d, SpikeSlabConv2d, SpikeSlabConv3d, SpikeSlabLinear
from redundancy.errors import RedundancyError

probs = st.floats(0.01, 0.99)


@given(logit=st.floats(-8, 8), lam=probs)
def test_kl_bernoulli_matches_torch(logit, lam):
    ours = float(kl_bernoulli(torch.tensor(logit, dtype=torch.float64), lam))
    ref = float(kl_divergence(Bernoulli(logits=torch.tensor(logit, dtype=torch.float64)),
                              Bernoulli(probs=torch.tensor(lam, dtype=torch.float64))))
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


@given(mu=st.floats(-5, 5), sigma=st.floats(1e-3, 5), s0=st.floats(0.05, 10))
def test_kl_normal_matches_torch(mu, sigma, s0):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    ours = float(kl_normal(t(mu), t(sigma), s0))
    ref = float(kl_divergence(Normal(t(mu), t(sigma)), Normal(t(0.0), t(s0))))
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_mixture_kl_by_monte_carlo():
    """KL(q || p) of the spike-and-slab mixture, estimated by sampling (γ, w) from q and averaging
    log q − log p (densities w.r.t. counting x (δ_0 + Lebesgue)); independent of the closed form."""
    g = torch.Generator().manual_seed(0)
    p, lam, s0 = 0.7, 0.2, 1.5
    mu = torch.tensor([0.4, -1.0, 2.0], dtype=torch.float64)
    sig = torch.tensor([0.3, 0.8, 1.1], dtype=torch.float64)
    n = 400_000
    gam = torch.rand(n, generator=g, dtype=torch.float64) < p
    w = mu + sig * torch.randn(n, 3, generator=g, dtype=torch.float64)
    logq_w = Normal(mu, sig).log_prob(w).sum(1)
    logp_w = Normal(0.0, s0).log_prob(w).sum(1)
    on = gam.double()
    log_ratio = on * (math.log(p / lam) + logq_w - logp_w) + (1 - on) * math.log((1 - p) / (1 - lam))
    mc, se = float(log_ratio.mean()), float(log_ratio.std() / math.sqrt(n))
    closed = float(spike_slab_kl(torch.tensor([math.log(p / (1 - p))], dtype=torch.float64), mu[None],
                                 sig[None], lam, s0))
    assert abs(mc - closed) < 4 * se


@torch.no_grad()
def test_layer_kl_with_both_gates_against_torch():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()
    layer = SpikeSlabLinear.from_module(lin, prior_inclusion=0.3, slab_scale=0.7, gate_inputs=True)
    with torch.no_grad():
        layer.node_logit.copy_(torch.randn(3))
        layer.input_logit.copy_(torch.randn(4))
        layer.weight_rho.copy_(torch.randn(3, 4))
        layer.bias_rho.copy_(torch.randn(3))
    sp = nn.functional.softplus
    P, R = torch.sigmoid(layer.node_logit), torch.sigmoid(layer.input_logit)
    lam = torch.tensor(0.3, dtype=torch.float64)
    ref = float(kl_divergence(Bernoulli(P), Bernoulli(lam)).sum() + kl_divergence(Bernoulli(R), Bernoulli(lam)).sum())
    prior = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64))
    for i in range(3):
        ref += float(P[i] * kl_divergence(Normal(layer.bias_mu[i], sp(layer.bias_rho[i])), prior))
        for j in range(4):
            ref += float(P[i] * R[j] * kl_divergence(Normal(layer.weight_mu[i, j], sp(layer.weight_rho[i, j])), prior))
    assert float(layer.kl()) == pytest.approx(ref, rel=1e-10)


@given(p=probs, tau=st.floats(0.05, 2.0))
def test_concrete_sample_above_half_with_probability_p(p, tau):
    g = torch.Generator().manual_seed(1)
    logit = torch.full((20_000,), math.log(p / (1 - p)), dtype=torch.float64)
    s = relaxed_bernoulli(logit, tau, generator=g)
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    frac = float((s > 0.5).double().mean())
    assert abs(frac - p) < 4.5 * math.sqrt(p * (1 - p) / 20_000) + 1e-3


@given(p=probs)
def test_concrete_mean_tends_to_p_at_low_temperature(p):
    g = torch.Generator().manual_seed(2)
    logit = torch.full((20_000,), math.log(p / (1 - p)), dtype=torch.float64)
    mean = float(relaxed_bernoulli(logit, 0.02, generator=g).mean())
    # MC error plus the O(τ) relaxation bias
    assert abs(mean - p) < 4.5 * math.sqrt(p * (1 - p) / 20_000) + 0.02


def test_concrete_gradient_reaches_logit():
    logit = torch.zeros(5, requires_grad=True)
    relaxed_bernoulli(logit, 0.5).sum().backward()
    assert logit.grad is not None and bool((logit.grad > 0).all())


@pytest.mark.parametrize("cls,conv,shape", [(SpikeSlabConv1d, nn.Conv1d, (2, 3, 9)),
                                            (SpikeSlabConv2d, nn.Conv2d, (2, 3, 7, 6)),
                                            (SpikeSlabConv3d, nn.Conv3d, (2, 3, 5, 4, 5))])
def test_conv_modes_match_plain_conv(cls, conv, shape):
    torch.manual_seed(0)
    m = conv(3, 4, 3, padding=1, stride=2)
    layer = cls.from_module(m, prior_inclusion=0.5, slab_scale=1.0, gate_inputs=True)
    with torch.no_grad():
        layer.node_logit.copy_(torch.tensor([3.0, -2.0, 1.0, -0.5]))
        layer.input_logit.copy_(torch.tensor([1.0, -1.0, 2.0]))
    x = torch.randn(shape)
    layer.mode = "median"
    keep_o, keep_i = torch.tensor([1.0, 0, 1, 0]), torch.tensor([1.0, 0, 1])
    ref = m(x * keep_i.view(1, -1, *([1] * (len(shape) - 2)))) * keep_o.view(1, -1, *([1] * (len(shape) - 2)))
    assert torch.allclose(layer(x), ref, atol=1e-6)
    layer.mode = "mean"
    w, b = layer.effective()
    assert torch.allclose(b, m.bias * torch.sigmoid(layer.node_logit))
    layer.mode = "sample"
    w, b = layer.effective()
    dropped = (w.reshape(4, -1).abs().sum(1) == 0)
    assert bool(((b == 0) == dropped).all())


def test_grouped_conv_refused():
    with pytest.raises(RedundancyError, match="groups"):
        SpikeSlabConv2d.from_module(nn.Conv2d(4, 4, 3, groups=2), prior_inclusion=0.5, slab_scale=1.0)
