"""The one-page HTML report: the headline answer first, then the figures, then the tables.

The page is one self-contained static file (figures embedded as base64 PNG, styles inline, no
network request: a Content-Security-Policy forbids any), rendered by Jinja2 from
``redundancy/scoreboard/templates/report.html.j2`` with autoescaping on.

Headline (each "not measured" when its source is not given):

* how much is redundant: the parameter-weighted consensus redundancy of the scoreboard
  (:meth:`Scoreboard.redundant_fraction`) and ``1 - dof / naive`` over the analysed segments;
* what a compression saves: parameters, MACs, latency and money from a
  :class:`~redundancy.analysis.roi.RoiResult`;
* how much more data it needs: ``n_compressed - n_original`` of the ROI's dof bound;
* how many long-tail examples flip: from a long-tail report in ``scoreboard.results["longtail"]``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

import redundancy._validation as _v
from redundancy._validation import _short
from redundancy.errors import RedundancyError
from redundancy.scoreboard.companions import longtail_flips
from redundancy.scoreboard.definitions import SCORES
from redundancy.scoreboard.figures import draw_bars, draw_heatmap, draw_matrix, png_base64

__all__: list[str] = []  # the face is in the package's __init__

NOT_MEASURED = "not measured"
#: the mark on a number that rests on an unconverged fit or a decision whose verdict is not "ok"
MARK = "\u26a0"


def caveats(results) -> dict[str, str]:
    """``{companion name: why its numbers are marked}`` for the companion results (``scoreboard.results``)
    whose fine-tuning or fit did not converge (``convergence.converged`` False) or whose decision's
    ``verdict`` is not ``"ok"``.

    Examples
    --------
    >>> caveats({})
    {}
    """
    out = {}
    for name, res in sorted((results or {}).items()):
        why = []
        conv = getattr(res, "convergence", None)
        if conv is not None and getattr(conv, "converged", True) is False:
            why.append("did not converge: " + (conv.summary() if hasattr(conv, "summary") else "converged=False"))
        v = getattr(res, "verdict", None)
        if v is not None and getattr(v, "verdict", "ok") != "ok":
            why.append(f"verdict {v.verdict}: {getattr(v, 'reason', '')}")
        if why:
            out[name] = "; ".join(why)
    return out


def _mark_columns(tab: dict, names) -> dict:
    """Append the mark to the header and every cell of the columns ``names`` of a :func:`_table`."""
    idx = [i for i, c in enumerate(tab["columns"]) if c in names]
    tab["columns"] = [f"{c} {MARK}" if i in idx else c for i, c in enumerate(tab["columns"])]
    tab["rows"] = [[f"{v} {MARK}" if i in idx else v for i, v in enumerate(row)] for row in tab["rows"]]
    return tab


def _pct(x) -> str:
    return NOT_MEASURED if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def _num(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    return "–" if not math.isfinite(x) else f"{x:.{digits}g}"


def _saving(orig, comp) -> str:
    saved = orig - comp
    return f"{saved:,} of {orig:,} ({100 * saved / orig:.1f} %)" if orig else f"{saved:,}"


def _instance(kind: str):
    """A check that the argument is None or an instance of ``kind`` (imported when called)."""
    def check(name, value):
        from redundancy.analysis.report import RedundancyReport
        from redundancy.analysis.roi import RoiResult

        if kind == "Scoreboard":  # board imports this module: recognise a Scoreboard by what headline reads
            ok = all(callable(getattr(value, a, None)) for a in ("redundant_fraction", "rank_normalised")) \
                and isinstance(getattr(value, "table", None), pd.DataFrame) \
                and isinstance(getattr(value, "scores", None), tuple)
        else:
            ok = isinstance(value, {"RedundancyReport": RedundancyReport, "RoiResult": RoiResult}[kind])
        if value is not None and not ok:
            raise RedundancyError(f"{name}={_short(value)} is not allowed; {name} must be a {kind} or None")
        return value
    return _v.Check(check)


@_v.validate_params({"scoreboard": _instance("Scoreboard"), "report": _instance("RedundancyReport"),
                     "roi": _instance("RoiResult")})
def headline(scoreboard=None, report=None, roi=None, longtail=None) -> list[tuple[str, str]]:
    """``[(question, answer)]`` of the page's headline, from whatever is given.

    Parameters
    ----------
    scoreboard : Scoreboard, optional
    report : RedundancyReport, optional
    roi : RoiResult, optional
    longtail : object, optional
        A long-tail report (see :func:`~redundancy.scoreboard.companions.longtail_flips`); anything
        that states no flip count or rate reads as "not measured".

    Examples
    --------
    >>> dict(headline())["What does the compression save?"]
    'not measured (no ROI given)'
    """
    rows = []
    parts = []
    if scoreboard is not None and scoreboard.redundant_fraction() is not None:
        top = scoreboard.table.sort_values("consensus", ascending=False).head(3)
        names = ", ".join(f"{r.layer or '(model)'} ({r.consensus:.2f})" for r in top.itertuples()
                          if math.isfinite(r.consensus))
        parts.append(f"{_pct(scoreboard.redundant_fraction())} of the parameters by the consensus of "
                     f"{len(scoreboard.scores)} scores (most redundant: {names})")
    if report is not None and report.summary.segment_naive:
        s = report.summary
        if s.segment_dof:
            parts.append(f"{_pct(1 - s.segment_dof / s.segment_naive)} by degrees of freedom "
                         f"({s.segment_dof:,} dof for {s.segment_naive:,} kernel parameters)")
    rows.append(("How much of the model is redundant?", "; ".join(parts) or NOT_MEASURED))
    if roi is not None:
        lat = [f"x{p.speedup:.2f} at batch {p.batch_size}" for p in roi.latency]
        money = roi.serving_saving_per_month
        rows.append(("What does the compression save?",
                     f"parameters {_saving(roi.params_original, roi.params_compressed)}; MACs "
                     f"{_saving(roi.macs_original, roi.macs_compressed)}; latency speed-up "
                     f"{', '.join(lat) if lat else NOT_MEASURED}; serving cost saved per month "
                     f"{_num(money) if money is not None else NOT_MEASURED}"
                     + (f"; break-even after {roi.break_even_months:.2f} months"
                        if roi.break_even_months is not None else "")))
        extra = roi.extra_samples
        cost = roi.extra_data_cost
        rows.append(("How much more data does it need?",
                     f"{extra:+,} labelled samples for error {roi.eps:g} (dof bound: {roi.n_original:,} -> "
                     f"{roi.n_compressed:,})" + (f"; data cost {cost:+,.4g}" if cost is not None else "")))
    else:
        rows.append(("What does the compression save?", NOT_MEASURED + " (no ROI given)"))
        rows.append(("How much more data does it need?", NOT_MEASURED + " (no ROI given)"))
    lt = longtail_flips(longtail)
    if lt is None:
        rows.append(("How many long-tail examples flip?", NOT_MEASURED + " (no long-tail report given)"))
    else:
        parts = []
        for e in lt:
            who = f"{e['model']}: " if e["model"] else ""
            of = f" of {e['n']:,}" if e["n"] is not None else ""
            rate = f" (flip rate {_pct(e['flip_rate'])})" if e["flip_rate"] is not None else ""
            parts.append(f"{who}{e['flips']:,}{of} examples{rate}" if e["flips"] is not None
                         else f"{who}flip rate {_pct(e['flip_rate'])}")
        rows.append(("How many long-tail examples flip?", "; ".join(parts)))
    return rows


def _fig(draw, size) -> dict[str, Any]:
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    fig = Figure(figsize=size)
    ax = fig.subplots()
    caption = draw(ax)
    fig.tight_layout()
    data, w, h = png_base64(fig)
    return {"png": data, "width": w, "height": h, "caption": caption}


def _table(df, digits: int = 3) -> dict[str, Any]:
    cols = [str(c) for c in df.columns]
    rows = [[_num(v, digits) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
             else ("–" if v is None else str(v)) for v in row] for row in df.itertuples(index=False)]
    return {"columns": cols, "rows": rows}


def _scoreboard_figures(sb) -> list[dict]:
    figs = []
    if not sb.scores:
        return figs
    rn = sb.rank_normalised()
    rn["consensus"] = sb.table.set_index("layer")["consensus_rank"]
    size = (max(5.0, 0.7 * rn.shape[1] + 2.5), min(max(3.0, 0.28 * rn.shape[0] + 1.8), 12.0))
    figs.append(_fig(lambda ax: (draw_heatmap(ax, rn.to_numpy(float), list(rn.index), list(rn.columns),
                                              title="redundancy by layer and score (rank-normalised)",
                                              cbar_label="0 = least, 1 = most redundant"),
                                 "Each score ranked over the layers (grey: does not apply).")[1], size))
    m = sb.correlations["layer_spearman"]
    n = m.shape[0]
    figs.append(_fig(lambda ax: (draw_matrix(ax, m.to_numpy(float), list(m.columns),
                                             title=f"Spearman correlation over {len(sb.table)} layers"),
                                 "Do the scores agree on which layers are redundant? (n/a: constant "
                                 "or fewer than 3 common layers)")[1], (max(4.5, 0.6 * n + 2.5), max(4.0, 0.6 * n + 1.5))))
    t = sb.table
    figs.append(_fig(lambda ax: (draw_bars(ax, list(t["layer"]), t["consensus"], title="consensus redundancy per layer",
                                           ylabel="mean of the scores"),
                                 "Mean of the layer's scores (each in [0, 1], higher = more redundant).")[1],
                     (max(5.0, 0.3 * len(t) + 2.0), 3.6)))
    return figs


def _report_figures(report) -> list[dict]:
    from redundancy.scoreboard.kernel_scores import report_scores

    rs = report_scores(report)
    names = [r.name for r in report.layers]
    vals = [rs["numerical"][n] if rs["numerical"][n] is not None else float("nan") for n in names]
    return [_fig(lambda ax: (draw_bars(ax, names, vals, title="1 - numerical rank / full rank per layer",
                                       ylabel="rank redundancy"),
                             "Share of each kernel's output-channel unfolding that is numerically dependent.")[1],
                 (max(5.0, 0.3 * len(names) + 2.0), 3.6))]


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("redundancy.scoreboard", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def _render(context: dict[str, Any]) -> str:
    """The page's HTML text from a context (see :func:`scoreboard_to_html` for the keys)."""
    return _environment().get_template("report.html.j2").render(**context)


def _write(path, text: str) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise RedundancyError(f"path={path!r}: the directory {parent!r} does not exist")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _context(title, sb, report, roi):
    tables = []
    marked = {k: v for k, v in caveats(sb.results if sb is not None else {}).items()}
    if sb is not None:
        cols = ["layer", "type", "params"] + list(sb.scores) + ["consensus", "spread"]
        flagged = [s for s in sb.scores if s in marked]
        tables.append(("Scores per layer (higher = more redundant)",
                       _mark_columns(_table(sb.table[cols]), flagged + (["consensus"] if flagged else []))))
        if sb.reference is not None:
            tables.append(("Which score predicts the CAR accuracy drop best (per layer)", _table(sb.reference)))
        defs = [{"score": s, "level": SCORES[s].level, "needs data": "yes" if SCORES[s].needs_data else "no",
                 "definition": SCORES[s].formula} for s in sb.scores]
        import pandas as pd

        tables.append(("Score definitions", _table(pd.DataFrame(defs))))
    if report is not None:
        df = report.to_pandas()[["name", "type", "out_channels", "arch_rank", "kr_ratio", "numerical_rank",
                                 "params", "macs", "segment", "dof_ratio"]]
        tables.append(("Layers (analyze)", _table(df)))
        if report.blocks:
            tables.append(("Blocks", _table(report.blocks_frame()[["name", "kind", "K", "R", "kr_ratio", "params"]])))
    if roi is not None:
        tables.append(("Return on the compression", _table(roi.to_pandas().reset_index())))
    skipped = sorted((sb.skipped if sb is not None else {}).items())
    figs = (_scoreboard_figures(sb) if sb is not None else []) + (_report_figures(report) if report is not None else [])
    lines = headline(sb, report, roi, (sb.results.get("longtail") if sb else None))
    if any(s in marked for s in (sb.scores if sb is not None else ())):
        lines[0] = (lines[0][0], f"{lines[0][1]} {MARK} (rests on the marked results below)")
    return {"title": title, "headline": lines, "figures": figs, "tables": tables, "skipped": skipped,
            "notes": sorted((sb.notes if sb is not None else {}).items()), "caveats": sorted(marked.items()),
            "mark": MARK}


def scoreboard_to_html(scoreboard, path, *, roi=None, report=None, title: str | None = None) -> str:
    """Write the one-page report of a Scoreboard (with its ``report`` unless another is given, and
    ``roi`` when given) to ``path``; returns the path.

    Examples
    --------
    >>> import os, tempfile
    >>> from torch import nn
    >>> from redundancy.scoreboard import scoreboard
    >>> sb = scoreboard(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 1)), input_shape=(1, 5, 5))
    >>> path = sb.to_html(os.path.join(tempfile.mkdtemp(), "page.html"))
    >>> "How much of the model is redundant?" in open(path).read()
    True
    """
    if not hasattr(scoreboard, "rank_normalised"):
        raise RedundancyError(f"scoreboard={type(scoreboard).__name__} is not a Scoreboard")
    if roi is not None and not hasattr(roi, "params_original"):
        raise RedundancyError(f"roi={type(roi).__name__} is not a RoiResult")
    report = report if report is not None else scoreboard.report
    title = title or f"Redundancy of {scoreboard.model_name}"
    return _write(path, _render(_context(title, scoreboard, report, roi)))


def report_to_html(report, path, roi=None, *, title: str | None = None) -> str:
    """Write the one-page report of a :class:`~redundancy.analysis.report.RedundancyReport`
    (and ``roi`` when given) to ``path``; returns the path."""
    if not hasattr(report, "layers") or not hasattr(report, "summary"):
        raise RedundancyError(f"report={type(report).__name__} is not a RedundancyReport")
    if roi is not None and not hasattr(roi, "params_original"):
        raise RedundancyError(f"roi={type(roi).__name__} is not a RoiResult")
    title = title or f"Redundancy of {report.model_name}"
    return _write(path, _render(_context(title, None, report, roi)))
