"""Issue 23: ``fit_spike_slab`` with its default budget converges on the planted regression case.

Exact answer (written here, independent of redundancy.bayes): y = X β + ε, ε ~ N(0, σ² I) with the
noise variance fixed at the TRUE σ² = 1 (the fit estimates σ jointly as a point estimate; its
estimate is close to 1), prior γ_j ~ Bern(0.2), β_j | γ_j = 1 ~ N(0, 1), β_j | γ_j = 0 = 0, so
y | γ ~ N(0, σ² I + X_γ X_γᵀ) and PIP_j = Σ_{γ ∋ j} π(γ) m(γ) / Σ_γ π(γ) m(γ) over all 2^10 models.
"""

import itertools
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from redundancy.bayes import fit_spike_slab
from redundancy.errors import ConvergenceWarning

LAM, S0, SIGMA = 0.2, 1.0, 1.0


def log_marginal(X, y, g, s0=S0, sigma=SIGMA):
    """log N(y; 0, σ² I + s0² X_g X_gᵀ) by the Woodbury/Cholesky form in the |g| x |g| space."""
    n, k = len(y), int(g.sum())
    const = -0.5 * n * np.log(2 * np.pi * sigma ** 2) - 0.5 * (y @ y) / sigma ** 2
    if k == 0:
        return const
    Xg = X[:, g]
    L = np.linalg.cholesky(Xg.T @ Xg / sigma ** 2 + np.eye(k) / s0 ** 2)
    z = np.linalg.solve(L, Xg.T @ y / sigma ** 2)
    return const + 0.5 * z @ z - np.log(np.diag(L)).sum() - k * np.log(s0)


def exact_pips(X, y, lam=LAM):
    p = X.shape[1]
    models = np.array(list(itertools.product([False, True], repeat=p)))
    logw = np.array([log_marginal(X, y, g) + g.sum() * np.log(lam) + (p - g.sum()) * np.log(1 - lam) for g in models])
    w = np.exp(logw - logw.max())
    return models.T.astype(float) @ (w / w.sum())


def planted(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 10))
    beta = np.zeros(10)
    beta[:3] = [1.0, 1.5, 2.0]
    return X, X @ beta + SIGMA * rng.normal(size=300)


def test_enumeration_matches_closed_forms():
    """One feature: PIP = λ m1 / (λ m1 + (1 − λ) m0) with dense Gaussian densities; two features: the
    four dense models summed by hand."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = 0.4 * X[:, 0] + rng.normal(size=40)
    dense = {g: multivariate_normal(np.zeros(40), SIGMA ** 2 * np.eye(40) + S0 ** 2 * X[:, list(g)] @ X[:, list(g)].T)
             .logpdf(y) for g in [(), (0,), (1,), (0, 1)]}
    m0, m1 = np.exp(dense[()]), np.exp(dense[(0,)])
    assert exact_pips(X[:, :1], y)[0] == pytest.approx(LAM * m1 / (LAM * m1 + (1 - LAM) * m0), rel=1e-9)
    prior = {g: LAM ** len(g) * (1 - LAM) ** (2 - len(g)) for g in dense}
    w = {g: prior[g] * np.exp(dense[g] - dense[()]) for g in dense}
    z = sum(w.values())
    np.testing.assert_allclose(exact_pips(X, y), [(w[(0,)] + w[(0, 1)]) / z, (w[(1,)] + w[(0, 1)]) / z], rtol=1e-9)


def test_defaults_put_every_feature_on_the_exact_side():
    X, y = planted()
    exact = exact_pips(X, y)
    assert (exact[:3] > 0.99).all() and (exact[3:] < 0.2).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = fit_spike_slab(nn.Sequential(nn.Linear(10, 1)), (X.astype("float32"), y.astype("float32")),
                             prior_inclusion=LAM, slab_scale=S0)
    print("exact", np.round(exact, 3), "\nfit  ", np.round(res.feature_pip, 3))
    np.testing.assert_array_equal(res.feature_pip > 0.5, exact > 0.5)
    assert np.abs(res.feature_pip - exact).max() < 0.1
    assert res.convergence.converged and res.convergence.epochs_run < res.convergence.max_epochs
    assert res.noise_scale == pytest.approx(SIGMA, abs=0.15)


def test_tiny_budget_warns_and_says_unconverged():
    X, y = planted()
    with pytest.warns(ConvergenceWarning, match=r"fit_spike_slab.*5/5 epochs.*raise epochs above 5"):
        res = fit_spike_slab(nn.Sequential(nn.Linear(10, 1)), (X.astype("float32"), y.astype("float32")),
                             prior_inclusion=LAM, slab_scale=S0, epochs=5, n_samples=2)
    c = res.convergence
    assert not c.converged and c.epochs_run == 5 and c.max_epochs == 5 and len(c.history) == 5
    assert res.to_dict()["convergence"]["converged"] is False
    assert "NOT converged" in repr(res)


def test_same_seed_same_numbers():
    X, y = planted(1)
    data = (X[:100].astype("float32"), y[:100].astype("float32"))
    a, b = (fit_spike_slab((4,), data, epochs=30, n_samples=2, prior_inclusion=LAM) for _ in range(2))
    np.testing.assert_array_equal(a.feature_pip, b.feature_pip)
    assert a.convergence.history == b.convergence.history
    assert torch.get_num_threads() >= 1  # the fit restores the caller's thread count
