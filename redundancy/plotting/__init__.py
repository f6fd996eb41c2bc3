"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay
from redundancy.plotting.ranks import RankBandDisplay, RankParetoDisplay

__all__ = ["BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "RankBandDisplay", "RankParetoDisplay"]
