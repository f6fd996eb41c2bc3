"""Automatic per-layer rank selection (RENE; Aghababaei-Harandi & Amini, arXiv 2409.03555).

The modules follow the algorithm's stages, each importing only the ones before it:

* :mod:`.factors`: views of a conv kernel (``C_out × k^d × C_in``) and the initial factors of a
  rank-``r`` TT-SVD / CP3 / Tucker-2 / SVD decomposition (the only rank-search module that uses tensorly);
* :mod:`.chains`: the factorised layer chains built from factors, their kernels and exact counts;
* :mod:`.candidates`: which layers are searched, where they sit, their largest useful rank;
* :mod:`.relaxation`: the softmax-mixed layer over candidate ranks and the rank penalty;
* :mod:`.schedule`: the coarse-to-fine candidate grids (Figure 3);
* :mod:`.result`: ``RankSearchResult`` and its per-layer rows;
* :mod:`.finish`: the final chains (:func:`decompose_at`) and the distillation fine-tune (:func:`finetune`);
* :mod:`.search`: :func:`search_ranks`, which trains through :mod:`redundancy.training`.

Imports: :mod:`redundancy.lowrank` (chains, generic decompositions) and :mod:`redundancy.training`.
"""

from redundancy.rank_search.candidates import max_search_rank
from redundancy.rank_search.finish import decompose_at, finetune
from redundancy.rank_search.search import search_ranks

__all__ = ["search_ranks", "decompose_at", "finetune", "max_search_rank"]
