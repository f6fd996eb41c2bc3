"""The coarse-to-fine rank schedule of RENE (Aghababaei-Harandi & Amini, arXiv 2409.03555, Figure 3).

Search the candidates ``{r_min, r_min + s, ..., <= r_max}`` at step ``s``; take ``r̄ = argmax p``;
contract to ``[r̄ − ⌈s/2⌉, r̄ + ⌈s/2⌉]`` (clipped to the allowed ``[lo, hi]``) at the step
``s ← ⌊s/f⌋``; repeat while ``s >= 1``. Figure 3's example: ``[100..800]`` step 100, ``r̄ = 200`` ->
``[150, 250]`` step 10, ``r̄ = 240`` -> ``[235, 245]`` step 1. (The printed Algorithm 1 divides
``s`` one line earlier, which would give ``[195, 205]``; this follows the figure, as the authors'
re-implementation does.)

A consequence worth knowing: the fine interval only reaches ``⌈s/2⌉`` below the coarse winner, so a
true rank more than half a coarse step below the winning coarse candidate cannot be reached.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from redundancy._validation import CallableArg, Int, NoneOr, validate_params
from redundancy.errors import RedundancyError


MAX_CANDIDATES = 64
MAX_RANK = 10 ** 9


@validate_params({"r_min": Int(1), "r_max": Int(1), "step": Int(1)})
def grid(r_min: int, r_max: int, step: int) -> tuple[int, ...]:
    """``(r_min, r_min + step, ...)`` up to ``r_max``; refuses more than ``MAX_CANDIDATES`` candidates."""
    if r_max < r_min:
        raise RedundancyError(f"r_max={r_max} is not allowed; r_max must be >= r_min ({r_min})")
    return _grid(r_min, r_max, step)


def _grid(r_min, r_max, step):
    n = (r_max - r_min) // step + 1
    if n > MAX_CANDIDATES:
        raise RedundancyError(f"the candidate grid [{r_min}, {r_max}] at step {step} has {n} ranks; at most "
                              f"{MAX_CANDIDATES} per layer are allowed (raise the step)")
    return tuple(range(r_min, r_max + 1, step))


@validate_params({"r_bar": Int(1), "step": Int(1), "factor": Int(2), "lo": Int(1), "hi": NoneOr(Int(1))})
def contract(r_bar: int, step: int, factor: int, lo: int = 1, hi: int | None = None):
    """The next stage after choosing ``r_bar`` at ``step``: ``(candidates, new_step)``, or ``None`` when
    ``step // factor < 1`` (the search ends).

    Examples
    --------
    >>> contract(200, 100, 10)
    ((150, 160, 170, 180, 190, 200, 210, 220, 230, 240, 250), 10)
    >>> contract(240, 10, 10)[0]
    (235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245)
    >>> contract(245, 1, 10) is None
    True
    """
    return _contract(r_bar, step, factor, lo, hi)


def _contract(r_bar, step, factor, lo=1, hi=None):
    new = step // factor
    if new < 1:
        return None
    half = math.ceil(step / 2)
    a = max(lo, r_bar - half)
    b = r_bar + half if hi is None else min(hi, r_bar + half)
    return _grid(a, max(a, b), new), new


@validate_params({"r_min": Int(1), "r_max": Int(1), "step": Int(1), "factor": Int(2), "choose": CallableArg()})
def coarse_to_fine(r_min: int, r_max: int, step: int, factor: int, choose: Callable[[Sequence[int]], int]):
    """Run the schedule with ``choose(candidates) -> r̄`` (the optimisation of one stage).

    Returns the trajectory: a list of ``(candidates, step, r̄)``, one per stage.

    Examples
    --------
    >>> traj = coarse_to_fine(100, 800, 100, 10, lambda c: min(c, key=lambda r: abs(r - 241)))
    >>> [(c[0], c[-1], s, r) for c, s, r in traj]
    [(100, 800, 100, 200), (150, 250, 10, 240), (235, 245, 1, 241)]
    """
    cands, s = grid(r_min, r_max, step), step
    out = []
    while True:
        r_bar = int(choose(cands))
        if r_bar not in cands:
            raise RedundancyError(f"choose returned {r_bar}, which is not a candidate")
        out.append((cands, s, r_bar))
        nxt = _contract(r_bar, s, factor, 1, r_max)
        if nxt is None:
            return out
        cands, s = nxt


@validate_params({"max_rank": Int(1, MAX_RANK), "n_coarse": Int(1, MAX_CANDIDATES)})
def default_plan(max_rank: int, n_coarse: int = 8) -> tuple[tuple[int, ...], int, int]:
    """Default first stage of a layer whose ranks run over ``[1, max_rank]``: ``(candidates, step, factor)``.

    The step is ``⌈max_rank / n_coarse⌉`` and ``factor = step`` (so the second stage is at step 1);
    a layer with ``max_rank <= n_coarse`` is searched at step 1 in one stage.

    Parameters
    ----------
    max_rank : int
        In ``[1, MAX_RANK]``.
    n_coarse : int
        Number of coarse candidates, in ``[1, MAX_CANDIDATES]`` (default 8).

    Returns
    -------
    tuple
        ``(candidates, step, factor)``.

    Examples
    --------
    >>> default_plan(20)
    ((1, 4, 7, 10, 13, 16, 19), 3, 3)
    >>> default_plan(5)
    ((1, 2, 3, 4, 5), 1, 2)
    """
    step = max(1, math.ceil(max_rank / n_coarse))
    return grid(1, max_rank, step), step, max(2, step)


def _plan(name, spec, max_rank, factor):
    """Normalise a candidates spec to ``(candidates, step, factor)`` clipped to ``[1, max_rank]``."""
    if spec is None:
        return default_plan(max_rank)
    if isinstance(spec, dict):
        return _plan(name, spec.get(name), max_rank, factor)
    if isinstance(spec, tuple) and len(spec) in (3, 4) and all(isinstance(v, (int, np.integer)) for v in spec):
        r_min, r_max, step = (int(v) for v in spec[:3])
        f = int(spec[3]) if len(spec) == 4 else factor
        r_max = min(r_max, max_rank)
        r_min = min(r_min, r_max)
        return grid(r_min, r_max, step), step, f
    try:
        cands = sorted({int(r) for r in spec if 1 <= int(r) <= max_rank})
    except (TypeError, ValueError):
        cands = []
    if not cands:
        raise RedundancyError(f"candidates for layer {name!r} = {spec!r} give no rank in [1, {max_rank}]; give "
                              "None, (r_min, r_max, step[, factor]), a list of ranks or a dict of these per layer")
    if len(cands) > 64:
        raise RedundancyError(f"candidates for layer {name!r} has {len(cands)} ranks; at most 64 are allowed")
    return tuple(cands), 1, 2
