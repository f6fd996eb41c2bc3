"""Scoreboard of small CNNs trained on digits and MNIST-1D: which redundancy scores agree?

Per data set three CNNs, each trained with :func:`redundancy.training.train` (Adam, lr 3e-3,
batch 64, seeded): ``plain`` = ``zoo.small_cnn`` widths (16, 32, 32); ``wide`` = widths
(32, 64, 64); ``bottleneck`` = stem conv 1->16 and two bottleneck blocks ``1x1 C->R, 3 R->R,
1x1 R->K`` with K = 32, R = 8 (K/R = 4), each conv followed by BatchNorm and ReLU, global average
pooling and a linear head. For each trained model: :func:`redundancy.scoreboard.scoreboard` with
``scores="all"`` (the data-free scores, L1 and Taylor now; the rank search, CAR and the
spike-and-slab PIPs wherever those methods are installed, otherwise skipped with the reason).
Spearman and Kendall correlations between the scores are reported per model and pooled over the
layers of the three models of a data set; channel-level (L1 against Taylor) over all channels.

    PYTHONPATH=. python experiments/scoreboard.py --quick --out experiments/results/scoreboard
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def bottleneck_cnn(ndim: int, num_classes: int = 10, K: int = 32, R: int = 8, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    conv, bn = (nn.Conv2d, nn.BatchNorm2d) if ndim == 2 else (nn.Conv1d, nn.BatchNorm1d)
    pool = nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool1d(1)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.bn1 = conv(c, R, 1, bias=False), bn(R)
            self.conv2, self.bn2 = conv(R, R, 3, padding=1, bias=False), bn(R)
            self.conv3, self.bn3 = conv(R, K, 1, bias=False), bn(K)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            return torch.relu(self.bn3(self.conv3(x)))

    return nn.Sequential(conv(1, 16, 3, padding=1, bias=False), bn(16), nn.ReLU(), Block(16), Block(K), pool,
                         nn.Flatten(), nn.Linear(K, num_classes))


def models(ndim: int, seed: int):
    import torch

    from redundancy.zoo import small_cnn

    torch.manual_seed(seed)
    yield "plain", small_cnn(dims=ndim, widths=(16, 32, 32))
    torch.manual_seed(seed)
    yield "wide", small_cnn(dims=ndim, widths=(32, 64, 64))
    yield "bottleneck", bottleneck_cnn(ndim, seed=seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and Taylor examples")
    ap.add_argument("--out", default="experiments/results/scoreboard")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    import redundancy
    from redundancy.data import load_digits_data, load_mnist1d
    from redundancy.plotting import ScoreCorrelationDisplay, ScoreHeatmapDisplay
    from redundancy.scoreboard import scoreboard
    from redundancy.scoreboard.correlation import correlation_matrix, reference_table
    from redundancy.training import evaluate, train

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    epochs = 6 if args.quick else 30
    n_taylor = 256 if args.quick else 1024
    datasets = {"digits": (load_digits_data(seed=args.seed), 2),
                "mnist1d": (load_mnist1d(num_samples=4000 if args.quick else 10000, seed=42), 1)}
    out = {"experiment": "scoreboard", "quick": args.quick, "seed": args.seed, "epochs": epochs,
           "taylor_examples": n_taylor, "versions": {"redundancy": redundancy.__version__,
                                                     "torch": torch.__version__, "numpy": np.__version__,
                                                     "python": platform.python_version()},
           "datasets": {}}
    for dname, (data, ndim) in datasets.items():
        tables, chans, entry = [], [], {"data": data.to_dict(), "models": {}}
        for mname, net in models(ndim, args.seed):
            t0 = time.perf_counter()
            train(net, data, epochs=epochs, lr=3e-3, batch_size=64, seed=args.seed)
            acc = evaluate(net, data).accuracy
            t1 = time.perf_counter()
            sb = scoreboard(net, data, scores="all", seed=args.seed, taylor_examples=n_taylor)
            t2 = time.perf_counter()
            entry["models"][mname] = {"test_accuracy": acc, "train_s": t1 - t0, "scoreboard_s": t2 - t1,
                                      "scoreboard": sb.to_dict()}
            tables.append(sb.table.assign(model=mname))
            chans.append(sb.channels.assign(model=mname))
            print(f"{dname} {mname}: accuracy {acc:.4f}, scoreboard {t2 - t1:.1f} s, skipped {sorted(sb.skipped)}")
            if mname == "bottleneck":
                fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
                ScoreHeatmapDisplay.from_result(sb).plot(ax=axes[0])
                ScoreCorrelationDisplay.from_result(sb).plot(ax=axes[1])
                axes[0].set_title(f"{dname}, bottleneck CNN: rank-normalised scores")
                fig.tight_layout()
                fig.savefig(os.path.join(args.out, f"heatmap_{dname}.png"), dpi=100)
                plt.close(fig)
        pooled = pd.concat(tables, ignore_index=True)
        on_board = set().union(*(m["scoreboard"]["scores"] for m in entry["models"].values()))
        score_cols = list(dict.fromkeys(c for t in tables for c in t.columns if c in on_board))
        pooled_scores = pooled[score_cols].astype(float)
        sp = correlation_matrix(pooled_scores, "spearman")
        kt = correlation_matrix(pooled_scores, "kendall")
        ch = pd.concat(chans, ignore_index=True)
        ch_cols = [c for c in ch.columns if c not in ("layer", "channel", "model")]
        ch_ranked = ch.groupby(["model", "layer"])[ch_cols].rank(pct=True)
        entry["pooled_layers"] = int(len(pooled))
        entry["pooled_spearman"] = json.loads(sp.to_json())
        entry["pooled_kendall"] = json.loads(kt.to_json())
        entry["channel_spearman"] = json.loads(correlation_matrix(ch_ranked, "spearman").to_json())
        entry["channel_count"] = int(len(ch))
        if "car" in pooled_scores:
            entry["reference_car"] = json.loads(reference_table(pooled_scores, "car").to_json(orient="records"))
        fig, ax = plt.subplots(figsize=(7, 6))
        from redundancy.scoreboard.figures import draw_matrix

        draw_matrix(ax, sp.to_numpy(float), list(sp.columns),
                    title=f"{dname}: Spearman over {len(pooled)} layers of 3 CNNs")
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, f"correlation_{dname}.png"), dpi=100)
        plt.close(fig)
        out["datasets"][dname] = entry
        print(f"{dname}: pooled Spearman over {len(pooled)} layers\n{sp.round(2).to_string()}")
    path = os.path.join(args.out, "scoreboard.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, allow_nan=False, default=lambda v: None)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
