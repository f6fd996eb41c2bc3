"""Factor initialisations of a conv kernel's 3-way view (the tensorly boundary of rank search).

One of the four modules of the package that import tensorly (with :mod:`.tensor_ops`, :mod:`.cp`
and :mod:`.tucker`): here tensorly's ``tensor_train`` (TT-SVD); CP-ALS goes through
:func:`redundancy.lowrank.cp.cp_decompose` (tensorly's ``parafac``) and Tucker-2 through
:func:`redundancy.lowrank.tucker.tucker_decompose` (``partial_tucker``).

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

Every function checks its arguments at entry (a :class:`~redundancy.errors.RedundancyError`
naming the argument; a :class:`~redundancy.errors.RankError` for a rank outside ``[1, bound]``),
works on the view divided by its largest entry (no overflow or underflow at 1e±200) and refuses a
result that is not finite.

References
----------
Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33 (2011) (TT-SVD).
"""

from __future__ import annotations

import math

import numpy as np

import redundancy._validation as _v
from redundancy._validation import MAX_COUNT, MAX_NUMEL
from redundancy.errors import RankError, RedundancyError


INIT_METHODS = ("tt", "tucker", "cp", "svd")
_VIEW = _v.Array(min_ndim=3, max_ndim=3)
_SIZE = _v.Int(1, MAX_NUMEL)
_SEED = _v.Seed(allow_none=True, allow_generator=True)


@_v.validate_params({"kernel": _v.Array(min_ndim=2)})
def conv_view(kernel: np.ndarray) -> np.ndarray:
    """The 3-way view ``T[t, s, c] = W[t, c, s]`` of a kernel ``(C_out, C_in, *k) -> (C_out, prod(k), C_in)``.

    A matrix ``(out, in)`` gets ``s`` of size 1. ``kernel`` must be a finite real array with at
    least two modes.

    Examples
    --------
    >>> conv_view(np.zeros((4, 3, 2, 5))).shape
    (4, 10, 3)
    """
    c_out, c_in = kernel.shape[:2]
    return kernel.reshape(c_out, c_in, -1).transpose(0, 2, 1)


@_v.validate_params({"c_out": _SIZE, "s": _SIZE, "c_in": _SIZE})
def tt_max_rank(c_out: int, s: int, c_in: int) -> int:
    """Smallest tied TT rank that is exact for every ``C_out × s × C_in`` tensor:
    ``max(min(C_out, s C_in), min(C_out s, C_in))`` (the ranks of the two unfoldings).

    Each size is an integer in ``[1, REDUNDANCY_MAX_NUMEL]``.

    Examples
    --------
    >>> tt_max_rank(8, 9, 4)
    8
    """
    return max(min(c_out, s * c_in), min(c_out * s, c_in))


@_v.validate_params({"c_out": _SIZE, "s": _SIZE, "c_in": _SIZE})
def cp3_max_rank(c_out: int, s: int, c_in: int) -> int:
    """Largest CP rank allowed for a ``C_out × s × C_in`` tensor: ``prod / max`` (see ``cp_rank_bound``).

    Each size is an integer in ``[1, REDUNDANCY_MAX_NUMEL]``.

    Examples
    --------
    >>> cp3_max_rank(8, 9, 4)
    32
    """
    return math.prod((c_out, s, c_in)) // max(c_out, s, c_in)


def _brief(value) -> str:
    """``repr(value)`` on one line, at most 40 characters."""
    try:
        text = " ".join(repr(value).split())
    except Exception:  # noqa: BLE001 - a failing repr is not worth a traceback
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _check_rank(rank, bound, what):
    if isinstance(rank, (bool, np.bool_)) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= bound:
        raise RankError(f"rank={_brief(rank)} is not allowed for {what}; it must be an integer in [1, {bound}]")
    return int(rank)



def _scale_of(arr: np.ndarray) -> float:
    m = float(np.max(np.abs(arr)))
    return m if m > 0 else 1.0


def _pad(a: np.ndarray, g: np.ndarray, b: np.ndarray, r: int):
    """Zero-pad truncated TT factors to tied rank ``r`` (the padded slices contribute nothing)."""
    _v.check_memory(f"the tied-rank core (rank {r}, {g.shape[1]} positions)", r * g.shape[1] * r)
    A = np.zeros((a.shape[0], r)); A[:, : a.shape[1]] = a
    G = np.zeros((r, g.shape[1], r)); G[: g.shape[0], :, : g.shape[2]] = g
    B = np.zeros((r, b.shape[1])); B[: b.shape[0]] = b
    return A, G, B


@_v.validate_params({"view": _VIEW})
def tt_svd_factors(view: np.ndarray, rank: int):
    """TT-SVD (tensorly ``tensor_train``) of a 3-way view at tied rank ``rank``: ``(A, G, B)``.

    .. math::  T[t,s,c] \\approx \\sum_{a,b} A[t,a]\\, G[a,s,b]\\, B[b,c]

    ``view`` is a finite ``(C_out, s, C_in)`` array; ``rank`` an integer in
    ``[1, tt_max_rank(C_out, s, C_in)]``. Shapes: ``A (C_out, r)``, ``G (r, s, r)``, ``B (r, C_in)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T = np.einsum("ta,asb,bc->tsc", rng.normal(size=(5, 2)), rng.normal(size=(2, 9, 2)), rng.normal(size=(2, 4)))
    >>> A, G, B = tt_svd_factors(T, 2)
    >>> bool(np.allclose(np.einsum("ta,asb,bc->tsc", A, G, B), T))
    True
    """
    from tensorly.decomposition import tensor_train

    from redundancy.lowrank.tensor_ops import _tensorly_call

    c_out, s, c_in = view.shape
    r = _check_rank(rank, tt_max_rank(c_out, s, c_in), f"a TT of a {view.shape} tensor")
    r1, r2 = min(r, c_out, s * c_in), min(r, c_out * s, c_in)
    scale = _scale_of(view)
    tt = _tensorly_call("the TT-SVD", tensor_train, view / scale, rank=[1, r1, r2, 1])
    f0, f1, f2 = (np.asarray(f, dtype=np.float64) for f in tt.factors)
    if f0.shape[0] != 1 or f2.shape[2] != 1 or f1.shape[1] != s:
        raise RedundancyError(f"tensorly returned TT cores of shapes {[f.shape for f in tt.factors]}; "
                              "this tensorly version is not supported")
    return _v.check_finite_result("the TT-SVD", tuple(_pad(f0[0] * scale, f1, f2[:, :, 0], r)), "rescale the kernel")


@_v.validate_params({"view": _VIEW, "seed": _SEED})
def tucker_factors(view: np.ndarray, rank: int, seed=0):
    """Tucker-2 (HOOI, tensorly ``partial_tucker``) of the channel modes at ranks ``(min(r, C_out), min(r, C_in))``,
    zero-padded to the tied-rank format ``(A, G, B)``.

    .. math::  T \\approx G \\times_0 U_{out} \\times_2 U_{in}, \\qquad A = U_{out},\\; B = U_{in}^\\top

    ``view`` is a finite ``(C_out, s, C_in)`` array, ``rank`` an integer in ``[1, max(C_out, C_in)]``,
    ``seed`` an int, None or a numpy Generator.

    Examples
    --------
    >>> T = np.einsum("ta,asb,bc->tsc", np.eye(3)[:, :2], np.ones((2, 4, 2)), np.eye(2))
    >>> A, G, B = tucker_factors(T, 2)
    >>> bool(np.allclose(np.einsum("ta,asb,bc->tsc", A, G, B), T))
    True
    """
    from redundancy.lowrank.tucker import tucker_decompose

    c_out, s, c_in = view.shape
    r = _check_rank(rank, max(c_out, c_in), f"a Tucker-2 of a {view.shape} tensor")
    dec = tucker_decompose(view, (min(r, c_out), min(r, c_in)), modes=(0, 2), seed=seed)
    u_out, u_in = dec.factors
    return _v.check_finite_result("the Tucker-2 decomposition", tuple(_pad(u_out, dec.core, u_in.T, r)),
                                  "rescale the kernel")


@_v.validate_params({"view": _VIEW, "seed": _SEED, "n_iter_max": _v.Int(1, MAX_COUNT)})
def cp3_factors(view: np.ndarray, rank: int, seed=0, n_iter_max: int = 200):
    """CP-ALS (tensorly ``parafac``, SVD start) of a 3-way view at rank ``rank``: ``(A, G, B)``.

    .. math::  T[t,s,c] \\approx \\sum_a A[t,a]\\, G[s,a]\\, B[a,c]

    ``A (C_out, r)`` holds the CP weights, ``G (s, r)``, ``B (r, C_in)``. ``rank`` is an integer in
    ``[1, cp3_max_rank(C_out, s, C_in)]``; ``n_iter_max`` in ``[1, REDUNDANCY_MAX_COUNT]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T = np.einsum("ta,sa,ac->tsc", rng.normal(size=(4, 1)), rng.normal(size=(3, 1)), rng.normal(size=(1, 5)))
    >>> A, G, B = cp3_factors(T, 1)
    >>> bool(np.allclose(np.einsum("ta,sa,ac->tsc", A, G, B), T))
    True
    """
    from redundancy.lowrank.cp import cp_decompose

    r = _check_rank(rank, cp3_max_rank(*view.shape), f"a CP of a {view.shape} tensor")
    _v.check_memory(f"the CP factors (rank {r})", r * sum(view.shape))
    dec = cp_decompose(view, r, seed=seed, n_iter_max=n_iter_max, tol=1e-8)
    a, g, b = dec.factors
    with np.errstate(all="ignore"):
        return _v.check_finite_result("the CP decomposition", (a * dec.weights, g, b.T), "rescale the kernel")


@_v.validate_params({"matrix": _v.Array(min_ndim=2, max_ndim=2)})
def svd_factors(matrix: np.ndarray, rank: int):
    """Rank-``r`` truncated SVD ``W ≈ (U √S)(√S Vᵀ)`` of an ``(out, in)`` matrix: ``(A, B)``.

    ``matrix`` is finite; ``rank`` an integer in ``[1, min(matrix.shape)]``.

    Examples
    --------
    >>> A, B = svd_factors(np.outer([1.0, 2.0], [3.0, 4.0, 5.0]), 1)
    >>> bool(np.allclose(A @ B, np.outer([1.0, 2.0], [3.0, 4.0, 5.0])))
    True
    """
    r = _check_rank(rank, min(matrix.shape), f"an SVD of a {matrix.shape} matrix")
    scale = _scale_of(matrix)
    try:
        u, sv, vt = np.linalg.svd(matrix / scale, full_matrices=False)
    except np.linalg.LinAlgError as exc:
        raise RedundancyError(f"the SVD of matrix {matrix.shape} did not converge ({exc})") from None
    root = np.sqrt(sv[:r]) * math.sqrt(scale)
    return _v.check_finite_result("the SVD", (u[:, :r] * root, root[:, None] * vt[:r]), "rescale the kernel")


@_v.validate_params({"kernel": _v.Array(min_ndim=2), "method": _v.Choice(*INIT_METHODS), "seed": _SEED})
def init_factors(kernel: np.ndarray, method: str, rank: int, seed=0):
    """Factors of ``kernel`` (conv ``(C_out, C_in, *k)`` or ``Linear`` ``(out, in)``) at ``rank``.

    A matrix (``Linear``) always gets the SVD ``(A, B)`` (:func:`svd_factors`), whatever ``method``;
    a conv kernel gets ``(A, G, B)`` of ``method`` in ``{"tt", "tucker", "cp"}`` on
    :func:`conv_view` (``"svd"`` is only for a matrix).

    Examples
    --------
    >>> A, G, B = init_factors(np.ones((4, 3, 2, 2)), "tt", 1)
    >>> A.shape, G.shape, B.shape
    ((4, 1), (1, 4, 1), (1, 3))
    """
    if kernel.ndim == 2:
        return svd_factors(kernel, rank)
    view = conv_view(kernel)
    if method == "tt":
        return tt_svd_factors(view, rank)
    if method == "tucker":
        return tucker_factors(view, rank, seed)
    if method == "cp":
        return cp3_factors(view, rank, seed)
    raise RedundancyError(f"method={method!r} is only for a matrix (a Linear weight); a conv kernel of shape "
                          f"{kernel.shape} needs one of ['tt', 'tucker', 'cp']")
