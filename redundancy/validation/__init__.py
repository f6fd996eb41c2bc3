"""Simulation study of the bounds: statistical-model data (:mod:`.simulate`), least-squares fits
(:mod:`.fit`), error-versus-n curves (:mod:`.validate`) and the whole study (:mod:`.study`).

Imports: the base modules, :mod:`redundancy.linear` and :mod:`redundancy.lowrank`.
"""

from redundancy.validation.fit import fit_linear_cnn
from redundancy.validation.simulate import Design, StatModelGenerator
from redundancy.validation.study import run_study
from redundancy.validation.validate import ErrorCurveResult, error_curve

__all__ = ["Design", "StatModelGenerator", "fit_linear_cnn", "error_curve", "ErrorCurveResult", "run_study"]
