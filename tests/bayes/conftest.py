"""Shared fixtures of the ``redundancy.bayes`` tests."""

import numpy as np
import pytest

from redundancy.bayes import fit_spike_slab


@pytest.fixture(scope="module")
def tiny_fit():
    """A one-epoch fit of a 4-node MLP on 60 examples of 5 features, and its data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    return fit_spike_slab((4,), (X, y), epochs=1, n_samples=2, seed=0), (X, y)
