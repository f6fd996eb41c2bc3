"""``redundancy bayes MODEL --data digits|mnist1d --out DIR``: spike-and-slab fit, PIPs, pruning.

MODEL is one of
* ``mlp:W1,W2,...``: a ReLU MLP with those hidden widths (``mlp:64,32``);
* ``cnn:C1,C2,...``: a plain CNN with those conv widths, 3-wide kernels, ReLU and max-pooling,
  then a 32-unit hidden Linear layer (``cnn:8,16``); 2-D convs for digits, 1-D for MNIST-1D;
* a zoo name or ``package.module:factory`` (``--model-arg KEY=VALUE`` for its arguments); it must
  be an ``nn.Sequential`` that :mod:`redundancy.bayes.convert` accepts (the zoo's ResNets, with
  BatchNorm and shortcuts, are refused with the reason).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from redundancy.cli.common import _agg, _kv, _out_dir, _pos_float, _save_fig, _sub, load_model
from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here



EPILOG = """examples:
  redundancy bayes mlp:64,32 --data digits --out bayes-digits
  redundancy bayes cnn:8,16 --data mnist1d --epochs 30 --out bayes-mnist1d
  redundancy bayes mypkg.models:make_mlp --data digits --model-arg width=64

writes bayes.json, layers.csv, channels.csv, features.csv, removed.csv, curve.csv, pips.png,
curve.png and pruned_state_dict.pt (the pruned plain network's weights) into DIR.
"""


def _widths(spec: str, prefix: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in spec[len(prefix):].split(","))
    except ValueError:
        vals = ()
    if not vals or min(vals) < 1:
        raise RedundancyError(f"MODEL={spec!r}: give positive widths after {prefix!r}, e.g. {prefix}64,32")
    return vals


def _prob(text: str) -> float:
    v = _pos_float(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in (0, 1)")
    return v


def add_parser(sub) -> None:
    p = _sub(sub, "bayes", "spike-and-slab variational fit: node/feature inclusion probabilities, pruning", EPILOG)
    p.add_argument("model", metavar="MODEL", help="mlp:W1,W2 | cnn:C1,C2 | zoo name | package.module:factory")
    p.add_argument("--data", choices=["digits", "mnist1d"], required=True)
    p.add_argument("--out", metavar="DIR", help="write JSON, CSV, PNG and the pruned weights into DIR")
    p.add_argument("--epochs", type=int, default=None,
                   help="cap on epochs (default: 3000 steps' worth; the fit stops earlier when the ELBO settles)")
    p.add_argument("--lr", type=_pos_float, default=5e-2)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the whole training set when it has at most 4096 examples, else 256")
    p.add_argument("--prior-inclusion", type=_prob, default=0.5, help="λ, prior inclusion probability")
    p.add_argument("--slab-scale", type=_pos_float, default=1.0, help="σ0, slab standard deviation")
    p.add_argument("--threshold", type=float, default=0.5, help="keep nodes with PIP above this (default 1/2)")
    p.add_argument("--fine-tune-epochs", type=int, default=0)
    p.add_argument("--max-accuracy-drop", type=float, default=0.05,
                   help="accuracy budget of the pruned network on the test split (default 0.05)")
    p.add_argument("--n-train", type=int, help="subsample the training split")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _report(args, ds, res, pr, ev) -> None:
    """The stdout summary, with a line on stderr for an unconverged fit or a pruned model that failed its check."""
    print(f"redundancy bayes {args.model} on {args.data} ({len(ds.y_train)} train / {len(ds.y_test)} test)")
    print(res)
    print(f"fit: {res.convergence.summary()}")
    print(res.layer_table().to_string(index=False))
    print(f"posterior predictive (unpruned network, all nodes): test accuracy {res.accuracy:.4f}")
    print(f"pruned at PIP > {args.threshold:g}: {pr}")
    print(f"pruned network test accuracy {ev.accuracy:.4f} (verdict: {pr.verdict.verdict}; {pr.verdict.reason})")
    if not res.convergence.converged:
        print(f"WARNING: the spike-and-slab fit did not converge ({res.convergence.summary()}); raise --epochs",
              file=sys.stderr)
    if not pr.verdict.ok:
        print(f"WARNING: the pruned network failed its check: {pr.verdict.reason}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import torch

    from redundancy.bayes import fit_spike_slab
    from redundancy.zoo.small import plain_cnn
    from redundancy.bayes.curve import inclusion_curve
    from redundancy.bayes.prune import prune_by_inclusion
    from redundancy.data import load_digits_data, load_mnist1d
    from redundancy.training import evaluate

    out = _out_dir(args.out)
    if args.seed < 0:
        raise RedundancyError(f"--seed={args.seed} is negative; give an integer >= 0")
    ds = load_digits_data(seed=args.seed) if args.data == "digits" else load_mnist1d(seed=args.seed)
    if args.n_train is not None:
        ds = ds.subsample(args.n_train, seed=args.seed)
    if args.model.startswith("mlp:"):
        model = _widths(args.model, "mlp:")
    elif args.model.startswith("cnn:"):
        model = plain_cnn(ds.input_shape, _widths(args.model, "cnn:"), ds.n_classes, seed=args.seed)
    else:
        model, _ = load_model(args.model, dict(args.model_arg), args.seed)
    res = fit_spike_slab(model, ds, prior_inclusion=args.prior_inclusion, slab_scale=args.slab_scale,
                         epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                         device=args.device, progress=not args.no_progress)
    pr = prune_by_inclusion(res, args.threshold, data=ds, fine_tune_epochs=args.fine_tune_epochs, seed=args.seed,
                            max_accuracy_drop=args.max_accuracy_drop, device=args.device,
                            progress=not args.no_progress)
    ev = evaluate(pr.model, ds, device=args.device)
    curve = inclusion_curve(res, ds, device=args.device)
    _report(args, ds, res, pr, ev)
    if out is not None:
        from redundancy.plotting.bayes import InclusionCurveDisplay, InclusionDisplay

        _agg()
        with open(os.path.join(out, "bayes.json"), "w") as fh:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "func"}, "fit": res.to_dict(),
                       "pruned": pr.to_dict(), "pruned_accuracy": ev.accuracy, "curve": curve.to_dict()},
                      fh, indent=2)
        res.layer_table().to_csv(os.path.join(out, "layers.csv"), index=False)
        res.channel_table().to_csv(os.path.join(out, "channels.csv"), index=False)
        res.feature_table().to_csv(os.path.join(out, "features.csv"), index=False)
        pr.to_pandas().to_csv(os.path.join(out, "removed.csv"), index=False)
        curve.to_pandas().to_csv(os.path.join(out, "curve.csv"), index=False)
        _save_fig(InclusionDisplay.from_result(res, args.threshold).plot(), os.path.join(out, "pips.png"))
        _save_fig(InclusionCurveDisplay.from_result(curve).plot(), os.path.join(out, "curve.png"))
        torch.save(pr.model.state_dict(), os.path.join(out, "pruned_state_dict.pt"))
        print(f"wrote bayes.json, CSV tables, pips.png, curve.png, pruned_state_dict.pt into {out}")
    return 0
