"""Error-versus-sample-size curves on the statistical model.

:func:`error_curve` draws one true network from a :class:`~redundancy.validation.simulate.Design` (seeded),
then for every ``n`` in a grid and every replication draws fresh data and fits it
(:mod:`redundancy.validation.fit`), and summarises the Frobenius errors ``e_{n,j} = ‖Ŵ − W*‖_F`` on the raw
input. Summaries (with ``ē_n = sqrt(mean_j e_{n,j}²)``, the root mean square over replications):

* **slope**: ordinary least squares of ``log ē_n`` on ``log n``; its 95 % interval is the
  percentile bootstrap over replications (resampled within each ``n``, 2000 draws, seeded).
  Theory: ``-1/2``.
* **constant_dof** ``C = geomean_n ē_n / sqrt(σ² dof / n)``: the bound ``‖Ŵ − W*‖_F ≲
  C σ sqrt(dof/n)`` with the fitted ``C`` (≈ 1 for an isotropic Gaussian design and large n:
  least squares on a ``dof``-dimensional manifold gives ``E‖Δ‖² ≈ σ² dof/(n − dof)``);
  **constant_naive** the same with the naive parameter count in place of ``dof``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redundancy._validation import as_generator, check_choice, check_int, check_nonnegative_float, check_positive_float
from redundancy.errors import RedundancyError
from redundancy.parallel import run_tasks
from redundancy.validation.simulate import Design, StatModelGenerator
import redundancy._validation as _v

__all__ = ["error_curve", "ErrorCurveResult"]


@_v.result
class ErrorCurveResult(_v.Result):
    """Errors over an ``n`` grid and replications, with the fitted slope and constants.

    Attributes
    ----------
    n_grid : numpy.ndarray
        Sample sizes, increasing.
    errors : numpy.ndarray
        ``‖Ŵ − W*‖_F``, shape ``(len(n_grid), n_reps)``.
    dof, naive : int
        Degrees of freedom of the structured set and the naive parameter count of the network.
    sigma : float
        Noise level.
    slope : float
        Log-log slope of the RMS error against ``n``; ``slope_ci`` its 95 % bootstrap interval.
    constant_dof, constant_naive : float
        ``geomean_n(ē_n / sqrt(σ² dof / n))`` and the same with ``naive``.
    label : str
    prediction_errors : numpy.ndarray
        ``sqrt(vec Δᵀ Σ_x vec Δ)``, same shape as ``errors``.
    inputs : dict
        Everything that produced the curve (design, seeds, estimator, options).
    seconds : float
        Total fitting time (sum over fits).
    """

    n_grid: np.ndarray
    errors: np.ndarray
    dof: int
    naive: int
    sigma: float
    slope: float
    slope_ci: tuple[float, float]
    constant_dof: float
    constant_naive: float
    label: str
    prediction_errors: np.ndarray | None = None
    inputs: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rms_errors(self) -> np.ndarray:
        """``ē_n = sqrt(mean_j e_{n,j}²)`` per grid point."""
        return np.sqrt((self.errors ** 2).mean(axis=1))

    def _extra_dict(self) -> dict[str, Any]:
        return {"rms_errors": self.rms_errors}

    def to_pandas(self):
        """One row per (n, replication): ``label, n, rep, error, prediction_error, sqrt_dof_over_n,
        sqrt_naive_over_n``."""
        import pandas as pd

        rows = []
        for i, n in enumerate(self.n_grid):
            for j in range(self.errors.shape[1]):
                rows.append({"label": self.label, "n": int(n), "rep": j, "error": float(self.errors[i, j]),
                             "prediction_error": None if self.prediction_errors is None
                             else float(self.prediction_errors[i, j]),
                             "sqrt_dof_over_n": math.sqrt(self.sigma ** 2 * self.dof / n),
                             "sqrt_naive_over_n": math.sqrt(self.sigma ** 2 * self.naive / n)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"ErrorCurveResult({self.label!r}, n={self.n_grid.tolist()}, reps={self.errors.shape[1]}, "
                f"dof={self.dof}, naive={self.naive}, slope={self.slope:.3f} "
                f"[{self.slope_ci[0]:.3f}, {self.slope_ci[1]:.3f}], C_dof={self.constant_dof:.3f}, "
                f"C_naive={self.constant_naive:.3f})")


@_v.validate_params({"design": _v.Instance(Design, "Design")})
def design_dof(design: Design) -> int:
    """Degrees of freedom of the design's whole-network tensor on the raw input.

    Delegates to :func:`redundancy.linear.dof.degrees_of_freedom_spec` on :meth:`Design.spec`: the closed
    form (vanilla ``K(L + P − K)``, Tucker ``Π R_i·R + Σ(l_i R_i − R_i²) + PR − R²`` with rank
    clipping, CP ``R(Σ l_i + P − N)`` under Kruskal's condition, ``r(l + P − r)`` for a 1-D CP)
    where it is proved and the raw-input map is injective, the numerical Jacobian rank otherwise.
    Checked against an independent Jacobian rank of ``θ ↦ W_eff(θ)`` in ``tests/test_validate.py``.
    """
    return _design_dof(design)


def _design_dof(design: Design) -> int:
    from redundancy.linear.dof import degrees_of_freedom_spec

    return int(degrees_of_freedom_spec(design.spec()).dof)


@_v.validate_params({"n_grid": _v.Array(min_ndim=1, max_ndim=1, min_size=2), "errors": _v.Array(min_ndim=2, max_ndim=2), "dof": _v.Int(1, 10 ** 18), "naive": _v.Int(1, 10 ** 18), "sigma": _v.Float(0.0), "n_boot": _v.Int(1, 10 ** 6), "seed": _v.Seed(allow_none=True, allow_generator=True)})
def curve_statistics(n_grid, errors, *, dof: int, naive: int, sigma: float, n_boot: int = 2000,
                     seed=0) -> dict[str, Any]:
    """Slope (OLS of ``log ē_n`` on ``log n``), its bootstrap 95 % interval, and the two constants.

    Examples
    --------
    >>> n = np.array([100, 400, 1600]); e = np.sqrt(10 / n)[:, None] * np.ones((3, 2))
    >>> s = curve_statistics(n, e, dof=10, naive=40, sigma=1.0)
    >>> round(s["slope"], 6), round(s["constant_dof"], 6), round(s["constant_naive"], 6)
    (-0.5, 1.0, 0.5)
    """
    n_grid = np.asarray(n_grid, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] != n_grid.size or n_grid.size < 2:
        raise RedundancyError(f"errors has shape {errors.shape}; expected (len(n_grid) >= 2, n_reps) with "
                              f"len(n_grid)={n_grid.size}")
    if not (np.isfinite(errors).all() and (errors > 0).all()):
        raise RedundancyError("errors must be finite and > 0 to fit a log-log slope")
    x = np.log(n_grid)

    def slope_of(e):
        return float(np.polyfit(x, np.log(np.sqrt((e ** 2).mean(axis=1))), 1)[0])

    rms = np.sqrt((errors ** 2).mean(axis=1))
    rng = as_generator(seed)
    reps = errors.shape[1]
    boots = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(reps, size=errors.shape)
        boots[b] = slope_of(np.take_along_axis(errors, idx, axis=1))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if reps > 1 else (np.nan, np.nan)
    scale = np.sqrt(n_grid)
    c_dof = float(np.exp(np.mean(np.log(rms * scale / (sigma * math.sqrt(dof)))))) if sigma > 0 else float("nan")
    c_naive = float(np.exp(np.mean(np.log(rms * scale / (sigma * math.sqrt(naive)))))) if sigma > 0 else float("nan")
    return {"slope": slope_of(errors), "slope_ci": (float(lo), float(hi)), "constant_dof": c_dof,
            "constant_naive": c_naive}


def _curve_task(task: dict) -> dict:
    """One fit: rebuild the truth from the task's seed, draw data, fit, report errors."""
    import torch

    torch.set_num_threads(1)
    from redundancy.validation.fit import fit_linear_cnn, fit_tucker_als

    design = Design(**task["design"])
    cov = None if task["cov"] is None else np.asarray(task["cov"])
    gen = StatModelGenerator(design, sigma=task["sigma"], w_norm=task["w_norm"], cov=cov, seed=task["seed"])
    X, y = gen.sample(task["n"], seed=np.random.default_rng([task["data_seed"], task["rep"], task["n"]]))
    if task["estimator"] == "als":
        fit = fit_tucker_als(design, X, y, W_star=gen.W_star, cov=cov, **task["fit_options"])
    else:
        fit = fit_linear_cnn(design, X, y, W_star=gen.W_star, cov=cov,
                             seed=np.random.default_rng([task["data_seed"], task["rep"], task["n"], 7]), **task["fit_options"])
    return {"error_fro": fit.error_fro, "prediction_error": fit.prediction_error, "train_loss": fit.train_loss,
            "n_iter": fit.n_iter, "converged": fit.converged, "seconds": fit.seconds}


def _check_grid(name: str, n_grid: Any) -> np.ndarray:
    grid = np.asarray([int(v) for v in n_grid]) if np.ndim(n_grid) == 1 else None
    if grid is None or grid.size < 2 or np.any(np.diff(grid) <= 0) or grid[0] < 1:
        raise RedundancyError(f"{name}={n_grid!r} is not allowed; give at least two increasing integers >= 1")
    return grid


@_v.validate_params({"design": _v.Instance(Design, "Design"), "n_grid": _v.Check(_check_grid), "n_reps": _v.Int(1),
                     "sigma": _v.Check(check_nonnegative_float), "w_norm": _v.Check(check_positive_float),
                     "estimator": _v.Choice("lbfgs", "als"), "seed": _v.Int(0), "data_seed": _v.NoneOr(_v.Int(0)),
                     "dof": _v.NoneOr(_v.Int(1))})
def error_curve(design: Design, n_grid, *, n_reps: int = 5, sigma: float = 1.0, w_norm: float = 5.0, cov=None,
                estimator: str = "lbfgs", dof: int | None = None, seed: int = 0, data_seed: int | None = None,
                fit_options: dict | None = None, backend: str = "sequential", n_jobs: int = 1, cache_dir=None,
                progress: bool = True, label: str | None = None) -> ErrorCurveResult:
    """Estimation error ``‖Ŵ − W*‖_F`` over an ``n`` grid and replications.

    Parameters
    ----------
    design : Design
        Architecture of the truth and of the fitted network.
    n_grid : sequence of int
        Sample sizes (at least two, increasing).
    n_reps : int
        Replications per ``n`` (fresh data each; the truth is fixed by ``seed``).
    sigma, w_norm, cov
        Noise level, ``‖W*‖_F`` and input covariance (:class:`~redundancy.validation.simulate.StatModelGenerator`).
    estimator : {"lbfgs", "als"}
        :func:`~redundancy.validation.fit.fit_linear_cnn` or :func:`~redundancy.validation.fit.fit_tucker_als`.
    dof : int, optional
        Degrees of freedom; default: the closed form for the design (single output).
    seed : int
        Seed of the truth. ``data_seed`` (default ``seed``) seeds the data: replication ``j`` at
        ``n`` uses ``default_rng([data_seed, j, n])``, so designs sharing seeds see the same data.
    fit_options : dict, optional
        Extra keyword arguments of the estimator (e.g. ``{"n_restarts": 2}``).
    backend, n_jobs, cache_dir, progress
        Passed to :func:`~redundancy.parallel.run_tasks` (finished fits cached; a rerun resumes).
    label : str, optional

    Returns
    -------
    ErrorCurveResult

    Examples
    --------
    >>> d = Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1)
    >>> res = error_curve(d, [40, 160], n_reps=2, sigma=0.5, progress=False)
    >>> res.errors.shape, res.dof
    ((2, 2), 5)
    """
    return _error_curve(design, np.asarray(n_grid), n_reps=n_reps, sigma=sigma, w_norm=w_norm, cov=cov,
                        estimator=estimator, dof=dof, seed=seed, data_seed=data_seed, fit_options=fit_options,
                        backend=backend, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress, label=label)


def _error_curve(design: Design, grid: np.ndarray, *, n_reps, sigma, w_norm, cov, estimator, dof, seed, data_seed,
                 fit_options, backend, n_jobs, cache_dir, progress, label) -> ErrorCurveResult:
    """The kernel of :func:`error_curve` (arguments already checked)."""
    data_seed = seed if data_seed is None else data_seed
    dof = _design_dof(design) if dof is None else dof
    naive = design.naive_parameter_count()
    fit_options = dict(fit_options or {})
    label = label or f"{design.structure} K={design.K} R={design.rank} d={design.input_shape}"
    cov_arr = None if cov is None else np.asarray(cov, dtype=np.float64)
    base = {"design": design.to_dict(), "sigma": sigma, "w_norm": w_norm, "cov": cov_arr, "seed": seed,
            "data_seed": data_seed, "estimator": estimator, "fit_options": fit_options, "version": 1}
    tasks = [dict(base, n=int(n), rep=j) for n in grid for j in range(n_reps)]
    t0 = time.perf_counter()
    out = run_tasks(_curve_task, tasks, backend=backend, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                    desc=label)
    errors = np.array([o["error_fro"] for o in out]).reshape(grid.size, n_reps)
    pred = np.array([o["prediction_error"] for o in out]).reshape(grid.size, n_reps)
    stats = curve_statistics(grid, errors, dof=dof, naive=naive, sigma=sigma, seed=seed)
    inputs = {k: v for k, v in base.items() if k != "cov"}
    inputs.update(n_reps=n_reps, cov=None if cov_arr is None else "user matrix",
                  n_not_converged=int(sum(not o["converged"] for o in out)),
                  fit_seconds=float(sum(o["seconds"] for o in out)), wall_seconds=time.perf_counter() - t0)
    return ErrorCurveResult(n_grid=grid, errors=errors, dof=int(dof), naive=int(naive), sigma=sigma,
                            slope=stats["slope"], slope_ci=stats["slope_ci"], constant_dof=stats["constant_dof"],
                            constant_naive=stats["constant_naive"], label=label, prediction_errors=pred,
                            inputs=inputs, seconds=float(sum(o["seconds"] for o in out)))

