"""``analyze(model, input_shape)``: one typed redundancy report for any torch model.

Per conv/linear layer: shape, parameters, MACs, K (output channels), the architecture R and the
numerical R of its weights, K/R, and the dof / naive count of its maximal linear segment. Per block
(bottleneck, inverted residual, depthwise-separable, plain): K, R and K/R. Plus a model summary.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from torch import nn

import redundancy._validation as _v
from redundancy.analysis.segdof import _segment_dof
from redundancy.analysis.summary import READING, ReportSummary, _jsonable
from redundancy._validation import as_generator
from redundancy.counts import dtype_itemsize, memory_bytes, parameter_count
from redundancy.errors import RedundancyError
from redundancy.analysis.kr import LAYER_KR_CONVENTION, arch_ranks, numerical_rank
from redundancy.analysis.graph import _trace_model
from redundancy.analysis.records import _LayerIdentity, layer_kernel

__all__ = ["analyze", "RedundancyReport"]  # the face is redundancy.analysis; the rest is importable from here


#: Segments with more kernel parameters than this get only a closed-form dof (or are skipped, with
#: the reason in ``summary.skipped``). The numerical route has its own size limit
#: (:data:`redundancy.linear.dof_numerical.NUMERICAL_MAX_RANK`) and a time estimate.
DOF_MAX_PARAMS = 250_000



@_v.result(allow=("rank_gap",))
class LayerRow(_LayerIdentity, _v.Result):
    """One conv/linear layer: the tracer's identity fields (``name``, ``type``, ``kernel_shape``,
    ``groups``, ``in_channels``, ``out_channels``), then ``params``, its unique parameters (a tensor
    shared with an earlier layer is counted there); ``macs`` is per sample, summed over calls."""

    params: int
    macs: int
    calls: int
    arch_rank: int | None
    numerical_rank: int | None
    rank_tol: float | None
    rank_gap: float | None
    kr_ratio: float | None
    numerical_kr_ratio: float | None
    block: str | None
    segment: str
    segment_dof: int | None
    segment_naive: int
    dof_ratio: float | None
    dof_method: str | None
    skip_reason: str | None


@_v.result
class BlockRow(_v.Result):
    """One detected block; ``params`` are all unique parameters inside it, ``macs`` its layers'.
    ``shortcut`` lists the layers off the main path (shortcut/downsample convs, squeeze-excitation).

    ``numerical_R`` is the smallest numerical rank (output-channel unfolding of the weights) among
    the main-path layers before the last, the weight-based analogue of ``R``; it can be below the
    width ``R`` (an inverted residual's expansion has rank at most its input width)."""

    name: str
    kind: str
    K: int
    R: int | None
    kr_ratio: float | None
    numerical_R: int | None
    numerical_kr_ratio: float | None
    params: int
    macs: int
    n_layers: int
    main_path: tuple[str, ...]
    shortcut: tuple[str, ...]
    kr_convention: str


@_v.result
class SegmentRow(_v.Result):
    """One maximal linear segment: its layers, dof of ``theta -> W``, naive count and ratio."""

    name: str
    layers: tuple[str, ...]
    input_shape: tuple[int, ...]
    dof: int | None
    naive: int
    dof_ratio: float | None
    method: str | None
    skip_reason: str | None
    route: str = "skipped"


def _fmt(v, width=8):
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.3g}".rjust(width)
    return str(v).rjust(width)


@_v.result
class RedundancyReport(_v.Result):
    """Result of :func:`analyze`: layer rows, block rows, segments and a summary."""

    model_name: str
    input_shape: tuple[int, ...]
    rank_tol: float | None
    dof_max_params: int
    dof: str
    summary: ReportSummary
    layers: tuple[LayerRow, ...]
    blocks: tuple[BlockRow, ...]
    segments: tuple[SegmentRow, ...]

    def to_pandas(self):
        """Layers as a ``pandas.DataFrame``, one row per conv/linear layer."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.layers], columns=[f.name for f in fields(LayerRow)])

    def blocks_frame(self):
        """Blocks as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.blocks], columns=[f.name for f in fields(BlockRow)])

    def segments_frame(self):
        """Segments as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.segments], columns=[f.name for f in fields(SegmentRow)])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; a non-finite float (a layer's rank gap of ``inf``) becomes ``None``."""
        return _jsonable(super().to_dict())

    def __repr__(self) -> str:
        s = self.summary
        head = (f"RedundancyReport({self.model_name}, input {self.input_shape}: {s.n_layers} layers, "
                f"{s.n_blocks} blocks, params={s.params:,}, macs={s.macs:,}, flops={s.flops:,}, "
                f"bytes={s.bytes:,} at {s.dtype})\n{s.text()}")
        cols = f"{'name':<28} {'type':<10} {'K':>6} {'R':>6} {'K/R':>6} {'R_num':>6} {'params':>9} {'macs':>11} {'seg dof':>8} {'naive':>8}"
        lines = [head, cols]
        rows = list(self.layers)
        shown = rows if len(rows) <= 40 else rows[:20] + [None] + rows[-19:]
        for r in shown:
            if r is None:
                lines.append(f"... {len(rows) - 39} more layers ...")
                continue
            lines.append(f"{r.name[-28:]:<28} {r.type[:10]:<10} {r.out_channels:>6} {_fmt(r.arch_rank, 6)} "
                         f"{_fmt(r.kr_ratio, 6)} {_fmt(r.numerical_rank, 6)} {r.params:>9,} {r.macs:>11,} "
                         f"{_fmt(r.segment_dof)} {r.segment_naive:>8}")
        if self.blocks:
            lines.append(f"{'block':<28} {'kind':<20} {'K':>6} {'R':>6} {'K/R':>6} {'R_num':>6}")
            for b in self.blocks[:40]:
                lines.append(f"{b.name[-28:]:<28} {b.kind:<20} {b.K:>6} {_fmt(b.R, 6)} {_fmt(b.kr_ratio, 6)} "
                             f"{_fmt(b.numerical_R, 6)}")
            if len(self.blocks) > 40:
                lines.append(f"... {len(self.blocks) - 40} more blocks ...")
            kinds = {b.kind: b.kr_convention for b in self.blocks}
            lines += [f"K/R convention ({k}): {c}" for k, c in kinds.items()]
        return "\n".join(lines)


def _check_dtype(name, value):
    dtype_itemsize(value)  # a torch dtype or its name
    return value


def _check_model_has_params(name, value):
    value = _v.check_finite_module(name, value)  # no lazy/meta parameters, no NaN/inf weights
    if not any(True for _ in value.parameters()):
        raise RedundancyError(f"model {type(value).__name__} has no parameters; nothing to analyse")
    return value


def _check_seed(name, value):
    as_generator(value)
    return value


def _check_rank_tol(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
        raise RedundancyError(f"{name}={value!r} is not allowed; {name} must be None or a number in (0, 1)")
    return value


ANALYZE_PARAMS = {
    "model": _v.Check(_check_model_has_params), "input_shape": _v.Shape(1, 6), "progress": _v.Bool(),
    "rank_tol": _v.Check(_check_rank_tol), "dof_max_params": _v.Int(0), "dof": _v.Choice("auto", "numerical", "none"),
    "dtype": _v.Check(_check_dtype), "trace": _v.Choice("auto", "fx", "hooks"), "seed": _v.Check(_check_seed)}


@_v.validate_params(ANALYZE_PARAMS)
def analyze(model: nn.Module, input_shape, *, progress: bool = False, rank_tol: float | None = None,
            dof_max_params: int = DOF_MAX_PARAMS, dof: str = "auto", dtype="float32",
            trace: str = "auto", seed=0) -> RedundancyReport:
    """Redundancy report of any torch model for inputs of shape ``input_shape`` (no batch dim).

    Per layer: ``params``, ``macs`` (``numel(out) * C_in/groups * prod(kernel)``, see
    :func:`redundancy.counts.count_macs`), K = output channels, the architecture R (bottleneck
    width feeding the layer inside its linear segment, ``r_1 = C_in prod(k_1)``,
    ``r_j = min(K_j, r_(j-1) prod(k_j))``, reported when ``r < K``), the numerical R (rank of the
    output-channel unfolding of the weights, :func:`numerical_rank`), ``kr_ratio = K / R`` and the
    dof and naive count of its maximal linear segment (``dof_ratio = naive / dof``).

    Segment dof (of ``theta -> W``, offsets left out): a closed form where the traced chain has one
    (one layer; pointwise chains and SVD pairs; Tucker-2, tensor-train and CP chains;
    depthwise-separable; see :mod:`redundancy.analysis.segdof`), otherwise the matrix-free
    Jacobian rank (:func:`redundancy.linear.dof.degrees_of_freedom`) for segments with at most
    ``dof_max_params`` kernel parameters and within
    :data:`redundancy.linear.dof_numerical.NUMERICAL_MAX_RANK`, otherwise skipped with the reason.
    ``summary.coverage_text()`` states the segments and kernel parameters covered, the route of each
    and every skip; ``summary.text()`` is the one-line answer (naive/dof over the covered segments,
    the blocks' K/R, and how to read them together). The naive count is the number of kernel
    parameters of the segment's layers (biases and BatchNorm are left out: they do not enlarge the
    set of maps ``W``).

    Blocks: see :mod:`redundancy.analysis.graph`; ``K/R`` conventions are stated in each row's
    ``kr_convention`` (MobileNetV2's inverted residual: K = expanded width, R = input width, K/R = t).

    The model is traced with ``torch.fx`` (forward hooks when fx fails) on one zero input, in eval
    mode; its own train/eval modes and BatchNorm statistics are left as they were.

    Parameters
    ----------
    model : torch.nn.Module
    input_shape : tuple of int
        Per-sample input shape, e.g. ``(3, 32, 32)``.
    progress : bool
        tqdm bar over layers.
    rank_tol : float or None
        Relative singular-value cut for the numerical rank; default ``max(m, n) * eps(dtype)``.
    dof_max_params : int
        Largest segment (kernel parameters) given the numerical dof (the closed forms have no
        limit); the numerical route also refuses above ``NUMERICAL_MAX_RANK``.
    dof : {"auto", "numerical", "none"}
        ``"auto"``: closed form first, numerical when none; ``"numerical"``: numerical whenever the
        segment is small enough (closed form above the limit); ``"none"``: no segment dof.
    dtype : str or torch.dtype
        Storage type for ``summary.bytes``.
    trace : {"auto", "fx", "hooks"}
    seed : int or numpy.random.Generator
        Random point of the numerical dof.

    Examples
    --------
    >>> from redundancy import zoo
    >>> rep = analyze(zoo.bottleneck_resnet(kr=4, layers=(1,), widths=(8,), stem_width=32), (3, 8, 8))
    >>> [(b.kind, b.K, b.R, b.kr_ratio) for b in rep.blocks]
    [('bottleneck', 32, 8, 4.0)]
    >>> rep.summary.flops == 2 * rep.summary.macs
    True
    """
    from redundancy.counts import preserved_state

    with preserved_state(model):  # no forward of the analysis may change the caller's model
        return _analyze(model, input_shape, progress=progress, rank_tol=rank_tol, dof_max_params=dof_max_params,
                        dof=dof, dtype=dtype, trace=trace, seed=seed)


def _segment_rows(g, layers, modules, *, dof_max_params, dof, seed, progress):
    """One :class:`SegmentRow` per traced segment, and the row of each layer's segment."""
    from tqdm.auto import tqdm

    seg_rows, seg_of = [], {}
    for seg in tqdm(g.segments, desc="segment dof", disable=not progress):
        sd = _segment_dof(seg, layers, modules, max_params=dof_max_params, route=dof, seed=seed, progress=progress)
        row = SegmentRow(name=seg.name, layers=seg.layers, input_shape=seg.input_shape, dof=sd.dof, naive=sd.naive,
                         dof_ratio=sd.naive / sd.dof if sd.dof else None, method=sd.method, skip_reason=sd.reason,
                         route=sd.route)
        seg_rows.append(row)
        for n in seg.layers:
            seg_of[n] = row
    return seg_rows, seg_of


def _layer_rank(mod, groups, rank_tol):
    """``(rank, tol, gap, skip)`` of a layer's kernel; a failed rank is reported, not raised."""
    try:
        return (*numerical_rank(layer_kernel(mod), groups, rank_tol), None)
    except (RuntimeError, ValueError) as exc:
        return None, None, None, f"numerical rank failed: {exc}"


def _layer_rows(g, modules, arch, block_of, seg_of, *, rank_tol, progress):
    """One :class:`LayerRow` per conv/linear layer (each shared parameter counted once, first)."""
    from tqdm.auto import tqdm

    seen: set[int] = set()
    rows = []
    for li in tqdm(g.layers, desc="layers", disable=not progress):
        mod = modules[li.name]
        n_par = 0
        for p in mod.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n_par += p.numel()
        rank, tol, gap, skip = _layer_rank(mod, li.groups, rank_tol)
        r_arch = arch.get(li.name)
        r_arch = r_arch if r_arch is not None and r_arch < li.out_channels else None
        sr = seg_of[li.name]
        if sr.skip_reason and skip is None:
            skip = sr.skip_reason
        rows.append(LayerRow(
            **li._identity(), params=int(n_par), macs=li.macs, calls=li.calls,
            arch_rank=r_arch, numerical_rank=rank, rank_tol=tol, rank_gap=gap,
            kr_ratio=li.out_channels / r_arch if r_arch else None,
            numerical_kr_ratio=li.out_channels / rank if rank else None,
            block=block_of.get(li.name), segment=sr.name, segment_dof=sr.dof, segment_naive=sr.naive,
            dof_ratio=sr.dof_ratio, dof_method=sr.method, skip_reason=skip))
    return rows


def _block_rows(g, rows, layers, modules):
    """One :class:`BlockRow` per detected block, with the numerical R of its main path."""
    block_rows = []
    num = {r.name: r.numerical_rank for r in rows}
    for b in g.blocks:
        names = b.main_path + b.shortcut
        if b.kind == "inverted_residual":  # R = rank of the expansion map (K/R = t reading)
            inner = [num[b.main_path[0]]] if num[b.main_path[0]] is not None else []
        else:
            inner = [num[n] for n in b.main_path[:-1] if num[n] is not None]
        r_num = min(inner) if inner else None
        block_rows.append(BlockRow(
            name=b.name, kind=b.kind, K=b.K, R=b.R, kr_ratio=b.K / b.R if b.R else None,
            numerical_R=r_num, numerical_kr_ratio=b.K / r_num if r_num else None,
            params=parameter_count(modules[b.name]), macs=sum(layers[n].macs for n in names),
            n_layers=len(names), main_path=b.main_path, shortcut=b.shortcut, kr_convention=b.kr_convention))
    return block_rows


def _summary(model, g, rows, block_rows, seg_rows, dtype) -> ReportSummary:
    krs = [b.kr_ratio for b in block_rows if b.kr_ratio is not None and b.kr_ratio > 1]
    done = [s for s in seg_rows if s.dof is not None]
    dof_tot, naive_tot = sum(s.dof for s in done), sum(s.naive for s in done)
    all_naive = sum(s.naive for s in seg_rows)
    routes: dict[str, int] = {}
    for s_ in seg_rows:
        routes[s_.route] = routes.get(s_.route, 0) + 1
    macs = sum(li.macs for li in g.layers)
    return ReportSummary(
        params=parameter_count(model), macs=macs, flops=2 * macs,
        bytes=memory_bytes(model, dtype=dtype), dtype=str(dtype).replace("torch.", ""),
        n_layers=len(rows), n_blocks=len(block_rows), n_segments=len(seg_rows),
        n_segments_skipped=len(seg_rows) - len(done), segment_dof=dof_tot, segment_naive=naive_tot,
        dof_ratio=naive_tot / dof_tot if dof_tot else None, trace_method=g.method,
        layer_kr_convention=LAYER_KR_CONVENTION, notes=g.notes,
        coverage_params=naive_tot / all_naive if all_naive else 1.0,
        coverage_segments=len(done) / len(seg_rows) if seg_rows else 1.0,
        routes=tuple(sorted(routes.items())),
        skipped=tuple((s_.name, s_.skip_reason or "skipped") for s_ in seg_rows if s_.dof is None),
        params_outside_layers=int(parameter_count(model) - sum(r.params for r in rows)),
        block_kr=(min(krs), max(krs)) if krs else None, reading=READING)


def _analyze(model, shape, *, progress, rank_tol, dof_max_params, dof, dtype, trace, seed):
    g = _trace_model(model, shape, method=trace)
    layers = {li.name: li for li in g.layers}
    if not layers:
        raise RedundancyError(f"model {type(model).__name__} has no conv or linear layer reached by "
                              f"input_shape={shape}; nothing to analyse")
    modules = dict(model.named_modules())
    arch = arch_ranks(g, layers, modules)
    block_of = {n: b.name for b in g.blocks for n in b.main_path + b.shortcut}
    seg_rows, seg_of = _segment_rows(g, layers, modules, dof_max_params=dof_max_params, dof=dof, seed=seed,
                                     progress=progress)
    rows = _layer_rows(g, modules, arch, block_of, seg_of, rank_tol=rank_tol, progress=progress)
    block_rows = _block_rows(g, rows, layers, modules)
    return RedundancyReport(layers=tuple(rows), blocks=tuple(block_rows), segments=tuple(seg_rows),
                            summary=_summary(model, g, rows, block_rows, seg_rows, dtype), input_shape=shape,
                            model_name=type(model).__name__, rank_tol=rank_tol, dof_max_params=dof_max_params,
                            dof=dof)
