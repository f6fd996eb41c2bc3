r"""Test score against the number of nodes kept, removing nodes in PIP order or in magnitude order.

For each fraction ``f`` every gated layer keeps its ``max(1, round(f · n_l))`` nodes with the
largest posterior inclusion probability ``p_j`` (``"pip"``) or the largest ``‖μ_j‖₂`` of the
same fitted posterior means (``"magnitude"``); the plain pruned network
(:func:`redundancy.bayes.prune.prune_to_counts`, weights ``μ``, no fine-tuning) is scored on the
test split by :func:`redundancy.training.evaluate`: accuracy (classification) or RMSE (regression).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy.bayes.prune import _fitted_result, _gated, prune_to_counts
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.training import check_device, evaluate
from redundancy.training.diagnostics import Convergence, warn_unconverged

_MAX_FRACTIONS = 100

__all__ = ["InclusionCurve", "inclusion_curve"]


@_v.result
class InclusionCurve(_v.Result):
    """Scores of PIP-ordered and magnitude-ordered pruning at several numbers of nodes kept.

    Attributes
    ----------
    fractions : numpy.ndarray
    nodes_kept : numpy.ndarray
        Total nodes kept over the gated layers at each fraction.
    total_nodes : int
    score_pip, score_magnitude : numpy.ndarray
        Accuracy (classification) or RMSE (regression).
    metric : str
    median_nodes : int
        Nodes with PIP > 1/2 (the median-probability model), for reference.
    convergence : Convergence
        Of the fit the curve rests on (``result.convergence``); an unconverged fit warns again here.
    """

    fractions: np.ndarray
    nodes_kept: np.ndarray
    total_nodes: int
    score_pip: np.ndarray
    score_magnitude: np.ndarray
    metric: str
    median_nodes: int
    convergence: Convergence

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"fraction": self.fractions, "nodes_kept": self.nodes_kept,
                             f"{self.metric}_pip": self.score_pip, f"{self.metric}_magnitude": self.score_magnitude})

    def __repr__(self) -> str:
        return (f"InclusionCurve({self.metric}, {len(self.fractions)} points, total nodes {self.total_nodes}, "
                f"median model {self.median_nodes}; fit {self.convergence.summary()})")


@_v.validate_params({"result": _fitted_result,
                     "fractions": _v.Items(_v.Float(0.0, 1.0, lo_open=True), min_len=1, max_len=_MAX_FRACTIONS),
                     "device": lambda name, v: check_device(v)})
def inclusion_curve(result, data: Any, fractions: Sequence[float] = (1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05),
                    *, device: Any = "cpu") -> InclusionCurve:
    """Score the pruned networks at each fraction of nodes kept, for both orders.

    Parameters
    ----------
    result : SpikeSlabResult
        From :func:`~redundancy.bayes.fit_spike_slab` (its net is not changed).
    data : Dataset or arrays
        Scored on its test split; same task and input shape as the fit.
    fractions : sequence of float
        1 to 100 fractions in (0, 1] of each gated layer's nodes to keep.
    device : str

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.bayes import fit_spike_slab
    >>> X = np.random.default_rng(0).normal(size=(200, 5)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> res = fit_spike_slab((8,), (X, y), n_samples=2)
    >>> inclusion_curve(res, (X, y), fractions=(1.0, 0.5)).nodes_kept.tolist()
    [8, 4]
    """
    ds = as_dataset(data)
    if ds.task != result.task:
        raise RedundancyError(f"data is a {ds.task} data set but the result is a {result.task} fit; give the "
                              "data the network was fitted on (or one like it)")
    if tuple(ds.input_shape) != tuple(result.net.input_shape):
        raise RedundancyError(f"data has examples of shape {tuple(ds.input_shape)}; the fitted network takes "
                              f"{tuple(result.net.input_shape)}")
    warn_unconverged("inclusion_curve", result.convergence, "its scores rest on a spike-and-slab fit that had not "
                     "converged; refit with a larger epochs cap", stacklevel=4)
    fr = np.asarray(fractions, dtype=float)
    sizes = _gated(result)
    scores = {"pip": [], "magnitude": []}
    kept = []
    metric = "accuracy" if result.task == "classification" else "rmse"
    for f in fr:
        counts = {n: max(1, int(round(f * s))) for n, s in sizes.items()}
        kept.append(sum(counts.values()))
        for order in scores:
            model = prune_to_counts(result, counts, order=order).model
            ev = evaluate(model, ds, device=device)
            scores[order].append(ev.accuracy if metric == "accuracy" else float(np.sqrt(ev.loss)))
    _v.check_finite_result("the inclusion curve's scores", np.concatenate([scores["pip"], scores["magnitude"]]),
                           "the pruned networks' outputs overflow on this data")
    return InclusionCurve(fractions=fr, nodes_kept=np.asarray(kept), total_nodes=int(sum(sizes.values())),
                          score_pip=np.asarray(scores["pip"]), score_magnitude=np.asarray(scores["magnitude"]),
                          metric=metric, median_nodes=int(sum(result.n_nodes_kept.values())),
                          convergence=result.convergence)
