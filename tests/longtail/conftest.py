"""Shared fixtures of the ``redundancy.longtail`` tests."""

import numpy as np
import pytest


def _toy_data(n=30, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    return X, (X[:, 0] > 0).astype("int64")


@pytest.fixture
def toy_data():
    """``toy_data(n=30, d=4, seed=0)``: Gaussian features and the label ``x_0 > 0``."""
    return _toy_data
