"""The linear model and its theory.

With linear activations the weights of all layers collapse into one whole-network tensor ``W``
(``model(x) = <W, x> + b``). This subpackage holds that tensor (:mod:`.tensor`), the statistical
model of the paper (:mod:`.statmodel`), linear-CNN specs and their factorised layers
(:mod:`.spec`, :mod:`.layers`), the degrees of freedom of the reachable ``(W, b)`` (:mod:`.dof`,
closed forms in :mod:`.dof_closed`, the numerical rank in :mod:`.dof_numerical`) and the
sample-complexity bounds with K/R (:mod:`.bounds`).

Imports: only the top-level base modules (``errors``, ``_validation``, ``counts``).
"""
