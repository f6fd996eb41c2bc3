"""Benchmark: models trained per second, vmapped ensemble against a sequential loop, same run.

Feldman-Zhang memorization needs hundreds of small models, each trained on a random 70 % subset.
Ours: :func:`redundancy.training.train_ensemble` trains ``T`` models at once (``torch.func.vmap``
over stacked parameters). Baseline: the same ``T`` models (same initial weights, subsets, batch
seeds, settings) trained one after another with :func:`redundancy.training.train`. Both give the
same weights up to float rounding (checked here: the largest weight difference is reported).
Data: scikit-learn digits (1257 training images, 8x8), subsets of 880; models: an MLP 64-128-10 and
the small CNN of :func:`redundancy.zoo.small.two_conv_cnn` (width 8). ``ratio = baseline / ours`` from the
medians of the time per model over ``repeats`` alternated runs.

Usage::

    python benchmarks/bench_memorization.py            # T = 64 models, 3 epochs, 3 repeats
    python benchmarks/bench_memorization.py --quick    # T = 16, 2 epochs, 2 repeats
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

import redundancy
from redundancy.data import load_digits_data
from redundancy.longtail.subsample import draw_runs, make_models
from redundancy.zoo.small import mlp_classifier, two_conv_cnn
from redundancy.training import train, train_ensemble

ROOT = Path(__file__).resolve().parents[1]


def bench(arch, ds, T, epochs, repeats, batch_size=64, lr=1e-3):
    make = {"mlp": lambda: mlp_classifier((1, 8, 8), 10, hidden=(128,)),
            "cnn": lambda: two_conv_cnn((1, 8, 8), 10, width=8)}[arch]
    sub, init, order = draw_runs(len(ds.y_train), T, 0.7, seed=0)
    kw = dict(epochs=epochs, batch_size=batch_size, lr=lr)
    t_ours, t_base, diff = [], [], 0.0
    warm = make_models(make, init[:2])  # warm-up: first-call imports (torch.optim loads torch._dynamo), caches
    train_ensemble(copy.deepcopy(warm), ds, sub[:2], seeds=order[:2], epochs=1)
    train(warm[0], (ds.X_train[sub[0]], ds.y_train[sub[0]]), seed=0, epochs=1)
    for _ in range(repeats):
        models = make_models(make, init)
        refs = copy.deepcopy(models)
        t0 = time.perf_counter()
        train_ensemble(models, ds, sub, seeds=order, **kw)
        t_ours.append((time.perf_counter() - t0) / T)
        t0 = time.perf_counter()
        for t in range(T):
            train(refs[t], (ds.X_train[sub[t]], ds.y_train[sub[t]]), seed=order[t], **kw)
        t_base.append((time.perf_counter() - t0) / T)
        diff = max(diff, max(float((p - q).detach().abs().max()) for a, b in zip(models, refs)
                             for p, q in zip(a.parameters(), b.parameters())))
    ours, base = statistics.median(t_ours), statistics.median(t_base)
    return {"arch": arch, "n_models": T, "epochs": epochs, "subset_size": int(sub.shape[1]), "batch_size": batch_size,
            "seconds_per_model_ours": ours, "seconds_per_model_baseline": base,
            "models_per_second_ours": 1 / ours, "models_per_second_baseline": 1 / base, "ratio": base / ours,
            "max_weight_difference": diff, "times_ours": t_ours, "times_baseline": t_base}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    T, epochs, repeats = (16, 2, 2) if args.quick else (64, 3, 3)
    ds = load_digits_data(seed=0)
    rows = []
    for arch in ("mlp", "cnn"):
        r = bench(arch, ds, T, epochs, repeats)
        rows.append(r)
        print(f"{arch}: ours {r['models_per_second_ours']:.2f} models/s, sequential "
              f"{r['models_per_second_baseline']:.2f} models/s, ratio = baseline/ours = {r['ratio']:.1f}x "
              f"(max weight difference {r['max_weight_difference']:.2e})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"benchmark": "bench_memorization", "quick": args.quick, "baseline": "redundancy.training.train, one model "
           "after another", "ours": "redundancy.training.train_ensemble (torch.func.vmap)", "rows": rows,
           "versions": {"redundancy": redundancy.__version__, "torch": torch.__version__, "numpy": np.__version__,
                        "python": platform.python_version()},
           "threads": torch.get_num_threads(), "machine": platform.machine()}
    path = out / ("memorization_quick.json" if args.quick else "memorization.json")
    path.write_text(json.dumps(res, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
