"""The analyst's view of any torch model.

:mod:`.graph` traces layers and linear segments (fx, with :mod:`.hooks` as the fallback),
:mod:`.blocks` finds bottleneck / inverted-residual / multi-branch blocks, :mod:`.kr` their K/R,
:mod:`.segdof` the dof of each linear segment, :mod:`.report` puts it together in
``analyze``; :mod:`.latency` measures forward time and :mod:`.roi` the return on a compression;
:mod:`.count_bound` gives the numbers of the count-versus-bound plot and :mod:`.demo` runs the
built-in example.

The face is below; every other name stays importable from its module (e.g.
``redundancy.analysis.roi.RoiDesign``, ``redundancy.analysis.latency.LatencyPoint``).

Imports: the base modules, the theory (:mod:`redundancy.linear`), :mod:`redundancy.lowrank` and
the companion methods; never the plotting, the scoreboard or the CLI.
"""

from redundancy.analysis.count_bound import count_bound_table
from redundancy.analysis.design_dof import design_dof
from redundancy.analysis.graph import trace_model
from redundancy.analysis.kr import numerical_rank
from redundancy.analysis.latency import measure_latency
from redundancy.analysis.report import RedundancyReport, analyze
from redundancy.analysis.roi import RoiResult, estimate_roi
from redundancy.analysis.table import report_text

__all__ = ["analyze", "RedundancyReport", "estimate_roi", "RoiResult", "measure_latency", "trace_model",
           "design_dof", "numerical_rank", "count_bound_table", "report_text"]
