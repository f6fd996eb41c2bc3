"""Factor initialisations of a conv kernel's 3-way view (the tensorly boundary of rank search).

This module and :mod:`redundancy.lowrank.decompose` are the only modules of the package that call
tensorly: here tensorly's ``tensor_train`` (TT-SVD); CP-ALS goes through
:func:`redundancy.lowrank.decompose.cp_decompose` (tensorly's ``parafac``) and Tucker-2 through
:func:`redundancy.lowrank.decompose.tucker_decompose` (``partial_tucker``).

A kernel ``W`` in torch layout ``(C_out, C_in, *k)`` (``k`` of length ``d`` = 1, 2 or 3) is viewed
as the 3-way tensor

.. math::  T[t, s, c] = W[t, c, s], \\qquad T \\in \\mathbb R^{C_{out} \\times k^d \\times C_{in}},

(``s`` the flattened kernel position). Every decomposition below is returned as three factors
``A (C_out, r)``, ``G``, ``B (r, C_in)``:

* **TT** (tied ranks ``r_1 = r_2 = r``): ``T[t,s,c] = Σ_{a,b} A[t,a] G[a,s,b] B[b,c]``, ``G`` of
  shape ``(r, k^d, r)``. TT-SVD truncates each rank to its unfolding's rank; missing slices are
  zero-padded so the tied rank is exactly ``r``. On a 3-way tensor this is the same format as a
  Tucker-2 of the channel modes with tied ranks (``G`` is the Tucker core); only the
  initialisation differs (sequential TT-SVD here, HOOI for Tucker).
* **CP3**: ``T[t,s,c] = Σ_a A[t,a] G[s,a] B[a,c]``, ``G`` of shape ``(k^d, r)`` (one spatial filter
  per rank-one term), CP weights folded into ``A``.

References
----------
Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33 (2011) (TT-SVD).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from redundancy.errors import RankError, RedundancyError

__all__ = ["conv_view", "tt_max_rank", "cp3_max_rank", "tt_svd_factors", "tucker_factors", "cp3_factors",
           "svd_factors", "init_factors"]


def conv_view(kernel: np.ndarray) -> np.ndarray:
    """``(C_out, C_in, *k) -> (C_out, prod(k), C_in)`` (``T[t, s, c] = W[t, c, s]``); a matrix gets ``s`` of size 1."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim < 2:
        raise RedundancyError(f"kernel has shape {kernel.shape}; it needs (C_out, C_in, *k)")
    c_out, c_in = kernel.shape[:2]
    return kernel.reshape(c_out, c_in, -1).transpose(0, 2, 1)


def tt_max_rank(c_out: int, s: int, c_in: int) -> int:
    """Smallest tied TT rank that is exact for every ``C_out × s × C_in`` tensor:
    ``max(min(C_out, s C_in), min(C_out s, C_in))`` (the ranks of the two unfoldings)."""
    return max(min(c_out, s * c_in), min(c_out * s, c_in))


def cp3_max_rank(c_out: int, s: int, c_in: int) -> int:
    """Largest CP rank allowed for a ``C_out × s × C_in`` tensor: ``prod / max`` (see ``cp_rank_bound``)."""
    return math.prod((c_out, s, c_in)) // max(c_out, s, c_in)


def _check_rank(rank, bound, what):
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= bound:
        raise RankError(f"rank={rank!r} is not allowed for {what}; it must be an integer in [1, {bound}]")
    return int(rank)


def _pad(a: np.ndarray, g: np.ndarray, b: np.ndarray, r: int):
    """Zero-pad truncated TT factors to tied rank ``r`` (the padded slices contribute nothing)."""
    A = np.zeros((a.shape[0], r)); A[:, : a.shape[1]] = a
    G = np.zeros((r, g.shape[1], r)); G[: g.shape[0], :, : g.shape[2]] = g
    B = np.zeros((r, b.shape[1])); B[: b.shape[0]] = b
    return A, G, B


def tt_svd_factors(view: np.ndarray, rank: int):
    """TT-SVD (tensorly ``tensor_train``) of a 3-way view at tied rank ``rank``: ``(A, G, B)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T = np.einsum("ta,asb,bc->tsc", rng.normal(size=(5, 2)), rng.normal(size=(2, 9, 2)), rng.normal(size=(2, 4)))
    >>> A, G, B = tt_svd_factors(T, 2)
    >>> bool(np.allclose(np.einsum("ta,asb,bc->tsc", A, G, B), T))
    True
    """
    import tensorly as tl
    from tensorly.decomposition import tensor_train

    view = np.asarray(view, dtype=np.float64)
    c_out, s, c_in = view.shape
    r = _check_rank(rank, tt_max_rank(c_out, s, c_in), f"a TT of a {view.shape} tensor")
    r1, r2 = min(r, c_out, s * c_in), min(r, c_out * s, c_in)
    with tl.backend_context("numpy"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tt = tensor_train(view, rank=[1, r1, r2, 1])
    f0, f1, f2 = (np.asarray(f, dtype=np.float64) for f in tt.factors)
    if f0.shape[0] != 1 or f2.shape[2] != 1 or f1.shape[1] != s:
        raise RedundancyError(f"tensorly returned TT cores of shapes {[f.shape for f in tt.factors]}; "
                              "this tensorly version is not supported")
    return _pad(f0[0], f1, f2[:, :, 0], r)


def tucker_factors(view: np.ndarray, rank: int, seed=0):
    """Tucker-2 (HOOI, tensorly ``partial_tucker``) of the channel modes at ranks ``(min(r, C_out), min(r, C_in))``,
    zero-padded to the tied-rank format ``(A, G, B)``."""
    from redundancy.lowrank.decompose import tucker_decompose

    view = np.asarray(view, dtype=np.float64)
    c_out, s, c_in = view.shape
    r = _check_rank(rank, max(c_out, c_in), f"a Tucker-2 of a {view.shape} tensor")
    dec = tucker_decompose(view, (min(r, c_out), min(r, c_in)), modes=(0, 2), seed=seed)
    u_out, u_in = dec.factors
    return _pad(u_out, dec.core, u_in.T, r)


def cp3_factors(view: np.ndarray, rank: int, seed=0, n_iter_max: int = 200):
    """CP-ALS (tensorly ``parafac``, SVD start) of a 3-way view at rank ``rank``: ``(A, G, B)`` with
    ``A (C_out, r)`` holding the CP weights, ``G (k^d, r)``, ``B (r, C_in)``."""
    from redundancy.lowrank.decompose import cp_decompose

    view = np.asarray(view, dtype=np.float64)
    r = _check_rank(rank, cp3_max_rank(*view.shape), f"a CP of a {view.shape} tensor")
    dec = cp_decompose(view, r, seed=seed, n_iter_max=n_iter_max, tol=1e-8)
    a, g, b = dec.factors
    return a * dec.weights, g, b.T


def svd_factors(matrix: np.ndarray, rank: int):
    """Rank-``r`` truncated SVD ``W ≈ (U √S)(√S Vᵀ)`` of an ``(out, in)`` matrix: ``(A, B)``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    r = _check_rank(rank, min(matrix.shape), f"an SVD of a {matrix.shape} matrix")
    u, sv, vt = np.linalg.svd(matrix, full_matrices=False)
    root = np.sqrt(sv[:r])
    return u[:, :r] * root, root[:, None] * vt[:r]


def init_factors(kernel: np.ndarray, method: str, rank: int, seed=0):
    """Factors of ``kernel`` (conv ``(C_out, C_in, *k)`` or ``Linear`` ``(out, in)``) at ``rank``.

    A matrix (``Linear``) always gets the SVD ``(A, B)``; a conv kernel gets ``(A, G, B)`` of
    ``method`` in ``{"tt", "tucker", "cp"}``.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim == 2:
        return svd_factors(kernel, rank)
    view = conv_view(kernel)
    if method == "tt":
        return tt_svd_factors(view, rank)
    if method == "tucker":
        return tucker_factors(view, rank, seed)
    if method == "cp":
        return cp3_factors(view, rank, seed)
    raise RedundancyError(f"method={method!r} is not allowed; choose one of ['tt', 'cp', 'tucker']")
