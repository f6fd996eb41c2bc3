"""Data loaders: shapes, labels, seeds, no global-state leak, nothing downloaded."""

import random

import numpy as np
import pytest

from redundancy.data import load_digits_data, load_mnist1d
from redundancy.errors import RedundancyError


def test_digits():
    a, b = load_digits_data(seed=1), load_digits_data(seed=1)
    assert a.input_shape == (1, 8, 8) and a.X_train.dtype == np.float32
    assert 0 <= a.X_train.min() and a.X_train.max() <= 1
    assert len(a.y_train) + len(a.y_test) == 1797 and set(np.unique(a.y_test)) == set(range(10))
    np.testing.assert_array_equal(a.y_train, b.y_train)
    sub = a.subsample(50, seed=0)
    assert len(sub.y_train) == 50 and np.bincount(sub.y_train, minlength=10).min() == 5
    assert sub.X_test is a.X_test


def test_mnist1d_is_generated_locally_and_restores_global_rng(monkeypatch):
    import mnist1d.data as md

    monkeypatch.setattr(md, "get_dataset", lambda *a, **k: pytest.fail("get_dataset may download"))
    np.random.seed(123)
    random.seed(5)
    expect_np, expect_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(5)
    ds = load_mnist1d(num_samples=300, seed=0)
    assert np.random.random() == expect_np and random.random() == expect_py
    assert ds.input_shape == (1, 40) and len(ds.y_train) == 240 and len(ds.y_test) == 60
    np.testing.assert_array_equal(ds.X_train, load_mnist1d(num_samples=300, seed=0).X_train)


def test_bad_arguments():
    with pytest.raises(RedundancyError, match="test_fraction"):
        load_digits_data(test_fraction=1.5)
    with pytest.raises(RedundancyError, match="num_samples"):
        load_mnist1d(num_samples=5)
    with pytest.raises(RedundancyError, match="n_train"):
        load_digits_data().subsample(5)


def test_tensors_is_the_one_route_to_torch():
    import torch

    from redundancy.data import Dataset

    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    cls = Dataset("c", X[:4], np.array([0, 1, 0, 1]), X[4:], np.array([1, 0]), n_classes=2)
    Xt, yt = cls.tensors("train", dtype=torch.float64)
    assert Xt.dtype == torch.float64 and yt.dtype == torch.long and Xt.shape == (4, 2)
    assert torch.equal(yt, torch.tensor([0, 1, 0, 1]))
    reg = Dataset("r", X[:4], np.ones(4, np.float32), X[4:], np.zeros(2, np.float32), n_classes=0)
    Xt, yt = reg.tensors("test")
    assert Xt.dtype == torch.float32 and yt.dtype == torch.float32 and yt.shape == (2,)
    assert reg.tensors("test", dtype=torch.float64)[1].dtype == torch.float64
    with pytest.raises(RedundancyError, match="split"):
        reg.tensors("validation")
