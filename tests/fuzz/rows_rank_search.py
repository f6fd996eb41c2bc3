"""Fuzz rows for the rank search (RENE): legal layers, rank maps and 1-D points two draws in three,
else odd values."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from tests.fuzz import values as V


def _opt(**strats):
    return st.fixed_dictionaries({}, optional=strats)


def _mostly(legal, odd):
    """``legal`` two draws in three, else ``odd`` (a union would flatten and drown ``legal``)."""
    return st.integers(0, 2).flatmap(lambda i: odd if i == 0 else legal)


def _rs():
    import redundancy.rank_search as rank_search
    return rank_search


def _mixed():
    from redundancy.rank_search import relaxation as mixed
    return mixed


def _schedule():
    from redundancy.rank_search import schedule
    return schedule


def _pareto():
    from redundancy.plotting.ranks import pareto_front
    return pareto_front


def _rank_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(2, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(36, 3))


def _rank_layers():
    return st.sampled_from([lambda: torch.nn.Conv2d(4, 6, 3), lambda: torch.nn.Conv1d(3, 5, 2), lambda: torch.nn.Linear(7, 3),
                            lambda: torch.nn.Conv3d(2, 3, 2), lambda: torch.nn.Conv2d(4, 4, 3, groups=2)]).map(lambda f: f())


def _mixed_layer():
    return _mixed().MixedRankLayer(torch.nn.Conv2d(3, 4, 3), "tt", [1, 2])


def rows(T) -> dict:
    """The rows, built with the registry's ``Target`` factory ``T``."""
    return {
        "redundancy.rank_search.candidates.max_search_rank": T(_rs().max_search_rank, st.builds(
            lambda layer, m: {"layer": layer, "method": m}, _mostly(_rank_layers(), V.anything()),
            _mostly(st.sampled_from(["tt", "cp", "tucker"]), st.sampled_from(["svd", None, 3])))),
        "redundancy.rank_search.finish.decompose_at": T(_rs().decompose_at, st.builds(
            lambda r, o: {"model": _rank_net(), "ranks": r, **o},
            _mostly(st.dictionaries(st.sampled_from(["0", "3"]), st.integers(1, 3), min_size=1, max_size=2),
                    st.dictionaries(st.sampled_from(["0", "3", "1", "x", ""]), V.ints(), max_size=2) | V.anything()),
            _opt(method=_mostly(st.sampled_from(["tt", "cp", "tucker"]), st.just("x")),
                 seed=_mostly(st.integers(0, 3), V.seeds())))),
        "redundancy.plotting.ranks.pareto_front": T(_pareto(), _mostly(st.builds(
            lambda n, x, y: {"x": x[:n], "y": y[:n]}, st.integers(1, 6),
            st.lists(st.floats(0, 1) | st.sampled_from([float("nan"), 1e308]), min_size=6, max_size=6),
            st.lists(st.floats(0, 1), min_size=5, max_size=6)), st.builds(
            lambda x, y: {"x": x, "y": y}, V.arrays(), V.arrays()))),
        "redundancy.rank_search.relaxation.rank_penalty": T(_mixed().rank_penalty, st.builds(
            lambda layers, o: {"layers": layers, **o}, _mostly(st.just(None).map(lambda _: [_mixed_layer()]),
                                                               V.anything()),
            _opt(gamma=_mostly(st.floats(1e-3, 10), V.pos_floats()), beta=_mostly(st.floats(0.1, 3), V.pos_floats())))),
        "redundancy.rank_search.schedule.default_plan": T(_schedule().default_plan, st.builds(
            lambda r, o: {"max_rank": r, **o}, _mostly(st.integers(1, 10 ** 9), V.ints()),
            _opt(n_coarse=_mostly(st.integers(1, 64), V.ints())))),
    }
