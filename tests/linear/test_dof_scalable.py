"""The scalable numerical dof: column-sketched Jacobian rows agree with an independent dense
Jacobian rank (torch.func.jacrev + SVD); the size refusal names the limit and an estimate."""

import math

import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.linear.dof_numerical import NUMERICAL_MAX_RANK, jacobian_rank


def dense_dof(net, shape) -> int:
    net = net.double().eval()
    g = torch.Generator().manual_seed(3)
    params = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(max(1, p[0].numel()))
              for n, p in net.named_parameters()}
    n_in = math.prod(shape)
    X = torch.cat([torch.zeros(1, n_in, dtype=torch.float64), torch.eye(n_in, dtype=torch.float64)]).reshape(
        n_in + 1, *shape)

    def wb(p):
        y = torch.func.functional_call(net, p, (X,)).reshape(n_in + 1, -1)
        return torch.cat([(y[1:] - y[:1]).reshape(-1), y[0]])

    jac = torch.func.jacrev(wb)(params)
    J = torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in params], 1)
    norms = J.norm(dim=0)
    J = J[:, norms > 1e-10 * norms.max()]
    return int(torch.linalg.matrix_rank(J / J.norm(dim=0), rtol=1e-9))


def test_sketched_route_matches_dense_rank_with_a_planted_bottleneck(monkeypatch):
    from redundancy.linear import dof_numerical

    monkeypatch.setattr(dof_numerical, "EXACT_MAX_ROWS", 0)   # force random rows + column sketch
    monkeypatch.setattr(dof_numerical, "SKETCH_MIN_PARAMS", 0)
    torch.manual_seed(0)
    # 4 -> 128 channels (3x3), a one-channel 1x1 bottleneck, a Linear head: many parameters, few outputs
    net = nn.Sequential(nn.Conv2d(4, 128, 3, padding=1), nn.Conv2d(128, 1, 1), nn.Flatten(), nn.Linear(25, 2))
    res = jacobian_rank(net, (4, 5, 5))
    assert "sketch" in res.decomposition and res.sketch_width < sum(p.numel() for p in net.parameters())
    # the bottleneck makes W = L . conv(k) with a free 4x3x3 kernel k and L (2 x 25), one scale gauge,
    # plus the head's free offset: 36 + 50 - 1 + 2
    assert res.rank == dense_dof(net, (4, 5, 5)) == 87
    assert res.estimated_seconds is not None and res.estimated_seconds > 0


def test_refusal_names_the_limit_and_an_estimate():
    net = nn.Sequential(nn.Conv2d(8, 64, 3, padding=1), nn.Flatten(), nn.Linear(64 * 36, 4))
    with pytest.raises(RedundancyError, match=r"above max_rank=100 \(about .* s"):
        jacobian_rank(net, (8, 6, 6), max_rank=100)
    assert NUMERICAL_MAX_RANK == 12_000
    with pytest.raises(RedundancyError, match="max_rank"):
        jacobian_rank(net, (8, 6, 6), max_rank=0)
