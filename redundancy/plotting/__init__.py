"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay
from redundancy.plotting.pruning import CARCurveDisplay, ClasswiseCARDisplay, FilterDisplay, PruningAccuracyDisplay

__all__ = ["BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "CARCurveDisplay", "ClasswiseCARDisplay",
           "FilterDisplay", "PruningAccuracyDisplay"]
