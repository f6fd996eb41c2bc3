"""Benchmark: ``redundancy.degrees_of_freedom`` against a plain ``torch.func.jacrev`` + full SVD.

Both compute the degrees of freedom of an affine model, the rank of ``∂(vec W, b)/∂θ``.

* **Baseline (plain):** ``W`` by ``torch.func.jacrev`` in the input, ``(vec W, b)`` as one vector,
  its Jacobian in the parameters by an outer ``torch.func.jacrev``, then ``numpy.linalg.matrix_rank``
  (full SVD). The outer jacrev needs an identity basis of ``((n_in + 1)·n_out)²`` entries.
* **Ours:** ``degrees_of_freedom(model, input_shape)``: random rank-one measurements
  ``uᵀ(W x + b)`` as per-example gradients, rows added until the rank stops growing, rank from an
  SVD (small) or the QR diagonal (large).

Models: ResNet-style bottleneck segments ``1x1 (c->r) + BN -> 3x3 (r->r, pad 1) + BN -> 1x1 (r->c)``
with biases, BatchNorm in eval mode, float64, on ``(c, h, h)``. The comparison rows are the
models where the plain route takes >= 10 s (both routes must give the same integer); then each
route climbs a size ladder until a model exceeds ``--cap`` seconds or (plain only) the identity
basis would need more than ``--max-gb`` GiB, and the largest model it finished is recorded.

Large linear models (``--large``): the issue-11 model (two 64-channel 3x3 convs and a Linear head
on 64x16x16, 237,706 parameters) is refused at once with the size and a time estimate (the rank to
certify is 163,850); the same head on 3 input channels (202,570 parameters, rank <= 7,690) runs
on the column-sketched route and is compared with its closed form; a Tucker-2 ResNet-50 stage is
analysed with the closed forms and with the numerical route on every segment.

Usage::

    python benchmarks/bench_dof.py            # full run (about 6-10 min on one shared core)
    python benchmarks/bench_dof.py --quick    # smaller ladders
    python benchmarks/bench_dof.py --large [--quick]
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
from redundancy.counts import parameter_count
from redundancy.linear.dof import degrees_of_freedom


def bottleneck(c: int, r: int) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(c, r, 1), nn.BatchNorm2d(r), nn.Conv2d(r, r, 3, padding=1),
                        nn.BatchNorm2d(r), nn.Conv2d(r, c, 1))
    for m in net:
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return net.eval().double()


def plain_dof(net: nn.Module, shape) -> int:
    """The plain route: jacrev(θ ↦ (vec jacrev_x f, f(0))) and a full-SVD matrix_rank."""
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = dict(net.named_buffers())
    x0 = torch.zeros(shape, dtype=torch.float64)

    def wb(p):
        def f(x):
            return torch.func.functional_call(net, (p, buffers), (x[None],)).reshape(-1)
        return torch.cat([torch.func.jacrev(f)(x0).reshape(-1), f(x0)])

    J = torch.func.jacrev(wb)(params)
    J = torch.cat([J[n].reshape(J[n].shape[0], -1) for n in params], 1).numpy()
    return int(np.linalg.matrix_rank(J))


def plain_gib(c: int, h: int) -> float:
    rows = (c * h * h + 1) * c * h * h
    return rows * rows * 8 / 2 ** 30


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def run(quick: bool, cap: float, max_gb: float) -> dict:
    compare = [(4, 2, 4), (6, 2, 4)] if quick else [(6, 2, 4), (8, 2, 4)]
    ladder_ours = [(16, 4, 8), (32, 8, 8)] if quick else [(16, 4, 8), (32, 8, 8), (64, 16, 8), (96, 24, 8)]
    rows, ours_ladder, plain_ladder = [], [], []
    degrees_of_freedom(bottleneck(4, 2), (4, 3, 3))  # warm-up of torch.func (not timed)
    for c, r, h in compare:
        net, shape = bottleneck(c, r), (c, h, h)
        name = f"bottleneck {c}->{r}->{r}->{c} on {shape}"
        if plain_gib(c, h) > max_gb:
            plain_ladder.append({"model": name, "status": f"skipped: identity basis needs {plain_gib(c, h):.1f} GiB"})
            continue
        t_plain, plain_all, d_plain = timed(lambda: plain_dof(net, shape), 1)
        plain_ladder.append({"model": name, "seconds": t_plain, "status": "ok", "gib": plain_gib(c, h)})
        t_ours, ours_all, res = timed(lambda: degrees_of_freedom(net, shape), 3)
        rows.append({"model": name, "n_params": parameter_count(net), "n_inputs": c * h * h,
                     "plain_seconds": t_plain, "ours_seconds": t_ours, "ratio": t_plain / t_ours,
                     "dof_plain": d_plain, "dof_ours": res.dof, "same": d_plain == res.dof, "gap": res.gap,
                     "plain_all_seconds": plain_all, "ours_all_seconds": ours_all,
                     "plain_at_least_10s": t_plain >= 10})
        if t_plain > cap:
            break
    c_next = compare[-1][0] + 2
    last = next((p for p in reversed(plain_ladder) if p.get("status") == "ok"), None)
    for c, r, h in [(c_next, 2, 4)] + ladder_ours:
        gib = plain_gib(c, h)
        why = f"identity basis needs {gib:.1f} GiB"
        if last is not None and gib <= max_gb:
            pred = last["seconds"] * gib / last["gib"]
            why += f", about {pred:.0f} s predicted (time grows with the basis), over --cap={cap:g} s" \
                if pred > cap else f", about {pred:.0f} s predicted"
        else:
            why += f", over --max-gb={max_gb:g}"
        plain_ladder.append({"model": f"bottleneck {c}->{r}->{r}->{c} on ({c}, {h}, {h})", "status": f"not run: {why}"})
    for c, r, h in ladder_ours:
        net, shape = bottleneck(c, r), (c, h, h)
        t, _, res = timed(lambda: degrees_of_freedom(net, shape), 1)
        ours_ladder.append({"model": f"bottleneck {c}->{r}->{r}->{c} on {shape}", "n_params": parameter_count(net),
                            "dof": res.dof, "seconds": t, "gap": res.gap, "rows": res.n_rows,
                            "decomposition": res.decomposition})
        if t > cap:
            break
    ok_plain = [p for p in plain_ladder if p.get("status") == "ok"]
    return {
        "benchmark": "degrees_of_freedom vs plain torch.func.jacrev + full SVD (numpy.linalg.matrix_rank)",
        "quick": quick, "cap_seconds": cap, "max_gib": max_gb, "dtype": "float64",
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "redundancy": redundancy.__version__},
        "machine": platform.platform(), "compare": rows, "plain_ladder": plain_ladder, "ours_ladder": ours_ladder,
        "largest_plain": ok_plain[-1]["model"] if ok_plain else None,
        "largest_ours": ours_ladder[-1]["model"] if ours_ladder else None,
    }


def conv_head(c_in: int) -> nn.Module:
    """Two 64-channel 3x3 convs (padding 1) and a Linear head to 10 outputs on 64x16x16 features
    (no activation): 237,706 parameters with ``c_in = 64`` (the issue's model), 202,570 with 3."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(c_in, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1), nn.Flatten(),
                         nn.Linear(64 * 16 * 16, 10)).double().eval()


def tucker_stage(n_blocks: int, rank: int) -> nn.Module:
    """A ResNet-50 layer1-like stage: bottlenecks 256 -> 64 -> 64 -> 256 with ReLUs, each 3x3 conv
    replaced by its Tucker-2 chain 1x1 (64->r) -> 3x3 (r->r) -> 1x1 (r->64) (redundancy.compress)."""
    from redundancy.lowrank.compression import compress

    torch.manual_seed(0)
    blocks = [nn.Sequential(nn.Conv2d(256, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                            nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU())
              for _ in range(n_blocks)]
    net = nn.Sequential(*blocks)
    names = [f"{i}.3" for i in range(n_blocks)]
    return compress(net, {n: (rank, rank) for n in names}, layers=names).model.eval()


def run_large(quick: bool) -> dict:
    """The large linear models: the scalable numerical route (column-sketched Jacobian rows, size
    refusal) against the closed forms."""
    from redundancy.analysis.report import analyze
    from redundancy.errors import RedundancyError

    out = {}
    # (a) the issue's 237k model: rank to certify min(n_params, n_out (n_in + 1)) = 163,850 -> refused
    net = conv_head(64)
    t0 = time.perf_counter()
    try:
        degrees_of_freedom(net, (64, 16, 16))
        status = "computed"
    except RedundancyError as exc:
        status = f"refused: {exc}"
    out["conv_head_64"] = {"n_params": parameter_count(net), "seconds": time.perf_counter() - t0, "status": status,
                           "closed_form": 10 * (64 * 16 * 16 + 1),
                           "baseline": "issue 11: the old route ran > 400 s at 4.7 GB with no estimate (not rerun)"}
    # (b) the same head on 3 input channels: 202,570 parameters, rank <= 10 * 769 = 7,690 (sketched rows)
    net = conv_head(3)
    t0 = time.perf_counter()
    res = degrees_of_freedom(net, (3, 16, 16))
    out["conv_head_3"] = {"n_params": parameter_count(net), "seconds": time.perf_counter() - t0, "dof": res.dof,
                          "closed_form": 10 * (3 * 16 * 16 + 1), "same": res.dof == 10 * (3 * 16 * 16 + 1),
                          "decomposition": res.decomposition, "rows": res.n_rows, "gap": res.gap,
                          "note": "generic conv operators are injective here, so W = head . convs is any "
                                  "10 x 768 matrix: dof = n_out (n_in + 1)"}
    # (c) a Tucker-2 ResNet-50 stage: closed forms (auto) vs the numerical route on every segment
    n_blocks, rank = (1, 8) if quick else (3, 16)
    net = tucker_stage(n_blocks, rank)
    t0 = time.perf_counter()
    closed = analyze(net, (256, 8, 8))
    t_closed = time.perf_counter() - t0
    t0 = time.perf_counter()
    num = analyze(net, (256, 8, 8), dof="numerical")
    t_num = time.perf_counter() - t0
    segs = []
    for a, b in zip(closed.segments, num.segments):
        segs.append({"segment": a.name, "naive": a.naive, "closed": a.dof, "closed_route": a.route,
                     "numerical": b.dof, "numerical_route": b.route, "same": a.dof == b.dof})
    out["tucker_stage"] = {"blocks": n_blocks, "rank": rank, "n_params": parameter_count(net),
                           "closed_seconds": t_closed, "numerical_seconds": t_num,
                           "ratio": t_num / t_closed, "segments": segs,
                           "all_same": all(x["same"] for x in segs)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller ladders")
    parser.add_argument("--cap", type=float, default=180.0, help="stop a ladder after a model slower than this (s)")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip plain models whose basis exceeds this (GiB)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dof.json"), help="JSON output")
    parser.add_argument("--large", action="store_true",
                        help="only the large linear models (237k-parameter conv head, Tucker-2 ResNet-50 stage)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.cap <= 0 or args.max_gb <= 0:
        parser.error("--threads, --cap and --max-gb must be positive")
    torch.set_num_threads(args.threads)
    if args.large:
        large = run_large(args.quick)
        large.update(quick=args.quick, torch_threads=args.threads,
                     versions={"torch": torch.__version__, "numpy": np.__version__})
        a, b, c = large["conv_head_64"], large["conv_head_3"], large["tucker_stage"]
        print(f"conv head on 64x16x16 ({a['n_params']:,} params): {a['status'][:160]} ({a['seconds']:.1f} s)")
        print(f"conv head on 3x16x16 ({b['n_params']:,} params): dof {b['dof']} vs closed form {b['closed_form']} "
              f"({'same' if b['same'] else 'DIFFERENT'}) in {b['seconds']:.1f} s ({b['decomposition']}, {b['rows']} rows)")
        print(f"Tucker-2 stage ({c['blocks']} block(s), rank {c['rank']}, {c['n_params']:,} params): closed "
              f"{c['closed_seconds']:.1f} s, numerical {c['numerical_seconds']:.1f} s, all segments same: {c['all_same']}")
        for x in c["segments"]:
            print(f"  {x['segment']:40s} naive {x['naive']:6d} closed {x['closed']} ({x['closed_route']}) "
                  f"numerical {x['numerical']} ({x['numerical_route']})")
        print(f"ratio = numerical/closed = {c['ratio']:.0f}x (Tucker-2 stage)")
        out = Path(args.out if args.out != str(ROOT / "benchmarks" / "results" / "dof.json")
                   else ROOT / "benchmarks" / "results" / ("dof_large_quick.json" if args.quick else "dof_large.json"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(large, indent=2, default=str))
        print(f"wrote {out}")
        return 0 if b["same"] and c["all_same"] else 1
    result = run(args.quick, args.cap, args.max_gb)
    print(f"float64, {args.threads} torch thread(s); plain = 1 run, ours = median of 3")
    print(f"{'model':40s} {'params':>6s} {'plain s':>8s} {'ours s':>7s} {'ratio':>7s}  dof plain/ours")
    for r in result["compare"]:
        print(f"{r['model']:40s} {r['n_params']:6d} {r['plain_seconds']:8.2f} {r['ours_seconds']:7.3f} "
              f"{r['ratio']:7.0f}  {r['dof_plain']}/{r['dof_ours']} {'same' if r['same'] else 'DIFFERENT'}")
    for r in result["compare"]:
        print(f"ratio = plain/ours = {r['ratio']:.0f}x  ({r['model']}; goal >= 10x)")
    print("ours, size ladder:")
    for r in result["ours_ladder"]:
        print(f"  {r['model']:40s} params {r['n_params']:6d} dof {r['dof']:6d} {r['seconds']:8.1f} s "
              f"({r['rows']} rows, {r['decomposition']}, gap {r['gap']:.1e})")
    print("plain, size ladder:")
    for r in result["plain_ladder"]:
        print(f"  {r['model']:40s} {r['status']}" + (f" {r['seconds']:.1f} s" if "seconds" in r else ""))
    print(f"largest model: plain {result['largest_plain']}; ours {result['largest_ours']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0 if all(r["same"] for r in result["compare"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
