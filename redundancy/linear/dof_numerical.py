"""Numerical degrees of freedom: the generic rank of the Jacobian of the parametrisation map.

For a model that is affine in its input, ``f(x; θ) = W(θ) x + b(θ)``. Its degrees of freedom are

.. math::  \\mathrm{dof} = \\operatorname{rank} \\frac{\\partial\\, (\\mathrm{vec}\\,W(θ),\\ b(θ))}{\\partial θ}
           \\quad\\text{at a generic } θ ,

the dimension of the set of reachable ``(W, b)``. θ is every parameter of the model, each shared
tensor once; buffers (BatchNorm running statistics) are constants.

**How it scales.** The Jacobian of ``θ ↦ (W, b)`` has ``(n_in + 1)·n_out`` rows. We never form it.
A measurement ``m(W, b) = uᵀ (W x + b)`` is one scalar, and its gradient with respect to θ,
``∇_θ uᵀ f(x; θ)``, is one row of ``S·J`` where ``S`` is the measurement map. These rows are computed
as per-example gradients (``torch.func.vmap`` over ``torch.func.grad`` of a ``functional_call``),
in chunks. Rank-one measurements ``u xᵀ`` span every linear functional on ``(W, b)``, so for random
Gaussian ``(x_j, u_j)`` each new row lies in the span of the earlier ones with probability zero
until the span is the whole row space of ``J``: ``rank(S J) = rank(J)`` as soon as the rank stops
growing. The row count grows geometrically (256, 512, ...) until ``oversample`` rows add nothing,
and is never more than ``n_params + oversample``. When ``(n_in + 1)·n_out`` is no larger than that,
the exact Jacobian is used instead (inputs ``0, e_1, ..., e_n``, all outputs).

**Rank.** Columns are scaled to unit norm (rank is invariant; this removes the scale of each
parameter, e.g. ``c^{L-1}`` when all weights are multiplied by ``c``). For small matrices (at most
``SVD_MAX_ENTRIES`` entries) and for the exact Jacobian the values ``s`` are the singular values
(float64 SVD); for large sketches they are the absolute diagonal of the unpivoted QR factor of
``(S J)ᵀ`` (the distance of each random row to the span of the earlier rows, sorted), which is
about 10x cheaper and exact in the same generic sense. ``rank = #{s_i > tol·s_1}`` with
``tol = 100·max(m, n)·ε_float64`` unless given. The reported ``gap`` is ``s_r / s_{r+1}``
(``inf`` when nothing is cut).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from redundancy._validation import as_generator, check_choice, check_int, check_module, check_positive_float, check_shape
from redundancy.errors import NotLinearError, RedundancyError
from redundancy.linear.tensor import find_nonlinear_module
import redundancy._validation as _v

__all__ = []

#: The numerical route refuses when ``m = min(n_params, (n_in + 1)·n_out)`` (the largest rank it
#: may have to certify) exceeds this: it stores an ``m x m`` float64 sketch (1.2 GB at 12,000) and
#: factorises it (about a minute on one core at that size).
NUMERICAL_MAX_RANK = 12_000

#: The exact Jacobian (basis inputs, every output) is used up to this many rows.
EXACT_MAX_ROWS = 2048

#: Above this many parameters (and when ``(n_in + 1)·n_out`` is smaller), each chunk of Jacobian
#: rows is compressed at once by a randomised column sketch (Gaussian diagonal, orthonormal DCT,
#: column subset), so the rows are never stored at full width.
SKETCH_MIN_PARAMS = 4096


_SIZE = _v.Int(0, 10 ** 12)


@_v.validate_params({"n_params": _SIZE, "n_rows": _SIZE, "width": _SIZE})
def estimate_seconds(n_params: int, n_rows: int, width: int) -> float:
    """Rough size-based time of the numerical route on one CPU core.

    ``t = 3e-8·n_rows·n_params + 1e-10·n_rows²·width``: ``n_rows`` per-example gradients of
    ``n_params`` entries (about ``3e-8 s`` per entry, sketch included) and one factorisation of an
    ``n_rows x width`` matrix (about ``1e-10 s`` per ``n_rows²·width``). Each size is an integer in
    ``[0, 10**12]``, so the estimate is finite.

    Examples
    --------
    >>> round(estimate_seconds(1000, 100, 100), 6)
    0.0031
    """
    return float(3e-8 * n_rows * n_params + 1e-10 * n_rows * n_rows * width)


@_v.result(allow=("gap",))
class NumericalRank(_v.Result):
    """Outcome of :func:`jacobian_rank` (see :class:`redundancy.linear.dof.DofResult` for the public result)."""

    rank: int
    gap: float
    tol: float
    singular_values: np.ndarray
    n_rows: int
    n_params: int
    exact: bool
    n_outputs: int
    decomposition: str = "svd"
    sketch_width: int | None = None
    estimated_seconds: float | None = None


@_v.validate_params({"s": _v.Array(min_ndim=1, max_ndim=1, min_size=0), "shape": _v.Shape(2, 2), "tol": _v.NoneOr(_v.Float(0.0, 1.0, lo_open=True))})
def rank_from_singular_values(s: np.ndarray, shape: tuple[int, int], tol: float | None = None
                              ) -> tuple[int, float, float]:
    """Return ``(rank, gap, tol)`` for singular values ``s`` (descending) of a matrix of ``shape``.

    ``rank = #{s_i > tol·s_1}`` with ``tol = 100·max(shape)·eps`` by default; ``gap = s_r/s_{r+1}``.
    """
    s = np.asarray(s, dtype=np.float64)
    if tol is None:
        tol = 100.0 * max(shape) * np.finfo(np.float64).eps
    if s.size == 0 or s[0] == 0:
        return 0, float("inf"), float(tol)
    r = int(np.count_nonzero(s > tol * s[0]))
    if r >= s.size:
        gap = float("inf")
    else:
        gap = float(s[r - 1] / s[r]) if s[r] > 0 else float("inf")
    return r, gap, float(tol)


@_v.validate_params({"model": _v.Module(), "seed": _v.Seed(allow_none=True, allow_generator=True)})
def random_point(model: nn.Module, seed: Any = 0) -> dict[str, torch.Tensor]:
    """A random float64 value for every (deduplicated) parameter of ``model``.

    Tensors with two or more dimensions get ``N(0, 1/fan_in)`` entries (``fan_in = numel/shape[0]``),
    vectors (biases, BatchNorm affine) get ``N(0, 1)``: a generic point at a sensible scale.
    """
    rng = as_generator(seed)
    out = {}
    for name, p in model.named_parameters():
        fan = max(1, p.numel() // p.shape[0]) if p.dim() >= 2 else 1
        out[name] = torch.from_numpy(rng.normal(scale=1.0 / math.sqrt(fan), size=tuple(p.shape)))
    return out


def _flat_grads(grads: dict[str, torch.Tensor], names: list[str]) -> np.ndarray:
    return torch.cat([grads[n].reshape(grads[n].shape[0], -1) for n in names], dim=1).numpy()


def _check_affine(f, x1: torch.Tensor, x2: torch.Tensor) -> float:
    with torch.no_grad():
        y1, y2, ym = f(x1), f(x2), f((x1 + x2) / 2)
    ref = (y1 + y2) / 2
    scale = max(float(ref.abs().max()), float(ym.abs().max()), 1e-300)
    return float((ym - ref).abs().max()) / scale


def _check_tol(name: str, tol: Any) -> float:
    tol = check_positive_float(name, tol)
    if tol >= 1:
        raise RedundancyError(f"{name}={tol!r} is not allowed; tol is relative and must be in (0, 1)")
    return tol


@_v.validate_params({"model": _v.Module(), "input_shape": _v.Shape(1, 5), "tol": _v.NoneOr(_v.Check(_check_tol)),
                     "seed": _v.Seed(allow_none=True, allow_generator=True), "progress": _v.Bool(),
                     "at": _v.Choice("random", "model"), "chunk_size": _v.Int(1, 2 ** 40),
                     "oversample": _v.Int(1, 2 ** 40), "max_rank": _v.Int(1, 2 ** 62)})
@_v.model_errors("the Jacobian rank (numerical dof)")
def jacobian_rank(model: nn.Module, input_shape, *, tol: float | None = None, seed: Any = 0,
                  progress: bool = False, at: str = "random", chunk_size: int = 256,
                  oversample: int = 8, max_rank: int = NUMERICAL_MAX_RANK) -> NumericalRank:
    """Generic rank of ``∂(vec W, b)/∂θ`` for an affine ``model`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        Affine in its input (convs, pools, linear, BatchNorm in eval mode, residual additions...).
    input_shape : tuple of int
        One example's shape, without the batch dimension.
    tol : float, optional
        Relative rank tolerance (default ``100·max(m, n)·eps``).
    seed : int or numpy.random.Generator
        Seeds the random point and the random measurements.
    progress : bool
        Show a tqdm bar over the measurement chunks.
    at : {"random", "model"}
        Evaluate at a random point (the generic rank; default) or at the model's own weights.
    chunk_size : int
        Measurements per vectorised chunk.
    oversample : int
        Rows that must add no rank before the rank is accepted.
    max_rank : int
        Refuse (``RedundancyError``, with the size and a time estimate) when
        ``min(n_params, (n_in + 1)·n_out)`` exceeds it; see :data:`NUMERICAL_MAX_RANK`.

    Returns
    -------
    NumericalRank
    """
    input_shape = tuple(input_shape)
    bad = find_nonlinear_module(model)
    if bad is not None:
        raise NotLinearError(f"model is not linear in its input: submodule '{bad[0]}': {bad[1]}. "
                             "degrees_of_freedom needs an affine model", module_name=bad[0])
    rng = as_generator(seed)
    net, params, fwd = _functional_point(model, at, rng)
    n_out = _affine_outputs(fwd, params, input_shape, rng)
    n_params = sum(p.numel() for p in params.values())
    plan = _plan(n_params, math.prod(input_shape), n_out, oversample, max_rank, chunk_size, rng)
    rows_for = _row_maker(fwd, params, list(params), plan)
    J, svd = _measure(rows_for, plan, input_shape, n_out, tol, oversample, rng, progress)
    s, r, gap, used_tol, kind = svd
    return NumericalRank(rank=r, gap=gap, tol=used_tol, singular_values=s, n_rows=int(J.shape[0]),
                         n_params=int(n_params), exact=bool(plan["exact"]), n_outputs=n_out,
                         decomposition=kind + ("+sketch" if plan["sketch"] else ""),
                         sketch_width=int(plan["width"]) if plan["sketch"] else None,
                         estimated_seconds=plan["est"])


def _functional_point(model: nn.Module, at: str, rng):
    """A float64 CPU copy of ``model``, the parameter point (random or the model's own) and
    ``fwd(params, x)``, the functional forward of the copy."""
    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    if not any(True for _ in net.named_parameters()):
        raise RedundancyError("model has no parameters; its degrees of freedom are 0 by definition "
                              "and there is nothing to compute")
    if at == "random":
        params = random_point(net, rng)
    else:
        params = {n: p.detach().clone() for n, p in net.named_parameters()}
    buffers = {n: b for n, b in net.named_buffers()}

    def fwd(p, x):
        return torch.func.functional_call(net, (p, buffers), (x,))

    return net, params, fwd


def _affine_outputs(fwd, params, input_shape, rng) -> int:
    """Number of outputs of the model on ``input_shape``, after a midpoint test of affinity."""
    try:
        with torch.no_grad():
            y0 = fwd(params, torch.zeros((1, *input_shape), dtype=torch.float64))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = _v._first_line(exc)
        raise RedundancyError(f"the model cannot be evaluated on input_shape={input_shape}: {first}") from exc
    if not isinstance(y0, torch.Tensor) or y0.shape[:1] != (1,):
        raise RedundancyError("model must return one tensor with the batch dimension first")
    xs = torch.from_numpy(rng.normal(size=(2, *input_shape)))
    err = _check_affine(lambda x: fwd(params, x), xs[:1], xs[1:])
    if not np.isfinite(err) or err > 1e-8:
        raise NotLinearError(f"model is not linear in its input: the midpoint test fails (relative error "
                             f"{err:.2e} > 1e-8); degrees_of_freedom needs an affine model")
    return int(y0[0].numel())


def _plan(n_params, n_in, n_out, oversample, max_rank, chunk_size, rng) -> dict:
    """Exact rows or random measurements, sketched or not; refuses a rank above ``max_rank``."""
    full_rows = (n_in + 1) * n_out
    m = min(n_params, full_rows)
    exact = full_rows <= min(n_params + oversample, EXACT_MAX_ROWS)
    sketch = not exact and n_params > SKETCH_MIN_PARAMS and full_rows + oversample < n_params
    width = full_rows + oversample if sketch else n_params
    cap = min(n_params, full_rows) + oversample
    est = estimate_seconds(n_params, min(cap, full_rows) if exact else cap, width)
    if m > max_rank:
        raise RedundancyError(
            f"the numerical dof would have to certify a rank up to min(n_params={n_params}, "
            f"(n_in+1)*n_out={full_rows}) = {m}, above max_rank={max_rank} (about {est:,.0f} s and "
            f"{8 * cap * width / 2**30:.1f} GiB); use a closed form (a LinearCNN spec, or a chain "
            "analyze() recognises), a smaller input_shape, or raise max_rank")
    chunk = max(1, min(chunk_size, (64 << 20) // (8 * n_params)))
    omega = _Sketch(n_params, width, rng) if sketch else None
    return dict(n_params=n_params, n_in=n_in, full_rows=full_rows, exact=exact, sketch=sketch, width=width,
                cap=cap, est=est, chunk=chunk, omega=omega)


def _row_maker(fwd, params, names, plan):
    """``rows_for(X, U, bar)``: the (sketched) gradient rows of the measurements ``<u, f(x)>``."""
    def meas(p, x, u):
        return (fwd(p, x.unsqueeze(0)).reshape(-1) * u).sum()

    grad_fn = torch.func.vmap(torch.func.grad(meas), in_dims=(None, 0, 0))
    chunk, omega, width = plan["chunk"], plan["omega"], plan["width"]

    def rows_for(X: torch.Tensor, U: torch.Tensor, bar) -> np.ndarray:
        out = []
        for i in range(0, X.shape[0], chunk):
            with torch.enable_grad():
                g = grad_fn(params, X[i:i + chunk], U[i:i + chunk])
            rows = _flat_grads(g, names)
            out.append(rows if omega is None else omega(rows))
            if bar is not None:
                bar.update(min(chunk, X.shape[0] - i))
        return np.concatenate(out, axis=0) if out else np.zeros((0, width))

    return rows_for


def _measure(rows_for, plan, input_shape, n_out, tol, oversample, rng, progress):
    """The Jacobian rows (all of them, or random ones until the rank settles) and their rank."""
    from tqdm.auto import tqdm

    exact, cap, n_in = plan["exact"], plan["cap"], plan["n_in"]
    bar = tqdm(total=plan["full_rows"] if exact else min(cap, 256), unit="row", disable=not progress,
               leave=False, desc=f"dof: Jacobian rows ({plan['n_params']} params, est. {plan['est']:,.0f} s)")
    try:
        if exact:
            eye_in = torch.cat([torch.zeros(1, n_in, dtype=torch.float64),
                                torch.eye(n_in, dtype=torch.float64)]).reshape(n_in + 1, *input_shape)
            eye_out = torch.eye(n_out, dtype=torch.float64)
            J = rows_for(eye_in.repeat_interleave(n_out, dim=0), eye_out.repeat(n_in + 1, 1), bar)
            return J, _svd_rank(J, tol, exact=True)
        J = np.zeros((0, plan["width"]))
        target = min(cap, 256)
        while True:
            need = target - J.shape[0]
            X = torch.from_numpy(rng.normal(size=(need, *input_shape)))
            U = torch.from_numpy(rng.normal(size=(need, n_out)))
            J = np.concatenate([J, rows_for(X, U, bar)], axis=0)
            svd = _svd_rank(J, tol)
            if svd[1] <= J.shape[0] - oversample or J.shape[0] >= cap:
                return J, svd
            target = min(cap, 2 * target)
            bar.total = target
            bar.refresh()
    finally:
        bar.close()


class _Sketch:
    """``rows -> (rows · D_s) · Ω``: column scales ``D_s`` fixed from the first chunk (unit-norm
    columns, rank-invariant), then ``Ω = diag(g) · DCT · P`` (Gaussian ``g``, orthonormal DCT-II,
    ``width`` random columns ``P``). For a generic ``g`` the row space of the Jacobian (dimension
    ``<= width - oversample``) meets the kernel of ``Ω`` only in 0, so ranks are kept; each chunk is
    sketched as soon as it is computed and the full-width rows are never stored."""

    def __init__(self, n: int, width: int, rng: np.random.Generator):
        self.g = rng.normal(size=n)
        self.cols = np.sort(rng.choice(n, size=width, replace=False))
        self.scale = None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        from scipy.fft import dct

        if self.scale is None:
            norms = np.linalg.norm(rows, axis=0)
            self.scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0) * self.g
        return dct(rows * self.scale, type=2, norm="ortho", axis=1)[:, self.cols]


#: Above this many matrix entries the rank comes from a QR factorisation instead of an SVD.
SVD_MAX_ENTRIES = 4_000_000


def _svd_rank(J: np.ndarray, tol: float | None, *, exact: bool = False):
    """Rank of ``J`` with unit-norm columns: SVD for small or structured (exact) matrices, else the
    diagonal of the unpivoted QR of ``Jᵀ`` (rows are generic random measurements, so the distance of
    row j to the span of rows 1..j-1 is ≈ 0 exactly when the earlier rows already span the row space)."""
    norms = np.linalg.norm(J, axis=0)
    Jn = J[:, norms > 0] / norms[norms > 0]
    if Jn.size == 0:
        return np.zeros(0), 0, float("inf"), float(tol or 0.0), "svd"
    if exact or Jn.size <= SVD_MAX_ENTRIES:
        s = np.linalg.svd(Jn, compute_uv=False)
        kind = "svd"
    else:
        from scipy.linalg import qr

        R = qr(Jn[: Jn.shape[1]].T, mode="r", overwrite_a=True, check_finite=False)[0]
        s = np.sort(np.abs(np.diag(R)))[::-1]
        kind = "qr"
    r, gap, used = rank_from_singular_values(s, J.shape, tol)
    return s, r, gap, used, kind
