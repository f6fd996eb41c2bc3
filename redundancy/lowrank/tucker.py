"""Tucker decomposition (HOSVD or HOOI, full or partial on chosen modes) through tensorly's ``partial_tucker``.

One of the four modules of the package that import tensorly (with :mod:`.tensor_ops`, :mod:`.cp`
and :mod:`.tt_decompose`). tensorly's API has changed between releases (``partial_tucker`` used to
return ``(core, factors)`` and now returns ``((core, factors), rec_errors)``); everything goes
through :func:`_partial_tucker`, which accepts both shapes. Minimum: tensorly 0.8.1. The
reconstruction and the error are computed here with numpy, not by tensorly.

References
----------
De Lathauwer, De Moor & Vandewalle, "A multilinear singular value decomposition" (HOSVD) and
"On the best rank-(R1, ..., RN) approximation of higher-order tensors" (HOOI), SIMAX 21 (2000).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tensorly.decomposition import partial_tucker

import redundancy._validation as _v
from redundancy._validation import MAX_COUNT, as_generator, check_choice, check_float, check_int, check_ranks
from redundancy.errors import RedundancyError
from redundancy.lowrank.tensor_ops import _as_array, _rel_error, _scale_of, _tensorly_call, _tl_seed, multi_mode_product



@_v.result()
class TuckerDecomposition(_v.Result):
    """``T ≈ G ×_{m_1} U_1 ×_{m_2} U_2 ...`` over the decomposed ``modes`` (other modes stay in the core).

    Attributes
    ----------
    core : numpy.ndarray
        Shape ``shape`` with each decomposed mode ``m_i`` replaced by ``ranks[i]``.
    factors : tuple of numpy.ndarray
        ``factors[i]`` has shape ``(shape[modes[i]], ranks[i])`` and orthonormal columns.
    modes, ranks, shape : tuple of int
    method : {"hosvd", "hooi"}
    rel_error : float
        ``||T - T̂||_F / ||T||_F``.
    n_params : int
        ``core.size + Σ factor.size``, the scalars of the factorised form.
    seed : int or None
        Seed passed on to tensorly (random completion of factors, random init).
    n_iter : int
        HOOI sweeps run (0 for HOSVD).
    """

    core: np.ndarray
    factors: tuple[np.ndarray, ...]
    modes: tuple[int, ...]
    ranks: tuple[int, ...]
    shape: tuple[int, ...]
    method: str
    rel_error: float
    n_params: int
    seed: int | None = None
    n_iter: int = 0

    def to_tensor(self) -> np.ndarray:
        """The reconstructed tensor ``G ×_{m_1} U_1 ...`` (shape ``shape``)."""
        return multi_mode_product(self.core, self.factors, self.modes)

    @property
    def compression_ratio(self) -> float:
        """``prod(shape) / n_params``."""
        return math.prod(self.shape) / self.n_params

    def _extra_dict(self) -> dict[str, Any]:
        return {"kind": "tucker"}

    def __repr__(self) -> str:
        return (f"TuckerDecomposition(shape={self.shape}, modes={self.modes}, ranks={self.ranks}, "
                f"method={self.method!r}, rel_error={self.rel_error:.3e}, n_params={self.n_params})")


def _partial_tucker(tensor, ranks, modes, n_iter_max, tol, seed):
    """Call tensorly's ``partial_tucker`` and return ``(core, factors)`` for any supported version."""
    # warnings silenced: "n_eigenvecs larger than min(matrix.shape)" is completed below
    out = _tensorly_call("the Tucker decomposition", partial_tucker, tensor, rank=list(ranks), modes=list(modes),
                         n_iter_max=n_iter_max, init="svd", tol=tol, random_state=seed)
    if len(out) == 2 and isinstance(out[0], np.ndarray):  # tensorly < 0.8: (core, factors)
        core, factors = out
    else:  # tensorly >= 0.8: ((core, factors), rec_errors)
        core, factors = out[0]
    return np.asarray(core, dtype=np.float64), [np.asarray(f, dtype=np.float64) for f in factors]


def tucker_decompose(tensor: Any, ranks: Any, *, modes: Any = None, method: str = "hooi", seed: Any = 0,
                     n_iter_max: int = 100, tol: float = 1e-12) -> TuckerDecomposition:
    """Tucker decomposition (HOSVD or HOOI), full or partial on chosen modes.

    .. math::  \\mathcal T \\approx \\mathcal G \\times_{m_1} U_1 \\cdots \\times_{m_k} U_k,
               \\qquad U_i \\in \\mathbb R^{I_{m_i} \\times R_i},\\; U_i^\\top U_i = I,
               \\qquad \\mathcal G = \\mathcal T \\times_{m_1} U_1^\\top \\cdots

    HOSVD takes ``U_i`` = the ``R_i`` leading left singular vectors of the mode-``m_i`` unfolding;
    HOOI then alternates over the modes (tensorly's ``partial_tucker``). Ranks equal to the mode
    sizes reproduce the tensor exactly (``U_i`` square orthogonal).

    Parameters
    ----------
    tensor : array-like
        Any real array with at least two modes (a conv kernel, a weight matrix, ``W``).
    ranks : int or sequence of int
        One rank per decomposed mode, each in ``[1, size of that mode]``.
    modes : sequence of int, optional
        Modes to decompose (default: all).
    method : {"hooi", "hosvd"}
    seed : int or numpy.random.Generator
    n_iter_max : int
        HOOI sweeps (ignored by HOSVD).
    tol : float
        HOOI stops when the error changes by less than ``tol``.

    Returns
    -------
    TuckerDecomposition

    Raises
    ------
    RankError
        A rank that is not an integer in ``[1, mode size]`` or ``ranks`` of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.einsum("abc,ia,jb,kc->ijk", rng.normal(size=(2, 2, 2)), *[rng.normal(size=(n, 2)) for n in (4, 5, 6)])
    >>> dec = tucker_decompose(t, (2, 2, 2))
    >>> dec.ranks, dec.rel_error < 1e-10
    ((2, 2, 2), True)
    """
    arr = _as_array(tensor)
    check_choice("method", method, ("hooi", "hosvd"))
    if modes is None:
        modes = tuple(range(arr.ndim))
    else:
        if isinstance(modes, (int, np.integer)):
            modes = (modes,)
        if not isinstance(modes, (tuple, list)):
            raise RedundancyError(f"modes={modes!r:.60} must be None, an int or a sequence of distinct modes")
        modes = tuple(check_int("modes entry", m, min_value=0, max_value=arr.ndim - 1) for m in modes)
        if len(set(modes)) != len(modes) or not modes:
            raise RedundancyError(f"modes={modes!r} must be distinct modes of a tensor of order {arr.ndim}")
    ranks = check_ranks("ranks", ranks, [arr.shape[m] for m in modes],
                        labels=[f"mode {m} (size {arr.shape[m]})" for m in modes])
    n_iter_max = check_int("n_iter_max", n_iter_max, min_value=1, max_value=MAX_COUNT)
    tol = check_float("tol", tol, min_value=0.0, max_value=1.0)
    gen = as_generator(seed)
    tl_seed = _tl_seed(gen)
    n_iter = 0 if method == "hosvd" else n_iter_max
    scale = _scale_of(arr)
    core, factors = _partial_tucker(arr / scale, ranks, modes, n_iter, tol, tl_seed)
    core = core * scale
    if not np.isfinite(core).all() or not all(np.isfinite(f).all() for f in factors):
        raise RedundancyError("the Tucker decomposition produced non-finite factors (overflow)")
    if core.shape != tuple(ranks[modes.index(i)] if i in modes else arr.shape[i] for i in range(arr.ndim)):
        raise RedundancyError(f"tensorly returned a core of shape {core.shape}; this tensorly version is not supported")
    dec = TuckerDecomposition(core=core, factors=tuple(factors), modes=modes, ranks=ranks, shape=arr.shape,
                              method=method, rel_error=0.0,
                              n_params=int(core.size + sum(f.size for f in factors)),
                              seed=seed if isinstance(seed, int) else None, n_iter=n_iter)
    object.__setattr__(dec, "rel_error", _rel_error(arr, dec.to_tensor()))
    return dec
