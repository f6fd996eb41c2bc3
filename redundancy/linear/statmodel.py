"""The statistical model's own form of the basic linear CNN.

The basic network has K kernels ``A_k`` of size ``l = (l_1..l_N)`` applied with stride ``s`` (valid
convolution), identity activation, non-overlapping average pooling ``q`` and a fully connected
layer ``B_k`` of size ``p = (p_1..p_N)``:

.. math::  y = \\sum_k \\langle \\mathcal B_k, \\mathrm{pool}_q(\\mathcal A_k \\star_s \\mathcal X)\\rangle
             = \\langle \\mathcal W, \\widetilde{\\mathcal X}\\rangle,
           \\qquad \\mathcal W = \\sum_k \\mathcal A_k \\circ \\mathcal B_k,

with the order-2N **patch tensor**
:math:`\\widetilde{\\mathcal X}[t, g] = (\\prod_i q_i)^{-1} \\sum_{j \\in \\mathrm{block}(g)} \\mathcal X[j \\odot s + t]`,
``m_i = floor((d_i - l_i)/s_i) + 1`` and ``p_i = floor(m_i / q_i)``. A channel mode is a mode with
``l_i = d_i`` (so ``m_i = 1``). Equivalent forms:

* Tucker-like: :math:`\\mathcal W = \\mathbb A \\times_{N+1} B` with ``𝔸`` (``l + (K,)``) and
  ``B`` (``P x K``, column k = ``vec(B_k)`` row-major);
* raw input: ``vec(X̃) = M vec(X)`` so ``y = <W_eff, X>`` with ``vec(W_eff) = Mᵀ vec(W)``;
* stride = kernel (``s = l``): :math:`\\mathcal W_{\\rm eff} = \\sum_k (\\mathcal B_k \\otimes \\mathcal J_q) \\otimes \\mathcal A_k`
  (tensor Kronecker product, ``J_q`` the averaging tensor), zero-padded to ``d``.

Reference: Huang, Si, Zheng & Li, arXiv:2112.04857 (reconstruction; see ``docs/theory.md``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import sparse
from torch import nn

from redundancy._validation import as_generator, check_array, check_int, check_shape, check_tuple
from redundancy.errors import RedundancyError
import redundancy._validation as _v

__all__ = ["BasicCNN"]


@_v.validate_params({"a": _v.Array(), "b": _v.Array()})
def kron_nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tensor Kronecker product: ``(a ⊗ b)[i * b.shape + j] = a[i] * b[j]`` along every mode."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != b.ndim:
        raise RedundancyError(f"kron_nd needs tensors of equal order; got {a.ndim} and {b.ndim}")
    n = a.ndim
    outer = np.multiply.outer(a, b)  # a-modes then b-modes
    perm = [ax for i in range(n) for ax in (i, n + i)]
    out = outer.transpose(perm).reshape([x * y for x, y in zip(a.shape, b.shape)])
    if not np.isfinite(out).all():
        raise RedundancyError("kron_nd overflows: the products a_i * b_j leave the float64 range")
    return out


@dataclass(frozen=True)
class BasicCNN:
    """Shapes of the basic linear CNN: input ``d``, kernel ``l``, stride ``s``, pool ``q``, ``K`` kernels.

    Examples
    --------
    >>> import numpy as np
    >>> net = BasicCNN(input_shape=(8, 8), kernel=(2, 2), stride=(2, 2), pool=(2, 2), K=3)
    >>> net.m, net.p
    ((4, 4), (2, 2))
    >>> A, B = net.random_weights(seed=0)
    >>> X = np.random.default_rng(1).normal(size=(5, 8, 8))
    >>> y = net.forward(A, B, X)
    >>> np.allclose(y, np.einsum('ntg,tg->n', net.patch_tensor(X).reshape(5, 4, 4), net.whole_tensor(A, B).reshape(4, 4)))
    True
    """

    input_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | int = 1
    pool: tuple[int, ...] | int = 1
    K: int = 1

    def __post_init__(self):
        d = check_shape("input_shape", self.input_shape, min_len=1, max_len=3)
        n = len(d)
        l = check_tuple("kernel", self.kernel, n)
        s = check_tuple("stride", self.stride, n)
        q = check_tuple("pool", self.pool, n)
        check_int("K", self.K, min_value=1)
        for i in range(n):
            if l[i] > d[i]:
                raise RedundancyError(f"kernel={l} exceeds input_shape={d} in mode {i}; need kernel[i] <= input_shape[i]")
        m = tuple((d[i] - l[i]) // s[i] + 1 for i in range(n))
        for i in range(n):
            if q[i] > m[i]:
                raise RedundancyError(f"pool={q} exceeds the conv output {m} in mode {i}; need pool[i] <= {m[i]}")
        object.__setattr__(self, "input_shape", d)
        object.__setattr__(self, "kernel", l)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "pool", q)

    # ---- shapes -------------------------------------------------------------------------
    @property
    def N(self) -> int:
        return len(self.input_shape)

    @property
    def m(self) -> tuple[int, ...]:
        """Conv output size ``m_i = floor((d_i - l_i)/s_i) + 1``."""
        return tuple((d - l) // s + 1 for d, l, s in zip(self.input_shape, self.kernel, self.stride))

    @property
    def p(self) -> tuple[int, ...]:
        """Pooled size ``p_i = floor(m_i / q_i)``."""
        return tuple(m // q for m, q in zip(self.m, self.pool))

    @property
    def L(self) -> int:
        return math.prod(self.kernel)

    @property
    def P(self) -> int:
        return math.prod(self.p)

    def naive_parameter_count(self) -> int:
        """``K·L + K·P``: kernels plus fully connected weights."""
        return self.K * (self.L + self.P)

    # ---- weights ------------------------------------------------------------------------
    def random_weights(self, seed=None) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian ``A`` (shape ``l + (K,)``) and ``B`` (shape ``p + (K,)``)."""
        rng = as_generator(seed)
        return rng.normal(size=self.kernel + (self.K,)), rng.normal(size=self.p + (self.K,))

    def _check_weights(self, A, B):
        A, B = check_array("A", A), check_array("B", B)
        if A.shape != self.kernel + (self.K,):
            raise RedundancyError(f"A has shape {A.shape}; expected kernel + (K,) = {self.kernel + (self.K,)}")
        if B.shape != self.p + (self.K,):
            raise RedundancyError(f"B has shape {B.shape}; expected p + (K,) = {self.p + (self.K,)}")
        return A, B

    # ---- forms --------------------------------------------------------------------------
    def patch_tensor(self, X) -> np.ndarray:
        """Patch tensor ``X̃`` of shape ``(n, *l, *p)`` for inputs ``X`` of shape ``(n, *d)``."""
        X = check_array("X", X, min_ndim=1)
        if X.shape[1:] != self.input_shape:
            raise RedundancyError(f"X has shape {X.shape}; expected (n, *input_shape) = (n, *{self.input_shape})")
        n, N = X.shape[0], self.N
        axes = tuple(range(1, N + 1))
        win = sliding_window_view(X, self.kernel, axis=axes)  # (n, d-l+1..., l...)
        win = win[(slice(None),) + tuple(slice(None, None, s) for s in self.stride)]  # (n, m..., l...)
        pq = tuple(p * q for p, q in zip(self.p, self.pool))
        win = win[(slice(None),) + tuple(slice(0, c) for c in pq)]
        shape = [n] + [x for p, q in zip(self.p, self.pool) for x in (p, q)] + list(self.kernel)
        win = win.reshape(shape)
        win = win.mean(axis=tuple(2 + 2 * i for i in range(N)))  # (n, p..., l...)
        perm = [0] + list(range(N + 1, 2 * N + 1)) + list(range(1, N + 1))
        return np.ascontiguousarray(win.transpose(perm))

    def whole_tensor(self, A, B) -> np.ndarray:
        """``W = Σ_k A_k ∘ B_k`` of shape ``l + p``."""
        A, B = self._check_weights(A, B)
        return np.tensordot(A, B, axes=([self.N], [self.N]))

    def tucker_like(self, A, B) -> np.ndarray:
        """``𝔸 ×_{N+1} B`` with ``B`` as the ``P x K`` matrix: shape ``l + (P,)``."""
        A, B = self._check_weights(A, B)
        Bmat = B.reshape(self.P, self.K)
        return np.tensordot(A, Bmat, axes=([self.N], [1]))

    def patch_matrix(self) -> sparse.csr_matrix:
        """Sparse ``M`` with ``vec(X̃) = M vec(X)`` (row-major ``vec``); shape ``(L·P, Πd)``."""
        rows, cols, vals = [], [], []
        d, N = self.input_shape, self.N
        w = 1.0 / math.prod(self.pool)
        strides_d = np.cumprod((1,) + d[::-1])[::-1][1:]
        lp = self.kernel + self.p
        strides_lp = np.cumprod((1,) + lp[::-1])[::-1][1:]
        for t in product(*[range(x) for x in self.kernel]):
            for g in product(*[range(x) for x in self.p]):
                r = int(np.dot(t + g, strides_lp))
                for u in product(*[range(x) for x in self.pool]):
                    j = [g[i] * self.pool[i] + u[i] for i in range(N)]
                    x = [j[i] * self.stride[i] + t[i] for i in range(N)]
                    rows.append(r)
                    cols.append(int(np.dot(x, strides_d)))
                    vals.append(w)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(self.L * self.P, math.prod(d)))

    def effective_weight(self, A, B) -> np.ndarray:
        """Weight on the raw input: ``vec(W_eff) = Mᵀ vec(W)``, shape ``d``."""
        W = self.whole_tensor(A, B)
        return (self.patch_matrix().T @ W.reshape(-1)).reshape(self.input_shape)

    def kronecker_form(self, A, B) -> np.ndarray:
        """``W_eff = Σ_k (B_k ⊗ J_q) ⊗ A_k`` for stride = kernel; shape ``d`` (zero beyond the crop)."""
        if self.stride != self.kernel:
            raise RedundancyError(f"kronecker_form needs stride == kernel; got stride={self.stride}, kernel={self.kernel}")
        A, B = self._check_weights(A, B)
        J = np.full(self.pool, 1.0 / math.prod(self.pool))
        out = np.zeros(self.input_shape)
        acc = sum(kron_nd(kron_nd(B[..., k], J), A[..., k]) for k in range(self.K))
        out[tuple(slice(0, c) for c in acc.shape)] = acc
        return out

    def forward(self, A, B, X) -> np.ndarray:  # noqa: D401
        """Direct forward pass (strided correlation, average pooling, FC), numpy loops; shape ``(n,)``."""
        A, B = self._check_weights(A, B)
        X = check_array("X", X, min_ndim=1)
        n, N = X.shape[0], self.N
        y = np.zeros(n)
        for k in range(self.K):
            Z = np.zeros((n,) + self.m)
            for j in product(*[range(x) for x in self.m]):
                sl = tuple(slice(j[i] * self.stride[i], j[i] * self.stride[i] + self.kernel[i]) for i in range(N))
                Z[(slice(None),) + j] = np.tensordot(X[(slice(None),) + sl], A[..., k], axes=N)
            for g in product(*[range(x) for x in self.p]):
                bl = tuple(slice(g[i] * self.pool[i], (g[i] + 1) * self.pool[i]) for i in range(N))
                y += B[g + (k,)] * Z[(slice(None),) + bl].reshape(n, -1).mean(axis=1)
        return y

    def torch_module(self, A, B) -> nn.Sequential:
        """The torch network (input ``(1, *d)``): ConvNd(1, K, l, s) → AvgPoolNd(q) → Flatten → Linear(K·P, 1)."""
        A, B = self._check_weights(A, B)
        N = self.N
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[N](1, self.K, self.kernel, self.stride, bias=False,
                                                             dtype=torch.float64)
        pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[N](self.pool)
        fc = nn.Linear(self.K * self.P, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.moveaxis(A, -1, 0)[:, None]))
            # Flatten of (K, p...) is k * P + vec_index(g)
            fc.weight.copy_(torch.from_numpy(np.moveaxis(B, -1, 0).reshape(1, -1)))
        mods = OrderedDict([("conv", conv), ("pool", pool), ("flatten", nn.Flatten()), ("fc", fc)])
        return nn.Sequential(mods)
