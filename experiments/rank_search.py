"""RENE rank search against fixed rank rules, each fine-tuned with the same budget.

Models: a ResNet-20-style 1-D network on MNIST-1D and a small CNN on scikit-learn digits. For each
seed the model is trained, then compressed by

* ``rene-tt`` / ``rene-cp``: :func:`redundancy.rank_search.search.search_ranks` with the data
  (``-warm``: ``warm_start=3``, the first stage's logits leaning to the largest candidate);
* ``global-P%``: one TT rank for every decomposed layer, the largest keeping at most P % of those
  layers' parameters (the paper's Figure 4 protocol), P in {1, 5, 10, 25, 50, 75};
* ``evbmf`` / ``energy0.9``: Tucker-2 ranks of :func:`redundancy.lowrank.ranks.rank_rule` on the
  channel modes, turned into a tied TT rank ``max(R_out, R_in)`` (clipped to the layer's max rank);

and every compressed model is fine-tuned by :func:`redundancy.rank_search.finish.finetune` for the
same number of epochs. Writes ``rank_search.json``, ``rank_search.csv`` and PNG figures.

Usage: ``python experiments/rank_search.py --quick`` (one seed, small models, minutes) or without
``--quick`` (3 seeds, full sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from torch import nn

from redundancy.data import load_digits_data, load_mnist1d
from redundancy.rank_search.finish import finetune
from redundancy.lowrank.ranks import rank_rule
from redundancy.rank_search.chains import chain_params
from redundancy.rank_search import decompose_at, max_search_rank, search_ranks
from redundancy.training import evaluate, train
from redundancy.counts import count_macs

FRACTIONS = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75)


class Block1d(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.short = (nn.Sequential() if stride == 1 and c_in == c_out else
                      nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out)))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


def resnet20_1d(widths=(16, 32, 64), blocks=3, num_classes=10):
    """ResNet-20 layout (3 stages of ``blocks`` basic blocks) with 1-D convolutions."""
    layers, c = [nn.Conv1d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm1d(widths[0]), nn.ReLU()], widths[0]
    for i, w in enumerate(widths):
        for j in range(blocks):
            layers.append(Block1d(c, w, 2 if (i > 0 and j == 0) else 1))
            c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(c, num_classes))


def small_cnn(width=32, num_classes=10):
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(2 * width, num_classes))


def block_convs(model):
    """The layers decomposed by every method: convs with a spatial kernel > 1 and input channels > 1."""
    return [n for n, m in model.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and max(m.kernel_size) > 1 and m.in_channels > 1]


def global_ranks(model, names, fraction):
    mods = {n: model.get_submodule(n) for n in names}
    dense = sum(sum(p.numel() for p in m.parameters()) for m in mods.values())
    best = {n: 1 for n in names}
    for r in range(1, max(max_search_rank(m, "tt") for m in mods.values()) + 1):
        ranks = {n: min(r, max_search_rank(m, "tt")) for n, m in mods.items()}
        if sum(chain_params(mods[n], ranks[n], "tt") for n in names) > fraction * dense:
            break
        best = ranks
    return best


def rule_ranks(model, names, rule, **kw):
    choose = rank_rule(rule, **kw)
    out = {}
    for n in names:
        m = model.get_submodule(n)
        out[n] = int(min(max(choose(n, m)), max_search_rank(m, "tt")))
    return out


def run(dataset, seed, quick, out_rows, progress):
    torch.manual_seed(seed)
    if dataset == "mnist1d":
        ds = load_mnist1d(num_samples=1500 if quick else 8000, seed=seed)
        model = resnet20_1d((8, 16, 16), 1) if quick else resnet20_1d()
    else:
        ds = load_digits_data(seed=seed)
        model = small_cnn(8 if quick else 32)
    epochs, ft_epochs = (10, 1) if quick else (40, 10)
    iters, warmup = (20, 5) if quick else (100, 20)
    train(model, ds, epochs=epochs, lr=3e-3, seed=seed, progress=progress)
    model.eval()
    base_acc = evaluate(model, ds).accuracy
    names = block_convs(model)
    shape = ds.input_shape
    p_dense = sum(p.numel() for p in model.parameters())
    m_dense = sum(count_macs(model, shape).values())
    out_rows.append({"dataset": dataset, "seed": seed, "method": "original", "accuracy": base_acc,
                     "accuracy_before_ft": base_acc, "params_kept": 1.0, "macs_kept": 1.0, "seconds": 0.0})
    plans, extra = {}, {}
    for method in ("tt", "cp"):
        for warm in (0.0, 3.0):   # the paper's uniform start, and a first stage started near the dense end
            t0 = time.perf_counter()
            res = search_ranks(model, data=ds, method=method, layers=names, iters=iters, warmup=warmup, seed=seed,
                               warm_start=warm, max_accuracy_drop=None, progress=progress)
            label = f"rene-{method}" + ("-warm" if warm else "")
            plans[label] = (res.model, time.perf_counter() - t0, res.ranks)
            extra[label] = {"val_loss_dense": res.val_loss_dense, "val_loss_compressed": res.val_loss_compressed}
    for f in FRACTIONS:
        t0 = time.perf_counter()
        ranks = global_ranks(model, names, f)
        plans[f"global-{int(f * 100)}%"] = (decompose_at(model, ranks), time.perf_counter() - t0, ranks)
    for rule, kw in (("evbmf", {}), ("energy", {"energy": 0.9})):
        t0 = time.perf_counter()
        ranks = rule_ranks(model, names, rule, **kw)
        plans[rule if rule == "evbmf" else "energy0.9"] = (decompose_at(model, ranks), time.perf_counter() - t0, ranks)
    for label, (comp, secs, ranks) in plans.items():
        acc0 = evaluate(comp, ds).accuracy
        finetune(comp, model, ds, epochs=ft_epochs, lr=1e-3, seed=seed, progress=progress)
        out_rows.append({"dataset": dataset, "seed": seed, "method": label, "accuracy": evaluate(comp, ds).accuracy,
                         "accuracy_before_ft": acc0,
                         "params_kept": sum(p.numel() for p in comp.parameters()) / p_dense,
                         "macs_kept": sum(count_macs(comp, shape).values()) / m_dense, "seconds": secs,
                         "ranks": ranks, **extra.get(label, {})})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join("experiments", "results", "rank_search"))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    torch.set_num_threads(1)
    rows, t0 = [], time.perf_counter()
    cache = os.path.join(args.out, "rows_partial.json")
    done = json.load(open(cache)) if os.path.exists(cache) else []   # resume: finished (dataset, seed) kept
    for dataset in ("digits", "mnist1d"):
        for seed in seeds:
            prev = [r for r in done if r["dataset"] == dataset and r["seed"] == seed]
            if prev:
                rows += prev
                continue
            part = []
            run(dataset, seed, args.quick, part, args.progress)
            rows += part
            with open(cache, "w") as fh:
                json.dump(rows, fh)
    import pandas as pd

    df = pd.DataFrame(rows)
    summary = (df.groupby(["dataset", "method"])[["accuracy", "accuracy_before_ft", "params_kept", "macs_kept"]]
               .agg(["mean", "std"]).round(4))
    df.drop(columns=["ranks"], errors="ignore").to_csv(os.path.join(args.out, "rank_search.csv"), index=False)
    with open(os.path.join(args.out, "rank_search.json"), "w") as fh:
        json.dump({"quick": args.quick, "seeds": seeds, "seconds": time.perf_counter() - t0,
                   "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
                   "rows": rows, "summary": json.loads(summary.to_json(orient="split"))}, fh, indent=2, default=str)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from redundancy.plotting.ranks import RankParetoDisplay

    for x in ("params_kept", "macs_kept"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, dataset in zip(axes, ("digits", "mnist1d")):
            sub = [r for r in rows if r["dataset"] == dataset and r["method"] != "original"]
            RankParetoDisplay.from_rows(sub, x=x, title=dataset).plot(ax=ax)
        fig.savefig(os.path.join(args.out, f"accuracy_vs_{x}.png"), dpi=110, bbox_inches="tight")
        plt.close(fig)
    print(summary.to_string())
    print(f"done in {time.perf_counter() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
