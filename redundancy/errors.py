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
    "CheckpointError",
]


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
