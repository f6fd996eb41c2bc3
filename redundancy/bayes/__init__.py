"""Bayesian redundancy: node-level spike-and-slab variational networks.

* :func:`fit_spike_slab` fits ``q(γ_j) = Bern(p_j)``, ``q(w_j | γ_j = 1) = N(μ_j, diag σ_j²)`` for
  every node (output unit or channel) of an ``nn.Sequential`` MLP or plain CNN, and optionally for
  its input features; the posterior inclusion probability ``p_j`` is the node's importance.
* :func:`prune_by_inclusion` keeps the nodes with ``p_j > 1/2`` (the median-probability model) as a
  plain, smaller deterministic network.
"""

from redundancy.bayes.convert import SpikeSlabNet, to_spike_slab
from redundancy.bayes.curve import InclusionCurve, inclusion_curve
from redundancy.bayes.fit import fit_spike_slab, posterior_predictive
from redundancy.bayes.prune import prune_by_inclusion, prune_by_magnitude, prune_to_counts
from redundancy.bayes.result import SpikeSlabResult

__all__ = ["fit_spike_slab", "SpikeSlabResult", "posterior_predictive", "prune_by_inclusion", "prune_to_counts",
           "prune_by_magnitude", "inclusion_curve", "InclusionCurve", "to_spike_slab", "SpikeSlabNet"]
