"""The softmax relaxation of one layer's rank (RENE §4.1) and the rank penalty (Eq. 5).

A :class:`MixedRankLayer` holds, for every candidate rank ``r`` of its candidate set ``R``, the
factors of a rank-``r`` decomposition ``Ŵ_r`` and one logit ``α_r``; with ``p = softmax(α)`` it
computes the layer with the mixed kernel

.. math::  W_{mix} = \\sum_{r \\in R} p_r \\hat W_r ,

one convolution (a conv is linear in its weight), with the original layer's bias, stride,
padding, dilation and padding mode. The rank penalty of a set of mixed layers is

.. math::  L_r = \\gamma \\sum_i \\Big(\\sum_{r \\in R_i} p_i(r)\\, r / \\max R_i\\Big)^{\\beta}

with ``γ = 0.4, β = 0.8`` by default: the defaults of the authors' public re-implementation (its
config says "Section 5.1 defaults"; not checked against the paper's PDF).

Two reconstruction errors are provided. :func:`reconstruction_error` is the bracket of the paper's
Eq. 6, the error of the mixture ``Σ_i ||W_i − Σ_r p_i(r) Ŵ_{i,r}||²``; the search uses it as the
data-free ``L_val`` of the logit step. :func:`expected_reconstruction_error` is
``Σ_i Σ_r p_i(r) ||W_i − Ŵ_{i,r}||²``, its Jensen upper bound (``||E Ŵ − W||² ≤ E ||Ŵ − W||²``),
which the search's factor step minimises: its gradient for candidate ``r`` is ``p_i(r)`` times the
gradient of that candidate's own error, so every ``Ŵ_{i,r}`` stays an approximation of ``W_i`` by
itself. Under the mixture error the candidates co-adapt (a rank-1 and a rank-5 kernel can sum to an
exact rank-3 kernel with half the mass on rank 1), the mixed network stays accurate while ``p``
moves onto a rank whose own decomposition is poor, and the ``argmax p`` collapses (docs/rank_search.md).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from redundancy._validation import Check, Float, Items, validate_params
from redundancy.errors import RedundancyError
from redundancy.rank_search.factors import init_factors


MAX_LAYERS = 10_000


def _rank_axis(j: int, k: int, n_factors: int, method: str) -> bool:
    """Whether axis ``k`` of factor ``j`` is a rank axis (``A (t, a)``, ``G (a, s, b)`` or ``(s, a)``, ``B (b, c)``)."""
    if n_factors == 2:
        return (j, k) in ((0, 1), (1, 0))
    if method == "cp":
        return (j, k) in ((0, 1), (1, 1), (2, 0))
    return (j, k) in ((0, 1), (1, 0), (1, 2), (2, 0))


def _balanced(factors, method):
    """CP factors ``(A, G, B)`` rescaled so that each component has the same norm in all three (the
    kernel is unchanged): CP-ALS puts the weights into ``A``, and SGD on unbalanced factors oscillates."""
    if method != "cp":
        return factors
    a, g, b = (np.asarray(f, dtype=np.float64) for f in factors)
    na, ng, nb = np.linalg.norm(a, axis=0), np.linalg.norm(g, axis=0), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (ng > 0) & (nb > 0)
    t = np.where(ok, np.cbrt(na * ng * nb), 1.0)
    sa, sg, sb = (np.where(ok, t / np.where(ok, n, 1.0), 1.0) for n in (na, ng, nb))
    return a * sa, g * sg, b * sb[:, None]


class MixedRankLayer(nn.Module):
    """One layer computing with ``W_mix = Σ_r softmax(α)_r Ŵ_r`` over candidate ranks.

    Parameters
    ----------
    layer : Conv1d/2d/3d (groups 1) or Linear
        The layer to relax; a frozen copy is kept (its weight is the target ``W``).
    method : {"tt", "cp", "tucker"}
        Decomposition of a conv kernel; a Linear always uses the SVD.
    candidates : sequence of int
        Candidate ranks; each gets factors initialised by TT-SVD / CP-ALS / HOOI / SVD.
    seed : int
    """

    def __init__(self, layer: nn.Module, method: str, candidates: Sequence[int], seed: int = 0):
        super().__init__()
        self.layer = copy.deepcopy(layer)
        for p in self.layer.parameters():
            p.requires_grad_(False)
        self.method = "svd" if isinstance(layer, nn.Linear) else method
        self.candidates = tuple(sorted(int(r) for r in candidates))
        self.kernel_size = tuple(getattr(layer, "kernel_size", ()))
        w = layer.weight.detach()
        kernel = w.cpu().double().numpy()
        self.register_buffer("target", w.clone())
        self.n_factors = 2 if isinstance(layer, nn.Linear) else 3
        # factors of every candidate, zero-padded to the largest rank R and stacked: one einsum for all
        R, n = max(self.candidates), len(self.candidates)
        inits = [_balanced(init_factors(kernel, method, r, seed=seed), self.method) for r in self.candidates]
        shapes = [list(f.shape) for f in inits[-1]]
        stacked, masks = [], []
        for j in range(self.n_factors):
            shape = [n] + [R if _rank_axis(j, k, self.n_factors, self.method) else d
                           for k, d in enumerate(shapes[j])]
            buf, mask = np.zeros(shape), np.zeros(shape)
            for i, fs in enumerate(inits):
                sl = (i,) + tuple(slice(0, d) for d in fs[j].shape)
                buf[sl], mask[sl] = fs[j], 1.0
            stacked.append(nn.Parameter(torch.as_tensor(buf, dtype=w.dtype, device=w.device)))
            masks.append(torch.as_tensor(mask, dtype=w.dtype, device=w.device))
        self.factors = nn.ParameterList(stacked)
        for j, m in enumerate(masks):
            self.register_buffer(f"mask{j}", m)
        self.alpha = nn.Parameter(torch.zeros(n, dtype=w.dtype, device=w.device))

    def probs(self) -> torch.Tensor:
        """``p = softmax(α)`` over the candidates."""
        return torch.softmax(self.alpha, 0)

    def _masked(self):
        return [self.factors[j] * getattr(self, f"mask{j}") for j in range(self.n_factors)]

    def candidate_kernels(self) -> torch.Tensor:
        """``Ŵ_r`` of every candidate, stacked ``(n_candidates, *W.shape)``, rebuilt from the factors."""
        fs = self._masked()
        if self.n_factors == 2:
            return torch.einsum("nta,nac->ntc", *fs)
        if self.method == "cp":
            w = torch.einsum("nta,nsa,nac->ntcs", *fs)
        else:
            w = torch.einsum("nta,nasb,nbc->ntcs", *fs)
        return w.reshape(w.shape[0], w.shape[1], w.shape[2], *self.kernel_size)

    def candidate_kernel(self, i: int) -> torch.Tensor:
        """``Ŵ_r`` of the ``i``-th candidate."""
        return self.candidate_kernels()[i]

    def mixed_weight(self) -> torch.Tensor:
        """``W_mix = Σ_r p_r Ŵ_r``."""
        return torch.tensordot(self.probs(), self.candidate_kernels(), dims=1)

    def expected_rank(self) -> torch.Tensor:
        """``Σ_r p_r r``."""
        return (self.probs() * torch.as_tensor(self.candidates, dtype=self.alpha.dtype, device=self.alpha.device)).sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixed_weight()
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, w, self.layer.bias)
        return self.layer._conv_forward(x, w, self.layer.bias)


def _mixed_layer(name, value):
    if not isinstance(value, MixedRankLayer):
        raise RedundancyError(f"{name}={type(value).__name__} is not allowed; it must be a MixedRankLayer")
    return value


_LAYERS = Items(Check(_mixed_layer), min_len=1, max_len=MAX_LAYERS)


@validate_params({"layers": _LAYERS})
def reconstruction_error(layers: Sequence[MixedRankLayer]) -> torch.Tensor:
    """``Σ_i ||W_i − W_mix,i||_F²``: the error of the mixed kernels (the bracket of Eq. 6).

    Parameters
    ----------
    layers : sequence of MixedRankLayer
        1 to ``MAX_LAYERS`` layers.

    Returns
    -------
    torch.Tensor
        A scalar (differentiable in the factors and the logits).

    Examples
    --------
    >>> import torch
    >>> m = MixedRankLayer(torch.nn.Conv2d(3, 4, 3), "tt", [1, 3])
    >>> float(reconstruction_error([m]).detach()) >= 0
    True
    """
    return _reconstruction_error(layers)


def _reconstruction_error(layers):
    return sum(((m.target - m.mixed_weight()) ** 2).sum() for m in layers)


@validate_params({"layers": _LAYERS})
def expected_reconstruction_error(layers: Sequence[MixedRankLayer]) -> torch.Tensor:
    """``Σ_i Σ_r p_i(r) ||W_i − Ŵ_{i,r}||_F²``: the mean error of the candidates under ``p``.

    An upper bound of :func:`reconstruction_error` (Jensen); each candidate is pulled towards ``W_i``
    on its own, so candidates cannot co-adapt to an exact mixture.

    ``layers`` as in :func:`reconstruction_error`; returns a scalar tensor.

    Examples
    --------
    >>> import torch
    >>> m = MixedRankLayer(torch.nn.Conv2d(3, 4, 3), "tt", [1, 3])
    >>> bool(expected_reconstruction_error([m]) >= reconstruction_error([m]))
    True
    """
    return _expected_reconstruction_error(layers)


def _expected_reconstruction_error(layers):
    total = 0.0
    for m in layers:
        err = ((m.target.unsqueeze(0) - m.candidate_kernels()) ** 2).flatten(1).sum(1)
        total = total + (m.probs() * err).sum()
    return total


@validate_params({"layers": _LAYERS, "gamma": Float(0, 1e6, lo_open=True), "beta": Float(0, 100, lo_open=True)})
def rank_penalty(layers: Sequence[MixedRankLayer], gamma: float = 0.4, beta: float = 0.8) -> torch.Tensor:
    """``L_r = γ Σ_i (Σ_r p_i(r) r / max R_i)^β`` (Eq. 5).

    Parameters
    ----------
    layers : sequence of MixedRankLayer
        1 to ``MAX_LAYERS`` layers.
    gamma : float
        ``γ`` in ``(0, 1e6]`` (default 0.4).
    beta : float
        ``β`` in ``(0, 100]`` (default 0.8).

    Returns
    -------
    torch.Tensor
        A scalar in ``(0, γ · len(layers)]``.

    Examples
    --------
    >>> import torch
    >>> m = MixedRankLayer(torch.nn.Conv2d(3, 4, 3), "tt", [1, 3])
    >>> round(float(rank_penalty([m]).detach()), 4) == round(0.4 * (2 / 3) ** 0.8, 4)
    True
    """
    return _rank_penalty(layers, gamma, beta)


def _rank_penalty(layers, gamma, beta):
    return gamma * sum((m.expected_rank() / max(m.candidates)) ** beta for m in layers)
