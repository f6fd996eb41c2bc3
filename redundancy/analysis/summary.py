"""The model-level summary of :func:`redundancy.analysis.report.analyze`: totals, coverage of the
segment dof (segments and kernel parameters covered, routes, skips with reasons), the blocks' K/R
and the one-line answer that reads them together."""

from __future__ import annotations

import math

from typing import Any

import numpy as np

import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here


#: How to read naive/dof and K/R together (summary.reading).
READING = (
    "Reading them together: naive/dof is exact linear algebra on each maximal linear segment (the "
    "linear maps between non-linearities), so with a ReLU after every conv it is close to 1 by "
    "construction and measures only factorised chains; K/R is a per-block width ratio from the "
    "architecture, which the paper's theory derives for linear networks and extends to non-linear "
    "activations only as a heuristic supported by ablations, not a theorem: it does not claim that "
    "a non-linear block of K/R = 4 has 4x fewer effective parameters.")


@_v.result
class ReportSummary(_v.Result):
    """Model totals. ``flops = 2 * macs``; ``bytes`` = unique parameters at ``dtype``."""

    params: int
    macs: int
    flops: int
    bytes: int
    dtype: str
    n_layers: int
    n_blocks: int
    n_segments: int
    n_segments_skipped: int
    segment_dof: int
    segment_naive: int
    dof_ratio: float | None
    trace_method: str
    layer_kr_convention: str
    notes: tuple[str, ...]
    coverage_params: float = 1.0
    coverage_segments: float = 1.0
    routes: tuple[tuple[str, int], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    params_outside_layers: int = 0
    block_kr: tuple[float, float] | None = None
    reading: str = ""

    @property
    def complete(self) -> bool:
        """Whether every segment's dof was computed (full coverage)."""
        return self.n_segments_skipped == 0

    def text(self) -> str:
        """The one coherent answer: linear-theory redundancy over the covered segments, the blocks'
        architectural K/R, the coverage, and how to read the two together."""
        lin = ("-" if self.dof_ratio is None else f"{self.dof_ratio:.3f}")
        kr = ("no block with K/R > 1" if self.block_kr is None else
              (f"{self.block_kr[0]:.3g}" if self.block_kr[0] == self.block_kr[1]
               else f"{self.block_kr[0]:.3g} to {self.block_kr[1]:.3g}"))
        return (f"linear-theory redundancy naive/dof = {lin} ({self.segment_naive:,}/{self.segment_dof:,} "
                f"over the covered segments); architectural K/R of the blocks: {kr}; "
                f"{self.coverage_text()}. {self.reading}")

    def coverage_text(self) -> str:
        """One line: covered segments and kernel parameters, the routes used, what was skipped."""
        routes = ", ".join(f"{r} {n}" for r, n in self.routes)
        text = (f"dof computed for {self.n_segments - self.n_segments_skipped}/{self.n_segments} segments, "
                f"{100 * self.coverage_params:.1f}% of kernel parameters ({routes})")
        if self.skipped:
            text += "; SKIPPED: " + "; ".join(f"{n}: {r}" for n, r in self.skipped[:3])
            if len(self.skipped) > 3:
                text += f"; ... {len(self.skipped) - 3} more"
        if self.params_outside_layers:
            text += (f"; {self.params_outside_layers:,} parameters are in no conv/linear layer "
                     "(normalisation, embeddings...) and in no segment")
        return text


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj
