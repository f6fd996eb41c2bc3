"""The one result base: keyword-only, frozen, exportable, and allowances checked at class creation."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from redundancy._validation import NOT_EXPORTED, Result, guard_model, model_dtype, result
from redundancy.errors import RedundancyError


@result(allow=("gap",))
class _R(Result):
    rank: int
    gap: float
    values: np.ndarray
    model: object = dataclasses.field(default=None, metadata=NOT_EXPORTED)


def test_keyword_only_frozen_and_exported():
    r = _R(rank=2, gap=float("inf"), values=np.arange(3.0), model=torch.nn.Linear(1, 1))
    with pytest.raises(TypeError):
        _R(2, 1.0, np.zeros(1))  # positional construction is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.rank = 3
    d = r.to_dict()
    assert d == {"rank": 2, "gap": float("inf"), "values": [0.0, 1.0, 2.0]}
    assert json.loads(r.to_json().replace("Infinity", "1e999"))["values"] == [0.0, 1.0, 2.0]
    assert list(r.to_pandas().columns) == ["rank", "gap"]
    assert "model" not in repr(r) and repr(r).startswith("_R(rank=2")


def test_non_finite_refused_outside_the_allowance():
    with pytest.raises(RedundancyError, match=r"_R.values"):
        _R(rank=1, gap=0.0, values=np.array([np.nan]))


def test_misspelled_allowance_fails_at_class_creation():
    with pytest.raises(TypeError, match="not fields"):
        @result(allow=("rnak",))
        class _Bad(Result):
            rank: int


def test_parent_post_init_runs_in_a_subclass():
    seen = []

    @result
    class _P(Result):
        x: float

        def __post_init__(self):
            seen.append(self.x)

    @result
    class _C(_P):
        y: float = 0.0

    _C(x=1.0)
    assert seen == [1.0]
    with pytest.raises(RedundancyError):
        _C(x=1.0, y=float("nan"))


def test_guard_restores_modes_flags_and_buffers_on_error():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
    before = net[1].running_mean.clone()
    with pytest.raises(ValueError):
        with guard_model(net, eval=False, grad=False, buffers=True):
            net(torch.randn(8, 2))  # updates the running mean
            assert not net[0].weight.requires_grad
            raise ValueError("boom")
    assert net.training and net[0].weight.requires_grad
    assert torch.equal(net[1].running_mean, before)
    assert model_dtype(net.double()) == torch.float64
