"""Drawing helpers shared by the scoreboard's Displays (:mod:`redundancy.plotting.scoreboard`) and
its HTML page (:mod:`.html`, which may not import the plotting package). They draw numbers the
scoreboard computed onto a given matplotlib Axes; they compute nothing.
"""

from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["draw_heatmap", "draw_matrix", "draw_bars", "png_base64", "FIG_DPI"]

FIG_DPI = 100


def _short(label: str, width: int = 18) -> str:
    label = str(label) if str(label) else "(model)"
    return label if len(label) <= width else "…" + label[-(width - 1):]


def draw_heatmap(ax, values: np.ndarray, rows, cols, *, title: str, cbar_label: str):
    """``values`` (rows x cols, NaN = not available, drawn grey) as an image in ``[0, 1]``; returns
    the image artist."""
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(np.asarray(values, dtype=float)), cmap=cmap, vmin=0.0, vmax=1.0,
                   aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_short(r) for r in rows], fontsize=7)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(list(cols), rotation=45, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(im, ax=ax, label=cbar_label, fraction=0.046, pad=0.04)
    return im


def draw_matrix(ax, matrix: np.ndarray, labels, *, title: str):
    """A correlation matrix in ``[-1, 1]`` with each entry written in its cell (NaN: "n/a")."""
    import matplotlib as mpl

    m = np.asarray(matrix, dtype=float)
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


def draw_bars(ax, labels, values, *, title: str, ylabel: str):
    """Bars of values in ``[0, 1]`` (NaN: no bar)."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    bars = ax.bar(range(len(v)), v, color="C0")
    ax.set_xticks(range(len(v)))
    ax.set_xticklabels([_short(x) for x in labels], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return bars


def png_base64(fig) -> tuple[str, int, int]:
    """``(base64 PNG, width, height)`` of ``fig`` at :data:`FIG_DPI` (its size in inches times the dpi)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI)
    w, h = (int(round(x)) for x in fig.get_size_inches() * FIG_DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii"), w, h
