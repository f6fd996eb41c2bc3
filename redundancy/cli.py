"""The ``redundancy`` command line. It parses, calls the library and writes; it computes nothing itself.

Exit codes: 0 success, 1 a computation failed, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .errors import RedundancyError

EPILOG = """examples:
  redundancy demo                 run the built-in example end to end
  redundancy demo --seed 3        the same with another seed
"""


def _demo(args: argparse.Namespace) -> int:
    from .spec import AvgPool, Dense, LinearCNN, TuckerConv
    from .tensor import whole_network_tensor

    t0 = time.perf_counter()
    spec = LinearCNN((8, 12, 12), [TuckerConv(32, 3, ranks=(4, 4)), AvgPool(2), Dense(1)])
    net = spec.build(seed=args.seed)
    res = whole_network_tensor(net, spec.input_shape)
    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(64, *spec.input_shape))
    import torch

    with torch.no_grad():
        y = net(torch.from_numpy(x)).reshape(64, -1).numpy()
    err = float(np.abs(res.apply(x) - y).max() / np.abs(y).max())
    print("redundancy demo: a Tucker-compressed linear CNN")
    print(f"  input shape            {spec.input_shape}")
    print(f"  layers                 {', '.join(spec.layer_names())}")
    print(f"  K (output channels)    32,  R (Tucker rank)  4,  K/R = 8")
    print(f"  naive parameter count  {spec.naive_parameter_count()}")
    print(f"  whole-network tensor   W shape {res.W.shape}, ||W||_F = {np.linalg.norm(res.W):.4f}")
    print(f"  identity check         max relative error of <W, x> + b vs forward on 64 inputs: {err:.1e}")
    print(f"  done in {time.perf_counter() - t0:.1f} s")
    return 0 if err < 1e-10 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redundancy", description="Model redundancy of (compressed) CNNs: whole-network tensor, "
        "degrees of freedom, sample-complexity bounds, K/R and ROI.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("demo", help="run the built-in example end to end",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  redundancy demo --seed 0")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except RedundancyError as exc:
        print(f"redundancy: error: {exc}", file=sys.stderr)
        return 2
