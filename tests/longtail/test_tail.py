"""longtail.tail: example_loss refuses models that do not fit and leaves the caller's model as it was."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail import example_loss


def test_example_loss_refuses_models_that_do_not_fit(toy_data):
    X, y = toy_data()
    with pytest.raises(RedundancyError, match="example_loss|model failed"):
        example_loss(nn.Conv2d(1, 2, 3), (X, y))
    with pytest.raises(RedundancyError, match="outputs"):
        example_loss(nn.Linear(4, 1), (X, y))
    with pytest.raises(RedundancyError, match="model"):
        example_loss("net", (X, y))
    with pytest.raises(RedundancyError, match="split"):
        example_loss(nn.Linear(4, 2), (X, y), split="val")
    bad = nn.Linear(4, 2)
    with torch.no_grad():
        bad.weight.fill_(float("inf"))
    with pytest.raises(RedundancyError, match="NaN or inf"):
        example_loss(bad, (X, y))


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


def test_example_loss_restores_the_model_and_matches_log_softmax(toy_data):
    X, y = toy_data(50)
    m = _Counting().train()
    loss = example_loss(m, (X, y), split="train")
    assert float(m.calls) == 0 and m.training
    from redundancy.data import as_dataset

    ds = as_dataset((X, y))
    with torch.no_grad():
        z = m.lin(torch.as_tensor(ds.X_train)).double().numpy()
    ref = np.log(np.exp(z).sum(1)) - z[np.arange(len(ds.y_train)), ds.y_train]
    np.testing.assert_allclose(loss, ref, rtol=1e-10)
