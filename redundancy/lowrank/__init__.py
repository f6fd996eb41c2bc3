"""Low-rank structure: decompositions, compressed layer chains, rank rules and rank search.

:mod:`.tensor_ops` holds the tensor algebra (unfolding, mode products, CP reconstruction);
:mod:`.tucker` and :mod:`.cp` the Tucker (HOSVD/HOOI) and CP (ALS) decompositions; :mod:`.decompose`
applies them to layer kernels and to ``W`` (and re-exports all of the above). :mod:`.tensor_ops`,
:mod:`.tucker`, :mod:`.cp` and :mod:`.tt_decompose` (TT-SVD / CP3 / Tucker-2 factors of a conv
kernel's ``C_out × k^d × C_in`` view) are the only modules that import tensorly; :mod:`.chains`
builds the factorised layer chains; :mod:`.compression` compresses a whole torch model; :mod:`.ranks` holds the rank rules (explicit, energy, fraction,
EVBMF); :mod:`.multilinear` checks the multilinear rank of a compressed model's ``W``.

Rank search (RENE): :mod:`.rank_chains` (TT / CP3 / Tucker-2 / SVD chains with exact counts),
:mod:`.mixed` (softmax-mixed layers, rank penalty), :mod:`.schedule` (coarse-to-fine schedule),
:mod:`.search` (:func:`~redundancy.lowrank.search.search_ranks`), :mod:`.search_result`
(``RankSearchResult``), :mod:`.finetune` (layer-wise distillation).

Imports: the base modules and :mod:`redundancy.linear`.
"""
