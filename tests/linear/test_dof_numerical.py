"""Numerical dof against a brute-force Jacobian (jacrev of jacrev + full SVD) and known counts."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from redundancy import NotLinearError, RedundancyError, parameter_count
from redundancy.linear.dof import DofResult, degrees_of_freedom, vanilla_dof
from redundancy.linear.dof_numerical import jacobian_rank, rank_from_singular_values
from redundancy.linear.spec import Conv, Dense, LinearCNN
from redundancy.testing.strategies import linear_cnn_specs


def brute_dof(model, input_shape):
    """rank of d(vec W, b)/d(theta) with W from jacrev in x, all by plain autograd, at the model's weights."""
    net = copy.deepcopy(model).double()
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = dict(net.named_buffers())
    x0 = torch.zeros(input_shape, dtype=torch.float64)

    def wb(p):
        f = lambda x: torch.func.functional_call(net, (p, buffers), (x[None],)).reshape(-1)  # noqa: E731
        return torch.cat([torch.func.jacrev(f)(x0).reshape(-1), f(x0)])

    J = torch.func.jacrev(wb)(params)
    J = torch.cat([J[n].reshape(J[n].shape[0], -1) for n in params], 1).numpy()
    J = J[:, np.linalg.norm(J, axis=0) > 0]
    J = J / np.linalg.norm(J, axis=0)
    return int(np.linalg.matrix_rank(J))


@settings(max_examples=12)
@given(spec=st.one_of(linear_cnn_specs(ndim=1, max_layers=2), linear_cnn_specs(ndim=2, max_layers=2)),
       seed=st.integers(0, 100))
def test_numerical_matches_brute_force(spec, seed):
    net = spec.build(seed=seed)
    # keep the brute-force Jacobian (n_params x (n_in + 1) n_out entries) small enough for the suite
    n_out = math.prod(spec.output_shape)
    assume(parameter_count(net) * (math.prod(spec.input_shape) + 1) * n_out <= 3_000_000)
    res = degrees_of_freedom(net, spec.input_shape, seed=seed)
    assert res.dof == brute_dof(net, spec.input_shape)
    assert res.naive == parameter_count(net) == spec.naive_parameter_count()
    assert res.gap > 1e4


def _bottleneck(c=8, r=3, bias=True):
    return nn.Sequential(nn.Conv2d(c, r, 1, bias=bias), nn.BatchNorm2d(r), nn.Conv2d(r, r, 3, padding=1, bias=bias),
                         nn.BatchNorm2d(r), nn.Conv2d(r, c, 1, bias=bias)).eval()


def test_sketch_route_matches_brute_force():
    """A model big enough for the random-measurement route (not the exact Jacobian)."""
    net = _bottleneck(4, 2)
    res = degrees_of_freedom(net, (4, 3, 3))
    num = jacobian_rank(net, (4, 3, 3))
    assert not num.exact and res.n_rows < (36 + 1) * 36
    assert res.dof == num.rank == brute_dof(net, (4, 3, 3))


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 1e3, 1e6])
@pytest.mark.parametrize("bias", [False, True])
def test_scaling_all_weights_keeps_dof(scale, bias):
    net = nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, bias=bias), nn.Conv1d(3, 2, 1, bias=bias), nn.Flatten(),
                        nn.Linear(2 * 4, 2, bias=bias)).double()
    base = degrees_of_freedom(net, (2, 9), at="model").dof
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        for p in scaled.parameters():
            p.mul_(scale)
    res = degrees_of_freedom(scaled, (2, 9), at="model")
    assert res.dof == base == degrees_of_freedom(net, (2, 9)).dof


def test_batchnorm_and_biases_counted_once_in_dof():
    """Conv(bias) -> BN(eval) -> Linear(bias): W keeps the vanilla dof, the offset adds O; the naive
    count overstates by K^2 (GL(K) gauge) + K (conv bias) + 2K (BN affine)."""
    C, K, O = 2, 3, 2
    net = nn.Sequential(nn.Conv1d(C, K, 2, stride=2), nn.BatchNorm1d(K), nn.Flatten(), nn.Linear(K * 5, O))
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    net.eval()
    res = degrees_of_freedom(net, (C, 10))
    assert res.dof == vanilla_dof(C * 2, O * 5, K) + O
    assert res.naive - res.dof == K * K + K + 2 * K
    assert res.excess == res.naive - res.dof and math.isclose(res.ratio, res.naive / res.dof)


def test_shared_parameters_counted_once():
    lin = nn.Linear(3, 3, bias=False)
    net = nn.Sequential(lin, lin)  # W = A^2, generically a local diffeomorphism
    res = degrees_of_freedom(net, (3,))
    assert res.naive == 9 and res.dof == 9
    # two distinct layers instead: W = BA has the 3x3 matrices' 9 dof, naive 18
    res2 = degrees_of_freedom(nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)), (3,))
    assert (res2.naive, res2.dof) == (18, 9)

    class Diff(nn.Module):  # f(x) = A x - A x with the same A: W = 0, dof 0 (a broken tie would give 4)
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2, bias=False)
            self.b = self.a

        def forward(self, x):
            return self.a(x) - self.b(x)

    res3 = degrees_of_freedom(Diff(), (2,))
    assert (res3.naive, res3.dof, res3.ratio) == (4, 0, math.inf)


class _Residual(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.a = nn.Linear(c, r, bias=False)
        self.b = nn.Linear(r, c, bias=False)

    def forward(self, x):
        return x + self.b(self.a(x))


def test_residual_addition():
    """W = I + BA: the identity shortcut adds no dof; rank-R matrices have R(2C - R); naive 2CR (excess R^2)."""
    c, r = 5, 2
    res = degrees_of_freedom(_Residual(c, r), (c,))
    assert res.dof == r * (2 * c - r) and res.naive - res.dof == r * r


def test_nonlinear_and_bad_arguments():
    with pytest.raises(NotLinearError):
        degrees_of_freedom(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), (3,))

    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(3, 2)

        def forward(self, x):
            return torch.tanh(self.l(x))

    with pytest.raises(NotLinearError):
        degrees_of_freedom(Hidden(), (3,))
    with pytest.raises(NotLinearError):
        degrees_of_freedom(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), (3,))  # train mode
    lin = nn.Linear(3, 2)
    for call in [lambda: degrees_of_freedom(lin, None), lambda: degrees_of_freedom(lin, (3,), method="closed"),
                 lambda: degrees_of_freedom(lin, (3,), tol=0), lambda: degrees_of_freedom(lin, (3,), tol=2.0),
                 lambda: degrees_of_freedom(lin, (3.5,)), lambda: degrees_of_freedom(lin, (4,)),
                 lambda: degrees_of_freedom(lin, (3,), seed=-1), lambda: degrees_of_freedom("net", (3,)),
                 lambda: degrees_of_freedom(lin, (3,), at="here"), lambda: degrees_of_freedom(nn.Flatten(), (3,))]:
        with pytest.raises(RedundancyError):
            call()


def test_result_object_and_progress():
    spec = LinearCNN((1, 12), [Conv(2, 3, stride=3), Dense(1)])
    res = degrees_of_freedom(spec)
    assert isinstance(res, DofResult) and res.method == "closed" and res.gap is None
    d = res.to_dict()
    json.dumps(d)
    assert d["dof"] == 10 == vanilla_dof(3, 4, 2) and d["naive"] == 14 and d["ratio"] == 1.4
    assert "dof=10" in repr(res)
    num = degrees_of_freedom(spec.build(), (1, 12), progress=True)
    assert num.dof == 10 and num.method == "numerical"
    with pytest.raises(Exception):
        res.dof = 3  # frozen
    # same seed, same answer; rank tolerance reported
    assert degrees_of_freedom(spec.build(), (1, 12), seed=5).to_dict() == degrees_of_freedom(spec.build(), (1, 12), seed=5).to_dict()


def test_rank_from_singular_values():
    assert rank_from_singular_values(np.array([3.0, 1.0, 1e-20]), (3, 3)) == (2, 1e20, pytest.approx(100 * 3 * np.finfo(float).eps))
    assert rank_from_singular_values(np.array([1.0, 0.5]), (2, 2))[:2] == (2, math.inf)
    assert rank_from_singular_values(np.zeros(2), (2, 2))[0] == 0
