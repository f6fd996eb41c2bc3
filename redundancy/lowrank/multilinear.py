"""Multilinear rank of the whole-network tensor of a (Tucker-compressed) linear CNN.

For a linear CNN whose first layer is a convolution with kernel ``K₁`` (``K`` output channels,
``C`` input channels, spatial size ``l``), stride ``s``, padding ``p`` and dilation ``δ``, and whose
remaining layers map the first layer's output ``z`` linearly to ``y`` with Jacobian
``H[n, o, j] = ∂y_n/∂z[o, j]``, the output is ``y_n = <W̃[n], X̃>`` with the patch tensor
``X̃[c, t, j] = x[c, j s − p + δ t]`` and

.. math::  \\widetilde{\\mathcal W}[n, c, t, j] = \\sum_{o=1}^{K} K_1[o, c, t]\\, H[n, o, j].

If ``K₁ = G ×_o U_out ×_c U_in (×_t U_i)`` has Tucker ranks ``(R_out, R_in, r_1..r_N)`` then
``W̃ = G ×_c U_in ×_t U_i ×_{(n,j)} (H U_out)``: a Tucker tensor with modes ``(n, j)`` (size
``n_out·P``), ``c`` (``C``) and ``t_i`` (``l_i``) whose multilinear rank is at most
``(R_out, R_in, r_1..r_N)``. ``K`` has disappeared: the set of such ``W̃`` (and its dimension, the
dof ``Π R + Σ_i (I_i R_i − R_i²)``) is the same for every ``K ≥ R_out``.

:func:`multilinear_rank_check` computes ``W̃`` from the model's forward passes only (autograd
Jacobians of the first layer and of the rest; no decomposition code) and the ranks by SVD of its
unfoldings, and verifies ``M^T vec W̃ = vec W`` against :func:`redundancy.whole_network_tensor`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from redundancy._validation import check_module, check_positive_float, check_shape
from redundancy.counts import parameter_count
from redundancy.linear.dof_closed import tucker_dof
from redundancy.errors import RankError, UnsupportedLayerError
from redundancy.linear.tensor import whole_network_tensor
from redundancy.lowrank.decompose import unfold
import redundancy._validation as _v



@_v.validate_params({"tensor": _v.Array(min_ndim=1), "rtol": _v.Float(0.0, 1.0, lo_open=True)})
def multilinear_rank(tensor: Any, *, rtol: float = 1e-10) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Ranks of every mode-``n`` unfolding (singular values above ``rtol · σ_max``) and the gap
    ``σ_r / σ_{r+1}`` at each cut (``inf`` when nothing was cut).

    Examples
    --------
    >>> import numpy as np
    >>> multilinear_rank(np.einsum("i,j,k->ijk", *[np.arange(1.0, n + 1) for n in (2, 3, 4)]))[0]
    (1, 1, 1)
    """
    return _multilinear_rank(tensor, rtol)


def _multilinear_rank(tensor, rtol):
    arr = np.asarray(tensor, dtype=np.float64)
    ranks, gaps = [], []
    for m in range(arr.ndim):
        s = np.linalg.svd(unfold(arr, m), compute_uv=False)
        r = int(np.sum(s > rtol * s[0])) if s[0] > 0 else 0
        ranks.append(r)
        gaps.append(float(s[r - 1] / s[r]) if 0 < r < len(s) and s[r] > 0 else float("inf"))
    return tuple(ranks), tuple(gaps)


def _geometry(layer: nn.Module):
    """(C, K, kernel, stride, left padding, dilation, declared ranks or None) of a conv-like first layer."""
    from redundancy.lowrank.chains import CompressedLayer
    from redundancy.linear.layers import CPConvLayer, TuckerConvLayer, _FactorisedConv

    ranks = None
    conv = layer
    if isinstance(layer, CompressedLayer) and isinstance(layer.core, nn.modules.conv._ConvNd):
        conv, c, k = layer.core, layer.reduce.in_channels, layer.restore.out_channels
        if layer.method == "tucker":  # per-group ranks of a grouped chain add up over the groups
            ranks = tuple(layer.groups * r for r in layer.ranks) + tuple(conv.kernel_size)
        else:  # CP rank R per group: every mode rank <= g R (spatial <= min(l_i, g R))
            r = layer.groups * layer.ranks[0]
            ranks = (r, r) + tuple(min(l, r) for l in conv.kernel_size)
    elif isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        c, k = layer.in_channels, layer.out_channels
    elif isinstance(layer, _FactorisedConv):
        c, k = layer.in_channels, layer.out_channels
        if isinstance(layer, TuckerConvLayer):
            ranks = tuple(layer.ranks) + tuple(layer.spatial_ranks or layer.kernel_size)
        elif isinstance(layer, CPConvLayer):
            ranks = (layer.rank, layer.rank) + tuple(min(l, layer.rank) for l in layer.kernel_size)
    else:
        raise UnsupportedLayerError(
            f"the first module is a {type(layer).__name__}; multilinear_rank_check needs an nn.Sequential "
            "whose first module is a Conv1d/2d/3d, a TuckerConv/CPConv or a compressed conv chain")
    ks, st, dl = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
    pad = conv.padding
    if isinstance(pad, str):
        pad = tuple((d * (l - 1)) // 2 for d, l in zip(dl, ks)) if pad == "same" else (0,) * len(ks)
    return c, k, ks, st, tuple(pad), dl, ranks


@_v.result(allow=("gaps",))
class MultilinearRankCheck(_v.Result):
    """Result of :func:`multilinear_rank_check`.

    Attributes
    ----------
    labels, sizes : tuple
        The modes of ``W̃``: ``"outputs x positions"`` (``n_out·P``), ``"input channels"`` (``C``),
        ``"kernel mode i"`` (``l_i``).
    expected, observed : tuple of int
        The ranks to check against ``(R_out, R_in, r_1..)`` and the ranks found by SVD.
    gaps : tuple of float
        ``σ_r / σ_{r+1}`` at each cut (how clear the rank was).
    holds : bool
        ``observed ≤ expected`` in every mode.
    dof : int
        :func:`redundancy.linear.dof_closed.tucker_dof` of ``W̃`` at the observed ranks: the dimension of the set of tensors of
        these mode sizes and multilinear ranks. It involves no ``K``. It is the model's dof when
        the layers after the first are a free linear map (a dense head) and an upper bound when
        they are constrained (e.g. pooling before the dense layer).
    K, naive_parameter_count : int
        Output channels of the first layer and the model's parameter count (which does grow with K).
    patch_error : float
        Relative error of ``Mᵀ vec W̃`` against the model's own whole-network tensor.
    dof_numerical : int or None
        With ``numerical_dof=True``: the model's dof on the raw input by the Jacobian rank of
        :func:`redundancy.linear.dof.degrees_of_freedom` (an independent route; it may be below ``dof``
        when overlapping patches make the raw tensor lose dimensions, or pooling constrains H).
    """

    input_shape: tuple[int, ...]
    labels: tuple[str, ...]
    sizes: tuple[int, ...]
    expected: tuple[int, ...]
    observed: tuple[int, ...]
    gaps: tuple[float, ...]
    holds: bool
    dof: int
    K: int
    naive_parameter_count: int
    patch_error: float
    dof_numerical: int | None = None

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"mode": self.labels, "size": self.sizes, "expected": self.expected,
                             "observed": self.observed, "gap": self.gaps})

    def __repr__(self) -> str:
        return (f"MultilinearRankCheck(holds={self.holds}, observed={self.observed}, expected<={self.expected}, "
                f"dof={self.dof}, K={self.K}, naive={self.naive_parameter_count}, patch_error={self.patch_error:.1e})")


def _rank_seq(name, value):
    if not isinstance(value, (tuple, list)):
        raise RankError(f"{name}={_v._short(value)} must be a sequence of positive integers, one per mode")
    return value


@_v.validate_params({"ranks": _v.NoneOr(_v.Check(_rank_seq)), "numerical_dof": _v.Bool()})
def multilinear_rank_check(model: nn.Module, input_shape: Any, ranks: Any = None, *,
                           rtol: float = 1e-10, numerical_dof: bool = False) -> MultilinearRankCheck:
    """Check that the whole-network tensor of a linear CNN has multilinear rank ≤ the first layer's Tucker ranks.

    Parameters
    ----------
    model : torch.nn.Sequential
        A linear (affine) CNN whose first module is the (compressed) convolution: a plain
        ``Conv1d/2d/3d``, a :class:`redundancy.linear.layers.TuckerConvLayer` / ``CPConvLayer`` or a chain made by
        :func:`redundancy.lowrank.compression.compress`.
    input_shape : tuple of int
        ``(C, d_1, ..., d_N)``.
    ranks : tuple of int, optional
        ``(R_out, R_in)`` or ``(R_out, R_in, r_1, ..., r_N)``; spatial ranks default to the kernel
        size. Default: the first layer's own Tucker ranks, ``(R, R, min(l_i, R)..)`` for a CP layer
        of rank ``R`` (every unfolding of a rank-R CP tensor has rank <= R), or the full sizes for a
        plain conv.
    rtol : float
        Singular values below ``rtol · σ_max`` of an unfolding count as zero.
    numerical_dof : bool
        Also compute the model's dof by the Jacobian rank (:func:`redundancy.linear.dof.degrees_of_freedom`).

    Returns
    -------
    MultilinearRankCheck

    Examples
    --------
    >>> import torch
    >>> from redundancy.lowrank.compression import compress
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.Flatten(),
    ...                           torch.nn.Linear(8 * 4 * 4, 2, bias=False)).double()
    >>> small = compress(net, ranks=(2, 2)).model
    >>> chk = multilinear_rank_check(small, (3, 6, 6), ranks=(2, 2))
    >>> chk.holds, chk.observed
    (True, (2, 2, 3, 3))
    """
    check_module("model", model)
    input_shape = check_shape("input_shape", input_shape, min_len=2, max_len=4)
    rtol = check_positive_float("rtol", rtol)
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        raise UnsupportedLayerError("multilinear_rank_check needs an nn.Sequential whose first module is the conv")
    first, rest = model[0], model[1:]
    c, k, ks, st, pad, dl, own = _geometry(first)
    n = len(ks)
    if len(input_shape) != n + 1 or input_shape[0] != c:
        raise RankError(f"input_shape={input_shape} does not fit the first layer ({c} channels, {n}-D kernel)")
    ranks = _expected_ranks(ranks, own, (k, c, *ks), n)
    k1 = _first_kernel(first, c, k, ks, st, pad, dl)
    wt, m, n_out = _patch_tensor(first, rest, k1, input_shape, c, ks)
    patch_error = _patch_error(model, wt, input_shape, m, n_out, c, ks, st, pad, dl)
    observed, gaps = _multilinear_rank(wt, rtol)
    sizes = wt.shape
    labels = ("outputs x positions", "input channels", *[f"kernel mode {i + 1}" for i in range(n)])
    holds = all(o <= e for o, e in zip(observed, ranks))
    dof_num = None
    if numerical_dof:
        from redundancy.linear.dof import degrees_of_freedom

        dof_num = degrees_of_freedom(model, input_shape, method="numerical").dof
    return MultilinearRankCheck(input_shape=input_shape, labels=labels, sizes=tuple(sizes), expected=ranks,
                                observed=observed, gaps=gaps, holds=holds, dof=tucker_dof(sizes, observed),
                                K=k, naive_parameter_count=parameter_count(model), patch_error=patch_error,
                                dof_numerical=dof_num)


def _expected_ranks(ranks, own, full, n):
    """The ranks to check against: given, declared by the layer, or full; a pair gets the kernel sizes."""
    if ranks is None:
        ranks = own or full
    ranks = tuple(ranks)
    if len(ranks) == 2:
        ranks = ranks + tuple(full[2:])
    if len(ranks) != n + 2 or any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1 for r in ranks):
        raise RankError(f"ranks={ranks!r} must be {n + 2} positive integers (R_out, R_in, r_1..r_{n}) or a pair")
    return ranks


def _first_kernel(first, c, k, ks, st, pad, dl):
    """The first layer's kernel ``(K, C, *l)`` from impulse responses at an output position whose taps
    avoid the padding."""
    j0 = tuple(-(-p // s) for p, s in zip(pad, st))
    small = tuple(j * s - p + d * (l - 1) + 1 for j, s, p, d, l in zip(j0, st, pad, dl, ks))
    w1 = whole_network_tensor(first, (c, *small))
    m_small = w1.output_shape[1:]
    w1 = w1.W.reshape(k, *m_small, c, *small)
    idx = np.ix_(*[j * s - p + d * np.arange(l) for j, s, p, d, l in zip(j0, st, pad, dl, ks)])
    return np.stack([w1[(o, *j0)][(slice(None), *idx)] for o in range(k)])


def _patch_tensor(first, rest, k1, input_shape, c, ks):
    """``W̃`` in patch form, modes ``((n, j), c, t_1..t_N)``: the Jacobian of the rest with respect to
    the first layer's output, contracted with the first kernel; also the output positions and outputs."""
    z_shape = whole_network_tensor(first, input_shape, check=False).output_shape
    if len(rest):
        h = whole_network_tensor(rest, z_shape).W
        h = h.reshape(h.shape[0], *z_shape)
    else:
        h = np.eye(math.prod(z_shape)).reshape(-1, *z_shape)
    m = z_shape[1:]
    n_out = h.shape[0]
    wt = np.tensordot(h, k1, axes=([1], [0]))  # (n, *m, C, *l)
    return wt.reshape(n_out * math.prod(m), c, *ks), m, n_out


def _patch_error(model, wt, input_shape, m, n_out, c, ks, st, pad, dl):
    """Independent consistency check: ``W̃`` scattered back onto the raw input against the model's ``W``."""
    w_model = whole_network_tensor(model, input_shape).W.reshape(n_out, c, *input_shape[1:])
    back = np.zeros((n_out, c, *[d + 2 * p + s * mm + dd * ll for d, p, s, mm, dd, ll in
                                  zip(input_shape[1:], pad, st, m, dl, ks)]))
    wt_full = wt.reshape(n_out, *m, c, *ks)
    for t in np.ndindex(*ks):
        for j in np.ndindex(*m):
            pos = tuple(jj * s + d * tt for jj, s, d, tt in zip(j, st, dl, t))
            back[(slice(None), slice(None), *pos)] += wt_full[(slice(None), *j, slice(None), *t)]
    back = back[(slice(None), slice(None), *[slice(p, p + d) for p, d in zip(pad, input_shape[1:])])]
    norm = np.linalg.norm(w_model) or 1.0
    return float(np.linalg.norm(back - w_model) / norm)
