"""CAR pruning against baselines on small CNNs trained on digits and MNIST-1D.

For each data set and seed a :func:`redundancy.zoo.simple_cnn` (conv-BN-ReLU-maxpool x2, widths
16 and 32, linear classifier) is trained with :func:`redundancy.training.train`. Then for every
criterion (greedy CAR with recomputation after each removal, L1, L2, random, mean |activation|,
first-order Taylor), every fraction (25/50/75 %) and every scope (each conv layer alone, and the
whole network with one global ranking) the channels are removed physically with Torch-Pruning
and the test accuracy is read before and after a short fine-tuning. Scores are computed on a
seeded subset of the training split; accuracies are on the test split.

Also per data set (seed 0): CAR on the test split with class-wise CAR and layer redundancy curves;
figures of the curves (with the fine-tuned greedy-CAR points), the class-wise heat map and the
first-layer filters kept and pruned at 50 %.

    python experiments/car_pruning.py --quick --out experiments/results/car_pruning
    python experiments/car_pruning.py --out experiments/results/car_pruning_full

Finished runs are cached in ``--cache`` (trained weights and each pruning run), so a rerun resumes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

CRITERIA = ("car", "l1", "l2", "random", "activation", "taylor")
FRACTIONS = (0.25, 0.5, 0.75)


def settings(quick: bool) -> dict:
    if quick:
        return {"seeds": [0], "mnist1d_samples": 2000, "train_epochs": 15, "finetune_epochs": 2,
                "score_examples": 300, "fractions": list(FRACTIONS), "lr": 3e-3}
    return {"seeds": [0, 1, 2], "mnist1d_samples": 4000, "train_epochs": 30, "finetune_epochs": 3,
            "score_examples": 500, "fractions": list(FRACTIONS), "lr": 3e-3}


@functools.lru_cache(maxsize=4)
def dataset(name: str, n: int):
    from redundancy.data import load_digits_data, load_mnist1d

    return load_digits_data(seed=0) if name == "digits" else load_mnist1d(num_samples=n, seed=0)


def trained(name: str, seed: int, cfg: dict, cache: str):
    """The trained CNN for (data set, seed), its weights cached in ``cache``."""
    from redundancy.zoo import simple_cnn
    from redundancy.training import train

    ds = dataset(name, cfg["mnist1d_samples"])
    net = simple_cnn(ndim=2 if name == "digits" else 1, widths=(16, 32), seed=seed)
    os.makedirs(os.path.join(cache, "models"), exist_ok=True)
    ck = os.path.join(cache, "models", f"{name}_{seed}_{cfg['train_epochs']}_{cfg['mnist1d_samples']}.pt")
    train(net, ds, epochs=cfg["train_epochs"], lr=cfg["lr"], batch_size=64, seed=seed, checkpoint=ck)
    return net.eval(), ds


def run_one(task: dict) -> dict:
    """One pruning run (a picklable module-level function for run_tasks)."""
    from redundancy.pruning import prune

    cfg = task["cfg"]
    net, ds = trained(task["data"], task["seed"], cfg, task["cache"])
    t0 = time.perf_counter()
    layers = None if task["scope"] == "network" else [task["scope"]]
    res = prune(net, ds, criterion=task["criterion"], target=task["fraction"], layers=layers,
                max_examples=cfg["score_examples"], finetune_epochs=cfg["finetune_epochs"], seed=task["seed"],
                finetune_kw={"lr": 1e-3}, max_accuracy_drop=None)
    return {"test_before": res.test_before, "test_after": res.test_after, "test_finetuned": res.test_finetuned,
            "removed": len(res.removed), "params_before": res.params_before, "params_after": res.params_after,
            "macs_before": res.macs_before, "macs_after": res.macs_after, "max_abs_diff": res.max_abs_diff,
            "channels_after": res.channels_after, "removed_units": [list(u) for u in res.removed],
            "seconds": time.perf_counter() - t0}


def summarise(rows):
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for (data, scope, frac), sub in df.groupby(["data", "scope", "fraction"]):
        for col in ("test_after", "test_finetuned"):
            means = sub.groupby("criterion")[col].mean()
            best_base = means.drop("car").max()
            out.append({"data": data, "scope": scope, "fraction": frac, "value": col,
                        **{c: round(float(means[c]), 4) for c in CRITERIA},
                        **{f"{c}_sd": round(float(sub[sub.criterion == c][col].std(ddof=0)), 4) for c in CRITERIA},
                        "seeds": int(sub.seed.nunique()),
                        "car_minus_best_baseline": round(float(means["car"] - best_base), 4),
                        "best_baseline": str(means.drop("car").idxmax())})
    return out


def figures(rows, cars, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from redundancy.plotting import CARCurveDisplay, ClasswiseCARDisplay, FilterDisplay, PruningAccuracyDisplay

    df = pd.DataFrame(rows)
    files = []
    for data, sub in df.groupby("data"):
        scopes = list(dict.fromkeys(sub.scope))
        fig, axes = plt.subplots(2, len(scopes), figsize=(4.6 * len(scopes), 8), squeeze=False)
        for j, scope in enumerate(scopes):
            for i, col in enumerate(("test_after", "test_finetuned")):
                PruningAccuracyDisplay.from_records(sub[sub.scope == scope], value=col,
                                                    title=f"{data}: {scope} ({'fine-tuned' if i else 'no fine-tuning'})"
                                                    ).plot(ax=axes[i, j])
        fig.tight_layout()
        files.append(out / f"accuracy_{data}.png")
        fig.savefig(files[-1], dpi=100)
        plt.close(fig)
    for data, info in cars.items():
        res, net, ft, removed0 = info["result"], info["net"], info["finetuned"], info["removed_first"]
        d = CARCurveDisplay.from_result(res, finetuned=ft, title=f"{data}: layer redundancy curves (test)").plot()
        files.append(out / f"curves_{data}.png")
        d.figure_.savefig(files[-1], dpi=100)
        plt.close(d.figure_)
        d = ClasswiseCARDisplay.from_result(res, res.layer[-1], title=f"{data}: class-wise CAR, layer {res.layer[-1]}").plot()
        files.append(out / f"classwise_{data}.png")
        d.figure_.savefig(files[-1], dpi=100)
        plt.close(d.figure_)
        d = FilterDisplay.from_module(net[0], removed0, title=f"{data}: first-layer filters kept and pruned by greedy CAR at 50 %").plot()
        files.append(out / f"filters_{data}.png")
        d.figure_.savefig(files[-1], dpi=100)
        plt.close(d.figure_)
    return files


def main(argv=None):
    import torch

    import redundancy
    from redundancy.parallel import run_tasks
    from redundancy.pruning import car_scores

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, fewer epochs and samples (minutes)")
    p.add_argument("--out", default="experiments/results/car_pruning")
    p.add_argument("--cache", default="out/car_pruning_cache", help="trained weights and finished runs")
    p.add_argument("--seeds", type=int, help="number of seeds (default 1 with --quick, 3 without)")
    p.add_argument("--scopes", default="0,4,network", help="comma-separated: conv layer names and/or network")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = settings(a.quick)
    task_cfg = dict(cfg)  # what a run depends on (the seed list is not part of it: cached runs are reused)
    if a.seeds is not None:
        cfg["seeds"] = list(range(a.seeds))
    scopes = [s.strip() for s in a.scopes.split(",") if s.strip()]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = str(Path(a.cache) / ("quick" if a.quick else "full"))
    t0 = time.perf_counter()
    tasks = []
    for data in ("digits", "mnist1d"):
        for seed in cfg["seeds"]:
            for scope in scopes:
                for frac in cfg["fractions"]:
                    for crit in CRITERIA:
                        tasks.append({"data": data, "seed": seed, "scope": scope, "fraction": frac,
                                      "criterion": crit, "cfg": task_cfg, "cache": cache})
    done = run_tasks(run_one, tasks, backend="sequential", cache_dir=Path(cache) / "runs", desc="car_pruning")
    rows = [{k: t[k] for k in ("data", "seed", "scope", "fraction", "criterion")} | r for t, r in zip(tasks, done)]
    cars = {}
    for data in ("digits", "mnist1d"):
        net, ds = trained(data, 0, task_cfg, cache)
        res = car_scores(net, ds, classwise=True, split="test")
        ft = {}
        for layer in [sc for sc in scopes if sc != "network"]:
            pts = [(1.0, res.base)] + sorted(
                ((1 - r["fraction"], r["test_finetuned"]) for r in rows
                 if r["data"] == data and r["seed"] == 0 and r["scope"] == layer and r["criterion"] == "car"),
                reverse=True)
            ft[layer] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
        first = [r for r in rows if r["data"] == data and r["seed"] == 0 and r["scope"] in ("0", "network")
                 and r["criterion"] == "car" and r["fraction"] == 0.5]
        cars[data] = {"result": res, "net": net, "finetuned": ft,
                      "removed_first": [c for lay, c in first[0]["removed_units"] if lay == "0"] if first else []}
    files = figures(rows, cars, out)
    summary = summarise(rows)
    result = {"experiment": "car_pruning", "quick": a.quick, "settings": cfg, "scopes": scopes, "criteria": list(CRITERIA),
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "redundancy": getattr(redundancy, "__version__", "dev"), "numpy": np.__version__},
              "seconds": time.perf_counter() - t0,
              "car_test": {d: {"base": c["result"].base, "layer_table": c["result"].layer_table().to_dict("records"),
                               "redundancy": c["result"].redundancy} for d, c in cars.items()},
              "summary": summary, "runs": rows, "figures": [str(f) for f in files]}
    with open(out / "car_pruning.json", "w") as fh:
        json.dump(result, fh, indent=1, default=float)
    import pandas as pd

    print(pd.DataFrame(summary).to_string(index=False))
    print(f"{len(rows)} runs in {result['seconds']:.0f} s -> {out}")


if __name__ == "__main__":
    main()
