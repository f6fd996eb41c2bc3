"""Spike-and-slab variational PIPs against the exact posterior by enumerating all 2^p linear models.

The exact answer is computed here, independently of redundancy.bayes: for a linear model
y = X β + ε, ε ~ N(0, σ² I) with known σ, the prior γ_k ~ Bern(λ), β_k | γ_k = 1 ~ N(0, σ0²),
β_k | γ_k = 0 = 0 has the Gaussian marginal likelihood y | γ ~ N(0, σ² I + σ0² X_γ X_γᵀ), so
PIP_k = Σ_{γ ∋ k} π(γ) m(γ) / Σ_γ π(γ) m(γ) with π(γ) = λ^|γ| (1 − λ)^(p − |γ|).
"""

import itertools

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr
from torch import nn

from redundancy.bayes import fit_spike_slab

P, N_OBS, LAM, S0, SIGMA = 12, 100, 0.5, 1.0, 1.0


def log_marginal(X, y, g, s0, sigma):
    """log N(y; 0, σ² I + σ0² X_g X_gᵀ) via the p-dimensional (Woodbury) form."""
    k = int(g.sum())
    yty = y @ y
    n = len(y)
    const = -0.5 * n * np.log(2 * np.pi * sigma ** 2)
    if k == 0:
        return const - 0.5 * yty / sigma ** 2
    Xg = X[:, g]
    A = Xg.T @ Xg / sigma ** 2 + np.eye(k) / s0 ** 2
    L = np.linalg.cholesky(A)
    z = np.linalg.solve(L, Xg.T @ y / sigma ** 2)
    return const - 0.5 * yty / sigma ** 2 + 0.5 * z @ z - np.log(np.diag(L)).sum() - k * np.log(s0)


def exact_pips(X, y, lam, s0, sigma):
    p = X.shape[1]
    models = np.array(list(itertools.product([False, True], repeat=p)))
    logw = np.array([log_marginal(X, y, g, s0, sigma) + g.sum() * np.log(lam) + (p - g.sum()) * np.log(1 - lam)
                     for g in models])
    w = np.exp(logw - logw.max())
    return models.T.astype(float) @ (w / w.sum())


def planted(beta, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_OBS, P))
    b = np.zeros(P)
    b[:3] = beta
    return X, X @ b + SIGMA * rng.normal(size=N_OBS)


def test_woodbury_marginal_matches_dense_gaussian():
    X, y = planted(0.6, 1)
    for g in ([0] * 12, [1, 0, 1] + [0] * 9, [1] * 12):
        g = np.array(g, bool)
        cov = SIGMA ** 2 * np.eye(N_OBS) + S0 ** 2 * X[:, g] @ X[:, g].T
        ref = multivariate_normal(np.zeros(N_OBS), cov).logpdf(y)
        assert log_marginal(X, y, g, S0, SIGMA) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("beta", [0.3, 0.6, 1.5], ids=["weak", "medium", "strong"])
def test_variational_pips_on_the_same_side_as_exact(beta):
    X, y = planted(beta, 7)
    exact = exact_pips(X, y, LAM, S0, SIGMA)
    assert np.abs(exact - 0.5).min() > 0.2  # the planted problem is not a coin toss at 1/2
    res = fit_spike_slab(nn.Sequential(nn.Linear(P, 1, bias=False)), (X.astype("float32"), y.astype("float32")),
                         prior_inclusion=LAM, slab_scale=S0, noise_scale=SIGMA, seed=0, n_samples=1)
    assert res.convergence.converged  # the default budget, stopped by its rule
    vi = res.feature_pip
    rho = spearmanr(vi, exact)[0]
    print(f"beta={beta}: exact {np.round(exact, 2)}\n  vi {np.round(vi, 2)}\n  spearman {rho:.3f}")
    np.testing.assert_array_equal(vi > 0.5, exact > 0.5)
    assert rho > 0.9
    assert np.abs(vi - exact).max() < 0.25
