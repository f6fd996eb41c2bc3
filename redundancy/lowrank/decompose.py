"""Tucker and CP decompositions through tensorly (the only module of the package that imports it).

Tucker (HOSVD or HOOI, full or partial on chosen modes) and CP (ALS) of any array: N-d
convolution kernels in torch layout ``(out_channels, in_channels, *kernel_size)``, ``Linear``
weights (the matrix case) and the whole-network tensor ``W`` of
:func:`redundancy.whole_network_tensor`. Results are frozen dataclasses holding the factors,
ranks, relative reconstruction error, parameter count of the factorised form and the seed.

tensorly's API has changed between releases (``partial_tucker`` used to return ``(core, factors)``
and now returns ``((core, factors), rec_errors)``); everything here goes through
:func:`_partial_tucker` and :func:`_parafac`, which accept both shapes. Minimum: tensorly 0.8.1.
The reconstruction and the error are computed here with numpy, not by tensorly.

References
----------
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51 (2009).
De Lathauwer, De Moor & Vandewalle, "A multilinear singular value decomposition" (HOSVD) and
"On the best rank-(R1, ..., RN) approximation of higher-order tensors" (HOOI), SIMAX 21 (2000).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorly as tl
from tensorly.cp_tensor import CPTensor
from tensorly.decomposition import parafac, partial_tucker
from torch import nn

from redundancy._validation import (MAX_COUNT, as_generator, check_array, check_choice, check_finite_module,
                                    check_float, check_int, check_module, check_ranks)
from redundancy.errors import RankError, RedundancyError, UnsupportedLayerError
import redundancy._validation as _v

__all__ = [
    "TuckerDecomposition", "CPDecomposition", "tucker_decompose", "cp_decompose",
    "decompose_layer", "decompose_whole_network", "layer_kernel", "mode_product", "multi_mode_product", "cp_full", "unfold",
    "cp_rank_bound",
]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@_v.validate_params({"tensor": _v.Array(min_ndim=1), "matrix": _v.Array(min_ndim=2, max_ndim=2), "mode": _v.Int(0, 64)})
def mode_product(tensor: np.ndarray, matrix: np.ndarray, mode: int) -> np.ndarray:
    """Mode-``n`` product ``(T ×_n A)[.., i, ..] = Σ_j A[i, j] T[.., j, ..]`` (tensorly's ``mode_dot``,
    numpy backend whatever backend the caller has set)."""
    with tl.backend_context("numpy"):
        return tl.tenalg.mode_dot(np.asarray(tensor), np.asarray(matrix), mode)


def multi_mode_product(tensor: np.ndarray, matrices, modes) -> np.ndarray:
    """``T ×_{m_1} A_1 ×_{m_2} A_2 ...`` (tensorly's ``multi_mode_dot``, numpy backend)."""
    with tl.backend_context("numpy"):
        return tl.tenalg.multi_mode_dot(np.asarray(tensor), [np.asarray(a) for a in matrices], modes=list(modes))


def cp_full(weights, factors) -> np.ndarray:
    """``Σ_r w_r a^{(1)}_r ∘ ... ∘ a^{(N)}_r`` (tensorly's ``cp_to_tensor``, numpy backend)."""
    with tl.backend_context("numpy"):
        return tl.cp_to_tensor((np.asarray(weights), [np.asarray(f) for f in factors]))


def unfold(tensor: np.ndarray, mode: int) -> np.ndarray:
    """Mode-``n`` unfolding ``T_(n)`` of shape ``(shape[n], prod(other sizes))`` (tensorly's ``unfold``:
    the remaining modes in their order, last index fastest)."""
    with tl.backend_context("numpy"):
        return tl.unfold(np.asarray(tensor), mode)


def _as_array(tensor: Any, name: str = "tensor") -> np.ndarray:
    arr = check_array(name, tensor, finite=False)
    if arr.ndim < 2:
        raise RedundancyError(f"{name} has shape {arr.shape}; a decomposition needs at least 2 modes")
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise RedundancyError(f"{name} is empty or has non-finite entries; it must be a finite array")
    return arr


def _rel_error(tensor: np.ndarray, approx: np.ndarray) -> float:
    scale = _scale_of(tensor)  # norms of tensor / scale: no underflow at 1e-200, no overflow at 1e200
    tensor, approx = tensor / scale, approx / scale
    norm = float(np.linalg.norm(tensor))
    diff = float(np.linalg.norm(tensor - approx))
    return diff / norm if norm > 0 else diff


def _scale_of(arr: np.ndarray) -> float:
    """Largest absolute entry (1 for a zero tensor): decompositions run on ``arr / scale`` so that
    tensors at 1e-200 or 1e200 neither underflow nor overflow in the squared norms of ALS/SVD."""
    m = float(np.max(np.abs(arr)))
    return m if m > 0 else 1.0


def _tensorly_call(what: str, fn, *args, **kwargs):
    """Run a tensorly routine in the numpy backend; its failures become one RedundancyError."""
    try:
        with tl.backend_context("numpy"), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - LinAlgError, ValueError... from inside tensorly
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise RedundancyError(f"{what} failed inside tensorly ({type(exc).__name__}: {first})") from None


def _tl_seed(gen: np.random.Generator) -> int:
    return int(gen.integers(0, 2**31 - 1))


@dataclass(frozen=True, eq=False)
class TuckerDecomposition:
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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tucker", "method": self.method, "shape": list(self.shape), "modes": list(self.modes),
                "ranks": list(self.ranks), "rel_error": self.rel_error, "n_params": self.n_params,
                "seed": self.seed, "n_iter": self.n_iter, "core": self.core.tolist(),
                "factors": [f.tolist() for f in self.factors]}

    def __repr__(self) -> str:
        return (f"TuckerDecomposition(shape={self.shape}, modes={self.modes}, ranks={self.ranks}, "
                f"method={self.method!r}, rel_error={self.rel_error:.3e}, n_params={self.n_params})")


@dataclass(frozen=True, eq=False)
class CPDecomposition:
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
    ranks: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "ranks", (self.rank,))

    def to_tensor(self) -> np.ndarray:
        """The reconstructed tensor ``Σ_r w_r ∘_n factors[n][:, r]``."""
        return cp_full(self.weights, self.factors)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "cp", "shape": list(self.shape), "rank": self.rank, "rel_error": self.rel_error,
                "n_params": self.n_params, "seed": self.seed, "n_restarts": self.n_restarts,
                "weights": self.weights.tolist(), "factors": [f.tolist() for f in self.factors]}

    def __repr__(self) -> str:
        return (f"CPDecomposition(shape={self.shape}, rank={self.rank}, rel_error={self.rel_error:.3e}, "
                f"n_params={self.n_params})")


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


_OPTIONS = {"tucker": ("n_iter_max", "tol"), "cp": ("n_iter_max", "tol", "n_restarts", "init")}


def _check_options(method: str, kwargs: dict) -> None:
    """``**kwargs`` passed on to the decomposition: refuse unknown keys before any work."""
    extra = sorted(set(kwargs) - set(_OPTIONS[method]))
    if extra:
        raise RedundancyError(f"unknown option(s) {extra} for method={method!r}; allowed: {list(_OPTIONS[method])}")


def layer_kernel(layer: nn.Module) -> np.ndarray:
    """The weight of a ``Conv1d/2d/3d`` (``(out, in/groups, *k)``) or ``Linear`` (``(out, in)``) in float64.

    Also accepts :class:`redundancy.linear.layers.TuckerConv` / ``CPConv`` (their rebuilt kernel).
    """
    from redundancy.linear.layers import _FactorisedConv

    check_finite_module("layer", layer)
    if isinstance(layer, (*_CONVS, nn.Linear)):
        return layer.weight.detach().cpu().double().numpy()
    if isinstance(layer, _FactorisedConv):
        return layer.kernel().detach().cpu().double().numpy()
    raise UnsupportedLayerError(
        f"layer of type {type(layer).__name__} has no kernel to decompose; supported: Conv1d, Conv2d, "
        "Conv3d, Linear, TuckerConv, CPConv")


def decompose_layer(layer: nn.Module, ranks: Any, *, method: str = "tucker", modes: Any = "channels",
                    seed: Any = 0, algorithm: str = "hooi", **kwargs) -> TuckerDecomposition | CPDecomposition:
    """Decompose the kernel of one conv (1-D/2-D/3-D) or ``Linear`` layer.

    Parameters
    ----------
    layer : torch.nn.Module
        ``Conv1d/2d/3d``, ``Linear`` (matrix case) or a factorised conv of :mod:`redundancy.linear.layers`.
        Grouped convs are refused: their stored weight ``(out, in/groups, *k)`` is not the
        block-diagonal kernel, and decomposing it as if it were would be wrong.
    ranks : int or tuple
        Tucker: one rank per decomposed mode (``(R_out, R_in)`` for Tucker-2); CP: one int.
    method : {"tucker", "cp"}
    modes : "channels", "all" or sequence of int
        Tucker modes: ``"channels"`` = ``(0, 1)`` (Tucker-2), ``"all"`` = every mode.
    seed : int or numpy.random.Generator
    algorithm : {"hooi", "hosvd"}
        Tucker algorithm (ignored by CP).
    **kwargs
        Passed to :func:`tucker_decompose` or :func:`cp_decompose`.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(6, 8, 3).double()
    >>> decompose_layer(conv, (8, 6)).rel_error < 1e-10
    True
    """
    check_choice("method", method, ("tucker", "cp"))
    _check_options(method, kwargs)
    kernel = layer_kernel(layer)
    if getattr(layer, "groups", 1) != 1:
        raise UnsupportedLayerError(
            f"layer has groups={layer.groups}; grouped/depthwise kernels are block-diagonal and are not "
            "decomposed as one tensor (decompose each group's slice instead)")
    if method == "cp":
        return cp_decompose(kernel, ranks, seed=seed, **kwargs)
    if isinstance(modes, str):
        check_choice("modes", modes, ("channels", "all"))
        modes = (0, 1) if modes == "channels" else tuple(range(kernel.ndim))
    return tucker_decompose(kernel, ranks, modes=modes, seed=seed, method=algorithm, **kwargs)


def decompose_whole_network(W: Any, ranks: Any, *, method: str = "tucker", modes: Any = None,
                            seed: Any = 0, algorithm: str = "hooi", **kwargs) -> TuckerDecomposition | CPDecomposition:
    """Decompose a whole-network tensor ``W`` (a :class:`~redundancy.linear.tensor.WholeNetworkTensor` or array).

    ``W`` has shape ``(n_outputs, *input_shape)``; with one output the leading mode of size 1 is
    dropped before decomposing (it carries no structure), so ``ranks`` refer to the input modes.
    ``method`` is ``"tucker"`` (``algorithm`` ``"hooi"``/``"hosvd"``, optional ``modes``) or ``"cp"``.

    Examples
    --------
    >>> import torch
    >>> from redundancy import whole_network_tensor
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3, bias=False), torch.nn.Flatten(),
    ...                           torch.nn.Linear(12, 1, bias=False)).double()
    >>> W = whole_network_tensor(net, (2, 6))
    >>> decompose_whole_network(W, (2, 6)).rel_error < 1e-10
    True
    """
    check_choice("method", method, ("tucker", "cp"))
    _check_options(method, kwargs)
    arr = _as_array(W.W if hasattr(W, "W") and hasattr(W, "bias") else W, "W")
    if arr.ndim >= 3 and arr.shape[0] == 1:
        arr = arr[0]
    if method == "cp":
        return cp_decompose(arr, ranks, seed=seed, **kwargs)
    return tucker_decompose(arr, ranks, modes=modes, seed=seed, method=algorithm, **kwargs)
