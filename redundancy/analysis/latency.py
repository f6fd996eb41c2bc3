"""CPU latency of several models, measured: warm-up, repeats, a batch sweep; medians and quartiles.

Tests never assert on these numbers; they are measurements of this machine at this moment.
The thread count is controlled (default **one thread**: the number that is comparable across
machines and not inflated by a busy neighbour competing for cores) and recorded with the numbers.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

import redundancy._validation as _v
from redundancy._validation import (MAX_NUMEL, Bool, Int, Items, Module, NoneOr, Seed, Shape, check_memory,
                                    validate_params)
from redundancy.counts import _forward
from redundancy.errors import RedundancyError

__all__ = ["measure_latency"]  # the face is redundancy.analysis; the rest is importable from here


#: torch intra-op threads used while timing, unless the caller asks otherwise
DEFAULT_THREADS = 1
#: most timed (and most warm-up) calls per point
MAX_REPEATS = 10_000
#: most threads
MAX_THREADS = 1024


@_v.result
class LatencyPoint(_v.Result):
    """CPU latency of both designs at one batch size (seconds per forward pass).

    ``*_q25`` / ``*_q75`` are the quartiles over the repeats (the spread); ``speedup`` is
    ``original_median_s / compressed_median_s`` (below 1 means the compressed model is slower).
    ``ratio_median``, ``ratio_q25``, ``ratio_q75`` are the median and quartiles of the per-repeat
    ratio ``compressed / original`` (both designs are timed within each repeat), the measured
    spread of the latency ratio (positive, and generally skewed); ``threads`` is the torch
    intra-op thread count the times were measured with.
    """

    batch_size: int
    original_median_s: float
    original_q25_s: float
    original_q75_s: float
    compressed_median_s: float
    compressed_q25_s: float
    compressed_q75_s: float
    ratio_median: float | None = None
    ratio_q25: float | None = None
    ratio_q75: float | None = None
    threads: int | None = None

    @classmethod
    def from_table(cls, table: "LatencyTable", batch_size: int, original: int = 0,
                   compressed: int = 1) -> "LatencyPoint":
        """The point of ``batch_size`` for models ``original`` and ``compressed`` of a :func:`measure_latency` table."""
        o, c = table[batch_size][original], table[batch_size][compressed]
        ratios = table.ratio_quantiles(batch_size, original, compressed)
        names = ("median_s", "q25_s", "q75_s")
        return cls(batch_size=batch_size, **{f"original_{k}": v for k, v in zip(names, o)},
                   **{f"compressed_{k}": v for k, v in zip(names, c)},
                   **dict(zip(("ratio_median", "ratio_q25", "ratio_q75"), ratios)), threads=table.threads)

    @property
    def speedup(self) -> float:
        return self.original_median_s / max(self.compressed_median_s, 1e-12)

    def ratio_interval(self) -> tuple[float, float, float]:
        """``(value, low, high)`` of the compressed/original latency ratio: the measured per-repeat
        median and quartiles when recorded, else the ratio of medians and the ratios of the quartile
        extremes; never below zero and never an interval that excludes the value."""
        if self.ratio_median is not None and self.ratio_q25 is not None and self.ratio_q75 is not None:
            v, lo, hi = self.ratio_median, self.ratio_q25, self.ratio_q75
        else:
            tiny = 1e-12
            v = self.compressed_median_s / max(self.original_median_s, tiny)
            lo = self.compressed_q25_s / max(self.original_q75_s, tiny)
            hi = self.compressed_q75_s / max(self.original_q25_s, tiny)
        lo, hi = max(0.0, min(lo, v)), max(hi, v)
        return float(v), float(lo), float(hi)

    def _extra_dict(self) -> dict[str, Any]:
        return {"speedup": self.speedup}


def _dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point):
        raise RedundancyError(f"dtype={dtype!r} is not allowed; dtype must be a floating torch.dtype "
                              "such as torch.float32")
    return dtype


class LatencyTable(dict):
    """``{batch_size: [(median, q25, q75) per model]}`` in seconds, with ``threads`` (the torch
    thread count used) and ``samples`` (``{batch_size: array (repeats, n_models)}`` of every timing)."""

    threads: int
    samples: dict

    def ratio_quantiles(self, batch_size: int, original: int = 0, compressed: int = 1) -> tuple[float, float, float]:
        """Median, 25th and 75th percentiles of ``t_compressed / t_original`` over the repeats."""
        t = self.samples[batch_size]
        r = t[:, compressed] / np.maximum(t[:, original], 1e-12)
        q50, q25, q75 = np.percentile(r, [50, 25, 75])
        return float(q50), float(q25), float(q75)


@validate_params({"models": Items(Module(), min_len=1, max_len=64), "input_shape": Shape(1, 6),
                  "batch_sizes": Items(Int(1, 2 ** 20), min_len=1, max_len=64),
                  "repeats": Int(1, MAX_REPEATS), "warmup": Int(0, MAX_REPEATS), "seed": Seed(),
                  "progress": Bool(), "threads": NoneOr(Int(1, MAX_THREADS)),
                  "dtype": _v.Check(lambda name, value: _dtype(value))})
def measure_latency(models, input_shape, *, batch_sizes=(1, 8, 32), repeats: int = 20,
                    warmup: int = 3, dtype=torch.float32, seed: int = 0, progress: bool = False,
                    threads: int | None = DEFAULT_THREADS):
    """Median and quartiles of CPU forward-pass time for each model at each batch size.

    Each model is copied, put in eval mode and cast to ``dtype``; inputs are standard normal
    (seeded). After ``warmup`` untimed calls, the models are timed in turn within each repeat (so
    drift affects all of them alike) under ``torch.inference_mode``, with ``torch.set_num_threads(threads)``
    for the duration (the caller's setting is restored afterwards).

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Models taking inputs of shape ``(batch, *input_shape)``; the caller's objects are not changed.
    input_shape : tuple of int
        One input without the batch dimension.
    batch_sizes, repeats, warmup, dtype, seed, progress
        The sweep, timed calls per point (at most 10,000), untimed calls first, dtype, input seed,
        progress bar.
    threads : int or None
        torch intra-op threads while timing; default 1 (comparable, not inflated by other
        processes competing for cores). ``None`` keeps torch's current setting. Recorded in the result.

    Returns
    -------
    LatencyTable
        A dict ``{batch_size: [(median, q25, q75) per model]}`` in seconds, with ``.threads`` and
        ``.samples`` (every timing).

    Examples
    --------
    >>> from torch import nn
    >>> lat = measure_latency([nn.Linear(4, 2)], (4,), batch_sizes=(1, 2), repeats=3, warmup=1)
    >>> sorted(lat), len(lat[1]), lat.threads
    ([1, 2], 1, 1)
    """
    return _measure_latency(models, input_shape, batch_sizes=batch_sizes, repeats=repeats, warmup=warmup,
                            dtype=dtype, seed=seed, progress=progress, threads=threads)


def _measure_latency(models, input_shape, *, batch_sizes, repeats, warmup, dtype, seed, progress, threads):
    from tqdm.auto import tqdm

    n_in = int(np.prod(input_shape))
    for b in batch_sizes:  # memory before allocation: the float64 input of the largest batch
        check_memory(f"a latency input of shape ({b}, *{tuple(input_shape)})", b * n_in, 8)
        if b * n_in > MAX_NUMEL:
            raise RedundancyError(f"batch_sizes entry {b} times input_shape={tuple(input_shape)} has {b * n_in:,} "
                                  f"elements; the limit is {MAX_NUMEL:,}")
    copies = [copy.deepcopy(m).to(dtype).eval() for m in models]
    gen = torch.Generator().manual_seed(seed)
    out = LatencyTable()
    out.samples = {}
    previous = torch.get_num_threads()
    out.threads = previous if threads is None else threads
    try:
        torch.set_num_threads(out.threads)
        for b in tqdm(batch_sizes, desc="latency", disable=not progress, leave=False):
            x = torch.randn((b, *input_shape), generator=gen, dtype=torch.float64).to(dtype)
            times = np.zeros((repeats, len(copies)))
            with torch.inference_mode():
                for i, m in enumerate(copies):
                    for _ in range(warmup):
                        _call(m, x, i, input_shape)
                for r in range(repeats):
                    for i, m in enumerate(copies):
                        t0 = time.perf_counter()
                        _call(m, x, i, input_shape)
                        times[r, i] = time.perf_counter() - t0
            out.samples[b] = times
            out[b] = [tuple(float(v) for v in np.percentile(times[:, i], [50, 25, 75])) for i in range(len(copies))]
    finally:
        torch.set_num_threads(previous)
    return out


def _call(model, x, i, input_shape):
    return _forward(model, x, tuple(input_shape), who=f"models[{i}]", width=160, hint="")
