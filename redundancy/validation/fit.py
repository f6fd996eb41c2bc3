"""Least-squares estimators of the whole-network tensor from statistical-model data.

Two estimators of ``W*`` from ``(X_i, y_i)``, both minimising the empirical squared loss
``(1/n) Σ_i ‖y_i − <W, X_i>‖²`` over the structured set of the :class:`~redundancy.validation.simulate.Design`:

* :func:`fit_linear_cnn` trains the (compressed) linear CNN an analyst would train, in torch
  (float64), with full-batch **L-BFGS** (strong-Wolfe line search, history 50). Stopping rule: an
  L-BFGS run stops when the largest gradient entry of the *normalised* loss (loss divided by
  ``mean ‖y‖²``) is ``<= tol`` or the loss/step change is ``< tol_change`` or after ``max_iter``
  iterations; ``n_restarts`` runs from independent seeded initialisations, the lowest loss wins.
* :func:`fit_tucker_als` fits ``W = G ×_1 U_1 ⋯ ×_N U_N ×_{N+1} V`` in patch form by alternating
  least squares, started from the HOSVD of the minimum-norm least-squares estimate (spectral start).

Both use the sufficient statistics ``S = X̃ᵀX̃/n``, ``b = X̃ᵀy/n`` when ``objective="gram"``
(the loss ``vec(W)ᵀ S vec(W) − 2 bᵀ vec(W) + yᵀy/n`` equals the data loss exactly); the torch fit
can also run on the raw data (``objective="data"``). Errors are reported on the raw-input weight
``W_eff`` (identifiable): ``‖Ŵ_eff − W*‖_F`` and the root mean squared excess prediction error
``sqrt(E_x <Ŵ_eff − W*, X>²) = sqrt(vec(Δ)ᵀ Σ_x vec(Δ))``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from redundancy._validation import as_generator, check_choice, check_int, check_positive_float
from redundancy.errors import RedundancyError
from redundancy.lowrank.decompose import mode_product, multi_mode_product
from redundancy.validation.simulate import Design
import redundancy._validation as _v

__all__ = ["fit_linear_cnn"]


@_v.result
class FitResult(_v.Result):
    """A fitted raw-input weight and how it was obtained.

    Attributes
    ----------
    estimator : str
        ``"lbfgs"`` or ``"als"``.
    W_hat : numpy.ndarray
        Estimated raw-input weight, shape ``(n_outputs, *d)``.
    train_loss : float
        ``(1/n) Σ ‖y_i − <Ŵ, X_i>‖²`` at the returned fit.
    n_iter : int
        Iterations (L-BFGS) or sweeps (ALS) of the returned run.
    converged : bool
        Whether the stopping rule fired before the iteration cap.
    restart_losses : tuple of float
        Final training loss of every restart (one entry for ALS).
    seconds : float
        Wall time of the fit.
    error_fro, prediction_error : float or None
        ``‖Ŵ − W*‖_F`` and ``sqrt(vec(Δ)ᵀ Σ_x vec(Δ))`` when ``W_star`` was given.
    n : int
        Sample size.
    """

    estimator: str
    W_hat: np.ndarray = field(repr=False)
    train_loss: float
    n_iter: int
    converged: bool
    restart_losses: tuple
    seconds: float
    error_fro: float | None = None
    prediction_error: float | None = None
    n: int = 0



@_v.validate_params({"W_hat": _v.Array(min_ndim=1), "W_star": _v.Array(min_ndim=1), "cov": _v.NoneOr(_v.Array(min_ndim=2, max_ndim=2))})
def estimation_errors(W_hat, W_star, cov=None) -> tuple[float, float]:
    """``(‖Ŵ − W*‖_F, sqrt(Σ_c vec(Δ_c)ᵀ Σ_x vec(Δ_c)))`` for raw-input weights ``(n_outputs, *d)``."""
    W_hat, W_star = np.asarray(W_hat, dtype=np.float64), np.asarray(W_star, dtype=np.float64)
    if W_hat.shape != W_star.shape:
        raise RedundancyError(f"W_hat has shape {W_hat.shape} but W_star has shape {W_star.shape}; they must match")
    delta = (W_hat - W_star).reshape(W_hat.shape[0], -1)
    fro = float(np.linalg.norm(delta))
    pred = fro if cov is None else float(np.sqrt(max(np.einsum("ci,ij,cj->", delta, np.asarray(cov), delta), 0.0)))
    return fro, pred


def _check_data(design: Design, X, y):
    if not isinstance(design, Design):
        raise RedundancyError(f"design must be a Design; got {type(design).__name__}")
    X = _v.check_array("X", X, finite=False)
    if X.ndim != design.ndim + 1 or X.shape[1:] != design.input_shape:
        raise RedundancyError(f"X has shape {X.shape}; expected (n, *{design.input_shape})")
    Y = _v.check_array("y", y, finite=False)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if Y.shape != (X.shape[0], design.n_outputs):
        raise RedundancyError(f"y has shape {np.shape(y)}; expected ({X.shape[0]},) or ({X.shape[0]}, {design.n_outputs})")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise RedundancyError("X or y contains NaN or inf; give finite data")
    return X, Y


def _finish(estimator, W_hat, loss, n_iter, conv, losses, t0, W_star, cov, n):
    if not conv:
        import warnings

        from redundancy.errors import ConvergenceWarning

        what = "fit_linear_cnn" if estimator == "lbfgs" else "fit_tucker_als"
        warnings.warn(f"{what}: the {estimator.upper()} fit hit its iteration cap ({n_iter}) before its stopping rule "
                      f"fired (training loss {float(loss):.4g}); raise max_iter or loosen tol", ConvergenceWarning,
                      stacklevel=4)
    fro = pred = None
    if W_star is not None:
        fro, pred = estimation_errors(W_hat, W_star, cov)
    return FitResult(estimator=estimator, W_hat=W_hat, train_loss=float(loss), n_iter=int(n_iter),
                     converged=bool(conv), restart_losses=tuple(float(v) for v in losses),
                     seconds=time.perf_counter() - t0, error_fro=fro, prediction_error=pred, n=int(n))


_POSITIVE = _v.Check(check_positive_float)


@_v.validate_params({"design": _v.Instance(Design, "Design"), "n_restarts": _v.Int(1), "max_iter": _v.Int(1),
                     "tol": _POSITIVE, "tol_change": _POSITIVE, "agree": _POSITIVE,
                     "objective": _v.Choice("gram", "data"), "seed": _v.Seed(allow_none=True, allow_generator=True)})
def fit_linear_cnn(design: Design, X, y, *, n_restarts: int = 4, max_iter: int = 1000, tol: float = 1e-9,
                   tol_change: float = 1e-15, agree: float = 1e-7, objective: str = "gram", seed=0,
                   W_star=None, cov=None) -> FitResult:
    """Least-squares fit of the design's linear CNN (:meth:`Design.spec`) with L-BFGS.

    Minimises ``(1/n) Σ_i ‖y_i − f_θ(X_i)‖²`` over the network's weights ``θ`` (kernel factors and
    FC weights; no bias), i.e. least squares over the structured set of whole-network tensors.

    Parameters
    ----------
    design : Design
    X : array, shape ``(n, *d)``
    y : array, shape ``(n,)`` or ``(n, n_outputs)``
    n_restarts : int
        At most this many independent initialisations (``spec.build(seed=s_r)``); the lowest final
        loss is returned. Restarts stop early once two runs agree on the lowest loss within the
        relative tolerance ``agree`` (relative to ``max(loss, 1e-6 mean ‖y‖²)``; the minimum has
        been found twice).
    max_iter : int
        L-BFGS iteration cap per restart.
    tol, tol_change : float
        L-BFGS ``tolerance_grad`` (on the loss normalised by ``mean ‖y‖²``) and ``tolerance_change``.
    objective : {"gram", "data"}
        ``"gram"``: loss from ``S = XᵀX/n`` and ``b = Xᵀy/n`` with ``W_eff`` obtained by running the
        network on the identity basis (cost per step independent of n); ``"data"``: forward on X.
    seed : int or numpy.random.Generator
        Seeds the restarts.
    W_star, cov : optional
        Truth ``(n_outputs, *d)`` and input covariance for the reported errors.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> from redundancy.validation.simulate import Design, StatModelGenerator
    >>> d = Design(input_shape=(6,), kernel=2, K=2, structure="cp", rank=1)
    >>> g = StatModelGenerator(d, sigma=0.0, seed=0)
    >>> X, y = g.sample(40)
    >>> fit = fit_linear_cnn(d, X, y, W_star=g.W_star, seed=0)
    >>> fit.error_fro < 1e-5
    True
    """
    X, Y = _check_data(design, X, y)
    rng = as_generator(seed)
    t0 = time.perf_counter()
    n, D = X.shape[0], math.prod(design.input_shape)
    spec = design.spec()
    Xf = torch.from_numpy(X.reshape(n, D))
    Yt = torch.from_numpy(Y)
    c0 = float((Y ** 2).sum() / n)
    scale = c0 if c0 > 0 else 1.0
    if objective == "gram":
        S = Xf.T @ Xf / n
        b = Xf.T @ Yt / n
        basis = torch.eye(D, dtype=torch.float64).reshape(D, 1, *design.input_shape)
    else:
        Xin = Xf.reshape(n, 1, *design.input_shape)

    best = None
    losses = []
    for _ in range(n_restarts):
        net = spec.build(seed=int(rng.integers(2 ** 31 - 1)))
        params = [p for p in net.parameters()]
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=tol_change,
                                history_size=50, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            if objective == "gram":
                W = net(basis)  # (D, n_out): vec W_eff per output
                loss = ((W * (S @ W)).sum() - 2 * (W * b).sum() + c0) / scale
            else:
                loss = ((net(Xin) - Yt) ** 2).sum() / n / scale
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            W = net(torch.eye(D, dtype=torch.float64).reshape(D, 1, *design.input_shape)).T.numpy()
        resid = Y - X.reshape(n, D) @ W.T
        loss = float((resid ** 2).sum() / n)
        state = opt.state[params[0]]
        n_iter = int(state.get("n_iter", 0))
        # L-BFGS ends on a small gradient or a small change (converged) or on its iteration / evaluation cap
        capped = n_iter >= max_iter or int(state.get("func_evals", 0)) >= max_iter * 5 // 4
        grad_small = max(float(p.grad.abs().max()) for p in params if p.grad is not None) <= tol
        losses.append(loss)
        if best is None or loss < best[0]:
            best = (loss, W.reshape(design.n_outputs, *design.input_shape), n_iter, grad_small or not capped)
        if sum(v - best[0] <= agree * max(best[0], 1e-6 * c0) for v in losses) >= 2:
            break
    loss, W_hat, n_iter, conv = best
    return _finish("lbfgs", W_hat, loss, n_iter, conv, losses, t0, W_star, cov, n)


def _tucker_full(G, Us):
    return multi_mode_product(G, Us, range(len(Us)))


@_v.validate_params({"design": _v.Instance(Design, "Design"), "max_sweeps": _v.Int(1), "tol": _POSITIVE})
def fit_tucker_als(design: Design, X, y, *, max_sweeps: int = 200, tol: float = 1e-12, W_star=None,
                   cov=None) -> FitResult:
    """Tucker-constrained least squares by alternating least squares with a spectral start.

    Model (patch form, modes ``l_1..l_N`` and the merged ``P`` mode):
    ``W = G ×_1 U_1 ⋯ ×_N U_N ×_{N+1} V`` with ranks ``(R_1..R_N, R)``. Start: HOSVD truncation of
    the minimum-norm least-squares estimate ``argmin ‖y − X̃ vec W‖``. Each sweep solves the normal
    equations exactly for each ``U_j`` (others fixed; then QR, the triangular factor moved into
    ``G``) and finally for ``G``. Stops when the relative decrease of the loss is below ``tol``.
    Single output only.

    Examples
    --------
    >>> from redundancy.validation.simulate import Design, StatModelGenerator
    >>> d = Design(input_shape=(6, 6), kernel=2, K=4, structure="tucker", rank=2, spatial_ranks=1)
    >>> g = StatModelGenerator(d, sigma=0.0, seed=0)
    >>> X, y = g.sample(60)
    >>> fit_tucker_als(d, X, y, W_star=g.W_star).error_fro < 1e-8
    True
    """
    X, Y = _check_data(design, X, y)
    if design.structure != "tucker" or design.n_outputs != 1:
        raise RedundancyError(f"fit_tucker_als needs a single-output Tucker design; got structure="
                              f"{design.structure!r}, n_outputs={design.n_outputs}")
    t0 = time.perf_counter()
    bc, n = design.basic, X.shape[0]
    dims = tuple(design.kernel) + (bc.P,)
    ranks = tuple(design.spatial_ranks) + (design.rank,)
    Xt = bc.patch_tensor(X).reshape(n, -1)
    y1 = Y[:, 0]
    S, b, c = Xt.T @ Xt / n, Xt.T @ y1 / n, float(y1 @ y1 / n)

    def loss_of(W):
        w = W.reshape(-1)
        return float(w @ S @ w - 2 * b @ w + c)

    W0 = np.linalg.lstsq(Xt, y1, rcond=None)[0].reshape(dims)
    Us = []
    for j, r in enumerate(ranks):
        unf = np.moveaxis(W0, j, 0).reshape(dims[j], -1)
        Us.append(np.linalg.svd(unf, full_matrices=False)[0][:, :r])
    G = W0
    for j, U in enumerate(Us):
        G = mode_product(G, U.T, j)
    M = len(dims)
    S_t = S.reshape(dims + dims)
    b_t = b.reshape(dims)
    prev = loss_of(_tucker_full(G, Us))
    sweeps, conv = 0, False
    for sweeps in range(1, max_sweeps + 1):
        for j in range(M):
            H = G
            for k in range(M):
                if k != j:
                    H = mode_product(H, Us[k], k)
            Hj = np.moveaxis(H, j, 0).reshape(ranks[j], -1)  # (R_j, rest)
            Sj = np.moveaxis(np.moveaxis(S_t, j, 0), M + j, M)  # (dim_j, rest..., dim_j, rest...)
            Sj = Sj.reshape(dims[j], Hj.shape[1], dims[j], Hj.shape[1])
            A = np.einsum("br,arcs,es->abce", Hj, Sj, Hj, optimize=True).reshape(dims[j] * ranks[j], -1)
            rhs = (np.moveaxis(b_t, j, 0).reshape(dims[j], -1) @ Hj.T).reshape(-1)
            U = np.linalg.lstsq(A, rhs, rcond=None)[0].reshape(dims[j], ranks[j])
            Q, Rq = np.linalg.qr(U)
            Us[j] = Q
            G = mode_product(G, Rq, j)
        T = Us[0]
        for U in Us[1:]:
            T = np.kron(T, U)
        G = np.linalg.lstsq(T.T @ S @ T, T.T @ b, rcond=None)[0].reshape(ranks)
        cur = loss_of(_tucker_full(G, Us))
        if prev - cur <= tol * max(abs(prev), 1e-300):
            conv = True
            break
        prev = cur
    Wp = _tucker_full(G, Us)
    W_hat = (bc.patch_matrix().T @ Wp.reshape(-1)).reshape(1, *design.input_shape)
    resid = y1 - X.reshape(n, -1) @ W_hat.reshape(-1)
    loss = float(resid @ resid / n)
    return _finish("als", W_hat, loss, sweeps, conv, [loss], t0, W_star, cov, n)
