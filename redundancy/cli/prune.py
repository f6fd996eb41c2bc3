"""``redundancy prune MODEL --data digits|mnist1d --criterion car --target 0.5 --out DIR``.

MODEL is ``cnn`` (:func:`redundancy.zoo.simple_cnn`, 1-D or 2-D to fit the data), a zoo name
(built with ``in_channels=1, num_classes=10`` unless ``--model-arg`` says otherwise) or
``package.module:factory``. Without ``--weights`` the model is first trained for ``--epochs``
(default 20) with :func:`redundancy.training.train`, since pruning an untrained network measures
nothing; with ``--weights`` it is pruned as loaded (``--epochs`` 0 unless given).
"""

from __future__ import annotations

import argparse
import json
import os

from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here

EXAMPLES = """examples:
  redundancy prune cnn --data digits --criterion car --target 0.5 --out pruned
  redundancy prune cnn --data mnist1d --criterion taylor --target 0.25 --finetune-epochs 3
  redundancy prune resnet20 --data digits --model-arg 'widths=(8,16)' --model-arg blocks_per_stage=1 --epochs 5

Channels are scored on the training split and accuracies reported on the test split. --target in (0, 1)
is the fraction of channels to remove, an integer the number of channels. --max-accuracy-drop (default
0.05; negative: off) is the budget: pruning stops before the removal that would cost more test accuracy.
The verdict (original, pruned and fine-tuned test accuracy against chance and the budget) comes first;
one that is not "ok", or a target the budget did not allow, is also written to stderr.
"""


def _target(text: str):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in (0, 1) or a channel count") from None
    if v.is_integer() and v >= 1:
        return int(v)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in (0, 1) or a channel count >= 1")
    return v


def add_parser(sub) -> argparse.ArgumentParser:
    from redundancy.cli.common import _kv

    p = sub.add_parser("prune", help="prune channels by CAR (accuracy drop) or a baseline criterion",
                       description="prune channels by CAR (accuracy drop) or a baseline criterion",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="cnn, a zoo name or package.module:factory")
    p.add_argument("--data", choices=["digits", "mnist1d"], required=True)
    p.add_argument("--criterion", choices=["car", "l1", "l2", "random", "activation", "taylor"], default="car")
    p.add_argument("--target", type=_target, default=0.5, help="fraction (0, 1) or count of channels to remove")
    p.add_argument("--scope", choices=["network", "layer"], default="network",
                   help="one global ranking, or the target in every layer")
    p.add_argument("--layers", help="comma-separated conv/linear names to prune (default: all but the classifier)")
    p.add_argument("--per-step", type=int, default=1, help="CAR channels removed per greedy step")
    p.add_argument("--epochs", type=int, help="train this many epochs before pruning (default 20, 0 with --weights)")
    p.add_argument("--finetune-epochs", type=int, default=0)
    p.add_argument("--max-accuracy-drop", type=float, default=0.05,
                   help="largest allowed test-accuracy drop (default 0.05); a negative value turns the budget off")
    p.add_argument("--weights", metavar="FILE", help="state_dict file (loaded with weights_only=True)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--max-examples", type=int, default=1000, help="training examples CAR is scored on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write prune.json, channels.csv, pruned_state_dict.pt and PNGs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def _build(args, ds):
    from redundancy.checkpoint import load_weights
    from redundancy.cli.common import load_model
    from redundancy.zoo import simple_cnn

    kw = dict(args.model_arg)
    ndim = len(ds.input_shape) - 1
    if args.model == "cnn":
        kw.setdefault("ndim", ndim)
        kw.setdefault("in_channels", ds.input_shape[0])
        kw.setdefault("seed", args.seed)
        model = simple_cnn(**kw)
    else:
        if ":" not in args.model:
            kw.setdefault("in_channels", ds.input_shape[0])
            kw.setdefault("num_classes", ds.n_classes)
        model, _ = load_model(args.model, kw, args.seed)
    if args.weights is not None:
        load_weights(model, args.weights)
    return model


def _prune_quietly(prune, model, ds, args, layers):
    """``prune`` with its DecisionWarnings held back: the CLI says them on stderr with the verdict."""
    import warnings

    from redundancy.errors import DecisionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)
        return prune(model, ds, criterion=args.criterion, target=args.target, scope=args.scope, layers=layers,
                     per_step=args.per_step, max_examples=args.max_examples, finetune_epochs=args.finetune_epochs,
                     max_accuracy_drop=None if args.max_accuracy_drop < 0 else args.max_accuracy_drop,
                     seed=args.seed, progress=not args.no_progress)


def _say_verdict(res) -> None:
    """The verdict first on stdout; on stderr too when it is not "ok" or the target was not met."""
    import sys

    v = res.verdict
    print(f"verdict: {v.verdict}: {v.reason}")
    if v.verdict != "ok":
        print(f"redundancy prune: warning: verdict {v.verdict}: {v.reason}", file=sys.stderr)
    elif not res.target_met:
        print(f"redundancy prune: warning: target not met within the budget: {v.reason}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import torch

    from redundancy.cli.common import _agg, _out_dir, _save_fig
    from redundancy.data import load_digits_data, load_mnist1d
    from redundancy.pruning import car_scores, prune
    from redundancy.training import evaluate, train

    out = _out_dir(args.out)
    for name in ("per_step", "finetune_epochs", "max_examples", "seed"):
        if getattr(args, name) < (0 if name in ("finetune_epochs", "seed") else 1):
            raise RedundancyError(f"--{name.replace('_', '-')}={getattr(args, name)} is out of range")
    ds = load_digits_data(seed=0) if args.data == "digits" else load_mnist1d(num_samples=4000, seed=0)
    model = _build(args, ds)
    epochs = args.epochs if args.epochs is not None else (0 if args.weights else 20)
    if epochs < 0:
        raise RedundancyError(f"--epochs={epochs} is out of range; give an integer >= 0")
    if epochs:
        train(model, ds, epochs=epochs, lr=3e-3, seed=args.seed, progress=not args.no_progress, desc="train")
    model.eval()
    layers = None if args.layers is None else [s.strip() for s in args.layers.split(",") if s.strip()]
    res = _prune_quietly(prune, model, ds, args, layers)
    print(f"redundancy prune {args.model} on {args.data}: criterion {args.criterion}, target {args.target} "
          f"({args.scope}), trained {epochs} epochs, test accuracy {evaluate(model, ds).accuracy:.4f}")
    _say_verdict(res)
    print(res.to_pandas().to_string(index=False))
    print(f"  removed {len(res.removed)} channels; params {res.params_before} -> {res.params_after}, "
          f"MACs {res.macs_before} -> {res.macs_after}")
    print(f"  test accuracy {res.test_before:.4f} -> {res.test_after:.4f}"
          + ("" if res.test_finetuned is None else f" -> {res.test_finetuned:.4f} after fine-tuning"))
    if res.convergence is not None:
        print(f"  fine-tune: {res.convergence.summary()}")
    if out is not None:
        files = [os.path.join(out, "prune.json"), os.path.join(out, "channels.csv"),
                 os.path.join(out, "pruned_state_dict.pt")]
        d = res.to_dict()
        d.update({"model": args.model, "data": args.data, "train_epochs": epochs})
        car = None
        if args.criterion == "car":
            car = car_scores(model, ds, layers=layers, classwise=True, max_examples=args.max_examples,
                             seed=args.seed)
            d["car_layers"] = car.layer_table().to_dict("records")
            car.channel_table().to_csv(files[1], index=False)
        else:
            res.to_pandas().to_csv(files[1], index=False)
        with open(files[0], "w") as fh:
            json.dump(d, fh, indent=1, default=str)
        torch.save(res.model.state_dict(), files[2])
        if car is not None:
            from redundancy.plotting import CARCurveDisplay, ClasswiseCARDisplay

            _agg()
            files.append(os.path.join(out, "car_curves.png"))
            _save_fig(CARCurveDisplay.from_result(car, title=args.model).plot(), files[-1])
            files.append(os.path.join(out, "classwise_car.png"))
            _save_fig(ClasswiseCARDisplay.from_result(car, car.layer[-1]).plot(), files[-1])
        print("wrote " + ", ".join(files))
    return 0
