"""Global analytic empirical variational Bayesian matrix factorisation (EVBMF, Nakajima et al.,
JMLR 2013): the rank it keeps, with the noise estimated on the non-degenerate part of the matrix
(dead or pruned rows and columns, exact rank deficiency). Used by
:func:`redundancy.lowrank.ranks.evbmf_ranks`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar

import redundancy._validation as _v
from redundancy._validation import check_positive_float
from redundancy.errors import RedundancyError
from redundancy.lowrank.decompose import _as_array



@_v.result()
class EVBMFResult(_v.Result):
    """Empirical VB matrix factorisation of an ``n_rows × n_cols`` matrix.

    Attributes
    ----------
    rank : int
        Number of singular components kept (0 allowed: nothing rises above the noise).
    singular_values : numpy.ndarray
        All ``min(n_rows, n_cols)`` singular values, descending.
    shrunk : numpy.ndarray
        The EVB estimates of the ``rank`` kept singular values (each in ``(0, γ_h)``).
    sigma2 : float
        Noise variance (given, or estimated by minimising the free energy).
    threshold : float
        The EVB cut-off ``γ̲ = sqrt(M σ² (1 + τ̲)(1 + α/τ̲))``; components with ``γ_h > γ̲`` are kept.
    tau : float
        ``τ̲``, the positive root of ``log(1+τ) + α log(1+τ/α) − τ``.
    alpha : float
        ``L / M`` with ``L = min(n_rows, n_cols)``, ``M = max(...)``.
    transposed : bool
        True when the matrix had more rows than columns (it was transposed first).
    sigma2_estimated : bool
    n_degenerate : int
        Numerically zero singular values (dead or pruned rows/columns, exact rank deficiency) left
        out of the noise model: EVBMF runs on the non-degenerate part (see :func:`evbmf`).
    """

    rank: int
    singular_values: np.ndarray
    shrunk: np.ndarray
    sigma2: float
    threshold: float
    tau: float
    alpha: float
    shape: tuple[int, int]
    transposed: bool
    sigma2_estimated: bool
    n_degenerate: int = 0

    def __repr__(self) -> str:
        return (f"EVBMFResult(rank={self.rank} of {len(self.singular_values)}, shape={self.shape}, "
                f"sigma2={self.sigma2:.4g}, threshold={self.threshold:.4g})")


def _psi(tau: np.ndarray | float, alpha: float):
    """Free energy of a kept component minus that of a dropped one (×2/M): ``log(1+τ) + α log(1+τ/α) − τ``."""
    return np.log1p(tau) + alpha * np.log1p(tau / alpha) - tau


def _tau_of_x(x: np.ndarray, alpha: float) -> np.ndarray:
    """Solve ``x = (1 + τ)(1 + α/τ)`` for the larger root ``τ ≥ sqrt(α)`` (needs ``x ≥ (1+sqrt α)²``)."""
    b = x - 1.0 - alpha
    return 0.5 * (b + np.sqrt(np.maximum(b * b - 4.0 * alpha, 0.0)))


def _tau_bar(alpha: float) -> float:
    hi = max(1.0, 4.0 * math.sqrt(alpha))
    while _psi(hi, alpha) >= 0:
        hi *= 2.0
    return float(brentq(_psi, math.sqrt(alpha), hi, args=(alpha,), xtol=1e-14, rtol=1e-14))


def _free_energy(sigma2: float, gamma2: np.ndarray, M: int, alpha: float, x_bar: float) -> float:
    """``2F/M`` up to constants: ``Σ_h [x_h − log x_h + 1{x_h > x̲} ψ(τ(x_h))]``, ``x_h = γ_h²/(Mσ²)``."""
    x = gamma2 / (M * sigma2)
    keep = x > x_bar
    return float(np.sum(x - np.log(x)) + np.sum(_psi(_tau_of_x(x[keep], alpha), alpha)))


def _scale_free(fn):
    """Run the EVBMF on ``V / s`` (``s`` = largest absolute entry) and scale the answer back: the
    method is scale-equivariant (``γ → sγ``, ``σ² → s²σ²``, same rank), and at scales such as
    1e-200 or 1e200 the squared singular values would under- or overflow."""
    import functools

    @functools.wraps(fn)
    def wrapper(matrix: Any, sigma2: float | None = None) -> EVBMFResult:
        V = _as_array(matrix, "matrix")
        if sigma2 is not None:
            sigma2 = check_positive_float("sigma2", sigma2)
        s = float(np.max(np.abs(V))) or 1.0
        with np.errstate(over="ignore", under="ignore"):
            s2 = None if sigma2 is None else float(np.float64(sigma2) / np.float64(s) / np.float64(s))
        if s2 is not None and not (np.isfinite(s2) and 1e-100 <= s2 <= 1e100):
            raise RedundancyError(f"sigma2={sigma2:g} is out of scale with the matrix (largest entry {s:g}); "
                                  "sigma2 / max|V|^2 must lie in [1e-100, 1e100]")
        r = fn(V / s, s2)
        with np.errstate(over="ignore", under="ignore"):
            sig2 = float(np.float64(r.sigma2) * s * s)
            sv, shrunk, thr = r.singular_values * s, r.shrunk * s, float(np.float64(r.threshold) * s)
        if not (np.isfinite(sv).all() and np.isfinite(shrunk).all() and np.isfinite(sig2) and np.isfinite(thr)) \
                or (r.sigma2 > 0 and sig2 == 0):
            raise RedundancyError(f"evbmf at this scale (largest entry {s:g}) gives a noise variance "
                                  f"{r.sigma2:.4g} * {s:g}^2 outside the float64 range; rescale the matrix")
        out = EVBMFResult(rank=r.rank, singular_values=sv, shrunk=shrunk, sigma2=sig2, threshold=thr, tau=r.tau,
                          alpha=r.alpha, shape=r.shape, transposed=r.transposed, sigma2_estimated=r.sigma2_estimated,
                          n_degenerate=r.n_degenerate)
        return out
    return wrapper


@_scale_free
def evbmf(matrix: Any, sigma2: float | None = None) -> EVBMFResult:
    """Global analytic empirical VB matrix factorisation (Nakajima et al. 2013): the rank it keeps.

    For ``V`` (``L × M`` after transposing so that ``L ≤ M``) with singular values ``γ_h`` and
    noise variance ``σ²``, let ``α = L/M`` and ``τ̲`` be the positive root of
    ``ψ(τ) = log(1+τ) + α log(1+τ/α) − τ``. Component ``h`` is kept iff

    .. math::  \\gamma_h > \\underline\\gamma = \\sigma\\sqrt{M(1+\\underline\\tau)(1+\\alpha/\\underline\\tau)}

    and its estimate is :math:`\\hat\\gamma_h = \\frac{\\gamma_h}{2}\\big(1 - \\frac{(L+M)\\sigma^2}{\\gamma_h^2}
    + \\sqrt{(1 - \\frac{(L+M)\\sigma^2}{\\gamma_h^2})^2 - \\frac{4LM\\sigma^4}{\\gamma_h^4}}\\big)`.
    When ``sigma2`` is not given it minimises the free energy
    ``Σ_h [x_h − log x_h + 1{x_h > x̲} ψ(τ(x_h))]`` (``x_h = γ_h²/(Mσ²)``, ``x̲ = (1+τ̲)(1+α/τ̲)``,
    ``x = (1+τ)(1+α/τ)``) over ``σ²`` in ``[γ_min²/(M x̲), Σγ²/(LM)]`` (a log grid, then a bounded
    1-D refinement). The rank is never negative and never above ``L``; 0 means "all noise".

    **Degenerate matrices** (the unfolding of a pruned kernel: dead output or input channels give
    zero rows or columns, and exact rank deficiency gives numerically zero ``γ_h``): a zero
    ``γ_h`` makes ``-log x_h`` unbounded, and the free energy then drives ``σ²`` to ~0 and keeps
    nearly every component. EVBMF therefore runs on the non-degenerate part: zero rows and columns
    are dropped, and ``V = Q V'`` with ``Q`` orthonormal onto the row space is replaced by ``V'``
    (``L' = #{γ_h > 10·max(L, M)·ε·γ_1}`` rows, the same non-zero singular values), so
    ``α = L'/M'``; ``n_degenerate`` counts what was left out. When the live part itself is exactly
    rank deficient (no noise reaches those directions) the noise estimate is 0 and the rank is
    ``L'`` (the ``σ² → 0`` limit).

    Parameters
    ----------
    matrix : array-like, 2-D
        Any shape; more rows than columns is handled by transposing.
    sigma2 : float, optional
        Known noise variance.

    Returns
    -------
    EVBMFResult
        The rank kept, the shrunk singular values and the noise variance.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> low = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 30))
    >>> evbmf(low + 0.1 * rng.normal(size=(40, 30))).rank
    3
    """
    V = _as_array(matrix, "matrix")
    if V.ndim != 2:
        raise RedundancyError(f"matrix has shape {V.shape}; evbmf needs a 2-D array")
    transposed = V.shape[0] > V.shape[1]
    if transposed:
        V = V.T
    shape = V.shape
    n_sv = min(shape)
    if sigma2 is not None:
        sigma2 = check_positive_float("sigma2", sigma2)
    # the non-degenerate part: drop dead rows/columns, then the numerically zero singular values
    # (V = Q V' with Q orthonormal onto its row space: same non-zero singular values, fewer rows)
    rn, cn = np.linalg.norm(V, axis=1), np.linalg.norm(V, axis=0)
    big = max(float(rn.max(initial=0.0)), float(cn.max(initial=0.0)))
    V2 = V[rn > 1e-12 * big][:, cn > 1e-12 * big] if big > 0 else V[:0, :0]
    if V2.shape[0] > V2.shape[1]:
        V2 = V2.T
    gamma_all = np.linalg.svd(V2, compute_uv=False) if V2.size else np.zeros(0)
    gamma_full = np.zeros(n_sv)
    gamma_full[:len(gamma_all)] = gamma_all
    empty = np.zeros(0)
    if gamma_all.size == 0 or gamma_all[0] == 0.0:
        alpha = shape[0] / shape[1]
        tau = _tau_bar(alpha)
        return EVBMFResult(rank=0, singular_values=gamma_full, shrunk=empty, sigma2=float(sigma2 or 0.0),
                           threshold=0.0, tau=tau, alpha=alpha, shape=shape, transposed=transposed,
                           sigma2_estimated=sigma2 is None, n_degenerate=n_sv)
    nz = gamma_all > max(V2.shape) * np.finfo(np.float64).eps * 10 * gamma_all[0]
    gamma = gamma_all[nz]
    M = V2.shape[1]
    L = int(gamma.size)
    alpha = L / M
    tau = _tau_bar(alpha)
    x_bar = (1.0 + tau) * (1.0 + alpha / tau)
    estimated = sigma2 is None
    if estimated and L < min(V2.shape):
        # exactly low rank once dead rows/columns are gone: no noise reaches the other directions,
        # the noise estimate is 0 and every non-zero component is kept (the sigma2 -> 0 limit)
        return EVBMFResult(rank=L, singular_values=gamma_full, shrunk=gamma.copy(), sigma2=0.0, threshold=0.0,
                           tau=tau, alpha=alpha, shape=shape, transposed=transposed, sigma2_estimated=True,
                           n_degenerate=n_sv - L)
    if estimated:
        g2 = gamma ** 2
        lo, hi = g2[-1] / (M * x_bar), float(np.sum(g2)) / (L * M)
        lo = min(lo, hi * 1e-3)
        grid = np.geomspace(lo, hi, 600)
        vals = [_free_energy(s, g2, M, alpha, x_bar) for s in grid]
        i = int(np.argmin(vals))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(lambda s: _free_energy(s, g2, M, alpha, x_bar), bounds=(a, b), method="bounded",
                              options={"xatol": a * 1e-10})
        sigma2 = float(res.x) if res.fun <= vals[i] else float(grid[i])
    threshold = math.sqrt(M * sigma2 * x_bar)
    rank = int(np.sum(gamma > threshold))
    g = gamma[:rank]
    c = 1.0 - (L + M) * sigma2 / g**2
    shrunk = 0.5 * g * (c + np.sqrt(np.maximum(c * c - 4.0 * L * M * sigma2**2 / g**4, 0.0)))
    return EVBMFResult(rank=rank, singular_values=gamma_full, shrunk=shrunk, sigma2=float(sigma2),
                       threshold=threshold, tau=tau, alpha=alpha, shape=shape, transposed=transposed,
                       sigma2_estimated=estimated, n_degenerate=n_sv - L)
