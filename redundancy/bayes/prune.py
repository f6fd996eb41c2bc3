r"""Turn a fitted spike-and-slab network into a plain, smaller deterministic network.

:func:`prune_by_inclusion` keeps the median-probability model: node ``j`` stays when its posterior
inclusion probability ``p_j > threshold`` (1/2 by default, Barbieri & Berger), input feature ``k``
when ``r_k > threshold``; each kept weight is its posterior mean given inclusion, ``μ``. Removing
a node deletes its row (and bias) in its layer and the matching input columns of the next weight
layer (through a ``Flatten``, the ``H·W`` columns of a channel). Removed input features are
dropped by a :class:`FeatureSelect` in front of the first weight layer, so the pruned network takes
the same inputs as before. With the default threshold the pruned network computes exactly what the
fitted network computes in ``"median"`` mode.

:func:`prune_by_magnitude` is the baseline: the same surgery on a plain network, keeping the
nodes with the largest ``‖w_j‖₂`` (incoming weights and bias).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_int
from redundancy.bayes.convert import _flat_leaves
from redundancy.bayes.plain import (FeatureSelect, InclusionImportance, _is_weight, _params,  # noqa: F401
                                    _plain, _plain_network, _slice_network, _top)
from redundancy.errors import DecisionWarning, RedundancyError
from redundancy.training.diagnostics import Verdict, chance_level, check_decision

__all__ = ["prune_by_inclusion", "prune_by_magnitude", "prune_to_counts"]




@_v.result
class InclusionPruneResult(_v.Result):
    """A pruned plain network and what was removed.

    Attributes
    ----------
    model : nn.Sequential
        The smaller deterministic network (takes the original inputs).
    removed : list of dict
        One entry per removed node or feature: ``layer``, ``kind`` (node/feature), ``channel``,
        ``score`` (PIP or magnitude).
    nodes_before, nodes_after : dict of str to int
        Nodes per gated layer.
    features_before, features_after : int or None
    params_before, params_after : int
    forced : tuple of str
        Layers where no node passed the threshold and the top-scoring one was kept anyway.
    verdict : Verdict or None
        When ``data`` was given: the test-split accuracy (classification; loss = mean squared error
        for regression) of the original deterministic network (all nodes, weights ``μ``) against the
        pruned one before and after fine-tuning, chance (majority rate) and the budget
        ``max_accuracy_drop`` (:func:`redundancy.training.check_decision`). ``None`` without data.
    """

    model: nn.Module = field(compare=False, metadata=_v.NOT_EXPORTED)
    removed: list[dict[str, Any]]
    nodes_before: dict[str, int]
    nodes_after: dict[str, int]
    features_before: int | None
    features_after: int | None
    params_before: int
    params_after: int
    criterion: str
    threshold: float | None
    forced: tuple[str, ...] = ()
    fine_tune: dict[str, Any] | None = None
    verdict: Verdict | None = None

    def to_pandas(self):
        """What was removed: one row per node or feature."""
        import pandas as pd

        return pd.DataFrame(self.removed, columns=["layer", "kind", "channel", "score"])

    def __repr__(self) -> str:
        nodes = ", ".join(f"{n}: {self.nodes_before[n]}->{a}" for n, a in self.nodes_after.items())
        feats = "" if self.features_before is None else f", features {self.features_before}->{self.features_after}"
        v = self.verdict
        check = ", not checked on data" if v is None else (
            f", pruned model's test {v.metric} {v.original:.4g}->{v.final:.4g} (chance {v.chance:.3g}): {v.verdict}")
        return (f"InclusionPruneResult({self.criterion}, nodes [{nodes}]{feats}, params {self.params_before}->"
                f"{self.params_after}{check})")


def _count(m: nn.Module) -> int:
    return int(sum(p.numel() for p in m.parameters()))


def _net_count(net) -> int:
    """Parameters of the deterministic network behind a spike-and-slab net (weights and biases)."""
    return int(sum(sum(t.numel() for t in _params(m) if t is not None) for _, m in net.weight_layers()))


def _assemble(modules, names, scores, keep, feat_score, feat_keep, input_shape, criterion, threshold, forced,
              params_before) -> InclusionPruneResult:
    model = _slice_network(modules, keep, input_shape, feat_keep)
    wnames = [n for n, m in zip(names, modules) if _is_weight(m)]
    removed, before, after = [], {}, {}
    for name, s, k in zip(wnames, scores, keep):
        if s is None:
            continue
        kept = set(range(len(s))) if k is None else set(k.tolist())
        before[name], after[name] = len(s), len(kept)
        removed += [{"layer": name, "kind": "node", "channel": j, "score": float(s[j])}
                    for j in range(len(s)) if j not in kept]
    if feat_score is not None:
        kept = set(feat_keep.tolist())
        removed += [{"layer": wnames[0], "kind": "feature", "channel": j, "score": float(feat_score[j])}
                    for j in range(len(feat_score)) if j not in kept]
    return InclusionPruneResult(model=model, removed=removed, nodes_before=before, nodes_after=after,
                                features_before=None if feat_score is None else len(feat_score),
                                features_after=None if feat_score is None else len(feat_keep),
                                params_before=params_before, params_after=_count(model), criterion=criterion,
                                threshold=threshold, forced=tuple(forced))


def _score(model: nn.Module, ds, device) -> float:
    from redundancy.training import evaluate

    ev = evaluate(model, ds, device=device)
    return ev.accuracy if ds.task == "classification" else ev.loss


def _chance(ds) -> float:
    if ds.task == "classification":
        return chance_level(ds.y_test)
    y = np.asarray(ds.y_test, dtype=np.float64)
    return float(((y - y.mean(0)) ** 2).mean())  # MSE of predicting the test mean


def _warn_forced(res: InclusionPruneResult, what: str) -> None:
    if res.forced:
        warnings.warn(f"{what}: no node of {', '.join(res.forced)} passed the threshold (the median model is "
                      "empty there); the top-scoring node was kept so the network still runs, but it is collapsed",
                      DecisionWarning, stacklevel=5)


def _decide(res: InclusionPruneResult, original: nn.Module | None, data, epochs, budget, kw,
            what: str) -> InclusionPruneResult:
    """Fine-tune (``epochs > 0``) and judge the pruned network against ``original`` on ``data``'s test split."""
    _warn_forced(res, what)
    if data is None:
        return res
    from redundancy.data import as_dataset

    ds = as_dataset(data)
    original = original if original is not None else res.model
    orig, decided = _score(original, ds, kw["device"]), _score(res.model, ds, kw["device"])
    res = _fine_tune(res, ds, epochs, kw)
    tuned = _score(res.model, ds, kw["device"]) if res.fine_tune is not None else None
    clf = ds.task == "classification"
    verdict = check_decision(metric="accuracy" if clf else "loss", original=orig, decided=decided, finetuned=tuned,
                             chance=_chance(ds), budget=budget if clf else None, what=f"the pruned network ({what})", stacklevel=5)
    return dataclasses.replace(res, verdict=verdict)


def _fine_tune(res: InclusionPruneResult, data, epochs, kw) -> InclusionPruneResult:
    if data is None or epochs == 0:
        return res
    from redundancy.training import train

    tr = train(res.model, data, epochs=epochs, desc="fine-tune", **kw)
    res.model.eval()
    info = {"epochs": epochs, "final_loss": tr.losses[-1], "converged": bool(tr.convergence.converged),
            "epochs_run": int(tr.convergence.epochs_run), **{k: str(v) for k, v in kw.items()}}
    return dataclasses.replace(res, fine_tune=info)


def _fitted_result(name: str, value: Any):
    """A :class:`~redundancy.bayes.result.SpikeSlabResult` with its fitted network and a PIP per gated node."""
    from redundancy.bayes.convert import SpikeSlabNet
    from redundancy.bayes.result import SpikeSlabResult

    if not isinstance(value, SpikeSlabResult) or not isinstance(value.net, SpikeSlabNet):
        raise RedundancyError(f"{name}={_v._short(value)} is not allowed; {name} must be a SpikeSlabResult from "
                              "fit_spike_slab (with its fitted net)")
    for lname, m in value.net.weight_layers():
        if m.node_logit is None:
            continue
        for field_name in ("node_pip", "node_magnitude"):
            s = getattr(value, field_name).get(lname) if isinstance(getattr(value, field_name), dict) else None
            if s is None or np.shape(s) != (m.node_logit.shape[0],) or not np.isfinite(s).all():
                raise RedundancyError(f"{name}.{field_name} has no {m.node_logit.shape[0]} finite values for layer "
                                      f"{lname!r}; the result does not match its net")
    return value


_BUDGET = _v.NoneOr(_v.Float(0.0, 1.0))


def _data(name: str, value: Any):
    from redundancy.data import as_dataset

    return None if value is None else as_dataset(value)


@_v.validate_params({"result": _fitted_result, "threshold": _v.Float(0.0, 1.0, hi_open=True),
                     "fine_tune_epochs": _v.Int(0, 100_000), "data": _data, "max_accuracy_drop": _BUDGET})
def prune_by_inclusion(result, threshold: float = 0.5, *, data=None, max_accuracy_drop: float | None = 0.05,
                       fine_tune_epochs: int = 0, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                       device: Any = "cpu", progress: bool = False) -> InclusionPruneResult:
    """Keep the nodes and input features whose PIP exceeds ``threshold``; weights = posterior means ``μ``.

    Parameters
    ----------
    result : SpikeSlabResult
    threshold : float in [0, 1)
        Nodes and features with PIP ``<= threshold`` are removed. When none of a layer's nodes pass,
        the one with the largest PIP is kept (listed in ``forced``) and a
        :class:`~redundancy.errors.DecisionWarning` says the network collapsed.
    data : Dataset or arrays, optional
        Held-out data: the pruned network is scored on its test split against the unpruned
        deterministic network (weights ``μ``), giving ``result.verdict``; also the fine-tuning data.
    max_accuracy_drop : float or None
        The accuracy budget: the largest allowed drop (as a fraction, 0.05 = 5 points) of the
        handed-back model (after fine-tuning when there was some); past it, or near chance, a
        :class:`~redundancy.errors.DecisionWarning` (classification only).
    fine_tune_epochs, lr, batch_size, seed, device, progress
        Optional fine-tuning of the pruned network with :func:`redundancy.training.train`.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.bayes import fit_spike_slab
    >>> X = np.random.default_rng(0).normal(size=(200, 5)).astype("float32")
    >>> data = (X, (X[:, 0] > 0).astype("int64"))
    >>> pruned = prune_by_inclusion(fit_spike_slab((6,), data, n_samples=2), data=data)
    >>> pruned.params_after < pruned.params_before, pruned.verdict.verdict
    (True, 'ok')
    """
    net = result.net
    modules = list(net.body)
    keep, scores, forced = [], [], []
    for name, m in net.weight_layers():
        if m.node_logit is None:
            keep.append(None)
            scores.append(None)
            continue
        s = result.node_pip[name]
        idx = np.flatnonzero(s > threshold)
        if len(idx) == 0:
            idx, _ = np.array([int(np.argmax(s))]), forced.append(name)
        keep.append(torch.as_tensor(idx, dtype=torch.long))
        scores.append(s)
    fs, fk = result.feature_pip, None
    if fs is not None:
        idx = np.flatnonzero(fs > threshold)
        if len(idx) == 0:
            idx, _ = np.array([int(np.argmax(fs))]), forced.append("<features>")
        fk = torch.as_tensor(idx, dtype=torch.long)
    res = _assemble(modules, net.names, scores, keep, fs, fk, net.input_shape, "pip", float(threshold), forced,
                    _net_count(net))
    original = None if data is None else _plain_network(modules)
    return _decide(res, original, data, fine_tune_epochs, max_accuracy_drop,
                   dict(lr=lr, batch_size=batch_size, seed=seed, device=device, progress=progress), "prune_by_inclusion")


def _gated(result) -> dict[str, int]:
    return {n: int(m.node_logit.shape[0]) for n, m in result.net.weight_layers() if m.node_logit is not None}


def _check_counts(name: str, counts: Any, sizes: dict[str, int]) -> dict[str, int]:
    if not isinstance(counts, dict):
        raise RedundancyError(f"{name}={_v._short(counts)} is not allowed; give a dict layer name -> nodes kept, "
                              f"layers {sorted(sizes)}")
    unknown = [k for k in counts if k not in sizes]
    if unknown:
        raise RedundancyError(f"{name} names {_v._short(unknown)}, which are not prunable weight layers; choose "
                              f"among {sorted(sizes)}")
    return {k: check_int(f"{name}[{k!r}]", v, min_value=1, max_value=sizes[k]) for k, v in counts.items()}


@_v.validate_params({"result": _fitted_result, "order": _v.Choice("pip", "magnitude"), "data": _data,
                     "max_accuracy_drop": _BUDGET})
def prune_to_counts(result, counts: dict[str, int], *, order: str = "pip", data=None,
                    max_accuracy_drop: float | None = 0.05, device: Any = "cpu") -> InclusionPruneResult:
    """Keep, in each gated layer of a fitted network, the ``counts[layer]`` nodes with the largest PIP
    (``order="pip"``) or the largest ``‖μ_j‖₂`` (``order="magnitude"``); features are not removed.

    Parameters
    ----------
    result : SpikeSlabResult
        From :func:`~redundancy.bayes.fit_spike_slab` (its net is not changed).
    counts : dict of str to int
        Nodes to keep per gated layer (names as in ``result.layers``), each in ``[1, n_nodes]``;
        a layer left out keeps all its nodes.
    order : {"pip", "magnitude"}
    data, max_accuracy_drop, device
        Held-out data and accuracy budget: as in :func:`prune_by_inclusion` (``verdict``).

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.bayes import fit_spike_slab
    >>> X = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    >>> res = fit_spike_slab((6,), (X, (X[:, 0] > 0).astype("int64")), epochs=2, n_samples=2)
    >>> prune_to_counts(res, {"1": 2}, order="magnitude").nodes_after
    {'1': 2}
    """
    res = _prune_to_counts(result, _check_counts("counts", counts, _gated(result)), order)
    original = None if data is None else _plain_network(list(result.net.body))
    return _decide(res, original, data, 0, max_accuracy_drop, {"device": device}, "prune_to_counts")


def _prune_to_counts(result, counts: dict[str, int], order: str) -> InclusionPruneResult:
    """The kernel of :func:`prune_to_counts` (``counts`` checked)."""
    net = result.net
    keep, scores = [], []
    for name, m in net.weight_layers():
        if m.node_logit is None:
            keep.append(None)
            scores.append(None)
            continue
        s = result.node_pip[name] if order == "pip" else result.node_magnitude[name]
        keep.append(_top(np.asarray(s, dtype=np.float64), counts.get(name, len(s))))
        scores.append(s)
    return _assemble(list(net.body), net.names, scores, keep, None, None, net.input_shape, order, None, [],
                     _net_count(net))


@_v.validate_params({"model": _v.Module(finite=True), "input_shape": _v.Shape(1),
                     "fine_tune_epochs": _v.Int(0, 100_000), "data": _data, "max_accuracy_drop": _BUDGET})
def prune_by_magnitude(model: nn.Module, counts: dict[str, int], input_shape, *, data=None,
                       max_accuracy_drop: float | None = 0.05, fine_tune_epochs: int = 0, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                       device: Any = "cpu", progress: bool = False) -> InclusionPruneResult:
    """Baseline: keep, in each named hidden weight layer of a plain ``nn.Sequential``, the
    ``counts[layer]`` nodes with the largest ``‖w_j‖₂`` (weights and bias); other layers keep all.

    ``counts`` maps hidden weight layers (every Linear/Conv but the last, whose outputs are the
    classes or targets) to a number of nodes in ``[1, n_nodes]``; ``input_shape`` is one example's
    shape (the model must run on it); the model's weights must be finite and are not changed.
    With ``data`` the pruned network is judged against ``model`` on its test split (``verdict``,
    budget ``max_accuracy_drop``, as in :func:`prune_by_inclusion`) and fine-tuned on it when
    ``fine_tune_epochs > 0``.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    >>> prune_by_magnitude(net, {"0": 3}, (4,)).nodes_after
    {'0': 3}
    """
    leaves = _flat_leaves(model)
    names, modules = [n for n, _ in leaves], [m for _, m in leaves]
    hidden = [(n, m) for n, m in leaves if _is_weight(m)][:-1]  # the last layer's outputs are the classes
    counts = _check_counts("counts", counts, {n: int(_params(m)[0].shape[0]) for n, m in hidden})
    keep, scores = [], []
    for n, m in leaves:
        if not _is_weight(m):
            continue
        if n not in counts:
            keep.append(None)
            scores.append(None)
            continue
        W, b = _params(m)
        sq = (W.reshape(W.shape[0], -1) ** 2).sum(1) + (0 if b is None else b ** 2)
        s = sq.sqrt().cpu().double().numpy()
        keep.append(_top(s, counts[n]))
        scores.append(s)
    assemble = _v.model_errors(f"prune_by_magnitude: the model on input_shape={tuple(input_shape)}")(_assemble)
    res = assemble(modules, names, scores, keep, None, None, tuple(input_shape), "magnitude", None, [], _count(model))
    return _decide(res, model, data, fine_tune_epochs, max_accuracy_drop,
                   dict(lr=lr, batch_size=batch_size, seed=seed, device=device, progress=progress), "prune_by_magnitude")
