"""Displays of a spike-and-slab fit (see :mod:`redundancy.bayes`).

* :class:`InclusionDisplay`: the posterior inclusion probabilities of each layer's nodes (and of
  the input features), sorted in decreasing order, with the keep threshold.
* :class:`InclusionCurveDisplay`: test score against the number of nodes kept, removing nodes in PIP
  order and in magnitude order, with the median-probability model marked.
"""

from __future__ import annotations

from dataclasses import field

import numpy as np

from redundancy.errors import RedundancyError
from redundancy.plotting._base import _Display, _axes

__all__ = ["InclusionDisplay"]


class InclusionDisplay(_Display):
    """Sorted PIPs per layer with a threshold line.

    Parameters
    ----------
    pips : dict of str to numpy.ndarray
        One array of PIPs per layer (a label such as ``"features"`` for the input features).
    threshold : float
    converged : bool
        Whether the fit converged; ``False`` puts "NOT CONVERGED" in the title.

    Examples
    --------
    >>> import numpy as np
    >>> d = InclusionDisplay({"0": np.array([0.9, 0.1, 0.6])}).plot()
    >>> bool(d.ax_.get_ylim()[1] >= 1)
    True
    """

    pips: dict
    threshold: float = 0.5
    converged: bool = True
    ax_: object = field(default=None, repr=False)
    figure_: object = field(default=None, repr=False)

    @classmethod
    def from_result(cls, result, threshold: float = 0.5) -> "InclusionDisplay":
        pips = {f"layer {n}": np.asarray(p) for n, p in result.node_pip.items()}
        if result.feature_pip is not None:
            pips["input features"] = np.asarray(result.feature_pip)
        if not pips:
            raise RedundancyError("the result has no gated layer or feature to draw")
        return cls(pips, threshold, converged=bool(result.convergence.converged))

    def plot(self, ax=None) -> "InclusionDisplay":
        ax = _axes(ax, (6.4, 4.2))
        for label, p in self.pips.items():
            s = np.sort(np.asarray(p, dtype=float))[::-1]
            x = (np.arange(len(s)) + 0.5) / len(s)
            kept = int((s > self.threshold).sum())
            ax.step(x, s, where="mid", label=f"{label}: {kept}/{len(s)} kept")
        ax.axhline(self.threshold, color="k", ls="--", lw=1, label=f"threshold {self.threshold:g}")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("rank within layer (fraction of nodes)")
        ax.set_ylabel("posterior inclusion probability")
        ax.set_title("Spike-and-slab inclusion probabilities, sorted"
                     + ("" if self.converged else "\n(fit NOT CONVERGED: the PIPs may not be settled)"))
        ax.legend(fontsize=8)
        return self._drawn(ax)


class InclusionCurveDisplay(_Display):
    """Test score against nodes kept, for PIP order and magnitude order.

    Examples
    --------
    >>> import numpy as np
    >>> d = InclusionCurveDisplay(np.array([10, 5]), np.array([0.9, 0.8]), np.array([0.9, 0.6]), "accuracy", 6).plot()
    >>> len(d.ax_.lines) >= 2
    True
    """

    nodes_kept: np.ndarray
    score_pip: np.ndarray
    score_magnitude: np.ndarray
    metric: str = "accuracy"
    median_nodes: int | None = None
    converged: bool = True
    ax_: object = field(default=None, repr=False)
    figure_: object = field(default=None, repr=False)

    @classmethod
    def from_result(cls, curve) -> "InclusionCurveDisplay":
        return cls(np.asarray(curve.nodes_kept), np.asarray(curve.score_pip), np.asarray(curve.score_magnitude),
                   curve.metric, curve.median_nodes, converged=bool(curve.convergence.converged))

    def plot(self, ax=None) -> "InclusionCurveDisplay":
        ax = _axes(ax, (6.4, 4.2))
        order = np.argsort(self.nodes_kept)
        ax.plot(self.nodes_kept[order], self.score_pip[order], "o-", label="keep largest PIP")
        ax.plot(self.nodes_kept[order], self.score_magnitude[order], "s--", label="keep largest ‖μ‖")
        if self.median_nodes is not None:
            ax.axvline(self.median_nodes, color="gray", ls=":", label=f"PIP > 1/2 ({self.median_nodes} nodes)")
        ax.set_xlabel("hidden nodes kept (all gated layers)")
        ax.set_ylabel(f"test {self.metric}")
        ax.set_title("Pruning order: inclusion probability vs magnitude (no fine-tuning)"
                     + ("" if self.converged else "\n(fit NOT CONVERGED)"))
        ax.legend(fontsize=8)
        return self._drawn(ax)
