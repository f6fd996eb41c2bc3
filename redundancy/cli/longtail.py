"""``redundancy longtail REF COMPRESSED... --data digits|mnist1d --out DIR``: long-tail risk of a compression.

Loads the reference and the compressed models (zoo names or ``package.module:factory``, weights
from state_dict files read with ``weights_only=True``), compares them on the data set's test split
(:func:`redundancy.longtail.mismatch_report`) and, as per-example scores, uses a ``.npy`` file,
a Feldman-Zhang estimate from ``--memorization-models T`` copies of REF's architecture trained on
70 % subsets (score: maximal influence of a training example on each test point), or, by default,
the reference's own per-example loss.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os

import numpy as np

from redundancy.cli.common import _kv
from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here

EXAMPLES = """examples:
  redundancy longtail mypkg.nets:ref mypkg.nets:small --data digits --ref-weights ref.pt \\
      --compressed-weights small.pt --out lt
  redundancy longtail redundancy.zoo.small:two_conv_cnn redundancy.zoo.small:two_conv_cnn \\
      --ref-arg input_shape=1,40 --compressed-arg width=8 --data mnist1d --memorization-models 64 --out lt

exit codes: 0 success, 1 a computation failed, 2 a bad argument.
"""


def _factory(spec: str, kwargs: dict, what: str):
    import torch

    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(mod_name), attr, None)
        except ImportError as exc:
            raise RedundancyError(f"{what}={spec!r}: cannot import module {mod_name!r} ({exc})") from None
    else:
        from redundancy import zoo

        if spec not in zoo.MODELS:
            raise RedundancyError(f"{what}={spec!r} is not a zoo model ({', '.join(zoo.MODELS)}) nor "
                                  "package.module:factory")
        fn = lambda **kw: zoo.get_model(spec, **kw)  # noqa: E731
    if fn is None or not callable(fn):
        raise RedundancyError(f"{what}={spec!r}: no callable factory {spec.partition(':')[2]!r}")

    def make():
        model = fn(**kwargs)
        if not isinstance(model, torch.nn.Module):
            raise RedundancyError(f"{what}={spec!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model
    return make


def _data(name: str, n: int, seed: int):
    from redundancy.data import load_digits_data, load_mnist1d

    return load_digits_data(seed=seed) if name == "digits" else load_mnist1d(num_samples=n, seed=seed)


def run(args: argparse.Namespace) -> int:
    from redundancy.checkpoint import load_weights
    from redundancy.longtail import example_loss, memorization, mismatch_report

    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise RedundancyError(f"--out={args.out!r} exists and is not a directory")
    weights = args.compressed_weights or []
    if weights and len(weights) != len(args.compressed):
        raise RedundancyError(f"--compressed-weights gives {len(weights)} files for {len(args.compressed)} "
                              "COMPRESSED models; give one per model or none")
    ds = _data(args.data, args.num_samples, args.seed)
    make_ref = _factory(args.ref, dict(args.ref_arg), "REF")
    ref = make_ref()
    if args.ref_weights:
        load_weights(ref, args.ref_weights)
    models = {}
    for i, spec in enumerate(args.compressed):
        m = _factory(spec, dict(args.compressed_arg), "COMPRESSED")()
        if weights:
            load_weights(m, weights[i])
        name = spec.rpartition(":")[2] or spec
        models[name if name not in models else f"{name}_{i}"] = m.eval()
    ref.eval()
    if args.scores is not None:
        try:
            scores = {"score": np.load(args.scores, allow_pickle=False)}
        except (OSError, ValueError) as exc:
            raise RedundancyError(f"--scores={args.scores!r} cannot be read as .npy ({exc})") from None
    elif args.memorization_models:
        mem = memorization(make_ref, ds, n_models=args.memorization_models, epochs=args.epochs, seed=args.seed,
                           progress=not args.no_progress)
        scores = {"max_influence": mem}
    else:
        scores = {"reference_loss": example_loss(ref, ds)}
    rep = mismatch_report(ref, models, ds, scores=scores, top_fraction=args.top_fraction,
                          n_permutations=args.n_permutations, seed=args.seed)
    print(f"redundancy longtail {args.ref} vs {', '.join(models)} on {args.data} (test split)")
    print(rep)
    if args.out is not None:
        from redundancy.plotting import ClassFlipDisplay, MismatchByScoreDisplay

        import matplotlib
        import matplotlib.pyplot as plt

        matplotlib.use("Agg")
        out = args.out
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "longtail.json"), "w") as fh:
            json.dump(rep.to_dict(), fh, indent=2)
        rep.to_pandas().to_csv(os.path.join(out, "summary.csv"))
        rep.class_table().to_csv(os.path.join(out, "classes.csv"), index=False)
        rep.bin_table().to_csv(os.path.join(out, "bins.csv"), index=False)
        written = ["longtail.json", "summary.csv", "classes.csv", "bins.csv", "mismatch_by_score.png",
                   "class_flips.png"]
        for disp, f in ((MismatchByScoreDisplay.from_report(rep).plot(), written[4]),
                        (ClassFlipDisplay.from_report(rep).plot(), written[5])):
            disp.figure_.savefig(os.path.join(out, f), dpi=110, bbox_inches="tight")
            plt.close(disp.figure_)
        print("wrote " + ", ".join(os.path.join(out, f) for f in written))
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``longtail`` on the subparsers ``sub`` of :func:`redundancy.cli.commands.build_parser`."""
    help_ = "long-tail risk of a compression: which test examples flip, and are they the memorized ones"
    p = sub.add_parser("longtail", help=help_, description=help_, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref", metavar="REF", help="reference model: zoo name or package.module:factory")
    p.add_argument("compressed", metavar="COMPRESSED", nargs="+", help="compressed model(s), same forms")
    p.add_argument("--data", choices=["digits", "mnist1d"], required=True)
    p.add_argument("--num-samples", type=int, default=5000, help="MNIST-1D examples (default 5000)")
    p.add_argument("--ref-weights", metavar="FILE")
    p.add_argument("--compressed-weights", metavar="FILE", nargs="+", help="one state_dict file per COMPRESSED")
    p.add_argument("--ref-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--compressed-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--scores", metavar="FILE.npy", help="per-test-example scores (default: the reference's loss)")
    p.add_argument("--memorization-models", type=int, default=0, metavar="T",
                   help="estimate influence with T copies of REF trained on 70%% subsets (0: off)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of each memorization run")
    p.add_argument("--top-fraction", type=float, default=0.1)
    p.add_argument("--n-permutations", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write longtail.json, CSV tables and PNGs into DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p
