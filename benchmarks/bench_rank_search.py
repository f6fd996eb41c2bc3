"""RENE rank search vs an exhaustive per-layer grid over the same ranks, same model, same run.

Grid (the baseline): for every searched layer ``i`` and every rank ``r`` in ``[1, R_i]`` (all the
ranks the coarse-to-fine schedule can reach), decompose that layer alone at ``r`` (TT-SVD, the
other layers dense) and score it by the per-layer version of RENE's objective,
``L(r) · (r / R_i)^β`` with ``L`` = held-out cross-entropy (with data) or ``||W_i − Ŵ_{i,r}||²``
(data-free); pick the minimiser. Ours: :func:`redundancy.rank_search.search.search_ranks` (TT).

Cases: a planted network (two 32-channel convs of TT rank 3 and 8, data-free, TT), a small CNN
trained on digits (with data, TT), and a planted CP network (two 16-channel convs of CP rank 4 and
10, data-free, CP), the case where one decomposition is costly (CP-ALS) and the grid needs
``Σ_i R_i`` of them against the search's ``|stage-1 candidates| + |stage-2 candidates|`` per layer.
Prints ``ratio = baseline/ours`` from the medians of ``--repeats`` runs and whether the chosen
ranks agree (exactly, and within 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from redundancy.data import load_digits_data
from redundancy.rank_search import decompose_at, max_search_rank, search_ranks
from redundancy.rank_search.chains import chain_kernel
from redundancy.training import train


def planted(width=32, ranks=(3, 8), seed=0, method="tt"):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    layers = []
    for r in ranks:
        conv = nn.Conv2d(width, width, 3, padding=1).double()
        a, b = rng.normal(size=(width, r)), rng.normal(size=(r, width))
        if method == "cp":
            w = np.einsum("ta,sa,ac->tcs", a, rng.normal(size=(9, r)), b)
        else:
            w = np.einsum("ta,asb,bc->tcs", a, rng.normal(size=(r, 9, r)), b)
        w = w / w.std() * np.sqrt(2 / (9 * width))
        w = w + 0.01 * w.std() * rng.normal(size=w.shape)
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(w.reshape(width, width, 3, 3)))
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * 25, 5).double())


def grid_search(model, names, data, beta=0.8, seed=0, method="tt"):
    """The exhaustive per-layer grid (see the module docstring); returns {name: rank}."""
    out = {}
    if data is not None:
        gen = np.random.default_rng(seed)
        idx = gen.permutation(len(data.y_train))[: max(1, len(data.y_train) // 10)]
        Xv = torch.as_tensor(data.X_train[idx])
        yv = torch.as_tensor(data.y_train[idx])
    for n in names:
        layer = model.get_submodule(n)
        R = max_search_rank(layer, method)
        best, best_r = float("inf"), 1
        for r in range(1, R + 1):
            comp = decompose_at(model, {n: r}, method=method, seed=seed)
            if data is None:
                w_hat = chain_kernel(comp.get_submodule(n)).detach()
                loss = float(((layer.weight.detach() - w_hat) ** 2).sum())
            else:
                with torch.no_grad():
                    loss = float(nn.functional.cross_entropy(comp(Xv.to(next(comp.parameters()).dtype)), yv))
            score = loss * (r / R) ** beta
            if score < best:
                best, best_r = score, r
        out[n] = best_r
    return out


def timed(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=os.path.join("benchmarks", "results", "bench_rank_search.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cases = []
    net = planted()
    cases.append(("planted-tt(3,8), data-free", net, ["0", "2"], None, (32, 5, 5), {"0": 3, "2": 8}, "tt"))
    ds = load_digits_data(seed=0)
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(32, 10))
    train(cnn, ds, epochs=8, lr=3e-3, seed=0)
    cnn.eval()
    cases.append(("digits small CNN, with data", cnn, ["2", "5"], ds, ds.input_shape, None, "tt"))
    cases.append(("planted-cp(4,10) 16 channels, data-free", planted(16, (4, 10), method="cp"), ["0", "2"], None,
                  (16, 5, 5), {"0": 4, "2": 10}, "cp"))
    results = []
    for label, model, names, data, shape, truth, method in cases:
        t_ours, res = timed(lambda: search_ranks(model, data=data, method=method, layers=names, input_shape=shape,
                                                      max_accuracy_drop=None),
                            args.repeats)
        t_grid, grid = timed(lambda: grid_search(model, names, data, method=method), args.repeats)
        ours = res.ranks
        row = {"case": label, "method": method, "seconds_ours": t_ours, "seconds_grid": t_grid, "ratio": t_grid / t_ours,
               "ranks_ours": ours, "ranks_grid": grid, "truth": truth,
               "agree_exact": sum(ours[n] == grid[n] for n in names) / len(names),
               "agree_within_1": sum(abs(ours[n] - grid[n]) <= 1 for n in names) / len(names),
               "grid_evaluations": sum(max_search_rank(model.get_submodule(n), method) for n in names),
               "search_decompositions": sum(len(t["candidates"]) for t in res.trajectory)}
        results.append(row)
        print(f"{label}: ours {t_ours:.2f} s, grid {t_grid:.2f} s, ratio = baseline/ours = {row['ratio']:.2f}; "
              f"ranks ours {ours} grid {grid}" + (f" truth {truth}" if truth else ""))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"repeats": args.repeats, "torch": torch.__version__, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
