"""Data from the statistical model of a (compressed) linear CNN.

A :class:`Design` names the architecture of the basic linear CNN of the statistical model
(:class:`~redundancy.linear.statmodel.BasicCNN`): input ``d`` (1, 2 or 3 spatial modes, one channel),
kernel ``l``, stride ``s`` (default ``s = l``, non-overlapping), average pooling ``q`` and ``K``
output channels, with the kernel stack either unconstrained (``"vanilla"``), Tucker with spatial
ranks ``R_1..R_N`` and output-channel rank ``R`` (``"tucker"``) or CP of rank ``R`` (``"cp"``).
:class:`StatModelGenerator` draws a true network from it and samples

.. math::  y_i = \\langle \\mathcal W^*, \\mathcal X_i \\rangle + \\sigma \\xi_i,
           \\qquad \\mathrm{vec}(\\mathcal X_i) \\sim N(0, \\Sigma_x),\\ \\xi_i \\sim N(0, I),

where ``W*`` is the weight of the true network on the raw input (``vec W* = Mᵀ vec W_patch``, the
identifiable object). The patch-form truth is ``W_patch = G ×_1 U_1 ⋯ ×_N U_N ×_{N+1} V`` (Tucker)
or ``Σ_r u_r^{(1)} ∘ ⋯ ∘ u_r^{(N)} ∘ v_r`` (CP) with ``V = B U_out`` the merged ``P x R`` factor,
so ``W*`` does not depend on ``K`` once the seed is fixed (the ``K x R`` output factor ``U_out`` and
the FC weights ``B = V U_out⁺`` are drawn after everything else). It is scaled to ``‖W*‖_F = w_norm``.

Identifiability: with ``s = l`` and ``q = 1`` the patch tensor is a rearrangement of the input,
so its covariance is ``Σ_x`` rearranged and well conditioned; overlapping strides need an extra
restricted-eigenvalue condition (``docs/theory.md``). Prefer ``s = l`` in studies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from redundancy._validation import (as_generator, check_choice, check_int, check_nonnegative_float,
                          check_positive_float, check_shape, check_tuple)
from redundancy.errors import RankError, RedundancyError
import redundancy._validation as _v
from redundancy.linear.spec import AvgPool, Conv, CPConv, Dense, LinearCNN, TuckerConv
from redundancy.linear.statmodel import BasicCNN
from redundancy.lowrank.decompose import cp_full, multi_mode_product

__all__ = ["Design", "StatModelGenerator"]

STRUCTURES = ("vanilla", "tucker", "cp")


@_v.result
class Design(_v.Result):
    """Architecture of the basic linear CNN: ``d``, ``l``, ``s``, ``q``, ``K``, structure and ranks.

    Parameters
    ----------
    input_shape : tuple of int
        Spatial input shape ``d`` (1 to 3 modes; one input channel).
    kernel : int or tuple of int
        Kernel size ``l``.
    K : int
        Output channels of the convolution.
    structure : {"vanilla", "tucker", "cp"}
        Kernel-stack structure.
    rank : int, optional
        Output-channel rank ``R`` (Tucker) or CP rank ``R``; required unless vanilla; ``R <= K``.
    spatial_ranks : int or tuple of int, optional
        Tucker spatial ranks ``R_i <= l_i`` (default: ``l``, i.e. uncompressed spatial modes).
    stride : int or tuple, optional
        Convolution stride (default ``kernel``: non-overlapping patches).
    pool : int or tuple
        Non-overlapping average pooling window ``q``.
    n_outputs : int
        Number of responses (one FC row per output).

    Examples
    --------
    >>> d = Design(input_shape=(12, 12), kernel=3, K=8, structure="tucker", rank=2, spatial_ranks=2)
    >>> d.basic.p, d.naive_parameter_count()
    ((4, 4), 165)
    >>> d.kr_ratio
    4.0
    """

    input_shape: Any
    kernel: Any
    K: int
    structure: str = "tucker"
    rank: int | None = None
    spatial_ranks: Any = None
    stride: Any = None
    pool: Any = 1
    n_outputs: int = 1

    def __post_init__(self):
        d = check_shape("input_shape", self.input_shape, min_len=1, max_len=3)
        n = len(d)
        l = check_tuple("kernel", self.kernel, n)
        s = l if self.stride is None else check_tuple("stride", self.stride, n)
        q = check_tuple("pool", self.pool, n)
        K = check_int("K", self.K, min_value=1)
        check_choice("structure", self.structure, STRUCTURES)
        check_int("n_outputs", self.n_outputs, min_value=1)
        BasicCNN(d, l, s, q, K)  # validates shapes
        rank, sr = None, None
        if self.structure != "vanilla":
            if self.rank is None:
                raise RankError(f"rank=None is not allowed for structure={self.structure!r}; give R in [1, K={K}]")
            rank = check_int("rank", self.rank, min_value=1, max_value=K)
        if self.structure == "tucker":
            sr = l if self.spatial_ranks is None else check_tuple("spatial_ranks", self.spatial_ranks, n)
            for i, (r, li) in enumerate(zip(sr, l)):
                if r > li:
                    raise RankError(f"spatial_ranks={sr}: rank {r} for spatial mode {i} exceeds kernel[{i}]={li}; "
                                    f"each must be in [1, {li}]")
        elif self.spatial_ranks is not None:
            raise RedundancyError(f"spatial_ranks={self.spatial_ranks!r} is only allowed for structure='tucker'")
        for name, v in (("input_shape", d), ("kernel", l), ("stride", s), ("pool", q), ("rank", rank),
                        ("spatial_ranks", sr)):
            object.__setattr__(self, name, v)

    @property
    def ndim(self) -> int:
        return len(self.input_shape)

    @property
    def basic(self) -> BasicCNN:
        """The statistical model's shapes (:class:`~redundancy.linear.statmodel.BasicCNN`)."""
        return BasicCNN(self.input_shape, self.kernel, self.stride, self.pool, self.K)

    @property
    def kr_ratio(self) -> float:
        """``K / R`` (``1`` for vanilla)."""
        return 1.0 if self.rank is None else self.K / self.rank

    def spec(self) -> LinearCNN:
        """The :class:`~redundancy.linear.spec.LinearCNN` an analyst would train: conv → pool → dense."""
        if self.structure == "vanilla":
            conv = Conv(self.K, self.kernel, stride=self.stride)
        elif self.structure == "tucker":
            conv = TuckerConv(self.K, self.kernel, ranks=(self.rank, 1), spatial_ranks=self.spatial_ranks,
                              stride=self.stride)
        else:
            conv = CPConv(self.K, self.kernel, rank=self.rank, stride=self.stride)
        layers = [conv] + ([AvgPool(self.pool)] if math.prod(self.pool) > 1 else []) + [Dense(self.n_outputs)]
        return LinearCNN((1, *self.input_shape), layers)

    def naive_parameter_count(self) -> int:
        """Naive count of the trained network (:meth:`LinearCNN.naive_parameter_count`)."""
        return self.spec().naive_parameter_count()



@_v.validate_params({"shape": _v.Shape(1, 3), "kind": _v.Choice("identity", "ar1"),
                     "rho": _v.Check(check_nonnegative_float)})
def covariance(shape, kind: str = "identity", rho: float = 0.0) -> np.ndarray:
    """Input covariance ``Σ_x`` over ``vec(X)`` (row-major) for a spatial ``shape``.

    ``"identity"``: ``I``; ``"ar1"``: separable AR(1), ``Σ = ⊗_i T_i`` with
    ``T_i[a, b] = rho**|a - b|`` (``0 <= rho < 1``), so ``λ_min >= ((1-rho)/(1+rho))**N``.

    Examples
    --------
    >>> covariance((2, 2), "ar1", rho=0.5)[0].round(3).tolist()
    [1.0, 0.5, 0.5, 0.25]
    """
    d = tuple(shape)
    if kind == "identity":
        return np.eye(math.prod(d))
    if rho >= 1:
        raise RedundancyError(f"rho={rho} is not allowed; rho must be in [0, 1)")
    out = np.ones((1, 1))
    for n in d:
        idx = np.arange(n)
        out = np.kron(out, rho ** np.abs(idx[:, None] - idx[None, :]))
    return out


def _orthonormal(rng, rows, cols):
    q, r = np.linalg.qr(rng.normal(size=(rows, cols)))
    return q * np.sign(np.diag(r))


class StatModelGenerator:
    """Seeded generator of data from the statistical model of a :class:`Design`.

    Parameters
    ----------
    design : Design
    sigma : float
        Noise standard deviation ``σ`` (``>= 0``).
    w_norm : float
        Frobenius norm of the true raw-input weight ``W*`` (all outputs together).
    cov : array-like, optional
        Input covariance ``Σ_x`` (``D x D``, ``D = prod(d)``, positive definite); default ``I``.
    seed : int or numpy.random.Generator
        Seeds the truth (drawn at construction) and the default stream of :meth:`sample`.

    Attributes
    ----------
    W_star : numpy.ndarray
        Shape ``(n_outputs, *d)``: the true weight on the raw input, computed from the torch
        module by :func:`~redundancy.linear.tensor.whole_network_tensor`.
    W_patch : numpy.ndarray
        Shape ``(n_outputs, *l, *p)``: the patch-form truth ``W = Σ_k A_k ∘ B_k``.
    module : torch.nn.Sequential
        The true network, built from :meth:`Design.spec` with the drawn weights.

    Examples
    --------
    >>> g = StatModelGenerator(Design(input_shape=(8,), kernel=2, K=4, structure="cp", rank=2), sigma=0.1, seed=0)
    >>> X, y = g.sample(5)
    >>> X.shape, y.shape, round(float(np.linalg.norm(g.W_star)), 6)
    ((5, 8), (5,), 5.0)
    """

    def __init__(self, design: Design, *, sigma: float = 1.0, w_norm: float = 5.0, cov=None, seed=0):
        if not isinstance(design, Design):
            raise RedundancyError(f"design must be a Design; got {type(design).__name__}")
        if design.rank is not None and design.rank > design.basic.P:
            raise RankError(
                f"design.rank={design.rank} exceeds the pooled positions P={design.basic.P}: a true W* of exact "
                f"rank R needs R in [1, min(K, P)] = [1, {min(design.K, design.basic.P)}] (assumption A3)")
        self.design = design
        self.sigma = check_nonnegative_float("sigma", sigma)
        self.w_norm = check_positive_float("w_norm", w_norm)
        D = math.prod(design.input_shape)
        if cov is None:
            self.cov = None
            self._chol = None
        else:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.shape != (D, D) or not np.allclose(cov, cov.T):
                raise RedundancyError(f"cov has shape {cov.shape}; it must be a symmetric ({D}, {D}) matrix")
            try:
                self._chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise RedundancyError("cov is not positive definite; give a positive definite covariance") from None
            self.cov = cov
        self._rng = as_generator(seed)
        self.module = self._draw_truth(self._rng)
        from redundancy.linear.tensor import whole_network_tensor

        W = whole_network_tensor(self.module, (1, *design.input_shape)).W[:, 0]
        scale = self.w_norm / np.linalg.norm(W)
        with torch.no_grad():
            self.module[-1].weight.mul_(scale)
        self.W_star = W * scale
        self.W_patch = self._patch_truth * scale

    # -- truth -----------------------------------------------------------------------------
    def _draw_truth(self, rng) -> torch.nn.Sequential:
        d = self.design
        bc = d.basic
        N, P, K, C = d.ndim, bc.P, d.K, d.n_outputs
        net = d.spec().build(seed=None)
        conv, fc = net[0], net[-1]
        if d.structure == "vanilla":
            A = rng.normal(size=(K, *d.kernel))
            Bm = rng.normal(size=(C, K, P))
            kernel = A
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(A[:, None]))
        else:
            R = d.rank
            if d.structure == "tucker":
                G = rng.normal(size=(R, *d.spatial_ranks))
                Us = [_orthonormal(rng, li, ri) for li, ri in zip(d.kernel, d.spatial_ranks)]
                Vs = [_orthonormal(rng, P, R) for _ in range(C)]
                core = multi_mode_product(G, Us, range(1, 1 + len(Us)))
                with torch.no_grad():
                    conv.core.copy_(torch.from_numpy(G[:, None]))
                    conv.u_in.fill_(1.0)
                    for p_, U in zip(conv.u_spatial, Us):
                        p_.copy_(torch.from_numpy(U))
            else:
                us = [rng.normal(size=(li, R)) for li in d.kernel]
                us = [u / np.linalg.norm(u, axis=0) for u in us]
                Vs = [rng.normal(size=(P, R)) for _ in range(C)]
                core = cp_full(np.ones(R), [np.eye(R), *us])  # core[r] = u_1[:, r] ∘ ... ∘ u_N[:, r]
                with torch.no_grad():
                    conv.u_in.fill_(1.0)
                    for p_, u in zip(conv.u_spatial, us):
                        p_.copy_(torch.from_numpy(u))
            u_out = rng.normal(size=(K, R))
            pinv = np.linalg.pinv(u_out)  # R x K, pinv @ u_out = I_R
            Bm = np.stack([(V @ pinv).T for V in Vs])  # (C, K, P)
            kernel = np.einsum("kr,r...->k...", u_out, core)
            with torch.no_grad():
                conv.u_out.copy_(torch.from_numpy(u_out))
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(Bm.reshape(C, K * P)))
        # patch form W[c] = sum_k A_k ∘ B_k^{(c)}
        self._patch_truth = np.stack([np.tensordot(np.moveaxis(kernel, 0, -1), Bm[c].reshape(K, *bc.p), axes=([N], [0]))
                                      for c in range(C)])
        return net

    # -- data ------------------------------------------------------------------------------
    def sample_inputs(self, n: int, seed=None) -> np.ndarray:
        """``n`` inputs of shape ``(n, *d)`` with ``vec X ~ N(0, Σ_x)``."""
        n = check_int("n", n, min_value=1)
        _v.check_memory(f"n={n} inputs of shape {self.design.input_shape}",
                        n * math.prod(self.design.input_shape))
        rng = self._rng if seed is None else as_generator(seed)
        Z = rng.normal(size=(n, math.prod(self.design.input_shape)))
        if self._chol is not None:
            Z = Z @ self._chol.T
        return Z.reshape(n, *self.design.input_shape)

    def sample(self, n: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``(X, y)``: ``X`` ``(n, *d)``; ``y`` ``(n,)`` (one output) or ``(n, n_outputs)``.

        ``y = <W*, X> + σ ξ``; ``seed=None`` continues the generator's own stream.
        """
        rng = self._rng if seed is None else as_generator(seed)
        X = self.sample_inputs(n, seed=rng)
        Y = X.reshape(X.shape[0], -1) @ self.W_star.reshape(self.design.n_outputs, -1).T
        Y = Y + self.sigma * rng.normal(size=Y.shape)
        return X, (Y[:, 0] if self.design.n_outputs == 1 else Y)

    def __repr__(self) -> str:
        d = self.design
        return (f"StatModelGenerator({d.structure}, d={d.input_shape}, l={d.kernel}, K={d.K}, R={d.rank}, "
                f"sigma={self.sigma}, ||W*||_F={self.w_norm})")
