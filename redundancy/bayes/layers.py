r"""Node-level spike-and-slab layers: Linear and Conv1d/2d/3d, a channel being a node.

Each output node ``j`` (a row of a Linear weight, an output channel of a conv, together with its
bias) has an inclusion indicator ``γ_j ~ Bern(λ)`` and, when included, weights
``w_j ~ N(0, σ0² I)``; otherwise all of them are exactly 0 (the spike), so the node's
pre-activation is 0 and, after an activation with ``f(0) = 0``, the node is absent. Optionally the
*input* units (features of a Linear, input channels of a conv) carry indicators ``η_k ~ Bern(λ)``
as well; a weight is then in the slab only when both its node and its feature are on.

The variational posterior is mean field: ``q(γ_j) = Bern(p_j)``, ``p_j = sigmoid(a_j)``,
``q(w | γ = 1) = N(μ, diag σ²)``, ``σ = softplus(ρ)``. The forward pass uses the effective weight
``W̃_jk = γ̃_j η̃_k w_jk`` and bias ``b̃_j = γ̃_j b_j``, where, by :attr:`mode`:

* ``"relaxed"`` (training): Concrete samples ``γ̃`` at temperature :attr:`temperature` and the
  reparameterised ``w = μ + σ ε``, one draw per forward call (shared by the batch);
* ``"sample"``: exact Bernoulli draws of ``γ`` and a Gaussian draw of ``w`` (posterior predictive);
* ``"median"``: the median-probability model ``γ_j = 1[p_j > 1/2]`` with ``w = μ`` (what
  :func:`redundancy.bayes.prune_by_inclusion` turns into a plain network);
* ``"mean"``: the posterior mean of the effective weight, ``E[γ w] = p μ``.

The KL term is :func:`redundancy.bayes.kl.spike_slab_kl` with both gates (see there).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from redundancy.bayes.kl import _kl_bernoulli, _kl_normal, _relaxed_bernoulli
from redundancy.errors import UnsupportedLayerError

MODES = ("relaxed", "sample", "median", "mean")


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _inv_softplus(s: float) -> float:
    return s + math.log(-math.expm1(-s))


class SpikeSlabLayer(nn.Module):
    """Shared part of the spike-and-slab Linear and Conv layers (use those subclasses).

    Parameters
    ----------
    weight : torch.Tensor
        Initial posterior means ``μ`` of the weights, shape ``(out, in, *kernel)``.
    bias : torch.Tensor or None
        Initial posterior means of the biases, shape ``(out,)``.
    prior_inclusion : float
        ``λ`` in ``(0, 1)``.
    slab_scale : float
        ``σ0 > 0``.
    gate_nodes, gate_inputs : bool
        Whether the output nodes (rows) and the input units (columns) carry indicators.
    init_inclusion : float
        Initial ``p`` of every indicator.
    init_scale : float
        Initial posterior standard deviation ``σ`` of every weight.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, prior_inclusion: float,
                 slab_scale: float, gate_nodes: bool = True, gate_inputs: bool = False,
                 init_inclusion: float = 0.9, init_scale: float = 1e-3):
        super().__init__()
        self.weight_mu = nn.Parameter(weight.detach().clone())
        self.weight_rho = nn.Parameter(torch.full_like(self.weight_mu, _inv_softplus(init_scale)))
        if bias is not None:
            self.bias_mu = nn.Parameter(bias.detach().clone())
            self.bias_rho = nn.Parameter(torch.full_like(self.bias_mu, _inv_softplus(init_scale)))
        else:
            self.bias_mu = self.bias_rho = None
        out, inp = weight.shape[0], weight.shape[1]
        self.node_logit = nn.Parameter(torch.full((out,), _logit(init_inclusion), dtype=weight.dtype)) \
            if gate_nodes else None
        self.input_logit = nn.Parameter(torch.full((inp,), _logit(init_inclusion), dtype=weight.dtype)) \
            if gate_inputs else None
        self.prior_inclusion = float(prior_inclusion)
        self.slab_scale = float(slab_scale)
        self.mode = "relaxed"
        self.temperature = 0.5

    # ----------------------------------------------------------------- posterior quantities
    @property
    def node_pip(self) -> torch.Tensor | None:
        """``p_j`` of each output node (None when the nodes are not gated)."""
        return None if self.node_logit is None else torch.sigmoid(self.node_logit)

    @property
    def input_pip(self) -> torch.Tensor | None:
        """``r_k`` of each input unit (None when the inputs are not gated)."""
        return None if self.input_logit is None else torch.sigmoid(self.input_logit)

    def _gate(self, logit: torch.Tensor | None) -> torch.Tensor | None:
        if logit is None:
            return None
        if self.mode == "relaxed":
            return _relaxed_bernoulli(logit, self.temperature)
        if self.mode == "sample":
            return torch.bernoulli(torch.sigmoid(logit))
        if self.mode == "median":
            return (logit > 0).to(logit.dtype)
        return torch.sigmoid(logit)

    def _draw(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        if self.mode in ("relaxed", "sample"):
            return mu + F.softplus(rho) * torch.randn_like(mu)
        return mu

    def effective(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One draw of the effective ``(W̃, b̃)`` in the current :attr:`mode`."""
        w = self._draw(self.weight_mu, self.weight_rho)
        b = None if self.bias_mu is None else self._draw(self.bias_mu, self.bias_rho)
        g, e = self._gate(self.node_logit), self._gate(self.input_logit)
        extra = (1,) * (w.dim() - 2)
        if g is not None:
            w = w * g.view(-1, 1, *extra)
            b = None if b is None else b * g
        if e is not None:
            w = w * e.view(1, -1, *extra)
        return w, b

    def kl(self) -> torch.Tensor:
        r"""``Σ KL_B(p) + Σ KL_B(r) + Σ_jk p_j r_k KL_N(w_jk) + Σ_j p_j KL_N(b_j)``."""
        kw = _kl_normal(self.weight_mu, F.softplus(self.weight_rho), self.slab_scale)
        kw = kw.reshape(kw.shape[0], kw.shape[1], -1).sum(2)
        total = self.weight_mu.new_zeros(())
        if self.input_logit is not None:
            total = total + _kl_bernoulli(self.input_logit, self.prior_inclusion).sum()
            kw = kw * torch.sigmoid(self.input_logit)[None, :]
        per_node = kw.sum(1)
        if self.bias_mu is not None:
            per_node = per_node + _kl_normal(self.bias_mu, F.softplus(self.bias_rho), self.slab_scale)
        if self.node_logit is not None:
            total = total + _kl_bernoulli(self.node_logit, self.prior_inclusion).sum()
            per_node = per_node * torch.sigmoid(self.node_logit)
        return total + per_node.sum()

    def extra_repr(self) -> str:
        return (f"{tuple(self.weight_mu.shape)}, nodes_gated={self.node_logit is not None}, "
                f"inputs_gated={self.input_logit is not None}, λ={self.prior_inclusion}, σ0={self.slab_scale}")


class SpikeSlabLinear(SpikeSlabLayer):
    """Spike-and-slab version of :class:`torch.nn.Linear` (a node is an output unit).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> layer = SpikeSlabLinear.from_module(nn.Linear(3, 2), prior_inclusion=0.5, slab_scale=1.0)
    >>> layer.mode = "median"
    >>> layer(torch.ones(4, 3)).shape
    torch.Size([4, 2])
    """

    @classmethod
    def from_module(cls, m: nn.Linear, **kw) -> "SpikeSlabLinear":
        return cls(m.weight, m.bias, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.effective()
        return F.linear(x, w, b)


class _SpikeSlabConv(SpikeSlabLayer):
    ndim = 2

    def __init__(self, weight, bias, *, stride=1, padding=0, dilation=1, **kw):
        super().__init__(weight, bias, **kw)
        self.stride, self.padding, self.dilation = stride, padding, dilation

    @classmethod
    def from_module(cls, m: nn.Module, **kw):
        if m.groups != 1:
            raise UnsupportedLayerError(f"{type(m).__name__} with groups={m.groups} cannot be converted: a "
                                        "grouped/depthwise conv's channels are not independent nodes; use groups=1")
        if m.padding_mode != "zeros":
            raise UnsupportedLayerError(f"{type(m).__name__} with padding_mode={m.padding_mode!r} cannot be "
                                        "converted; only padding_mode='zeros' is supported")
        return cls(m.weight, m.bias, stride=m.stride, padding=m.padding, dilation=m.dilation, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.effective()
        conv = (F.conv1d, F.conv2d, F.conv3d)[self.ndim - 1]
        return conv(x, w, b, self.stride, self.padding, self.dilation)


class SpikeSlabConv1d(_SpikeSlabConv):
    """Spike-and-slab :class:`torch.nn.Conv1d` (a node is an output channel)."""

    ndim = 1


class SpikeSlabConv2d(_SpikeSlabConv):
    """Spike-and-slab :class:`torch.nn.Conv2d` (a node is an output channel).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> layer = SpikeSlabConv2d.from_module(nn.Conv2d(1, 4, 3, padding=1), prior_inclusion=0.5, slab_scale=1.0)
    >>> layer(torch.ones(2, 1, 5, 5)).shape
    torch.Size([2, 4, 5, 5])
    """

    ndim = 2


class SpikeSlabConv3d(_SpikeSlabConv):
    """Spike-and-slab :class:`torch.nn.Conv3d` (a node is an output channel)."""

    ndim = 3
