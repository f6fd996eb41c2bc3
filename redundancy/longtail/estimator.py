r"""Feldman-Zhang memorization and influence from subset masks and 0/1 correctness (masked means).

With ``T`` models, model ``t`` trained on the subset :math:`S_t` of the training set, mask
:math:`M_{ti} = 1[i \in S_t]` and correctness :math:`c_t(x) \in \{0, 1\}`:

.. math::

    \mathrm{mem}(i) = \frac{\sum_t M_{ti}\, c_t(x_i)}{\sum_t M_{ti}}
                    - \frac{\sum_t (1 - M_{ti})\, c_t(x_i)}{\sum_t (1 - M_{ti})},\qquad
    \mathrm{infl}(i, j) = \frac{\sum_t M_{ti}\, c_t(z_j)}{\sum_t M_{ti}}
                        - \frac{\sum_t (1 - M_{ti})\, c_t(z_j)}{\sum_t (1 - M_{ti})}

(Feldman & Zhang, NeurIPS 2020, "What neural networks memorize and why"). The standard error of
``mem(i)`` is that of a difference of two independent Bernoulli means,
:math:`\sqrt{p_{in}(1-p_{in})/n_{in} + p_{out}(1-p_{out})/n_{out}}`. An example that is in every
subset (or in none) has no estimate: its ``mem`` and ``infl`` are 0 and ``defined`` is False.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError
from redundancy.training.diagnostics import Convergence

__all__ = ["MemorizationResult", "estimate_memorization"]

MAX_DENSE = 20_000_000  # entries of a dense influence matrix (float32: 80 MB)
_MAX_CELLS = 2_000_000_000


@_v.result
class MemorizationResult(_v.Result):
    """Memorization of every training example and influence of training on test examples.

    Attributes
    ----------
    mem, mem_se : numpy.ndarray, shape (n_train,)
        Memorization estimate and its standard error.
    p_in, p_out : numpy.ndarray, shape (n_train,)
        Accuracy on ``x_i`` of the models that did / did not train on it.
    n_in, n_out : numpy.ndarray of int, shape (n_train,)
        Number of models with / without ``x_i``.
    defined : numpy.ndarray of bool
        ``n_in > 0 and n_out > 0`` (otherwise ``mem`` and ``infl`` are set to 0).
    max_infl, max_infl_index : numpy.ndarray, shape (n_test,)
        :math:`\\max_i \\mathrm{infl}(i, j)` and the training example attaining it.
    top_index, top_infl : numpy.ndarray, shape (n_test, k)
        The ``k`` most influential training examples of each test point, by decreasing influence.
    infl : numpy.ndarray or None, shape (n_test, n_train)
        The dense influence matrix (float32) when it has at most ``max_dense`` entries.
    p_test : numpy.ndarray, shape (n_test,)
        Mean correctness of all models on each test point.
    y_train, y_test : numpy.ndarray or None
        Labels, when known (for the tables).
    n_models : int
    fit_fraction : float or None
        Fraction of the trained runs whose accuracy on their own subset reached ``fit_threshold``
        (None for runs not trained here). Feldman-Zhang's estimator assumes every run fits its
        subset; far below 1 the scores understate memorization.
    run_fit_accuracy : numpy.ndarray or None, shape (n_models,)
        Each run's accuracy on its own subset at the end of training.
    convergence : Convergence or None
        The least converged run's training diagnostics (None for runs not trained here).
    settings : dict
    """

    mem: np.ndarray = field(repr=False)
    mem_se: np.ndarray = field(repr=False)
    p_in: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    p_out: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    n_in: np.ndarray = field(repr=False)
    n_out: np.ndarray = field(repr=False)
    defined: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    max_infl: np.ndarray = field(repr=False)
    max_infl_index: np.ndarray = field(repr=False)
    top_index: np.ndarray = field(repr=False)
    top_infl: np.ndarray = field(repr=False)
    infl: np.ndarray | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    p_test: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    y_train: np.ndarray | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    y_test: np.ndarray | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    n_models: int
    fit_fraction: float | None = None
    run_fit_accuracy: np.ndarray | None = field(default=None, repr=False)
    convergence: Convergence | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def in_subset_accuracy(self) -> np.ndarray:
        """Each example's accuracy in the runs that trained on it (``p_in``: the mean over the runs that
        contained it); well below 1 means the runs did not fit it and its ``mem`` is understated."""
        return self.p_in

    @property
    def n_train(self) -> int:
        return int(len(self.mem))

    @property
    def n_test(self) -> int:
        return int(len(self.max_infl))

    def example_table(self):
        """One row per training example: ``index, label, mem, mem_se, p_in, p_out, n_in, n_out, defined``."""
        import pandas as pd

        return pd.DataFrame({"index": np.arange(self.n_train),
                             "label": self.y_train if self.y_train is not None else -1,
                             "mem": self.mem, "mem_se": self.mem_se, "p_in": self.p_in, "p_out": self.p_out,
                             "n_in": self.n_in, "n_out": self.n_out, "defined": self.defined})

    def test_table(self):
        """One row per test point: ``index, label, max_infl, max_infl_index, p_correct``."""
        import pandas as pd

        return pd.DataFrame({"index": np.arange(self.n_test),
                             "label": self.y_test if self.y_test is not None else -1,
                             "max_infl": self.max_infl, "max_infl_index": self.max_infl_index,
                             "p_correct": self.p_test})

    def to_pandas(self):
        """The per-example table (:meth:`example_table`)."""
        return self.example_table()

    def _extra_dict(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "n_test": self.n_test, "n_defined": int(self.defined.sum()),
                "mean_mem": float(self.mem.mean())}

    __eq__ = object.__eq__  # identity (arrays have no single truth value)
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        hi = int((self.mem > 0.25).sum())
        fit = "" if self.fit_fraction is None else f", runs fit: {self.fit_fraction:.0%}"
        return (f"MemorizationResult(n_models={self.n_models}, n_train={self.n_train}, n_test={self.n_test}, "
                f"mean mem={self.mem.mean():.3f}, mem>0.25: {hi}, max infl={self.max_infl.max(initial=0):.3f}{fit})")


def _binary(name: str, a: Any, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError):
        arr = np.zeros(())
    if arr.ndim != ndim or arr.size == 0 or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise RedundancyError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; a non-empty {ndim}-d array "
                              "of 0/1 values is required")
    if not np.isin(arr, (0, 1)).all():
        raise RedundancyError(f"{name} holds values other than 0 and 1 (e.g. {arr[~np.isin(arr, (0, 1))][0]!r})")
    return arr.astype(bool)


def _labels(name, y, n):
    if y is None:
        return None
    y = np.asarray(y)
    if y.shape != (n,):
        raise RedundancyError(f"{name} has shape {y.shape}; it must have shape ({n},)")
    return y


def _runs(name: str, value: Any) -> np.ndarray:
    return _binary(name, value, 2)


@_v.validate_params({"masks": _runs, "correct_train": _runs, "correct_test": lambda name, v: None if v is None else _runs(name, v),
                     "top_k": _v.Int(1), "max_dense": _v.Int(0),
                     "settings": lambda name, v: None if v is None else _v.Instance(dict)(name, v)})
def estimate_memorization(masks, correct_train, correct_test=None, *, y_train=None, y_test=None, top_k: int = 10,
                          max_dense: int = MAX_DENSE, settings: dict | None = None) -> MemorizationResult:
    """Memorization and influence estimates from ``T`` runs (the masked means in the module docstring).

    Parameters
    ----------
    masks : array of 0/1, shape (T, n_train)
        ``masks[t, i] = 1`` when model ``t`` trained on example ``i``.
    correct_train : array of 0/1, shape (T, n_train)
    correct_test : array of 0/1, shape (T, n_test), optional
        Without it there is no influence (``n_test = 0``).
    y_train, y_test : array, optional
        Labels, carried into the tables.
    top_k : int
        Influential training examples kept per test point.
    max_dense : int
        Keep the dense ``(n_test, n_train)`` influence matrix when it has at most this many entries.

    Examples
    --------
    >>> import numpy as np
    >>> M = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    >>> C = np.array([[1, 1], [1, 1], [0, 1], [0, 0]])
    >>> estimate_memorization(M, C).mem.tolist()
    [1.0, 0.5]
    """
    M, C = masks, correct_train
    T, n = M.shape
    if T < 2 or C.shape != M.shape or T * n > _MAX_CELLS:
        raise RedundancyError(f"masks {M.shape} and correct_train {C.shape} must have the same shape (T, n_train) "
                              f"with T >= 2 runs and T * n_train <= {_MAX_CELLS}")
    Cte = np.zeros((T, 0), bool) if correct_test is None else correct_test
    if Cte.shape[0] != T or Cte.shape[1] * T > _MAX_CELLS:
        raise RedundancyError(f"correct_test has shape {Cte.shape}; it must be (T={T}, n_test)")
    return _estimate(M, C, Cte, _labels("y_train", y_train, n), _labels("y_test", y_test, Cte.shape[1]), top_k,
                     max_dense, settings)


def _estimate(M, C, Cte, y_train, y_test, top_k: int, max_dense: int, settings) -> MemorizationResult:
    """The masked means of the module docstring (arguments checked by :func:`estimate_memorization`)."""
    T, n = M.shape
    Mf, Cf = M.astype(np.float64), C.astype(np.float64)
    n_in = M.sum(0).astype(np.int64)
    n_out = T - n_in
    defined = (n_in > 0) & (n_out > 0)
    inv_in = np.where(n_in > 0, 1.0 / np.maximum(n_in, 1), 0.0)
    inv_out = np.where(n_out > 0, 1.0 / np.maximum(n_out, 1), 0.0)
    p_in = (Mf * Cf).sum(0) * inv_in
    p_out = ((1 - Mf) * Cf).sum(0) * inv_out
    mem = np.where(defined, p_in - p_out, 0.0)
    se = np.where(defined, np.sqrt(p_in * (1 - p_in) * inv_in + p_out * (1 - p_out) * inv_out), 0.0)
    m = Cte.shape[1]
    k = min(top_k, n)
    dense = np.zeros((m, n), np.float32) if 0 < m * n <= max_dense else None
    top_i, top_v = np.zeros((m, k), np.int64), np.zeros((m, k))
    block = max(1, min(m, 4_000_000 // max(n, 1)))
    for a in range(0, m, block):
        Ct = Cte[:, a:a + block].T.astype(np.float64)          # (b, T)
        inf = (Ct @ Mf) * inv_in - (Ct @ (1 - Mf)) * inv_out  # (b, n)
        inf[:, ~defined] = 0.0
        if dense is not None:
            dense[a:a + block] = inf
        part = np.argpartition(-inf, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(inf, part, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        top_i[a:a + block] = np.take_along_axis(part, order, 1)
        top_v[a:a + block] = np.take_along_axis(vals, order, 1)
    return MemorizationResult(mem=mem, mem_se=se, p_in=p_in, p_out=p_out, n_in=n_in, n_out=n_out, defined=defined,
                              max_infl=top_v[:, 0].copy() if m else np.zeros(0),
                              max_infl_index=top_i[:, 0].copy() if m else np.zeros(0, np.int64),
                              top_index=top_i, top_infl=top_v, infl=dense, p_test=Cte.mean(0) if m else np.zeros(0),
                              y_train=y_train, y_test=y_test,
                              n_models=int(T), settings={"top_k": k, **(settings or {})})
