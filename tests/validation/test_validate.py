"""Error curves: dof closed form vs Jacobian rank, slope, K-independence, result objects."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.func import functional_call, jacrev

from redundancy.errors import RedundancyError
from redundancy.validation.fit import fit_linear_cnn
from redundancy.validation.simulate import Design, StatModelGenerator
from redundancy.validation.validate import ErrorCurveResult, design_dof, curve_statistics, error_curve


def _jacobian_rank(design: Design, seed: int) -> int:
    """Rank of d vec(W_eff) / d θ at a random point of the design's torch network (independent of the formula)."""
    net = design.spec().build(seed=seed)
    D = math.prod(design.input_shape)
    basis = torch.eye(D, dtype=torch.float64).reshape(D, 1, *design.input_shape)
    params = {k: v.detach() for k, v in net.named_parameters()}
    J = jacrev(lambda p: functional_call(net, p, (basis,)).reshape(-1))(params)
    M = torch.cat([j.reshape(j.shape[0], -1) for j in J.values()], dim=1).numpy()
    s = np.linalg.svd(M, compute_uv=False)
    return int((s > s[0] * max(M.shape) * 1e-11).sum())


@st.composite
def small_designs(draw):
    n = draw(st.integers(1, 2))
    l = tuple(draw(st.integers(2, 3)) for _ in range(n))
    d = tuple(li * draw(st.integers(2, 3)) for li in l)
    structure = draw(st.sampled_from(["vanilla", "tucker", "cp"]))
    K = draw(st.integers(1, 4))
    rank = None if structure == "vanilla" else draw(st.integers(1, min(K, 2)))
    sr = tuple(draw(st.integers(1, li)) for li in l) if structure == "tucker" else None
    return Design(input_shape=d, kernel=l, K=K, structure=structure, rank=rank, spatial_ranks=sr)


@given(small_designs(), st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def testdesign_dof_equals_jacobian_rank(design, seed):
    assert design_dof(design) == _jacobian_rank(design, seed)


def test_dof_of_the_study_designs_at_K_16():
    # the study's kernels and ranks with K = 16 > P = 9 (study: P = 36, dof 80 for both)
    t = Design(input_shape=(9, 9), kernel=3, K=16, structure="tucker", rank=2, spatial_ranks=(2, 2))
    c = Design(input_shape=(9, 9), kernel=3, K=16, structure="cp", rank=2)
    assert design_dof(t) == 2 * 4 + 2 * (6 - 4) + 9 * 2 - 4 == _jacobian_rank(t, 0)
    assert design_dof(c) == 2 * (3 + 3 + 9 - 2) == _jacobian_rank(c, 0)
    assert design_dof(Design(input_shape=(18, 18), kernel=3, K=16, structure="tucker", rank=2, spatial_ranks=(2, 2))) == 80


def test_slope_is_minus_one_half():
    # 1-D CP (a rank-2 3 x 8 matrix), dof = 2 (3 + 8 - 2) = 18; n from 11 dof to 180 dof
    d = Design(input_shape=(24,), kernel=3, K=2, structure="cp", rank=2)
    res = error_curve(d, [200, 800, 3200], n_reps=4, seed=1, progress=False)
    assert res.dof == 18
    assert -0.65 <= res.slope <= -0.35, res
    assert res.slope_ci[0] <= res.slope <= res.slope_ci[1]
    assert 0.7 < res.constant_dof < 1.4


def test_error_does_not_depend_on_K_at_fixed_R():
    """Same truth, independent data per K, n = 20 dof, 6 replications each (L-BFGS, 2 restarts).

    Tolerance: the mean log-errors of K = 2 and K = 8 differ by less than 3 pooled standard errors
    (a two-sample z-test at about the 0.3 % level), and the RMS errors by less than 30 %.
    """
    errs = {}
    for i, K in enumerate((2, 8)):
        d = Design(input_shape=(32,), kernel=4, K=K, structure="tucker", rank=2, spatial_ranks=2)  # dof = 4 + 4 + 16 - 4 = 20
        assert design_dof(d) == 20
        g = StatModelGenerator(d, sigma=1.0, seed=3)
        errs[K] = np.array([fit_linear_cnn(d, *g.sample(400, seed=np.random.default_rng([i, j])), W_star=g.W_star,
                                           n_restarts=2, seed=j).error_fro for j in range(6)])
    a, b = np.log(errs[2]), np.log(errs[8])
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) < 3 * se
    ra, rb = (np.sqrt((errs[K] ** 2).mean()) for K in (2, 8))
    assert abs(ra / rb - 1) < 0.3
    assert 0.6 < ra / math.sqrt(20 / 400) < 1.6


def test_curve_statistics_exact_on_synthetic_errors():
    n = np.array([100, 200, 400, 800])
    e = 2.0 * np.sqrt(5 / n)[:, None] * np.ones((4, 3))
    s = curve_statistics(n, e, dof=5, naive=20, sigma=1.0)
    assert math.isclose(s["slope"], -0.5, abs_tol=1e-12)
    assert math.isclose(s["constant_dof"], 2.0) and math.isclose(s["constant_naive"], 1.0)
    assert s["slope_ci"][0] == pytest.approx(-0.5) and s["slope_ci"][1] == pytest.approx(-0.5)


def test_result_object():
    d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
    res = error_curve(d, [30, 60], n_reps=2, progress=False)
    assert isinstance(res, ErrorCurveResult)
    with pytest.raises(Exception):
        res.slope = 0.0
    dd = res.to_dict()
    assert dd["errors"] == res.errors.tolist() and dd["inputs"]["design"]["K"] == 2
    df = res.to_pandas()
    assert len(df) == 4 and set(df["n"]) == {30, 60}
    assert "slope=" in repr(res)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_grid=[10]), "n_grid"), (dict(n_grid=[20, 10]), "n_grid"), (dict(n_grid=[10, 20], n_reps=0), "n_reps"),
    (dict(n_grid=[10, 20], estimator="sgd"), "estimator"), (dict(n_grid=[10, 20], sigma=-1.0), "sigma"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(RedundancyError, match=match):
        error_curve(Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1), progress=False, **kwargs)
