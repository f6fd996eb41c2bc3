"""Sample-complexity bounds from the degrees of freedom, and the K/R ratio of a block.

Reconstructed form (``docs/theory.md`` §3; the paper's constants and log factors are unknown):

.. math::  n(\\varepsilon) = C\\,\\sigma^2\\,\\mathrm{dof}\\,\\lambda/\\varepsilon^2, \\qquad
           \\mathrm{err}(n) = C\\,\\sigma\\,\\sqrt{\\mathrm{dof}\\,\\lambda/n},

with ``C`` the constant (default 1, "up to constants") and ``λ`` the log factor (default 1); the
two are inverse to each other when the error's constant is the square root of the sample-size
constant (``C_err² = C_n``), which holds for the default 1. The
same formulas with the naive parameter count in place of dof give what parameter counting would
predict; their ratio is ``naive/dof``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy._validation import (Instance, NoneOr, _short, check_array, check_choice, check_int, check_nonnegative_float,
                                    check_positive_float, validate_params)
from redundancy.errors import RedundancyError

__all__ = ["sample_complexity", "SampleComplexity", "error_bound", "ErrorBound", "kr_ratio"]

#: The assumptions under which the reconstructed bound holds (stated in every result).
ASSUMPTIONS: tuple[str, ...] = (
    "linear CNN (identity activations); least squares on a scalar (or vector) response",
    "inputs i.i.d. Gaussian or sub-Gaussian with c_x <= eig(Cov vec X) <= C_x",
    "noise i.i.d., mean zero, sub-Gaussian with parameter sigma, independent of the inputs",
    "exactly specified ranks (the true W lies in the model's set of reachable W)",
    "overlapping strides (s < l): a restricted-eigenvalue condition kappa > 0 on the patch covariance",
    "error in prediction norm / Frobenius norm of W on the patch tensor; constants C, log factor not from the paper",
)


#: largest dof / parameter count accepted (10**18; a trillion-parameter model has 10**12)
MAX_DOF = 10 ** 18


#: the constraints shared by the two bounds (noise level and the two calibration constants)
_SCALES = {"sigma": _v.Check(check_nonnegative_float), "constant": _v.Check(check_positive_float),
           "log_factor": _v.Check(check_positive_float)}


def _dof_and_naive(dof: Any, naive: Any) -> tuple[int, int | None]:
    from redundancy.linear.dof import DofResult

    if isinstance(dof, DofResult):
        naive = dof.naive if naive is None else naive
        dof = dof.dof
    dof = check_int("dof", dof, min_value=1, max_value=MAX_DOF)
    if naive is not None:
        naive = check_int("naive", naive, min_value=1, max_value=MAX_DOF)
    return dof, naive


@_v.result
class SampleComplexity(_v.Result):
    """Samples needed for prediction error ``eps``: ``n = C·σ²·dof·λ/ε²`` (rounded up).

    Attributes
    ----------
    n : int
        From the degrees of freedom.
    n_naive : int or None
        The same with the naive parameter count (``None`` if ``naive`` was not given).
    ratio : float or None
        ``n_naive / n`` (= ``naive / dof`` up to rounding).
    dof, naive, eps, sigma, constant, log_factor : the inputs.
    assumptions : tuple of str
    """

    n: int
    n_naive: int | None
    dof: int
    naive: int | None
    eps: float
    sigma: float
    constant: float
    log_factor: float
    assumptions: tuple[str, ...] = ASSUMPTIONS

    @property
    def ratio(self) -> float | None:
        return None if self.n_naive is None or self.n == 0 else self.n_naive / self.n

    @property
    def formula(self) -> str:
        return "n = constant * sigma^2 * dof * log_factor / eps^2"

    def _extra_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "formula": self.formula}

    def __repr__(self) -> str:
        ratio = "" if self.ratio is None else f", ratio={self.ratio:.3g}"
        naive = "" if self.n_naive is None else f", n_naive={self.n_naive}{ratio}"
        return (f"SampleComplexity(n={self.n}{naive}; dof={self.dof}, eps={self.eps:g}, sigma={self.sigma:g}, "
                f"constant={self.constant:g}, log_factor={self.log_factor:g})")


@_v.validate_params({"eps": _v.Check(check_positive_float), **_SCALES})
def sample_complexity(dof, eps, sigma=1.0, *, naive=None, constant=1.0, log_factor=1.0) -> SampleComplexity:
    """Samples needed to reach prediction error ``eps``, from dof and from the naive count.

    .. math::  n = \\lceil C\\,\\sigma^2\\,\\mathrm{dof}\\,\\lambda / \\varepsilon^2 \\rceil

    Up to constants: ``constant`` (C) defaults to 1 and can be calibrated by simulation; the
    log factor λ is not known from the paper (typical choices: 1, ``log(N + 2)``, ``log n``).
    With ``sigma = 0`` the bound is 0; identifiability still needs ``n >= dof`` samples.

    Parameters
    ----------
    dof : int or DofResult
        Degrees of freedom (a :class:`~redundancy.linear.dof.DofResult` also supplies ``naive``).
    eps : float
        Target prediction error, > 0.
    sigma : float
        Noise level, >= 0.
    naive : int, optional
        Naive parameter count for the side-by-side prediction.
    constant, log_factor : float
        > 0.

    Returns
    -------
    SampleComplexity

    Examples
    --------
    >>> res = sample_complexity(80, eps=0.5, naive=628)
    >>> res.n, res.n_naive
    (320, 2512)
    """
    dof, naive = _dof_and_naive(dof, naive)

    def need(d: int) -> int:
        if sigma == 0:
            return 0
        # refuse an overflow instead of returning inf (or failing on eps**2 underflowing to 0)
        log10_n = (math.log10(constant) + 2 * math.log10(sigma) + math.log10(d) + math.log10(log_factor)
                   - 2 * math.log10(eps))
        if log10_n > 300:
            raise RedundancyError(
                f"sample_complexity overflows: n = constant*sigma^2*dof*log_factor/eps^2 is about 1e{log10_n:.0f} "
                f"(dof={d}, eps={eps:g}, sigma={sigma:g}, constant={constant:g}, log_factor={log_factor:g}); "
                "the result must be below 1e300")
        # exact rational arithmetic on the float inputs (a float product loses units at n ~ 1e18);
        # a slack of min(1e-9 n, 1e-3) absorbs the binary representation of decimal inputs (eps = 0.1)
        from fractions import Fraction

        v = Fraction(constant) * d * Fraction(log_factor) * (Fraction(sigma) / Fraction(eps)) ** 2
        slack = min(Fraction(1, 10 ** 9) * v, Fraction(1, 1000))
        return int(math.ceil(v - slack))

    return SampleComplexity(n=need(dof), n_naive=None if naive is None else need(naive), dof=dof, naive=naive,
                            eps=eps, sigma=sigma, constant=constant, log_factor=log_factor)


@_v.result
class ErrorBound(_v.Result):
    """Prediction error at ``n`` samples: ``error = C·σ·sqrt(dof·λ/n)``; ``float(result)`` is ``error``."""

    error: float
    error_naive: float | None
    dof: int
    naive: int | None
    n: int
    sigma: float
    constant: float
    log_factor: float
    assumptions: tuple[str, ...] = ASSUMPTIONS

    def __float__(self) -> float:
        return float(self.error)

    def _extra_dict(self) -> dict[str, Any]:
        return {"formula": "error = constant * sigma * sqrt(dof * log_factor / n)"}

    def __repr__(self) -> str:
        naive = "" if self.error_naive is None else f", error_naive={self.error_naive:.4g}"
        return f"ErrorBound(error={self.error:.4g}{naive}; dof={self.dof}, n={self.n}, sigma={self.sigma:g})"


@_v.validate_params({"n": _v.Int(1, MAX_DOF), **_SCALES})
def error_bound(dof, n, sigma=1.0, *, naive=None, constant=1.0, log_factor=1.0) -> ErrorBound:
    """Error bound at ``n`` samples: ``C·σ·sqrt(dof·λ/n)`` (returns an :class:`ErrorBound`; use
    ``float(...)`` or ``.error`` for the number).

    Examples
    --------
    >>> round(float(error_bound(80, 1200)), 4)
    0.2582
    """
    dof, naive = _dof_and_naive(dof, naive)

    def err(d: int) -> float:
        if sigma == 0:
            return 0.0
        log10_e = math.log10(constant) + math.log10(sigma) + 0.5 * (math.log10(d) + math.log10(log_factor)
                                                                      - math.log10(n))
        if log10_e > 300:
            raise RedundancyError(
                f"error_bound overflows: constant*sigma*sqrt(dof*log_factor/n) is about 1e{log10_e:.0f} "
                f"(dof={d}, n={n}, sigma={sigma:g}, constant={constant:g}, log_factor={log_factor:g}); "
                "the result must be below 1e300")
        return constant * sigma * math.sqrt(d / n) * math.sqrt(log_factor)

    return ErrorBound(error=err(dof), error_naive=None if naive is None else err(naive), dof=dof, naive=naive,
                      n=n, sigma=sigma, constant=constant, log_factor=log_factor)


# ------------------------------------------------------------------------------------------------
# K/R
# ------------------------------------------------------------------------------------------------
def _as_weight(m, name: str) -> np.ndarray:
    import torch
    from torch import nn

    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        w = check_array(f"{name}.weight", m.weight, min_ndim=2)
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if m.groups == 1:
            return w
        # grouped / depthwise: the equivalent dense kernel (zeros across groups)
        g, o, i = m.groups, m.out_channels // m.groups, m.in_channels // m.groups
        dense = np.zeros((m.out_channels, m.in_channels, *w.shape[2:]))
        for k in range(g):
            dense[k * o:(k + 1) * o, k * i:(k + 1) * i] = w[k * o:(k + 1) * o]
        return dense
    if isinstance(m, nn.Linear):
        return w
    if isinstance(m, (np.ndarray, torch.Tensor)):
        a = check_array(name, m)
        if a.ndim < 2:
            raise RedundancyError(f"{name} has shape {a.shape}; a weight needs >= 2 dimensions (out, in, ...)")
        return a
    raise RedundancyError(f"{name} must be a Conv1d/2d/3d, a Linear, or a weight array; "
                          f"got {type(m).__name__}")


def interface_rank(first, second, *, tol: float | None = None) -> tuple[int, np.ndarray, float, float]:
    """Numerical rank of the product of two adjacent linear maps through their channel interface.

    ``first`` writes ``K`` channels (weight ``(K, in, *k1)``), ``second`` reads them (weight
    ``(out, K, *k2)``, or a Linear on the flattened ``(K, positions)`` map, ``(out, K·P)``). The
    product ``B·A`` of ``B = second`` as ``(out·rest, K)`` and ``A = first`` as ``(K, in·k1)`` has
    rank ``<= K``; its rank is the number of the K channels that matter. Returns
    ``(rank, singular values, tol, gap)``; ``rank = #{s > tol·s_1}``, default
    ``tol = 100·max(shape)·eps``.
    """
    from redundancy.linear.dof_numerical import rank_from_singular_values

    A, B = _as_weight(first, "first"), _as_weight(second, "second")
    K = A.shape[0]
    if B.ndim < 2:
        raise RedundancyError(f"second has shape {B.shape}; a weight needs >= 2 dimensions (out, in, ...)")
    A2 = A.reshape(K, -1)
    if B.ndim == 2 and B.shape[1] != K:
        if B.shape[1] % K:
            raise RedundancyError(f"second reads {B.shape[1]} features, not a multiple of first's {K} channels")
        B2 = B.reshape(B.shape[0], K, -1).transpose(0, 2, 1).reshape(-1, K)
    elif B.shape[1] == K:
        B2 = np.moveaxis(B, 1, -1).reshape(-1, K)
    else:
        raise RedundancyError(f"second reads {B.shape[1]} channels; first writes {K}")
    if tol is not None:
        tol = check_positive_float("tol", tol)
    with np.errstate(over="ignore", invalid="ignore"):
        M = B2 @ A2
    if not np.isfinite(M).all():
        raise RedundancyError("the product of the two maps overflows (entries beyond float64); rescale the weights")
    s = np.linalg.svd(M, compute_uv=False)
    r, gap, used = rank_from_singular_values(s, M.shape, tol)
    return r, s, used, gap


@_v.result(allow=("gap",))
class KRResult(_v.Result):
    """K/R of a block, with the convention spelled out.

    Attributes
    ----------
    K : int
        Output channels read by the next linear map.
    R : int
        Architecture bottleneck width (rank of the output-channel mode).
    ratio : float
        ``K / R``.
    block, convention : str
        Block type and the exact reading of K and R.
    rank_product : int or None
        Numerical rank of the product of the adjacent linear maps (trained weights).
    ratio_numerical : float or None
        ``K / rank_product``.
    tol, gap, singular_values : rank details (``None`` without maps).
    """

    K: int
    R: int
    block: str
    convention: str
    rank_product: int | None = None
    tol: float | None = None
    gap: float | None = None
    singular_values: tuple[float, ...] | None = None

    def __post_init__(self):
        check_int("K", self.K, min_value=1, max_value=2 ** 40)
        check_int("R", self.R, min_value=1, max_value=2 ** 40)

    @property
    def ratio(self) -> float:
        return self.K / self.R

    @property
    def ratio_numerical(self) -> float | None:
        return None if not self.rank_product else self.K / self.rank_product

    def _extra_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ratio_numerical": self.ratio_numerical}

    def __repr__(self) -> str:
        num = "" if self.rank_product is None else f", rank_product={self.rank_product}"
        return f"KRResult(K={self.K}, R={self.R}, K/R={self.ratio:.3g}, block={self.block!r}{num}; {self.convention})"


@validate_params({"block": Instance(str, "string"), "convention": NoneOr(Instance(str, "string"))})
def kr_ratio(K, R, *, maps=None, tol=None, block: str = "generic", convention: str | None = None) -> KRResult:
    """K/R of a block: ``K`` output channels read by the next linear map, ``R`` bottleneck width.

    Parameters
    ----------
    K, R : int
        >= 1.
    maps : (first, second), optional
        The adjacent linear maps around the K-channel interface (modules or weight arrays) from
        trained weights; their product's numerical rank is reported as ``rank_product``.
    tol : float, optional
        Relative rank tolerance for ``rank_product``.
    block : str
        A label (``"bottleneck"``, ``"inverted_residual"``, ``"generic"``...).
    convention : str, optional
        How K and R were read; a default sentence is used when omitted.

    Examples
    --------
    >>> kr_ratio(256, 64, block="bottleneck").ratio
    4.0
    """
    K = check_int("K", K, min_value=1, max_value=2 ** 40)
    R = check_int("R", R, min_value=1, max_value=2 ** 40)
    conv = convention or "K = output channels read by the next linear map, R = bottleneck width"
    fields: dict[str, Any] = {}
    if maps is not None:
        if not isinstance(maps, (tuple, list)) or len(maps) != 2:
            raise RedundancyError(f"maps={_short(maps)} must be a pair (first, second) of adjacent linear maps")
        r, s, used, gap = interface_rank(maps[0], maps[1], tol=tol)
        fields = dict(rank_product=r, tol=used, gap=gap, singular_values=tuple(float(v) for v in s))
    return KRResult(K=K, R=R, block=str(block), convention=conv, **fields)


@_v.validate_params({"c_in": _v.Int(1), "width": _v.Int(1), "c_out": _v.Int(1, 2 ** 40)})
def kr_bottleneck(c_in: int, width: int, c_out: int, *, maps=None, tol=None) -> KRResult:
    """ResNet bottleneck ``c_in -> width -> width -> c_out``: ``K = c_out``, ``R = width``.

    Examples
    --------
    >>> kr_bottleneck(256, 64, 256).ratio
    4.0
    """
    return kr_ratio(c_out, width, maps=maps, tol=tol, block="bottleneck",
                    convention=f"bottleneck: K = block output channels ({c_out}), R = bottleneck width ({width})")


@_v.validate_params({"c_in": _v.Int(1, 2 ** 40), "expansion": _v.Int(1, 2 ** 40), "c_out": _v.Int(1, 2 ** 40),
                     "convention": _v.Choice("expansion", "projection")})
def kr_inverted_residual(c_in: int, expansion: int, c_out: int, *, convention: str = "expansion",
                         maps=None, tol=None) -> KRResult:
    """MobileNetV2 inverted residual ``c_in -> t·c_in (1x1) -> depthwise -> c_out (1x1, linear)``.

    Two readings, always named in the result:

    * ``"expansion"`` (default): K = expanded width ``t·c_in`` (written by the expansion 1x1 and
      read by the depthwise conv), R = ``c_in`` (the rank of the expansion map): ``K/R = t``;
      this is the linear analysis' reading, where the expansion is redundant.
    * ``"projection"``: R = expanded width ``t·c_in`` (the block's widest point), K = ``c_out``:
      ``K/R = c_out/(t·c_in)`` (``1/t`` when ``c_out = c_in``).

    Examples
    --------
    >>> kr_inverted_residual(32, 6, 32).ratio, kr_inverted_residual(32, 6, 32, convention="projection").ratio
    (6.0, 0.16666666666666666)
    """
    t = expansion
    if convention == "expansion":
        return kr_ratio(t * c_in, c_in, maps=maps, tol=tol, block="inverted_residual",
                        convention=f"MobileNetV2 'expansion': K = expanded width t*c_in = {t * c_in}, "
                                   f"R = input width c_in = {c_in} (K/R = t)")
    return kr_ratio(c_out, t * c_in, maps=maps, tol=tol, block="inverted_residual",
                    convention=f"MobileNetV2 'projection': K = projected width c_out = {c_out}, "
                               f"R = expanded width t*c_in = {t * c_in} (K/R = c_out/(t*c_in))")
