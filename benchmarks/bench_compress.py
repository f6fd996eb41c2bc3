"""Benchmark: compressing every conv of a ResNet-style network with ``redundancy.compress``.

For a small CIFAR-style ResNet (BasicBlocks, three stages, 1x1 projection shortcuts; defined
here, randomly initialised with a fixed seed) and each method (Tucker-2 by HOSVD, Tucker-2 by
HOOI, CP by ALS) at ranks chosen by the "fraction of parameters" rule, the script reports:

* the time of one ``compress()`` call (median over repeats);
* parameters and MACs (counted here from every conv / linear output shape by forward hooks:
  ``MACs = numel(out) · C_in/groups · Π k``) before and after;
* the relative kernel reconstruction errors (median and max over layers) and the relative
  change of the network's output;
* forward latency of the compressed model against the named baseline, the uncompressed model,
  in the same process, the two calls alternated: ``ratio = baseline_seconds / ours_seconds``
  (medians; > 1: the compressed model is faster).

Random weights are close to the worst case for low rank (their spectra are flat), so the errors
are upper-end numbers; trained kernels usually compress with smaller errors.

Usage::

    python benchmarks/bench_compress.py            # full run
    python benchmarks/bench_compress.py --quick    # narrower network, fewer repeats
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
from redundancy.lowrank.compression import compress
from redundancy.lowrank.ranks import rank_rule


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetStyle(nn.Module):
    """ResNet-(6n+2)-style network for 3x32x32 inputs: stem, three stages of ``blocks`` BasicBlocks."""

    def __init__(self, width=16, blocks=2, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, c = [], width
        for i, w in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                layers.append(BasicBlock(c, w, 2 if (b == 0 and i > 0) else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        return self.fc(self.layers(self.stem(x)).mean((2, 3)))


def count_macs(model: nn.Module, input_shape) -> int:
    """MACs of one example: every leaf conv and linear layer, from its output shape."""
    total = 0

    def hook(mod, args, out):
        nonlocal total
        if isinstance(mod, nn.modules.conv._ConvNd):
            total += out[0].numel() * (mod.in_channels // mod.groups) * int(np.prod(mod.kernel_size))
        elif isinstance(mod, nn.Linear):
            total += out[0].numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for h in handles:
        h.remove()
    return int(total)


def median_time(fn, repeats):
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def paired_times(fa, fb, repeats):
    """Alternate the two calls (a, b, a, b, ...) so that load drift hits both alike; medians."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeats):
        for f, acc in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t0)
    return statistics.median(ta), ta, statistics.median(tb), tb


def run(quick: bool, repeats: int, fraction: float, batch: int) -> dict:
    torch.manual_seed(0)
    model = ResNetStyle(width=8 if quick else 16, blocks=1 if quick else 2).eval()
    shape = (3, 32, 32)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y0 = model(x)
    macs0 = count_macs(model, shape)
    rows = []
    variants = [("tucker-hosvd", "tucker", {"algorithm": "hosvd"}), ("tucker-hooi", "tucker", {"n_iter_max": 20}),
                ("cp-als", "cp", {"n_iter_max": 100})]
    for label, method, kw in variants:
        rule = rank_rule("fraction", method=method, fraction=fraction)
        t_comp, comp_all, res = median_time(lambda: compress(model, ranks=rule, method=method, seed=0, **kw),
                                            max(1, repeats // 2))
        small = res.model.eval()
        with torch.no_grad():
            y1 = small(x)
            t_base, base_all, t_ours, ours_all = paired_times(lambda: model(x), lambda: small(x), repeats)
        errs = list(res.errors.values())
        macs1 = count_macs(small, shape)
        rows.append({
            "variant": label, "method": method, "fraction": fraction, "n_layers": len(res.layers),
            "skipped": [s.to_dict() for s in res.skipped],
            "compress_seconds": t_comp, "compress_all_seconds": comp_all,
            "params_before": res.params_before, "params_after": res.params_after,
            "param_ratio": res.params_after / res.params_before,
            "macs_before": macs0, "macs_after": macs1, "mac_ratio": macs1 / macs0,
            "rel_error_median": float(np.median(errs)), "rel_error_max": float(np.max(errs)),
            "output_rel_change": float(torch.linalg.norm(y1 - y0) / torch.linalg.norm(y0)),
            "baseline_forward_seconds": t_base, "ours_forward_seconds": t_ours,
            "forward_ratio": t_base / t_ours, "baseline_all_seconds": base_all, "ours_all_seconds": ours_all,
            "layers": [r.to_dict() for r in res.layers],
        })
    return {"benchmark": "compress every conv of a ResNet-style network; forward latency vs the uncompressed model",
            "quick": quick, "repeats": repeats, "batch": batch, "seed": 0, "dtype": "float32",
            "model": f"ResNetStyle(width={8 if quick else 16}, blocks={1 if quick else 2})",
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "redundancy": redundancy.__version__},
            "machine": platform.platform(), "results": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="narrower network, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 7, quick 3)")
    parser.add_argument("--fraction", type=float, default=0.25, help="fraction of each kernel's parameters kept")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the latency measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compress.json"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if repeats < 1 or args.threads < 1 or args.batch < 1 or not 0 < args.fraction <= 1:
        parser.error("--repeats, --threads, --batch must be >= 1 and --fraction in (0, 1]")
    torch.set_num_threads(args.threads)
    result = run(args.quick, repeats, args.fraction, args.batch)
    print(f"{result['model']}, fraction={args.fraction}, median of {repeats} repeats, {args.threads} thread(s)")
    print(f"{'variant':13s} {'layers':>6s} {'compress s':>10s} {'params':>17s} {'MACs':>21s} "
          f"{'err med':>7s} {'err max':>7s} {'out chg':>7s} {'fwd base s':>10s} {'fwd ours s':>10s} {'ratio':>5s}")
    for r in result["results"]:
        print(f"{r['variant']:13s} {r['n_layers']:6d} {r['compress_seconds']:10.3f} "
              f"{r['params_before']:7d}->{r['params_after']:7d} {r['macs_before']:10d}->{r['macs_after']:9d} "
              f"{r['rel_error_median']:7.3f} {r['rel_error_max']:7.3f} {r['output_rel_change']:7.3f} "
              f"{r['baseline_forward_seconds']:10.4f} {r['ours_forward_seconds']:10.4f} {r['forward_ratio']:5.2f}")
    for r in result["results"]:
        print(f"{r['variant']}: params x{r['param_ratio']:.3f}, MACs x{r['mac_ratio']:.3f}, "
              f"forward ratio = baseline/ours = {r['forward_ratio']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
