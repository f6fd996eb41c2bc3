"""Spike-and-slab node pruning against magnitude pruning and the unpruned network, on real data.

Cases: digits with a ReLU MLP (64, 32) and with a small CNN (conv 8, conv 16, hidden 32), MNIST-1D
with a small 1-D CNN (conv 16, conv 16, hidden 32). For each seed:

* ``dense``: the deterministic network trained by ``redundancy.training.train`` (Adam, cross-entropy);
* ``bayes_predictive``: the spike-and-slab posterior predictive (32 draws) from ``fit_spike_slab``
  on the same architecture (λ = 1/2, σ0 = 1);
* ``bayes_pruned``: the median-probability model (nodes and features with PIP > 1/2, weights μ),
  then ``+ft``: fine-tuned for ``FT`` epochs;
* ``magnitude``: the dense network with, in each hidden layer, the same number of nodes as
  ``bayes_pruned`` kept by largest ``‖w_j‖₂``; then ``+ft``: the same fine-tuning.

Test accuracy, NLL and expected calibration error (15 bins), parameters; mean ± sd over seeds.

    python experiments/bayes_pruning.py --quick --out experiments/results/bayes_pruning
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from redundancy.bayes import fit_spike_slab
from redundancy.bayes.fit import expected_calibration_error
from redundancy.zoo.small import mlp, plain_cnn
from redundancy.bayes.prune import prune_by_inclusion, prune_by_magnitude
from redundancy.data import load_digits_data, load_mnist1d
from redundancy.parallel import run_tasks
from redundancy.training import predict, train

CASES = {"digits-mlp": ("digits", "mlp"), "digits-cnn": ("digits", "cnn"), "mnist1d-cnn": ("mnist1d", "cnn")}


def build(kind, ds, seed):
    if kind == "mlp":
        return mlp(ds.input_shape, (64, 32), ds.n_classes, seed=seed)
    widths = (8, 16) if ds.name == "digits" else (16, 16)
    return plain_cnn(ds.input_shape, widths, ds.n_classes, seed=seed)


def scores(model, ds):
    X = torch.as_tensor(ds.X_test)
    logp = torch.log_softmax(predict(model, X).double(), 1)
    probs = logp.exp().numpy()
    y = ds.y_test
    return {"accuracy": float((probs.argmax(1) == y).mean()), "nll": float(-logp[np.arange(len(y)), y].mean()),
            "ece": expected_calibration_error(probs, y), "params": int(sum(p.numel() for p in model.parameters()))}


def one(t):
    torch.set_num_threads(1)
    data, kind = CASES[t["case"]]
    seed, epochs, ft = t["seed"], t["epochs"], t["ft"]
    ds = load_digits_data(seed=seed) if data == "digits" else load_mnist1d(num_samples=4000, seed=seed)
    t0 = time.perf_counter()
    dense = build(kind, ds, seed)
    train(dense, ds, epochs=epochs, lr=3e-3, batch_size=64, seed=seed)
    out = {"case": t["case"], "seed": seed, "dense": scores(dense, ds)}
    res = fit_spike_slab(build(kind, ds, seed), ds, epochs=epochs, lr=1e-2, batch_size=64, seed=seed,
                         temperature=(1.0, 0.05))
    out["bayes_predictive"] = {"accuracy": res.accuracy, "nll": res.nll, "ece": res.ece}
    pr = prune_by_inclusion(res)
    out["bayes_pruned"] = scores(pr.model, ds)
    counts = dict(pr.nodes_after)
    out["nodes_before"], out["nodes_after"] = dict(pr.nodes_before), counts
    out["features_before"], out["features_after"] = pr.features_before, pr.features_after
    out["layer_redundancy"] = res.layer_redundancy
    # the dense net's leaf names are the same as the fitted one's (same builder)
    mag = prune_by_magnitude(dense, counts, ds.input_shape)
    out["magnitude"] = scores(mag.model, ds)
    if ft:
        ft_pr = prune_by_inclusion(res, data=ds, fine_tune_epochs=ft, lr=1e-3, seed=seed)
        out["bayes_pruned+ft"] = scores(ft_pr.model, ds)
        ft_mag = prune_by_magnitude(dense, counts, ds.input_shape, data=ds, fine_tune_epochs=ft, lr=1e-3, seed=seed)
        out["magnitude+ft"] = scores(ft_mag.model, ds)
    out["seconds"] = time.perf_counter() - t0
    return out


METHODS = ["dense", "bayes_predictive", "bayes_pruned", "bayes_pruned+ft", "magnitude", "magnitude+ft"]


def summarize(rows):
    table = []
    for case in CASES:
        rs = [r for r in rows if r["case"] == case]
        if not rs:
            continue
        for m in METHODS:
            vals = [r[m] for r in rs if m in r]
            if not vals:
                continue
            row = {"case": case, "method": m}
            for k in ("accuracy", "nll", "ece", "params"):
                v = [x[k] for x in vals if k in x]
                if v:
                    row[k] = [float(np.mean(v)), float(np.std(v))]
            table.append(row)
    return table


def plot(rows, table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ("accuracy", "nll", "ece")):
        for i, case in enumerate(CASES):
            rs = [r for r in table if r["case"] == case and metric in r]
            x = np.arange(len(rs)) + i * (len(METHODS) + 1)
            ax.bar(x, [r[metric][0] for r in rs], yerr=[r[metric][1] for r in rs],
                   color=[f"C{METHODS.index(r['method'])}" for r in rs])
        ax.set_title(f"test {metric}")
        ax.set_xticks([i * (len(METHODS) + 1) + 2.5 for i in range(len(CASES))], list(CASES))
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(METHODS))]
    fig.legend(handles, METHODS, loc="lower center", ncol=len(METHODS), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="experiments/results/bayes_pruning")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    a = ap.parse_args()
    cases = [c for c in a.cases.split(",") if c in CASES]
    epochs, ft = (15, 3) if a.quick else (60, 10)
    seeds = [0, 1, 2]
    os.makedirs(a.out, exist_ok=True)
    tasks = [{"case": c, "seed": s, "epochs": epochs, "ft": ft} for c in cases for s in seeds]
    rows = run_tasks(one, tasks, backend="sequential" if a.workers == 1 else "loky", n_jobs=a.workers,
                     cache_dir=os.path.join(a.out, "cache"), progress=True)
    table = summarize(rows)
    plot(rows, table, os.path.join(a.out, "bayes_pruning.png"))
    out = {"quick": a.quick, "cases_run": cases, "epochs": epochs, "fine_tune_epochs": ft, "seeds": seeds,
           "cases": CASES,
           "summary_mean_sd": table, "runs": rows,
           "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}}
    with open(os.path.join(a.out, "results.json"), "w") as fh:
        json.dump(out, fh, indent=2)
    for r in table:
        print(f"{r['case']:12s} {r['method']:17s} " + "  ".join(
            f"{k} {r[k][0]:.4f}±{r[k][1]:.4f}" for k in ("accuracy", "nll", "ece") if k in r)
            + (f"  params {r['params'][0]:.0f}" if "params" in r else ""))


if __name__ == "__main__":
    main()
