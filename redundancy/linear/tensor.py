"""The whole-network weight tensor of a model that is affine in its input.

For a network with linear activations every layer is a linear map, so the composition is affine:

.. math::  f(x) = \\langle \\mathcal W, x \\rangle + b, \\qquad
           \\mathcal W[o, \\ldots] = \\partial f_o / \\partial x .

:func:`whole_network_tensor` computes ``W`` (shape ``(n_outputs, *input_shape)``) as the Jacobian of
the flattened output with respect to the input, with batched vector-Jacobian products
(``torch.func.vjp`` under ``torch.func.vmap``) or batched Jacobian-vector products, whichever needs
fewer products, in float64. While the Jacobian is differentiated, float64 ``conv3d`` calls run as
sums of ``conv2d`` over their depth taps (:mod:`redundancy.linear._fastconv`; same values, a faster
batched backward), and a final ``nn.Linear`` of an ``nn.Sequential`` seeds the products with its
weight rows; ``fast=False`` turns both off.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from redundancy.linear._fastconv import FastConv3dMode
from redundancy._validation import (MAX_COUNT, Array, Bool, Choice, Int, Module, NoneOr, Seed, Shape,
                                    check_array, check_memory, validate_params)
from redundancy.errors import NotLinearError, RedundancyError
import redundancy._validation as _v
from redundancy.linear.affinity import _affinity_check, _check_points, _locate_nonaffine, _run_checked  # noqa: F401

__all__ = ["whole_network_tensor", "WholeNetworkTensor"]

#: Module types that are never affine in their input.
NONLINEAR_MODULES: tuple[type[nn.Module], ...] = tuple(
    getattr(nn, n) for n in (
        "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
        "Sigmoid", "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Softmax",
        "Softmax2d", "LogSoftmax", "LogSigmoid", "Softmin", "Tanhshrink", "Softshrink", "Hardshrink",
        "Threshold", "GLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d", "FractionalMaxPool2d",
        "FractionalMaxPool3d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
        "InstanceNorm3d", "LocalResponseNorm", "MultiheadAttention", "RNN", "LSTM", "GRU",
    ) if hasattr(nn, n)
)

_STOCHASTIC = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@_v.result
class WholeNetworkTensor(_v.Result):
    """Result of :func:`whole_network_tensor`: ``model(x) = <W, x> + bias``.

    Attributes
    ----------
    W : numpy.ndarray
        float64 array of shape ``(n_outputs, *input_shape)``.
    bias : numpy.ndarray
        float64 offset of shape ``(n_outputs,)`` (the model's output at ``x = 0`` for an affine model).
    input_shape, output_shape : tuple of int
        Shapes without the batch dimension; ``n_outputs = prod(output_shape)``.
    point : numpy.ndarray or None
        The point of a local linearisation (``at=``), ``None`` for an exactly affine model.
    method : str
        ``"vjp"`` (batched reverse mode) or ``"jvp"`` (batched forward mode).
    max_check_error : float or None
        Largest relative error of ``<W, x> + b`` against the model's forward pass on the random
        check inputs (``None`` when the check was skipped).
    """

    W: np.ndarray
    bias: np.ndarray
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    point: np.ndarray | None = None
    method: str = "vjp"
    max_check_error: float | None = field(default=None)

    __eq__ = object.__eq__  # identity (arrays have no truth value); hashable by identity
    __hash__ = object.__hash__

    @property
    def n_outputs(self) -> int:
        return int(math.prod(self.output_shape))

    @property
    def matrix(self) -> np.ndarray:
        """``W`` as an ``(n_outputs, prod(input_shape))`` matrix."""
        return self.W.reshape(self.n_outputs, -1)

    def __array__(self, dtype=None, copy=None):
        return self.W if dtype is None else self.W.astype(dtype)

    def apply(self, x: Any) -> np.ndarray:
        """Evaluate ``<W, x> + b`` for ``x`` of shape ``input_shape`` or ``(n, *input_shape)``."""
        x = check_array("x", x)
        if x.shape != self.input_shape and (x.ndim < 1 or x.shape[1:] != self.input_shape):
            raise RedundancyError(
                f"x has shape {x.shape}; expected {self.input_shape} or (n, *{self.input_shape})")
        with np.errstate(over="ignore", invalid="ignore"):
            if x.shape == self.input_shape:
                out = self.matrix @ x.reshape(-1) + self.bias
            else:
                out = x.reshape(x.shape[0], -1) @ self.matrix.T + self.bias
        if not np.isfinite(out).all():
            raise RedundancyError(f"<W, x> + b overflows float64 for x (largest |x| entry "
                                  f"{float(np.abs(x).max()):.3g}); rescale x")
        return out

    def __repr__(self) -> str:
        kind = "affine" if self.point is None else "linearised at a point"
        err = "" if self.max_check_error is None else f", check error {self.max_check_error:.1e}"
        return (f"WholeNetworkTensor(W shape={self.W.shape}, ||W||_F={np.linalg.norm(self.W):.4g}, "
                f"{kind}, method={self.method!r}{err})")


@_v.validate_params({"model": _v.Module(materialised=False)})
def find_nonlinear_module(model: nn.Module) -> tuple[str, str] | None:
    """Return ``(name, reason)`` of the first submodule that is structurally non-linear, else ``None``.

    Non-linear types (:data:`NONLINEAR_MODULES`), BatchNorm in training mode (its output depends on
    the batch) and active dropout count as non-linear.
    """
    for name, mod in model.named_modules():
        label = name or "<root>"
        if isinstance(mod, NONLINEAR_MODULES):
            return label, f"{type(mod).__name__} is not affine"
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.training:
            return label, f"{type(mod).__name__} is in training mode (batch statistics); call model.eval()"
        if isinstance(mod, _STOCHASTIC) and mod.training and mod.p > 0:
            return label, f"{type(mod).__name__}(p={mod.p}) is active in training mode; call model.eval()"
    return None


def _linear_head(net: nn.Module, output_shape) -> tuple[nn.Module, nn.Linear] | None:
    """``(prefix, linear)`` when ``net`` is a plain ``nn.Sequential`` ending in an ``nn.Linear``
    (no hooks on either) whose output is the whole output, else ``None``."""
    if type(net) is not nn.Sequential or len(net) < 2:
        return None
    lin = net[-1]
    if type(lin) is not nn.Linear or tuple(output_shape) != (lin.out_features,):
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in (net, lin)):
        return None
    if lin.weight.dtype != torch.float64:
        return None
    return net[:-1], lin


@validate_params({"model": Module(finite=True), "input_shape": Shape(1, 5), "at": NoneOr(Array()),
                  "method": Choice("auto", "vjp", "jvp"), "check": Bool(), "chunk_size": NoneOr(Int(1, MAX_COUNT)),
                  "seed": Seed(), "fast": Bool()})
def whole_network_tensor(model: nn.Module, input_shape, *, at: Any = None, method: str = "auto",
                         check: bool = True, chunk_size: int | None = None,
                         seed: int = 0, fast: bool = True) -> WholeNetworkTensor:
    """Whole-network weight tensor ``W`` and offset ``b`` with ``model(x) = <W, x> + b``.

    For a model that is affine in its input, ``W[o] = ∂ f_o / ∂ x`` is the same at every point and
    ``b = f(0)``. The Jacobian is computed in float64 on a deep copy of the model (the original is
    never modified) by batched vector-Jacobian products (``torch.func.vjp`` vmapped over the rows of the
    identity, ``method="vjp"``) or batched Jacobian-vector products (``method="jvp"``);
    ``"auto"`` takes whichever needs fewer products (``min(n_outputs, n_inputs)``).

    Parameters
    ----------
    model : torch.nn.Module
        Conv1d/2d/3d (any stride, padding, dilation, groups), AvgPool, Linear, Flatten, BatchNorm
        in eval mode, Identity, residual additions, channel concatenation, or anything else that
        is affine in its input.
    input_shape : tuple of int
        Shape of one example without the batch dimension, e.g. ``(C, H, W)``.
    at : array-like, optional
        Explicit **local linearisation**: if given (shape ``input_shape``), the model may be
        non-linear and the result is its first-order Taylor expansion at ``x0 = at``:
        ``W = J(x0)``, ``b = f(x0) - <W, x0>``. Without it a non-linear model raises
        :class:`~redundancy.errors.NotLinearError`.
    method : {"auto", "vjp", "jvp"}
        How the Jacobian is assembled.
    check : bool
        For an affine model, verify ``<W, x> + b == model(x)`` on nine independent random inputs, each
        evaluated alone (batch of one, so nothing can cancel across the batch): standard normal,
        all-positive, all-negative, shifted, at scales 10³ and 10⁻³, and far from the origin (10⁸ in a
        random and in an all-negative direction, 10¹²; skipped where the model's output overflows), so
        that a model affine only near the origin (``|l(x) + 10⁶|``) is caught (relative tolerance 1e-8);
        a failure raises ``NotLinearError`` naming the deepest offending submodule.
    chunk_size : int, optional
        Number of products vmapped at once (memory control); ``None`` does all at once.
    seed : int
        Seed of the random check inputs, in ``[0, 2**63 - 1]``.
    fast : bool
        Two shortcuts that give the same values faster (see
        ``benchmarks/bench_whole_network_tensor.py``): while the Jacobian is differentiated, every
        float64 ``conv3d`` runs as a sum of ``conv2d`` over its depth taps (torch's batched float64
        ``conv3d`` backward is about twice slower); and for ``method="vjp"`` on a plain
        ``nn.Sequential`` ending in an ``nn.Linear`` ``A`` (no hooks), ``J = A J_prefix`` is
        obtained by seeding the prefix's vector-Jacobian products with the rows of ``A`` instead of
        multiplying the identity through ``A``. The affinity check always uses the model's own
        forward pass. ``False`` differentiates the whole model's ops as they are.

    Returns
    -------
    WholeNetworkTensor
        ``.W`` (shape ``(n_outputs, *input_shape)``), ``.bias``, shapes, ``.apply(x)``.

    Raises
    ------
    NotLinearError
        A submodule is not affine (ReLU, max-pool, BatchNorm in train mode, a functional
        non-linearity inside ``forward``...) and ``at`` was not given.
    RedundancyError
        ``model`` is not a module, ``input_shape`` is malformed, or the model cannot run on it.

    Examples
    --------
    >>> import torch
    >>> from redundancy import whole_network_tensor
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(12, 1))
    >>> res = whole_network_tensor(net, (1, 8))
    >>> res.W.shape
    (1, 1, 8)
    >>> x = torch.randn(1, 8, dtype=torch.float64)
    >>> bool(abs(res.apply(x.numpy())[0] - net.double()(x[None]).item()) < 1e-10)
    True
    """
    linearise = at is not None
    if not linearise:
        _require_structurally_affine(model)
    # Always a converted deep copy: the caller's model keeps its dtype and state even if its forward
    # mutates itself (a custom module, or a training-mode forward allowed with at=).
    net = copy.deepcopy(model).to(torch.float64)
    x0 = _base_point(at, input_shape)
    y0, output_shape = _output_at(net, x0, input_shape)
    n_in, n_out = math.prod(input_shape), math.prod(output_shape)
    if method == "auto":
        method = "vjp" if n_out <= n_in else "jvp"
    # memory before allocation: W (n_out x n_in) and the identity seeds of the products
    check_memory(f"W of shape ({n_out}, *{input_shape})", n_out * n_in)
    check_memory("the Jacobian's seed matrix", (n_out if method == "vjp" else n_in) ** 2)
    jac = _differentiate(net, x0, input_shape, output_shape, method, chunk_size, fast)
    W = jac.detach().numpy().copy()
    # products in torch (one thread pool with the Jacobian; numpy's BLAS pool would compete)
    jac_flat = jac.detach().reshape(n_out, -1)
    bias = y0.detach().reshape(-1).numpy() - (jac_flat @ x0.reshape(-1)).numpy()
    max_err = None
    if check and not linearise:
        max_err = _affinity_check(net, jac_flat, bias, input_shape, seed)
    return WholeNetworkTensor(W=W, bias=bias, input_shape=input_shape, output_shape=output_shape,
                              point=x0.numpy().copy() if linearise else None, method=method,
                              max_check_error=max_err)


def _require_structurally_affine(model: nn.Module) -> None:
    bad = find_nonlinear_module(model)
    if bad is not None:
        raise NotLinearError(
            f"model is not linear in its input: submodule '{bad[0]}': {bad[1]}. "
            "whole_network_tensor needs an affine model; pass at=x0 for a local linearisation",
            module_name=bad[0])


def _base_point(at: Any, input_shape: tuple[int, ...]) -> torch.Tensor:
    """``at`` as a tensor of ``input_shape`` (a local linearisation), else the origin in float64."""
    if at is None:
        return torch.zeros(input_shape, dtype=torch.float64)
    x0 = torch.as_tensor(at)
    if tuple(x0.shape) != input_shape:
        raise RedundancyError(f"at has shape {tuple(x0.shape)}; it must have input_shape={input_shape}")
    return x0


def _output_at(net: nn.Module, x0: torch.Tensor, input_shape) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The model's (finite) output at ``x0`` and its per-example shape."""
    with torch.no_grad():
        y0 = _run_checked(net, x0[None], input_shape)
    if not isinstance(y0, torch.Tensor) or y0.shape[:1] != (1,):
        raise RedundancyError("model must return one tensor with the batch dimension first; "
                              f"got {type(y0).__name__}")
    if not bool(torch.isfinite(y0).all()):
        raise RedundancyError("the model's output at x0 is not finite (NaN or inf); "
                              "whole_network_tensor needs a model with finite outputs")
    return y0, tuple(y0.shape[1:])


def _run_one(module: nn.Module, x: torch.Tensor, fast: bool) -> torch.Tensor:
    if fast:
        with FastConv3dMode():
            return module(x.unsqueeze(0))
    return module(x.unsqueeze(0))


def _vjp_rows(net, x0, n_out, input_shape, output_shape, chunk_size, fast) -> torch.Tensor:
    """Rows of the Jacobian by vmapped vector-Jacobian products (``J = A J_prefix`` for a Linear head)."""
    head = _linear_head(net, output_shape) if fast else None
    if head is not None:
        # rows of J = A J_prefix: the vjp of the prefix with the Linear's weight rows as
        # cotangents (the vjp of the head with identity cotangents is a product with I).
        prefix, lin = head
        out_pre, vjp_fn = torch.func.vjp(lambda x: _run_one(prefix, x, fast), x0)
        if tuple(out_pre.shape) == (1, lin.in_features):
            seeds = lin.weight.detach().reshape(n_out, 1, lin.in_features)
            (jac,) = torch.func.vmap(vjp_fn, chunk_size=chunk_size)(seeds)
            return jac.reshape(n_out, *input_shape)
    _, vjp_fn = torch.func.vjp(lambda x: _run_one(net, x, fast).reshape(-1), x0)
    (jac,) = torch.func.vmap(vjp_fn, chunk_size=chunk_size)(torch.eye(n_out, dtype=torch.float64))
    return jac.reshape(n_out, *input_shape)


def _jvp_columns(net, x0, n_out, input_shape, chunk_size, fast) -> torch.Tensor:
    """Columns of the Jacobian by vmapped Jacobian-vector products."""
    n_in = math.prod(input_shape)
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *input_shape)

    def f(x: torch.Tensor) -> torch.Tensor:
        return _run_one(net, x, fast).reshape(-1)

    cols = torch.func.vmap(lambda v: torch.func.jvp(f, (x0,), (v,))[1], chunk_size=chunk_size)(eye)
    return cols.T.reshape(n_out, *input_shape)


def _differentiate(net, x0, input_shape, output_shape, method, chunk_size, fast) -> torch.Tensor:
    """The (finite) Jacobian of ``net`` at ``x0``, shape ``(n_outputs, *input_shape)``."""
    n_out = math.prod(output_shape)
    try:
        with torch.enable_grad():
            if method == "vjp":
                jac = _vjp_rows(net, x0, n_out, input_shape, output_shape, chunk_size, fast)
            else:
                jac = _jvp_columns(net, x0, n_out, input_shape, chunk_size, fast)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.func refuses e.g. in-place updates of captured tensors
        raise RedundancyError(
            f"the model's forward cannot be differentiated with torch.func ({_v._first_line(exc)}); "
            "whole_network_tensor needs a forward without in-place updates of module state") from exc
    if not bool(torch.isfinite(jac).all()):
        raise RedundancyError("the Jacobian of the model is not finite (NaN or inf: an overflow inside the "
                              "model?); W would be meaningless")
    return jac
