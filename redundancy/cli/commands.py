"""The ``redundancy`` command line. It parses, calls the library and writes; it computes nothing itself.

Exit codes: 0 success, 1 a computation failed, 2 a bad argument or input file. Every error is one
line on stderr; ``--debug`` (anywhere on the command line) also prints the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from redundancy.analysis.table import report_text
import redundancy.cli.bayes as bayes_cli
import redundancy.cli.longtail as longtail_cli
import redundancy.cli.prune as prune_cli
import redundancy.cli.ranks as ranks_cli
import redundancy.cli.scoreboard as scoreboard_cli
from redundancy.cli.common import (_agg, _count, _ints, _kv, _nonneg_float, _one_line, _out_dir, _pos_float,
                                   _save_fig, _seed, _shape, _sub, build_model, load_model)
import redundancy._validation as _v
from redundancy.errors import RedundancyError
from redundancy._validation.limits import _first_line

__all__ = ["main"]  # the face is redundancy.cli; the rest is importable from here

EPILOG = """examples:
  redundancy demo                              built-in example: table and summary on the terminal
  redundancy demo --out demo-out               ... and JSON, CSV and PNG files into demo-out/
  redundancy analyze resnet20 --out rep        analyze a zoo model
  redundancy analyze mypkg.models:make_net --input-shape 1,28,28 --weights net.pt
  redundancy roi resnet20 mypkg.models:small --input-shape 3,32,32 --eps 0.05 \\
      --cost-per-sample 0.1 --cost-per-gmac 1e-4 --inferences-per-month 1e7 --out roi
  redundancy simulate --quick --out sim        error-versus-n validation study (short)

exit codes: 0 success, 1 a computation failed, 2 a bad argument or input file.
Every failure is one line on stderr; add --debug (anywhere) for the full traceback.
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# ----------------------------------------------------------------------------------- helpers
def _model(spec, weights, input_shape, model_args, what="MODEL", seed=0):
    return build_model(spec, weights, input_shape, model_args, what, loader=load_model, seed=seed)


def _write_report(report, out: str, *, stem: str = "report", title: str | None = None) -> list[str]:
    from redundancy.plotting import BoundVsCountDisplay

    _agg()
    files = [os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}_layers.csv"),
             os.path.join(out, f"{stem}_blocks.csv"), os.path.join(out, f"{stem}_bound_vs_count.png")]
    report.to_json(files[0])
    report.to_pandas().to_csv(files[1], index=False)
    report.blocks_frame().to_csv(files[2], index=False)
    try:
        disp = BoundVsCountDisplay.from_report(report)
    except RedundancyError:
        return files[:3]  # nothing to plot (no analysable segment)
    disp.title = title
    _save_fig(disp.plot(), files[3])
    return files


def _write_roi(roi, out: str, *, stem: str, cost_plot: bool) -> list[str]:
    """``stem``.json, .csv, .png (ratios) and, with ``cost_plot``, ``stem``_cost.png in ``out``."""
    from redundancy.plotting import RoiDisplay

    _agg()
    files = [os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}.csv"), os.path.join(out, f"{stem}.png")]
    with open(files[0], "w") as fh:
        json.dump(roi.to_dict(), fh, indent=2)
    roi.to_pandas().to_csv(files[1])
    _save_fig(RoiDisplay.from_result(roi).plot(), files[2])
    if cost_plot:
        files.append(os.path.join(out, f"{stem}_cost.png"))
        _save_fig(RoiDisplay.from_result(roi).plot(kind="cost"), files[3])
    return files


# ----------------------------------------------------------------------------------- demo
def _demo(args: argparse.Namespace) -> int:
    from redundancy.analysis.demo import run_demo

    t0 = time.perf_counter()
    out = _out_dir(args.out)
    res = run_demo(args.seed)
    print(res.text())
    if out is not None:
        files = _write_report(res.report, out, stem="demo_report", title="demo: Tucker-compressed linear CNN")
        files += _write_roi(res.roi, out, stem="demo_roi", cost_plot=True)
        print("wrote " + ", ".join(files))
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0 if res.ok else 1


# ----------------------------------------------------------------------------------- analyze / roi / simulate
def _analyze(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    model, shape = _model(args.model, args.weights, args.input_shape, dict(args.model_arg))
    from redundancy.analysis.report import analyze

    report = analyze(model, shape, progress=not args.no_progress)
    print(f"redundancy analyze {args.model}  input shape {shape}")
    print(report_text(report))
    if out is not None:
        print("wrote " + ", ".join(_write_report(report, out, title=args.model)))
    if args.html:
        from redundancy.scoreboard.html import report_to_html

        print(f"wrote {report_to_html(report, args.html, title=f'Redundancy of {args.model}')}")
    return 0


def _roi(args: argparse.Namespace) -> int:
    import torch

    from redundancy.analysis.roi import estimate_roi

    out = _out_dir(args.out)
    a, shape_a = _model(args.original, args.weights_original, args.input_shape,
                        dict(args.original_arg), "ORIGINAL", seed=args.seed)
    b, shape_b = _model(args.compressed, args.weights_compressed, args.input_shape,
                        dict(args.compressed_arg), "COMPRESSED", seed=args.seed)
    if shape_a != shape_b:
        raise RedundancyError(f"the two models have different default input shapes {shape_a} and "
                              f"{shape_b}; give --input-shape")
    roi = estimate_roi(a, b, shape_a, dtype=getattr(torch, args.dtype), batch_sizes=args.batch_sizes,
                       repeats=args.repeats, warmup=args.warmup, eps=args.eps, sigma=args.sigma,
                       cost_per_sample=args.cost_per_sample, cost_per_gmac=args.cost_per_gmac,
                       inferences_per_month=args.inferences_per_month, seed=args.seed,
                       progress=not args.no_progress, threads=args.threads)
    print(f"redundancy roi {args.original} -> {args.compressed}")
    print(roi)
    for note in roi.notes:
        print(f"note: {note}")
    if out is not None:
        written = _write_roi(roi, out, stem="roi", cost_plot=roi.money.data_cost_original is not None
                             and roi.money.serving_cost_per_month_original is not None)
        print("wrote " + ", ".join(written))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from redundancy.validation.study import run_study

    out = _out_dir(args.out)
    result = run_study(out, quick=args.quick, seed=args.seed, progress=not args.no_progress)
    print(f"redundancy simulate ({'quick' if args.quick else 'full'}, seed {args.seed}) -> {out}")
    if isinstance(result, dict):
        curves = result.get("curves")
        if isinstance(curves, list) and curves and isinstance(curves[0], dict):
            from redundancy.analysis.table import format_table

            print(format_table(curves, [("curve", "label"), ("dof", "dof"), ("naive", "naive"),
                                        ("slope", "slope"), ("C dof", "constant_dof"),
                                        ("C naive", "constant_naive")]))
        for key, value in result.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                print(f"  {key}: {value}")
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                print(f"  {key}: {', '.join(value)}")
    elif result is not None:
        print(result)
    return 0


# ----------------------------------------------------------------------------------- parser
@_v.validate_params({})
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="redundancy", description="Model redundancy of (compressed) CNNs: whole-network tensor, "
        "degrees of freedom, sample-complexity bounds, K/R and ROI.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="on failure, print the full traceback as well (may be given anywhere)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(sub, "demo", "run the built-in example end to end (Tucker-compressed linear CNN)",
             "examples:\n  redundancy demo\n  redundancy demo --seed 3 --out demo-out\n\n"
             "Without --out nothing is written; the table and summary are printed.")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="write JSON, CSV and PNG files into DIR")
    p.set_defaults(func=_demo)

    p = _sub(sub, "analyze", "redundancy report of a torch model",
             "examples:\n  redundancy analyze resnet20\n  redundancy analyze resnet20 --model-arg kr=4 "
             "--out rep\n  redundancy analyze mypkg.models:make_net --input-shape 1,28,28 --weights net.pt")
    p.add_argument("model", metavar="MODEL", help="a zoo name or package.module:factory")
    p.add_argument("--weights", metavar="FILE", help="state_dict file (loaded with weights_only=True)")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                   help="one input without the batch dimension (default: the zoo model's)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the zoo model or factory (repeatable)")
    p.add_argument("--out", metavar="DIR", help="write report.json, CSV tables and a PNG into DIR")
    p.add_argument("--html", metavar="FILE", help="write a one-page HTML report to FILE")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_analyze)

    p = _sub(sub, "roi", "what a compressed design saves and costs (params, MACs, latency, data, money)",
             "examples:\n  redundancy roi bottleneck_resnet bottleneck_resnet --original-arg kr=1 "
             "--compressed-arg kr=4\n"
             "  redundancy roi a.b:orig a.b:comp --input-shape 3,32,32 --eps 0.05 --cost-per-sample 0.1 \\\n"
             "      --cost-per-gmac 1e-4 --inferences-per-month 1e7 --out roi\n\n"
             "Low-rank layers can be slower than the layer they replace: latency is measured, not assumed.")
    p.add_argument("original", metavar="ORIGINAL", help="zoo name or package.module:factory")
    p.add_argument("compressed", metavar="COMPRESSED", help="zoo name or package.module:factory")
    p.add_argument("--weights-original", metavar="FILE")
    p.add_argument("--weights-compressed", metavar="FILE")
    p.add_argument("--original-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for ORIGINAL's zoo model or factory (repeatable)")
    p.add_argument("--compressed-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for COMPRESSED's zoo model or factory (repeatable)")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W")
    p.add_argument("--dtype", choices=["float32", "float64", "bfloat16", "float16"], default="float32")
    p.add_argument("--batch-sizes", type=_ints, default=(1, 8, 32), metavar="B1,B2,...")
    p.add_argument("--repeats", type=_count, default=20, help="timed calls per point (1..10000)")
    p.add_argument("--warmup", type=_count, default=3, help="untimed calls first (0..10000)")
    p.add_argument("--threads", type=_count, default=1,
                   help="torch threads while timing (default 1; the number is printed with the latency)")
    p.add_argument("--eps", type=_pos_float, default=0.1, help="target prediction error (default 0.1)")
    p.add_argument("--sigma", type=_pos_float, default=1.0, help="noise level (default 1)")
    p.add_argument("--cost-per-sample", type=_nonneg_float, help="cost of one labelled sample")
    p.add_argument("--cost-per-gmac", type=_nonneg_float, help="cost of serving 1e9 MACs")
    p.add_argument("--inferences-per-month", type=_nonneg_float)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", metavar="DIR", help="write roi.json, roi.csv and PNGs into DIR")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_roi)

    p = _sub(sub, "simulate", "error-versus-n validation study (statistical model, fitted by torch)",
             "examples:\n  redundancy simulate --quick --out sim")
    p.add_argument("--quick", action="store_true", help="small grid (minutes, not hours)")
    p.add_argument("--out", metavar="DIR", required=True, help="write JSON and PNG into DIR")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_simulate)
    for command in (ranks_cli, prune_cli, bayes_cli, longtail_cli):  # the companion methods
        command.add_parser(sub)
    scoreboard_cli.add_parser(sub)
    return parser


def _seeded_run(args) -> int:
    """Run the subcommand with torch's generator seeded from ``--seed`` (0 for a subcommand without
    one): whatever a subcommand builds or samples without its own seed (a user's factory, a model
    given without weights) is the same in every process. The caller's generator is restored."""
    import torch

    seed = getattr(args, "seed", 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if isinstance(seed, int) and 0 <= seed < 2 ** 63 else 0)
        return int(args.func(args))


@_v.validate_params({"argv": _v.NoneOr(_v.Items(_v.Instance(str, "a str")))})
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help()
        print("redundancy: error: give a COMMAND (demo, analyze, roi, simulate)", file=sys.stderr)
        return 2
    try:
        return _seeded_run(args)
    except RedundancyError as exc:  # a bad argument, model or file: exit 2
        if debug:
            traceback.print_exc()
        print(f"redundancy: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("redundancy: interrupted", file=sys.stderr)
        return 1
    except MemoryError:
        if debug:
            traceback.print_exc()
        print(f"redundancy: error: {args.command} failed: out of memory", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a computation failed: one line, no traceback
        if debug:
            traceback.print_exc()
        print(f"redundancy: error: {args.command} failed: {type(exc).__name__}: {_one_line(_first_line(exc))}",
              file=sys.stderr)
        return 1
