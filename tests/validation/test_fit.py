"""Estimators: recovery on noiseless data, agreement between L-BFGS, ALS and the data objective."""

import numpy as np
import pytest

from redundancy.errors import RedundancyError
from redundancy.validation.fit import estimation_errors, fit_linear_cnn, fit_tucker_als
from redundancy.validation.simulate import Design, StatModelGenerator

CASES = [
    Design(input_shape=(12,), kernel=3, K=4, structure="tucker", rank=2, spatial_ranks=2),
    Design(input_shape=(6, 6), kernel=2, K=4, structure="tucker", rank=2, spatial_ranks=(1, 2)),
    Design(input_shape=(6, 6), kernel=2, K=3, structure="cp", rank=2),
    Design(input_shape=(4, 4, 4), kernel=2, K=2, structure="cp", rank=1),
    Design(input_shape=(8, 8), kernel=2, K=2, structure="vanilla"),
    Design(input_shape=(8, 8), kernel=2, K=4, structure="tucker", rank=2, pool=2),
]


@pytest.mark.parametrize("design", CASES, ids=lambda d: f"{d.structure}-{d.input_shape}-q{d.pool}")
def test_lbfgs_recovers_truth_without_noise(design):
    g = StatModelGenerator(design, sigma=0.0, seed=1)
    X, y = g.sample(3 * np.prod(design.input_shape), seed=2)
    fit = fit_linear_cnn(design, X, y, W_star=g.W_star, seed=0)
    assert fit.error_fro < 1e-4 * np.linalg.norm(g.W_star)
    assert fit.train_loss < 1e-8


def test_als_recovers_truth_without_noise():
    for design in CASES:
        if design.structure != "tucker":
            continue
        g = StatModelGenerator(design, sigma=0.0, seed=3)
        X, y = g.sample(2 * np.prod(design.input_shape), seed=4)
        assert fit_tucker_als(design, X, y, W_star=g.W_star).error_fro < 1e-8


def test_multi_output_recovery():
    d = Design(input_shape=(6, 6), kernel=2, K=3, structure="tucker", rank=2, n_outputs=2)
    g = StatModelGenerator(d, sigma=0.0, seed=0)
    X, Y = g.sample(80, seed=1)
    assert fit_linear_cnn(d, X, Y, W_star=g.W_star, n_restarts=2, seed=1).error_fro < 1e-4


def test_lbfgs_and_als_find_the_same_least_squares_fit():
    d = Design(input_shape=(9, 9), kernel=3, K=6, structure="tucker", rank=2, spatial_ranks=(2, 2))
    g = StatModelGenerator(d, sigma=1.0, seed=0)
    X, y = g.sample(400, seed=1)
    a = fit_tucker_als(d, X, y, W_star=g.W_star)
    b = fit_linear_cnn(d, X, y, W_star=g.W_star, seed=0)
    assert abs(a.train_loss - b.train_loss) < 1e-8 * a.train_loss
    np.testing.assert_allclose(b.W_hat, a.W_hat, atol=1e-3 * np.linalg.norm(a.W_hat))


def test_gram_objective_equals_data_objective():
    d = Design(input_shape=(8,), kernel=2, K=3, structure="cp", rank=2)
    g = StatModelGenerator(d, sigma=0.5, seed=0)
    X, y = g.sample(60, seed=1)
    a = fit_linear_cnn(d, X, y, objective="gram", seed=0)
    b = fit_linear_cnn(d, X, y, objective="data", seed=0)
    assert abs(a.train_loss - b.train_loss) < 1e-8
    resid = y - X.reshape(60, -1) @ a.W_hat.reshape(-1)
    assert abs(resid @ resid / 60 - a.train_loss) < 1e-12


def test_estimation_errors_with_covariance():
    rng = np.random.default_rng(0)
    W, V = rng.normal(size=(1, 3, 2)), rng.normal(size=(1, 3, 2))
    C = np.cov(rng.normal(size=(6, 50)))
    fro, pred = estimation_errors(W, V, C)
    d = (W - V).reshape(-1)
    assert np.isclose(fro, np.linalg.norm(d)) and np.isclose(pred, np.sqrt(d @ C @ d))


def test_bad_inputs():
    d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
    X = np.zeros((5, 8))
    with pytest.raises(RedundancyError, match="X has shape"):
        fit_linear_cnn(d, np.zeros((5, 7)), np.zeros(5))
    with pytest.raises(RedundancyError, match="y has shape"):
        fit_linear_cnn(d, X, np.zeros(4))
    with pytest.raises(RedundancyError, match="NaN"):
        fit_linear_cnn(d, X, np.full(5, np.nan))
    with pytest.raises(RedundancyError, match="objective"):
        fit_linear_cnn(d, X, np.zeros(5), objective="sgd")
    with pytest.raises(RedundancyError, match="Tucker"):
        fit_tucker_als(d, X, np.zeros(5))
    with pytest.raises(RedundancyError, match="must match"):
        estimation_errors(np.zeros((1, 2)), np.zeros((1, 3)))


@pytest.mark.parametrize("which", ["X", "y"])
def test_fit_refuses_a_string_for_the_data(which):
    d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
    X, y = StatModelGenerator(d, seed=0).sample(10)
    args = {"X": X, "y": y, which: "abc"}
    with pytest.raises(RedundancyError, match=f"{which}='abc'"):
        fit_linear_cnn(d, args["X"], args["y"])


def test_a_capped_fit_warns_and_says_not_converged():
    import warnings

    from redundancy.errors import ConvergenceWarning
    from redundancy.validation import Design, StatModelGenerator, fit_linear_cnn

    design = Design(input_shape=(12,), kernel=3, K=4, structure="tucker", rank=2, spatial_ranks=2)
    gen = StatModelGenerator(design, sigma=0.1, seed=0)
    X, y = gen.sample(200)
    with pytest.warns(ConvergenceWarning, match="fit_linear_cnn: the LBFGS fit hit its iteration cap"):
        res = fit_linear_cnn(design, X, y, n_restarts=1, max_iter=2, seed=0)
    assert res.converged is False and res.n_iter <= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert fit_linear_cnn(design, X, y, n_restarts=1, seed=0).converged
