"""The K/R simulation study: error curves for Tucker and CP designs at K/R in {1, 2, 4, 8}.

Design of the study (fixed R = 2, stride = kernel, no pooling, σ = 1, ‖W*‖_F = 5, isotropic
Gaussian inputs; every curve uses the same true ``W*`` within a group — it does not depend on K —
and its *own* independent data, so agreement between K values is not forced by common data):

* 2-D Tucker: ``d = 18 x 18``, ``l = 3 x 3``, spatial ranks (2, 2), ``K ∈ {2, 4, 8, 16}``;
  plus the K-free ALS estimator as a reference curve;
* 2-D CP: same shapes, CP rank 2, ``K ∈ {2, 4, 8, 16}``;
* 1-D Tucker: ``d = 64``, ``l = 4``, ranks (2, 2), ``K ∈ {2, 8}``;
* 3-D CP: ``d = 8 x 8 x 8``, ``l = 2``, rank 2, ``K ∈ {2, 8}``.

``n = dof x {8, 16, 32, 64, 128}`` with 5 replications (``quick``: ``dof x {8, 32, 128}``, 2
replications, 2-D cases at K ∈ {2, 16}, the 1-D and 3-D cases at K/R = 4 only).
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

from redundancy.validation.simulate import Design
import redundancy._validation as _v
from redundancy.validation.validate import ErrorCurveResult, _design_dof, _error_curve

__all__ = ["run_study"]

R = 2


@_v.validate_params({"quick": _v.Bool()})
def study_cases(quick: bool = True) -> list[tuple[str, Design, str]]:
    """``(group, design, estimator)`` triples of the study."""
    return _study_cases(quick)


def _study_cases(quick: bool) -> list[tuple[str, Design, str]]:
    ks = (2, 16) if quick else (2, 4, 8, 16)
    out = []
    for K in ks:
        out.append(("2-D Tucker", Design(input_shape=(18, 18), kernel=3, K=K, structure="tucker", rank=R, spatial_ranks=(2, 2)), "lbfgs"))
    out.append(("2-D Tucker", Design(input_shape=(18, 18), kernel=3, K=16, structure="tucker", rank=R, spatial_ranks=(2, 2)), "als"))
    for K in ks:
        out.append(("2-D CP", Design(input_shape=(18, 18), kernel=3, K=K, structure="cp", rank=R), "lbfgs"))
    for K in ((8,) if quick else (2, 8)):
        out.append(("1-D Tucker", Design(input_shape=(64,), kernel=4, K=K, structure="tucker", rank=R, spatial_ranks=2), "lbfgs"))
    for K in ((8,) if quick else (2, 8)):
        out.append(("3-D CP", Design(input_shape=(8, 8, 8), kernel=2, K=K, structure="cp", rank=R), "lbfgs"))
    return out


def _versions() -> dict:
    import joblib
    import scipy
    import torch

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "torch": torch.__version__, "joblib": joblib.__version__}


def _summary(curves: list[tuple[str, ErrorCurveResult]]) -> dict:
    out = {}
    for group in dict.fromkeys(g for g, _ in curves):
        cs = [c for g, c in curves if g == group and c.inputs["estimator"] == "lbfgs"]
        cd = [c.constant_dof for c in cs]
        cn = [c.constant_naive for c in cs]
        out[group] = {
            "K": [c.inputs["design"]["K"] for c in cs], "kr_ratio": [c.inputs["design"]["K"] / R for c in cs],
            "dof": [c.dof for c in cs], "naive": [c.naive for c in cs], "slope": [c.slope for c in cs],
            "slope_ci": [list(c.slope_ci) for c in cs], "constant_dof": cd, "constant_naive": cn,
            "constant_dof_max_over_min": max(cd) / min(cd), "constant_naive_max_over_min": max(cn) / min(cn),
            "sqrt_naive_max_over_min": math.sqrt(max(c.naive for c in cs) / min(c.naive for c in cs)),
            "sqrt_kr_max_over_min": math.sqrt(max(c.inputs["design"]["K"] for c in cs) / min(c.inputs["design"]["K"] for c in cs)),
        }
    slopes = [c.slope for _, c in curves]
    out["all curves"] = {"mean_slope": float(np.mean(slopes)), "min_slope": min(slopes), "max_slope": max(slopes)}
    return out


def _figures(curves, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    groups = list(dict.fromkeys(g for g, _ in curves))
    paths = []
    for kind in ("n", "dof", "naive"):
        fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
        for ax, group in zip(axes[0], groups):
            for g, c in curves:
                if g != group:
                    continue
                if kind == "n":
                    x = c.n_grid
                else:
                    count = c.dof if kind == "dof" else c.naive
                    x = np.sqrt(c.sigma ** 2 * count / c.n_grid)
                lab = f"K/R={c.inputs['design']['K'] // R}" + (" (ALS)" if c.inputs["estimator"] == "als" else "")
                ax.loglog(x, c.rms_errors, "o-" if c.inputs["estimator"] == "lbfgs" else "k--", label=lab, ms=4)
            if kind != "n":
                lo, hi = ax.get_xlim()
                ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="error = x")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(group)
            ax.set_xlabel({"n": "n (samples)", "dof": "σ·sqrt(dof / n)", "naive": "σ·sqrt(naive count / n)"}[kind])
            ax.set_ylabel("RMS ‖Ŵ − W*‖_F")
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / {"n": "error_vs_n.png", "dof": "error_vs_sqrt_dof_over_n.png",
                          "naive": "error_vs_sqrt_naive_over_n.png"}[kind]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(str(path))
    return paths


@_v.validate_params({"out_dir": _v.PathArg(), "quick": _v.Bool(), "seed": _v.Int(0), "progress": _v.Bool()})
def run_study(out_dir, quick: bool = True, seed: int = 0, progress: bool = True, *, backend: str = "loky",
              n_jobs: int = 2) -> dict:
    """Run the study, write ``simulate_kr.json`` and three PNG figures into ``out_dir``; return the JSON dict.

    Finished fits are cached under ``out_dir/cache`` so an interrupted run resumes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    factors = (8, 32, 128) if quick else (8, 16, 32, 64, 128)
    n_reps = 2 if quick else 5
    sigma, w_norm = 1.0, 5.0

    curves = []
    for i, (group, design, est) in enumerate(_study_cases(quick)):
        dof = _design_dof(design)
        res = _error_curve(design, np.asarray([f * dof for f in factors]), n_reps=n_reps, sigma=sigma,
                           w_norm=w_norm, cov=None, estimator=est, dof=None, seed=seed, data_seed=seed * 1000 + i,
                           fit_options=None, backend=backend, n_jobs=n_jobs, cache_dir=out_dir / "cache",
                           progress=progress, label=f"{group} K={design.K} R={R}" + (" ALS" if est == "als" else ""))
        curves.append((group, res))
    result = {
        "study": "simulate_kr", "inputs": {"quick": quick, "seed": seed, "n_over_dof": list(factors),
                                          "n_reps": n_reps, "sigma": sigma, "w_norm": w_norm, "R": R,
                                          "stride": "= kernel", "pool": 1, "input_covariance": "identity"},
        "versions": _versions(),
        "curves": [dict(c.to_dict(), group=g) for g, c in curves],
        "summary": _summary(curves),
    }
    result["figures"] = _figures(curves, out_dir)
    with open(out_dir / "simulate_kr.json", "w") as fh:
        json.dump(result, fh, indent=1)
    return result
