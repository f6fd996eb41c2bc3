"""Displays of a :class:`~redundancy.scoreboard.Scoreboard`: the layer x score heat map of
rank-normalised scores and the matrix of rank correlations between the scores."""

from __future__ import annotations


import pandas as pd

from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes
from redundancy.scoreboard.figures import draw_heatmap, draw_matrix

__all__ = ["ScoreHeatmapDisplay", "ScoreCorrelationDisplay"]


def _check(sb):
    if not hasattr(sb, "rank_normalised") or not hasattr(sb, "correlations"):
        raise RedundancyError(f"scoreboard={type(sb).__name__} is not a Scoreboard")
    if not sb.scores:
        raise RedundancyError("the scoreboard holds no score; nothing to draw")


class ScoreHeatmapDisplay(_Display):
    """Layers (rows) x scores (columns), each score rank-normalised over the layers (0 = least,
    1 = most redundant on this model; grey = not available), with the consensus as last column."""

    values: pd.DataFrame

    @classmethod
    def from_result(cls, scoreboard, *, consensus: bool = True) -> "ScoreHeatmapDisplay":
        """Build from a Scoreboard.

        Examples
        --------
        >>> from torch import nn
        >>> from redundancy.scoreboard import scoreboard
        >>> sb = scoreboard(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 1)), input_shape=(1, 5, 5))
        >>> disp = ScoreHeatmapDisplay.from_result(sb).plot()
        >>> disp.image_.get_array().shape   # EVBMF reads these random kernels as noise: left out
        (2, 6)
        """
        _check(scoreboard)
        vals = scoreboard.rank_normalised()
        if consensus:
            vals["consensus"] = scoreboard.table.set_index("layer")["consensus_rank"]
        return cls(values=vals)

    def plot(self, ax=None) -> "ScoreHeatmapDisplay":
        v = self.values
        ax = _axes(ax, (max(5.0, 0.7 * v.shape[1] + 2.5), max(3.0, 0.28 * v.shape[0] + 1.8)))
        self.image_ = draw_heatmap(ax, v.to_numpy(float), list(v.index), list(v.columns),
                                   title="redundancy by layer and score (rank-normalised)",
                                   cbar_label="0 = least, 1 = most redundant")
        return self._drawn(ax)


class ScoreCorrelationDisplay(_Display):
    """Spearman (or Kendall) rank correlation between the scores, over layers or channels."""

    matrix: pd.DataFrame
    title: str

    @classmethod
    def from_result(cls, scoreboard, *, level: str = "layer", method: str = "spearman"
                    ) -> "ScoreCorrelationDisplay":
        """Build from a Scoreboard; ``level`` in {"layer", "channel"}, ``method`` in {"spearman", "kendall"}.

        Examples
        --------
        >>> from torch import nn
        >>> from redundancy.scoreboard import scoreboard
        >>> sb = scoreboard(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 1)), input_shape=(1, 5, 5))
        >>> ScoreCorrelationDisplay.from_result(sb).plot().matrix.shape
        (5, 5)
        """
        _check(scoreboard)
        if level not in ("layer", "channel"):
            raise RedundancyError(f"level={level!r} is not allowed; choose one of ['layer', 'channel']")
        if method not in ("spearman", "kendall"):
            raise RedundancyError(f"method={method!r} is not allowed; choose one of ['spearman', 'kendall']")
        m = scoreboard.correlations[f"{level}_{method}"]
        if m.shape[0] == 0:
            raise RedundancyError(f"the scoreboard has no {level}-level score to correlate")
        n = len(scoreboard.table) if level == "layer" else len(scoreboard.channels)
        return cls(matrix=m, title=f"{method.capitalize()} correlation over {n} {level}s")

    def plot(self, ax=None) -> "ScoreCorrelationDisplay":
        n = self.matrix.shape[0]
        ax = _axes(ax, (max(4.5, 0.6 * n + 2.5), max(4.0, 0.6 * n + 1.5)))
        self.image_ = draw_matrix(ax, self.matrix.to_numpy(float), list(self.matrix.columns), title=self.title)
        return self._drawn(ax)
