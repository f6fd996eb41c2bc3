"""``redundancy ranks``: RENE rank search of a model's layers, written as JSON, CSV and PNG."""

from __future__ import annotations

import argparse
import json
import os

from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here

EPILOG = """examples:
  redundancy ranks mypkg.models:small_cnn --data digits --method tt --out ranks-out
  redundancy ranks resnet20 --model-arg in_channels=1 --data digits --train-epochs 3 --out r
  redundancy ranks mypkg.models:net --data none --input-shape 1,28,28 --weights net.pt --out r

--data none runs the data-free search (logits driven by the reconstruction error).

The verdict comes first: the test accuracy of the original and of the compressed model (before and
after --finetune-epochs) against chance and the budget --max-accuracy-drop (default 0.05; layers
whose compression costs most are kept dense until the model is within it). A verdict that is not
"ok" is also written to stderr, and the table then reads "saved (unverified)" instead of "redundancy".
"""


def add_parser(sub) -> None:
    """Register the ``ranks`` subcommand on the subparsers ``sub``."""
    from redundancy.cli.common import _kv, _shape

    p = sub.add_parser("ranks", help="RENE automatic rank selection (TT, CP or Tucker per layer)",
                       description="RENE automatic rank selection (TT, CP or Tucker per layer)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a zoo name or package.module:factory")
    p.add_argument("--data", choices=["digits", "mnist1d", "none"], default="digits",
                   help="data for the held-out loss (default digits); 'none' = data-free search")
    p.add_argument("--method", choices=["tt", "cp", "tucker"], default="tt")
    p.add_argument("--weights", metavar="FILE", help="state_dict file (loaded with weights_only=True)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="needed with --data none")
    p.add_argument("--train-epochs", type=int, default=0, help="train the model on the data first (default 0)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="distillation fine-tune after the search")
    p.add_argument("--iters", type=int, default=100, help="joint iterations per stage (default 100)")
    p.add_argument("--warmup", type=int, default=20, help="factor-only iterations per stage (default 20)")
    p.add_argument("--warm-start", type=float, default=None,
                   help="first-stage logits leaning to the largest rank (default: 3 with --data, 0 without; "
                        "0 is the paper's uniform start)")
    p.add_argument("--max-accuracy-drop", type=float, default=0.05,
                   help="largest allowed test-accuracy drop (default 0.05); a negative value turns the budget off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write ranks.json, ranks.csv and ranks.png into DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _dataset(name: str, seed: int):
    from redundancy.data import load_digits_data, load_mnist1d

    if name == "digits":
        return load_digits_data(seed=seed)
    return load_mnist1d(num_samples=4000, seed=seed)


def _verdict_lines(res, prog: str) -> str:
    """Print the verdict first (stdout), and to stderr when it is not "ok"; returns the table's header."""
    import sys

    v = res.verdict
    if v is None:
        return "redundancy"
    print(f"verdict: {v.verdict}: {v.reason}")
    if v.verdict in ("ok", "not_applicable"):
        if v.verdict == "ok" and not res.layers:
            print(f"{prog}: warning: no layer could be compressed within the budget; the model is unchanged",
                  file=sys.stderr)
        return "redundancy"
    print(f"{prog}: warning: verdict {v.verdict}: {v.reason}", file=sys.stderr)
    return "saved (unverified)"


def run(args: argparse.Namespace) -> int:
    """Run the search; print the verdict and the per-layer table; write the files. Exit code 0."""
    import warnings

    from redundancy.analysis.table import format_table
    from redundancy.cli.common import _out_dir, load_model
    from redundancy.errors import DecisionWarning
    from redundancy.rank_search.search import search_ranks
    from redundancy.training import evaluate, train

    out = _out_dir(args.out)
    model, default_shape = load_model(args.model, dict(args.model_arg), args.seed)
    if args.weights is not None:
        from redundancy.checkpoint import load_weights

        load_weights(model, args.weights)
    ds = None if args.data == "none" else _dataset(args.data, args.seed)
    shape = args.input_shape or (ds.input_shape if ds is not None else default_shape)
    if shape is None:
        raise RedundancyError("--data none needs --input-shape for a model that is not in the zoo")
    if ds is not None and args.train_epochs > 0:
        train(model, ds, epochs=args.train_epochs, seed=args.seed, progress=not args.no_progress)
    model.eval()
    budget = None if args.max_accuracy_drop < 0 else args.max_accuracy_drop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecisionWarning)  # said below, on stderr, with the verdict
        res = search_ranks(model, data=ds, method=args.method, input_shape=shape, iters=args.iters,
                           warmup=args.warmup, warm_start=args.warm_start, seed=args.seed, max_accuracy_drop=budget,
                           finetune_epochs=args.finetune_epochs if ds is not None else 0,
                           progress=not args.no_progress)
    summary = {"model": args.model, "data": args.data, "method": args.method, **{
        k: v for k, v in res.to_dict().items() if k not in ("layers", "trajectory", "skipped")}}
    if ds is not None:
        summary["accuracy_original"] = evaluate(model, ds).accuracy
        summary["accuracy_compressed"] = res.verdict.decided
        if res.verdict.finetuned is not None:
            summary["accuracy_finetuned"] = evaluate(res.model, ds).accuracy
    table = res.layer_table()
    print(f"redundancy ranks {args.model}  method {args.method}  data {args.data}")
    head = _verdict_lines(res, "redundancy ranks")
    print(format_table(table.to_dict("records"), [("layer", "layer"), ("rank", "rank"), ("max", "max_rank"),
                                                   ("band", "rank_low"), ("to", "rank_high"),
                                                   (head, "redundancy")]))
    for s in res.skipped:
        print(f"  skipped {s['name']}: {s['reason']}")
    print(f"parameters kept {res.params_kept:.3f}, MACs kept {res.macs_kept:.3f}")
    if res.convergence is not None:
        print(f"fine-tune: {res.convergence.summary()}")
    if res.val_loss_dense is not None:
        summary["val_loss_dense"], summary["val_loss_compressed"] = res.val_loss_dense, res.val_loss_compressed
        print(f"held-out cross-entropy {res.val_loss_dense:.4f} -> {res.val_loss_compressed:.4f} (the search's "
              "validation split of the training data, before fine-tune)")
    for k in ("accuracy_original", "accuracy_compressed", "accuracy_finetuned"):
        if k in summary:
            print(f"{k}: {summary[k]:.4f}")
    if out is not None:
        _write(out, summary, res, table)
    return 0


def _write(out, summary, res, table):
    from redundancy.cli.common import _agg, _save_fig
    from redundancy.plotting.ranks import RankBandDisplay

    _agg()
    with open(os.path.join(out, "ranks.json"), "w") as fh:
        json.dump({"summary": summary, "result": res.to_dict()}, fh, indent=2)
    table.to_csv(os.path.join(out, "ranks.csv"), index=False)
    _save_fig(RankBandDisplay.from_result(res).plot(), os.path.join(out, "ranks.png"))
    print("wrote " + ", ".join(os.path.join(out, f) for f in ("ranks.json", "ranks.csv", "ranks.png")))
