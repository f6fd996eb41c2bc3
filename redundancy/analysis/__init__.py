"""The analyst's view of any torch model.

:mod:`.graph` traces layers and linear segments (fx, with :mod:`.hooks` as the fallback),
:mod:`.blocks` finds bottleneck / inverted-residual / multi-branch blocks, :mod:`.kr` their K/R,
:mod:`.segdof` the dof of each linear segment, :mod:`.report` puts it together in
``analyze``; :mod:`.latency` measures forward time and :mod:`.roi` the return on a compression.

Imports: the base modules, the theory (:mod:`redundancy.linear`), :mod:`redundancy.lowrank` and
the companion methods; never the plotting, the scoreboard or the CLI.
"""
