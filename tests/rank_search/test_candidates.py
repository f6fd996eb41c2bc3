"""Which layers the rank search takes and how large a rank (:mod:`redundancy.rank_search.candidates`):
bad input gets a RedundancyError naming the argument."""

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


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6, 3))


def test_max_search_rank_refuses_what_it_cannot_search():
    with pytest.raises(RedundancyError, match="layer"):
        max_search_rank({1, 2}, "tt")
    with pytest.raises(RedundancyError, match="groups"):
        max_search_rank(nn.Conv2d(4, 4, 3, groups=4), "tt")
    with pytest.raises(RedundancyError, match="method"):
        max_search_rank(nn.Conv2d(4, 4, 3), "svd")
    # bisection = the linear scan of the break-even rank (independent: count the chain by hand)
    conv = nn.Conv2d(6, 10, 3)
    dense = sum(p.numel() for p in conv.parameters())
    want = max(r for r in range(1, 11) if r * 6 + r * r * 9 + r * 10 + 10 <= dense)
    assert max_search_rank(conv, "tt") == want


def test_internal_helpers_are_private():
    import redundancy.rank_search as rank_search
    import redundancy.rank_search.candidates as candidates

    assert set(rank_search.__all__) == {"search_ranks", "max_search_rank", "decompose_at", "finetune"}
    assert not hasattr(search_mod, "__all__") and not hasattr(candidates, "__all__")
    assert hasattr(candidates, "_layer_positions") and hasattr(candidates, "_replace_layers")
