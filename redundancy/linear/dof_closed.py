"""Closed-form degrees of freedom of the whole-network tensor, and when they hold on the raw input.

All formulas give the dimension of the set of reachable whole-network tensors ``W`` **on the patch
tensor** (``W = Σ_k A_k ∘ B_k`` and its compressed forms, see :mod:`redundancy.linear.statmodel`); a
channel mode is a mode of size ``C``, the fully connected side is one mode of size ``n = O·P``
(``O`` outputs, ``P`` pooled positions).

* matrix rank ``r``: ``r(m + n - r)``;
* vanilla CNN (K kernels): ``r(L + n - r)`` with ``r = min(K, L, n)`` and ``L = C·Π l_i``, i.e.
  ``K(L + P - K)`` when ``K <= min(L, P)`` and ``L·P`` otherwise;
* Tucker variety of shape ``n_1..n_M`` and multilinear ranks ``r_1..r_M``:
  ``Π r_i + Σ (n_i r_i - r_i²)`` after the effective-rank clipping
  ``r_i <- min(r_i, n_i, Π_{j≠i} r_j)`` (repeated until stable); the output-channel rank is first
  capped by ``K`` (the R > K collapse);
* CP rank ``R`` (``M >= 3`` modes of size > 1, ``R = 1`` or Kruskal's condition
  ``Σ min(n_i, R) >= 2R + M - 1``, Sidiropoulos & Bro's M-way form): ``R(Σ n_i - M + 1)``;
* depthwise separable (MobileNetV1: depthwise ``L``-kernel per channel, then a channel map of
  width ``w``): ``C(L - 1) + w(n + C - w)`` with ``w = min(w, C, n)``.

**Raw input.** ``vec X̃ = M vec X`` with ``M = I_C ⊗ M_1 ⊗ ... ⊗ M_N`` (one patch matrix per
spatial mode: stride, dilation, padding, pooling). ``W_raw = Mᵀ W``. If every ``M_i`` has full row
rank, ``Mᵀ`` is injective and the raw-input dof equals the patch dof; this holds for
non-overlapping windows (``s_i >= dilation·(l_i - 1) + 1``) without padding, and for some
overlapping ones with pooling. Otherwise the raw-input dof can be smaller (never larger) and only
the numerical rank gives it: :func:`patch_injective` decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from redundancy._validation import check_int, check_shape
from redundancy.errors import RankError, RedundancyError

import redundancy._validation as _v

__all__ = []


def _ranks(name: str, ranks, m: int) -> tuple[int, ...]:
    if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
        ranks = (int(ranks),) * m
    try:
        out = check_shape(name, ranks, min_len=m, max_len=m, min_value=1)
    except RedundancyError as exc:
        raise RankError(str(exc)) from None
    return out


@_v.validate_params({"m": _v.Int(0, 2 ** 40), "n": _v.Int(0, 2 ** 40), "r": _v.Int(0, 2 ** 40)})
def matrix_rank_dof(m: int, n: int, r: int) -> int:
    """Dimension of the ``m x n`` matrices of rank ``<= r``: ``r'(m + n - r')``, ``r' = min(r, m, n)``.

    Examples
    --------
    >>> matrix_rank_dof(4, 5, 2)
    14
    """
    m, n = check_int("m", m, min_value=1), check_int("n", n, min_value=1)
    r = min(check_int("r", r, min_value=1), m, n)
    return r * (m + n - r)


@_v.validate_params({"L": _v.Int(0, 2 ** 40), "P": _v.Int(0, 2 ** 40), "K": _v.Int(0, 2 ** 40)})
def vanilla_dof(L: int, P: int, K: int) -> int:
    """Vanilla CNN: ``K(L + P - K)`` if ``K <= min(L, P)``, else ``L·P``.

    ``L`` is the kernel size ``C·Π l_i`` (channels included), ``P`` the size of the fully connected
    side (``O·Π p_i``) and ``K`` the number of kernels.

    Examples
    --------
    >>> vanilla_dof(L=9, P=16, K=4), vanilla_dof(L=9, P=16, K=12)
    (84, 144)
    """
    return matrix_rank_dof(L, P, K)


@_v.validate_params({"shape": _v.Shape(1, 16, max_numel=2 ** 62), "ranks": _v.Shape(1, 16, max_numel=2 ** 62)})
def tucker_effective_ranks(shape: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """Clip ranks to what the Tucker variety can reach: ``r_i <- min(r_i, n_i, Π_{j≠i} r_j)``.

    Examples
    --------
    >>> tucker_effective_ranks((3, 3, 8), (5, 2, 8))
    (3, 2, 6)
    """
    shape = check_shape("shape", shape, min_len=1)
    r = list(_ranks("ranks", ranks, len(shape)))
    r = [min(a, n) for a, n in zip(r, shape)]
    changed = len(r) > 1
    while changed:
        changed = False
        for i in range(len(r)):
            cap = math.prod(r[:i] + r[i + 1:])
            if r[i] > cap:
                r[i], changed = cap, True
    return tuple(r)


@_v.validate_params({"shape": _v.Shape(1, 16, max_numel=2 ** 62), "ranks": _v.Shape(1, 16, max_numel=2 ** 62)})
def tucker_dof(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Dimension of the tensors of ``shape`` with multilinear rank ``<= ranks``.

    .. math::  \\prod_i r_i + \\sum_i (n_i r_i - r_i^2)

    with the effective ranks of :func:`tucker_effective_ranks` (gauge group ``Π GL(r_i)``).

    Examples
    --------
    >>> tucker_dof((3, 3, 8, 16), (3, 3, 4, 4))   # the note's Tucker example: 208 for every K
    208
    """
    shape = check_shape("shape", shape, min_len=1)
    r = tucker_effective_ranks(shape, ranks)
    return int(math.prod(r) + sum(n * a - a * a for n, a in zip(shape, r)))


def tt_effective_ranks(shape: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """Clip tensor-train bond ranks ``r_1..r_{d-1}`` of a tensor of ``shape = (n_1..n_d)`` to what
    the format can reach: ``r_i <- min(r_i, Π_{j<=i} n_j, Π_{j>i} n_j)``, then
    ``r_i <- min(r_i, r_{i-1} n_i, n_{i+1} r_{i+1})`` (``r_0 = r_d = 1``) until stable.

    Examples
    --------
    >>> tt_effective_ranks((4, 9, 6), (8, 8))
    (4, 6)
    """
    shape = check_shape("shape", shape, min_len=1)
    r = list(_ranks("ranks", ranks, len(shape) - 1)) if len(shape) > 1 else []
    d = len(shape)
    r = [min(a, math.prod(shape[:i + 1]), math.prod(shape[i + 1:])) for i, a in enumerate(r)]
    full = [1] + r + [1]
    changed = True
    while changed:
        changed = False
        for i in range(1, d):
            cap = min(full[i - 1] * shape[i - 1], shape[i] * full[i + 1])
            if full[i] > cap:
                full[i], changed = cap, True
    return tuple(full[1:-1])


def tt_dof(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Dimension of the tensors of ``shape = (n_1..n_d)`` with tensor-train ranks ``<= ranks``
    (``d - 1`` bond ranks), after :func:`tt_effective_ranks`:

    .. math::  \\sum_{i=1}^{d} r_{i-1} n_i r_i - \\sum_{i=1}^{d-1} r_i^2,\\qquad r_0 = r_d = 1

    (Holtz, Rohwedder & Schneider 2012: the gauge group is ``Π GL(r_i)``). With ``d = 2`` this is
    the matrix-rank count ``r(m + n - r)``; with ``d = 3`` and a free middle mode it is the
    Tucker-2 count :func:`tucker_dof` ``(n_1, n_2, n_3), (r_1, n_2, r_2)``.

    Examples
    --------
    >>> tt_dof((4, 5), (2,)) == matrix_rank_dof(4, 5, 2)
    True
    >>> tt_dof((8, 9, 16), (4, 4)) == tucker_dof((8, 9, 16), (4, 9, 4))
    True
    """
    shape = check_shape("shape", shape, min_len=1)
    if len(shape) == 1:
        return int(shape[0])
    r = [1, *tt_effective_ranks(shape, ranks), 1]
    return int(sum(r[i] * n * r[i + 1] for i, n in enumerate(shape)) - sum(a * a for a in r[1:-1]))


@_v.validate_params({"shape": _v.Shape(1, 16, max_numel=2 ** 62), "R": _v.Int(1, 2 ** 40)})
def cp_closed_form_applies(shape: Sequence[int], R: int) -> bool:
    """Whether :func:`cp_dof` is proved for ``shape`` and rank ``R``.

    True when at most two modes have size > 1 (a matrix), when ``R = 1``, or when Kruskal's
    condition in its M-way form (Sidiropoulos & Bro, 2000) ``Σ_i min(n_i, R) >= 2R + M - 1`` holds
    over the ``M`` modes of size > 1 (generic essential uniqueness, so the only redundancy is the
    scaling gauge). The three-way bound ``2R + 2`` is not enough for ``M >= 4``: shape
    ``(2, 2, 2, 2)`` at ``R = 3`` meets it, yet its dimension is 14, not ``R(Σn_i - M + 1) = 15``
    (a defective secant variety).
    """
    shape = [n for n in check_shape("shape", shape, min_len=1) if n > 1]
    R = check_int("R", R, min_value=1)
    return len(shape) <= 2 or R == 1 or sum(min(n, R) for n in shape) >= 2 * R + len(shape) - 1


@_v.validate_params({"shape": _v.Shape(1, 16, max_numel=2 ** 62), "R": _v.Int(1, 2 ** 40)})
def cp_dof(shape: Sequence[int], R: int) -> int:
    """Dimension of the tensors of ``shape`` with CP rank ``<= R``.

    .. math::  R\\,(\\textstyle\\sum_i n_i - M + 1)

    over the ``M`` modes of size > 1 (the note's ``R(Σ l_i + P - N)``), for three or more such
    modes; a matrix gives ``r(m + n - r)``. Raises :class:`~redundancy.errors.RankError` where the
    formula is not proved (see :func:`cp_closed_form_applies`).

    Examples
    --------
    >>> cp_dof((3, 3, 8, 16), 4)   # the note's CP example
    108
    """
    R = check_int("R", R, min_value=1)
    if not cp_closed_form_applies(shape, R):
        raise RankError(f"R={R} for shape={tuple(shape)}: the CP closed form is only used when "
                        "Kruskal's condition sum_i min(n_i, R) >= 2R + M - 1 holds (M = modes of size > 1); use the numerical rank")
    big = [n for n in shape if n > 1]
    if not big:
        return 1
    if len(big) == 1:
        return big[0]
    if len(big) == 2:
        return matrix_rank_dof(big[0], big[1], R)
    return R * (sum(big) - len(big) + 1)


@_v.validate_params({"C": _v.Int(1, 2 ** 30), "L": _v.Int(1, 2 ** 30), "n": _v.Int(1, 2 ** 30), "w": _v.Int(1, 2 ** 30)})
def depthwise_separable_dof(C: int, L: int, n: int, w: int) -> int:
    """Depthwise separable block (MobileNetV1): one ``L``-entry kernel per input channel, then a
    channel map of width ``w`` into an ``n``-dimensional output side.

    ``W[c] = D_c ∘ f_c`` with ``F = [f_c]`` of rank ``<= w``:
    ``C(L - 1) + w'(n + C - w')`` with ``w' = min(w, C, n)``. Gauges: one scale per channel and
    ``GL(w')``. With ``w' = C`` this is ``C(L + n - 1)``.

    Examples
    --------
    >>> depthwise_separable_dof(C=4, L=9, n=16, w=8)
    96
    """
    C, L = check_int("C", C, min_value=1), check_int("L", L, min_value=1)
    n, w = check_int("n", n, min_value=1), check_int("w", w, min_value=1)
    w = min(w, C, n)
    return C * (L - 1) + w * (n + C - w)


@_v.validate_params({"d": _v.Int(1, 10 ** 5), "l": _v.Int(1, 10 ** 5), "s": _v.Int(1, 10 ** 5), "padding": _v.Int(0, 10 ** 5), "dilation": _v.Int(1, 10 ** 5)})
def patch_matrix_1d(d: int, l: int, s: int = 1, *, padding: int = 0, dilation: int = 1,
                    pool: int = 1, pool_stride: int | None = None) -> np.ndarray:
    """One spatial mode's patch matrix ``M_i`` (``l·p x d``): row ``(t, g)`` averages the inputs
    ``j·s + t·dilation - padding`` over the pooling window ``j ∈ [g·ps, g·ps + q)`` (zero-padded
    positions dropped).

    Examples
    --------
    >>> patch_matrix_1d(3, 2, 1)   # the note's overlapping example: rows (t, g) = 00, 01, 10, 11
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    d, l, s = (check_int(k, v, min_value=1) for k, v in (("d", d), ("l", l), ("s", s)))
    padding = check_int("padding", padding, min_value=0)
    dilation, pool = check_int("dilation", dilation, min_value=1), check_int("pool", pool, min_value=1)
    ps = pool if pool_stride is None else check_int("pool_stride", pool_stride, min_value=1)
    m = (d + 2 * padding - dilation * (l - 1) - 1) // s + 1
    if m < 1:
        raise RedundancyError(f"kernel l={l} (dilation {dilation}) does not fit the padded input {d + 2 * padding}")
    p = (m - pool) // ps + 1
    if p < 1:
        raise RedundancyError(f"pool={pool} does not fit the conv output of size {m}")
    M = np.zeros((l * p, d))
    for t in range(l):
        for g in range(p):
            for j in range(g * ps, g * ps + pool):
                pos = j * s + t * dilation - padding
                if 0 <= pos < d:
                    M[t * p + g, pos] += 1.0 / pool
    return M


@_v.validate_params({"d": _v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)), "l": _v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)), "s": _v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)), "padding": _v.AnyOf(_v.Int(0, 10 ** 6), _v.Shape(1, 3, min_value=0)), "dilation": _v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)), "pool": _v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)), "pool_stride": _v.NoneOr(_v.AnyOf(_v.Int(1, 10 ** 6), _v.Shape(1, 3)))})
def patch_injective(d, l, s, *, padding=0, dilation=1, pool=1, pool_stride=None) -> bool:
    """Whether ``Mᵀ`` is injective, i.e. every per-mode patch matrix has full row rank.

    Then the raw-input whole-network tensor has the same degrees of freedom as the patch-tensor
    one, for every structure. Arguments are per-mode sequences (or ints).

    Examples
    --------
    >>> patch_injective((8, 8), (2, 2), (2, 2)), patch_injective((3,), (2,), (1,))
    (True, False)
    """
    d = check_shape("d", d)
    n = len(d)

    def tup(name, v):
        return (v,) * n if isinstance(v, (int, np.integer)) or v is None else tuple(v)

    args = [tup(k, v) for k, v in (("l", l), ("s", s), ("padding", padding), ("dilation", dilation),
                                    ("pool", pool), ("pool_stride", pool_stride))]
    for i in range(n):
        M = patch_matrix_1d(d[i], args[0][i], args[1][i], padding=args[2][i], dilation=args[3][i],
                            pool=args[4][i], pool_stride=args[5][i])
        if M.shape[0] > M.shape[1] or np.linalg.matrix_rank(M) < M.shape[0]:
            return False
    return True
