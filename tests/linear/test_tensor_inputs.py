"""whole_network_tensor on odd inputs (data-dependent branches, lazy/meta/NaN models, bad seeds, failing
forwards): each checked against an independent computation or the exact message class."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        x = x.flatten(1)
        return self.l(x) if x.sum() > 0 else -self.l(x)


def test_data_dependent_branch_fails_the_affinity_check():
    with pytest.raises(NotLinearError):
        R.whole_network_tensor(Branchy(), (1, 6))


def test_lazy_and_meta_models_are_refused_not_initialised():
    lazy = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(RedundancyError, match="lazy"):
        R.whole_network_tensor(lazy, (1, 6))
    assert isinstance(lazy[1].weight, nn.parameter.UninitializedParameter)  # untouched
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(RedundancyError, match="meta"):
        R.whole_network_tensor(meta, (1, 6))
    assert R.count_macs(meta, (1, 6)) == {"0": 24, "2": 16}   # shapes alone are enough to count


def test_nan_weights_inputs_and_checkpoints_are_refused(tmp_path):
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    res = R.whole_network_tensor(net, (1, 6))
    with pytest.raises(RedundancyError, match="NaN"):
        res.apply(np.full((1, 6), np.nan))
    path = tmp_path / "nan.pt"
    torch.save({k: torch.full_like(v, float("nan")) for k, v in net.state_dict().items()}, path)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match="NaN"):
        R.load_weights(net, path)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():
        net[0].weight[0, 0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="NaN"):
        R.whole_network_tensor(net, (1, 6))
    from redundancy.linear.statmodel import BasicCNN

    with pytest.raises(RedundancyError, match="NaN"):
        BasicCNN((6,), 3, 2).patch_tensor(np.full((2, 6), np.nan))


@pytest.mark.parametrize("seed", [None, float("nan"), 2 ** 64, "abc"])
def test_whole_network_tensor_seed_and_at(seed):
    with pytest.raises(RedundancyError, match="seed"):
        R.whole_network_tensor(nn.Linear(3, 1), (3,), seed=seed)
    with pytest.raises(RedundancyError, match="at"):
        R.whole_network_tensor(nn.Linear(3, 1), (3,), at="abc")


def test_forward_errors_are_wrapped_and_fx_prints_nothing(capfd):
    class KeyErrorNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(6, 2)

        def forward(self, x):
            raise KeyError("missing")

    with pytest.raises(RedundancyError, match="KeyError"):
        R.whole_network_tensor(KeyErrorNet(), (6,))
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(RedundancyError, match="input_shape"):
        R.analyze(net, (1, 7))
    assert "Traceback" not in capfd.readouterr().err


class AbsFarOffset(nn.Module):
    """``|l(x) + 1e6|``: affine everywhere near the origin, not far from it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l = nn.Linear(4, 2)

    def forward(self, x):
        return torch.abs(self.l(x) + 1e6)


def test_a_model_affine_only_near_the_origin_is_not_linear():
    with pytest.raises(NotLinearError):
        R.whole_network_tensor(AbsFarOffset(), (4,))
    # an affine model still passes the far check points (and one that overflows there is not blamed)
    assert R.whole_network_tensor(nn.Linear(4, 2), (4,)).max_check_error <= 1e-8
    big = nn.Linear(4, 2).double()
    with torch.no_grad():
        big.weight.fill_(1e300)
    assert R.whole_network_tensor(big, (4,)).max_check_error <= 1e-8


def test_apply_refuses_an_overflow():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    res = R.whole_network_tensor(lin, (4,))
    with pytest.raises(RedundancyError, match="overflow"):
        res.apply(np.full(4, 1e308))
    with pytest.raises(RedundancyError, match="overflow"):
        res.apply(np.full((3, 4), -1e308))


@pytest.mark.parametrize("fn", ["whole_network_tensor", "degrees_of_freedom"])
def test_wrong_input_shape_and_meta_models_name_the_argument(fn):
    f = getattr(R, fn)
    with pytest.raises(RedundancyError, match="input_shape"):
        f(nn.Linear(4, 2), (3,))
    with pytest.raises(RedundancyError, match="input_shape"):
        f(nn.Linear(4, 2), (2, 3))
    with pytest.raises(RedundancyError, match="model.*meta"):
        f(nn.Linear(4, 2, device="meta"), (4,))
