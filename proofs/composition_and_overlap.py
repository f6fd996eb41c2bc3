"""Symbolic checks of two facts used next to the whole-network identity (sympy).

1. **Two strided convolutions are one strided convolution.** For a multi-channel input
   ``X[c, x]`` (``x`` an N-mode index), a first conv ``a1[k1, c, t]`` (kernel ``l1``, stride
   ``s1``) followed by a second ``a2[k2, k1, τ]`` (kernel ``l2``, stride ``s2``), valid, no
   activation, equal the single conv with stride ``s1 ⊙ s2``, kernel length
   ``l_eff = l1 + s1 ⊙ (l2 - 1)`` and kernel

   .. math::  a_{\\rm eff}[k_2, c, v] = \\sum_{k_1} \\sum_{\\tau \\odot s_1 + t = v} a_2[k_2, k_1, \\tau]\\, a_1[k_1, c, t],

   and the output sizes agree (``floor((floor((d-l1)/s1)+1-l2)/s2)+1 = floor((d-l_eff)/(s1 s2))+1``).
   So a chain of linear convs collapses to the basic model of :mod:`proofs.whole_network_identity`
   with a composite kernel, and ``W`` is multilinear in the layer kernels.
2. **Overlap and identifiability.** With ``M`` the patch matrix (``vec X̃ = M vec X``),
   ``M Mᵀ = I / Πq`` exactly when no two patch entries share an input entry (every mode has
   ``s_i >= l_i`` or a single conv position ``m_i = 1``); with overlapping strides ``M Mᵀ`` is not
   diagonal, and ``M`` can lose row rank, so that some ``W ≠ 0`` give ``<W, X̃> ≡ 0``. The example
   ``d = 3, l = 2, s = 1``: ``W = w [[0, 1], [-1, 0]]`` has ``Mᵀ vec W = 0`` for every ``w``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .whole_network_identity import CASES, Case, _grid, _prod, patch_matrix

__all__ = ["ConvChain", "CHAINS", "composition_differences", "gram_differences", "is_non_overlapping",
           "overlap_null_example", "run_all"]


@dataclass(frozen=True)
class ConvChain:
    """Two valid strided convs on a ``C``-channel input of spatial size ``d``."""

    name: str
    d: tuple[int, ...]
    C: int
    K1: int
    K2: int
    l1: tuple[int, ...]
    s1: tuple[int, ...]
    l2: tuple[int, ...]
    s2: tuple[int, ...]

    @property
    def m1(self):
        return tuple((d - l) // s + 1 for d, l, s in zip(self.d, self.l1, self.s1))

    @property
    def m2(self):
        return tuple((m - l) // s + 1 for m, l, s in zip(self.m1, self.l2, self.s2))

    @property
    def l_eff(self):
        return tuple(a + s * (b - 1) for a, s, b in zip(self.l1, self.s1, self.l2))


CHAINS: tuple[ConvChain, ...] = (
    ConvChain("1d, 2 channels, s1=2 < l1=3, then l2=2, s2=1", d=(9,), C=2, K1=2, K2=1,
              l1=(3,), s1=(2,), l2=(2,), s2=(1,)),
    ConvChain("2d, s1=(1,2), l2=(2,2), s2=(2,1)", d=(7, 6), C=1, K1=2, K2=1, l1=(2, 2), s1=(1, 2), l2=(2, 2), s2=(2, 1)),
)


def _conv(x: dict, a: dict, n_out: int, n_in: int, l, s, m) -> dict:
    """Valid strided multi-channel correlation of dict tensors: ``z[k, j] = Σ_c Σ_t a[k,c,t] x[c, j⊙s + t]``."""
    N = len(l)
    return {(k,) + j: sum(a[(k, c) + t] * x[(c,) + tuple(j[i] * s[i] + t[i] for i in range(N))]
                          for c in range(n_in) for t in _grid(l))
            for k in range(n_out) for j in _grid(m)}


def composition_differences(chain: ConvChain, variant: str = "correct") -> list[sympy.Expr]:
    """``conv2(conv1(X)) - conv_eff(X)`` entry by entry, expanded (all ``0`` when correct).

    ``variant="no_dilation"`` builds the wrong composite kernel with ``τ + t = v`` (the second
    kernel not dilated by ``s1``), which must give non-zero differences when ``s1 > 1`` somewhere.
    """
    if variant not in ("correct", "no_dilation"):
        raise ValueError(f"variant={variant!r}; allowed: 'correct', 'no_dilation'")
    N = len(chain.d)
    X = {(c,) + x: sympy.Symbol(f"x{c}_" + "".join(map(str, x))) for c in range(chain.C) for x in _grid(chain.d)}
    a1 = {(k, c) + t: sympy.Symbol(f"p{k}{c}_" + "".join(map(str, t)))
          for k in range(chain.K1) for c in range(chain.C) for t in _grid(chain.l1)}
    a2 = {(k, c) + t: sympy.Symbol(f"r{k}{c}_" + "".join(map(str, t)))
          for k in range(chain.K2) for c in range(chain.K1) for t in _grid(chain.l2)}
    z1 = _conv(X, a1, chain.K1, chain.C, chain.l1, chain.s1, chain.m1)
    z2 = _conv(z1, a2, chain.K2, chain.K1, chain.l2, chain.s2, chain.m2)
    dil = chain.s1 if variant == "correct" else (1,) * N
    a_eff = {(k2, c) + v: sympy.Integer(0) for k2 in range(chain.K2) for c in range(chain.C) for v in _grid(chain.l_eff)}
    for k2 in range(chain.K2):
        for c in range(chain.C):
            for k1 in range(chain.K1):
                for tau in _grid(chain.l2):
                    for t in _grid(chain.l1):
                        v = tuple(tau[i] * dil[i] + t[i] for i in range(N))
                        a_eff[(k2, c) + v] += a2[(k2, k1) + tau] * a1[(k1, c) + t]
    s_eff = tuple(a * b for a, b in zip(chain.s1, chain.s2))
    m_eff = tuple((d - l) // s + 1 for d, l, s in zip(chain.d, chain.l_eff, s_eff))
    if m_eff != chain.m2:
        return [sympy.Integer(1)]  # the output sizes disagree: the claim fails
    z = _conv(X, a_eff, chain.K2, chain.C, chain.l_eff, s_eff, m_eff)
    return [sympy.expand(z2[key] - z[key]) for key in z2]


def is_non_overlapping(case: Case) -> bool:
    """No input entry is read by two conv positions: ``s_i >= l_i`` or ``m_i = 1`` in every mode."""
    return all(s >= l or m == 1 for s, l, m in zip(case.s, case.l, case.m))


def gram_differences(case: Case) -> list[sympy.Expr]:
    """Entries of ``M Mᵀ - I / Πq`` (exact rationals)."""
    M = patch_matrix(case)
    G = M * M.T - sympy.eye(M.shape[0]) / _prod(case.q)
    return list(G)


def overlap_null_example() -> dict[str, object]:
    """The research note's example: ``d=3, l=2, s=1``; ``W = w [[0,1],[-1,0]]`` is invisible."""
    case = Case("overlap example", d=(3,), l=(2,), s=(1,), q=(1,), K=2)
    M = patch_matrix(case)
    w = sympy.Symbol("w")
    W = sympy.Matrix([0, w, -w, 0])  # vec of [[0, w], [-w, 0]] (t, j) row-major
    x = sympy.symbols("x_0:3")
    Xt = M * sympy.Matrix(x)
    return {"M": M, "Mt_vecW": list(M.T * W), "patch": list(Xt),
            "output": sympy.expand((W.T * Xt)[0]), "rank_M": M.rank(), "LP": M.shape[0]}


def run_all() -> dict[str, object]:
    """Every check: composition exact, Gram identity exactly for the non-overlapping cases, null example."""
    out: dict[str, object] = {}
    for chain in CHAINS:
        out[f"composition: {chain.name}"] = all(e == 0 for e in composition_differences(chain))
    for case in CASES:
        out[f"M M^T = I/prod(q): {case.name}"] = (all(e == 0 for e in gram_differences(case)),
                                                  is_non_overlapping(case))
    ex = overlap_null_example()
    out["overlap example: <W, X~> == 0"] = ex["output"] == 0 and all(e == 0 for e in ex["Mt_vecW"])
    return out


if __name__ == "__main__":
    print("Composition of strided convolutions and the overlap condition (sympy, exact)")
    for key, val in run_all().items():
        print(f"  {key}: {val}")
    ex = overlap_null_example()
    print(f"  overlap example: X~ = {ex['patch']}, rank M = {ex['rank_M']} of {ex['LP']} rows, "
          f"<W, X~> = {ex['output']}")
