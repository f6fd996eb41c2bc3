"""load_weights / load_checkpoint: unsafe or mismatched files are refused with a CheckpointError."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_load_weights_text_file_and_int_keys(tmp_path):
    text = tmp_path / "w.pt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not a readable"):
        R.load_weights(nn.Linear(2, 2), text)
    ints = tmp_path / "i.pt"
    torch.save({1: torch.zeros(2)}, ints)
    with pytest.raises(CheckpointError, match="strings"):
        R.load_weights(nn.Linear(2, 2), ints)


@pytest.mark.parametrize("kind", ["sparse", "meta"])
def test_load_weights_refuses_sparse_and_meta_tensors(tmp_path, kind):
    weight = torch.eye(2).to_sparse() if kind == "sparse" else torch.empty(2, 2, device="meta")
    path = tmp_path / f"{kind}.pt"
    torch.save({"weight": weight, "bias": torch.zeros(2)}, path)
    net = nn.Linear(2, 2)
    before = net.weight.detach().clone()
    with pytest.raises(CheckpointError, match=kind):
        R.load_weights(net, path)
    assert torch.equal(net.weight, before)
