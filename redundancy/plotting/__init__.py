"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.

The face is the Displays below; :class:`~redundancy.plotting.displays.ErrorCurveDisplay` (the
validation study's figure) and :class:`~redundancy.plotting.bayes.InclusionCurveDisplay` stay
importable from their modules (and, for 0.2 code, from here; they are off the face).
"""

from redundancy.plotting.bayes import InclusionCurveDisplay, InclusionDisplay  # noqa: F401 - see the docstring
from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay  # noqa: F401
from redundancy.plotting.longtail import MismatchByScoreDisplay, ClassFlipDisplay, MemorizationDisplay
from redundancy.plotting.pruning import CARCurveDisplay, ClasswiseCARDisplay, FilterDisplay, PruningAccuracyDisplay
from redundancy.plotting.ranks import RankBandDisplay, RankParetoDisplay
from redundancy.plotting.scoreboard import ScoreHeatmapDisplay, ScoreCorrelationDisplay

__all__ = ["InclusionDisplay", "BoundVsCountDisplay", "RoiDisplay", "MismatchByScoreDisplay", "ClassFlipDisplay",
           "MemorizationDisplay", "CARCurveDisplay", "ClasswiseCARDisplay", "FilterDisplay", "PruningAccuracyDisplay",
           "RankBandDisplay", "RankParetoDisplay", "ScoreHeatmapDisplay", "ScoreCorrelationDisplay"]
