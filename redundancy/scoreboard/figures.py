"""Drawing helpers shared by the scoreboard's Displays (:mod:`redundancy.plotting.scoreboard`) and
its HTML page (:mod:`.html`, which may not import the plotting package). They draw numbers the
scoreboard computed onto a given matplotlib Axes; they compute nothing.
"""

from __future__ import annotations

import base64
import io

import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__: list[str] = []  # the face is in the package's __init__

FIG_DPI = 100
#: Most rows/columns/bars one figure draws (each gets a tick label).
MAX_LABELS = 2_000
#: Largest PNG (width x height pixels at :data:`FIG_DPI`) :func:`png_base64` renders.
MAX_PIXELS = 50_000_000


def _axes(name, ax):
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise RedundancyError(f"{name}={_v._short(ax)} is not a matplotlib Axes; pass e.g. plt.subplots()[1]")
    return ax


def _labels(name, labels):
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    return _v.Items(_v.Instance((str, int, np.integer), "label (str or int)"), max_len=MAX_LABELS)(name, labels)


def _text(name, value):
    return _v.Instance(str, "string")(name, value)


_AX, _TEXT, _LABELS = _v.Check(_axes), _v.Check(_text), _v.Check(_labels)


def _values(name, values, shape):
    arr = _v.check_array(name, values, min_ndim=len(shape), max_ndim=len(shape), min_size=0, finite=False,
                         max_numel=MAX_LABELS ** 2)
    if arr.shape != shape:
        raise RedundancyError(f"{name} has shape {arr.shape}; the labels give {shape}")
    return arr


def _short(label: str, width: int = 18) -> str:
    label = str(label) if str(label) else "(model)"
    return label if len(label) <= width else "…" + label[-(width - 1):]


@_v.validate_params({"ax": _AX, "rows": _LABELS, "cols": _LABELS, "title": _TEXT, "cbar_label": _TEXT})
def draw_heatmap(ax, values: np.ndarray, rows, cols, *, title: str, cbar_label: str):
    """``values`` (rows x cols, NaN or inf = not available, drawn grey) as an image in ``[0, 1]``;
    returns the image artist.

    ``ax``: a matplotlib Axes; ``rows``/``cols``: at most :data:`MAX_LABELS` labels (str or int)
    matching the shape of ``values``; ``title``, ``cbar_label``: strings.
    """
    import matplotlib as mpl

    values = _values("values", values, (len(rows), len(cols)))
    if not values.size:
        raise RedundancyError("values is empty; a heatmap needs at least one row and one column")
    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0,
                   aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_short(r) for r in rows], fontsize=7)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(list(cols), rotation=45, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, label=cbar_label, fraction=0.046, pad=0.04)
    return im


_MAX_MATRIX = 100


@_v.validate_params({"ax": _AX, "labels": _LABELS, "title": _TEXT})
def draw_matrix(ax, matrix: np.ndarray, labels, *, title: str):
    """A correlation matrix in ``[-1, 1]`` with each entry written in its cell (NaN or inf: "n/a").

    ``matrix``: square, one row per label, at most 100 x 100 (one text per cell); ``ax``: a
    matplotlib Axes; ``title``: a string.
    """
    import matplotlib as mpl

    if len(labels) > _MAX_MATRIX:
        raise RedundancyError(f"labels has {len(labels)} entries; draw_matrix writes every cell, at most "
                              f"{_MAX_MATRIX} x {_MAX_MATRIX}")
    m = _values("matrix", matrix, (len(labels), len(labels)))
    if not m.size:
        raise RedundancyError("matrix is empty; give at least one label")
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(list(labels), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(list(labels), fontsize=8)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            txt = "n/a" if not np.isfinite(m[i, j]) else f"{m[i, j]:.2f}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(m[i, j]) and abs(m[i, j]) > 0.6 else "black")
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


@_v.validate_params({"ax": _AX, "labels": _LABELS, "title": _TEXT, "ylabel": _TEXT})
def draw_bars(ax, labels, values, *, title: str, ylabel: str):
    """Bars of values in ``[0, 1]`` (NaN: no bar; values outside are cut by the axis, inf is refused).

    ``labels``: at most :data:`MAX_LABELS` labels, one per value; ``ax``: a matplotlib Axes.
    """
    v = _values("values", values, (len(labels),))
    if np.isinf(v).any():
        raise RedundancyError("values holds inf; bars need finite values (NaN draws no bar)")
    v = np.nan_to_num(v, nan=0.0)
    bars = ax.bar(range(len(v)), v, color="C0")
    ax.set_xticks(range(len(v)))
    ax.set_xticklabels([_short(x) for x in labels], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return bars


def _figure(name, fig):
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise RedundancyError(f"{name}={_v._short(fig)} is not a matplotlib Figure")
    w, h = (float(x) * FIG_DPI for x in fig.get_size_inches())
    if not (np.isfinite(w) and np.isfinite(h)) or w * h > MAX_PIXELS:
        raise RedundancyError(f"{name} is {w:.4g} x {h:.4g} pixels at {FIG_DPI} dpi; the limit is "
                              f"{MAX_PIXELS:,} pixels")
    return fig


@_v.validate_params({"fig": _v.Check(_figure)})
def png_base64(fig) -> tuple[str, int, int]:
    """``(base64 PNG, width, height)`` of ``fig`` at :data:`FIG_DPI` (its size in inches times the dpi).

    ``fig``: a matplotlib Figure of at most :data:`MAX_PIXELS` pixels.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> data, w, h = png_base64(Figure(figsize=(2, 1)))
    >>> (w, h), data[:8]
    ((200, 100), 'iVBORw0K')
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI)
    w, h = (int(round(x)) for x in fig.get_size_inches() * FIG_DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii"), w, h
