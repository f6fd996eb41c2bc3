"""Planted networks: does the spike-and-slab fit find the 5 relevant of 50 input features and a
hidden layer no wider than needed?

Data: ``x ~ N(0, I_50)``; a teacher ReLU MLP with ``TEACHER`` hidden nodes reads only the first 5
features, ``h = relu(x[:5] A + c)`` (``A`` entries N(0, 1.5²), ``c`` N(0, 0.5²)).
Regression: ``y = standardised(h v) + 0.3 ε``; classification (3 classes):
``y = argmax(h V + Gumbel noise)`` (a draw from the softmax of ``h V``). The student is a ReLU MLP
with 32 hidden nodes (``fit_spike_slab((32,), ...)``) with feature and node indicators.
Reported per seed: feature TPR and FDR at PIP 1/2, hidden nodes kept (PIP > 1/2) against the
teacher's, posterior-predictive accuracy or RMSE, and the median-probability model's score.

    python experiments/bayes_planted.py --quick --out experiments/results/bayes_planted
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from redundancy.bayes import fit_spike_slab
from redundancy.parallel import run_tasks

P, REL, TEACHER, STUDENT = 50, 5, 4, 32


def planted(task, seed, n=1000):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, P)).astype("float32")
    A = rng.normal(size=(REL, TEACHER)) * 1.5
    c = rng.normal(size=TEACHER) * 0.5
    h = np.maximum(X[:, :REL] @ A + c, 0)
    if task == "regression":
        v = rng.choice([-1, 1], TEACHER) * rng.uniform(1, 2, TEACHER)
        y = h @ v
        y = ((y - y.mean()) / y.std() + 0.3 * rng.normal(size=2 * n)).astype("float32")
    else:
        y = np.argmax(h @ (rng.normal(size=(TEACHER, 3)) * 2) + rng.gumbel(size=(2 * n, 3)), 1)
    return X[:n], y[:n], X[n:], y[n:]


def one(t):
    task, seed, epochs, n = t["task"], t["seed"], t["epochs"], t["n"]
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    r = fit_spike_slab((STUDENT,), planted(task, seed, n), epochs=epochs, batch_size=100, lr=1e-2, seed=seed,
                       n_samples=16, temperature=(1.0, 0.05))
    sel = r.feature_pip > 0.5
    return {"task": task, "seed": seed, "feature_tpr": float(sel[:REL].mean()),
            "feature_fdr": float(sel[REL:].sum() / max(sel.sum(), 1)), "features_selected": int(sel.sum()),
            "hidden_kept": int(r.n_nodes_kept[r.layers[0]]), "teacher_hidden": TEACHER, "student_hidden": STUDENT,
            "accuracy": r.accuracy, "rmse": r.rmse, "nll": r.nll, "ece": r.ece, "median_score": r.median_score,
            "noise_scale": r.noise_scale, "feature_pip": r.feature_pip.round(4).tolist(),
            "node_pip_sorted": np.sort(r.node_pip[r.layers[0]])[::-1].round(4).tolist(),
            "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="experiments/results/bayes_planted")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    seeds = range(2) if a.quick else range(5)
    epochs, n = (60, 600) if a.quick else (120, 1000)
    os.makedirs(a.out, exist_ok=True)
    tasks = [dict(task=t, seed=s, epochs=epochs, n=n) for t in ("regression", "classification") for s in seeds]
    rows = run_tasks(one, tasks, backend="sequential" if a.workers == 1 else "loky", n_jobs=a.workers,
                     cache_dir=os.path.join(a.out, "cache"), progress=True)
    summary = {}
    for t in ("regression", "classification"):
        rs = [r for r in rows if r["task"] == t]
        summary[t] = {k: [float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs]))]
                      for k in ("feature_tpr", "feature_fdr", "hidden_kept", "median_score", "nll")}
        summary[t]["score"] = [float(np.mean([r["accuracy"] if t == "classification" else r["rmse"] for r in rs]))]
    out = {"quick": a.quick, "seeds": list(seeds), "epochs": epochs, "n_train": n, "p": P, "relevant": REL,
           "teacher_hidden": TEACHER, "student_hidden": STUDENT, "runs": rows, "summary_mean_sd": summary,
           "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}}
    with open(os.path.join(a.out, "results.json"), "w") as fh:
        json.dump(out, fh, indent=2)
    for t, s in summary.items():
        print(t, {k: [round(v, 3) for v in vals] for k, vals in s.items()})


if __name__ == "__main__":
    main()
