"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay
from redundancy.plotting.scoreboard import ScoreCorrelationDisplay, ScoreHeatmapDisplay

__all__ = ["BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "ScoreCorrelationDisplay",
           "ScoreHeatmapDisplay"]
