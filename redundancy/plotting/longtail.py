"""Displays of long-tail risk (scikit-learn style; matplotlib imported inside ``plot``).

* :class:`MismatchByScoreDisplay`: mismatch rate (reference vs compressed) against bins of a
  per-example score (memorization, maximal influence, ...), one line per compressed model.
* :class:`ClassFlipDisplay`: the flip rate of each class, grouped bars per compressed model.
* :class:`MemorizationDisplay`: histogram of memorization estimates.
"""

from __future__ import annotations


import numpy as np

from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes

__all__ = ["MismatchByScoreDisplay", "ClassFlipDisplay", "MemorizationDisplay"]


class MismatchByScoreDisplay(_Display):
    """Mismatch rate per score bin for several compressed models.

    ``curves`` maps a model name to ``(mean score of each bin, mismatch rates, counts)``; ``score``
    names the score.
    """

    curves: dict
    score: str
    stats: dict

    @classmethod
    def from_report(cls, report, *, score: str | None = None) -> "MismatchByScoreDisplay":
        """Build from a :class:`redundancy.longtail.LongTailRiskReport` computed with ``scores``.

        Examples
        --------
        >>> import numpy as np
        >>> from torch import nn
        >>> from redundancy.longtail import mismatch_report
        >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32"); y = np.arange(40) % 2
        >>> rep = mismatch_report(nn.Linear(3, 2), {"a": nn.Linear(3, 2)}, (X, y), scores=np.arange(40.))
        >>> disp = MismatchByScoreDisplay.from_report(rep).plot()
        >>> len(disp.lines_)
        1
        """
        names = list(dict.fromkeys(b["score"] for b in report.bins))
        if not names:
            raise RedundancyError("the report has no score bins; call mismatch_report(..., scores=...)")
        score = names[0] if score is None else score
        if score not in names:
            raise RedundancyError(f"score={score!r} is not in the report; choose one of {names}")
        curves, stats = {}, {}
        for m in report.models:
            rows = [b for b in report.bins if b["model"] == m and b["score"] == score]
            curves[m] = (np.array([b["mean_score"] for b in rows]),
                         np.array([b["mismatch_rate"] for b in rows]), np.array([b["count"] for b in rows]))
            stats[m] = next(r for r in report.score_rows if r["model"] == m and r["score"] == score)
        return cls(curves, score, stats)

    def plot(self, ax=None, **kwargs) -> "MismatchByScoreDisplay":
        ax = _axes(ax)
        self.lines_ = []
        for m, (x, r, c) in self.curves.items():
            s = self.stats[m]
            auc = "n/a" if s["auc"] is None else f"{s['auc']:.2f}"
            (line,) = ax.plot(x, r, marker="o", label=f"{m} (AUC {auc}, p={s['p_value']:.2g})", **kwargs)
            self.lines_.append(line)
        ax.set_xlabel(f"{self.score} (mean of each bin)")
        ax.set_ylabel("mismatch rate (reference vs compressed)")
        ax.set_title(f"mismatches by {self.score}")
        ax.legend(loc="best", fontsize="small")
        return self._drawn(ax)


class ClassFlipDisplay(_Display):
    """Flip rate of each class (rows: compressed models)."""

    models: list
    per_class: np.ndarray

    @classmethod
    def from_report(cls, report) -> "ClassFlipDisplay":
        """Build from a :class:`redundancy.longtail.LongTailRiskReport`."""
        if not hasattr(report, "per_class"):
            raise RedundancyError(f"report={type(report).__name__} is not a LongTailRiskReport")
        return cls(list(report.models), np.asarray(report.per_class, dtype=float))

    def plot(self, ax=None, **kwargs) -> "ClassFlipDisplay":
        n_models, n_classes = self.per_class.shape
        ax = _axes(ax, (max(6.4, 0.5 * n_classes * max(1, n_models) ** 0.5), 4.8))
        width = 0.8 / max(n_models, 1)
        x = np.arange(n_classes)
        self.bars_ = [ax.bar(x + (i - (n_models - 1) / 2) * width, self.per_class[i], width, label=m, **kwargs)
                      for i, m in enumerate(self.models)]
        ax.set_xticks(x)
        ax.set_xlabel("class")
        ax.set_ylabel("flip rate")
        ax.set_title("per-class flip rate (reference vs compressed)")
        ax.legend(loc="best", fontsize="small")
        return self._drawn(ax)


class MemorizationDisplay(_Display):
    """Histogram of memorization estimates ``mem(i)``."""

    mem: np.ndarray
    n_models: int

    @classmethod
    def from_result(cls, result) -> "MemorizationDisplay":
        """Build from a :class:`redundancy.longtail.MemorizationResult`."""
        if not hasattr(result, "mem"):
            raise RedundancyError(f"result={type(result).__name__} is not a MemorizationResult")
        return cls(np.asarray(result.mem, dtype=float)[result.defined], int(result.n_models))

    def plot(self, ax=None, *, bins: int = 40, **kwargs) -> "MemorizationDisplay":
        ax = _axes(ax)
        self.hist_ = ax.hist(self.mem, bins=bins, **kwargs)
        ax.set_yscale("log")
        ax.set_xlabel("memorization estimate mem(i)")
        ax.set_ylabel("training examples")
        ax.set_title(f"Feldman-Zhang memorization ({self.n_models} models)")
        return self._drawn(ax)
