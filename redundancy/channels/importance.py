r"""Channel importances: one protocol, one computation of each score.

An :class:`Importance` scores every unit of a list of
:class:`~redundancy.channels.groups.ChannelGroup` (higher = the channel matters more); the pruning
criteria, CAR (:class:`redundancy.pruning.car.CARImportance`), the posterior inclusion probability
(:class:`redundancy.bayes.prune.InclusionImportance`) and the scoreboard's channel scores all
implement it or call the per-layer kernels below, so L1, L2 and Taylor are computed in one place.

For unit ``r`` of a group with conv/linear members ``m`` (filters :math:`W_{m,c}`, the output
channels ``c`` of ``r``) and activation points ``p`` (the group's BatchNorms and the members that do
not feed one; output :math:`a_{p,c}(x)` over the ``S`` positions ``s`` of a map):

* :class:`L1`: :math:`\sum_m \sum_c \lVert W_{m,c} \rVert_1`;
  :class:`L2`: :math:`(\sum_m\sum_c \lVert W_{m,c}\rVert_2^2)^{1/2}`;
* :class:`BatchNormScale`: :math:`\sum_b \sum_c |\gamma_{b,c}|` over the group's BatchNorms ``b``
  (0 for a group without one);
* :class:`Activation`: :math:`\sum_p\sum_c \frac1N \sum_i \frac1S \sum_s |a_{p,c,s}(x_i)|`;
* :class:`Taylor` (Molchanov et al. 2017, first order):
  :math:`\sum_p\sum_c \frac1N \sum_i \bigl|\frac1S \sum_s a_{p,c,s}(x_i)\,\partial L_i/\partial a_{p,c,s}\bigr|`
  with :math:`L_i` the example's loss (cross-entropy or squared error).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__ = ["Importance", "L1", "L2", "BatchNormScale", "Taylor"]


@runtime_checkable
class Importance(Protocol):
    """A channel score: ``importance(model, groups, X, y, task=...)`` -> one float per unit.

    Units in the order of ``groups`` and, within a group, of the root index ``r = 0..size-1``;
    higher = the unit matters more. ``X``/``y`` are tensors (``None`` for data-free scores).

    Examples
    --------
    Every score of this module on one network (4 units: the hidden layer with its BatchNorm):

    >>> import torch
    >>> from torch import nn
    >>> from redundancy.channels import BatchNormScale, L1, L2, Taylor, find_groups
    >>> from redundancy.channels.importance import Activation
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).eval()
    >>> X, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    >>> groups = find_groups(net, X[:1])
    >>> scores = [L1(), L2(), BatchNormScale(), Activation(), Taylor()]
    >>> all(isinstance(s, Importance) for s in scores)
    True
    >>> {s.name: s(net, groups, X, y).shape for s in scores}
    {'l1': (4,), 'l2': (4,), 'bn_scale': (4,), 'activation': (4,), 'taylor': (4,)}
    """

    name: str

    def __call__(self, model: nn.Module, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        ...


# --- per-layer kernels (the one place each statistic is computed) ---------------------------------

def _kernel_norms(w: torch.Tensor, p: int) -> torch.Tensor:
    """Per output channel of a kernel ``(out, ...)``: the L1 norm (``p=1``) or the squared L2 norm, in float64."""
    flat = w.detach().double().reshape(w.shape[0], -1)
    return flat.abs().sum(1) if p == 1 else (flat ** 2).sum(1)


def _chan_dim(module: nn.Module, out: torch.Tensor) -> int:
    return out.dim() - 1 if isinstance(module, nn.Linear) or out.dim() == 2 else 1


def _per_channel(module, out: torch.Tensor) -> torch.Tensor:
    """(N, C) mean over every dim but batch and channel."""
    t = out.movedim(_chan_dim(module, out), -1)
    return t.reshape(t.shape[0], -1, t.shape[-1]).mean(1)


def _loss(o: torch.Tensor, yb: torch.Tensor, task: str) -> torch.Tensor:
    """Summed per-example loss: cross-entropy (classification) or squared error."""
    if task == "classification":
        return nn.functional.cross_entropy(o, yb, reduction="sum")
    if o.numel() != yb.numel():
        raise RedundancyError(f"the model gives {o.numel() // max(len(yb), 1)} outputs per example but the "
                              f"regression targets have {yb.numel() // max(len(yb), 1)}; they must match")
    return ((o.reshape(yb.shape) - yb) ** 2).sum()


def _taylor_term(module, a: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    """``sum_i |(1/S) sum_s a_{c,s}(x_i) g_{c,s}(x_i)|`` per channel ``c`` of one recorded output (float64)."""
    if a.dim() < 2:
        raise RedundancyError(f"a layer returned an output of shape {tuple(a.shape)}; the Taylor importance "
                              "needs (batch, channels, ...)")
    g = torch.zeros_like(a) if g is None else g
    t = (a.detach() * g).movedim(_chan_dim(module, a), 1)
    t = t.reshape(t.shape[0], t.shape[1], -1)
    return (t.sum(2).double() / t.shape[2]).abs().sum(0).cpu()


def _record_outputs(model, names):
    """Forward hooks appending every output of the modules ``names`` to ``acts[name]``."""
    mods = dict(model.named_modules())
    acts: dict[str, list] = {}
    handles = [mods[n].register_forward_hook(lambda m, a, o, n=n: acts.setdefault(n, []).append((m, o)))
               for n in names]
    return acts, handles


def _taylor_sums(model, names, batches, task: str) -> dict[str, torch.Tensor | None]:
    """Per module of ``names``: the Taylor terms summed over every example of ``batches`` ((X, y) pairs)
    and over every call of the module; ``None`` for a module the forward never called."""
    sums: dict[str, torch.Tensor | None] = {n: None for n in names}
    acts, handles = _record_outputs(model, names)
    try:
        for xb, yb in batches:
            acts.clear()
            with torch.enable_grad():
                xb = xb.detach().requires_grad_(True) if xb.is_floating_point() else xb
                loss = _loss(model(xb), yb, task)
                calls = [(n, m, o) for n in names for m, o in acts.get(n, [])]
                grads = torch.autograd.grad(loss, [o for _, _, o in calls], allow_unused=True) if calls else []
            for (n, m, o), g in zip(calls, grads):
                term = _taylor_term(m, o, g)
                sums[n] = term if sums[n] is None else sums[n] + term
    finally:
        for h in handles:
            h.remove()
    return sums


def _activation_sums(model, names, batches) -> dict[str, torch.Tensor | float]:
    """Per module of ``names``: ``sum_i (1/S) sum_s |a_{c,s}(x_i)|`` per channel (last call of each forward)."""
    sums: dict = {n: 0.0 for n in names}
    acts, handles = _record_outputs(model, names)
    try:
        for xb, _ in batches:
            acts.clear()
            with torch.no_grad():
                model(xb)
            for n in names:
                m, o = acts[n][-1]
                sums[n] = sums[n] + _per_channel(m, o.detach().double().abs()).sum(0)
    finally:
        for h in handles:
            h.remove()
    return sums


def _batches(X, y, batch_size: int = 512):
    return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(X), batch_size)]


def _collect(groups, stats, stat_points: bool, sqrt: bool) -> np.ndarray:
    """One score per unit: the statistic of every channel of the unit summed over the group's points."""
    vals = []
    for g in groups:
        pts = g.stat_points if stat_points else g.points
        for r in range(g.size):
            tot = 0.0
            for name, per in pts:
                if name in stats and per[r]:
                    tot += float(stats[name][list(per[r])].sum())
            vals.append(np.sqrt(tot) if sqrt else tot)
    return np.asarray(vals, dtype=float)


# --- the importances ----------------------------------------------------------------------------

def _checked(model, groups, X, y, task: str, *, needs: str = ""):
    """The arguments of an importance call, checked once: ``groups`` must belong to ``model`` and, when
    the score ``needs`` data (``"X"`` or ``"Xy"``), ``X``/``y`` must be dense tensors of one length."""
    model = _v.check_module("model", model)
    task = _v.check_choice("task", task, ("classification", "regression"))
    from redundancy.channels.groups import ChannelGroup

    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, ChannelGroup) for g in groups):
        raise RedundancyError(f"groups={_v._short(groups)} is not a list of ChannelGroup; build it with "
                              "redundancy.channels.find_groups(model, example_input)")
    names = dict(model.named_modules())
    for g in groups:
        missing = [n for n in (*g.members, *(n for n, _ in g.points)) if n not in names]
        if missing:
            raise RedundancyError(f"groups do not belong to this model: it has no submodule {missing[0]!r}; "
                                  "build them with redundancy.channels.find_groups(model, example_input)")
    if "X" in needs:
        X = _v.Tensor(min_ndim=1)("X", X)
        if len(X) == 0:
            raise RedundancyError("X has no examples; give at least one")
    if "y" in needs:
        y = _v.Tensor(min_ndim=1)("y", y)
        if len(y) != len(X):
            raise RedundancyError(f"y has {len(y)} entries but X has {len(X)} examples; they must match")
    return model, groups, X, y, task


class _WeightNorm:
    p = 1

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        model, groups, X, y, task = _checked(model, groups, X, y, task)
        mods = dict(model.named_modules())
        stats = {n: _kernel_norms(mods[n].weight, self.p) for g in groups for n in g.members}
        return _collect(groups, stats, False, self.p == 2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class L1(_WeightNorm):
    """Filter L1 norm of every unit (data-free; Li et al. 2017).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from redundancy.channels.groups import find_groups
    >>> net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2)).eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1., -2, 0], [0.5, 0, 0]]))
    >>> L1()(net, find_groups(net, torch.zeros(1, 3))).tolist()
    [3.0, 0.5]
    """

    name = "l1"
    p = 1

    @staticmethod
    def of_kernel(w: torch.Tensor) -> np.ndarray:
        """``a_k = sum |w[k, ...]|`` per output channel of one dense kernel (float64)."""
        return _kernel_norms(w, 1).cpu().numpy()


class L2(_WeightNorm):
    """Filter L2 norm of every unit (data-free)."""

    name = "l2"
    p = 2


class BatchNormScale:
    """``sum |gamma|`` over the unit's BatchNorm channels (Liu et al. 2017, network slimming); 0 without one."""

    name = "bn_scale"

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        model, groups, X, y, task = _checked(model, groups, X, y, task)
        mods = dict(model.named_modules())
        stats = {n: mods[n].weight.detach().double().abs() for g in groups for n, _ in g.points
                 if isinstance(mods[n], nn.modules.batchnorm._BatchNorm) and mods[n].weight is not None}
        return _collect(groups, stats, False, False)

    def __repr__(self) -> str:
        return "BatchNormScale()"


class _ActivationStatistic:
    """A score summed over the examples at each group's activation points, in batches of
    ``batch_size``; a subclass names the data it ``needs`` and its per-module ``_sums``."""

    needs = "X"

    def __init__(self, batch_size: int = 512):
        self.batch_size = batch_size

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        model, groups, X, y, task = _checked(model, groups, X, y, task, needs=self.needs)
        names = sorted({n for g in groups for n, _ in g.stat_points})
        sums = self._sums(model, names, _batches(X, y, self.batch_size), task)
        return _collect(groups, {n: v / len(X) for n, v in sums.items() if v is not None}, True, False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size})"


class Activation(_ActivationStatistic):
    """Mean absolute activation of every unit at its activation points (needs ``X``)."""

    name = "activation"

    @staticmethod
    def _sums(model, names, batches, task):
        return _activation_sums(model, names, batches)


class Taylor(_ActivationStatistic):
    """First-order Taylor ``|activation x gradient|`` of every unit at its activation points (needs ``X``, ``y``).

    The per-module kernel :meth:`of_layers` (the scoreboard's route) sums the terms over the examples
    of every module named, without groups; :class:`Importance` shows a call on groups.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0); net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    >>> X, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    >>> sums = Taylor.of_layers(net, ["0"], [(X, y)], "classification")
    >>> tuple(sums["0"].shape), bool((sums["0"] >= 0).all())
    ((4,), True)
    """

    name = "taylor"
    needs = "Xy"

    @staticmethod
    def of_layers(model, names, batches, task: str) -> dict[str, torch.Tensor | None]:
        """Per module of ``names``: the Taylor terms summed over the examples of ``batches`` (not yet
        divided by their number); ``None`` for a module the forward never called."""
        return _taylor_sums(model, names, batches, task)

    _sums = of_layers
