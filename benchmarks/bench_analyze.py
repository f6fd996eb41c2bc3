"""Time ``redundancy.analyze`` against weightwatcher's ``WeightWatcher.analyze`` on one model.

Both run in the same process on the same ResNet-50-sized model (the zoo's bottleneck ResNet at
ResNet-50 depths and widths, 25.6 M parameters, random weights; torchvision is not needed).
Medians over ``--repeats`` runs after one warm-up run each; prints
``ratio = baseline_time / our_time`` (the goal is our time <= 0.5x weightwatcher's, i.e.
ratio >= 2). weightwatcher is the closest data-free peer (per-layer spectral analysis); it is
not a dependency: install it only in a benchmark environment, e.g.

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install torch==2.13.0 weightwatcher tensorly pandas tqdm sympy matplotlib
    cd <repo> && OMP_NUM_THREADS=1 /work/venv-bench/bin/python benchmarks/bench_analyze.py

Without weightwatcher the baseline is skipped with a message and only our times are printed.
What each tool computes differs: weightwatcher fits power laws to each layer's eigenvalue
spectrum (full SVD per layer); ``analyze`` traces the graph, counts parameters and MACs, takes
each layer's output-mode rank (singular values) and the dof of each linear segment.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings


import torch

from redundancy import zoo
from redundancy.analysis.report import analyze


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up (imports, first-call overheads)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small bottleneck ResNet instead of ResNet-50 size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the timings to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.quick:
        model, shape, label = zoo.bottleneck_resnet(layers=(1, 1), widths=(16, 32)), (3, 32, 32), "bottleneck_resnet (quick)"
    else:
        model, shape, label = zoo.resnet50_sized(), (3, 224, 224), "resnet50_sized"
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {label}, {n_params:,} parameters, input {shape}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {args.repeats} repeats")

    ours = _time(lambda: analyze(model, shape), args.repeats)
    rep = analyze(model, shape)
    print(f"redundancy.analyze: median {statistics.median(ours):.3f} s "
          f"(min {min(ours):.3f}, max {max(ours):.3f}); {rep.summary.n_layers} layers, "
          f"{rep.summary.n_blocks} blocks, {rep.summary.n_segments} segments")
    result = {"model": label, "params": n_params, "input_shape": list(shape), "threads": args.threads,
              "ours_s": ours, "baseline": None}
    try:
        import weightwatcher as ww
    except ImportError:
        print("weightwatcher is not installed: baseline skipped "
              "(pip install weightwatcher in a separate benchmark environment)")
    else:
        logging.getLogger("weightwatcher").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")

        def run_ww():
            return ww.WeightWatcher(model=model).analyze()

        base = _time(run_ww, args.repeats)
        ratio = statistics.median(base) / statistics.median(ours)
        print(f"weightwatcher {getattr(ww, '__version__', '?')} analyze(): median {statistics.median(base):.3f} s "
              f"(min {min(base):.3f}, max {max(base):.3f})")
        print(f"ratio = baseline_time / our_time = {ratio:.2f}  "
              f"(our time is {1 / ratio:.2f}x weightwatcher's; goal <= 0.5x)")
        result["baseline"] = {"name": "weightwatcher", "version": getattr(ww, "__version__", None),
                              "seconds": base, "ratio": ratio}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
