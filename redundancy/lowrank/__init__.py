"""Low-rank structure: decompositions, compressed layer chains, rank rules and rank search.

:mod:`.tensor_ops` holds the tensor algebra (unfolding, mode products, CP reconstruction);
:mod:`.tucker` and :mod:`.cp` the Tucker (HOSVD/HOOI) and CP (ALS) decompositions; :mod:`.decompose`
applies them to layer kernels and to ``W`` (and re-exports all of the above). :mod:`.tensor_ops`,
:mod:`.tucker` and :mod:`.cp` are the only modules here that import tensorly; :mod:`.chains` builds
the factorised layer chains; :mod:`.compression` compresses a whole torch model; :mod:`.ranks` holds
the rank rules (explicit, energy, fraction, EVBMF); :mod:`.multilinear` checks the multilinear rank
of a compressed model's ``W``.

Rank search (RENE) lives in its own subpackage, :mod:`redundancy.rank_search`.

Imports: the base modules and :mod:`redundancy.linear`.
"""

from redundancy.lowrank.chains import CompressedLayer
from redundancy.lowrank.compression import compress
from redundancy.lowrank.decompose import (cp_decompose, decompose_layer, decompose_whole_network, layer_kernel,
                                          tucker_decompose)
from redundancy.lowrank.multilinear import multilinear_rank_check
from redundancy.lowrank.ranks import energy_ranks, evbmf, evbmf_ranks, explicit_ranks, fraction_ranks, rank_rule

__all__ = ["compress", "CompressedLayer", "tucker_decompose", "cp_decompose", "decompose_layer",
           "decompose_whole_network", "layer_kernel", "rank_rule", "explicit_ranks", "energy_ranks", "fraction_ranks",
           "evbmf_ranks", "evbmf", "multilinear_rank_check"]
