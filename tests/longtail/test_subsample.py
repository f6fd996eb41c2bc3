"""longtail.subsample: draw_runs and make_models refuse bad arguments and keep their promises."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail.subsample import draw_runs, make_models


@pytest.mark.parametrize("kw,match", [(dict(n_train=1, n_models=2), "n_train"),
                                      (dict(n_train=10, n_models=0), "n_models"),
                                      (dict(n_train=10, n_models=float("inf")), "n_models"),
                                      (dict(n_train=10, n_models=2, subset_ratio=1.0), "subset_ratio"),
                                      (dict(n_train=10, n_models=2, subset_ratio=0.01), "subset_ratio"),
                                      (dict(n_train=10, n_models=2, seed=-1), "seed"),
                                      (dict(n_train=10 ** 8, n_models=100), "limit")])
def test_draw_runs_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        draw_runs(**kw)


def test_draw_runs_subsets_are_sorted_distinct_and_prefix_stable():
    sub, init, order = draw_runs(20, 5, 0.5, seed=7)
    assert sub.shape == (5, 10) and all(len(set(r)) == 10 and (np.diff(r) > 0).all() for r in sub)
    np.testing.assert_array_equal(draw_runs(20, 3, 0.5, seed=7)[0], sub[:3])


def test_make_models_refuses_and_wraps_factory_errors():
    with pytest.raises(RedundancyError, match="make_model"):
        make_models(None, [0])
    with pytest.raises(RedundancyError, match="seeds"):
        make_models(lambda: nn.Linear(2, 1), None)
    with pytest.raises(RedundancyError, match=r"seeds\[1\]"):
        make_models(lambda: nn.Linear(2, 1), [0, -1])
    with pytest.raises(RedundancyError, match="ZeroDivisionError"):
        make_models(lambda: 1 / 0, [0])
    with pytest.raises(RedundancyError, match="torch.nn.Module"):
        make_models(lambda: 3, [0])
    shared = nn.Linear(2, 1)
    with pytest.raises(RedundancyError, match="same model"):
        make_models(lambda: shared, [0, 1])
    state = torch.random.get_rng_state()
    a, b = make_models(lambda: nn.Linear(2, 1), [4, 4])
    assert torch.equal(a.weight, b.weight) and torch.equal(state, torch.random.get_rng_state())
