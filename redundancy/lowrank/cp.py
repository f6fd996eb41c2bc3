"""CP (PARAFAC) decomposition by alternating least squares through tensorly's ``parafac``.

One of the four modules of the package that import tensorly (with :mod:`.tensor_ops`,
:mod:`.tucker` and :mod:`.tt_decompose`). ``parafac`` returns a ``CPTensor`` that unpacks to
``(weights, factors)`` in every supported tensorly version (minimum 0.8.1); the reconstruction and
the error are computed here with numpy (:func:`~redundancy.lowrank.tensor_ops.cp_full`).

References
----------
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51 (2009), §3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorly as tl
from tensorly.cp_tensor import CPTensor
from tensorly.decomposition import parafac

import redundancy._validation as _v
from redundancy._validation import MAX_COUNT, as_generator, check_choice, check_float, check_int
from redundancy.errors import RankError, RedundancyError
from redundancy.lowrank.tensor_ops import _as_array, _rel_error, _scale_of, _tensorly_call, _tl_seed, cp_full



@_v.result()
class CPDecomposition(_v.Result):
    """``T ≈ Σ_r w_r a^{(1)}_r ∘ ... ∘ a^{(N)}_r`` (CP / PARAFAC, rank ``rank``).

    Attributes
    ----------
    weights : numpy.ndarray
        Shape ``(rank,)``.
    factors : tuple of numpy.ndarray
        ``factors[n]`` has shape ``(shape[n], rank)``.
    rank : int
    shape : tuple of int
    rel_error : float
        ``||T - T̂||_F / ||T||_F`` of the best of the ``n_restarts`` ALS runs.
    n_params : int
        ``rank · Σ shape`` (the weights are folded into a factor and not counted).
    seed : int or None
    n_restarts : int
    """

    weights: np.ndarray
    factors: tuple[np.ndarray, ...]
    rank: int
    shape: tuple[int, ...]
    rel_error: float
    n_params: int
    seed: int | None = None
    n_restarts: int = 1
    ranks: tuple[int, ...] = field(init=False, metadata=_v.NOT_EXPORTED)

    def __post_init__(self):
        object.__setattr__(self, "ranks", (self.rank,))

    def to_tensor(self) -> np.ndarray:
        """The reconstructed tensor ``Σ_r w_r ∘_n factors[n][:, r]``."""
        return cp_full(self.weights, self.factors)

    def _extra_dict(self) -> dict[str, Any]:
        return {"kind": "cp"}

    def __repr__(self) -> str:
        return (f"CPDecomposition(shape={self.shape}, rank={self.rank}, rel_error={self.rel_error:.3e}, "
                f"n_params={self.n_params})")


def _parafac(tensor, rank, n_iter_max, tol, init, seed, chunk=25):
    """ALS through tensorly's ``parafac`` in chunks of ``chunk`` sweeps, warm-started.

    tensorly's own stopping test uses ``sqrt(|‖T‖² − ‖T̂‖²...|)``, which cannot see errors below
    ``sqrt(eps) ≈ 1e-8``; so its test is switched off (``tol=0``) and the relative error is
    computed here from the reconstruction after each chunk. Returns ``(weights, factors, sweeps)``.
    """
    norm = float(np.linalg.norm(tensor)) or 1.0
    state, prev, done = init, np.inf, 0
    while done < n_iter_max:
        n = min(chunk, n_iter_max - done)
        out = _tensorly_call("the CP decomposition", parafac, tensor, rank=rank, n_iter_max=n, init=state, tol=0,
                             random_state=seed, normalize_factors=False)
        weights, factors = out  # CPTensor unpacks to (weights, factors) in every supported version
        weights = np.asarray(weights, dtype=np.float64)
        factors = [np.asarray(f, dtype=np.float64) for f in factors]
        done += n
        err = float(np.linalg.norm(tensor - cp_full(weights, factors))) / norm
        if err < 1e-14 or prev - err < tol * max(err, 1e-300):
            break
        # the warm start is built inside the numpy backend: after tensorly.set_backend("pytorch")
        # (``import tltorch`` does it) CPTensor's validation would call torch methods on numpy arrays
        with tl.backend_context("numpy"):
            state = CPTensor((weights, factors))
        prev = err
        if not np.isfinite(err):
            raise RedundancyError("the CP decomposition diverged (non-finite error); try another seed or rank")
    return weights, factors, done


#: most restarts of :func:`cp_decompose`
MAX_RESTARTS = 1000


def cp_rank_bound(shape) -> int:
    """Largest meaningful CP rank of a tensor of ``shape``: ``prod(shape) / max(shape)``.

    Every tensor has CP rank at most the product of all its mode sizes but the largest (write it
    as a sum of rank-one slices along the largest mode's complement).
    """
    from redundancy._validation import check_shape

    shape = check_shape("shape", shape, max_numel=2 ** 62)
    return int(math.prod(shape) // max(shape))


def cp_decompose(tensor: Any, rank: int, *, seed: Any = 0, n_iter_max: int = 500, tol: float = 1e-10,
                 n_restarts: int = 1, init: str = "svd") -> CPDecomposition:
    """CP decomposition by alternating least squares (tensorly's ``parafac``), best of restarts.

    .. math::  \\mathcal T \\approx \\sum_{r=1}^R w_r\\, a^{(1)}_r \\circ \\cdots \\circ a^{(N)}_r

    The first run starts from the SVD initialisation (``init="svd"``), further restarts from
    random factors; the run with the smallest relative error is kept. ALS is a local method: a
    tensor of exact rank ``R`` is usually, not always, recovered; read ``rel_error``.

    Parameters
    ----------
    tensor : array-like
    rank : int
        In ``[1, cp_rank_bound(shape)]``.
    seed : int or numpy.random.Generator
    n_iter_max : int
    tol : float
        ALS stops when the relative error falls by less than ``tol`` times itself over 25 sweeps.
    n_restarts : int
        In ``[1, 1000]``.
    init : {"svd", "random"}
        Initialisation of the first run.

    Returns
    -------
    CPDecomposition
        Weights, factors and the relative error of the best restart.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = (rng.normal(size=(n, 2)) for n in (4, 5, 6))
    >>> dec = cp_decompose(np.einsum("ir,jr,kr->ijk", a, b, c), 2)
    >>> dec.rank, dec.rel_error < 1e-8
    (2, True)
    """
    arr = _as_array(tensor)
    bound = cp_rank_bound(arr.shape)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 1 <= rank <= bound:
        raise RankError(f"rank={rank!r} is not allowed for a tensor of shape {arr.shape}; "
                        f"the CP rank must be an integer in [1, {bound}]")
    rank = int(rank)
    check_choice("init", init, ("svd", "random"))
    n_restarts = check_int("n_restarts", n_restarts, min_value=1, max_value=MAX_RESTARTS)
    n_iter_max = check_int("n_iter_max", n_iter_max, min_value=1, max_value=MAX_COUNT)
    tol = check_float("tol", tol, min_value=0.0, max_value=1.0)
    gen = as_generator(seed)
    best = None
    scale = _scale_of(arr)
    for i in range(n_restarts):
        w, fs, _ = _parafac(arr / scale, rank, n_iter_max, tol, init if i == 0 else "random", _tl_seed(gen))
        w = w * scale
        if not np.isfinite(w).all() or not all(np.isfinite(f).all() for f in fs):
            raise RedundancyError("the CP decomposition produced non-finite factors (overflow)")
        if w.shape != (rank,) or [f.shape for f in fs] != [(n, rank) for n in arr.shape]:
            raise RedundancyError("tensorly returned CP factors of unexpected shapes; this version is not supported")
        dec = CPDecomposition(weights=w, factors=tuple(fs), rank=rank, shape=arr.shape, rel_error=0.0,
                              n_params=rank * sum(arr.shape), seed=seed if isinstance(seed, int) else None,
                              n_restarts=n_restarts)
        object.__setattr__(dec, "rel_error", _rel_error(arr, dec.to_tensor()))
        if best is None or dec.rel_error < best.rel_error:
            best = dec
    return best
