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

from dataclasses import field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import as_generator
from redundancy.channels._checks import _check_layers
from redundancy.channels.groups import ChannelGroup, _check_groups, find_groups
from redundancy.channels.importance import L1, L2, Activation, Taylor
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.pruning.masked import as_tensors

__all__ = ["ChannelScores", "baseline_scores"]

BASELINES = ("l1", "l2", "random", "activation", "taylor")


@_v.result
class ChannelScores(_v.Result):
    """A baseline score per unit (same units and order as :class:`~redundancy.pruning.car.CARResult`)."""

    criterion: str
    layer: np.ndarray = field(repr=False)
    channel: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    root: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    score: np.ndarray = field(repr=False)
    seed: int = 0
    groups: tuple[ChannelGroup, ...] = field(default=(), repr=False, metadata=_v.NOT_EXPORTED)

    def channel_table(self):
        """``layer``, ``channel``, ``importance`` (= the score), ``group``, ``root``."""
        import pandas as pd

        return pd.DataFrame({"layer": self.layer, "channel": self.channel.astype(int), "importance": self.score,
                             "group": self.group.astype(int), "root": self.root.astype(int)})

    def to_pandas(self):
        return self.channel_table()


class RandomImportance:
    """A seeded uniform score per unit (the random baseline)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        return as_generator(self.seed).uniform(size=sum(g.size for g in groups))


def _importance(criterion: str, seed: int):
    """The :class:`~redundancy.channels.Importance` of a baseline criterion."""
    return {"l1": L1, "l2": L2, "activation": Activation, "taylor": Taylor}[criterion]() if criterion != "random" \
        else RandomImportance(seed)


@_v.validate_params({"model": _v.Module(materialised=False), "criterion": _v.Choice(*BASELINES),
                     "layers": _v.Check(_check_layers), "split": _v.Choice("train", "test"), "seed": _v.Int(0)})
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
    with _v.guard_model(model):
        return _baseline_scores(model, as_dataset(data), criterion, layers, split, max_examples, groups, seed, device)


def _baseline_scores(model, ds, criterion, layers, split, max_examples, groups, seed, device) -> ChannelScores:
    from redundancy.training import check_device

    dev = check_device(device)
    model.to(dev).eval()
    X, y = as_tensors(ds, split, model, dev, max_examples, seed)
    groups = find_groups(model, X[:1], layers) if groups is None else _check_groups("groups", groups, model)
    units = [(g.index, r) for g in groups for r in range(g.size)]
    score = _scores(criterion, seed, model, groups, X, y, ds.task)
    lab = {g.index: g for g in groups}
    return ChannelScores(criterion=criterion, layer=np.array([lab[g].layer for g, _ in units], dtype=object),
                         channel=np.array([lab[g].channels[r] for g, r in units]),
                         group=np.array([g for g, _ in units]), root=np.array([r for _, r in units]),
                         score=score, seed=seed, groups=tuple(groups))


def _scores(criterion, seed, model, groups, X, y, task) -> np.ndarray:
    """The baseline kernel: one finite score per unit of ``groups``."""
    score = _importance(criterion, seed)(model, groups, X, y, task=task)
    if not np.isfinite(score).all():
        raise RedundancyError(f"the {criterion} scores of this model are not finite (NaN or inf in its weights, "
                              "activations or gradients)")
    return score


#: keyword options the per-criterion shortcuts pass on to :func:`baseline_scores`
_OPTIONS = ("split", "max_examples", "groups", "seed", "device")


def _shortcut(criterion: str, what: str):
    """``{criterion}_scores(model, data, layers=None, **kw)``: :func:`baseline_scores` with that criterion."""
    def fn(model, data, layers=None, **kw) -> ChannelScores:
        return baseline_scores(model, data, criterion, layers, **kw)

    fn.__name__ = fn.__qualname__ = f"{criterion}_scores"
    fn.__doc__ = (f"{what} per unit: :func:`baseline_scores` with ``criterion={criterion!r}``.\n\n"
                  "    ``kw``: ``split``, ``max_examples``, ``groups``, ``seed``, ``device`` (any other is refused).\n")
    return _v.validate_params({"model": _v.Module()}, kwargs=_OPTIONS)(fn)


l1_scores = _shortcut("l1", "Filter L1 norm")
l2_scores = _shortcut("l2", "Filter L2 norm")
random_scores = _shortcut("random", "A seeded uniform score")
activation_scores = _shortcut("activation", "Mean absolute activation")
taylor_scores = _shortcut("taylor", "First-order Taylor |activation x gradient|")
