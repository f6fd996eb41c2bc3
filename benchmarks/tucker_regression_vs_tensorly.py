"""Tucker-constrained regression: our ALS (spectral start) and L-BFGS linear-CNN fit vs tensorly's
``TuckerRegressor`` (random start, ridge ``reg_W``) on the same statistical-model data.

Prints, per n, the median time and median ‖Ŵ − W*‖_F of each route over repeats, and
``ratio = baseline_time / our_time`` (baseline: tensorly). Errors are on the raw-input weight.

    OMP_NUM_THREADS=1 python benchmarks/tucker_regression_vs_tensorly.py [--repeats 5]
"""

import argparse
import time
from pathlib import Path


import numpy as np

from redundancy.validation.fit import estimation_errors, fit_linear_cnn, fit_tucker_als
from redundancy.validation.simulate import Design, StatModelGenerator


def tensorly_fit(design, X, y, seed):
    from tensorly.regression.tucker_regression import TuckerRegressor

    bc = design.basic
    Xt = bc.patch_tensor(X).reshape(X.shape[0], *design.kernel, bc.P)
    t0 = time.perf_counter()
    reg = TuckerRegressor(weight_ranks=list(design.spatial_ranks) + [design.rank], tol=1e-10, reg_W=1e-6,
                          n_iter_max=200, random_state=seed, verbose=0)
    reg.fit(Xt, y)
    secs = time.perf_counter() - t0
    W = np.asarray(reg.weight_tensor_).reshape(-1)
    W_eff = (bc.patch_matrix().T @ W).reshape(1, *design.input_shape)
    return W_eff, secs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    design = Design(input_shape=(18, 18), kernel=3, K=8, structure="tucker", rank=2, spatial_ranks=(2, 2))
    gen = StatModelGenerator(design, sigma=1.0, w_norm=5.0, seed=0)
    print(f"design: {design.structure} d={design.input_shape} l={design.kernel} K={design.K} R={design.rank}; "
          f"sigma=1, ||W*||=5, median over {a.repeats} repeats")
    for n in (800, 3200):
        rows = {"ours ALS": ([], []), "ours L-BFGS CNN": ([], []), "tensorly TuckerRegressor": ([], [])}
        for r in range(a.repeats):
            X, y = gen.sample(n, seed=np.random.default_rng([n, r]))
            t0 = time.perf_counter()
            f = fit_tucker_als(design, X, y, W_star=gen.W_star)
            rows["ours ALS"][0].append(time.perf_counter() - t0)
            rows["ours ALS"][1].append(f.error_fro)
            t0 = time.perf_counter()
            f = fit_linear_cnn(design, X, y, W_star=gen.W_star, seed=r)
            rows["ours L-BFGS CNN"][0].append(time.perf_counter() - t0)
            rows["ours L-BFGS CNN"][1].append(f.error_fro)
            W, secs = tensorly_fit(design, X, y, r)
            rows["tensorly TuckerRegressor"][0].append(secs)
            rows["tensorly TuckerRegressor"][1].append(estimation_errors(W, gen.W_star)[0])
        med = {k: (float(np.median(v[0])), float(np.median(v[1]))) for k, v in rows.items()}
        print(f"n = {n}")
        for k, (t, e) in med.items():
            print(f"  {k:26s} time {t:8.4f} s   error {e:.4f}")
        tb = med["tensorly TuckerRegressor"][0]
        print(f"  ratio = baseline_time / our_time: ALS {tb / med['ours ALS'][0]:.2f}, "
              f"L-BFGS {tb / med['ours L-BFGS CNN'][0]:.2f};  error ratio tensorly/ALS "
              f"{med['tensorly TuckerRegressor'][1] / med['ours ALS'][1]:.3f}")


if __name__ == "__main__":
    main()
