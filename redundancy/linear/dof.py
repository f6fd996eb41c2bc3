"""Degrees of freedom (dof) of a linear model: closed form where proved, Jacobian rank otherwise.

The dof of a model that is affine in its input, ``f(x) = <W, x> + b``, is the dimension of the set
of pairs ``(W, b)`` its parameters can reach: the generic rank of ``∂(vec W, b)/∂θ`` (θ = every
parameter, shared tensors once). The offset enters as part of the map's output, so a free final
bias adds ``n_outputs`` and biases that only shift ``b`` add nothing more. The naive count is the
number of scalar parameters; ``naive - dof`` is the redundancy the parameter count hides.

:func:`degrees_of_freedom` takes a torch module (numerical rank, :mod:`redundancy.linear.dof_numerical`),
a :class:`~redundancy.linear.spec.LinearCNN` or a :class:`~redundancy.linear.statmodel.BasicCNN` (closed form of
:mod:`redundancy.linear.dof_closed` when the architecture is one conv-like layer, optionally wrapped in
bias-free 1x1 channel maps, then optional pooling and a dense layer, **and** the patch map is
injective on the raw input; the numerical rank otherwise, with both numbers reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from redundancy._validation import check_choice, check_module, check_shape
from redundancy.counts import parameter_count
from redundancy.linear.dof_closed import (cp_closed_form_applies, cp_dof, depthwise_separable_dof, matrix_rank_dof,
                         patch_injective, patch_matrix_1d, tucker_dof, tucker_effective_ranks,
                         vanilla_dof)
from redundancy.linear.dof_numerical import jacobian_rank
from redundancy.errors import RedundancyError
from redundancy.linear.spec import AvgPool, Conv, CPConv, Dense, LinearCNN, TuckerConv
from redundancy.linear.statmodel import BasicCNN
import redundancy._validation as _v

__all__ = ["degrees_of_freedom", "DofResult"]


@_v.result
class ClosedForm(_v.Result):
    """A closed form matched to a spec: ``dof_patch`` on the patch tensor, and whether the raw-input
    tensor has the same dof (``raw_injective``: every per-mode patch matrix has full row rank)."""

    structure: str
    dof_patch: int
    formula: str
    raw_injective: bool
    offset_dof: int


@_v.result(allow=("gap",))
class DofResult(_v.Result):
    """Degrees of freedom of a linear model.

    Attributes
    ----------
    dof : int
        The dof of ``(W, b)`` on the raw input (the number the bounds use).
    gap : float or None
        Singular-value ratio ``s_r / s_{r+1}`` at the rank cut (numerical), ``None`` for a closed form.
    method : str
        ``"closed"`` or ``"numerical"``.
    naive : int
        Deduplicated parameter count.
    structure : str or None
        ``"vanilla"``, ``"tucker"``, ``"cp"``, ``"depthwise_separable"`` when a closed form matched.
    dof_patch : int or None
        Closed form on the patch tensor (``None`` without a closed form).
    dof_numerical : int or None
        Numerical rank on the raw input (``None`` if not computed).
    raw_equals_patch : bool or None
        Whether the patch map is injective, so that the closed form holds on the raw input.
    formula, input_shape, tol, n_rows, seed, at, decomposition :
        How the number was obtained.
    """

    dof: int
    gap: float | None
    method: str
    naive: int
    structure: str | None = None
    dof_patch: int | None = None
    dof_numerical: int | None = None
    raw_equals_patch: bool | None = None
    formula: str | None = None
    input_shape: tuple[int, ...] | None = None
    tol: float | None = None
    n_rows: int | None = None
    seed: Any = None
    at: str = "random"
    decomposition: str | None = None

    @property
    def ratio(self) -> float:
        """``naive / dof`` (``inf`` when dof is 0)."""
        return self.naive / self.dof if self.dof else math.inf

    @property
    def excess(self) -> int:
        """``naive - dof``: parameters that buy no new reachable ``(W, b)``."""
        return self.naive - self.dof

    def _extra_dict(self) -> dict[str, Any]:
        # ``seed`` is replaced in place (to_dict keeps the key's position): a generator becomes its repr
        seed = self.seed if isinstance(self.seed, (int, type(None))) else repr(self.seed)
        return {"seed": seed, "ratio": self.ratio, "excess": self.excess}

    def __repr__(self) -> str:
        gap = "" if self.gap is None else f", gap={self.gap:.2e}"
        extra = ""
        if self.dof_patch is not None and self.dof_patch != self.dof:
            extra = f", dof_patch={self.dof_patch}"
        s = f", structure={self.structure!r}" if self.structure else ""
        return (f"DofResult(dof={self.dof}, naive={self.naive}, ratio={self.ratio:.3g}, "
                f"method={self.method!r}{s}{extra}{gap})")


@_v.validate_params({"net": _v.Instance(BasicCNN, "BasicCNN")})
def spec_from_basic(net: BasicCNN) -> LinearCNN:
    """The :class:`LinearCNN` of a :class:`BasicCNN`: ``Conv(K, l, s) → AvgPool(q) → Dense(1)``."""
    layers: list = [Conv(net.K, net.kernel, stride=net.stride)]
    if any(q > 1 for q in net.pool):
        layers.append(AvgPool(net.pool))
    layers.append(Dense(1))
    return LinearCNN((1, *net.input_shape), layers)


def _is_pointwise(lay, kw) -> bool:
    return (isinstance(lay, Conv) and all(k == 1 for k in kw["kernel_size"]) and all(s == 1 for s in kw["stride"])
            and all(p == 0 for p in kw["padding"]) and kw["groups"] == 1 and not kw["bias"])


@_v.validate_params({"spec": _v.Instance((LinearCNN, BasicCNN), "LinearCNN or BasicCNN")})
def closed_form(spec: LinearCNN | BasicCNN) -> tuple[ClosedForm | None, str]:
    """Match ``spec`` to a closed form: ``(ClosedForm, "")`` or ``(None, reason)``.

    Matched pattern: bias-free 1x1 convs (any number), one bias-free conv-like layer (plain,
    depthwise, Tucker or CP), bias-free 1x1 convs, at most one average pool, at most one dense
    layer (its bias adds ``n_outputs`` to the dof).
    """
    if isinstance(spec, BasicCNN):
        spec = spec_from_basic(spec)
    m = _match_pattern(spec)
    if isinstance(m, str):
        return None, m
    ckw, dense, pre, post = m["ckw"], m["dense"], m["pre"], m["post"]
    C, l, K = spec.input_shape[0], ckw["kernel_size"], ckw["out_channels"]
    w_in, w_out = min([C] + pre), min([K] + post)
    if dense is not None:
        n = dense["out_features"] * math.prod(m["sp_out"])
        offset = dense["out_features"] if dense["bias"] else 0
    else:
        n, offset = (post[-1] if post else K), 0
    inj = patch_injective(spec.input_shape[1:], l, ckw["stride"], padding=ckw["padding"],
                          dilation=ckw["dilation"], pool=m["pool_q"] or 1, pool_stride=m["pool_s"])
    sizes = dict(C=C, l=l, K=K, n=n, w_in=w_in, w_out=w_out, pre=pre, post=post, dense=dense)
    core = m["core"]
    if isinstance(core, Conv) and ckw["groups"] == 1:
        found = _plain_conv_dof(**sizes)
    elif isinstance(core, Conv) and ckw["groups"] == ckw["in_channels"] == K:
        found = _depthwise_dof(**sizes)
    elif isinstance(core, Conv):
        found = f"grouped conv (groups={ckw['groups']}) other than depthwise"
    elif isinstance(core, TuckerConv):
        found = _tucker_conv_dof(ckw, **sizes)
    else:
        found = _cp_conv_dof(ckw, **sizes)
    if isinstance(found, str):
        return None, found
    structure, dof, formula = found
    return ClosedForm(structure=structure, dof_patch=int(dof + offset), formula=formula,
                      raw_injective=bool(inj), offset_dof=int(offset)), ""


def _match_pattern(spec: LinearCNN) -> dict | str:
    """The parts of the closed-form pattern (1x1 convs, one conv, 1x1 convs, pool, dense), or why not."""
    items = spec._normalised()
    end = 0
    while end < len(items) and isinstance(items[end][0], (Conv, TuckerConv, CPConv)):
        end += 1
    if end == 0:
        return "no conv layer comes first"
    j = next((k for k in range(end) if not _is_pointwise(*items[k][:2])), 0)
    if not all(_is_pointwise(*items[k][:2]) for k in range(j + 1, end)):
        return "more than one spatial conv layer (only 1x1 channel maps may surround it)"
    core, ckw, _ = items[j]
    if ckw["bias"]:
        return "the conv layer has a bias (the offset is then handled numerically)"
    i = end
    pool_q, pool_s = None, None
    if i < len(items) and isinstance(items[i][0], AvgPool):
        pool_q, pool_s = items[i][1]["kernel_size"], items[i][1]["stride"]
        i += 1
    dense = None
    if i < len(items) and isinstance(items[i][0], Dense):
        dense = items[i][1]
        i += 1
    if i != len(items):
        return f"layer {i} ({type(items[i][0]).__name__}) is outside the closed-form pattern"
    sp_out = (items[-1][2][1:] if dense is None else (items[-2][2][1:] if len(items) > 1 else ()))
    return dict(core=core, ckw=ckw, dense=dense, pool_q=pool_q, pool_s=pool_s, sp_out=sp_out,
                pre=[items[k][1]["out_channels"] for k in range(j)],
                post=[items[k][1]["out_channels"] for k in range(j + 1, end)])


def _plain_conv_dof(*, C, l, K, n, w_in, w_out, pre, post, dense):
    L = math.prod(l)
    if not pre and not post:
        return ("vanilla", vanilla_dof(C * L, n, K),
                f"r(L + P - r), r = min(K, L, P) = {min(K, C * L, n)}; L = {C * L}, P = {n}")
    shape, ranks = (C, *l, n), (w_in, *l, w_out)
    return "tucker", tucker_dof(shape, ranks), f"Tucker{shape} ranks {tucker_effective_ranks(shape, ranks)}"


def _depthwise_dof(*, C, l, K, n, w_in, w_out, pre, post, dense):
    L = math.prod(l)
    w_o = min(w_out, n)
    if dense is None and not post:
        # the output factor is the identity: W[c, t, r] = E[c, r] D[t, r]
        if not pre:
            return "depthwise_separable", C * L, f"C·L = {C}·{L} (depthwise kernels only)"
        if w_in >= min(C, K):
            return "depthwise_separable", K * (C + L - 1), f"R(C + L - 1), R = {K}, C = {C}, L = {L}"
        return "depthwise conv after a channel bottleneck narrower than its input"
    if not pre:
        return ("depthwise_separable", depthwise_separable_dof(C, L, n, w_o),
                f"C(L - 1) + w(n + C - w), C = {C}, L = {L}, n = {n}, w = {min(w_o, C)}")
    if w_in >= min(C, K) and w_o >= min(n, K) and cp_closed_form_applies((C, L, n), K):
        return "depthwise_separable", cp_dof((C, L, n), K), f"CP rank {K} in {(C, L, n)}: R(sum n_i - M + 1)"
    if w_in >= min(C, K) and K >= min(C * L, C * w_o, L * w_o):
        ranks = (C, L, w_o)
        return ("depthwise_separable", tucker_dof((C, L, n), ranks),
                f"R > K collapse: Tucker{(C, L, n)} ranks {tucker_effective_ranks((C, L, n), ranks)}")
    return "inverted residual in a regime without a proved closed form"


def _tucker_conv_dof(ckw, *, C, l, K, n, w_in, w_out, pre, post, dense):
    r_out, r_in = ckw["ranks"]
    sr = ckw["spatial_ranks"] or l
    shape, ranks = (C, *l, n), (min(r_in, w_in), *sr, min(r_out, w_out))
    return "tucker", tucker_dof(shape, ranks), f"Tucker{shape} ranks {tucker_effective_ranks(shape, ranks)}"


def _cp_conv_dof(ckw, *, C, l, K, n, w_in, w_out, pre, post, dense):
    R = ckw["rank"]
    shape = (C, *l, n)
    if w_in < min(C, R) or w_out < min(n, R):
        return f"CP rank R={R} exceeds a channel bottleneck (R > K): the factor is constrained"
    if not cp_closed_form_applies(shape, R):
        return f"CP rank R={R} outside Kruskal's condition for shape {shape}"
    return "cp", cp_dof(shape, R), f"CP rank {R} in {shape}: R(sum n_i - M + 1)"


@_v.validate_params({"spec": _v.Instance((LinearCNN, BasicCNN), "LinearCNN or BasicCNN"),
                     "method": _v.Choice("auto", "closed", "numerical"), "progress": _v.Bool(),
                     "seed": _v.Seed(allow_none=True, allow_generator=True)})
def degrees_of_freedom_spec(spec: LinearCNN | BasicCNN, *, method: str = "auto", tol: float | None = None,
                            seed: Any = 0, progress: bool = False) -> DofResult:
    """Degrees of freedom of a :class:`LinearCNN` / :class:`BasicCNN` (see :func:`degrees_of_freedom`)."""
    if isinstance(spec, BasicCNN):
        spec = spec_from_basic(spec)
    naive = spec.naive_parameter_count()
    cf, reason = closed_form(spec)
    if method == "closed" and cf is None:
        raise RedundancyError(f"method='closed' is not available for this spec: {reason}; use method='auto'")
    common = dict(naive=naive, input_shape=spec.input_shape, seed=seed)
    cf_fields = {} if cf is None else dict(structure=cf.structure, dof_patch=cf.dof_patch,
                                           raw_equals_patch=cf.raw_injective, formula=cf.formula)
    if method == "closed" or (method == "auto" and cf is not None and cf.raw_injective):
        return DofResult(dof=cf.dof_patch, gap=None, method="closed", **cf_fields, **common)
    net = spec.build(seed=0)
    num = jacobian_rank(net, spec.input_shape, tol=tol, seed=seed, progress=progress)
    return DofResult(dof=num.rank, gap=num.gap, method="numerical", dof_numerical=num.rank, tol=num.tol,
                     n_rows=num.n_rows, decomposition=num.decomposition, **cf_fields, **common)


@_v.validate_params({"method": _v.Choice("auto", "closed", "numerical"), "at": _v.Choice("random", "model"),
                     "progress": _v.Bool(), "seed": _v.Seed(allow_none=True, allow_generator=True)})
def degrees_of_freedom(model, input_shape=None, *, method: str = "auto", tol: float | None = None,
                       seed: Any = 0, progress: bool = False, at: str = "random") -> DofResult:
    """Degrees of freedom of a linear model: the dimension of the reachable ``(W, b)``.

    .. math::  \\mathrm{dof} = \\operatorname{rank}\\,\\partial(\\mathrm{vec}\\,W, b)/\\partial\\theta
               \\text{ at a generic } \\theta

    Parameters
    ----------
    model : torch.nn.Module, LinearCNN or BasicCNN
        An affine model (no activations; BatchNorm in eval mode, residual additions, shared
        parameters are fine), or a spec.
    input_shape : tuple of int
        One example's shape (required for a module; checked against a spec's own).
    method : {"auto", "closed", "numerical"}
        ``"auto"``: a spec's closed form when it holds on the raw input, else the numerical rank.
        ``"closed"`` forces the patch-tensor closed form (specs only; ``raw_equals_patch`` says
        whether it is the raw-input dof). ``"numerical"`` forces the Jacobian rank.
    tol : float, optional
        Relative rank tolerance (default ``100·max(m, n)·eps``).
    seed : int or numpy.random.Generator
        Random point and random measurements.
    progress : bool
        tqdm progress over the Jacobian rows.
    at : {"random", "model"}
        Rank at a random point (generic rank, default) or at the module's own weights.

    Returns
    -------
    DofResult
        ``.dof``, ``.gap``, ``.method``, ``.naive``, ``.ratio`` (naive/dof), ``.to_dict()``.

    Raises
    ------
    NotLinearError
        The model is not affine in its input.
    RedundancyError
        Bad arguments (method, tol, shapes), or ``method="closed"`` without a closed form.

    Examples
    --------
    >>> from redundancy.linear.spec import LinearCNN, TuckerConv, Dense
    >>> spec = LinearCNN((8, 12, 12), [TuckerConv(32, 3, ranks=(4, 4), stride=3), Dense(1)])
    >>> res = degrees_of_freedom(spec)
    >>> res.dof, res.naive, res.method
    (208, 816, 'closed')
    >>> degrees_of_freedom(spec, method="numerical").dof
    208
    """
    check_choice("method", method, ("auto", "closed", "numerical"))
    check_choice("at", at, ("random", "model"))
    if isinstance(model, (LinearCNN, BasicCNN)):
        own = model.input_shape if isinstance(model, LinearCNN) else (1, *model.input_shape)
        if input_shape is not None and check_shape("input_shape", input_shape) != tuple(own):
            raise RedundancyError(f"input_shape={tuple(input_shape)} differs from the spec's own {tuple(own)}")
        return degrees_of_freedom_spec(model, method=method, tol=tol, seed=seed, progress=progress)
    _v.check_materialised("model", model)
    if input_shape is None:
        raise RedundancyError("input_shape=None is not allowed for a torch module; give one example's shape, e.g. (C, H, W)")
    if method == "closed":
        raise RedundancyError("method='closed' needs a LinearCNN or BasicCNN spec; a torch module only has "
                              "method='numerical' (or 'auto')")
    num = jacobian_rank(model, input_shape, tol=tol, seed=seed, progress=progress, at=at)
    return DofResult(dof=num.rank, gap=num.gap, method="numerical", naive=parameter_count(model),
                     dof_numerical=num.rank, input_shape=tuple(input_shape), tol=num.tol, n_rows=num.n_rows,
                     seed=seed, at=at, decomposition=num.decomposition)

