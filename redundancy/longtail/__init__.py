"""Long-tail risk of a compression: memorization/influence estimates and reference-vs-compressed mismatches.

* :func:`memorization` (Feldman-Zhang subsampling, vmapped training) and :func:`load_fz_runs`
  (released per-run arrays) give a :class:`MemorizationResult`;
* :func:`mismatch_report` compares a reference model with one or several compressed models and
  ties their mismatches to per-example scores (:class:`LongTailRiskReport`);
* :func:`tail_flip_rates` is the long-tail line of the ROI;
* :mod:`redundancy.longtail.compressions`: low-rank, magnitude pruning and int8 quantization.
"""

from redundancy.longtail import compressions  # noqa: F401 - redundancy.longtail.compressions stays an attribute
from redundancy.longtail.estimator import MemorizationResult, estimate_memorization
from redundancy.longtail.fz_runs import load_fz_runs
from redundancy.longtail.mismatch import LongTailRiskReport, mismatch_report
from redundancy.longtail.subsample import memorization
from redundancy.longtail.tail import example_loss, tail_flip_rates

__all__ = ["memorization", "estimate_memorization", "load_fz_runs", "MemorizationResult", "mismatch_report",
           "LongTailRiskReport", "tail_flip_rates", "example_loss"]
