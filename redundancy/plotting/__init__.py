"""Displays (scikit-learn style): ``XDisplay.from_...(result).plot(ax=None)`` returns and keeps
``ax_`` and ``figure_``; matplotlib is imported inside ``plot``. A Display draws; it never computes.
"""

from redundancy.plotting.bayes import InclusionDisplay, InclusionCurveDisplay
from redundancy.plotting.displays import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay
from redundancy.plotting.longtail import MismatchByScoreDisplay, ClassFlipDisplay, MemorizationDisplay
from redundancy.plotting.pruning import CARCurveDisplay, ClasswiseCARDisplay, FilterDisplay, PruningAccuracyDisplay
from redundancy.plotting.ranks import RankBandDisplay, RankParetoDisplay
from redundancy.plotting.scoreboard import ScoreHeatmapDisplay, ScoreCorrelationDisplay

__all__ = ["InclusionDisplay", "InclusionCurveDisplay", "BoundVsCountDisplay", "ErrorCurveDisplay", "RoiDisplay", "MismatchByScoreDisplay", "ClassFlipDisplay", "MemorizationDisplay", "CARCurveDisplay", "ClasswiseCARDisplay", "FilterDisplay", "PruningAccuracyDisplay", "RankBandDisplay", "RankParetoDisplay", "ScoreHeatmapDisplay", "ScoreCorrelationDisplay"]
