r"""Classification Accuracy Reduction (CAR) of every channel, class-wise CAR, RAR, layer curves.

Abbasi-Asl & Yu (arXiv 1705.07356) score filter ``i`` of layer ``L`` by what the network loses
without it:

.. math::  \mathrm{CAR}(i, L) = Q(N) - Q(N_{-(i,L)}),

with ``Q`` the accuracy (CAR), :math:`R^2` for regression (RAR), minus the loss, or a caller's
metric (higher is better). "Without it" = the channel's output zeroed after its BatchNorm (see
:mod:`redundancy.channels.groups`), which is what deleting the filter and the next layer's matching
input computes. Class-wise CAR is the same drop of the accuracy on the examples of each class.

Layer redundancy curve: remove the channels of one layer in increasing CAR order; with
:math:`Q_r` the quality after ``r`` removals (``r = 0..C``) and the normalised curve
:math:`u_r = \mathrm{clip}((Q_r - Q_C)/(Q_0 - Q_C), 0, 1)` against the fraction kept
``(C - r)/C``, the layer's CAR redundancy is the trapezoidal area under ``u`` (1 when removing the
whole layer costs nothing): 1 - 1/(2C) when all but the last channel are free, about 1/(2C) when the
first removal already costs everything.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.channels._checks import _check_layers, _check_removed
from redundancy.channels.groups import ChannelGroup, _check_groups, find_groups
from redundancy.pruning.masked import _check_metric, _variant_quality, as_tensors

__all__ = ["CARResult", "car_scores", "layer_redundancy"]

_MAX_CURVE = 1_000_000


@_v.validate_params({"q": _v.Array(min_ndim=1, max_ndim=1, min_size=1, max_numel=_MAX_CURVE)})
def layer_redundancy(q: np.ndarray) -> float:
    """Normalised area under one layer's curve ``q[r]`` = quality after ``r`` removals, ``r = 0..C``.

    With ``u_r = clip((q_r - q_C) / (q_0 - q_C), 0, 1)`` against the fraction kept ``(C - r)/C``, the
    result is the trapezoidal area ``sum_r (u_r + u_{r+1}) / (2C)`` in ``[0, 1]``; 1 when ``C = 0`` or
    when removing every channel costs nothing (``q_0 <= q_C``).

    Parameters
    ----------
    q : array-like of shape (C + 1,)
        Finite qualities (higher = better), at most 1,000,000 entries; only their ratios matter, so
        any finite scale is allowed.

    Examples
    --------
    >>> layer_redundancy(np.array([0.9, 0.9, 0.9, 0.1]))  # two of three channels are free
    0.8333333333333334
    >>> layer_redundancy(np.array([0.9, 0.1, 0.1, 0.1]))
    0.16666666666666666
    """
    return _layer_redundancy(q)


def _layer_redundancy(q: np.ndarray) -> float:
    scale = float(np.max(np.abs(q)))
    q = q / scale if scale > 0 else q  # the normalised curve is scale-free; no overflow of q[0] - q[-1]
    C = len(q) - 1
    span = q[0] - q[-1]
    if C < 1 or not span > 0:
        return 1.0
    u = np.clip((q - q[-1]) / span, 0.0, 1.0)[::-1]  # against kept = 0..C
    return float(np.sum((u[1:] + u[:-1]) / 2) / C)


@_v.result
class CARResult(_v.Result):
    """CAR of every scored channel (one row per unit: a channel with its coupled partners).

    Attributes
    ----------
    layer, channel, group, root : numpy.ndarray
        Per unit: label layer name, its output channel, group index, root index in the group.
    car : numpy.ndarray
        ``Q(N) - Q(N without the unit)``: higher = the channel matters more.
    base : float
        ``Q(N)``.
    metric : str
        ``"accuracy"``, ``"loss"`` (then CAR = increase of the loss), ``"r2"`` (RAR) or the callable's name.
    classwise : numpy.ndarray or None
        ``(units, classes)`` per-class accuracy drop.
    base_per_class : numpy.ndarray or None
    curves : dict
        Label layer -> ``(order, q)``: removal order (root indices by increasing CAR) and the quality
        after each number of removals ``0..C``.
    redundancy : dict
        Label layer -> normalised area under its curve (see :func:`layer_redundancy`).
    """

    layer: np.ndarray = field(repr=False)
    channel: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    root: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    car: np.ndarray = field(repr=False)
    base: float
    metric: str
    split: str
    n_examples: int
    task: str
    seed: int
    classwise: np.ndarray | None = field(default=None, repr=False, metadata=_v.NOT_EXPORTED)
    base_per_class: np.ndarray | None = field(default=None, repr=False, metadata=_v.NOT_EXPORTED)
    curves: dict = field(default_factory=dict, repr=False, metadata=_v.NOT_EXPORTED)
    redundancy: dict = field(default_factory=dict, repr=False)
    groups: tuple[ChannelGroup, ...] = field(default=(), repr=False, metadata=_v.NOT_EXPORTED)

    def __repr__(self) -> str:
        return (f"CARResult(units={len(self.car)}, layers={len(self.groups)}, metric={self.metric!r}, "
                f"base={self.base:.4g}, zero_car={int(np.sum(self.car <= 0))})")

    @property
    def most_affected_class(self) -> np.ndarray | None:
        """Per unit, the class whose accuracy drops most without it."""
        return None if self.classwise is None else np.argmax(self.classwise, axis=1)

    @property
    def least_affected_class(self) -> np.ndarray | None:
        """Per unit, the class whose accuracy drops least (or rises most) without it."""
        return None if self.classwise is None else np.argmin(self.classwise, axis=1)

    def channel_table(self):
        """One row per unit: ``layer``, ``channel``, ``importance`` (= CAR), ``group``, ``root``,
        and with class-wise CAR ``most_affected_class``, ``least_affected_class``, ``max_class_car``."""
        import pandas as pd

        df = pd.DataFrame({"layer": self.layer, "channel": self.channel.astype(int), "importance": self.car,
                           "car": self.car, "group": self.group.astype(int), "root": self.root.astype(int)})
        if self.classwise is not None:
            df["most_affected_class"] = self.most_affected_class
            df["least_affected_class"] = self.least_affected_class
            df["max_class_car"] = self.classwise.max(axis=1)
        return df

    def layer_table(self):
        """One row per scored layer: ``layer``, ``redundancy`` (curve area), ``channels``, ``zero_car``
        (units with CAR <= 0), ``mean_car``, ``max_car``, ``members`` (coupled layers)."""
        import pandas as pd

        rows = []
        for g in self.groups:
            sel = self.group == g.index
            rows.append({"layer": g.layer, "redundancy": self.redundancy.get(g.layer, float("nan")),
                         "channels": int(sel.sum()), "zero_car": int(np.sum(self.car[sel] <= 0)),
                         "mean_car": float(self.car[sel].mean()), "max_car": float(self.car[sel].max()),
                         "members": ",".join(g.members)})
        return pd.DataFrame(rows)

    def to_pandas(self):
        """The channel table."""
        return self.channel_table()

    def _extra_dict(self) -> dict[str, Any]:
        d = {"curves": {k: {"order": [int(i) for i in o], "quality": [float(v) for v in q]}
                        for k, (o, q) in self.curves.items()}}
        if self.classwise is not None:
            d["classwise"] = self.classwise.tolist()
            d["base_per_class"] = self.base_per_class.tolist()
        return d


def _example(X: torch.Tensor) -> torch.Tensor:
    return X[:1]


@_v.validate_params({"model": _v.Module(materialised=False), "layers": _v.Check(_check_layers),
                     "classwise": _v.Bool(), "curves": _v.Bool(), "split": _v.Choice("test", "train"),
                     "batch_masks": _v.Int(1, 4096), "batch_size": _v.Int(1, 1_000_000), "seed": _v.Int(0),
                     "replay": _v.Bool(), "progress": _v.Bool()})
@_v.model_errors("car_scores")
def car_scores(model: nn.Module, data: Any, layers=None, *, metric=None, classwise: bool = False,
               curves: bool = True, split: str = "test", max_examples: int | None = None,
               batch_masks: int = 32, batch_size: int = 4096, removed=(), groups=None, seed: int = 0,
               device: Any = "cpu", replay: bool = True, progress: bool = False) -> CARResult:
    """CAR (or RAR) of every output channel of the chosen conv/linear layers.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated in eval mode, never changed.
    data : Dataset or arrays
    layers : sequence of str, optional
        Conv/linear module names (default: all but the classifier). A layer coupled to others (a
        residual sum) is scored as its whole group.
    metric : {"accuracy", "loss", "r2"} or callable, optional
        Default accuracy (classification) or R² (regression, RAR). ``"loss"``: CAR is the increase of
        the mean loss. A callable ``metric(outputs, targets) -> float`` must grow with quality.
    classwise : bool
        Also the per-class accuracy drop (classification).
    curves : bool
        Also each layer's redundancy curve in CAR order (one more masked variant per channel).
    split : {"test", "train"}
    max_examples : int, optional
        Score on a seeded subset of this many examples.
    batch_masks : int
        Masked variants per forward pass (the repeated batch); ``batch_size`` = rows per pass.
    removed : iterable of (group, root)
        Units already removed (the reference is the model without them; they are not scored).
    groups : list of ChannelGroup, optional
        Precomputed :func:`~redundancy.channels.groups.find_groups` (``layers`` is then ignored).
    seed : int
    device : str or torch.device
    replay : bool
        Reuse the unmasked outputs of the layers before the masked one (see
        :mod:`redundancy.pruning.masked`); ``False`` runs every variant through
        the whole network (same numbers, slower).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> y = net(torch.as_tensor(X)).argmax(1).numpy()
    >>> res = car_scores(net, (X, y))
    >>> res.base, res.channel_table()[["layer", "channel", "importance"]].shape
    (1.0, (6, 3))
    """
    ds = as_dataset(data)
    metric = _check_metric(metric, ds.task)
    if classwise and ds.task != "classification":
        raise RedundancyError("classwise=True needs a classification data set (integer labels)")
    with _v.guard_model(model):
        from redundancy.training import check_device

        dev = check_device(device)
        model.to(dev).eval()
        X, y = as_tensors(ds, split, model, dev, max_examples, seed)
        groups = find_groups(model, _example(X), layers) if groups is None else _check_groups("groups", groups, model)
        gone = set(_check_removed("removed", removed, groups))
        return _car(model, ds, X, y, groups, gone, metric=metric, classwise=classwise, curves=curves, split=split,
                    batch_masks=batch_masks, batch_size=batch_size, seed=seed, replay=replay, progress=progress)


def _car(model, ds, X, y, groups, gone: set, *, metric, classwise=False, curves=True, split="train", batch_masks=32,
         batch_size=4096, seed=0, replay=True, progress=False) -> CARResult:
    """The CAR kernel (unchecked): ``model`` in eval mode on its device, ``X``/``y`` tensors of ``split``,
    ``gone`` the units already removed."""
    from tqdm.auto import tqdm

    units = [(g.index, r) for g in groups for r in range(g.size) if (g.index, r) not in gone]
    if not units:
        raise RedundancyError("no channel is left to score")
    variants = [tuple(sorted(gone | {u})) for u in units]
    bar = tqdm(total=len(units) * (2 if curves else 1) + 1, desc="CAR", disable=not progress, leave=False)
    kw = dict(metric=metric, task=ds.task, n_classes=ds.n_classes, batch_masks=batch_masks, batch_size=batch_size,
              replay=bool(replay), progress=bar)
    base, q, base_pc, pcs = _variant_quality(model, groups, variants, X, y, **kw)
    car = base - q
    curve_d, red = _curves(model, groups, units, car, gone, base, X, y, kw) if curves else ({}, {})
    bar.close()
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    lab = {g.index: g for g in groups}
    return CARResult(layer=np.array([lab[g].layer for g, _ in units], dtype=object),
                     channel=np.array([lab[g].channels[r] for g, r in units]), group=np.array([g for g, _ in units]),
                     root=np.array([r for _, r in units]), car=np.asarray(car, dtype=float), base=float(base),
                     metric=name, split=split, n_examples=int(len(y)), task=ds.task, seed=seed,
                     classwise=(base_pc[None, :] - pcs) if classwise else None,
                     base_per_class=base_pc if classwise else None, curves=curve_d, redundancy=red,
                     groups=tuple(groups))


def _curves(model, groups, units, car, gone, base, X, y, kw):
    """Each layer's redundancy curve: its channels removed one by one in increasing CAR order."""
    seqs, spans = [], []
    for g in groups:
        idx = [i for i, u in enumerate(units) if u[0] == g.index]
        order = [units[i][1] for i in sorted(idx, key=lambda i: (car[i], units[i][1]))]
        spans.append((g, order, len(seqs)))
        for r in range(1, len(order) + 1):
            seqs.append(tuple(sorted(gone | {(g.index, o) for o in order[:r]})))
    _, cq, _, _ = _variant_quality(model, groups, seqs, X, y, **kw)
    curve_d, red = {}, {}
    for g, order, at in spans:
        qs = np.concatenate([[base], cq[at:at + len(order)]])
        curve_d[g.layer] = (np.asarray(order), qs)
        red[g.layer] = _layer_redundancy(qs)
    return curve_d, red


class CARImportance:
    """CAR as a channel :class:`~redundancy.channels.Importance`: the quality drop without each unit
    (``X``, ``y`` the scoring tensors; ``removed``: units already gone, scored as 0)."""

    name = "car"

    def __init__(self, metric="accuracy", *, removed=(), batch_masks: int = 32, n_classes: int = 0):
        self.metric, self.removed, self.batch_masks, self.n_classes = metric, tuple(removed), batch_masks, n_classes

    def __call__(self, model, groups, X=None, y=None, *, task: str = "classification") -> np.ndarray:
        gone = set(self.removed)
        units = [(g.index, r) for g in groups for r in range(g.size) if (g.index, r) not in gone]
        base, q, _, _ = _variant_quality(model, groups, [tuple(sorted(gone | {u})) for u in units], X, y,
                                         metric=self.metric, task=task, n_classes=self.n_classes,
                                         batch_masks=self.batch_masks)
        drop = dict(zip(units, base - q))
        return np.asarray([drop.get((g.index, r), 0.0) for g in groups for r in range(g.size)], dtype=float)
