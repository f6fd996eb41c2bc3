"""Rank rules: EVBMF (planted rank at a stated SNR, edge cases), energy, fraction, explicit."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from redundancy import RankError, RedundancyError
from redundancy.lowrank.compression import compress
from redundancy.lowrank.ranks import (EVBMFResult, RankSelection, energy_ranks, evbmf, evbmf_ranks, explicit_ranks,
                              fraction_ranks, rank_rule, unfold)
from redundancy.lowrank.evbmf import _psi, _tau_bar


def planted(rows, cols, rank, snr, seed, sigma=1.0):
    """Rank-``rank`` signal with singular values snr·σ·sqrt(max(rows, cols))·[1..2] plus N(0, σ²) noise."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(rows, rank)))
    v, _ = np.linalg.qr(rng.normal(size=(cols, rank)))
    theta = snr * sigma * math.sqrt(max(rows, cols)) * np.linspace(1.0, 2.0, rank)
    return u @ np.diag(theta) @ v.T + sigma * rng.normal(size=(rows, cols))


# SNR := smallest planted singular value / (σ sqrt(M)), M = max(rows, cols). The EVB cut-off is
# sqrt(M σ² x̲) ≈ 2.22 σ sqrt(M) at α = 1 (1.5·.. at α = 0.6); a spike θ shows up as
# γ ≈ sqrt((θ² + Mσ²)(θ² + Lσ²))/θ, so at SNR 3 it is far above the cut-off and at SNR 0.5 (below the
# detectability limit α^{1/4}) nothing can be found.
@pytest.mark.parametrize("rows,cols", [(30, 50), (50, 30), (20, 20)])
def test_evbmf_recovers_planted_rank_at_snr_3(rows, cols):
    for seed in range(10):
        res = evbmf(planted(rows, cols, 4, 3.0, seed))
        assert res.rank == 4
        assert abs(res.sigma2 - 1.0) < 0.25  # the noise variance is estimated, not given
        assert res.transposed == (rows > cols)
        assert np.all((res.shrunk > 0) & (res.shrunk < res.singular_values[:4]))


def test_evbmf_below_detectability_and_pure_noise_give_rank_zero():
    for seed in range(5):
        assert evbmf(planted(30, 50, 4, 0.5, seed)).rank == 0
        assert evbmf(np.random.default_rng(seed).normal(size=(40, 25))).rank == 0


def test_evbmf_known_sigma2_uses_the_stated_cutoff():
    m = planted(30, 50, 3, 3.0, 0)
    res = evbmf(m, sigma2=1.0)
    alpha = 30 / 50
    tau = _tau_bar(alpha)
    assert abs(_psi(tau, alpha)) < 1e-12 and tau > math.sqrt(alpha)
    assert res.threshold == pytest.approx(math.sqrt(50 * (1 + tau) * (1 + alpha / tau)))
    s = np.linalg.svd(m, compute_uv=False)
    assert res.rank == int(np.sum(s > res.threshold)) == 3
    assert not res.sigma2_estimated


def test_tau_bar_matches_the_published_constant_at_alpha_one():
    assert _tau_bar(1.0) == pytest.approx(2.5129, abs=1e-4)


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 6), st.floats(1e-3, 1e3), st.integers(0, 10**6))
def test_evbmf_rank_is_never_negative_or_oversized(rows, cols, rank, scale, seed):
    rng = np.random.default_rng(seed)
    rank = min(rank, rows, cols)
    m = scale * (rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols)) + 0.1 * rng.normal(size=(rows, cols)))
    res = evbmf(m)
    assert isinstance(res, EVBMFResult)
    assert 0 <= res.rank <= min(rows, cols)
    assert len(res.shrunk) == res.rank and np.all(res.shrunk <= res.singular_values[: res.rank])
    assert res.sigma2 > 0 and np.isfinite(res.threshold)


def test_evbmf_edge_cases():
    assert evbmf(np.zeros((4, 7))).rank == 0
    exact = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 4.0))  # noise-free rank 1, more rows than columns
    res = evbmf(exact)
    assert res.rank == 1 and res.transposed
    with pytest.raises(RedundancyError, match="2-D"):
        evbmf(np.ones((2, 2, 2)))
    with pytest.raises(RedundancyError, match="sigma2"):
        evbmf(np.ones((2, 3)), sigma2=-1.0)


def test_evbmf_ranks_on_tucker2_kernel_and_rank_zero_floor():
    rng = np.random.default_rng(0)
    core = rng.normal(size=(3, 2, 3, 3))
    k = np.einsum("abxy,oa,cb->ocxy", core, rng.normal(size=(40, 3)), rng.normal(size=(30, 2)))
    k = k / np.linalg.norm(k) * 100 + rng.normal(size=k.shape) * 0.01
    sel = evbmf_ranks(k, modes=(0, 1))
    assert isinstance(sel, RankSelection) and sel.ranks == (3, 2)
    assert "EVBMF keeps 3" in sel.reasons[0]
    noise = evbmf_ranks(rng.normal(size=(20, 30)))
    assert noise.ranks == (1, 1) and all("min_rank=1" in r for r in noise.reasons)
    assert noise.details["evbmf"][0].rank == 0
    assert noise.to_dict()["ranks"] == [1, 1]


@given(st.lists(st.integers(1, 6), min_size=2, max_size=4), st.floats(0.05, 1.0), st.integers(0, 1000))
def test_energy_ranks_keep_the_energy_with_fewest_values(shape, energy, seed):
    t = np.random.default_rng(seed).normal(size=shape)
    sel = energy_ranks(t, energy)
    for m, r in zip(sel.modes, sel.ranks):
        s2 = np.linalg.svd(unfold(t, m), compute_uv=False) ** 2
        assert 1 <= r <= shape[m]
        assert s2[:r].sum() >= energy * s2.sum() * (1 - 1e-9)
        assert r == 1 or s2[: r - 1].sum() < energy * s2.sum()


def test_energy_ranks_planted():
    rng = np.random.default_rng(0)
    t = np.einsum("abc,ia,jb,kc->ijk", rng.normal(size=(2, 3, 2)), rng.normal(size=(6, 2)),
                  rng.normal(size=(5, 3)), rng.normal(size=(4, 2)))
    assert energy_ranks(t, 1.0).ranks == (2, 3, 2)
    with pytest.raises(RedundancyError, match="energy"):
        energy_ranks(t, 1.5)


@given(st.lists(st.integers(1, 40), min_size=2, max_size=4), st.floats(0.01, 1.0))
def test_fraction_ranks_respect_the_budget(shape, fraction):
    shape = tuple(shape)
    total = math.prod(shape)
    sel = fraction_ranks(shape, fraction, modes=(0, 1))
    r = sel.ranks
    n = r[0] * r[1] * math.prod(shape[2:]) + shape[0] * r[0] + shape[1] * r[1]
    assert n == sel.details["n_params"]
    assert all(1 <= x <= s for x, s in zip(r, shape))
    assert n <= fraction * total or r == (1, 1)
    cp = fraction_ranks(shape, fraction, method="cp")
    assert cp.ranks[0] == max(1, min(int(fraction * total // sum(shape)), total // max(shape)))


def test_explicit_and_bad_input():
    assert explicit_ranks((8, 4, 3, 3), (4, 2), modes=(0, 1)).reasons == ("given", "given")
    with pytest.raises(RankError, match=r"\[1, 4\]"):
        explicit_ranks((8, 4, 3, 3), (4, 5), modes=(0, 1))
    with pytest.raises(RankError, match="entries"):
        explicit_ranks((8, 4), (4, 2, 1))
    with pytest.raises(RedundancyError, match="fraction"):
        fraction_ranks((8, 4), 0.0)
    with pytest.raises(RedundancyError, match="modes"):
        energy_ranks(np.ones((3, 3)), 0.5, modes=(0, 5))
    with pytest.raises(RedundancyError, match="method='cp'"):
        rank_rule("evbmf", method="cp")


def test_rank_rules_drive_compress_and_record_why():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Conv2d(16, 16, 1)).double()
    rule = rank_rule("energy", energy=0.8)
    res = compress(net, ranks=rule)
    assert set(rule.selections) == {"0", "1"}
    assert res.ranks["0"] == rule.selections["0"].ranks
    cp_rule = rank_rule("fraction", method="cp", fraction=0.5)
    res = compress(net, ranks=cp_rule, method="cp")
    assert res.ranks["0"] == (cp_rule.selections["0"].ranks[0],)
    r = res.ranks["0"][0]
    assert r * (16 + 8 + 3 + 3) <= 0.5 * 16 * 8 * 9  # the factorised form keeps at most half
    # the chain stores the depthwise kernel w_r s1_r ∘ s2_r densely (r·9) plus the bias
    assert res.layers[0].params_after == r * (8 + 9 + 16) + 16
