"""Symbolic derivation of the closed-form degrees of freedom (sympy).

Claims (``docs/theory.md`` §2):

1. **Count minus gauge.** For each parametrisation the dof is the parameter count minus the
   dimension of the group that leaves the whole-network tensor unchanged:

   * vanilla ``W = A Bᵀ`` (``A: L x K``, ``B: P x K``), gauge ``GL(K)``: ``K(L + P) - K²``;
   * Tucker ``W = G ×_1 U_1 ... ×_M U_M``, gauge ``Π GL(r_i)``: ``Π r_i + Σ n_i r_i - Σ r_i²``;
   * CP ``W = Σ_r u_r^1 ∘ ... ∘ u_r^M``, gauge ``(R^*)^{M-1}`` per term: ``R(Σ n_i - M + 1)``.

   Proved in two halves, for concrete small sizes: (a) every infinitesimal gauge generator lies in
   the kernel of the symbolic Jacobian (an identity in the symbolic weights, so the dof is at most
   count - gauge, given the generators are independent: their matrix has full rank at the point
   used in (b)); (b) the Jacobian has exactly that rank at a rational point, computed in exact
   arithmetic (so the generic rank is at least count - gauge). The general formulas then follow
   from the count algebra in (c).
2. **Tucker discrepancy.** ``naive - dof_simple = K R + (K - R) P`` and
   ``naive - dof = K R + (K - R) P + Σ R_i² + R²`` (sympy ``simplify``), and
   ``naive / dof -> K / R`` as ``P -> ∞``; the same for CP: ``naive - dof = RK + KP - RP + RN``.
3. **K-independence.** The factor pair ``(B, U_out)`` (``P x K``, ``K x R``) enters only through
   ``F = B U_out``, and for ``K >= R`` every ``P x R`` matrix ``F`` is reached
   (``B = [F, 0]``, ``U_out = [I_R; 0]``, checked symbolically), so the set of reachable ``W`` and
   its dimension do not depend on ``K``; the closed forms contain no ``K`` (``diff(dof, K) = 0``).

Run ``python -m proofs.dof_closed_forms`` to print the checks.
"""

from __future__ import annotations

import random
from functools import reduce
from itertools import product
from operator import mul

import sympy

__all__ = ["count_minus_gauge_vanilla", "count_minus_gauge_tucker", "count_minus_gauge_cp",
           "general_count_algebra", "tucker_discrepancy", "cp_discrepancy", "k_independence", "run_all"]


def _prod(xs):
    return reduce(mul, xs, 1)


def _rational_point(symbols, seed):
    rnd = random.Random(seed)
    return {s: sympy.Rational(rnd.randint(-9, 9) or 1, rnd.randint(1, 5)) for s in symbols}


def _certify(W_entries, params, generators, expected, seed):
    """(a) J·g == 0 symbolically for every gauge generator g; (b) exact rank of J at a rational point;
    generators independent there. Returns a dict of the facts."""
    W = sympy.Matrix(W_entries)
    J = W.jacobian(params)
    in_kernel = all(sympy.expand(e) == 0 for g in generators for e in (J * sympy.Matrix(g)))
    pt = _rational_point(params, seed)
    Jn = J.subs(pt)
    G = sympy.Matrix.hstack(*[sympy.Matrix(g) for g in generators]).subs(pt) if generators else sympy.zeros(len(params), 0)
    rank = Jn.rank()
    gens_rank = G.rank() if generators else 0
    return {"params": len(params), "gauge_dim": len(generators), "generators_in_kernel": bool(in_kernel),
            "generators_independent": gens_rank == len(generators), "exact_rank": int(rank),
            "expected": int(expected), "holds": bool(in_kernel and gens_rank == len(generators)
                                                      and rank == len(params) - len(generators) == expected)}


def count_minus_gauge_vanilla(L=3, P=4, K=2, seed=0):
    """``W = A Bᵀ``; generators of ``GL(K)``: ``(A, B) -> (A E, -B Eᵀ)`` for the K² unit matrices E."""
    A = sympy.Matrix(L, K, lambda i, j: sympy.Symbol(f"a{i}_{j}"))
    B = sympy.Matrix(P, K, lambda i, j: sympy.Symbol(f"b{i}_{j}"))
    params = list(A) + list(B)
    W = A * B.T
    gens = []
    for a, b in product(range(K), repeat=2):
        E = sympy.zeros(K, K)
        E[a, b] = 1
        gens.append(list(A * E) + list(-B * E.T))
    return _certify(list(W), params, gens, K * (L + P) - K * K, seed)


def _tucker_full(core, factors, shape):
    out = []
    ranks = [f.shape[1] for f in factors]
    for idx in product(*[range(n) for n in shape]):
        out.append(sum(core[r] * _prod(factors[i][idx[i], r[i]] for i in range(len(shape)))
                       for r in product(*[range(x) for x in ranks])))
    return out


def count_minus_gauge_tucker(shape=(3, 3, 4), ranks=(2, 2, 2), seed=1):
    """Tucker; generators of ``Π GL(r_i)``: ``U_i -> U_i E``, ``G -> -G ×_i Eᵀ``."""
    M = len(shape)
    core = {r: sympy.Symbol("g" + "_".join(map(str, r))) for r in product(*[range(x) for x in ranks])}
    factors = [sympy.Matrix(n, r, lambda a, b, i=i: sympy.Symbol(f"u{i}_{a}_{b}")) for i, (n, r) in enumerate(zip(shape, ranks))]
    keys = list(core)
    params = [core[k] for k in keys] + [s for f in factors for s in f]
    W = _tucker_full(core, factors, shape)
    gens = []
    for i in range(M):
        for a, b in product(range(ranks[i]), repeat=2):
            E = sympy.zeros(ranks[i], ranks[i])
            E[a, b] = 1
            # d core[r] = -sum_s E[r_i, s] core[r with r_i -> s]   (core ×_i (-E))
            dcore = []
            for r in keys:
                val = -sum(E[r[i], s] * core[r[:i] + (s,) + r[i + 1:]] for s in range(ranks[i]))
                dcore.append(val)
            dfac = []
            for j, f in enumerate(factors):
                dfac.extend(list(f * E) if j == i else [0] * (f.shape[0] * f.shape[1]))
            gens.append(dcore + dfac)
    expected = _prod(ranks) + sum(n * r - r * r for n, r in zip(shape, ranks))
    return _certify(W, params, gens, expected, seed)


def count_minus_gauge_cp(shape=(3, 3, 3), R=2, seed=2):
    """CP; generators: for each term r and each mode i < M-1, scale u_r^i up and u_r^{M-1} down."""
    M = len(shape)
    factors = [sympy.Matrix(n, R, lambda a, b, i=i: sympy.Symbol(f"c{i}_{a}_{b}")) for i, n in enumerate(shape)]
    params = [s for f in factors for s in f]
    W = [sum(_prod(factors[i][idx[i], r] for i in range(M)) for r in range(R))
         for idx in product(*[range(n) for n in shape])]
    gens = []
    for r in range(R):
        for i in range(M - 1):
            g = []
            for j, f in enumerate(factors):
                d = sympy.zeros(*f.shape)
                if j == i:
                    d[:, r] = f[:, r]
                elif j == M - 1:
                    d[:, r] = -f[:, r]
                g.extend(list(d))
            gens.append(g)
    return _certify(W, params, gens, R * (sum(shape) - M + 1), seed)


def general_count_algebra():
    """(c) count - gauge equals the closed forms as polynomial identities."""
    L, P, K, R, N = sympy.symbols("L P K R N", positive=True, integer=True)
    van = sympy.expand(K * (L + P) - K ** 2 - K * (L + P - K)) == 0
    n = sympy.symbols("n1:5", positive=True)
    r = sympy.symbols("r1:5", positive=True)
    tuck = sympy.expand(_prod(r) + sum(a * b for a, b in zip(n, r)) - sum(b ** 2 for b in r)
                        - (_prod(r) + sum(a * b - b * b for a, b in zip(n, r)))) == 0
    cp = sympy.expand(R * sum(n) - R * (len(n) - 1) - R * (sum(n) - len(n) + 1)) == 0
    return {"vanilla": van, "tucker": tuck, "cp": cp, "holds": bool(van and tuck and cp)}


def tucker_discrepancy(N=2):
    """naive - dof for the Tucker-compressed basic CNN, and the K/R limit."""
    K, R, P = sympy.symbols("K R P", positive=True)
    l = sympy.symbols(f"l1:{N + 1}", positive=True)
    Ri = sympy.symbols(f"R1:{N + 1}", positive=True)
    core = _prod(Ri) * R
    naive = core + sum(a * b for a, b in zip(l, Ri)) + K * R + K * P
    dof_simple = core + sum(a * b for a, b in zip(l, Ri)) + P * R
    dof = core + sum(a * b - b * b for a, b in zip(l, Ri)) + P * R - R ** 2
    gap_simple = sympy.simplify(naive - dof_simple - (K * R + (K - R) * P)) == 0
    gap_exact = sympy.simplify(naive - dof - (K * R + (K - R) * P + sum(b * b for b in Ri) + R ** 2)) == 0
    limit = sympy.limit(naive / dof, P, sympy.oo)
    return {"naive_minus_dof_simple": str(sympy.factor(naive - dof_simple)), "gap_simple": gap_simple,
            "gap_exact": gap_exact, "limit_P_to_inf": str(limit),
            "holds": bool(gap_simple and gap_exact and sympy.simplify(limit - K / R) == 0)}


def cp_discrepancy(N=2):
    K, R, P = sympy.symbols("K R P", positive=True)
    l = sympy.symbols(f"l1:{N + 1}", positive=True)
    naive = R * (sum(l) + K) + K * P
    dof = R * (sum(l) + P - N)
    gap = sympy.simplify(naive - dof - (R * K + K * P - R * P + R * N)) == 0
    limit = sympy.limit(naive / dof, P, sympy.oo)
    return {"gap": gap, "limit_P_to_inf": str(limit), "holds": bool(gap and sympy.simplify(limit - K / R) == 0)}


def k_independence(P=3, K=4, R=2):
    """F = B U_out reaches every P x R matrix when K >= R; the closed forms have no K."""
    F = sympy.Matrix(P, R, lambda i, j: sympy.Symbol(f"f{i}_{j}"))
    B = sympy.Matrix.hstack(F, sympy.zeros(P, K - R))
    U = sympy.Matrix.vstack(sympy.eye(R), sympy.zeros(K - R, R))
    reach = (B * U - F).expand() == sympy.zeros(P, R)
    Ks = sympy.Symbol("K")
    Rs, Ps = sympy.symbols("R P")
    l1, l2, R1, R2 = sympy.symbols("l1 l2 R1 R2")
    tucker = R1 * R2 * Rs + l1 * R1 - R1 ** 2 + l2 * R2 - R2 ** 2 + Ps * Rs - Rs ** 2
    cp = Rs * (l1 + l2 + Ps - 2)
    no_k = sympy.diff(tucker, Ks) == 0 and sympy.diff(cp, Ks) == 0
    return {"reach_every_F": bool(reach), "closed_forms_free_of_K": bool(no_k), "holds": bool(reach and no_k)}


def run_all() -> dict:
    return {"vanilla": count_minus_gauge_vanilla(), "tucker": count_minus_gauge_tucker(),
            "cp": count_minus_gauge_cp(), "algebra": general_count_algebra(),
            "tucker_discrepancy": tucker_discrepancy(), "cp_discrepancy": cp_discrepancy(),
            "k_independence": k_independence()}


if __name__ == "__main__":  # pragma: no cover - a printed derivation
    for name, res in run_all().items():
        print(f"{name:20s} {res}")
