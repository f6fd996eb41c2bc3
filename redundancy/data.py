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

from redundancy._validation import as_generator, check_choice, check_int
from redundancy.errors import RedundancyError

__all__ = ["Dataset", "load_digits_data", "load_mnist1d"]

_MAX_EXAMPLES = 10_000_000


@dataclass(frozen=True)
class Dataset:
    """A data set split into train and test: classification (int64 labels) or regression.

    Attributes
    ----------
    name : str
    X_train, X_test : numpy.ndarray
        float32 inputs ``(n, C, *spatial)`` (or ``(n, features)`` for an MLP).
    y_train, y_test : numpy.ndarray
        int64 labels in ``[0, n_classes)`` for classification; float32 targets ``(n,)`` or
        ``(n, outputs)`` for regression (``n_classes = 0``).
    n_classes : int
        Number of classes; 0 marks a regression data set.
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

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"`` (``n_classes == 0``)."""
        return "regression" if self.n_classes == 0 else "classification"

    def subsample(self, n_train: int, seed=0) -> "Dataset":
        """The first ``n_train`` training examples after a seeded, class-stratified shuffle."""
        if self.task == "regression":
            n_train = check_int("n_train", n_train, min_value=1, max_value=len(self.y_train))
            idx = np.sort(as_generator(seed).permutation(len(self.y_train))[:n_train])
            return Dataset(self.name, self.X_train[idx], self.y_train[idx], self.X_test, self.y_test, 0)
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

    def tensors(self, split: str, *, device="cpu", dtype=None):
        """``(X, y)`` of ``split`` (``"train"`` or ``"test"``) as torch tensors on ``device``: the one
        route from a data set to tensors.

        ``X`` is cast to ``dtype`` (default: kept as stored, float32); ``y`` is int64 (``long``) for
        classification and cast to ``X``'s dtype for regression.

        Examples
        --------
        >>> import torch
        >>> ds = Dataset("toy", np.zeros((4, 2), np.float32), np.arange(4), np.zeros((2, 2), np.float32),
        ...              np.arange(2), n_classes=4)
        >>> X, y = ds.tensors("test", dtype=torch.float64)
        >>> X.dtype, y.dtype, tuple(X.shape)
        (torch.float64, torch.int64, (2, 2))
        """
        import torch

        check_choice("split", split, ("train", "test"))
        X = self.X_train if split == "train" else self.X_test
        y = self.y_train if split == "train" else self.y_test
        Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=device)
        if dtype is not None:
            Xt = Xt.to(dtype)
        yt = torch.as_tensor(np.ascontiguousarray(y)).to(device)
        yt = yt.to(Xt.dtype) if self.task == "regression" else yt.long()
        return Xt, yt

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

    if not (isinstance(test_fraction, float) and 0.01 <= test_fraction <= 0.99):
        # both splits must hold every one of the 10 classes (1797 images: 1% is 18 of them)
        raise RedundancyError(f"test_fraction={test_fraction!r:.40} is not allowed; it must be a float in [0.01, 0.99]")
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

    num_samples = check_int("num_samples", num_samples, min_value=20, max_value=10 ** 6)
    seed = check_int("seed", seed, min_value=0, max_value=2 ** 32 - 1)  # numpy's legacy RandomState
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


def _array(name: str, value: Any, dtype) -> np.ndarray:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise RedundancyError(f"{name} could not be read as an array ({exc}); give a numpy array or tensor") from None
    if arr.dtype == object or arr.ndim == 0 or arr.size == 0:
        raise RedundancyError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; a non-empty numeric array "
                              "with the examples along the first axis is required")
    if len(arr) > _MAX_EXAMPLES:
        raise RedundancyError(f"{name} has {len(arr)} examples; at most {_MAX_EXAMPLES} are allowed")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise RedundancyError(f"{name} has dtype {arr.dtype}; a numeric array is required")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise RedundancyError(f"{name} holds NaN or inf; every value must be finite")
    return arr


def _targets(name: str, y: Any) -> tuple[np.ndarray, bool]:
    raw = _array(name, y, None)
    is_class = np.issubdtype(raw.dtype, np.integer) or raw.dtype == bool
    return (raw.astype(np.int64) if is_class else raw.astype(np.float32)), bool(is_class)


def as_dataset(data: Any, *, name: str = "arrays", n_classes: int | None = None) -> Dataset:
    """The :class:`Dataset` behind ``data``: a ``Dataset`` as it is, or arrays.

    * ``(X, y)``: one set, used both to train and to evaluate (``X_test is X_train``);
    * ``(X_train, y_train, X_test, y_test)``: an explicit split.

    Integer (or bool) labels make a classification set with ``n_classes = max(y) + 1`` (unless
    given); floating targets make a regression set (``n_classes = 0``).

    Examples
    --------
    >>> import numpy as np
    >>> ds = as_dataset((np.zeros((6, 3)), np.array([0, 1, 2, 0, 1, 2])))
    >>> ds.task, ds.n_classes, ds.input_shape
    ('classification', 3, (3,))
    >>> as_dataset((np.zeros((4, 2)), np.linspace(0, 1, 4))).task
    'regression'
    """
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 4):
        raise RedundancyError(f"data={type(data).__name__} is not allowed; give a redundancy.data.Dataset, "
                              "(X, y) or (X_train, y_train, X_test, y_test)")
    if len(data) == 2:
        X = _array("X", data[0], np.float32)
        y, is_class = _targets("y", data[1])
        Xs, ys = (X, y, X, y), (is_class,)
    else:
        Xtr, Xte = _array("X_train", data[0], np.float32), _array("X_test", data[2], np.float32)
        ytr, c1 = _targets("y_train", data[1])
        yte, c2 = _targets("y_test", data[3])
        if c1 != c2:
            raise RedundancyError("y_train and y_test must both be integer labels or both float targets")
        if Xtr.shape[1:] != Xte.shape[1:]:
            raise RedundancyError(f"X_train has example shape {Xtr.shape[1:]} but X_test has {Xte.shape[1:]}")
        Xs, ys = (Xtr, ytr, Xte, yte), (c1,)
    for Xa, ya, label in ((Xs[0], Xs[1], "train"), (Xs[2], Xs[3], "test")):
        if len(Xa) != len(ya):
            raise RedundancyError(f"the {label} inputs have {len(Xa)} examples but the targets {len(ya)}")
    if ys[0]:
        if min(Xs[1].min(), Xs[3].min()) < 0:
            raise RedundancyError("class labels must be integers >= 0")
        found = int(max(Xs[1].max(), Xs[3].max())) + 1
        k = found if n_classes is None else check_int("n_classes", n_classes, min_value=found, max_value=100_000)
        if k < 2:
            raise RedundancyError(f"the labels hold {k} class; classification needs at least 2")
    else:
        k = 0
    return Dataset(str(name), Xs[0], Xs[1], Xs[2], Xs[3], k)
