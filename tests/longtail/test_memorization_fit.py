"""Issue 23's planted case: with every default, memorization trains each run until it fits its subset
and separates flipped labels from exact duplicates and the rest; a starved budget warns."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import ConvergenceWarning
from redundancy.longtail import memorization


def _planted(seed=0):
    """400 examples of 4 Gaussian clusters in 5-D (100 each); 10 labels flipped to another class;
    10 pairs of exact duplicates (10 examples overwritten with copies of 10 others, labels included),
    so 20 examples have an exact twin."""
    rng = np.random.default_rng(seed)
    n, d, k = 400, 5, 4
    y = np.repeat(np.arange(k), n // k)
    X = rng.normal(size=(n, d)) * 0.6 + 3.0 * np.eye(k, d)[y]
    perm = rng.permutation(n)
    flipped, a, b = perm[:10], perm[10:20], perm[20:30]
    y[flipped] = (y[flipped] + 1 + rng.integers(0, k - 1, 10)) % k
    X[b], y[b] = X[a], y[a]
    return X.astype(np.float32), y.astype(np.int64), flipped, np.concatenate([a, b])


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is fastest (and what 'one core' means)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mlp():
    return nn.Sequential(nn.Linear(5, 64), nn.ReLU(), nn.Linear(64, 4))


def test_defaults_fit_the_subsets_and_find_the_planted_examples():
    X, y, flipped, dups = _planted()
    with torch.random.fork_rng():
        res = memorization(_mlp, (X, y), n_models=64)
    rest = np.setdiff1d(np.arange(len(y)), np.concatenate([flipped, dups]))
    assert res.fit_fraction >= 0.9 and (res.run_fit_accuracy >= 0.99).mean() == res.fit_fraction
    assert res.mem[dups].max() < 0.1
    assert res.mem[flipped].mean() > 0.4
    assert res.mem[flipped].mean() > res.mem[rest].mean() + 0.3 and res.mem[rest].mean() < 0.1
    assert np.median(res.mem[flipped]) > np.quantile(res.mem[rest], 0.95)
    # the runs that held a flipped label mostly fit it (in-subset accuracy), those that did not, did not
    assert res.in_subset_accuracy[flipped].mean() > 0.6 and res.p_out[flipped].mean() < 0.2
    assert res.convergence is not None and res.convergence.train_accuracy is not None
    assert res.settings["fit_threshold"] == 0.99 and res.settings["mean_epochs_run"] < 200


def test_a_starved_budget_warns_and_says_so():
    X, y, _, _ = _planted()
    with pytest.warns(ConvergenceWarning, match="unreliable") as rec:
        res = memorization(_mlp, (X[:100], y[:100]), n_models=4, epochs=1)
    assert rec[0].filename == __file__
    assert res.fit_fraction < 0.9 and not res.convergence.converged and "runs fit: 0%" in repr(res)
