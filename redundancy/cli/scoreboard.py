"""``redundancy scoreboard MODEL --data digits|mnist1d --out DIR --html FILE``: every redundancy
score of every layer of a model, their agreement, and the one-page HTML report."""

from __future__ import annotations

import argparse
import os

from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here

EXAMPLES = """examples:
  redundancy scoreboard small_cnn --data digits --epochs 5 --out sb --html sb/report.html
  redundancy scoreboard small_cnn --data mnist1d --epochs 5 --out sb1d
  redundancy scoreboard mypkg.models:make_net --weights net.pt --data digits --scores all

Without --data only the data-free scores run (give --input-shape for a non-zoo model).
Scores: dof, kr_segment, kr_block, numerical, evbmf, energy, l1, taylor (data), searched, car (data),
pip (data); higher = more redundant. --scores all also runs the companion methods that are installed.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``scoreboard`` subcommand on ``sub`` (an argparse subparsers object)."""
    from redundancy.cli.common import _kv, _shape

    p = sub.add_parser("scoreboard", help="every redundancy score of every layer, side by side",
                       description="every redundancy score of every layer, side by side, with their "
                       "rank correlations, a consensus and an optional one-page HTML report",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a zoo name (e.g. small_cnn) or package.module:factory")
    p.add_argument("--data", choices=["digits", "mnist1d"], help="data set for the data-dependent scores")
    p.add_argument("--weights", metavar="FILE", help="state_dict file (loaded with weights_only=True)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the zoo model or factory (repeatable)")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="default: the data's, else the zoo model's")
    p.add_argument("--epochs", type=int, default=0, help="train the model this many epochs on --data first "
                   "(redundancy.training.train; default 0)")
    p.add_argument("--scores", default=None, help="comma-separated score names, or 'all' (default: the "
                   "data-free scores and taylor)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write scoreboard.json, scoreboard.csv, channels.csv and PNGs")
    p.add_argument("--html", metavar="FILE", help="write the one-page HTML report to FILE")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)
    return p


def _dataset(name: str, seed: int):
    from redundancy.data import load_digits_data, load_mnist1d

    return load_digits_data(seed=seed) if name == "digits" else load_mnist1d(seed=seed)


def run(args: argparse.Namespace) -> int:
    """Build (and optionally train) the model, compute the scoreboard, print it, write files."""
    from redundancy.cli.common import _agg, _out_dir, _save_fig, build_model
    from redundancy.scoreboard import scoreboard

    if args.seed < 0:
        raise RedundancyError(f"--seed={args.seed} is negative; give an integer >= 0")
    if args.epochs < 0:
        raise RedundancyError(f"--epochs={args.epochs} is negative; give an integer >= 0")
    if args.epochs and args.data is None:
        raise RedundancyError("--epochs needs --data (the training set)")
    if args.html and not os.path.isdir(os.path.dirname(os.path.abspath(args.html)) or "."):
        if not args.out or os.path.dirname(os.path.abspath(args.html)) != os.path.abspath(args.out):
            raise RedundancyError(f"--html={args.html!r}: its directory does not exist")
    out = _out_dir(args.out)
    data = _dataset(args.data, args.seed) if args.data else None
    margs = dict(args.model_arg)
    if data is not None and ":" not in args.model:     # a zoo model: fit it to the data
        margs.setdefault("in_channels", data.input_shape[0])
        margs.setdefault("num_classes", data.n_classes)
        if args.model == "small_cnn":
            margs.setdefault("dims", len(data.input_shape) - 1)
    shape = args.input_shape or (data.input_shape if data is not None else None)
    model, shape = build_model(args.model, args.weights, shape, margs, seed=args.seed)
    if args.epochs:
        from redundancy.training import evaluate, train

        train(model, data, epochs=args.epochs, seed=args.seed, progress=not args.no_progress)
        print(f"trained {args.epochs} epochs on {args.data}: test accuracy {evaluate(model, data).accuracy:.4f}")
    scores = None if args.scores is None else ("all" if args.scores == "all" else args.scores.split(","))
    sb = scoreboard(model, data, scores=scores, input_shape=shape, seed=args.seed, progress=not args.no_progress)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(f"redundancy scoreboard {args.model}  input shape {shape}  data {args.data or '-'}")
        cols = ["layer", "type"] + list(sb.scores) + ["consensus", "spread"]
        print(sb.table[cols].to_string(index=False))
        print("Spearman correlation over layers:")
        print(sb.correlations["layer_spearman"].to_string())
    for name, why in sorted(sb.skipped.items()):
        print(f"skipped {name}: {why}")
    written = []
    if out is not None:
        from redundancy.plotting import ScoreCorrelationDisplay, ScoreHeatmapDisplay

        _agg()
        sb.to_json(os.path.join(out, "scoreboard.json"))
        sb.table.to_csv(os.path.join(out, "scoreboard.csv"), index=False)
        sb.channels.to_csv(os.path.join(out, "channels.csv"), index=False)
        written += ["scoreboard.json", "scoreboard.csv", "channels.csv"]
        if sb.scores:
            _save_fig(ScoreHeatmapDisplay.from_result(sb).plot(), os.path.join(out, "heatmap.png"))
            _save_fig(ScoreCorrelationDisplay.from_result(sb).plot(), os.path.join(out, "correlation.png"))
            written += ["heatmap.png", "correlation.png"]
        written = [os.path.join(out, f) for f in written]
    if args.html:
        written.append(sb.to_html(args.html, title=f"Redundancy of {args.model}"))
    if written:
        print("wrote " + ", ".join(written))
    return 0
