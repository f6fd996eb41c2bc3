"""Long-tail risk of compression on digits and MNIST-1D: do reference-vs-compressed mismatches
concentrate on memorized examples (Dam et al., arXiv 2306.06238)?

Per data set:

1. Reference: the small CNN of :func:`redundancy.zoo.small.two_conv_cnn` trained on the whole training split
   (``redundancy.training.train``, Adam).
2. Memorization and influence: Feldman-Zhang subsampling (:func:`redundancy.longtail.memorization`)
   with ``T`` MLPs (one hidden layer of 256) each trained on a random 70 % subset, vmapped
   (``train_ensemble``), in cached chunks (a killed run resumes). The MLP, not the CNN, is the
   estimation model, to keep ``T >= 500`` feasible on a CPU: the scores describe the data under
   that learner, a proxy for the reference's own memorization.
3. Compressions of the reference, no fine-tuning: Tucker-2 low rank at 1/2, 1/4, 1/8 of the channel
   ranks; global magnitude pruning of 50/80/90 % of the weights; int8 dynamic (linear layers) and
   int8 static (FX, convs and linears, calibrated on 256 training images).
4. :func:`redundancy.longtail.mismatch_report` on the training split with ``mem(i)`` as the score and
   on the test split with the maximal influence ``max_i infl(i, j)`` and the reference's loss as
   scores: mismatch rate per score bin (memorization: edges -1, 0.1, 0.3, 0.5, 0.7, 1; influence and
   loss: 5 equal-width bins), enrichment in the top decile with a permutation p-value, AUC.

    python experiments/longtail.py --quick    # T = 64 models, fewer epochs and examples (minutes)
    python experiments/longtail.py            # T = 500 models per data set
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import redundancy
from redundancy.data import load_digits_data, load_mnist1d
from redundancy.longtail import example_loss, memorization, mismatch_report
from redundancy.longtail.compressions import compression_suite, weight_sparsity
from redundancy.zoo.small import mlp_classifier, two_conv_cnn
from redundancy.training import evaluate, train

ROOT = Path(__file__).resolve().parents[1]
MEM_BINS = [-1.0, 0.1, 0.3, 0.5, 0.7, 1.0]  # memorization bins (values below -1 / above 1 cannot occur)


def make_mlp(input_shape, hidden):
    return mlp_classifier(input_shape, 10, hidden=(hidden,))


def run_dataset(name, cfg, out, cache, progress):
    ds = load_digits_data(seed=0) if name == "digits" else load_mnist1d(num_samples=cfg["mnist1d_samples"], seed=0)
    shape = ds.input_shape
    t0 = time.perf_counter()
    torch.manual_seed(0)
    ref = two_conv_cnn(shape, 10, width=cfg["width"][name])
    train(ref, ds, epochs=cfg["ref_epochs"], batch_size=64, lr=2e-3, seed=0, progress=progress)
    t_ref = time.perf_counter() - t0
    ref_eval = evaluate(ref, ds)
    t0 = time.perf_counter()
    mem = memorization(functools.partial(make_mlp, shape, 256), ds, n_models=cfg["T"], epochs=cfg["mem_epochs"][name],
                       batch_size=64, lr=3e-3, seed=0, chunk_size=cfg["chunk"], cache_dir=cache / name,
                       progress=progress)
    t_mem = time.perf_counter() - t0
    suite = compression_suite(ref, ds.X_train[:256])
    test_rep = mismatch_report(ref, suite, ds, scores={"max_influence": mem.max_infl,
                                                       "reference_loss": example_loss(ref, ds)},
                               n_bins="uniform:5", top_fraction=0.1, n_permutations=cfg["perms"], seed=0)
    train_rep = mismatch_report(ref, suite, ds, scores={"memorization": mem.mem}, split="train", n_bins=MEM_BINS,
                                top_fraction=0.1, n_permutations=cfg["perms"], seed=0)
    figures = draw(name, mem, test_rep, train_rep, out)
    sparsity = {k: weight_sparsity(v) for k, v in suite.items() if k.startswith("prune")}
    return {"dataset": ds.to_dict(), "reference": {"arch": repr(ref).splitlines()[0] + "...", "width": cfg["width"][name],
                                                   "epochs": cfg["ref_epochs"], "test_accuracy": ref_eval.accuracy,
                                                   "train_accuracy": evaluate(ref, ds, split="train").accuracy,
                                                   "seconds": t_ref},
            "memorization": {**{k: v for k, v in mem.to_dict().items() if k in ("n_models", "n_train", "n_test",
                                                                                 "n_defined", "mean_mem", "settings")},
                             "seconds": t_mem, "models_per_second": cfg["T"] / max(t_mem, 1e-9),
                             "quantiles_mem": np.quantile(mem.mem, [0.5, 0.9, 0.99]).tolist(),
                             "frac_mem_gt_0.25": float((mem.mem > 0.25).mean()),
                             "mean_mem_se": float(mem.mem_se.mean()),
                             "quantiles_max_infl": np.quantile(mem.max_infl, [0.5, 0.9, 0.99]).tolist()},
            "pruning_sparsity": sparsity, "test": test_rep.to_dict(), "train": train_rep.to_dict(), "figures": figures}


def draw(name, mem, test_rep, train_rep, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from redundancy.plotting import ClassFlipDisplay, MemorizationDisplay, MismatchByScoreDisplay

    fig, axes = plt.subplots(1, 3, figsize=(19, 5))
    MismatchByScoreDisplay.from_report(train_rep, score="memorization").plot(ax=axes[0])
    axes[0].set_title(f"{name}: train mismatches by memorization")
    MismatchByScoreDisplay.from_report(test_rep, score="max_influence").plot(ax=axes[1])
    axes[1].set_title(f"{name}: test mismatches by max influence")
    MemorizationDisplay.from_result(mem).plot(ax=axes[2])
    f1 = f"mismatch_vs_memorization_{name}.png"
    fig.savefig(out / f1, dpi=100, bbox_inches="tight")
    plt.close(fig)
    d = ClassFlipDisplay.from_report(test_rep).plot()
    d.ax_.set_title(f"{name}: per-class flip rate (test)")
    d.figure_.set_size_inches(12, 4.5)
    f2 = f"class_flips_{name}.png"
    d.figure_.savefig(out / f2, dpi=100, bbox_inches="tight")
    plt.close(d.figure_)
    return [f1, f2]


def verdict(res):
    """Per data set and split: how many compressions show enrichment > 1 at p < 0.05, and the AUCs."""
    out = {}
    for name, r in res.items():
        for split, score in (("train", "memorization"), ("test", "max_influence"), ("test", "reference_loss")):
            rows = [s for s in r[split]["score_rows"] if s["score"] == score]
            with_mis = [s for s in rows if s["auc"] is not None]
            out[f"{name}/{split}/{score}"] = {
                "compressions": len(rows), "with_mismatches": len(with_mis),
                "enriched_p_lt_0.05": sum(1 for s in with_mis if s["p_value"] < 0.05 and (s["enrichment"] or 0) > 1),
                "median_auc": float(np.median([s["auc"] for s in with_mis])) if with_mis else None,
                "median_enrichment": float(np.median([s["enrichment"] for s in with_mis])) if with_mis else None}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--cache-dir", default=None, help="chunk cache (default: OUT/.cache, not committed)")
    ap.add_argument("--datasets", default="digits,mnist1d")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    out = Path(args.out or ROOT / "experiments" / "results" / ("longtail" if args.quick else "longtail_full"))
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else out / ".cache"
    cfg = ({"T": 64, "chunk": 32, "ref_epochs": 20, "mem_epochs": {"digits": 20, "mnist1d": 40}, "perms": 2000,
            "mnist1d_samples": 2000, "width": {"digits": 16, "mnist1d": 32}} if args.quick else
           {"T": 500, "chunk": 50, "ref_epochs": 40, "mem_epochs": {"digits": 20, "mnist1d": 50}, "perms": 10000,
            "mnist1d_samples": 3000, "width": {"digits": 16, "mnist1d": 32}})
    t0 = time.perf_counter()
    res = {}
    for name in args.datasets.split(","):
        res[name] = run_dataset(name, cfg, out, cache, args.progress)
        r = res[name]
        print(f"{name}: reference test acc {r['reference']['test_accuracy']:.4f}; memorization "
              f"{cfg['T']} models in {r['memorization']['seconds']:.0f} s")
        for s in r["train"]["score_rows"] + r["test"]["score_rows"]:
            print(f"  {s['model']:<14} {s['score']:<15} enrichment {s['enrichment'] or float('nan'):.2f} "
                  f"p={s['p_value']:.3g} AUC {s['auc'] or float('nan'):.3f}")
    summary = verdict(res)
    for k, v in summary.items():
        print(k, v)
    doc = {"experiment": "longtail", "quick": args.quick, "config": cfg, "seeds": {"data": 0, "reference": 0,
                                                                                  "memorization": 0},
           "versions": {"redundancy": redundancy.__version__, "torch": torch.__version__, "numpy": np.__version__,
                        "python": platform.python_version()},
           "threads": torch.get_num_threads(), "seconds": time.perf_counter() - t0, "verdict": summary, "results": res}
    (out / "longtail.json").write_text(json.dumps(doc, indent=1))
    (out / ".gitignore").write_text(".cache/\n")
    print(f"wrote {out / 'longtail.json'} in {doc['seconds']:.0f} s")


if __name__ == "__main__":
    main()
