"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.bayes import InclusionCurveDisplay, InclusionDisplay
from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay
from redundancy.plotting.longtail import ClassFlipDisplay, MemorizationDisplay, MismatchByScoreDisplay

__all__ = ["BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "ClassFlipDisplay", "MemorizationDisplay",
           "MismatchByScoreDisplay", "InclusionDisplay", "InclusionCurveDisplay"]
