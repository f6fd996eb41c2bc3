"""Sample-complexity results and K/R."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import redundancy as R
from redundancy import RedundancyError
from redundancy.linear.bounds import (ASSUMPTIONS, error_bound, interface_rank, kr_bottleneck, kr_inverted_residual,
                               kr_ratio, sample_complexity)
from redundancy.linear.dof import degrees_of_freedom
from redundancy.linear.spec import Dense, LinearCNN, TuckerConv


@given(dof=st.integers(1, 10**6), eps=st.floats(1e-3, 10), sigma=st.floats(0, 10),
       c=st.floats(0.1, 10), lam=st.floats(0.5, 20), extra=st.integers(0, 10**5))
def test_sample_complexity_formula_and_inverse(dof, eps, sigma, c, lam, extra):
    naive = dof + extra
    res = sample_complexity(dof, eps, sigma, naive=naive, constant=c, log_factor=lam)
    exact = c * sigma ** 2 * dof * lam / eps ** 2
    assert exact - 1e-6 <= res.n <= exact + 1 and res.n >= 0
    assert res.n_naive >= res.n
    if res.n > 0 and sigma > 0:
        # the error bound at the returned n is at most eps: the formulas are inverse when the error's
        # constant is the square root of the sample-size constant
        assert float(error_bound(dof, res.n, sigma, constant=math.sqrt(c), log_factor=lam)) <= eps * (1 + 1e-6)
        assert res.ratio == pytest.approx(naive / dof, rel=1e-6 + 2 / res.n)


def test_error_bound_values_and_result():
    b = error_bound(80, 1200, naive=628)
    assert b.error == pytest.approx(math.sqrt(80 / 1200)) and b.error_naive == pytest.approx(math.sqrt(628 / 1200))
    assert float(b) == b.error
    assert error_bound(80, 1200, 2.0, constant=3.0, log_factor=4.0).error == pytest.approx(3 * 2 * math.sqrt(320 / 1200))
    json.dumps(b.to_dict())
    assert "error=" in repr(b)


def test_accepts_dof_result_and_states_assumptions():
    spec = LinearCNN((8, 12, 12), [TuckerConv(32, 3, ranks=(4, 4), stride=3), Dense(1)])
    d = degrees_of_freedom(spec)
    res = sample_complexity(d, eps=0.1)
    assert res.dof == d.dof and res.naive == d.naive
    assert res.n == math.ceil(d.dof / 0.01 - 1e-9) and res.n_naive == math.ceil(d.naive / 0.01 - 1e-9)
    assert res.ratio == pytest.approx(d.ratio, rel=1e-3)
    assert res.assumptions == ASSUMPTIONS and any("restricted-eigenvalue" in a for a in res.assumptions)
    out = res.to_dict()
    json.dumps(out)
    assert out["formula"].startswith("n = constant")
    assert sample_complexity(10, 1.0).n_naive is None and sample_complexity(10, 1.0).ratio is None


@pytest.mark.parametrize("call", [
    lambda: sample_complexity(10, 0),
    lambda: sample_complexity(10, -1.0),
    lambda: sample_complexity(10, float("nan")),
    lambda: sample_complexity(10, 0.1, -1.0),
    lambda: sample_complexity(0, 0.1),
    lambda: sample_complexity(2.5, 0.1),
    lambda: sample_complexity(10, 0.1, naive=0),
    lambda: sample_complexity(10, 0.1, constant=0),
    lambda: sample_complexity(10, 0.1, log_factor=-2),
    lambda: error_bound(10, 0),
    lambda: error_bound(10, 1.5),
    lambda: error_bound(10, 10, -0.1),
    lambda: kr_ratio(0, 4),
    lambda: kr_ratio(4, 2.0),
    lambda: kr_ratio(4, 2, maps=(nn.Linear(2, 3),)),
    lambda: kr_ratio(4, 2, maps=(nn.Linear(2, 3), nn.Linear(4, 2))),
    lambda: kr_ratio(4, 2, maps=(nn.ReLU(), nn.Linear(4, 2))),
    lambda: kr_inverted_residual(16, 6, 16, convention="other"),
])
def test_bad_input_raises(call):
    with pytest.raises(RedundancyError):
        call()


def test_kr_conventions_are_explicit():
    assert kr_bottleneck(256, 64, 256).ratio == 4.0
    e = kr_inverted_residual(32, 6, 32)
    p = kr_inverted_residual(32, 6, 32, convention="projection")
    assert (e.K, e.R, e.ratio) == (192, 32, 6.0) and "expansion" in e.convention
    assert (p.K, p.R) == (32, 192) and p.ratio == pytest.approx(1 / 6) and "projection" in p.convention
    d = e.to_dict()
    json.dumps(d)
    assert d["ratio"] == 6.0 and d["rank_product"] is None and "MobileNetV2" in repr(e)


def test_interface_rank_of_adjacent_maps():
    torch.manual_seed(0)
    # bottleneck: 1x1 R->K followed by the next 1x1 K->R': the K = 16 interface carries rank min(R, R') = 4
    proj = nn.Conv2d(4, 16, 1)
    nxt = nn.Conv2d(16, 8, 1)
    res = kr_ratio(16, 4, maps=(proj, nxt), block="bottleneck")
    assert res.rank_product == 4 and res.ratio_numerical == 4.0 and res.gap > 1e8
    # independent check: the product of the weight matrices
    M = nxt.weight.detach().double()[:, :, 0, 0] @ proj.weight.detach().double()[:, :, 0, 0]
    assert np.linalg.matrix_rank(M.numpy()) == 4
    # a k x k conv then a Linear on the flattened map (channel-major)
    conv = nn.Conv1d(3, 5, 3)
    fc = nn.Linear(5 * 6, 2)
    r, s, tol, gap = interface_rank(conv, fc)
    assert r == 5 and len(s) == 9  # product (2·6) x (3·3), rank <= K = 5
    # trained weights with a deliberately low-rank interface: the numerical rank sees it
    a, b = np.random.default_rng(0).normal(size=(6, 2)), np.random.default_rng(1).normal(size=(2, 5))
    first = (a @ b)[:, :, None]              # (K=6, in=5, 1) with rank 2
    second = np.random.default_rng(2).normal(size=(7, 6, 1))
    assert kr_ratio(6, 6, maps=(first, second)).rank_product == 2
    # tolerance: a small perturbation is cut by a loose tol, kept by the default
    noisy = first + 1e-6 * np.random.default_rng(3).normal(size=first.shape)
    assert kr_ratio(6, 6, maps=(noisy, second)).rank_product == 5
    assert kr_ratio(6, 6, maps=(noisy, second), tol=1e-4).rank_product == 2
    # depthwise conv as the reading map (expansion convention): rank = expanded width's input rank
    expand, dw = nn.Conv2d(4, 12, 1), nn.Conv2d(12, 12, 3, groups=12)
    res = kr_inverted_residual(4, 3, 4, maps=(expand, dw))
    assert res.rank_product == 4 and res.ratio_numerical == 3.0


def test_bounds_refuse_overflow_and_keep_exact_values():
    with pytest.raises(RedundancyError, match="overflow"):
        R.error_bound(10, 1, log_factor=1e308, constant=1e308)
    with pytest.raises(RedundancyError, match="overflow"):
        R.sample_complexity(1, 1e-300)
    # exact rational arithmetic as the oracle
    from fractions import Fraction
    import math

    res = R.sample_complexity(80, 0.3, 0.7, constant=2.5, log_factor=1.3)
    assert res.n == math.ceil(Fraction(2.5) * Fraction(0.7) ** 2 * 80 * Fraction(1.3) / Fraction(0.3) ** 2)
    assert "n=0" in repr(R.sample_complexity(5, 0.1, 0.0, naive=7))   # sigma=0: n = 0, ratio None
