"""Tensor-algebra primitives (unfolding, mode products, CP reconstruction) through tensorly.

With :mod:`redundancy.lowrank.tucker`, :mod:`redundancy.lowrank.cp` and
:mod:`redundancy.rank_search.factors`, one of the four modules of the package that import
tensorly. Every call runs in tensorly's numpy backend, whatever backend the caller has set
(``import tltorch`` switches tensorly to pytorch), and returns a float64 numpy array.

* :func:`unfold`: ``T_(n)`` of shape ``(I_n, Π_{m≠n} I_m)``, the other modes in their order,
  last index fastest (Kolda & Bader's unfolding up to a column permutation; tensorly's order).
* :func:`mode_product`: ``(T ×_n A)[.., i, ..] = Σ_j A[i, j] T[.., j, ..]``.
* :func:`multi_mode_product`: ``T ×_{m_1} A_1 ×_{m_2} A_2 ...`` over distinct modes.
* :func:`cp_full`: ``Σ_r w_r a^{(1)}_r ∘ ... ∘ a^{(N)}_r``.

The arguments are checked at entry (shapes that do not chain are refused naming the argument, the
size of the result is bounded by ``REDUNDANCY_MAX_BYTES``) and a result that overflows float64 is
refused, never returned with ``inf`` in it.

The private helpers below (:func:`_as_array`, :func:`_scale_of`, :func:`_rel_error`,
:func:`_tensorly_call`, :func:`_tl_seed`) are shared by the Tucker and CP modules.

References
----------
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51 (2009).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import tensorly as tl

import redundancy._validation as _v
from redundancy._validation import check_array
from redundancy.errors import RedundancyError


#: most modes of a tensor handled here (numpy's own limit is 64 dimensions)
MAX_MODES = 64



@_v.validate_params({"tensor": _v.Array(min_ndim=1, max_ndim=MAX_MODES), "mode": _v.Int(0, MAX_MODES - 1)})
def unfold(tensor: np.ndarray, mode: int) -> np.ndarray:
    """Mode-``n`` unfolding ``T_(n)`` (tensorly's ``unfold``, numpy backend).

    .. math::  T_{(n)}[i_n, j] = T[i_1, \\ldots, i_N], \\qquad j = \\text{the other indices in their
               order, last fastest}

    Parameters
    ----------
    tensor : array-like
        A finite real array with at least one mode.
    mode : int
        In ``[0, tensor.ndim - 1]``.

    Returns
    -------
    numpy.ndarray
        Shape ``(tensor.shape[mode], prod(other sizes))``.

    Examples
    --------
    >>> import numpy as np
    >>> unfold(np.arange(24.0).reshape(2, 3, 4), 1).shape
    (3, 8)
    """
    if mode >= tensor.ndim:
        raise RedundancyError(f"mode={mode} is out of range for a tensor of order {tensor.ndim}; "
                              f"mode must be an integer in [0, {tensor.ndim - 1}]")
    with tl.backend_context("numpy"):
        return np.asarray(tl.unfold(tensor, mode), dtype=np.float64)


@_v.validate_params({"tensor": _v.Array(min_ndim=1, max_ndim=MAX_MODES), "matrix": _v.Array(min_ndim=2, max_ndim=2),
                     "mode": _v.Int(0, MAX_MODES - 1)})
def mode_product(tensor: np.ndarray, matrix: np.ndarray, mode: int) -> np.ndarray:
    """Mode-``n`` product ``(T ×_n A)[.., i, ..] = Σ_j A[i, j] T[.., j, ..]`` (tensorly's ``mode_dot``,
    numpy backend whatever backend the caller has set).

    ``matrix`` has ``tensor.shape[mode]`` columns; the result has ``tensor``'s shape with mode
    ``mode`` replaced by ``matrix.shape[0]``.

    Examples
    --------
    >>> import numpy as np
    >>> mode_product(np.ones((2, 3)), np.ones((4, 3)), 1).shape
    (2, 4)
    """
    return _products(tensor, (matrix,), (mode,), "matrix", "mode")


def _products(tensor: np.ndarray, matrices, modes, mat_name: str, mode_name: str) -> np.ndarray:
    """``tensor ×_{modes[0]} matrices[0] ...`` after checking that the shapes chain (arrays already checked)."""
    if len(set(modes)) != len(modes):
        raise RedundancyError(f"{mode_name}={list(modes)} repeats a mode; the modes must be distinct")
    shape = list(tensor.shape)
    for i, (a, m) in enumerate(zip(matrices, modes)):
        which = mat_name if mat_name == "matrix" else f"{mat_name}[{i}]"
        if m >= tensor.ndim:
            raise RedundancyError(f"{mode_name}={m if mode_name == 'mode' else list(modes)} is out of range for a "
                                  f"tensor of order {tensor.ndim}; every mode must be in [0, {tensor.ndim - 1}]")
        if a.shape[1] != tensor.shape[m]:
            raise RedundancyError(f"{which} has shape {a.shape}; multiplying mode {m} (size {tensor.shape[m]}) "
                                  f"needs a matrix with {tensor.shape[m]} columns")
        shape[m] = a.shape[0]
        _v.check_memory("the mode product", math.prod(shape))
    if not matrices:
        return tensor.copy()
    with tl.backend_context("numpy"), np.errstate(all="ignore"):
        out = np.asarray(tl.tenalg.multi_mode_dot(tensor, list(matrices), modes=list(modes)), dtype=np.float64)
    return _v.check_finite_result("the mode product", out, "rescale the inputs")


@_v.validate_params({"tensor": _v.Array(min_ndim=1, max_ndim=MAX_MODES),
                     "matrices": _v.Items(_v.Array(min_ndim=2, max_ndim=2), max_len=MAX_MODES),
                     "modes": _v.Items(_v.Int(0, MAX_MODES - 1), max_len=MAX_MODES)})
def multi_mode_product(tensor: np.ndarray, matrices, modes) -> np.ndarray:
    """``T ×_{m_1} A_1 ×_{m_2} A_2 ...`` over distinct modes (tensorly's ``multi_mode_dot``, numpy backend).

    .. math::  (T \\times_m A)[\\ldots, i, \\ldots] = \\sum_j A[i, j]\\, T[\\ldots, j, \\ldots]

    Parameters
    ----------
    tensor : array-like
        Finite real array of order ``N``.
    matrices : sequence of 2-D arrays
        ``matrices[i]`` has ``tensor.shape[modes[i]]`` columns.
    modes : sequence of int
        Distinct modes in ``[0, N - 1]``, one per matrix.

    Returns
    -------
    numpy.ndarray
        ``tensor``'s shape with each ``modes[i]`` replaced by ``matrices[i].shape[0]``.

    Examples
    --------
    >>> import numpy as np
    >>> multi_mode_product(np.ones((2, 3, 4)), [np.ones((5, 2)), np.ones((6, 4))], [0, 2]).shape
    (5, 3, 6)
    """
    if len(matrices) != len(modes):
        raise RedundancyError(f"matrices has {len(matrices)} entries and modes={list(modes)} has {len(modes)}; "
                              "give one mode per matrix")
    return _products(tensor, matrices, modes, "matrices", "modes")


@_v.validate_params({"weights": _v.NoneOr(_v.Array(min_ndim=1, max_ndim=1)),
                     "factors": _v.Items(_v.Array(min_ndim=2, max_ndim=2), min_len=1, max_len=MAX_MODES)})
def cp_full(weights, factors) -> np.ndarray:
    """The full tensor of a CP decomposition (tensorly's ``cp_to_tensor``, numpy backend).

    .. math::  T = \\sum_{r=1}^R w_r\\, a^{(1)}_r \\circ \\cdots \\circ a^{(N)}_r

    Parameters
    ----------
    weights : 1-D array of length ``R``, or None
        ``None`` means all ones.
    factors : sequence of 2-D arrays
        ``factors[n]`` has shape ``(I_n, R)``; at least one factor.

    Returns
    -------
    numpy.ndarray
        Shape ``(I_1, ..., I_N)``.

    Examples
    --------
    >>> import numpy as np
    >>> cp_full(np.array([2.0]), [np.ones((2, 1)), np.ones((3, 1))])
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """
    rank = factors[0].shape[1]
    for i, f in enumerate(factors):
        if f.shape[1] != rank:
            raise RedundancyError(f"factors[{i}] has shape {f.shape}; every factor needs the same number of "
                                  f"columns (the rank, {rank} from factors[0])")
    if weights is None:
        weights = np.ones(rank)
    if weights.shape != (rank,):
        raise RedundancyError(f"weights has shape {weights.shape}; it needs one weight per rank-one term ({rank},)")
    rows = [f.shape[0] for f in factors]
    _v.check_memory("cp_full", math.prod(rows))
    _v.check_memory("cp_full (Khatri-Rao product)", math.prod(rows[1:]) * rank)
    with tl.backend_context("numpy"), np.errstate(all="ignore"):
        out = np.asarray(tl.cp_to_tensor((weights, list(factors))), dtype=np.float64).reshape(rows)
    return _v.check_finite_result("cp_full", out, "rescale the inputs")


# ----------------------------------------------------------------------------------- shared helpers
def _as_array(tensor: Any, name: str = "tensor") -> np.ndarray:
    arr = check_array(name, tensor, finite=False)
    if arr.ndim < 2:
        raise RedundancyError(f"{name} has shape {arr.shape}; a decomposition needs at least 2 modes")
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise RedundancyError(f"{name} is empty or has non-finite entries; it must be a finite array")
    return arr


def _scale_of(arr: np.ndarray) -> float:
    """Largest absolute entry (1 for a zero tensor): decompositions run on ``arr / scale`` so that
    tensors at 1e-200 or 1e200 neither underflow nor overflow in the squared norms of ALS/SVD."""
    m = float(np.max(np.abs(arr)))
    return m if m > 0 else 1.0


def _rel_error(tensor: np.ndarray, approx: np.ndarray) -> float:
    scale = _scale_of(tensor)  # norms of tensor / scale: no underflow at 1e-200, no overflow at 1e200
    tensor, approx = tensor / scale, approx / scale
    norm = float(np.linalg.norm(tensor))
    diff = float(np.linalg.norm(tensor - approx))
    return diff / norm if norm > 0 else diff


def _tensorly_call(what: str, fn, *args, **kwargs):
    """Run a tensorly routine in the numpy backend; its failures become one RedundancyError."""
    try:
        with tl.backend_context("numpy"), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - LinAlgError, ValueError... from inside tensorly
        raise RedundancyError(f"{what} failed inside tensorly ({type(exc).__name__}: "
                              f"{_v._first_line(exc)[:160]})") from None


def _tl_seed(gen: np.random.Generator) -> int:
    return int(gen.integers(0, 2**31 - 1))
