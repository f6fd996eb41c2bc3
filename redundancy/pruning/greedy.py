"""Greedy CAR pruning (and baseline pruning through the same path), physical removal, fine-tuning.

CAR (Abbasi-Asl & Yu): repeat until the target is met: score every remaining unit by CAR *given
what is already removed*, remove the ``per_step`` units with the smallest CAR (ties: lower group,
then lower channel). ``recompute=False`` (and every baseline criterion) ranks once and removes the
lowest-ranked units. Each group keeps at least one channel.

* ``scope="network"``: one ranking over all scored layers; baseline scores are first divided by
  each layer's L2 norm of scores (Molchanov et al.'s layer normalisation) so that layers of
  different widths compare; CAR is an accuracy drop and needs no normalisation.
* ``scope="layer"``: the target applies to every layer separately (each loses ``target`` of its
  channels).

The chosen units are then deleted with Torch-Pruning (:func:`~redundancy.channels.removal.prune_units`,
checked against the masked model), and the smaller model is optionally fine-tuned with
:func:`redundancy.training.train`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_int
from redundancy.counts import count_macs, parameter_count
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.pruning.baselines import BASELINES, _scores
from redundancy.pruning.budget import DEFAULT_MAX_ACCURACY_DROP, Budget, held_out_scores, verdict, warn_target
from redundancy.pruning.car import _car
from redundancy.channels.groups import find_groups
from redundancy.channels.removal import prune_units
from redundancy.pruning.masked import _check_metric, _variant_quality, as_tensors
from redundancy.pruning.result import PruneResult

__all__ = ["PruneResult", "prune", "car_prune", "finetuned_curve"]

CRITERIA = ("car",) + BASELINES


def _n_remove(target, groups, scope: str):
    """Units to remove: a list (per group) for scope "layer", a total for "network"."""
    sizes = [g.size for g in groups]
    if target is None:
        return [s - 1 for s in sizes] if scope == "layer" else sum(s - 1 for s in sizes)
    if isinstance(target, numbers.Real) and not isinstance(target, (bool, numbers.Integral)):
        if not 0 < float(target) < 1:
            raise RedundancyError(f"target={target!r} is not allowed; a fraction must be in (0, 1)")
        q = [int(round(float(target) * s)) for s in sizes]
        if scope == "network":
            q = int(round(float(target) * sum(sizes)))
    else:
        n = check_int("target", target, min_value=0)
        q = [n] * len(sizes) if scope == "layer" else n
    cap = [s - 1 for s in sizes]
    if scope == "layer":
        for g, k in zip(groups, q):
            if k > g.size - 1:
                raise RedundancyError(f"target={target!r} would remove {k} of the {g.size} channels of layer "
                                      f"{g.layer!r}; every layer keeps at least one")
        return q
    if q > sum(cap):
        raise RedundancyError(f"target={target!r} would remove {q} channels; at most {sum(cap)} can go "
                              "(every layer keeps one)")
    return q


def _pick(order, removed, groups, quota, scope, k):
    """The next ``k`` units of ``order`` that the quota allows."""
    left = {g.index: g.size - sum(1 for u in removed if u[0] == g.index) for g in groups}
    done = {g.index: g.size - left[g.index] for g in groups}
    out = []
    for u in order:
        if len(out) >= k:
            break
        if u in removed or left[u[0]] <= 1:
            continue
        if scope == "layer" and done[u[0]] >= quota[u[0]]:
            continue
        out.append(u)
        left[u[0]] -= 1
        done[u[0]] += 1
    return out


def _total(quota, scope):
    return sum(quota) if scope == "layer" else quota


#: the declared constraints of :func:`prune`'s options (shared with :func:`finetuned_curve`)
_PRUNE_SPEC = {"model": _v.Module(materialised=False), "criterion": _v.Choice(*CRITERIA),
               "scope": _v.Choice("network", "layer"), "per_step": _v.Int(1), "recompute": _v.Bool(),
               "finetune_epochs": _v.Int(0, 10_000), "seed": _v.Int(0), "progress": _v.Bool(),
               "max_accuracy_drop": _v.NoneOr(_v.Float(0.0, 1.0))}


@_v.validate_params(_PRUNE_SPEC)
@_v.model_errors("prune")
def prune(model: nn.Module, data: Any, *, criterion: str = "car", target=0.5, layers=None, scope: str = "network",
          per_step: int = 1, recompute: bool = True, min_quality: float | None = None,
          max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP, metric=None, split: str = "train",
          max_examples: int | None = None, finetune_epochs: int = 0, finetune_kw: dict | None = None,
          batch_masks: int = 32, seed: int = 0, device: Any = "cpu", progress: bool = False) -> PruneResult:
    """Remove channels by ``criterion`` and return the physically smaller model.

    Parameters
    ----------
    model : torch.nn.Module
        Not changed; the pruned model is a copy.
    data : Dataset or arrays
        Units are scored on ``split`` (default the training split, so that the test accuracy
        reported is not the one the selection saw); accuracies are reported on the test split.
    criterion : {"car", "l1", "l2", "random", "activation", "taylor"}
    target : float in (0, 1), int or None
        Fraction or number of channels to remove (per layer with ``scope="layer"``); ``None``:
        as many as ``min_quality`` allows.
    per_step : int
        CAR units removed per greedy step (``b``).
    recompute : bool
        Recompute CAR after every step (greedy) or rank once.
    min_quality : float, optional
        Stop before the scoring metric (on ``split``, masked) would fall below this.
    max_accuracy_drop : float in [0, 1] or None
        The accuracy budget (classification): stop before the removal that would make the held-out
        accuracy (test split; training split when there is none) of the masked model drop by more
        than this below the original's; default 0.05. When the target cannot be met within it, the
        result has ``target_met=False`` and a :class:`~redundancy.errors.DecisionWarning` says so.
        ``None``: prune to the target whatever it costs (the verdict still judges the result).
    finetune_epochs : int
        Fine-tune the pruned model for at most this many epochs (``finetune_kw`` goes to ``train``;
        its stopping-rule evidence is ``result.convergence``, and a ConvergenceWarning is emitted
        when the cap runs out first).

    Returns
    -------
    PruneResult
        With ``verdict``: a :class:`~redundancy.errors.DecisionWarning` is emitted when the handed-back
        model is near chance or past the budget.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> y = net(torch.as_tensor(X)).argmax(1).numpy()
    >>> res = prune(net, (X, y), target=0.5, max_accuracy_drop=0.2)
    >>> res.channels_after, res.model[0].out_features, res.verdict.verdict
    ({'0': 4}, 4, 'ok')
    """
    opts = _prune_options(model, data, criterion=criterion, target=target, scope=scope, per_step=per_step,
                          finetune_epochs=finetune_epochs, seed=seed, metric=metric, min_quality=min_quality,
                          max_accuracy_drop=max_accuracy_drop)
    with _v.guard_model(model):
        return _prune(model, layers=layers, recompute=recompute, split=split, max_examples=max_examples,
                      finetune_kw=finetune_kw, batch_masks=batch_masks, device=device, progress=progress, **opts)


def _prune_options(model, data, *, criterion, target, scope, per_step, finetune_epochs, seed, metric, min_quality,
                   max_accuracy_drop=None):
    """The options of :func:`prune` that depend on each other or on the data (the others are declared)."""
    ds = as_dataset(data)
    opts = dict(ds=ds, criterion=criterion, scope=scope, per_step=per_step, finetune_epochs=finetune_epochs,
                seed=seed, metric=_check_metric(metric, ds.task), target=target, min_quality=min_quality,
                max_accuracy_drop=max_accuracy_drop)
    if target is None and min_quality is None:
        raise RedundancyError("give a target (fraction or count), a min_quality floor, or both")
    return opts


def _prune(model, *, ds, criterion, target, layers, scope, per_step, recompute, min_quality, metric, split,
           max_examples, finetune_epochs, finetune_kw, batch_masks, seed, device, progress, max_accuracy_drop=None,
           warn=True) -> PruneResult:
    """The pruning kernel (options checked by :func:`_prune_options`)."""
    from tqdm.auto import tqdm

    from redundancy.training import check_device

    dev = check_device(device)
    model.to(dev).eval()
    X, y = as_tensors(ds, split, model, dev, max_examples, seed)
    groups = find_groups(model, X[:1], layers)
    quota = _n_remove(target, groups, scope)
    qkw = dict(metric=metric, task=ds.task, n_classes=ds.n_classes, batch_masks=batch_masks)
    want = _total(quota, scope)
    bar = tqdm(total=want, desc=f"prune ({criterion})", disable=not progress, leave=False)
    budget = Budget(model, groups, ds, dev, max_accuracy_drop, batch_masks)
    sel = _Selection(model, ds, X, y, groups, quota, scope, qkw, min_quality, bar, budget)
    if criterion == "car" and recompute:
        removed, history = sel.greedy(want, per_step)
    else:
        removed, history = sel.ranked(criterion, want, seed), []
    bar.close()
    note = warn_target(budget, len(removed), want) if warn else None
    base, qa, _, _ = _variant_quality(model, groups, [tuple(removed)], X, y, **qkw)
    pruned, diff = prune_units(model, groups, removed, X[:64])
    tests, judged, conv = _test_scores(model, pruned, ds, dev, finetune_epochs, finetune_kw, seed)
    v = verdict(ds, judged, budget, target_note=note, warn=warn)
    shape = ds.input_shape
    return PruneResult(criterion=criterion, target=target, scope=scope, removed=tuple(sel.label(u) for u in removed),
                       channels_before={g.layer: g.size for g in groups},
                       channels_after={g.layer: g.size - sum(1 for u in removed if u[0] == g.index) for g in groups},
                       quality_before=float(base), quality_after_mask=float(qa[0]), test_before=tests[0],
                       test_after=tests[1], test_finetuned=tests[2], params_before=parameter_count(model),
                       params_after=parameter_count(pruned), macs_before=int(sum(count_macs(model, shape).values())),
                       macs_after=int(sum(count_macs(pruned, shape).values())), max_abs_diff=float(diff), seed=seed,
                       max_accuracy_drop=budget.budget, target_met=note is None, verdict=v, convergence=conv,
                       history=tuple(history), model=pruned)


class _Selection:
    """Which units :func:`prune` removes: greedy CAR with recomputation, or one ranking."""

    def __init__(self, model, ds, X, y, groups, quota, scope, qkw, min_quality, bar, budget):
        self.model, self.ds, self.X, self.y, self.groups = model, ds, X, y, groups
        self.quota, self.scope, self.qkw, self.min_quality, self.bar = quota, scope, qkw, min_quality, bar
        self.budget = budget
        self.name_of = {g.index: g for g in groups}

    def label(self, u):
        g = self.name_of[u[0]]
        return g.layer, int(g.channels[u[1]])

    def _car(self, removed):
        return _car(self.model, self.ds, self.X, self.y, self.groups, set(removed), metric=self.qkw["metric"],
                    curves=False, batch_masks=self.qkw["batch_masks"])

    def greedy(self, want, per_step):
        removed, history = [], []
        while len(removed) < want:
            res = self._car(removed)
            units = list(zip(res.group.tolist(), res.root.tolist()))
            order = [units[i] for i in sorted(range(len(units)), key=lambda i: (res.car[i], units[i]))]
            step = _pick(order, set(removed), self.groups, self.quota, self.scope, min(per_step, want - len(removed)))
            if not step:
                break
            _, q, _, _ = _variant_quality(self.model, self.groups, [tuple(removed + step)], self.X, self.y, **self.qkw)
            if self.min_quality is not None and q[0] < self.min_quality:
                break
            if self.budget.first_violation([removed + step]) is not None:
                break
            removed += step
            history.append({"removed": tuple(self.label(u) for u in step), "quality": float(q[0]),
                            "scores": {self.label(u): float(c) for u, c in zip(units, res.car)}})
            self.bar.update(len(step))
        return removed, history

    def _score(self, criterion, seed):
        if criterion == "car":
            return self._car(()).car
        s = _scores(criterion, seed, self.model, self.groups, self.X, self.y, self.ds.task)
        score = s.copy()
        if self.scope == "network":  # Molchanov et al.'s layer normalisation
            gidx = np.array([g.index for g in self.groups for _ in range(g.size)])
            for g in self.groups:
                nrm = np.linalg.norm(s[gidx == g.index])
                score[gidx == g.index] = s[gidx == g.index] / nrm if nrm > 0 else 0.0
        return score

    def ranked(self, criterion, want, seed):
        score = self._score(criterion, seed)
        units = [(g.index, r) for g in self.groups for r in range(g.size)]
        order = [units[i] for i in sorted(range(len(units)), key=lambda i: (score[i], units[i]))]
        cand = _pick(order, set(), self.groups, self.quota, self.scope, want)
        if self.min_quality is not None:  # the longest prefix that keeps the floor
            seqs = [tuple(cand[:k]) for k in range(1, len(cand) + 1)]
            _, qs, _, _ = (_variant_quality(self.model, self.groups, seqs, self.X, self.y, **self.qkw) if seqs
                           else (0, np.array([]), 0, 0))
            keep = 0
            while keep < len(seqs) and qs[keep] >= self.min_quality:
                keep += 1
            cand = cand[:keep]
        bad = self.budget.first_violation([cand[:k] for k in range(1, len(cand) + 1)])
        cand = cand if bad is None else cand[:bad]
        self.bar.update(len(cand))
        return list(cand)


def _test_scores(model, pruned, ds, dev, finetune_epochs, finetune_kw, seed):
    """Test quality of the intact, the pruned and (with ``finetune_epochs``) the fine-tuned model,
    the verdict's held-out metric of the same three, and the fine-tuning's Convergence (or None)."""
    from redundancy.training import train

    has_test = len(ds.y_test) > 0
    (t_before, j_before), (t_after, j_after) = held_out_scores(model, ds, dev), held_out_scores(pruned, ds, dev)
    t_ft = j_ft = conv = None
    if finetune_epochs:
        kw = {"lr": 1e-3, "batch_size": 64}
        kw.update(finetune_kw or {})
        conv = train(pruned, ds, epochs=finetune_epochs, seed=seed, device=dev, **kw).convergence
        pruned.eval()
        t_ft, j_ft = held_out_scores(pruned, ds, dev)
    tests = (t_before, t_after, t_ft) if has_test else (None, None, None)
    return tests, (j_before, j_after, j_ft), conv


#: keyword options of :func:`prune` that :func:`car_prune` and :func:`finetuned_curve` pass on
_PRUNE_OPTIONS = ("layers", "scope", "per_step", "recompute", "min_quality", "max_accuracy_drop", "metric", "split",
                  "max_examples",
                  "finetune_epochs", "finetune_kw", "batch_masks", "seed", "device", "progress")


@_v.validate_params({k: c for k, c in _PRUNE_SPEC.items() if k != "criterion"},
                    kwargs=tuple(o for o in _PRUNE_OPTIONS if o not in ("per_step", "recompute")))
def car_prune(model: nn.Module, data: Any, *, target=0.5, per_step: int = 1, recompute: bool = True, **kw) -> PruneResult:
    """Greedy CAR pruning: :func:`prune` with ``criterion="car"``.

    ``kw``: the other keyword options of :func:`prune` (``layers``, ``scope``, ``min_quality``,
    ``max_accuracy_drop`` (default 0.05), ``metric``, ``split``, ``max_examples``, ``finetune_epochs``, ``finetune_kw``, ``batch_masks``,
    ``seed``, ``device``, ``progress``); any other is refused.

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.zoo import simple_cnn
    >>> net = simple_cnn(ndim=1, widths=(4,), num_classes=2, seed=0).eval()
    >>> X = np.random.default_rng(1).normal(size=(40, 1, 8)).astype("float32")
    >>> res = car_prune(net, (X, (X[:, 0, 0] > 0).astype("int64")), target=2, max_accuracy_drop=None)
    >>> len(res.removed), len(res.history)
    (2, 2)
    """
    return prune(model, data, criterion="car", target=target, per_step=per_step, recompute=recompute, **kw)


_MAX_FRACTIONS = 50


@_v.validate_params({**_PRUNE_SPEC, "layer": _v.Instance(str, "module name (str)"),
                     "fractions": _v.Items(_v.Float(0.0, 1.0, lo_open=True, hi_open=True), min_len=1,
                                           max_len=_MAX_FRACTIONS)},
                    kwargs=tuple(o for o in _PRUNE_OPTIONS if o not in ("layers", "finetune_epochs")))
def finetuned_curve(model: nn.Module, data: Any, layer: str, *, fractions=(0.25, 0.5, 0.75), finetune_epochs: int = 2,
                    criterion: str = "car", **kw):
    """A layer's redundancy curve after fine-tuning: for each fraction, prune that share of ``layer``'s
    channels (alone, by ``criterion``), fine-tune, and read the test accuracy (R² for regression).

    Parameters
    ----------
    model : torch.nn.Module
        Not changed (each pruned model is a copy).
    data : Dataset or arrays
        Needs a test split (the curve is the test quality).
    layer : str
        A prunable conv/linear module name.
    fractions : sequence of float in (0, 1)
        Shares of the layer's channels to remove (at most 50 of them; one pruning and fine-tuning each).
    finetune_epochs : int in [0, 10000]
    criterion : {"car", "l1", "l2", "random", "activation", "taylor"}
    **kw
        The other keyword options of :func:`prune` (``scope``, ``per_step``, ``recompute``,
        ``min_quality``, ``metric``, ``split``, ``max_examples``, ``finetune_kw``, ``batch_masks``,
        ``seed``, ``device``, ``progress``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Fractions kept (1 first, the intact model) and the test quality, ready for
        ``CARCurveDisplay.from_result(res, finetuned={layer: curve})``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> kept, q = finetuned_curve(net, (X, net(torch.as_tensor(X)).argmax(1).numpy()), "0", fractions=(0.5,),
    ...                           finetune_epochs=1)
    >>> kept.tolist(), len(q)
    ([1.0, 0.5], 2)
    """
    kept, quality = [1.0], []
    opts = {o: kw.pop(o) for o in ("scope", "per_step", "seed", "metric", "min_quality") if o in kw}
    run = {"recompute": True, "split": "train", "max_examples": None, "finetune_kw": None, "batch_masks": 32,
           "device": "cpu", "progress": False, **kw}
    for f in fractions:
        checked = _prune_options(model, data, criterion=criterion, target=f, finetune_epochs=finetune_epochs,
                                 **{"scope": "network", "per_step": 1, "seed": 0, "metric": None, "min_quality": None,
                                    **opts})
        with _v.guard_model(model):
            res = _prune(model, layers=[layer], warn=False, **run, **checked)
        if res.test_before is None:
            raise RedundancyError("data has no test examples; finetuned_curve reads the test quality of each "
                                  "pruned model")
        if not quality:
            quality.append(res.test_before)
        size = res.channels_before[next(iter(res.channels_before))]
        kept.append(1 - len(res.removed) / size)
        quality.append(res.test_finetuned if finetune_epochs else res.test_after)
    quality = np.asarray(quality, dtype=float)
    _v.check_finite_result("the test quality of a pruned model", quality,
                           "its outputs hold NaN or inf (diverged fine-tuning?)")
    return np.asarray(kept), quality
