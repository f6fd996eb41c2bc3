"""Rank-selection rules for Tucker / CP compression, each returning the ranks and why.

* :func:`explicit_ranks`: the ranks given, validated against the mode sizes.
* :func:`energy_ranks`: per mode, the fewest singular values of the mode-``n`` unfolding that keep
  a fraction ``energy`` of ``Σ σ_i²``.
* :func:`fraction_ranks`: ranks whose factorised form keeps a fraction of the parameters.
* :func:`evbmf_ranks`: per mode, the rank chosen by empirical variational Bayesian matrix
  factorisation (:func:`evbmf`, Nakajima et al. 2013) of the mode-``n`` unfolding.
* :func:`rank_rule`: any of these as a callable for :func:`redundancy.lowrank.compression.compress`.

References
----------
Nakajima, Sugiyama, Babacan & Tomioka, "Global analytic solution of fully-observed variational
Bayesian matrix factorization", JMLR 14 (2013). Nakajima, Tomioka, Sugiyama & Babacan, "Condition
for perfect dimensionality recovery by variational Bayesian PCA", JMLR 16 (2015) (noise variance).
Kim et al., ICLR 2016 (EVBMF ranks for Tucker-2 compression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import redundancy._validation as _v
from redundancy._validation import MAX_NUMEL, check_choice, check_int, check_positive_float, check_ranks, check_shape
from redundancy.errors import RedundancyError
from redundancy.lowrank.decompose import _as_array, cp_rank_bound, layer_kernel, unfold
from redundancy.lowrank.evbmf import EVBMFResult, evbmf  # noqa: F401 (re-exported)



@_v.result()
class RankSelection(_v.Result):
    """Ranks chosen by a rule, with the reason per mode and the numbers behind it.

    Attributes
    ----------
    rule : str
    shape : tuple of int
    modes : tuple of int
    ranks : tuple of int
        One rank per entry of ``modes``.
    reasons : tuple of str
        Why each rank was chosen.
    details : dict
        Rule-specific numbers (singular values, threshold, EVBMF results, achieved fraction).
    """

    rule: str
    shape: tuple[int, ...]
    modes: tuple[int, ...]
    ranks: tuple[int, ...]
    reasons: tuple[str, ...]
    details: dict = field(default_factory=dict, repr=False)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"mode": self.modes, "size": [self.shape[m] for m in self.modes],
                             "rank": self.ranks, "reason": self.reasons})


def _modes(arr_ndim: int, modes: Any) -> tuple[int, ...]:
    if modes is None:
        return tuple(range(arr_ndim))
    if isinstance(modes, (int, np.integer)):
        modes = (modes,)
    if not isinstance(modes, (tuple, list)):
        raise RedundancyError(f"modes={modes!r:.60} must be None, an int or a sequence of distinct integers "
                              f"in [0, {arr_ndim - 1}]")
    modes = tuple(check_int("modes entry", m, min_value=0, max_value=max(arr_ndim - 1, 0)) for m in modes)
    if not modes or len(set(modes)) != len(modes) or any(not 0 <= m < arr_ndim for m in modes):
        raise RedundancyError(f"modes={modes!r} must be distinct integers in [0, {arr_ndim - 1}]")
    return modes


def explicit_ranks(shape: Any, ranks: Any, *, modes: Any = None) -> RankSelection:
    """The given ranks, checked to be integers in ``[1, mode size]``.

    Examples
    --------
    >>> explicit_ranks((8, 4, 3, 3), (4, 2), modes=(0, 1)).ranks
    (4, 2)
    """
    shape = check_shape("shape", shape)
    modes = _modes(len(shape), modes)
    ranks = check_ranks("ranks", ranks, [shape[m] for m in modes], labels=[f"mode {m}" for m in modes])
    return RankSelection(rule="explicit", shape=shape, modes=modes, ranks=ranks,
                         reasons=tuple("given" for _ in modes))


@_v.validate_params({"energy": _v.Check(check_positive_float)})
def energy_ranks(tensor: Any, energy: float = 0.9, *, modes: Any = None) -> RankSelection:
    """Per mode, the smallest ``r`` with ``Σ_{i≤r} σ_i² ≥ energy · Σ_i σ_i²`` (mode-``n`` unfolding).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 5)); t[0, 0], t[1, 1] = 10.0, 1.0
    >>> energy_ranks(t, 0.95).ranks
    (1, 1)
    """
    arr = _as_array(tensor)
    energy = float(energy)
    if energy > 1:
        raise RedundancyError(f"energy={energy} is not allowed; energy must be in (0, 1]")
    modes = _modes(arr.ndim, modes)
    ranks, reasons, svals = [], [], {}
    for m in modes:
        s = np.linalg.svd(unfold(arr, m), compute_uv=False)
        cum = np.cumsum(s**2)
        total = cum[-1]
        r = int(np.searchsorted(cum, energy * total * (1 - 1e-12)) + 1) if total > 0 else 1
        r = min(max(r, 1), arr.shape[m])
        ranks.append(r)
        kept = cum[r - 1] / total if total > 0 else 1.0
        reasons.append(f"mode {m}: {r} of {len(s)} singular values keep {kept:.4f} >= {energy} of the energy")
        svals[m] = s
    return RankSelection(rule="energy", shape=arr.shape, modes=modes, ranks=tuple(ranks), reasons=tuple(reasons),
                         details={"energy": energy, "singular_values": svals})


def _tucker_params(shape, modes, ranks):
    core = math.prod(ranks[modes.index(i)] if i in modes else shape[i] for i in range(len(shape)))
    return core + sum(shape[m] * r for m, r in zip(modes, ranks))


@_v.validate_params({"shape": _v.Check(lambda name, v: check_shape(name, getattr(v, "shape", v))),
                     "fraction": _v.Float(0, 1, lo_open=True), "method": _v.Choice("tucker", "cp")})
def fraction_ranks(shape: Any, fraction: float, *, modes: Any = None, method: str = "tucker") -> RankSelection:
    """Ranks whose factorised form has at most ``fraction · prod(shape)`` parameters.

    Tucker: ``R_m = max(1, floor(c · I_m))`` with one scale ``c`` (the largest, by bisection) such
    that ``prod(core) + Σ_m I_m R_m ≤ fraction · prod(shape)``. CP: ``R = floor(fraction ·
    prod(shape) / Σ I_n)`` (at least 1). When even ranks 1 exceed the budget, ranks 1 are returned
    and the reason says so.

    Examples
    --------
    >>> fraction_ranks((64, 32, 3, 3), 0.25, modes=(0, 1)).ranks
    (24, 12)
    """
    total = math.prod(shape)
    budget = fraction * total
    if method == "cp":
        bound = cp_rank_bound(shape)
        r = int(min(max(1, math.floor(budget / sum(shape))), bound))
        n = r * sum(shape)
        why = f"CP rank {r}: {n} parameters = {n / total:.4f} of {total} (budget {fraction})"
        return RankSelection(rule="fraction", shape=shape, modes=tuple(range(len(shape))), ranks=(r,),
                             reasons=(why,), details={"fraction": fraction, "n_params": n, "achieved": n / total})
    modes = _modes(len(shape), modes)

    def ranks_at(c):
        return tuple(min(shape[m], max(1, math.floor(c * shape[m] + 1e-9))) for m in modes)

    lo, hi = 0.0, 1.0
    if _tucker_params(shape, modes, ranks_at(hi)) <= budget:
        lo = hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _tucker_params(shape, modes, ranks_at(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    ranks = ranks_at(lo)
    n = _tucker_params(shape, modes, ranks)
    note = "" if n <= budget else " (even ranks 1 exceed the budget)"
    reasons = tuple(f"mode {m}: rank {r} = floor({lo:.4f} x {shape[m]}); factorised form keeps "
                    f"{n / total:.4f} of the parameters (budget {fraction}){note}" for m, r in zip(modes, ranks))
    return RankSelection(rule="fraction", shape=shape, modes=modes, ranks=ranks, reasons=reasons,
                         details={"fraction": fraction, "scale": lo, "n_params": n, "achieved": n / total})


def evbmf_ranks(tensor: Any, *, modes: Any = None, min_rank: int = 1, sigma2: float | None = None) -> RankSelection:
    """Per mode, the EVBMF rank of the mode-``n`` unfolding (Kim et al. 2016 use modes 0 and 1).

    EVBMF may keep no component (rank 0: the unfolding looks like noise). Compression needs at
    least ``min_rank`` (default 1): the raw EVBMF rank is kept in ``details`` and the reason says
    when the floor was applied. Where EVBMF is not applicable to an unfolding (see
    :func:`evbmf`), Gavish & Donoho's hard threshold gives that mode's rank, the reason says so and
    ``rule`` reads ``"evbmf+gavish_donoho"`` (or ``"gavish_donoho"`` when no mode was EVBMF's).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> k = np.einsum("ab,ia,jb->ij", rng.normal(size=(2, 2)), rng.normal(size=(30, 2)), rng.normal(size=(20, 2)))
    >>> evbmf_ranks(k + 0.01 * rng.normal(size=(30, 20))).ranks
    (2, 2)
    """
    arr = _as_array(tensor)
    modes = _modes(arr.ndim, modes)
    ranks, reasons, results = [], [], {}
    for m in modes:
        res = evbmf(unfold(arr, m), sigma2=sigma2)
        r = min(max(res.rank, min_rank), arr.shape[m])
        floor = f"; raised to min_rank={min_rank}" if r != res.rank else ""
        nxt = f", largest dropped {res.singular_values[res.rank]:.4g}" if res.rank < len(res.singular_values) else ""
        if res.applicable:
            reasons.append(f"mode {m}: EVBMF keeps {res.rank} of {len(res.singular_values)} singular values above "
                           f"the cut-off {res.threshold:.4g} (sigma2={res.sigma2:.4g}{nxt}){floor}")
        else:
            reasons.append(f"mode {m}: EVBMF not applicable ({res.reason}); the Gavish-Donoho hard threshold "
                           f"{res.threshold:.4g} keeps {res.rank} of {len(res.singular_values)}{floor}")
        ranks.append(r)
        results[m] = res
    rules = sorted({r.rule for r in results.values()}, key=("evbmf", "gavish_donoho").index)
    return RankSelection(rule="+".join(rules) or "evbmf", shape=arr.shape, modes=modes, ranks=tuple(ranks),
                         reasons=tuple(reasons), details={"evbmf": results})


@_v.validate_params({"rule": _v.Choice("energy", "evbmf", "fraction"), "method": _v.Choice("tucker", "cp")})
def rank_rule(rule: str, *, method: str = "tucker", **params) -> Callable[[str, Any], Any]:
    """A rank rule as a callable ``(name, layer) -> ranks`` for :func:`redundancy.lowrank.compression.compress`.

    ``rule`` is ``"energy"`` (``energy=``), ``"evbmf"`` (``min_rank=``, ``sigma2=``) or
    ``"fraction"`` (``fraction=``); Tucker rules act on the channel modes (0, 1) of the kernel and
    return ``(R_out, R_in)``; for CP only ``"fraction"`` applies and returns one int. The
    selections made are recorded in the callable's ``selections`` dict.

    A grouped conv (``groups = g``) is decomposed block by block (one ``(K/g, C/g, *k)`` block per
    group, see :func:`redundancy.lowrank.compression.compress`), so the rule picks ranks for one
    block: ``"fraction"`` on the block shape, ``"energy"`` / ``"evbmf"`` on every block, keeping
    the largest rank any group asks for (the chain uses the same ranks in every group).

    Examples
    --------
    >>> import torch
    >>> from redundancy.lowrank.compression import compress
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3))
    >>> rule = rank_rule("fraction", fraction=0.5)
    >>> compress(net, ranks=rule).ranks
    {'0': (9, 4)}
    """
    if method == "cp" and rule != "fraction":
        raise RedundancyError(f"rule={rule!r} is not defined for method='cp'; use rule='fraction'")
    # the rule's parameters are checked now, not when the rule is first used inside compress()
    allowed = {"fraction": ("fraction",), "energy": ("energy",), "evbmf": ("min_rank", "sigma2")}[rule]
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise RedundancyError(f"rank_rule({rule!r}) got unknown parameter(s) {extra}; allowed: {list(allowed)}")
    if rule == "fraction" and "fraction" not in params:
        raise RedundancyError("rank_rule('fraction') needs fraction=, the share of the layer's parameters to keep, "
                              "a number in (0, 1]")
    if rule == "fraction":
        fraction_ranks((2, 2), params["fraction"], method=method)
    elif rule == "energy" and "energy" in params:
        energy_ranks(np.eye(2), params["energy"])
    elif rule == "evbmf":
        if "min_rank" in params:
            check_int("min_rank", params["min_rank"], min_value=0, max_value=MAX_NUMEL)
        if params.get("sigma2") is not None:
            check_positive_float("sigma2", params["sigma2"])
    selections: dict[str, RankSelection] = {}

    def choose(name, layer):
        kernel = layer_kernel(layer) if hasattr(layer, "parameters") else _as_array(layer)
        g = int(getattr(layer, "groups", 1) or 1) if hasattr(layer, "parameters") else 1
        blocks = np.split(kernel, g, axis=0) if g > 1 else [kernel]

        def select(block):
            if rule == "fraction":
                return fraction_ranks(block.shape, modes=(0, 1), method=method, **params)
            if rule == "energy":
                return energy_ranks(block, modes=(0, 1), **params)
            return evbmf_ranks(block, modes=(0, 1), **params)

        sels = [select(b) for b in (blocks[:1] if rule == "fraction" else blocks)]
        if len(blocks) == 1 or rule == "fraction":
            sel = sels[0]
            if g > 1:
                sel = RankSelection(rule=sel.rule, shape=sel.shape, modes=sel.modes, ranks=sel.ranks,
                                    reasons=tuple(f"per group (groups={g}, block {sel.shape}): {r}" for r in sel.reasons),
                                    details={**sel.details, "groups": g})
        else:   # compress needs one rank pair for every group: the largest any group asks for
            ranks = tuple(max(x.ranks[i] for x in sels) for i in range(len(sels[0].ranks)))
            reasons = tuple(f"per group (groups={g}, block {sels[0].shape}): max over groups of "
                            f"{[x.ranks[i] for x in sels]}" for i in range(len(ranks)))
            sel = RankSelection(rule=rule, shape=sels[0].shape, modes=sels[0].modes, ranks=ranks, reasons=reasons,
                                details={"groups": g, "per_group": sels})
        selections[name] = sel
        return sel.ranks[0] if method == "cp" else sel.ranks

    choose.selections = selections
    choose.rule = rule
    return choose
