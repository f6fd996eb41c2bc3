"""CPU latency of several models, measured: warm-up, repeats, a batch sweep; medians and quartiles.

Tests never assert on these numbers; they are measurements of this machine at this moment.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from redundancy._validation import check_int, check_module, check_shape
from redundancy.errors import RedundancyError

__all__ = ["LatencyPoint", "measure_latency"]


@dataclass(frozen=True)
class LatencyPoint:
    """CPU latency of both designs at one batch size (seconds per forward pass).

    ``*_q25`` / ``*_q75`` are the quartiles over the repeats (the spread); ``speedup`` is
    ``original_median_s / compressed_median_s`` (below 1 means the compressed model is slower).
    """

    batch_size: int
    original_median_s: float
    original_q25_s: float
    original_q75_s: float
    compressed_median_s: float
    compressed_q25_s: float
    compressed_q75_s: float

    @property
    def speedup(self) -> float:
        return self.original_median_s / self.compressed_median_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def _dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point):
        raise RedundancyError(f"dtype={dtype!r} is not allowed; dtype must be a floating torch.dtype "
                              "such as torch.float32")
    return dtype


def measure_latency(models, input_shape, *, batch_sizes=(1, 8, 32), repeats: int = 20,
                    warmup: int = 3, dtype=torch.float32, seed: int = 0, progress: bool = False):
    """Median and quartiles of CPU forward-pass time for each model at each batch size.

    Each model is copied, put in eval mode and cast to ``dtype``; inputs are standard normal
    (seeded). After ``warmup`` untimed calls, the models are timed in turn within each repeat (so
    drift affects all of them alike) under ``torch.inference_mode``.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Models taking inputs of shape ``(batch, *input_shape)``; the caller's objects are not changed.
    input_shape : tuple of int
        One input without the batch dimension.
    batch_sizes, repeats, warmup, dtype, seed, progress
        The sweep, timed calls per point, untimed calls first, dtype, input seed, progress bar.

    Returns
    -------
    dict ``{batch_size: [(median, q25, q75) per model]}`` in seconds.

    Examples
    --------
    >>> from torch import nn
    >>> lat = measure_latency([nn.Linear(4, 2)], (4,), batch_sizes=(1, 2), repeats=3, warmup=1)
    >>> sorted(lat), len(lat[1])
    ([1, 2], 1)
    """
    from tqdm.auto import tqdm

    models = [check_module(f"models[{i}]", m) for i, m in enumerate(models)]
    input_shape = check_shape("input_shape", input_shape)
    batch_sizes = check_shape("batch_sizes", batch_sizes)
    repeats = check_int("repeats", repeats, min_value=1)
    warmup = check_int("warmup", warmup, min_value=0)
    seed = check_int("seed", seed, min_value=0)
    dtype = _dtype(dtype)
    copies = [copy.deepcopy(m).to(dtype).eval() for m in models]
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for b in tqdm(batch_sizes, desc="latency", disable=not progress, leave=False):
        x = torch.randn((b, *input_shape), generator=gen, dtype=torch.float64).to(dtype)
        times = [[] for _ in copies]
        with torch.inference_mode():
            for m in copies:
                for _ in range(warmup):
                    m(x)
            for _ in range(repeats):
                for i, m in enumerate(copies):
                    t0 = time.perf_counter()
                    m(x)
                    times[i].append(time.perf_counter() - t0)
        out[b] = [tuple(float(v) for v in np.percentile(t, [50, 25, 75])) for t in times]
    return out
