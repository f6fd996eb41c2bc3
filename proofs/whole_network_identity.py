"""Symbolic proof of the whole-network identity of the basic linear CNN (sympy).

The basic network (research note §1.1, ``docs/theory.md`` §1): K kernels :math:`\\mathcal A_k`
of size ``l`` applied to an input :math:`\\mathcal X` of size ``d`` by a *valid, strided
correlation* with stride ``s``, identity activation, *non-overlapping average pooling* with window
``q``, and a fully connected layer :math:`\\mathcal B_k` of size ``p``:

.. math::
    Z_k[j] = \\sum_t A_k[t]\\, X[j \\odot s + t], \\quad
    \\bar Z_k[g] = \\frac{1}{\\prod_i q_i} \\sum_{u < q} Z_k[g \\odot q + u], \\quad
    y = \\sum_k \\sum_g B_k[g]\\, \\bar Z_k[g],

with ``m_i = floor((d_i - l_i)/s_i) + 1`` and ``p_i = floor(m_i / q_i)``. The claims proved here,
each on fully symbolic kernels, FC weights and inputs (every entry its own sympy symbol), are

1. **identity**: :math:`y = \\langle \\mathcal W, \\widetilde{\\mathcal X} \\rangle` with
   :math:`\\mathcal W = \\sum_k \\mathcal A_k \\circ \\mathcal B_k` and the patch tensor
   :math:`\\widetilde{\\mathcal X}[t, g] = (\\prod q_i)^{-1} \\sum_{u<q} X[(g \\odot q + u) \\odot s + t]`;
2. **Tucker-like form**: :math:`\\mathcal W = \\mathbb A \\times_{N+1} B` with
   :math:`\\mathbb A[t, k] = A_k[t]` and ``B[vec(g), k] = B_k[g]`` (row-major ``vec``);
3. **raw-input form**: ``vec(X̃) = M vec(X)`` for the 0/(1/Πq) matrix ``M`` built from its own
   formula, and the coefficient of every input entry ``X[x]`` in ``y`` equals ``(Mᵀ vec W)[x]``
   (so ``y`` is linear in ``X`` with weight ``W_eff = Mᵀ vec W``);
4. **Kronecker form** (``s = l`` only): :math:`\\mathcal W_{\\rm eff} = \\sum_k (\\mathcal B_k
   \\otimes \\mathcal J_q) \\otimes \\mathcal A_k`, zero outside the covered region, with
   :math:`\\mathcal J_q` the averaging tensor of size ``q`` and ``⊗`` the tensor Kronecker product
   ``(a ⊗ b)[i ⊙ shape(b) + j] = a[i] b[j]``; and the pooling-matrix form
   :math:`\\widetilde{\\mathcal X} = \\check{\\mathcal X} \\times_{N+1} Q_1 \\cdots \\times_{2N} Q_N`.

Each claim is reduced to a list of differences that must ``sympy.expand`` to exactly ``0``. The
objects are built here from their defining formulas with plain loops over index tuples; nothing
is taken from :mod:`redundancy` (the test suite compares with it numerically as an extra check).
A deliberately wrong variant (wrong stride, flipped kernel, or missing 1/Πq in the patch tensor)
gives a non-zero difference, so the check can fail.

Run ``python -m proofs.whole_network_identity`` for a short printed derivation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from itertools import product
from operator import mul

import sympy

__all__ = [
    "Case", "CASES", "WRONG_VARIANTS", "make_symbols", "direct_output", "patch_tensor",
    "whole_tensor", "identity_difference", "tucker_like_differences", "raw_input_differences",
    "kronecker_differences", "check_case", "run_all",
]

Index = tuple[int, ...]


def _prod(xs) -> int:
    return reduce(mul, xs, 1)


def _grid(shape) -> list[Index]:
    """All index tuples of ``shape`` in row-major order."""
    return list(product(*[range(n) for n in shape]))


def _vec_index(idx: Index, shape: Index) -> int:
    """Row-major position of ``idx`` in an array of ``shape``."""
    r = 0
    for i, n in zip(idx, shape):
        r = r * n + i
    return r


@dataclass(frozen=True)
class Case:
    """One small symbolic configuration: input ``d``, kernel ``l``, stride ``s``, pool ``q``, ``K``."""

    name: str
    d: Index
    l: Index
    s: Index
    q: Index
    K: int

    @property
    def N(self) -> int:
        return len(self.d)

    @property
    def m(self) -> Index:
        return tuple((d - l) // s + 1 for d, l, s in zip(self.d, self.l, self.s))

    @property
    def p(self) -> Index:
        return tuple(m // q for m, q in zip(self.m, self.q))

    @property
    def overlapping(self) -> bool:
        return any(s < l for s, l in zip(self.s, self.l))


#: The proved configurations: 1-D and 2-D, stride below / equal to / above the kernel, with
#: pooling, a channel mode (``l_i = d_i``), and inputs not covered exactly (cropping).
CASES: tuple[Case, ...] = (
    Case("1d, s<l, pool 2", d=(9,), l=(3,), s=(2,), q=(2,), K=2),
    Case("1d, s=l, pool 2, crop", d=(13,), l=(3,), s=(3,), q=(2,), K=2),
    Case("1d, s>l, pool 2", d=(10,), l=(2,), s=(3,), q=(2,), K=1),
    Case("2d, s<l, pool 2x2", d=(5, 5), l=(2, 2), s=(1, 1), q=(2, 2), K=2),
    Case("2d, s=l, pool 2x1, crop", d=(5, 6), l=(2, 2), s=(2, 2), q=(2, 1), K=2),
    Case("2d, channel mode, s<l", d=(2, 7), l=(2, 3), s=(1, 2), q=(1, 2), K=2),
)

#: Deliberately wrong patch tensors; each must make the identity difference non-zero.
WRONG_VARIANTS = ("wrong_stride", "flipped_kernel", "sum_pool")


def make_symbols(case: Case):
    """Symbols ``A[k][t]``, ``B[k][g]`` (dicts over index tuples) and ``X`` (dict over ``d``)."""
    def name(prefix, idx):
        return prefix + "_" + "".join(map(str, idx))
    A = [{t: sympy.Symbol(name(f"a{k}", t)) for t in _grid(case.l)} for k in range(case.K)]
    B = [{g: sympy.Symbol(name(f"b{k}", g)) for g in _grid(case.p)} for k in range(case.K)]
    X = {x: sympy.Symbol(name("x", x)) for x in _grid(case.d)}
    return A, B, X


def direct_output(case: Case, A, B, X) -> sympy.Expr:
    """``y`` from the definition: strided valid correlation → average pooling → FC sum."""
    N, w = case.N, sympy.Rational(1, _prod(case.q))
    y = sympy.Integer(0)
    for k in range(case.K):
        Z = {j: sum(A[k][t] * X[tuple(j[i] * case.s[i] + t[i] for i in range(N))] for t in _grid(case.l))
             for j in _grid(case.m)}
        for g in _grid(case.p):
            zbar = w * sum(Z[tuple(g[i] * case.q[i] + u[i] for i in range(N))] for u in _grid(case.q))
            y += B[k][g] * zbar
    return y


def patch_tensor(case: Case, X, variant: str = "correct") -> dict:
    """``X̃[t, g] = (Πq)^-1 Σ_{u<q} X[(g⊙q + u)⊙s + t]`` as a dict over ``(t, g)`` (``t + g`` tuples).

    ``variant`` builds a deliberately wrong tensor: ``"wrong_stride"`` (stride ``s + 1`` in the
    first mode with ``m_i > 1``; out-of-range entries read as 0), ``"flipped_kernel"`` (``t → l - 1 - t``:
    convolution instead of correlation), ``"sum_pool"`` (no ``1/Πq``).
    """
    N = case.N
    s = list(case.s)
    if variant == "wrong_stride":  # the first mode where the stride matters (more than one position)
        s[next((i for i in range(N) if case.m[i] > 1), 0)] += 1
    elif variant not in ("correct", "flipped_kernel", "sum_pool"):
        raise ValueError(f"variant={variant!r}; allowed: 'correct', {', '.join(map(repr, WRONG_VARIANTS))}")
    w = sympy.Integer(1) if variant == "sum_pool" else sympy.Rational(1, _prod(case.q))
    out = {}
    for t in _grid(case.l):
        tt = tuple(case.l[i] - 1 - t[i] for i in range(N)) if variant == "flipped_kernel" else t
        for g in _grid(case.p):
            acc = sympy.Integer(0)
            for u in _grid(case.q):
                x = tuple((g[i] * case.q[i] + u[i]) * s[i] + tt[i] for i in range(N))
                acc += X.get(x, sympy.Integer(0))
            out[t + g] = w * acc
    return out


def whole_tensor(case: Case, A, B) -> dict:
    """``W = Σ_k A_k ∘ B_k`` as a dict over ``t + g``."""
    return {t + g: sum(A[k][t] * B[k][g] for k in range(case.K)) for t in _grid(case.l) for g in _grid(case.p)}


def _inner(U: dict, V: dict) -> sympy.Expr:
    return sum(U[key] * V[key] for key in U)


def identity_difference(case: Case, variant: str = "correct") -> sympy.Expr:
    """``expand(y_direct - <W, X̃>)``; exactly ``0`` for the correct patch tensor."""
    A, B, X = make_symbols(case)
    y = direct_output(case, A, B, X)
    return sympy.expand(y - _inner(whole_tensor(case, A, B), patch_tensor(case, X, variant)))


def tucker_like_differences(case: Case) -> list[sympy.Expr]:
    """Entries of ``W - 𝔸 ×_{N+1} B`` (reshaped), where ``𝔸`` stacks the kernels along a last
    mode of size K and ``B`` is the ``P x K`` matrix with column k = ``vec(B_k)``."""
    A, B, _ = make_symbols(case)
    P = _prod(case.p)
    bigA = {t + (k,): A[k][t] for t in _grid(case.l) for k in range(case.K)}
    Bmat = sympy.zeros(P, case.K)
    for k in range(case.K):
        for g in _grid(case.p):
            Bmat[_vec_index(g, case.p), k] = B[k][g]
    # mode-(N+1) product: (𝔸 ×_{N+1} B)[t, r] = Σ_k 𝔸[t, k] B[r, k]
    tl = {t + (r,): sum(bigA[t + (k,)] * Bmat[r, k] for k in range(case.K))
          for t in _grid(case.l) for r in range(P)}
    W = whole_tensor(case, A, B)
    return [sympy.expand(W[t + g] - tl[t + (_vec_index(g, case.p),)]) for t in _grid(case.l) for g in _grid(case.p)]


def patch_matrix(case: Case) -> sympy.Matrix:
    """``M`` (``L·P x Πd``) from its formula: ``M[vec(t,g), vec(x)] = 1/Πq`` for every
    ``x = (g⊙q + u)⊙s + t``, ``u < q`` (accumulated, although the ``u`` never collide)."""
    lp = case.l + case.p
    M = sympy.zeros(_prod(lp), _prod(case.d))
    w = sympy.Rational(1, _prod(case.q))
    for t in _grid(case.l):
        for g in _grid(case.p):
            for u in _grid(case.q):
                x = tuple((g[i] * case.q[i] + u[i]) * case.s[i] + t[i] for i in range(case.N))
                M[_vec_index(t + g, lp), _vec_index(x, case.d)] += w
    return M


def _coefficients(y: sympy.Expr, X: dict) -> tuple[dict, sympy.Expr]:
    """Coefficient of each ``X[x]`` in ``y`` and the remainder ``y - Σ c_x X[x]`` (expanded)."""
    y = sympy.expand(y)
    coeff = {x: sympy.diff(y, sym) for x, sym in X.items()}
    rest = sympy.expand(y - sum(coeff[x] * X[x] for x in X))
    return coeff, rest


def raw_input_differences(case: Case) -> dict[str, list[sympy.Expr]]:
    """Differences for the raw-input form.

    ``"patch"``: ``vec(X̃) - M vec(X)``; ``"linear"``: the remainder of ``y`` after removing its
    linear part plus, for every ``x``, whether the coefficient still contains an input symbol
    (``y`` is then exactly linear and homogeneous in ``X``); ``"weights"``: coefficient of
    ``X[x]`` in ``y`` minus ``(Mᵀ vec W)[x]``.
    """
    A, B, X = make_symbols(case)
    M = patch_matrix(case)
    lp = case.l + case.p
    vecX = sympy.Matrix([X[x] for x in _grid(case.d)])
    Xt = patch_tensor(case, X)
    MX = M * vecX
    patch = [sympy.expand(Xt[key] - MX[_vec_index(key, lp)]) for key in _grid(lp)]
    W = whole_tensor(case, A, B)
    vecW = sympy.Matrix([W[key] for key in _grid(lp)])
    MtW = M.T * vecW
    coeff, rest = _coefficients(direct_output(case, A, B, X), X)
    xs = set(X.values())
    linear = [rest] + [sympy.Integer(int(bool(c.free_symbols & xs))) for c in coeff.values()]
    weights = [sympy.expand(coeff[x] - MtW[_vec_index(x, case.d)]) for x in _grid(case.d)]
    return {"patch": patch, "linear": linear, "weights": weights}


def _kron(a: dict, a_shape: Index, b: dict, b_shape: Index) -> tuple[dict, Index]:
    """Tensor Kronecker product ``(a ⊗ b)[i ⊙ shape(b) + j] = a[i] b[j]`` of dict tensors."""
    out = {}
    for i in _grid(a_shape):
        for j in _grid(b_shape):
            out[tuple(ii * bs + jj for ii, bs, jj in zip(i, b_shape, j))] = a[i] * b[j]
    return out, tuple(x * y for x, y in zip(a_shape, b_shape))


def kronecker_differences(case: Case, swapped: bool = False) -> dict[str, list[sympy.Expr]]:
    """Differences for the ``s = l`` forms.

    ``"kronecker"``: coefficient of ``X[x]`` in ``y`` minus ``W_eff[x]`` with
    ``W_eff = Σ_k (B_k ⊗ J_q) ⊗ A_k`` zero-padded to ``d``; ``"pooling"``:
    ``X̃ - X̌ ×_{N+1} Q_1 ⋯ ×_{2N} Q_N`` with ``X̌[t, j] = X[j⊙l + t]`` and
    ``Q_i[g, j] = 1/q_i`` for ``j`` in block ``g``. ``swapped=True`` builds the deliberately
    wrong order ``A_k ⊗ (B_k ⊗ J_q)`` for the Kronecker term (entries outside ``d`` are dropped).
    """
    if case.s != case.l:
        raise ValueError(f"the Kronecker form needs stride == kernel; case {case.name!r} has s={case.s}, l={case.l}")
    A, B, X = make_symbols(case)
    N = case.N
    J = {u: sympy.Rational(1, _prod(case.q)) for u in _grid(case.q)}
    W_eff = {x: sympy.Integer(0) for x in _grid(case.d)}
    for k in range(case.K):
        BJ, bj_shape = _kron(B[k], case.p, J, case.q)
        if swapped:
            term, _ = _kron(A[k], case.l, BJ, bj_shape)
        else:
            term, _ = _kron(BJ, bj_shape, A[k], case.l)
        for x, v in term.items():
            if x in W_eff:
                W_eff[x] += v
    coeff, _ = _coefficients(direct_output(case, A, B, X), X)
    kron = [sympy.expand(coeff[x] - W_eff[x]) for x in _grid(case.d)]
    # pooling matrices: X̌ ×_{N+1} Q_1 ... ×_{2N} Q_N, one mode product at a time
    cur = {t + j: X[tuple(j[i] * case.l[i] + t[i] for i in range(N))] for t in _grid(case.l) for j in _grid(case.m)}
    shape = case.l + case.m
    for i in range(N):
        Q = {(g, j): (sympy.Rational(1, case.q[i]) if g * case.q[i] <= j < (g + 1) * case.q[i] else 0)
             for g in range(case.p[i]) for j in range(case.m[i])}
        ax = N + i
        new_shape = shape[:ax] + (case.p[i],) + shape[ax + 1:]
        cur = {key: sum(Q[(key[ax], j)] * cur[key[:ax] + (j,) + key[ax + 1:]] for j in range(shape[ax]))
               for key in _grid(new_shape)}
        shape = new_shape
    Xt = patch_tensor(case, X)
    pooling = [sympy.expand(Xt[key] - cur[key]) for key in _grid(case.l + case.p)]
    return {"kronecker": kron, "pooling": pooling}


def check_case(case: Case) -> dict[str, bool]:
    """Every claim for ``case``: ``True`` where all differences expand to exactly zero."""
    out = {"identity": identity_difference(case) == 0,
           "tucker_like": all(e == 0 for e in tucker_like_differences(case))}
    for key, diffs in raw_input_differences(case).items():
        out[f"raw_input_{key}"] = all(e == 0 for e in diffs)
    if case.s == case.l:
        for key, diffs in kronecker_differences(case).items():
            out[key] = all(e == 0 for e in diffs)
    return out


def run_all(cases=CASES) -> dict[str, dict[str, bool]]:
    """:func:`check_case` for every case."""
    return {case.name: check_case(case) for case in cases}


def _print_derivation() -> None:
    case = CASES[0]
    A, B, X = make_symbols(case)
    print("Whole-network identity of the basic linear CNN, proved with sympy")
    print("=" * 66)
    print(f"Worked case '{case.name}': d={case.d}, l={case.l}, s={case.s}, q={case.q}, K={case.K}")
    print(f"  m = floor((d-l)/s)+1 = {case.m},  p = floor(m/q) = {case.p}")
    y = direct_output(case, A, B, X)
    print("  direct definition (correlation -> average pool -> FC):")
    print("    y =", sympy.factor_terms(sympy.expand(y).coeff(B[0][(0,)])), "* b0_0 + ...")
    Xt = patch_tensor(case, X)
    Xt_mat = sympy.Matrix(case.l[0], case.p[0], lambda t, g: Xt[(t, g)])
    print("  patch tensor X~[t, g] = (1/q) sum_u X[(g q + u) s + t]:")
    print("   ", Xt_mat.tolist())
    print("  W = sum_k A_k o B_k:", sympy.Matrix(case.l[0], case.p[0],
                                                 lambda t, g: whole_tensor(case, A, B)[(t, g)]).tolist())
    print("  expand(y - <W, X~>) =", identity_difference(case))
    M = patch_matrix(case)
    print(f"  M ({M.shape[0]} x {M.shape[1]}) with vec(X~) = M vec(X); coefficient of x_4 in y:",
          sympy.factor_terms(sympy.diff(sympy.expand(y), X[(4,)])))
    for variant in WRONG_VARIANTS:
        diff = identity_difference(case, variant)
        print(f"  wrong patch tensor ({variant}): difference has {len(sympy.Add.make_args(diff))} terms (non-zero)")
    print()
    print("All cases (True = every difference expands to exactly 0):")
    for name, checks in run_all().items():
        status = "ok " if all(checks.values()) else "FAIL"
        print(f"  [{status}] {name:28s} " + ", ".join(f"{k}={v}" for k, v in checks.items()))


if __name__ == "__main__":
    _print_derivation()
