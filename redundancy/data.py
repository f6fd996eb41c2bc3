"""Small real data sets that ship with their packages (nothing is downloaded).

* :func:`load_digits_data`: scikit-learn's ``load_digits`` (1797 grey 8 x 8 images, 10 classes),
  inputs ``(n, 1, 8, 8)`` scaled to ``[0, 1]``; 2-D.
* :func:`load_mnist1d`: the ``mnist1d`` package's *local generator* ``make_dataset`` (10 classes,
  length-40 signals), inputs ``(n, 1, 40)``; 1-D. Its ``get_dataset`` (which may download) is never
  called. ``make_dataset`` reseeds the global ``random``/``numpy.random`` state; both are restored.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redundancy._validation import as_generator, check_int
from redundancy.errors import RedundancyError

__all__ = ["Dataset", "load_digits_data", "load_mnist1d"]


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into train and test.

    Attributes
    ----------
    name : str
    X_train, X_test : numpy.ndarray
        float32 inputs ``(n, C, *spatial)``.
    y_train, y_test : numpy.ndarray
        int64 labels in ``[0, n_classes)``.
    n_classes : int
    """

    name: str
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    n_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def subsample(self, n_train: int, seed=0) -> "Dataset":
        """The first ``n_train`` training examples after a seeded, class-stratified shuffle."""
        n_train = check_int("n_train", n_train, min_value=self.n_classes, max_value=len(self.y_train))
        rng = as_generator(seed)
        order = rng.permutation(len(self.y_train))
        # stratify: interleave classes so that every prefix is close to balanced
        by_class = [order[self.y_train[order] == c] for c in range(self.n_classes)]
        inter = [i for group in zip(*by_class) for i in group]
        taken = set(inter)
        rest = [i for i in order if i not in taken]
        idx = np.asarray((inter + rest)[:n_train])
        return Dataset(self.name, self.X_train[idx], self.y_train[idx], self.X_test, self.y_test, self.n_classes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_train": int(len(self.y_train)), "n_test": int(len(self.y_test)),
                "input_shape": list(self.input_shape), "n_classes": self.n_classes}


def load_digits_data(test_fraction: float = 0.3, seed=0) -> Dataset:
    """scikit-learn digits as ``(n, 1, 8, 8)`` float32 in ``[0, 1]`` with a seeded stratified split.

    Examples
    --------
    >>> ds = load_digits_data(seed=0)
    >>> ds.input_shape, ds.n_classes, len(ds.y_train) + len(ds.y_test)
    ((1, 8, 8), 10, 1797)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_fraction, float) and 0 < test_fraction < 1):
        raise RedundancyError(f"test_fraction={test_fraction!r} is not allowed; it must be a float in (0, 1)")
    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    rs = int(as_generator(seed).integers(2 ** 31 - 1))
    Xtr, Xte, ytr, yte = train_test_split(X, d.target.astype(np.int64), test_size=test_fraction,
                                          stratify=d.target, random_state=rs)
    return Dataset("digits", Xtr, ytr, Xte, yte, 10)


def load_mnist1d(num_samples: int = 5000, seed: int = 42, train_split: float = 0.8) -> Dataset:
    """MNIST-1D from the ``mnist1d`` package's local generator, as ``(n, 1, 40)`` float32.

    Examples
    --------
    >>> ds = load_mnist1d(num_samples=200, seed=0)
    >>> ds.input_shape, len(ds.y_train), len(ds.y_test)
    ((1, 40), 160, 40)
    """
    from mnist1d.data import get_dataset_args, make_dataset

    num_samples = check_int("num_samples", num_samples, min_value=20)
    seed = check_int("seed", seed, min_value=0)
    if not (isinstance(train_split, float) and 0 < train_split < 1):
        raise RedundancyError(f"train_split={train_split!r} is not allowed; it must be a float in (0, 1)")
    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, seed, train_split
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    f = lambda a: np.asarray(a, dtype=np.float32)[:, None]  # noqa: E731
    return Dataset("mnist1d", f(d["x"]), np.asarray(d["y"], dtype=np.int64), f(d["x_test"]),
                   np.asarray(d["y_test"], dtype=np.int64), 10)
