"""bayes.prune: prune_to_counts and prune_by_magnitude refuse bad arguments."""

import numpy as np
import pytest
from torch import nn

from redundancy.bayes import prune_to_counts
from redundancy.bayes.prune import prune_by_magnitude
from redundancy.errors import RedundancyError


def test_prune_to_counts_refuses(tiny_fit):
    res, _ = tiny_fit
    with pytest.raises(RedundancyError, match="result"):
        prune_to_counts(None, {"1": 2})
    with pytest.raises(RedundancyError, match="counts"):
        prune_to_counts(res, [2])
    with pytest.raises(RedundancyError, match="nope"):
        prune_to_counts(res, {"nope": 2})
    with pytest.raises(RedundancyError, match="counts"):
        prune_to_counts(res, {"1": 5})
    with pytest.raises(RedundancyError, match="order"):
        prune_to_counts(res, {"1": 2}, order="random")
    pr = prune_to_counts(res, {"1": 2})
    top2 = sorted(np.argsort(-res.node_pip["1"], kind="stable")[:2].tolist())
    kept = sorted(set(range(4)) - {r["channel"] for r in pr.removed})
    assert pr.nodes_after == {"1": 2} and kept == top2


def test_prune_by_magnitude_refuses():
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with pytest.raises(RedundancyError, match="counts"):
        prune_by_magnitude(net, np.zeros((0, 3)), (4,))
    with pytest.raises(RedundancyError, match="input_shape"):
        prune_by_magnitude(net, {"0": 3}, (6,))
    with pytest.raises(RedundancyError, match="nope"):
        prune_by_magnitude(net, {"nope": 3}, (4,))
    with pytest.raises(RedundancyError, match="counts"):
        prune_by_magnitude(net, {"0": 7}, (4,))
    with pytest.raises(RedundancyError, match="not prunable"):
        prune_by_magnitude(net, {"2": 1}, (4,))  # the output layer: its nodes are the classes
