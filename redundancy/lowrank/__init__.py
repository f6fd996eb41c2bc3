"""Low-rank structure: decompositions, compressed layer chains, rank rules and rank search.

:mod:`.decompose` (the only module that imports tensorly) gives Tucker and CP decompositions of
kernels and of ``W``; :mod:`.chains` builds the factorised layer chains; :mod:`.compression`
compresses a whole torch model; :mod:`.ranks` holds the rank rules (explicit, energy, fraction,
EVBMF); :mod:`.multilinear` checks the multilinear rank of a compressed model's ``W``.

Imports: the base modules and :mod:`redundancy.linear`.
"""
