"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.bayes import InclusionCurveDisplay, InclusionDisplay
from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay

__all__ = ["BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "InclusionDisplay", "InclusionCurveDisplay"]
