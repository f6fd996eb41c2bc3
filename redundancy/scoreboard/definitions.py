"""What each scoreboard score is: its formula, its direction and where it comes from.

Every score is a *redundancy* in ``[0, 1]``: **higher = more of the layer is redundant**. A score
that a method reports the other way round (a rank fraction, a channel importance) is turned over
by the formula given here. Channel-level values are *importances* (higher = the channel matters
more), as the companion methods' ``channel_table()`` reports them.

=============  =======  ======  ===========================================================
name           level    data    redundancy of layer ``l``
=============  =======  ======  ===========================================================
dof            segment  no      ``1 - dof(S) / naive(S)`` of the layer's maximal linear segment S
kr_segment     layer    no      ``1 - R / K`` with ``R`` the architecture rank feeding the layer
                                inside its segment (``1 - 1/(K/R)``; 0 without a bottleneck)
kr_block       block    no      ``1 - R / K`` of the block holding the layer (NaN outside blocks)
numerical      layer    no      ``1 - rank_tol(W_(0)) / min(K, C k)``, numerical rank of the
                                output-channel unfolding (per group, summed)
evbmf          layer    no      ``1 - rank_EVBMF(W_(0)) / min(K, C k)`` (Nakajima et al. 2013)
energy         layer    no      ``1 - r_0.9 / min(K, C k)``, ``r_0.9`` the fewest singular values
                                holding 90 % of ``sum sigma_i^2``
l1             layer    no      ``1 - (sum_k a_k)^2 / (K sum_k a_k^2)`` with ``a_k = ||W_k||_1``
taylor         layer    yes     same participation formula with ``a_k`` the Taylor importance
                                ``mean_n |mean_m a_nkm g_nkm|`` (Molchanov et al. 2017)
searched       layer    opt.    ``layer_table().redundancy`` of the rank search (``1 -`` kept rank fraction)
car            layer    yes     ``layer_table().redundancy`` of CAR (area under the CAR curve)
pip            layer    yes     fraction of the layer's channels with posterior inclusion
                                probability below 1/2 (from ``channel_table()``)
=============  =======  ======  ===========================================================

The participation redundancy ``1 - PR / K`` (``PR = (sum a)^2 / sum a^2``, the effective number of
channels) is 0 when all channels matter equally and ``1 - m/K`` when only ``m`` of them carry all
of the importance equally; a layer whose importances are all zero scores 1.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScoreDefinition", "SCORES"]


@dataclass(frozen=True, kw_only=True)
class ScoreDefinition:
    """One score: ``name``, the ``level`` it is defined on, whether it ``needs_data``, its
    ``formula`` (higher = more redundant) and its ``source``."""

    name: str
    label: str
    level: str
    needs_data: bool
    formula: str
    source: str


#: (name, label, level, needs_data, formula, source) of every score
_TABLE = (
    ("dof", "naive/dof", "segment", False, "1 - dof(S) / naive(S) of the layer's linear segment S",
     "redundancy.analysis.analyze (segment rows)"),
    ("kr_segment", "K/R segment", "layer", False,
     "1 - R/K, R = architecture rank feeding the layer in its segment (0 when R >= K)",
     "redundancy.analysis.analyze (layer rows: kr_ratio)"),
    ("kr_block", "K/R block", "block", False, "1 - R/K of the layer's block (none outside blocks)",
     "redundancy.analysis.analyze (block rows)"),
    ("numerical", "numerical rank", "layer", False,
     "1 - numerical rank / min(K, C*prod(k)) of the output-channel unfolding",
     "redundancy.analysis.analyze (layer rows: numerical_rank)"),
    ("evbmf", "EVBMF rank", "layer", False,
     "1 - EVBMF rank / min(K, C*prod(k)) of the output-channel unfolding",
     "redundancy.lowrank.ranks.evbmf"),
    ("energy", "energy-0.9 rank", "layer", False,
     "1 - r_0.9 / min(K, C*prod(k)), r_0.9 = fewest singular values with 90% of the energy",
     "redundancy.lowrank.ranks.energy_ranks"),
    ("l1", "L1 norm", "channel", False,
     "1 - (sum a_k)^2 / (K sum a_k^2), a_k = ||W_k||_1 (channel importance a_k)",
     "redundancy.scoreboard.channel_scores.l1_importance"),
    ("taylor", "Taylor", "channel", True,
     "1 - (sum a_k)^2 / (K sum a_k^2), a_k = mean_n |mean_m act * dL/dact| (channel importance a_k)",
     "redundancy.scoreboard.channel_scores.taylor_importance"),
    ("searched", "searched rank", "layer", False,
     "layer_table().redundancy of the rank search (1 - kept rank fraction)",
     "redundancy.rank_search.search.search_ranks"),
    ("car", "CAR", "channel", True, "layer_table().redundancy of CAR (area under the CAR curve)",
     "redundancy.pruning.car_scores"),
    ("pip", "PIP < 1/2", "channel", True,
     "fraction of the layer's channels with posterior inclusion probability < 1/2",
     "redundancy.bayes.fit_spike_slab"),
)

SCORES: dict[str, ScoreDefinition] = {
    row[0]: ScoreDefinition(name=row[0], label=row[1], level=row[2], needs_data=row[3], formula=row[4], source=row[5])
    for row in _TABLE}

DATA_FREE = ("dof", "kr_segment", "kr_block", "numerical", "evbmf", "energy", "l1")
NEEDS_DATA = ("taylor", "car", "pip")
COMPANIONS = ("searched", "car", "pip")
CHANNEL_SCORES = ("l1", "taylor", "car", "pip")
#: Computed when ``scores`` is not given: the data-free scores and Taylor (when there is data);
#: the companion scores are used when their results are passed and computed when named.
DEFAULT_SCORES = DATA_FREE + ("taylor",)
