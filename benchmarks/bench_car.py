"""Batched CAR (many channel masks per forward pass) against one model copy per filter.

Baseline (the loop CAR is usually written as): for every output channel of every conv layer, deep-copy
the model, zero the filter (and its BatchNorm scale and shift), and evaluate the copy on the test set
with :func:`redundancy.training.evaluate`. Ours: :func:`redundancy.pruning.car_scores` with
``batch_masks`` variants per pass. Same model (a trained :func:`redundancy.zoo.simple_cnn`),
same data, same run; the scores must be identical. Prints ``ratio = baseline/ours`` from medians of
the process CPU time (single thread).

    python benchmarks/bench_car.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def one_by_one(model, ds, layers):
    """CAR by one deep copy per filter (the independent baseline)."""
    from redundancy.training import evaluate

    base = evaluate(model, ds).accuracy
    out = []
    for conv, bn in layers:
        for ch in range(dict(model.named_modules())[conv].out_channels):
            m = copy.deepcopy(model)
            mods = dict(m.named_modules())
            with torch.no_grad():
                for name in (conv, bn):
                    mods[name].weight[ch] = 0
                    mods[name].bias[ch] = 0
            out.append(base - evaluate(m, ds).accuracy)
    return np.asarray(out)


def timed(fn, repeats):
    """Median CPU time of this process (the machine is shared: wall time measures the neighbours)."""
    times, value = [], None
    for _ in range(repeats):
        t = time.process_time()
        value = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), times, value


def main(argv=None):
    from redundancy.data import load_digits_data, load_mnist1d
    from redundancy.pruning import car_scores
    from redundancy.zoo import simple_cnn
    from redundancy.training import train

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="benchmarks/results")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    repeats = 3 if a.quick else 5
    rows = []
    cases = [("digits", load_digits_data(seed=0), 2, (16, 32)),
             ("mnist1d", load_mnist1d(num_samples=2000 if a.quick else 4000, seed=0), 1, (16, 32, 64, 128))]
    for name, ds, ndim, widths in cases:
        net = simple_cnn(ndim=ndim, widths=widths, seed=0)
        train(net, ds, epochs=3, lr=3e-3, seed=0)
        net.eval()
        layers = [(str(4 * i), str(4 * i + 1)) for i in range(len(widths))]
        t_base, tb, s_base = timed(lambda: one_by_one(net, ds, layers), repeats)
        for bm in (8, 32):
            t_ours, to, res = timed(lambda: car_scores(net, ds, curves=False, batch_masks=bm), repeats)
            same = bool(np.array_equal(res.car, s_base))
            rows.append({"data": name, "channels": int(len(s_base)), "n_test": int(len(ds.y_test)),
                         "batch_masks": bm, "baseline_median_s": t_base, "ours_median_s": t_ours,
                         "baseline_times": tb, "ours_times": to, "ratio": t_base / t_ours,
                         "identical_scores": same, "max_abs_score_diff": float(np.abs(res.car - s_base).max())})
            print(f"{name}: {len(s_base)} channels, batch_masks={bm}: one-by-one {t_base:.3f} s, batched "
                  f"{t_ours:.3f} s, ratio = baseline/ours = {t_base / t_ours:.2f}, identical scores: {same}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_car.json", "w") as fh:
        json.dump({"benchmark": "bench_car", "quick": a.quick, "repeats": repeats, "torch": torch.__version__,
                   "python": platform.python_version(), "threads": 1, "clock": "process_time", "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
