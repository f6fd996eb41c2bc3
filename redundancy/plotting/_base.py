"""What every Display shares: it is a dataclass of the numbers it draws, ``plot`` draws on the given
Axes (or on a new figure) and keeps the Axes in ``ax_`` and the Figure in ``figure_``.

matplotlib is imported inside :func:`_axes` only (when a figure is made), never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import dataclass_transform


def _axes(ax, size=(6.4, 4.8)):
    """``ax``, or the Axes of a new figure of ``size`` inches when ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


@dataclass_transform()
class _Display:
    """Base of the Displays: every subclass is a (mutable) dataclass of its annotated fields."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(cls)

    def _drawn(self, ax):
        """Keep ``ax`` in ``ax_`` and its Figure in ``figure_``; return the Display (``plot``'s answer)."""
        self.ax_, self.figure_ = ax, ax.figure
        return self
