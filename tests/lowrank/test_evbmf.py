"""EVBMF on unfoldings with numerically zero singular values (dead / pruned channels): planted ranks
must still be found (the noise is estimated on the non-degenerate part)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

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


@settings(max_examples=20)
@given(rows=st.integers(12, 40), cols=st.integers(12, 60), rank=st.integers(1, 5),
       dead_rows=st.integers(0, 4), dead_cols=st.integers(0, 4), seed=st.integers(0, 10_000))
def test_planted_rank_with_dead_rows_and_columns(rows, cols, rank, dead_rows, dead_cols, seed):
    m = planted(rows, cols, rank, 3.0, seed)
    rng = np.random.default_rng(seed + 1)
    m[rng.choice(rows, dead_rows, replace=False)] = 0.0
    m[:, rng.choice(cols, dead_cols, replace=False)] = 0.0
    res = evbmf(m)
    assert res.rank == rank
    assert res.n_degenerate >= min(dead_rows, dead_cols) if rows <= cols else True
    assert np.isfinite(res.sigma2) and res.sigma2 > 0.05
    assert evbmf(m.T).rank == rank


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
