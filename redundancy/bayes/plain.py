"""The plain network a pruned spike-and-slab fit becomes: :class:`FeatureSelect` (dropped input
features), the surgery that keeps a subset of nodes (:func:`_slice_network`), and the inclusion
probability as a channel :class:`~redundancy.channels.Importance`."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from redundancy.bayes.convert import WEIGHT_TYPES
from redundancy.bayes.layers import SpikeSlabLayer, SpikeSlabLinear


class FeatureSelect(nn.Module):
    """Keep the entries ``index`` along dimension 1 (features or input channels)."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"{len(self.index)} kept"


def _is_weight(m: nn.Module) -> bool:
    return isinstance(m, SpikeSlabLayer) or type(m) in WEIGHT_TYPES


def _plain(m: nn.Module, W: torch.Tensor, b: torch.Tensor | None) -> nn.Module:
    if isinstance(m, (nn.Linear, SpikeSlabLinear)):
        new = nn.Linear(W.shape[1], W.shape[0], bias=b is not None)
    else:
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[W.dim() - 2]
        new = conv(W.shape[1], W.shape[0], tuple(W.shape[2:]), stride=m.stride, padding=m.padding,
                   dilation=m.dilation, bias=b is not None)
    new = new.to(device=W.device, dtype=W.dtype)
    with torch.no_grad():
        new.weight.copy_(W)
        if b is not None:
            new.bias.copy_(b)
    return new


def _params(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(m, SpikeSlabLayer):
        return m.weight_mu.detach(), None if m.bias_mu is None else m.bias_mu.detach()
    return m.weight.detach(), None if m.bias is None else m.bias.detach()


@torch.no_grad()
def _plain_network(modules: list[nn.Module], feature_keep: torch.Tensor | None = None) -> nn.Sequential:
    """The plain ``nn.Sequential`` behind ``modules`` (spike-and-slab layers as their posterior means ``μ``),
    with, in front of the first weight layer, only the input units ``feature_keep``."""
    out: list[nn.Module] = []
    first = True
    for m in modules:
        if not _is_weight(m):
            out.append(copy.deepcopy(m))
            continue
        W, b = _params(m)
        if first and feature_keep is not None:
            out.append(FeatureSelect(feature_keep.to(W.device)))
            W = W.index_select(1, feature_keep.to(W.device))
        out.append(_plain(m, W, b))
        first = False
    return nn.Sequential(*out).eval()


def _slice_network(modules: list[nn.Module], keep: list[torch.Tensor | None], input_shape: tuple[int, ...],
                   feature_keep: torch.Tensor | None = None) -> nn.Sequential:
    """The plain network with, in the ``i``-th weight layer, only the output nodes ``keep[i]`` (``None``:
    all): the other nodes are removed through the channel layer's one route
    (:func:`~redundancy.channels.prune_units`: the rows, biases and the next layer's matching
    inputs, through a ``Flatten`` the ``H·W`` columns of a channel)."""
    from redundancy.channels.groups import find_groups
    from redundancy.channels.removal import prune_units

    plain = _plain_network(modules, feature_keep)
    names = [n for n, m in plain.named_children() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    drop = {names[i]: set(range(_params(m)[0].shape[0])) - set(k.tolist())
            for i, (m, k) in enumerate(zip([m for m in modules if _is_weight(m)], keep)) if k is not None}
    p = _params(next(m for m in modules if _is_weight(m)))[0]
    x = torch.zeros((1, *input_shape), dtype=p.dtype, device=p.device)
    plain(x)  # the network runs on input_shape (a shape error surfaces here, not in the tracer)
    if not any(drop.values()):
        return plain
    groups = find_groups(plain, x, [n for n, d in drop.items() if d])
    removed = [(g.index, r) for g in groups for r in range(g.size) if g.channels[r] in drop.get(g.layer, ())]
    return prune_units(plain, groups, removed, x, check=False)[0].eval()


class InclusionImportance:
    """The posterior inclusion probability (or any per-node score) as a channel
    :class:`~redundancy.channels.Importance`: unit ``r`` of a group scores ``scores[layer][channel]``."""

    name = "pip"

    def __init__(self, scores: dict[str, np.ndarray]):
        self.scores = scores

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        return np.asarray([float(self.scores[g.layer][g.channels[r]]) for g in groups for r in range(g.size)])


def _top(score: np.ndarray, k: int) -> torch.Tensor:
    order = np.argsort(-score, kind="stable")[:k]
    return torch.as_tensor(np.sort(order), dtype=torch.long)
