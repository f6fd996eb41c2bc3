"""K/R ablation on real data: small non-linear CNNs with bottleneck blocks on digits and MNIST-1D.

Each network: stem conv (1 -> 16, BN, ReLU), two bottleneck blocks
``1x1 conv C->R, k conv R->R, 1x1 conv R->K``, each conv followed by BatchNorm and ReLU (average pooling by 2 between them),
global average pooling and a linear classifier ``K -> 10``. K/R in {1, 2, 4, 8}:
(a) fixed R = 8, K in {8, 16, 32, 64}; (b) fixed K = 32, R in {32, 16, 8, 4}.
Trained with :func:`redundancy.training.train` (Adam, lr 3e-3, batch 64, a fixed number of steps
whatever the training-set size; each epoch a seeded shuffle), cross-entropy; test accuracy from
:func:`redundancy.training.evaluate` for several training-set sizes, mean ± sd over 3 seeds;
parameters and MACs from :func:`redundancy.count_macs`.
Data: scikit-learn's digits (2-D, 8x8) and MNIST-1D from the ``mnist1d`` generator (1-D, length
40); nothing is downloaded. Finished runs are cached (``--out``/cache) so a rerun resumes.

    python experiments/kr_ablation_real.py --quick --out experiments/results/kr_ablation_real
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from redundancy.parallel import run_tasks

R_FIXED, K_FIXED = 8, 32
RATIOS = (1, 2, 4, 8)


def configs():
    """(ablation, K, R) for both ablations."""
    out = [("a: fixed R", R_FIXED * r, R_FIXED) for r in RATIOS]
    out += [("b: fixed K", K_FIXED, K_FIXED // r) for r in RATIOS]
    return out


def build(ndim, K, R, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    Conv = nn.Conv2d if ndim == 2 else nn.Conv1d
    BN = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm1d
    Pool = nn.AvgPool2d if ndim == 2 else nn.AvgPool1d
    k = 3 if ndim == 2 else 5

    def cbr(c_in, c_out, size):
        return [Conv(c_in, c_out, size, padding=size // 2, bias=False), BN(c_out), nn.ReLU()]

    def block(c):
        return cbr(c, R, 1) + cbr(R, R, k) + cbr(R, K, 1)

    layers = [*cbr(1, 16, k), *block(16), Pool(2), *block(K)]
    pool = nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool1d(1)
    return nn.Sequential(*layers, pool, nn.Flatten(), nn.Linear(K, 10))


def _load(name):
    from redundancy.data import load_digits_data, load_mnist1d

    return load_digits_data(seed=0) if name == "digits" else load_mnist1d(num_samples=4000, seed=42)


def train_one(task):
    """Train one network; return test accuracy, params, MACs."""
    import torch

    from redundancy import count_macs, parameter_count
    from redundancy.training import evaluate, train

    torch.set_num_threads(1)
    ds = _load(task["dataset"]).subsample(task["n_train"], seed=task["seed"])
    ndim = len(ds.input_shape) - 1
    net = build(ndim, task["K"], task["R"], task["seed"])
    fit = train(net, ds, epochs=None, max_steps=task["steps"], batch_size=64, lr=3e-3, seed=task["seed"])
    return {"test_accuracy": evaluate(net, ds).accuracy, "train_accuracy": evaluate(net, ds, split="train").accuracy,
            "params": parameter_count(net), "macs": sum(count_macs(net, ds.input_shape).values()), "seconds": fit.seconds}


def figures(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dsname in sorted({r["dataset"] for r in rows}):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        for ax, abl in zip(axes, ("a: fixed R", "b: fixed K")):
            sel = [r for r in rows if r["dataset"] == dsname and r["ablation"] == abl]
            for K, R in sorted({(r["K"], r["R"]) for r in sel}, key=lambda kr: kr[0] / kr[1]):
                pts = sorted({r["n_train"] for r in sel})
                m = [np.mean([r["test_accuracy"] for r in sel if (r["K"], r["R"], r["n_train"]) == (K, R, n)]) for n in pts]
                s = [np.std([r["test_accuracy"] for r in sel if (r["K"], r["R"], r["n_train"]) == (K, R, n)], ddof=1)
                     for n in pts]
                ax.errorbar(pts, m, yerr=s, marker="o", capsize=3, label=f"K={K}, R={R} (K/R={K // R})")
            ax.set_xscale("log")
            ax.set_xlabel("training-set size")
            ax.set_ylabel("test accuracy (mean ± sd)")
            ax.set_title(f"{dsname}, {abl}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / f"accuracy_vs_n_{dsname}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="experiments/results/kr_ablation_real")
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"digits": (150, 1257) if a.quick else (150, 400, 1257),
             "mnist1d": (400, 3200) if a.quick else (400, 1200, 3200)}
    steps = 500 if a.quick else 1500
    tasks, meta = [], []
    for dsname, ns in sizes.items():
        for abl, K, R in configs():
            for n in ns:
                for seed in range(a.seeds):
                    tasks.append({"dataset": dsname, "K": K, "R": R, "n_train": n, "seed": seed, "steps": steps})
                    meta.append({"ablation": abl})
    t0 = time.perf_counter()
    unique = list({json.dumps(t, sort_keys=True): t for t in tasks}.values())  # (a) and (b) share K=32, R=8
    # train_one is defined in __main__: joblib's loky pickles it (and what it uses) by value
    done = run_tasks(train_one, unique, backend="loky", n_jobs=a.n_jobs, cache_dir=out / "cache", progress=True)
    by_key = {json.dumps(t, sort_keys=True): r for t, r in zip(unique, done)}
    rows = [dict(t, **m, **by_key[json.dumps(t, sort_keys=True)]) for t, m in zip(tasks, meta)]
    summary = []
    for dsname in sizes:
        for abl, K, R in configs():
            for n in sizes[dsname]:
                acc = [r["test_accuracy"] for r in rows if (r["dataset"], r["ablation"], r["K"], r["R"], r["n_train"])
                       == (dsname, abl, K, R, n)]
                one = next(r for r in rows if (r["dataset"], r["K"], r["R"]) == (dsname, K, R))
                summary.append({"dataset": dsname, "ablation": abl, "K": K, "R": R, "K/R": K // R, "n_train": n,
                                "mean_accuracy": float(np.mean(acc)), "sd_accuracy": float(np.std(acc, ddof=1)),
                                "params": one["params"], "macs": one["macs"]})
    import torch

    result = {"study": "kr_ablation_real", "inputs": {"quick": a.quick, "sizes": sizes, "steps": steps,
                                                      "seeds": list(range(a.seeds)), "R_fixed": R_FIXED,
                                                      "K_fixed": K_FIXED, "optimizer": "Adam lr 3e-3 batch 64 (redundancy.training.train)"},
              "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
              "summary": summary, "runs": rows, "seconds": time.perf_counter() - t0}
    result["figures"] = figures(rows, out)
    with open(out / "kr_ablation_real.json", "w") as fh:
        json.dump(result, fh, indent=1)
    for s in summary:
        print(f"{s['dataset']:8s} {s['ablation']:11s} K={s['K']:3d} R={s['R']:3d} n={s['n_train']:5d} "
              f"acc={s['mean_accuracy']:.3f}±{s['sd_accuracy']:.3f} params={s['params']} macs={s['macs']}")
    print("figures:", *result["figures"], sep="\n  ")
    print(f"done in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
