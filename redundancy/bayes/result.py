""":class:`SpikeSlabResult`: posterior inclusion probabilities and predictive quality of a fit."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy.training.diagnostics import Convergence

__all__ = ["SpikeSlabResult"]


@_v.result
class SpikeSlabResult(_v.Result):
    """What :func:`redundancy.bayes.fit_spike_slab` found.

    Attributes
    ----------
    task : str
        ``"classification"`` or ``"regression"``.
    layers : tuple of str
        Qualified names (in the caller's model; for widths, in the built MLP) of the layers whose
        nodes carry indicators: every weight layer but the output layer.
    node_pip : dict of str to numpy.ndarray
        Posterior inclusion probability ``p_j = q(γ_j = 1)`` of each node (output unit / channel).
    node_magnitude : dict of str to numpy.ndarray
        ``‖μ_j‖₂`` of each node's incoming weights and bias (posterior mean given inclusion), the
        magnitude order used for comparison.
    feature_pip : numpy.ndarray or None
        Inclusion probability of each input unit of the first weight layer ``feature_layer``
        (input features of a Linear, input channels of a conv), when features were gated.
    accuracy, nll, ece : float or None
        Of the posterior predictive of the *unpruned* network ``p̄(y|x) = (1/S) Σ_s p(y | x, γ_s, w_s)`` on the test split
        (``ece``: expected calibration error, 15 equal-width confidence bins). Classification only
        for ``accuracy`` and ``ece``.
    rmse, r2 : float or None
        Of the predictive mean (regression).
    median_score : float
        Accuracy (classification) or RMSE (regression) of the deterministic median-probability
        model (nodes with ``p > 1/2``, weights ``μ``) on the test split.
    noise_scale : float or None
        Gaussian noise standard deviation (regression; known or fitted).
    losses : tuple of float
        Negative ELBO per training example, per epoch (one stochastic draw per step).
    convergence : Convergence
        The stopping rule's evidence: epochs run against the cap, the monitored negative ELBO
        (mean of the last 50 steps, one value per epoch) and its recent relative change,
        ``converged``, and for classifiers the training accuracy of the median model.
    predictive : numpy.ndarray
        Predictive class probabilities (classification) or mean (regression) on the test split.
    net : SpikeSlabNet
        The fitted variational network.
    """

    task: str
    layers: tuple[str, ...]
    node_pip: dict[str, np.ndarray]
    node_magnitude: dict[str, np.ndarray]
    feature_pip: np.ndarray | None
    feature_layer: str | None
    accuracy: float | None
    nll: float
    ece: float | None
    rmse: float | None
    r2: float | None
    median_score: float
    noise_scale: float | None
    prior_inclusion: float
    slab_scale: float
    n_samples: int
    seed: int
    losses: tuple[float, ...]
    convergence: Convergence
    seconds: float
    settings: dict[str, Any]
    predictive: np.ndarray = field(compare=False, metadata=_v.NOT_EXPORTED)
    net: Any = field(default=None, compare=False, metadata=_v.NOT_EXPORTED)

    # ----------------------------------------------------------------- summaries
    @property
    def layer_redundancy(self) -> dict[str, float]:
        """Fraction of each layer's nodes with PIP < 1/2."""
        return {name: float((p < 0.5).mean()) for name, p in self.node_pip.items()}

    @property
    def n_nodes_kept(self) -> dict[str, int]:
        """Nodes of each layer with PIP > 1/2 (the median-probability model)."""
        return {name: int((p > 0.5).sum()) for name, p in self.node_pip.items()}

    def layer_table(self):
        """One row per gated layer: ``layer``, ``redundancy`` (fraction of PIP < 1/2), ``n_nodes``,
        ``n_kept``, ``mean_pip``, ``n_undecided`` (0.1 < PIP < 0.9)."""
        import pandas as pd

        rows = [{"layer": n, "redundancy": self.layer_redundancy[n], "n_nodes": int(len(p)),
                 "n_kept": int((p > 0.5).sum()), "mean_pip": float(p.mean()),
                 "n_undecided": int(((p > 0.1) & (p < 0.9)).sum())} for n, p in self.node_pip.items()]
        return pd.DataFrame(rows, columns=["layer", "redundancy", "n_nodes", "n_kept", "mean_pip", "n_undecided"])

    def channel_table(self):
        """One row per node: ``layer``, ``channel``, ``importance`` (= PIP), ``kept`` (PIP > 1/2),
        ``magnitude`` (``‖μ_j‖₂``)."""
        import pandas as pd

        rows = [{"layer": n, "channel": j, "importance": float(p[j]), "kept": bool(p[j] > 0.5),
                 "magnitude": float(self.node_magnitude[n][j])}
                for n, p in self.node_pip.items() for j in range(len(p))]
        return pd.DataFrame(rows, columns=["layer", "channel", "importance", "kept", "magnitude"])

    def feature_table(self):
        """One row per gated input unit: ``feature``, ``pip``, ``kept`` (empty when none was gated)."""
        import pandas as pd

        if self.feature_pip is None:
            return pd.DataFrame(columns=["feature", "pip", "kept"])
        return pd.DataFrame({"feature": np.arange(len(self.feature_pip)), "pip": self.feature_pip,
                             "kept": self.feature_pip > 0.5})

    def to_pandas(self):
        """:meth:`channel_table` with a ``kind`` column, followed by the input features (``kind="feature"``,
        ``layer`` = the first weight layer)."""
        import pandas as pd

        nodes = self.channel_table().assign(kind="node")
        if self.feature_pip is None:
            return nodes
        feats = pd.DataFrame({"layer": self.feature_layer, "channel": np.arange(len(self.feature_pip)),
                              "importance": self.feature_pip, "kept": self.feature_pip > 0.5,
                              "magnitude": np.nan, "kind": "feature"})
        return pd.concat([nodes, feats], ignore_index=True)

    def _extra_dict(self) -> dict[str, Any]:
        return {"layer_redundancy": self.layer_redundancy, "n_nodes_kept": self.n_nodes_kept}

    def __repr__(self) -> str:
        kept = ", ".join(f"{n}: {k}/{len(self.node_pip[n])}" for n, k in self.n_nodes_kept.items())
        feats = "" if self.feature_pip is None else \
            f", features kept {int((self.feature_pip > 0.5).sum())}/{len(self.feature_pip)}"
        score = (f"accuracy={self.accuracy:.4f}, ece={self.ece:.4f}" if self.task == "classification"
                 else f"rmse={self.rmse:.4g}")
        med = "accuracy" if self.task == "classification" else "rmse"
        return (f"SpikeSlabResult({self.task}, median model keeps nodes [{kept}]{feats}, its test {med}="
                f"{self.median_score:.4g}; posterior predictive "
                f"(unpruned): {score}, nll={self.nll:.4f}; {self.convergence.summary()})")
