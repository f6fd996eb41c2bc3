"""Benchmark: ``redundancy.whole_network_tensor`` against a per-output autograd loop.

Our route computes the Jacobian ``W = ∂f/∂x`` of a linear CNN with batched vector-Jacobian
products (``torch.func.vjp`` under ``vmap``). The baseline is what one would write by hand: one
forward pass with ``x.requires_grad_()``, then for every output ``o`` a separate
``torch.autograd.grad(y[o], x, retain_graph=True)``. Both run in float64 in the same process on
the same model; the script checks that they give the same ``W`` (allclose) and reports the median
time over repeats and ``ratio = baseline / ours`` (goal: >= 5).

Our timing is the public call with its defaults, so it includes the deep copy of the model, the
non-linearity scan and the two-input affinity check; ``ours_nocheck`` is the same with
``check=False``, ``ours_chunk`` the default call with ``chunk_size=--chunk-size`` and
``ours_fast_false`` the default call with ``fast=False`` (torch's own float64 ``conv3d`` is
differentiated instead of the depth-tap ``conv2d`` form of :mod:`redundancy.linear._fastconv`).

What to expect: in float64 on a CPU both routes do the same arithmetic (one transposed
convolution per output row); torch's float64 convolution backward loops over the samples of a
batch with small matrix products, so batching the rows saves the per-output Python/autograd
overhead (a few tenths of a millisecond) and turns the final layer's matrix-vector products
into one matrix product, but not the convolution work. The ratio is therefore large for models
whose per-output backward pass is cheap and modest for convolution-heavy ones. Run it with
``--threads 1`` and ``--threads 2``: the batched route can use more threads, the loop's small
ops hardly can.

Usage::

    python benchmarks/bench_whole_network_tensor.py            # full run
    python benchmarks/bench_whole_network_tensor.py --quick    # smaller models, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

import redundancy
from redundancy import whole_network_tensor


def make_models(quick: bool) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Linear CNNs (conv → average pool → Linear) with >= 100 outputs, float64, seeded."""
    torch.manual_seed(0)
    n_out = 128
    # (channels of the conv, input length / side / (depth, side)): quick sizes, then full sizes
    c1, c2, c3, d1, d2, (d3, s3) = (4, 8, 4, 64, 16, (6, 8)) if quick else (8, 16, 8, 256, 32, (8, 16))
    m1 = nn.Sequential(nn.Conv1d(2, c1, 5), nn.AvgPool1d(2), nn.Flatten(), nn.Linear(c1 * ((d1 - 4) // 2), n_out))
    m2 = nn.Sequential(nn.Conv2d(3, c2, 3), nn.AvgPool2d(2), nn.Flatten(),
                       nn.Linear(c2 * ((d2 - 2) // 2) ** 2, n_out))
    m3 = nn.Sequential(nn.Conv3d(2, c3, 3), nn.AvgPool3d(2), nn.Flatten(),
                       nn.Linear(c3 * ((d3 - 2) // 2) * ((s3 - 2) // 2) ** 2, n_out))
    return [(f"1d conv(2->{c1},5)/pool2/fc128 on (2,{d1})", m1.double(), (2, d1)),
            (f"2d conv(3->{c2},3)/pool2/fc128 on (3,{d2},{d2})", m2.double(), (3, d2, d2)),
            (f"3d conv(2->{c3},3)/pool2/fc128 on (2,{d3},{s3},{s3})", m3.double(), (2, d3, s3, s3))]


def baseline_loop(model: nn.Module, input_shape) -> np.ndarray:
    """Per-output autograd loop: one forward pass, then one backward pass per output."""
    x = torch.zeros((1, *input_shape), dtype=torch.float64, requires_grad=True)
    y = model(x).reshape(-1)
    rows = [torch.autograd.grad(y[o], x, retain_graph=True)[0][0] for o in range(y.numel())]
    return torch.stack(rows).numpy()


def median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    out = fn()  # warm-up (not timed); also the value that is compared
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def run(quick: bool, repeats: int, chunk_size: int = 16) -> dict:
    rows = []
    for name, model, shape in make_models(quick):
        t_base, base_all, W_base = median_time(lambda: baseline_loop(model, shape), repeats)
        t_ours, ours_all, res = median_time(lambda: whole_network_tensor(model, shape), repeats)
        t_nock, nock_all, _ = median_time(lambda: whole_network_tensor(model, shape, check=False), repeats)
        t_chunk, chunk_all, res_c = median_time(
            lambda: whole_network_tensor(model, shape, chunk_size=chunk_size), repeats)
        t_plain, plain_all, res_p = median_time(
            lambda: whole_network_tensor(model, shape, fast=False), repeats)
        same = bool(np.allclose(res.W, W_base, rtol=1e-10, atol=1e-12)
                    and np.allclose(res_c.W, W_base, rtol=1e-10, atol=1e-12)
                    and np.allclose(res_p.W, W_base, rtol=1e-10, atol=1e-12))
        rows.append({
            "model": name, "input_shape": list(shape), "n_outputs": res.n_outputs,
            "n_inputs": int(np.prod(shape)), "method": res.method, "same_W": same,
            "max_abs_diff": float(np.abs(res.W - W_base).max()),
            "baseline_seconds": t_base, "ours_seconds": t_ours, "ours_nocheck_seconds": t_nock,
            "ours_chunk_seconds": t_chunk, "chunk_size": chunk_size, "ours_fast_false_seconds": t_plain,
            "ratio": t_base / t_ours, "ratio_nocheck": t_base / t_nock, "ratio_chunk": t_base / t_chunk,
            "ratio_fast_false": t_base / t_plain,
            "baseline_all_seconds": base_all, "ours_all_seconds": ours_all, "ours_nocheck_all_seconds": nock_all,
            "ours_chunk_all_seconds": chunk_all, "ours_fast_false_all_seconds": plain_all,
        })
    return {
        "benchmark": "whole_network_tensor vs per-output torch.autograd.grad loop",
        "quick": quick, "repeats": repeats, "seed": 0, "dtype": "float64",
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "device": "cpu",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "redundancy": redundancy.__version__},
        "machine": platform.platform(), "results": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller models and 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 7, quick 3)")
    parser.add_argument("--chunk-size", type=int, default=16, help="chunk_size of the third variant (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "whole_network_tensor.json"),
                        help="JSON output path")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if repeats < 1 or args.threads < 1 or args.chunk_size < 1:
        parser.error("--repeats, --threads and --chunk-size must be >= 1")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result = run(args.quick, repeats, args.chunk_size)
    print(f"median of {repeats} repeats, float64, {args.threads} torch thread(s)")
    print(f"{'model':44s} {'n_out':>5s} {'baseline s':>10s} {'ours s':>8s} {'ratio':>6s} "
          f"{'nocheck s':>9s} {'ratio':>6s} {'chunk s':>8s} {'ratio':>6s} {'fast=F s':>8s} {'ratio':>6s}  same W")
    for r in result["results"]:
        print(f"{r['model']:44s} {r['n_outputs']:5d} {r['baseline_seconds']:10.4f} {r['ours_seconds']:8.4f} "
              f"{r['ratio']:6.1f} {r['ours_nocheck_seconds']:9.4f} {r['ratio_nocheck']:6.1f} "
              f"{r['ours_chunk_seconds']:8.4f} {r['ratio_chunk']:6.1f} "
              f"{r['ours_fast_false_seconds']:8.4f} {r['ratio_fast_false']:6.1f}  {r['same_W']}")
    for r in result["results"]:
        print(f"ratio = baseline/ours = {r['ratio']:.1f}x  ({r['model']}; goal >= 5x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0 if all(r["same_W"] for r in result["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
