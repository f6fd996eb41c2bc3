"""Statistical-model data: the truth built from the torch module matches the statistical model's forms."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from redundancy.errors import RankError, RedundancyError
from redundancy.validation.simulate import Design, StatModelGenerator, covariance


@st.composite
def designs(draw):
    n = draw(st.integers(1, 3))
    l = tuple(draw(st.integers(1, 3)) for _ in range(n))
    mult = tuple(draw(st.integers(1, 3)) for _ in range(n))
    d = tuple(li * mi + draw(st.integers(0, 1)) for li, mi in zip(l, mult))
    structure = draw(st.sampled_from(["vanilla", "tucker", "cp"]))
    K = draw(st.integers(1, 4))
    rank = None if structure == "vanilla" else draw(st.integers(1, K))
    sr = tuple(draw(st.integers(1, li)) for li in l) if structure == "tucker" else None
    return Design(input_shape=d, kernel=l, K=K, structure=structure, rank=rank, spatial_ranks=sr,
                  n_outputs=draw(st.integers(1, 2)))


def _weights(gen):
    """Kernel stack (l + (K,)) and FC weights (p + (K,)) per output, read back from the torch module."""
    d = gen.design
    conv, fc = gen.module[0], gen.module[-1]
    with torch.no_grad():
        ker = (conv.weight if hasattr(conv, "weight") else conv.kernel()).numpy()[:, 0]  # (K, *l)
        Bw = fc.weight.numpy().reshape(d.n_outputs, d.K, *d.basic.p)
    return np.moveaxis(ker, 0, -1), [np.moveaxis(Bw[c], 0, -1) for c in range(d.n_outputs)]


@given(designs(), st.integers(0, 2 ** 16))
@settings(max_examples=25, deadline=None)
def test_truth_matches_statistical_model(design, seed):
    if design.rank is not None and design.rank > design.basic.P:  # no exact-rank truth exists
        with pytest.raises(RankError, match="design.rank"):
            StatModelGenerator(design, sigma=0.0, w_norm=2.0, seed=seed)
        return
    gen = StatModelGenerator(design, sigma=0.0, w_norm=2.0, seed=seed)
    A, Bs = _weights(gen)
    bc = design.basic
    for c, B in enumerate(Bs):
        # independent path: the statistical model's patch matrix M (vec W_eff = M^T vec W)
        np.testing.assert_allclose(bc.effective_weight(A, B), gen.W_star[c], atol=1e-12)
        np.testing.assert_allclose(bc.whole_tensor(A, B), gen.W_patch[c], atol=1e-12)
    assert math.isclose(np.linalg.norm(gen.W_star), 2.0, rel_tol=1e-12)
    X, y = gen.sample(6)
    with torch.no_grad():
        out = gen.module(torch.from_numpy(X[:, None])).numpy()
    np.testing.assert_allclose(y.reshape(6, -1), out, atol=1e-12)


@pytest.mark.parametrize("structure", ["tucker", "cp"])
def test_truth_does_not_depend_on_K(structure):
    Ws = [StatModelGenerator(Design(input_shape=(9, 6), kernel=3, K=K, structure=structure, rank=2), seed=4).W_star for K in (2, 5, 16)]
    np.testing.assert_allclose(Ws[0], Ws[1], atol=1e-12)
    np.testing.assert_allclose(Ws[0], Ws[2], atol=1e-12)


def test_tucker_truth_has_the_design_ranks():
    d = Design(input_shape=(12, 12), kernel=3, K=8, structure="tucker", rank=2, spatial_ranks=(1, 2))
    W = StatModelGenerator(d, seed=0).W_patch[0].reshape(3, 3, 16)
    ranks = [np.linalg.matrix_rank(np.moveaxis(W, j, 0).reshape(W.shape[j], -1), tol=1e-10) for j in range(3)]
    assert ranks == [1, 2, 2]


def test_noise_level_and_seeds():
    d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
    g = StatModelGenerator(d, sigma=0.3, seed=1)
    X, y = g.sample(20000, seed=5)
    resid = y - X @ g.W_star[0]
    assert abs(resid.std() - 0.3) < 0.01
    X2, y2 = StatModelGenerator(d, sigma=0.3, seed=1).sample(20000, seed=5)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(g.sample(3)[1], g.sample(3)[1])  # the generator's own stream advances


def test_input_covariance():
    cov = covariance((3, 2), "ar1", rho=0.6)
    g = StatModelGenerator(Design(input_shape=(3, 2), kernel=1, K=1, structure="vanilla"), cov=cov, seed=0)
    X = g.sample_inputs(40000, seed=1).reshape(40000, -1)
    assert np.abs(np.cov(X.T) - cov).max() < 0.05
    assert np.linalg.eigvalsh(cov).min() >= ((1 - 0.6) / (1 + 0.6)) ** 2 - 1e-12


def test_multi_output_shapes():
    d = Design(input_shape=(6, 6), kernel=2, K=3, structure="tucker", rank=2, n_outputs=3)
    X, Y = StatModelGenerator(d, seed=0).sample(4)
    assert X.shape == (4, 6, 6) and Y.shape == (4, 3)


@pytest.mark.parametrize("kwargs, err", [
    (dict(input_shape=(8,), kernel=2, K=2, structure="tucker", rank=3), RedundancyError),
    (dict(input_shape=(8,), kernel=2, K=2, structure="tucker"), RankError),
    (dict(input_shape=(8,), kernel=2, K=2, structure="tucker", rank=1, spatial_ranks=3), RankError),
    (dict(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1, spatial_ranks=1), RedundancyError),
    (dict(input_shape=(8,), kernel=2, K=2, structure="dense"), RedundancyError),
    (dict(input_shape=(8,), kernel=9, K=2), RedundancyError),
    (dict(input_shape=(2, 2, 2, 2), kernel=1, K=1), RedundancyError),
])
def test_bad_designs(kwargs, err):
    with pytest.raises(err):
        Design(**kwargs)


def test_bad_generator_arguments():
    d = Design(input_shape=(4,), kernel=2, K=1, structure="vanilla")
    with pytest.raises(RedundancyError, match="positive definite"):
        StatModelGenerator(d, cov=-np.eye(4))
    with pytest.raises(RedundancyError, match="cov has shape"):
        StatModelGenerator(d, cov=np.eye(3))
    with pytest.raises(RedundancyError, match="sigma"):
        StatModelGenerator(d, sigma=-1.0)
    with pytest.raises(RedundancyError, match="n="):
        StatModelGenerator(d).sample(0)


def test_an_astronomical_sample_is_refused_before_allocation():
    g = StatModelGenerator(Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1), seed=0)
    with pytest.raises(RedundancyError, match="GiB"):
        g.sample(10 ** 12)
    with pytest.raises(RedundancyError, match="GiB"):
        g.sample_inputs(10 ** 12)
