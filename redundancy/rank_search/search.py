r"""Automatic per-layer rank selection (RENE; Aghababaei-Harandi & Amini, arXiv 2409.03555).

Every searched layer ``i`` becomes a :class:`~redundancy.rank_search.relaxation.MixedRankLayer`: one
decomposition ``Ŵ_{i,r}`` per candidate rank and logits ``α_i``, computing with
``W_mix,i = Σ_r p_i(r) Ŵ_{i,r}``, ``p_i = softmax(α_i)``. Two multiplicative objectives (no
trade-off weight):

.. math::

    L_w = \Big[\sum_i \sum_r p_i(r) \|W_i - \hat W_{i,r}\|_F^2\Big]\cdot L_r \quad\text{(factors)},\qquad
    L_\alpha = L_{val}\cdot L_r \quad\text{(logits)},\qquad
    L_r = \gamma \sum_i \Big(\sum_r p_i(r)\, r / \max R_i\Big)^{\beta}

The factor bracket is the Jensen upper bound of the paper's ``Σ_i ||W_i − W_mix,i||²`` (Eq. 6):
under the mixture error the candidates co-adapt (rank 1 + rank 5 can sum to an exact rank-3
kernel) and, with data, ``argmax p`` collapsed to rank 1 (docs/rank_search.md has the numbers).
``L_val`` is the cross-entropy of the mixed network on a held-out split of ``data`` (10 % of the
training split, never the test split), or, with ``data=None`` (data-free mode), the same bracket as
in ``L_w``. Each stage runs ``warmup`` factor-only iterations, then ``iters`` joint iterations (a
factor step by SGD-Nesterov, gradient norm clipped at 5; a logit step by SGD-Nesterov on
``log L_α = log L_val + log L_r``, the product's gradient divided by the product: the same
minimisers, a scale-free step, and, unlike Adam's per-logit normalisation, the relative sizes of
the logits' gradients kept), takes ``r̄_i = argmax p_i`` and contracts each layer's candidates by
:func:`~redundancy.rank_search.schedule.contract` (Figure 3), re-initialising factors and logits. The
final ``r*_i`` are decomposed from the original weights and the layers replaced by their chains.

Only the data-free mode needs no training data: the paper's "no training data" claim fits the
factor step (Eq. 6), which only compares kernels; its logit step (Eq. 7) uses a validation loss.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.rank_search.budget import (DEFAULT_MAX_ACCURACY_DROP, back_off, data_free_verdict, few_channels,
                                          judge)
from redundancy.rank_search.candidates import _layer_positions, _max_rank, _replace_layers, _select
from redundancy.rank_search.chains import SEARCH_METHODS
from redundancy.rank_search.finish import _finish
from redundancy.rank_search.relaxation import (MixedRankLayer, _expected_reconstruction_error, _rank_penalty,
                                              _reconstruction_error)
from redundancy.rank_search.result import RankSearchResult
from redundancy.rank_search.schedule import _contract, _plan
from redundancy.training.common import _optimizer, batches, check_device
from redundancy.training.loop import _descend, _Objective

_MAX_ITERS = 100_000

#: first-stage logit lean of a search with data (``warm_start=None``); data-free searches start uniform
DEFAULT_WARM_START = 3.0


def _val_fraction(name, value):
    if not (isinstance(value, float) and 0 < value < 1):
        raise RedundancyError(f"{name}={value!r} is not allowed; it must be a float in (0, 1)")
    return value


@_v.validate_params({"model": _v.Module(), "method": _v.Choice(*SEARCH_METHODS),
                     "warmup": _v.Int(0, _MAX_ITERS), "iters": _v.Int(1, _MAX_ITERS), "factor": _v.Int(2),
                     "seed": _v.Int(0), "batch_size": _v.Int(1),
                     "lr_factors": _v.Check(_v.check_positive_float), "lr_logits": _v.Check(_v.check_positive_float),
                     "gamma": _v.Float(0, 1e6, lo_open=True), "beta": _v.Float(0, 100, lo_open=True),
                     "warm_start": _v.NoneOr(_v.Float(0.0, 50.0)), "val_fraction": _v.Check(_val_fraction),
                     "device": _v.Check(lambda name, value: check_device(value)),
                     "input_shape": _v.NoneOr(_v.Shape()),
                     "max_accuracy_drop": _v.NoneOr(_v.Float(0.0, 1.0)), "max_loss_increase": _v.NoneOr(_v.Float(0.0, 1e6)),
                     "finetune_epochs": _v.Int(0, 10_000)})
def search_ranks(model: nn.Module, candidates: Any = None, *, data: Any = None, method: str = "tt",
                 layers: Any = None, input_shape: Any = None, factor: int = 10, warmup: int = 20, iters: int = 100,
                 lr_factors: float = 1e-3, lr_logits: float = 0.5, gamma: float = 0.4, beta: float = 0.8,
                 val_fraction: float = 0.1, batch_size: int = 256, warm_start: float | None = None, seed: int = 0,
                 max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP, max_loss_increase: float | None = None,
                 finetune_epochs: int = 0, device: Any = "cpu", progress: bool = False) -> RankSearchResult:
    """Search one rank per layer (TT, CP or Tucker-2 for convs, SVD for Linear layers) and compress.

    Parameters
    ----------
    model : torch.nn.Module
        Not modified; searched layers are its ``Conv1d/2d/3d`` (groups 1) and ``Linear`` layers,
        or the names in ``layers``. Grouped/depthwise convs are skipped with the reason recorded.
    candidates : None, tuple, list or dict
        ``None``: per layer ``[1, R_i]`` at step ``⌈R_i/8⌉`` then step 1 (``R_i`` of
        :func:`max_search_rank`); ``(r_min, r_max, step)`` or ``(r_min, r_max, step, factor)``
        for every layer (clipped to ``R_i``); a list of ranks (one stage); a dict per layer name.
    data : Dataset or (X, y), optional
        With data, the logits minimise held-out cross-entropy × ``L_r``; without, reconstruction × ``L_r``.
    method : {"tt", "cp", "tucker"}
    input_shape : tuple, optional
        One input without batch dimension, for MACs (default: the data's).
    factor : int
        The schedule's ``f`` for tuple candidates without their own.
    warmup, iters : int
        Factor-only iterations, then joint iterations, per stage (20 and 100 as in the re-implementation).
    lr_factors, lr_logits : float
        SGD-Nesterov (momentum 0.9) learning rates of the factors (on ``L_w``) and of the logits (on
        ``log L_α``).
    gamma, beta : float
        Rank penalty ``L_r`` (defaults 0.4, 0.8 of the authors' re-implementation).
    val_fraction, batch_size : float, int
        Held-out share of the training split for ``L_val`` and its batch size.
    warm_start : float or None
        Initial logits ``α_r = warm_start · (r − r_min)/(r_max − r_min)`` of the first stage, in
        ``[0, 50]``: 0 is the paper's uniform start; > 0 starts near the largest candidate (the
        dense end), so the search descends from the network instead of from a blend of all ranks;
        later stages start uniform. ``None`` (default) is 3 with ``data`` and 0 without: on trained
        nets with little redundancy the uniform start can fall into the objective's minimum at
        chance-level loss (docs/rank_search.md), while data-free a warm start over-estimates small
        ranks. ``result.settings["warm_start"]`` records the value used.
    seed : int
    max_accuracy_drop, max_loss_increase : float or None
        The budget (with ``data``): the largest allowed drop of the held-out accuracy (default 0.05)
        and rise of the held-out cross-entropy (default None: not limited), measured on the test
        split of ``data`` (the training split when there is none) before fine-tuning. A search that
        breaks it backs off: the layers whose compression costs most are put back dense, one at a
        time, until the model is within budget (recorded in ``skipped`` with the reason). ``None``
        for both: no back-off (the verdict still judges the result).
    finetune_epochs : int
        With ``data``: fine-tune the compressed model for at most this many epochs with
        :func:`~redundancy.rank_search.finetune` (distillation from ``model``); its stopping-rule
        evidence is ``result.convergence``.
    device : str
    progress : bool

    Returns
    -------
    RankSearchResult
        ``verdict``: held-out accuracy of the original, the compressed model before and after
        fine-tuning, chance and the budget; a :class:`~redundancy.errors.DecisionWarning` is
        emitted when the model handed back is near chance or past the budget. Data-free, the
        verdict is ``"not_applicable"`` (nothing to judge with), and layers whose input or output
        has at most 3 channels (a one-channel stem) are kept dense and listed in ``skipped``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3))
    >>> res = search_ranks(net, [1, 2, 3], input_shape=(4, 6, 6), iters=5, warmup=2)
    >>> sorted(res.ranks) == ["0", "2"] and set(res.ranks.values()) <= {1, 2, 3}
    True
    """
    if warm_start is None:
        warm_start = 0.0 if data is None else DEFAULT_WARM_START
    dev = check_device(device)
    ds = _classification_data(data)
    input_shape = _v.check_shape("input_shape", _input_shape(input_shape, ds))
    names, skipped = _select(model, layers)
    if ds is None:  # data-free: protect layers with very few input or output channels
        few = {n: few_channels(model.get_submodule(n)) for n in names}
        skipped += [{"name": n, "layer_type": type(model.get_submodule(n)).__name__, "reason": r}
                    for n, r in few.items() if r is not None]
        names = [n for n in names if few[n] is None]
    if not names:
        raise RedundancyError("the model has no Conv1d/2d/3d (groups 1) or Linear layer to search"
                              + ("" if not skipped else f" (skipped: {'; '.join(s['name'] + ': ' + s['reason'] for s in skipped)})"))
    base = copy.deepcopy(model).to(dev).eval()
    pos = _layer_positions(base, names, input_shape)
    mods = {n: base.get_submodule(n) for n in names}
    max_r = {n: _max_rank(mods[n], method) for n in names}
    plans = {n: _plan(n, candidates, max_r[n], factor) for n in names}
    val = None if ds is None else _val_split(ds, val_fraction, seed, base, dev)
    opts = dict(method=method, warmup=warmup, iters=iters, lr_factors=lr_factors, lr_logits=lr_logits, gamma=gamma,
                beta=beta, batch_size=batch_size, warm_start=warm_start, seed=seed)
    t0 = time.perf_counter()
    final, trajectory = _stages(base, names, mods, plans, max_r, val, progress, **opts)
    settings = dict(warmup=warmup, iters=iters, lr_factors=lr_factors, lr_logits=lr_logits, gamma=gamma,
                    beta=beta, val_fraction=val_fraction, batch_size=batch_size, warm_start=warm_start,
                    seed=seed, device=str(dev), candidates=repr(candidates), factor=factor,
                    input_shape=list(input_shape))
    settings.update(max_accuracy_drop=max_accuracy_drop, max_loss_increase=max_loss_increase,
                    finetune_epochs=finetune_epochs)
    res = _finish(model, base, names, final, mods, pos, max_r, method, skipped, trajectory, seed, ds, input_shape,
                  time.perf_counter() - t0, settings)
    if val is None:
        return dataclasses.replace(res, verdict=data_free_verdict(res))
    return _decide(base, res, ds, (max_accuracy_drop, max_loss_increase), finetune_epochs, input_shape, seed,
                   progress, val)


def _decide(base, res, ds, budget, finetune_epochs, input_shape, seed, progress, val):
    """Back off to the budget, fine-tune, judge: the result with ``verdict`` and ``convergence``."""
    from redundancy.rank_search.budget import score
    from redundancy.rank_search.finish import finetune

    res, orig, decided, restored = back_off(base, res, ds, budget, input_shape)
    dev = _v.model_device(base)
    res = _with_val_losses(res, base, dev, *val)
    conv = finetuned = None
    if finetune_epochs and res.layers:
        conv = finetune(res.model, base, ds, epochs=finetune_epochs, seed=seed, device=_v.model_device(res.model),
                        progress=progress).convergence
        res.model.eval()
        finetuned = score(res.model, ds)
    return dataclasses.replace(res, verdict=judge(orig, decided, finetuned, ds, budget, restored,
                                                        left=len(res.layers)), convergence=conv)


def _classification_data(data):
    ds = None if data is None else as_dataset(data)
    if ds is not None and ds.task != "classification":
        raise RedundancyError("data must be a classification data set (the logit step uses cross-entropy)")
    return ds


def _input_shape(input_shape, ds):
    if input_shape is not None:
        return input_shape
    if ds is None:
        raise RedundancyError("input_shape=None and data=None: give input_shape (one input, no batch dim) "
                              "so that MACs can be counted")
    return ds.input_shape


def _val_split(ds, val_fraction, seed, base, dev):
    """The held-out examples of ``L_val``: a seeded ``val_fraction`` of the training split."""
    n_tr = len(ds.y_train)
    idx = np.random.default_rng(seed).permutation(n_tr)[: max(1, int(round(val_fraction * n_tr)))]
    Xv = torch.as_tensor(ds.X_train[idx]).to(device=dev, dtype=_v.model_dtype(base))
    yv = torch.as_tensor(ds.y_train[idx]).to(dev)
    return Xv, yv


def _with_val_losses(res, base, dev, Xv, yv):
    with torch.no_grad(), _v.guard_model(base, eval=True), _v.guard_model(res.model, eval=True):
        losses = [float(nn.functional.cross_entropy(m(Xv.to(d)), yv.to(d)))
                  for m, d in ((base, dev), (res.model, _v.model_device(res.model)))]
    return dataclasses.replace(res, val_loss_dense=losses[0], val_loss_compressed=losses[1])


def _stages(base, names, mods, plans, max_r, val, progress, *, method, warm_start, seed, **opts):
    """Coarse-to-fine stages until every layer's candidates contract to one rank; returns
    ``(final, trajectory)`` with ``final[name] = (r*, p, candidates)``."""
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    trajectory, final, stage = [], {}, 0
    bar = tqdm(desc=f"search_ranks[{method}]", disable=not progress, leave=False)
    while True:
        mixed = {n: MixedRankLayer(mods[n], method, plans[n][0], seed=seed) for n in names}
        net = _replace_layers(copy.deepcopy(base), mixed)
        for p in net.parameters():
            p.requires_grad_(False)
        ml = [net.get_submodule(n) for n in names]
        if warm_start and stage == 0:
            _lean(ml, warm_start)
        losses = _relax(net, ml, val, gen, bar, stage, **opts)
        _contract_stage(names, ml, plans, max_r, final, trajectory, stage, losses, opts["gamma"], opts["beta"])
        if len(final) == len(names):
            break
        stage += 1
    bar.close()
    return final, trajectory


def _lean(ml, warm_start):
    """``alpha_r = warm_start * (r - r_min) / (r_max - r_min)``: p leans to the largest rank."""
    with torch.no_grad():
        for m in ml:
            c = torch.as_tensor(m.candidates, dtype=m.alpha.dtype, device=m.alpha.device)
            m.alpha.copy_(warm_start * (c - c[0]) / max(float(c[-1] - c[0]), 1.0))


def _relax(net, ml, val, gen, bar, stage, *, warmup, iters, lr_factors, lr_logits, gamma, beta, batch_size):
    """One stage's ``warmup`` factor-only and ``iters`` joint iterations, through the training loop's
    :func:`~redundancy.training.loop._descend`; returns the last ``(loss_w, loss_a)``."""
    fac = [p for m in ml for p in m.factors]
    alphas = [m.alpha for m in ml]
    for p in fac + alphas:
        p.requires_grad_(True)
    # factor step (Eq. 6 with the mixture error replaced by its Jensen bound: no co-adaptation)
    factor_step = _Objective(params=fac, clip=5.0,
                             optimizer=_optimizer("sgd", fac, lr=lr_factors, momentum=0.9, nesterov=True),
                             loss=lambda t: _expected_reconstruction_error(ml) * _rank_penalty(ml, gamma, beta))
    # logit step (Eq. 7): L_val · L_r on the gradient of its log (the product's gradient divided by the
    # product: same minimisers; a product of 0, an exact fit, gives a zero step)
    l_val = _val_loss(net, ml, val, gen, batch_size)
    logit_step = _Objective(params=alphas, start=warmup, log_scale=True,
                            optimizer=_optimizer("sgd", alphas, lr=lr_logits, momentum=0.9, nesterov=True),
                            loss=lambda t: l_val() * _rank_penalty(ml, gamma, beta))
    return _descend([factor_step, logit_step], warmup + iters, on_step=lambda t: bar.update(1),
                    on_nonfinite=lambda t: (f"the search loss became non-finite at stage {stage}, iteration {t}; "
                                            "lower lr_factors / lr_logits"))


def _val_loss(net, ml, val, gen, batch_size):
    """``L_val``: held-out cross-entropy on the next batch of a seeded order, or (data-free) the factor bracket."""
    if val is None:
        return lambda: _expected_reconstruction_error(ml)
    Xv, yv = val
    order: list = []

    def ce():
        if not order:
            order.extend(batches(len(yv), batch_size, gen))
        b = order.pop().to(Xv.device)
        return nn.functional.cross_entropy(net(Xv[b]), yv[b])
    return ce


def _contract_stage(names, ml, plans, max_r, final, trajectory, stage, losses, gamma, beta):
    """Record the stage, take ``r̄ = argmax p`` per layer and contract its candidates (Figure 3)."""
    loss_w, loss_a = losses
    with torch.no_grad():
        rec_f, pen_f = float(_reconstruction_error(ml)), float(_rank_penalty(ml, gamma, beta))
    for n, m in zip(names, ml):
        if n in final:
            continue
        probs = m.probs().detach().cpu().double().numpy()
        probs = probs / probs.sum()
        r_bar = int(m.candidates[int(np.argmax(probs))])
        cands, step, f = plans[n]
        trajectory.append({"stage": stage, "step": step, "layer": n, "candidates": list(cands),
                           "probs": probs.tolist(), "r_bar": r_bar, "loss_w": float(loss_w.detach()),
                           "loss_a": float(loss_a.detach()), "reconstruction": rec_f, "penalty": pen_f})
        c = _contract(r_bar, step, f, 1, max_r[n])
        if c is None:
            final[n] = (r_bar, probs, cands)
            plans[n] = ((r_bar,), 1, 2)   # held at r_bar while other layers go on
        else:
            plans[n] = (c[0], c[1], f)
