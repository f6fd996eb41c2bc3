"""Helpers shared by the analysis tests."""

import math

import torch
from torch import nn


def jacobian_dof(model: nn.Module, input_shape) -> int:
    """rank d(vec W)/d(theta) at a random float64 point, W the dense operator x -> f(x) - f(0)."""
    net = model.double().eval()
    g = torch.Generator().manual_seed(1)
    params = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(max(1, p[0].numel()))
              for n, p in net.named_parameters()}
    buffers = dict(net.named_buffers())
    n_in = math.prod(input_shape)
    eye = torch.cat([torch.zeros(1, n_in, dtype=torch.float64), torch.eye(n_in, dtype=torch.float64)])
    X = eye.reshape(n_in + 1, *input_shape)

    def W(p):
        y = torch.func.functional_call(net, (p, buffers), (X,)).reshape(n_in + 1, -1)
        return y[1:] - y[:1]

    jac = torch.func.jacfwd(W)(params)
    J = torch.cat([jac[n].reshape(-1, params[n].numel()) for n in params], dim=1)
    norms = J.norm(dim=0)
    J = J[:, norms > 1e-10 * norms.max()]       # offsets (biases) only move W by round-off
    J = J / J.norm(dim=0)
    return int(torch.linalg.matrix_rank(J, rtol=1e-9))
