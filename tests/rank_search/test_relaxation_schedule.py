"""The softmax relaxation (:mod:`redundancy.rank_search.relaxation`), the schedule
(:mod:`redundancy.rank_search.schedule`) and the Pareto front of rank plots refuse bad input."""

import numpy as np
import pytest
import torch
from torch import nn
import redundancy.rank_search.search as search_mod
from redundancy.errors import RedundancyError
from redundancy.rank_search.finish import distillation_loss, finetune
from redundancy.rank_search.relaxation import MixedRankLayer, expected_reconstruction_error, rank_penalty, reconstruction_error
from redundancy.rank_search.schedule import default_plan
from redundancy.rank_search import decompose_at, max_search_rank
from redundancy.plotting.ranks import pareto_front


def test_mixed_functions_refuse_non_layers():
    m = MixedRankLayer(nn.Conv2d(3, 4, 3), "tt", [1, 2])
    for fn in (rank_penalty, reconstruction_error, expected_reconstruction_error):
        with pytest.raises(RedundancyError, match="layers"):
            fn(1)
        with pytest.raises(RedundancyError, match="layers"):
            fn([])
        with pytest.raises(RedundancyError, match=r"layers\[1\]"):
            fn([m, nn.Linear(2, 2)])
    with pytest.raises(RedundancyError, match="gamma"):
        rank_penalty([m], gamma=-1.0)
    with pytest.raises(RedundancyError, match="beta"):
        rank_penalty([m], beta=float("nan"))


def test_default_plan_and_pareto_front_bounds():
    with pytest.raises(RedundancyError, match="n_coarse"):
        default_plan(10, n_coarse=0)
    with pytest.raises(RedundancyError, match="max_rank"):
        default_plan(0)
    with pytest.raises(RedundancyError, match="x"):
        pareto_front(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(RedundancyError, match="y"):
        pareto_front([0.1, 0.2], [0.5, float("nan")])
    with pytest.raises(RedundancyError, match="one y per x"):
        pareto_front([0.1, 0.2], [0.5])
    assert pareto_front([0.3], [0.2]).tolist() == [0]
    # ties: equal points are both on the front, a same-x point with lower y is not
    assert pareto_front([0.1, 0.1, 0.1, 0.2], [0.5, 0.5, 0.4, 0.6]).tolist() == [0, 1, 3]
