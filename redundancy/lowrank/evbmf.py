"""Global analytic empirical variational Bayesian matrix factorisation (EVBMF, Nakajima et al.,
JMLR 2013): the rank it keeps, with the noise estimated on the non-degenerate part of the matrix
(dead or pruned rows and columns, exact rank deficiency). Used by
:func:`redundancy.lowrank.ranks.evbmf_ranks`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
from scipy import integrate
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
    applicable : bool
        False when EVBMF's noise estimate cannot be trusted on this matrix (see :func:`evbmf`:
        too small, estimate at the method's rank bound, or implausible noise estimate); ``rank``
        then comes from the rule named in ``rule``.
    reason : str
        Why EVBMF is not applicable (empty when it is).
    rule : str
        The rule that gave ``rank``: ``"evbmf"`` or ``"gavish_donoho"`` (the optimal hard
        threshold with the Marchenko-Pastur median noise estimate, Gavish & Donoho 2014).
    evbmf_rank : int
        EVBMF's own rank (equal to ``rank`` when ``rule == "evbmf"``).
    evbmf_sigma2 : float
        EVBMF's own noise variance estimate (equal to ``sigma2`` when ``rule == "evbmf"``).
    rank_bound : int
        ``H̄ = ceil(L/(1+α)) − 2``: the largest rank for which EVBMF's noise estimate is defined
        (Nakajima et al. 2013; the search range of the reference implementation).
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
    applicable: bool = True
    reason: str = ""
    rule: str = "evbmf"
    evbmf_rank: int = 0
    evbmf_sigma2: float = 0.0
    rank_bound: int = 0

    def __repr__(self) -> str:
        head = f"EVBMFResult(rank={self.rank} of {len(self.singular_values)}, shape={self.shape}, "
        tail = f"sigma2={self.sigma2:.4g}, threshold={self.threshold:.4g})"
        if self.applicable:
            return head + tail
        return head + f"rule={self.rule!r}, EVBMF not applicable: {self.reason}; " + tail


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
        with np.errstate(over="ignore", under="ignore"):
            ev_sig2 = float(np.float64(r.evbmf_sigma2) * s * s)
        out = EVBMFResult(rank=r.rank, singular_values=sv, shrunk=shrunk, sigma2=sig2, threshold=thr, tau=r.tau,
                          alpha=r.alpha, shape=r.shape, transposed=r.transposed, sigma2_estimated=r.sigma2_estimated,
                          n_degenerate=r.n_degenerate, applicable=r.applicable, reason=r.reason, rule=r.rule,
                          evbmf_rank=r.evbmf_rank, evbmf_sigma2=ev_sig2 if np.isfinite(ev_sig2) else sig2,
                          rank_bound=r.rank_bound)
        return out
    return wrapper


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
    res = _evbmf_published(matrix, sigma2)
    return _with_verdict(res)


@_scale_free
def _evbmf_published(matrix: Any, sigma2: float | None = None) -> EVBMFResult:
    """EVBMF exactly as published (no applicability check); see :func:`evbmf`."""
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


#: EVBMF's noise estimate is called implausible when it exceeds the Marchenko-Pastur median
#: estimate by more than this factor (pure noise and planted ranks within the bound give ratios
#: 0.6-1.4 at sizes 6..60, q01-q99 over 40 seeds; a true rank past the bound gives 7-20), or the
#: lower-quartile estimate (robust to true ranks up to 3L/4, noisier: pure noise gives q99 ratios
#: 1.2-3.4 at sizes 6..60) by more than twice this factor.
NOISE_RATIO = 2.0


@functools.lru_cache(maxsize=512)
def _mp_median(beta: float, q: float = 0.5) -> float:
    """Quantile ``q`` (default the median ``μ_β``) of the Marchenko-Pastur law of ratio ``β ∈ (0, 1]``
    (unit variance)."""
    lo, hi = (1.0 - math.sqrt(beta)) ** 2, (1.0 + math.sqrt(beta)) ** 2

    def cdf(m):
        return integrate.quad(lambda x: math.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * math.pi * beta * x),
                              lo, m, limit=200)[0]
    return float(brentq(lambda m: cdf(m) - q, lo, hi, xtol=1e-13))


def _gd_omega(beta: float) -> float:
    """Gavish & Donoho's (2014) ``ω(β) ≈ 0.56β³ − 0.95β² + 1.82β + 1.43``: the optimal hard
    threshold is ``ω(β)·median(γ)`` when the noise level is unknown."""
    return 0.56 * beta ** 3 - 0.95 * beta ** 2 + 1.82 * beta + 1.43


def _not_applicable(res: EVBMFResult, gamma: np.ndarray, L: int, M: int, bound: int, gd_rank: int,
                    s2_mp: float) -> str:
    """Why EVBMF's estimated-noise answer cannot be trusted here ("" when it can)."""
    size = f"a {L} x {M} matrix (live part)"
    if bound < 1:
        return (f"matrix too small: EVBMF's noise estimate holds only for ranks up to ceil(L/(1+L/M)) - 2 = "
                f"{bound} for {size}")
    if res.rank >= bound:
        return (f"EVBMF's rank {res.rank} sits at its bound ceil(L/(1+L/M)) - 2 = {bound} for {size}: "
                "a larger true rank cannot be told apart")
    if res.sigma2 > NOISE_RATIO * s2_mp:
        return (f"implausible noise estimate: EVBMF's sigma2={res.sigma2:.4g} is over {NOISE_RATIO:g}x the "
                f"Marchenko-Pastur median estimate {s2_mp:.4g} (signal absorbed into the noise, the usual sign "
                f"of a true rank past the bound {bound})")
    k = max(int(round(0.25 * L + 0.5)), 1)   # the lower quartile: still noise when the true rank is up to 3L/4
    s2_q = (np.sort(gamma)[k - 1] / math.sqrt(M * _mp_median(L / M, (k - 0.5) / L))) ** 2
    if res.sigma2 > 2 * NOISE_RATIO * s2_q:
        return (f"implausible noise estimate: EVBMF's sigma2={res.sigma2:.4g} is over {2 * NOISE_RATIO:g}x the "
                f"Marchenko-Pastur estimate {s2_q:.4g} from the lower quartile of the singular values (signal "
                f"absorbed into the noise: the true rank likely passes the bound {bound})")
    if gd_rank >= bound and gd_rank > res.rank:
        return (f"{gd_rank} components rise above the Gavish-Donoho threshold, at or past EVBMF's rank bound "
                f"{bound} for {size}")
    return ""


def _with_verdict(res: EVBMFResult) -> EVBMFResult:
    """Check EVBMF's assumptions (estimated noise only); where they fail, Gavish-Donoho answers."""
    own = dict(evbmf_rank=res.rank, evbmf_sigma2=res.sigma2)
    L = len(res.singular_values) - res.n_degenerate
    if L == 0:
        return dataclasses.replace(res, **own)
    M = int(round(L / res.alpha))
    bound = max(math.ceil(L / (1.0 + res.alpha) - 1e-9) - 2, 0)
    own["rank_bound"] = bound
    if not res.sigma2_estimated or res.sigma2 == 0.0:   # known noise, or the noise-free limit
        return dataclasses.replace(res, **own)
    gamma = res.singular_values[:L]
    beta = L / M
    med = float(np.median(gamma))
    s2_mp = (med / math.sqrt(M * _mp_median(beta))) ** 2
    gd_thr = _gd_omega(beta) * med
    gd_rank = int(np.sum(gamma > gd_thr))
    reason = _not_applicable(res, gamma, L, M, bound, gd_rank, s2_mp)
    if not reason:
        return dataclasses.replace(res, **own)
    return dataclasses.replace(res, **own, applicable=False, reason=reason, rule="gavish_donoho", rank=gd_rank,
                               shrunk=gamma[:gd_rank].copy(), sigma2=float(s2_mp), threshold=float(gd_thr))
