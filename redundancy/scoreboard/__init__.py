"""The redundancy scoreboard: every score of every layer side by side, and a one-page HTML report.

:mod:`.definitions` (what each score is), :mod:`.kernel_scores` (data-free scores from the report
and the kernels), :mod:`.channel_scores` (L1 and Taylor channel importances), :mod:`.companions`
(the rank search, CAR, spike-and-slab and long-tail results), :mod:`.correlation` (agreement and
consensus), :mod:`.board` (``scoreboard``), :mod:`.html` (the report page).

Imports: everything below it (analysis, the companion methods, lowrank, linear, base); never the
plotting package or the CLI (the HTML page draws its figures with matplotlib directly).
"""

from redundancy.scoreboard.board import Scoreboard, scoreboard
from redundancy.scoreboard.definitions import SCORES, ScoreDefinition

__all__ = ["Scoreboard", "scoreboard", "SCORES", "ScoreDefinition"]
