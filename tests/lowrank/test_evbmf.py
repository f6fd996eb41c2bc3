"""EVBMF on unfoldings with numerically zero singular values (dead / pruned channels): planted ranks
must still be found (the noise is estimated on the non-degenerate part)."""

import numpy as np
import pytest
import math

from hypothesis import example, given, settings, strategies as st

from redundancy.lowrank.ranks import evbmf, evbmf_ranks


def planted(rows, cols, rank, snr, seed):
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(rows, cols))
    u, _ = np.linalg.qr(rng.normal(size=(rows, rank)))
    v, _ = np.linalg.qr(rng.normal(size=(cols, rank)))
    scale = snr * (np.sqrt(rows) + np.sqrt(cols))   # above the noise edge sqrt(L) + sqrt(M)
    return u @ np.diag(np.linspace(scale, 1.5 * scale, rank)) @ v.T + noise


def test_issue_case_rank_three_with_one_zeroed_row():
    m = planted(32, 288, 3, 3.0, 0)
    assert evbmf(m).rank == 3
    m[5] = 0.0
    res = evbmf(m)
    assert res.rank == 3 and res.n_degenerate == 1 and res.sigma2 > 0.1


def _live_bound(m):
    """EVBMF's rank bound ceil(L/(1+L/M)) - 2 on the live (non-zero rows/columns) part."""
    live = m[np.any(m != 0, axis=1)][:, np.any(m != 0, axis=0)]
    L, M = sorted(live.shape)
    return math.ceil(L / (1 + L / M) - 1e-9) - 2, L


@settings(max_examples=20)
@given(rows=st.integers(12, 40), cols=st.integers(12, 60), rank=st.integers(1, 5),
       dead_rows=st.integers(0, 4), dead_cols=st.integers(0, 4), seed=st.integers(0, 10_000))
@example(rows=12, cols=12, rank=5, dead_rows=4, dead_cols=0, seed=0)   # the issue-24 failure: past the bound
@example(rows=12, cols=12, rank=5, dead_rows=0, dead_cols=0, seed=0)
def test_planted_rank_with_dead_rows_and_columns(rows, cols, rank, dead_rows, dead_cols, seed):
    m = planted(rows, cols, rank, 3.0, seed)
    rng = np.random.default_rng(seed + 1)
    m[rng.choice(rows, dead_rows, replace=False)] = 0.0
    m[:, rng.choice(cols, dead_cols, replace=False)] = 0.0
    res = evbmf(m)
    bound, L = _live_bound(m)
    assert res.n_degenerate >= min(dead_rows, dead_cols) if rows <= cols else True
    if rank < bound and 2 * rank <= L:
        # a case EVBMF can answer: its own rank, its own noise estimate
        assert res.applicable and res.rule == "evbmf" and res.rank == rank
        assert np.isfinite(res.sigma2) and res.sigma2 > 0.05
        assert evbmf(m.T).rank == rank
    else:
        # past the bound: never a bare wrong rank. Either EVBMF answers right, or the verdict
        # says not applicable and the named fallback answers
        assert res.rank == rank or not res.applicable
        if not res.applicable:
            assert res.rule == "gavish_donoho" and res.reason
        if rank >= bound:
            assert not res.applicable and res.evbmf_rank != rank or res.rank == rank


def test_exactly_low_rank_pruned_kernel_unfolding():
    """A 32-filter kernel with 8 dead filters and 2 dead input channels, planted rank 6 + noise."""
    rng = np.random.default_rng(3)
    k = (planted(32, 16 * 9, 6, 3.0, 3)).reshape(32, 16, 3, 3)
    k[rng.choice(32, 8, replace=False)] = 0.0
    k[:, [2, 9]] = 0.0
    sel = evbmf_ranks(k, modes=(0, 1))
    assert sel.ranks[0] == 6
    assert sel.ranks[1] <= 14   # at most the live input channels


def test_all_zero_and_noiseless_low_rank():
    assert evbmf(np.zeros((5, 7))).rank == 0
    rng = np.random.default_rng(0)
    low = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 30))   # no noise at all: all degenerate but 3
    res = evbmf(low)
    assert res.rank == 3 and res.n_degenerate == 17 and res.sigma2 == 0.0
    with pytest.raises(Exception):
        evbmf(np.zeros(3))
