r"""Cheap channel-importance baselines, scored on the same units (coupled groups) as CAR.

For unit ``r`` of a group with conv/linear members ``m`` (filters :math:`W_{m,c}`, the output
channels ``c`` of ``r``) and activation points ``p`` (the group's BatchNorms and the members that do
not feed one; output :math:`a_{p,c}(x)`, averaged over positions ``s`` of an ``S``-position map):

* ``l1``: :math:`\sum_m \sum_c \lVert W_{m,c} \rVert_1`; ``l2``: :math:`(\sum_m\sum_c \lVert W_{m,c}\rVert_2^2)^{1/2}`;
* ``random``: a seeded uniform draw;
* ``activation``: :math:`\sum_p\sum_c \frac1N \sum_i \frac1S \sum_s |a_{p,c,s}(x_i)|`;
* ``taylor`` (Molchanov et al. 2017, first order):
  :math:`\sum_p\sum_c \frac1N \sum_i \bigl|\frac1S \sum_s a_{p,c,s}(x_i)\,\partial L_i/\partial a_{p,c,s}\bigr|`
  with :math:`L_i` the example's loss (cross-entropy or squared error).

Higher = the channel matters more. :func:`baseline_scores` returns a :class:`ChannelScores`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from redundancy._validation import as_generator, check_choice, check_int, check_module
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
import redundancy._validation as _v
from redundancy.pruning._checks import _restores_modes
from redundancy.pruning.groups import ChannelGroup, _check_groups, find_groups
from redundancy.pruning.masked import as_tensors

__all__ = ["ChannelScores", "baseline_scores", "l1_scores", "l2_scores", "random_scores", "activation_scores",
           "taylor_scores", "BASELINES"]

BASELINES = ("l1", "l2", "random", "activation", "taylor")


@dataclass(frozen=True)
class ChannelScores:
    """A baseline score per unit (same units and order as :class:`~redundancy.pruning.car.CARResult`)."""

    criterion: str
    layer: np.ndarray = field(repr=False)
    channel: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False)
    root: np.ndarray = field(repr=False)
    score: np.ndarray = field(repr=False)
    seed: int = 0
    groups: tuple[ChannelGroup, ...] = field(default=(), repr=False)

    def channel_table(self):
        """``layer``, ``channel``, ``importance`` (= the score), ``group``, ``root``."""
        import pandas as pd

        return pd.DataFrame({"layer": self.layer, "channel": self.channel.astype(int), "importance": self.score,
                             "group": self.group.astype(int), "root": self.root.astype(int)})

    def to_pandas(self):
        return self.channel_table()

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "seed": self.seed, "layer": self.layer.tolist(),
                "channel": self.channel.astype(int).tolist(), "score": self.score.tolist()}


def _chan_dim(module: nn.Module, out: torch.Tensor) -> int:
    return out.dim() - 1 if isinstance(module, nn.Linear) or out.dim() == 2 else 1


def _per_channel(module, out: torch.Tensor) -> torch.Tensor:
    """(N, C) mean over every dim but batch and channel."""
    d = _chan_dim(module, out)
    t = out.movedim(d, -1)
    return t.reshape(t.shape[0], -1, t.shape[-1]).mean(1)


def _weight_stats(model, groups, p: int) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    out = {}
    for g in groups:
        for name in g.members:
            w = mods[name].weight.detach().double()
            flat = w.reshape(w.shape[0], -1)
            out[name] = flat.abs().sum(1) if p == 1 else (flat ** 2).sum(1)
    return out


def _activation_stats(model, groups, X, y, task, taylor: bool, batch_size=512) -> dict[str, torch.Tensor]:
    mods = dict(model.named_modules())
    names = sorted({n for g in groups for n, _ in g.stat_points})
    sums = {n: 0.0 for n in names}
    for i in range(0, len(X), batch_size):
        xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        gates, acts, handles = {}, {}, []

        def hook(mod, args, out, name=None):
            d = _chan_dim(mod, out)
            acts[name] = out
            if not taylor:
                return None
            gate = torch.ones(out.shape[0], out.shape[d], dtype=out.dtype, device=out.device, requires_grad=True)
            gates[name] = (gate, d)
            shape = [out.shape[0]] + [1] * (out.dim() - 1)
            shape[d] = out.shape[d]
            return out * gate.reshape(shape)

        for n in names:
            handles.append(mods[n].register_forward_hook(lambda m, a, o, n=n: hook(m, a, o, n)))
        try:
            if taylor:
                with torch.enable_grad():
                    o = model(xb)
                    if task == "classification":
                        loss = nn.functional.cross_entropy(o, yb, reduction="sum")
                    else:
                        if o.numel() != yb.numel():
                            raise RedundancyError(f"the model gives {o.numel() // max(len(yb), 1)} outputs per example "
                                                  f"but the regression targets have {yb.numel() // max(len(yb), 1)}; "
                                                  "they must match")
                        loss = ((o.reshape(yb.shape) - yb) ** 2).sum()
                    grads = torch.autograd.grad(loss, [gates[n][0] for n in names])
                for n, gr in zip(names, grads):
                    out, d = acts[n], gates[n][1]
                    S = out.numel() / (out.shape[0] * out.shape[d])
                    sums[n] = sums[n] + (gr.detach().double() / S).abs().sum(0)
            else:
                with torch.no_grad():
                    model(xb)
                for n in names:
                    sums[n] = sums[n] + _per_channel(mods[n], acts[n].detach().double().abs()).sum(0)
        finally:
            for h in handles:
                h.remove()
    return {n: v / len(X) for n, v in sums.items()}


def _collect(groups, stats, points_attr: str, sqrt: bool) -> np.ndarray:
    vals = []
    for g in groups:
        pts = g.points if points_attr == "points" else g.stat_points
        for r in range(g.size):
            tot = 0.0
            for name, per in pts:
                if name in stats and per[r]:
                    tot += float(stats[name][list(per[r])].sum())
            vals.append(np.sqrt(tot) if sqrt else tot)
    return np.asarray(vals, dtype=float)


@_restores_modes
@_v.model_errors("baseline_scores")
def baseline_scores(model: nn.Module, data: Any, criterion: str, layers=None, *, split: str = "train",
                    max_examples: int | None = None, groups=None, seed: int = 0, device: Any = "cpu") -> ChannelScores:
    """Score every unit with ``criterion`` in ``("l1", "l2", "random", "activation", "taylor")``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    >>> s = baseline_scores(net, (np.ones((5, 4), "float32"), np.array([0, 1, 0, 1, 1])), "l1")
    >>> bool(np.allclose(s.score, net[0].weight.abs().sum(1).detach().numpy()))
    True
    """
    from redundancy.training import check_device

    model = check_module("model", model)
    criterion = check_choice("criterion", criterion, BASELINES)
    split = check_choice("split", split, ("train", "test"))
    seed = check_int("seed", seed, min_value=0)
    ds = as_dataset(data)
    dev = check_device(device)
    model.to(dev).eval()
    X, y = as_tensors(ds, split, model, dev, max_examples, seed)
    groups = find_groups(model, X[:1], layers) if groups is None else _check_groups("groups", groups, model)
    units = [(g.index, r) for g in groups for r in range(g.size)]
    if criterion in ("l1", "l2"):
        score = _collect(groups, _weight_stats(model, groups, 1 if criterion == "l1" else 2), "points",
                         criterion == "l2")
    elif criterion == "random":
        score = as_generator(seed).uniform(size=len(units))
    else:
        score = _collect(groups, _activation_stats(model, groups, X, y, ds.task, criterion == "taylor"),
                         "stat", False)
    if not np.isfinite(score).all():
        raise RedundancyError(f"the {criterion} scores of this model are not finite (NaN or inf in its weights, "
                              "activations or gradients)")
    lab = {g.index: g for g in groups}
    return ChannelScores(criterion, np.array([lab[g].layer for g, _ in units], dtype=object),
                         np.array([lab[g].channels[r] for g, r in units]), np.array([g for g, _ in units]),
                         np.array([r for _, r in units]), score, seed, tuple(groups))


#: keyword options the per-criterion shortcuts pass on to :func:`baseline_scores`
_OPTIONS = ("split", "max_examples", "groups", "seed", "device")
_shortcut = _v.validate_params({"model": _v.Module()}, kwargs=_OPTIONS)


@_shortcut
def l1_scores(model, data, layers=None, **kw) -> ChannelScores:
    """Filter L1 norm per unit: :func:`baseline_scores` with ``criterion="l1"``.

    ``kw``: ``split``, ``max_examples``, ``groups``, ``seed``, ``device`` (any other is refused).
    """
    return baseline_scores(model, data, "l1", layers, **kw)


@_shortcut
def l2_scores(model, data, layers=None, **kw) -> ChannelScores:
    """Filter L2 norm per unit: :func:`baseline_scores` with ``criterion="l2"`` (options as :func:`l1_scores`)."""
    return baseline_scores(model, data, "l2", layers, **kw)


@_shortcut
def random_scores(model, data, layers=None, **kw) -> ChannelScores:
    """A seeded uniform score per unit: :func:`baseline_scores` with ``criterion="random"``."""
    return baseline_scores(model, data, "random", layers, **kw)


@_shortcut
def activation_scores(model, data, layers=None, **kw) -> ChannelScores:
    """Mean absolute activation per unit: :func:`baseline_scores` with ``criterion="activation"``."""
    return baseline_scores(model, data, "activation", layers, **kw)


@_shortcut
def taylor_scores(model, data, layers=None, **kw) -> ChannelScores:
    """First-order Taylor |activation x gradient| per unit: :func:`baseline_scores` with ``criterion="taylor"``."""
    return baseline_scores(model, data, "taylor", layers, **kw)
