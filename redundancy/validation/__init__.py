"""Simulation study of the bounds: statistical-model data (:mod:`.simulate`), least-squares fits
(:mod:`.fit`), error-versus-n curves (:mod:`.validate`) and the whole study (:mod:`.study`).

Imports: the base modules, :mod:`redundancy.linear` and :mod:`redundancy.lowrank`.
"""
