"""whole_network_tensor against the model's own forward pass (an independent computation)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from redundancy import NotLinearError, RedundancyError, whole_network_tensor
from redundancy.testing.strategies import linear_cnn_specs


def _forward(model, x):
    with torch.no_grad():
        return model.double()(torch.as_tensor(x)).reshape(x.shape[0], -1).numpy()


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@given(spec=linear_cnn_specs(max_layers=3), seed=st.integers(0, 2**16), method=st.sampled_from(["vjp", "jvp"]))
def test_identity_matches_forward(spec, seed, method):
    net = spec.build(seed=seed)
    res = whole_network_tensor(net, spec.input_shape, method=method)
    assert res.W.shape == (int(np.prod(spec.output_shape)), *spec.input_shape)
    x = np.random.default_rng(seed).normal(size=(3, *spec.input_shape))
    assert _rel(res.apply(x), _forward(net, x)) < 1e-10


@given(ndim=st.integers(1, 3), seed=st.integers(0, 1000))
def test_residual_concat_batchnorm_groups(ndim, seed):
    torch.manual_seed(seed)
    Conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim]
    BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[ndim]
    Pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[ndim]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Conv(4, 4, 3, padding=1, groups=2)
            self.bn = BN(4)
            self.b = Conv(4, 2, 1)
            self.pool = Pool(2)
            self.fc = nn.Linear(6 * 2 ** ndim, 3)

        def forward(self, x):
            h = self.bn(self.a(x)) + x          # residual addition
            h = torch.cat([h, self.b(h)], 1)    # channel concatenation
            return self.fc(torch.flatten(self.pool(h), 1))

    net = Block()
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2)
    net.eval()
    shape = (4,) + (4,) * ndim
    res = whole_network_tensor(net, shape)
    x = np.random.default_rng(seed).normal(size=(2, *shape))
    assert _rel(res.apply(x), _forward(net, x)) < 1e-10
    assert np.abs(res.bias).max() > 0  # BN shift and fc bias give a non-zero offset


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.MaxPool1d(2), nn.Tanh()])
def test_nonlinear_module_named(layer):
    net = nn.Sequential(nn.Conv1d(1, 2, 3), layer, nn.Flatten())
    with pytest.raises(NotLinearError, match="'1'") as info:
        whole_network_tensor(net, (1, 10))
    assert info.value.module_name == "1"


def test_batchnorm_train_mode_rejected():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(NotLinearError, match="training mode"):
        whole_network_tensor(net, (1, 5, 5))


@pytest.mark.parametrize("offset", [0.0, 5.0])
def test_functional_nonlinearity_located(offset):
    """abs() hidden in a forward is found, even with an offset that keeps small inputs on one side."""
    torch.manual_seed(0)

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv1d(1, 1, 3)

        def forward(self, x):
            return torch.abs(self.c(x) + offset)

    net = nn.Sequential(nn.Conv1d(1, 1, 1), Inner())
    with pytest.raises(NotLinearError, match="'1'") as info:
        whole_network_tensor(net, (1, 8))
    assert info.value.module_name == "1"


def test_local_linearisation_is_jacobian():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    x0 = np.random.default_rng(0).normal(size=4)
    res = whole_network_tensor(net, (4,), at=x0)
    jac = torch.autograd.functional.jacobian(lambda x: net(x[None])[0], torch.tensor(x0)).numpy()
    np.testing.assert_allclose(res.W, jac, rtol=1e-12, atol=1e-14)
    y0 = net(torch.tensor(x0)[None])[0].detach().numpy()
    np.testing.assert_allclose(res.apply(x0), y0, rtol=1e-12)


def test_original_model_untouched():
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten())
    w = net[0].weight.detach().clone()
    whole_network_tensor(net, (1, 6))
    assert net[0].weight.dtype == torch.float32 and torch.equal(net[0].weight, w)


@pytest.mark.parametrize("shape, match", [
    ((1, -3), "input_shape"), ((1, 2.5), "input_shape"), ("abc", "input_shape"), ((), "input_shape"),
    ((1, 2, 2), "Kernel size|kernel"), ((1, 4, 4, 4), "input_shape"),
])
def test_malformed_input_shape(shape, match):
    with pytest.raises(RedundancyError, match=match):
        whole_network_tensor(nn.Conv2d(1, 1, 3), shape)


def test_non_module_rejected():
    with pytest.raises(RedundancyError, match="model must be a torch.nn.Module"):
        whole_network_tensor(lambda x: x, (3,))


def test_bad_method_and_point():
    with pytest.raises(RedundancyError, match="method"):
        whole_network_tensor(nn.Linear(3, 2), (3,), method="fd")
    with pytest.raises(RedundancyError, match="at has shape"):
        whole_network_tensor(nn.Linear(3, 2), (3,), at=np.zeros(4))

