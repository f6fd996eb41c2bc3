"""The scoreboard's EVBMF column leaves out what EVBMF cannot answer (issue 24): a 10 x 16
classifier head that reads as noise, and a 12 x 12 layer whose rank passes EVBMF's bound."""

import numpy as np
import torch
from torch import nn

from redundancy.scoreboard import scoreboard


def _planted(rows, cols, svals, seed):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(rows, len(svals))))
    v, _ = np.linalg.qr(rng.normal(size=(cols, len(svals))))
    return u @ np.diag(svals) @ v.T + rng.normal(size=(rows, cols))


def test_noise_like_head_and_past_the_bound_layer_stay_out_of_the_consensus():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():   # layer 0: five components past EVBMF's bound 4; layer 4: the head, as initialised
        net[0].weight.copy_(torch.tensor(_planted(12, 12, [32, 29, 26, 23, 19], 0)))
        net[2].weight.copy_(torch.tensor(_planted(16, 12, [40, 30], 1)))       # rank 2, within the bound
    sb = scoreboard(net, input_shape=(12,), scores=["evbmf", "energy", "numerical"])
    t = sb.table.set_index("layer")
    assert np.isnan(t.loc["4", "evbmf"]) and np.isnan(t.loc["0", "evbmf"])   # never "100 % redundant"
    assert t.loc["2", "evbmf"] == 1 - 2 / 12
    note = sb.notes["evbmf"]
    assert "as noise" in note and "EVBMF not applicable to 0" in note and "implausible noise" in note
    # the consensus of those layers is the mean of the scores that answered
    for layer in ("0", "4"):
        assert t.loc[layer, "consensus"] == np.mean([t.loc[layer, "energy"], t.loc[layer, "numerical"]])
