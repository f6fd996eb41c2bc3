"""The exception hierarchy of :mod:`redundancy`.

Every error the library raises on bad input is a :class:`RedundancyError`, which is a
:class:`ValueError`, so ``except ValueError`` keeps working for callers that do not know this
library. Messages name the argument, the value received and what is allowed.
"""

from __future__ import annotations

__all__ = [
    "RedundancyError",
    "NotLinearError",
    "UnsupportedLayerError",
    "RankError",
    "CheckpointError", "RedundancyWarning", "ConvergenceWarning", "DecisionWarning"]


class RedundancyError(ValueError):
    """Base class for every error raised by :mod:`redundancy` on bad input."""


class NotLinearError(RedundancyError):
    """The model (or one of its submodules) is not affine in its input.

    Attributes
    ----------
    module_name : str or None
        Qualified name of the offending submodule, when it could be located.
    """

    def __init__(self, message: str, module_name: str | None = None):
        super().__init__(message)
        self.module_name = module_name


class UnsupportedLayerError(RedundancyError):
    """A layer type that the requested operation does not support."""


class RankError(RedundancyError):
    """Ranks that are not positive integers, exceed a mode, or have the wrong length."""


class CheckpointError(RedundancyError):
    """A checkpoint that cannot be loaded safely, or whose keys do not match the model."""


class RedundancyWarning(UserWarning):
    """Base class of every warning :mod:`redundancy` emits (filter them all with this class)."""


class ConvergenceWarning(RedundancyWarning):
    """A training run hit its budget (``max_epochs``) before its stopping rule fired: the numbers that
    rest on it may not be settled. The message names the method, the budget and what to change."""


class DecisionWarning(RedundancyWarning):
    """A decision (pruning, rank choice, node selection, compression) hands back a model that is near
    chance or past the user's budget, or was judged against a reference that is itself near chance."""
