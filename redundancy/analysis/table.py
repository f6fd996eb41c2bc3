"""Deterministic fixed-width text tables of a report (used by the CLI and the demo's golden file)."""

from __future__ import annotations

import numpy as np
import redundancy._validation as _v

__all__ = ["report_text"]  # the face is redundancy.analysis; the rest is importable from here


def _columns(name, value):
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[0], str) for c in value):
        raise _v.RedundancyError(f"{name}={_v._short(value)} must be a list of (title, key) pairs")
    return value


def _report_like(name, value):
    if not all(hasattr(value, a) for a in ("summary", "layers")):
        raise _v.RedundancyError(f"{name}={_v._short(value)} is not a RedundancyReport (from analyze)")
    return value



def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "-" if not np.isfinite(v) else f"{float(v):.3g}"
    if isinstance(v, (tuple, list)):
        return "x".join(str(x) for x in v)
    text = str(v)
    return text if len(text) <= 40 else text[:39] + "…"


@_v.validate_params({"rows": _v.Instance((list, tuple), "list of rows"), "columns": _v.Check(_columns)})
def format_table(rows, columns) -> str:
    """A fixed-width text table: ``columns`` is a list of (header, field) pairs."""
    get = (lambda r, f: r.get(f)) if rows and isinstance(rows[0], dict) else (lambda r, f: getattr(r, f, None))
    body = [[_cell(get(r, f)) for _, f in columns] for r in rows]
    heads = [h for h, _ in columns]
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(heads)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(b) for b in body])


LAYER_COLUMNS = [("layer", "name"), ("type", "type"), ("kernel", "kernel_shape"), ("groups", "groups"),
                 ("params", "params"), ("macs", "macs"), ("K", "out_channels"), ("R arch", "arch_rank"),
                 ("R num", "numerical_rank"), ("K/R", "kr_ratio"), ("K/R num", "numerical_kr_ratio"),
                 ("seg dof", "segment_dof"), ("seg naive", "segment_naive"), ("naive/dof", "dof_ratio"), ("skip", "skip_reason")]
BLOCK_COLUMNS = [("block", "name"), ("kind", "kind"), ("K", "K"), ("R", "R"), ("K/R", "kr_ratio"),
                 ("R num", "numerical_R"), ("K/R num", "numerical_kr_ratio"),
                 ("params", "params"), ("macs", "macs")]


@_v.validate_params({"report": _v.Check(_report_like)})
def report_text(report) -> str:
    """The report as deterministic text: layer table, block table, summary counts."""
    s = report.summary
    get = (lambda k: s.get(k)) if isinstance(s, dict) else (lambda k: getattr(s, k, None))
    parts = ["layers", format_table(list(report.layers), LAYER_COLUMNS)]
    if len(report.blocks):
        parts += ["", "blocks", format_table(list(report.blocks), BLOCK_COLUMNS)]
    line = "summary: " + ", ".join(f"{k} {_cell(get(k))}" for k in
                                   ("params", "macs", "flops", "bytes", "n_layers", "n_blocks"))
    kr = get("block_kr")
    if get("segment_dof") is not None:
        line += f", naive/dof {_cell(get('dof_ratio'))} (linear segments)"
        line += ", block K/R " + ("-" if not kr else (_cell(kr[0]) if kr[0] == kr[1] else
                                                      f"{_cell(kr[0])} to {_cell(kr[1])}"))
    parts += ["", line]
    if hasattr(s, "text"):
        parts += ["coverage: " + s.coverage_text(), "reading: " + str(get("reading"))]
    return "\n".join(parts)
