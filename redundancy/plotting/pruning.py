"""Displays for CAR pruning: layer redundancy curves, the class-wise CAR heat map, first-layer
filters kept and pruned, and accuracy against the fraction pruned per criterion.

Each is built from numbers the library computed (``from_result``/``from_records``) and draws with
``plot(ax=None)``, keeping ``ax_`` and ``figure_``; matplotlib is imported inside ``plot``.
"""

from __future__ import annotations

from dataclasses import field

import numpy as np

from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes

__all__ = ["CARCurveDisplay", "ClasswiseCARDisplay", "FilterDisplay", "PruningAccuracyDisplay"]


class CARCurveDisplay(_Display):
    """Quality against the fraction of a layer's channels kept, removing them in CAR order.

    ``curves``: label -> (fraction kept, quality); ``finetuned``: the same after fine-tuning
    (dashed, same colour); ``redundancy``: label -> area, shown in the legend.
    """

    curves: dict
    finetuned: dict = field(default_factory=dict)
    redundancy: dict = field(default_factory=dict)
    metric: str = "accuracy"
    title: str | None = None

    @classmethod
    def from_result(cls, result, *, layers=None, finetuned=None, title=None):
        """From a :class:`~redundancy.pruning.CARResult` (its ``curves``); ``finetuned`` maps a layer
        to ``(fractions kept, quality)`` measured after fine-tuning."""
        names = list(result.curves) if layers is None else list(layers)
        if not names:
            raise RedundancyError("the result holds no curves; call car_scores(..., curves=True)")
        curves = {}
        for n in names:
            if n not in result.curves:
                raise RedundancyError(f"layers contains {n!r}, which has no curve; choose from {list(result.curves)}")
            q = np.asarray(result.curves[n][1], dtype=float)
            C = len(q) - 1
            curves[n] = ((C - np.arange(C + 1)) / C, q)
        return cls(curves, dict(finetuned or {}), {n: result.redundancy.get(n, np.nan) for n in names},
                   result.metric, title)

    def plot(self, ax=None):
        ax = _axes(ax)
        for i, (name, (x, q)) in enumerate(self.curves.items()):
            red = self.redundancy.get(name)
            label = name if red is None else f"{name} (redundancy {red:.2f})"
            line, = ax.plot(x, q, marker="o", ms=3, label=label, color=f"C{i}")
            if name in self.finetuned:
                fx, fq = self.finetuned[name]
                ax.plot(fx, fq, ls="--", marker="s", ms=4, color=line.get_color(), label=f"{name} fine-tuned")
        ax.set_xlabel("fraction of channels kept (removed in increasing CAR order)")
        ax.set_ylabel(self.metric)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if self.title:
            ax.set_title(self.title)
        return self._drawn(ax)


class ClasswiseCARDisplay(_Display):
    """Heat map of class-wise CAR: one row per channel of one layer, one column per class."""

    matrix: np.ndarray
    channels: np.ndarray
    layer: str
    title: str | None = None

    @classmethod
    def from_result(cls, result, layer=None, *, title=None):
        if result.classwise is None:
            raise RedundancyError("the result has no class-wise CAR; call car_scores(..., classwise=True)")
        layer = result.layer[0] if layer is None else layer
        sel = result.layer == layer
        if not sel.any():
            raise RedundancyError(f"layer={layer!r} was not scored; choose from {sorted(set(result.layer))}")
        return cls(np.asarray(result.classwise[sel]), np.asarray(result.channel[sel]), str(layer), title)

    def plot(self, ax=None):
        ax = _axes(ax, (max(4.0, 0.5 * self.matrix.shape[1] + 2), max(3.0, 0.22 * len(self.channels) + 1.5)))
        lim = max(float(np.abs(self.matrix).max()), 1e-12)
        im = ax.imshow(self.matrix, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xlabel("class")
        ax.set_ylabel(f"channel of {self.layer}")
        ax.set_xticks(range(self.matrix.shape[1]))
        ax.set_yticks(range(len(self.channels)))
        ax.set_yticklabels([str(c) for c in self.channels], fontsize=6)
        ax.figure.colorbar(im, ax=ax, label="accuracy drop on the class")
        ax.set_title(self.title or "class-wise CAR")
        return self._drawn(ax)


class FilterDisplay(_Display):
    """First-layer filters as images: kept ones (left block) and pruned ones (right block)."""

    weights: np.ndarray
    kept: np.ndarray
    title: str | None = None

    @classmethod
    def from_module(cls, module, removed_channels, *, title=None):
        """From the (unpruned) conv ``module`` and the output channels pruned from it."""
        w = module.weight.detach().cpu().double().numpy()
        kept = np.ones(w.shape[0], dtype=bool)
        for c in removed_channels:
            if not 0 <= int(c) < len(kept):
                raise RedundancyError(f"removed channel {c} is outside 0..{len(kept) - 1}")
            kept[int(c)] = False
        return cls(w, kept, title)

    def plot(self, ax=None):
        w = self.weights.mean(axis=1)  # over input channels
        if w.ndim == 2:  # 1-D kernels: draw each as a 1 x k strip
            w = w[:, None, :]
        order = [np.flatnonzero(self.kept), np.flatnonzero(~self.kept)]
        ncol = max(1, int(np.ceil(np.sqrt(len(w)))))
        h, wd = w.shape[1:]
        rows = max(int(np.ceil(len(o) / ncol)) for o in order) or 1
        canvas = np.full((rows * (h + 1), 2 * ncol * (wd + 1) + 2), np.nan)
        for block, idx in enumerate(order):
            for k, c in enumerate(idx):
                r, col = divmod(k, ncol)
                x0 = block * (ncol * (wd + 1) + 2) + col * (wd + 1)
                f = w[c]
                f = f / (np.abs(f).max() or 1.0)
                canvas[r * (h + 1): r * (h + 1) + h, x0:x0 + wd] = f
        ax = _axes(ax, (8, 3))
        ax.imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([ncol * (wd + 1) / 2, ncol * (wd + 1) + 2 + ncol * (wd + 1) / 2])
        ax.set_xticklabels([f"kept ({len(order[0])})", f"pruned ({len(order[1])})"])
        ax.set_yticks([])
        ax.set_title(self.title or "first-layer filters")
        return self._drawn(ax)


class PruningAccuracyDisplay(_Display):
    """Test accuracy against the fraction of channels pruned, one line per criterion (mean and
    spread over seeds)."""

    frame: object
    value: str = "accuracy"
    title: str | None = None

    @classmethod
    def from_records(cls, records, *, value="test_after", title=None):
        """``records``: dicts (or a DataFrame) with ``criterion``, ``fraction`` and ``value``."""
        import pandas as pd

        df = pd.DataFrame(records)
        missing = {"criterion", "fraction", value} - set(df.columns)
        if missing:
            raise RedundancyError(f"records lack the columns {sorted(missing)}")
        return cls(df, value, title)

    def plot(self, ax=None):
        ax = _axes(ax)
        g = self.frame.groupby(["criterion", "fraction"])[self.value].agg(["mean", "std"]).reset_index()
        for i, (crit, sub) in enumerate(g.groupby("criterion", sort=False)):
            sub = sub.sort_values("fraction")
            ax.errorbar(sub["fraction"], sub["mean"], yerr=sub["std"].fillna(0), marker="o", capsize=3,
                        label=crit, lw=2.5 if crit == "car" else 1.2, color=f"C{i}")
        ax.set_xlabel("fraction of channels pruned")
        ax.set_ylabel(self.value)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if self.title:
            ax.set_title(self.title)
        return self._drawn(ax)
