"""TT / CP3 / Tucker-2 / SVD chains of the rank search: exact convolution, exact counts, planted ranks."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from redundancy.counts import count_macs
from redundancy.errors import RankError, UnsupportedLayerError
from redundancy.rank_search.chains import (build_chain, chain_kernel, chain_macs, chain_params, dense_macs,
                                            skip_reason)
from redundancy.rank_search.factors import (conv_view, cp3_factors, init_factors, svd_factors, tt_max_rank,
                                             tt_svd_factors)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_FCONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _brute_kernel(a, g, b, k, cp):
    """Ŵ by explicit loops over every index (independent of the einsum path)."""
    c_out, c_in, s = a.shape[0], b.shape[1], math.prod(k)
    w = np.zeros((c_out, c_in, s))
    r = a.shape[1]
    for t, c, p in itertools.product(range(c_out), range(c_in), range(s)):
        if cp:
            w[t, c, p] = sum(a[t, i] * g[p, i] * b[i, c] for i in range(r))
        else:
            w[t, c, p] = sum(a[t, i] * g[i, p, j] * b[j, c] for i in range(r) for j in range(r))
    return w.reshape(c_out, c_in, *k)


@st.composite
def conv_cases(draw):
    d = draw(st.sampled_from([1, 2, 3]))
    k = draw(st.integers(1, 3 if d < 3 else 2))
    c_in, c_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, pad, dil = draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    method = draw(st.sampled_from(["tt", "cp", "tucker"]))
    s = k ** d
    bound = tt_max_rank(c_out, s, c_in) if method != "cp" else max(1, c_out * s * c_in // max(c_out, s, c_in))
    if method == "tucker":
        bound = max(c_out, c_in)
    rank = draw(st.integers(1, min(bound, 6)))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from(["zeros", "circular"])) if pad > 0 else "zeros"
    return d, k, c_in, c_out, stride, pad, dil, method, rank, bias, mode


@settings(max_examples=30)
@given(conv_cases(), st.integers(0, 2 ** 16))
def test_chain_reproduces_its_kernel_convolution(case, seed):
    d, k, c_in, c_out, stride, pad, dil, method, rank, bias, mode = case
    torch.manual_seed(seed)
    conv = _CONV[d](c_in, c_out, k, stride=stride, padding=pad, dilation=dil, bias=bias,
                    padding_mode=mode).double()
    chain = build_chain(conv, init_factors(conv.weight.detach().numpy(), method, rank, seed=0), method)
    size = dil * (k - 1) + 2 + (0 if d == 3 else 3)
    x = torch.randn(2, c_in, *([size] * d), dtype=torch.float64)
    w_hat = chain_kernel(chain)
    assert w_hat.shape == conv.weight.shape
    xin = F.pad(x, [pad] * (2 * d), mode="circular") if mode == "circular" else x
    ref = _FCONV[d](xin, w_hat, conv.bias, stride=stride, padding=0 if mode == "circular" else pad, dilation=dil)
    out = chain(x).detach()
    w_hat = w_hat.detach()
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) <= 1e-10 * max(1.0, float(ref.abs().max()))
    # the rebuilt kernel agrees with a loop over indices of the chain's own weights
    mods = list(chain.children())
    a = mods[2].weight.detach().flatten(1).numpy()
    b = mods[0].weight.detach().flatten(1).numpy()
    if method == "cp":
        g = mods[1].weight.detach().flatten(1).numpy().T
    else:
        g = mods[1].weight.detach().flatten(2).permute(0, 2, 1).numpy()
    np.testing.assert_allclose(w_hat.detach().numpy(), _brute_kernel(a, g, b, (k,) * d, method == "cp"), atol=1e-12)
    # exact counts
    assert chain_params(conv, rank, method) == sum(p.numel() for p in chain.parameters())
    shape = (c_in, *([size] * d))
    p_in, p_out = size ** d, math.prod(ref.shape[2:])
    assert chain_macs(conv, rank, method, p_in, p_out) == sum(count_macs(chain, shape).values())
    assert dense_macs(conv, p_in, p_out) == sum(count_macs(conv, shape).values())


@settings(max_examples=20)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7), st.booleans(), st.integers(0, 999))
def test_svd_chain_linear(n_in, n_out, rank, bias, seed):
    rank = min(rank, n_in, n_out)
    torch.manual_seed(seed)
    lin = nn.Linear(n_in, n_out, bias=bias).double()
    chain = build_chain(lin, svd_factors(lin.weight.detach().numpy(), rank), "svd")
    x = torch.randn(3, n_in, dtype=torch.float64)
    w_hat = chain_kernel(chain)
    assert float((chain(x) - F.linear(x, w_hat, lin.bias)).abs().max()) < 1e-10
    # Eckart-Young: the error is the tail of the singular values (numpy SVD as the independent reference)
    sv = np.linalg.svd(lin.weight.detach().numpy(), compute_uv=False)
    assert abs(np.linalg.norm(lin.weight.detach().numpy() - w_hat.detach().numpy()) ** 2 - (sv[rank:] ** 2).sum()) < 1e-9
    assert chain_params(lin, rank, "svd") == sum(p.numel() for p in chain.parameters())
    assert chain_macs(lin, rank, "svd", 1, 1) == sum(count_macs(chain, (n_in,)).values())


@pytest.mark.parametrize("d", [1, 2, 3])
def test_full_tt_rank_is_the_original_conv(d):
    torch.manual_seed(d)
    conv = _CONV[d](3, 4, 3, padding=1, stride=2).double()
    r = tt_max_rank(4, 3 ** d, 3)
    chain = build_chain(conv, init_factors(conv.weight.detach().numpy(), "tt", r), "tt")
    x = torch.randn(2, 3, *([6] * d), dtype=torch.float64)
    assert float((chain(x) - conv(x)).abs().max()) < 1e-10


@pytest.mark.parametrize("d", [1, 2, 3])
def test_planted_tt_and_cp_kernels_are_recovered_exactly(d):
    rng = np.random.default_rng(d)
    k = (3,) * d
    s = 3 ** d
    a, g, b = rng.normal(size=(6, 2)), rng.normal(size=(2, s, 2)), rng.normal(size=(2, 5))
    view = np.einsum("ta,asb,bc->tsc", a, g, b)
    A, G, B = tt_svd_factors(view, 2)
    assert np.allclose(np.einsum("ta,asb,bc->tsc", A, G, B), view, atol=1e-10)
    # rank 1 is strictly worse than the planted rank 2
    A1, G1, B1 = tt_svd_factors(view, 1)
    assert np.linalg.norm(np.einsum("ta,asb,bc->tsc", A1, G1, B1) - view) > 1e-3 * np.linalg.norm(view)
    ca, cg, cb = rng.normal(size=(6, 3)), rng.normal(size=(s, 3)), rng.normal(size=(3, 5))
    cview = np.einsum("ta,sa,ac->tsc", ca, cg, cb)
    A, G, B = cp3_factors(cview, 3)
    assert np.linalg.norm(np.einsum("ta,sa,ac->tsc", A, G, B) - cview) < 1e-6 * np.linalg.norm(cview)
    kernel = cview.transpose(0, 2, 1).reshape(6, 5, *k)
    np.testing.assert_allclose(conv_view(kernel), cview)


def test_skips_and_bad_ranks():
    dw = nn.Conv2d(4, 4, 3, groups=4)
    assert "groups=4" in skip_reason(dw)
    assert skip_reason(nn.BatchNorm2d(3)) is not None
    with pytest.raises(UnsupportedLayerError, match="groups=4"):
        build_chain(dw, [np.zeros((4, 1))] * 3, "tt")
    with pytest.raises(RankError, match=r"rank=0"):
        init_factors(np.zeros((3, 2, 3, 3)), "tt", 0)
    with pytest.raises(RankError, match=r"\[1, 3\]"):
        init_factors(np.ones((3, 2, 3, 3)), "tt", 99)
