r"""Automatic per-layer rank selection (RENE; Aghababaei-Harandi & Amini, arXiv 2409.03555).

Every searched layer ``i`` becomes a :class:`~redundancy.lowrank.mixed.MixedRankLayer`: one
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
:func:`~redundancy.lowrank.schedule.contract` (Figure 3), re-initialising factors and logits. The
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

from redundancy._validation import (Check, Choice, Module, Seed, check_choice, check_int, check_module,
                                    check_float, check_positive_float, check_shape, validate_params)
from redundancy.counts import eval_mode
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.lowrank.mixed import (MixedRankLayer, expected_reconstruction_error, rank_penalty,
                                      reconstruction_error)
from redundancy.lowrank.rank_chains import SEARCH_METHODS, build_chain, chain_params
from redundancy.lowrank.schedule import _plan, contract
from redundancy.lowrank.search_layers import _layer_positions, _replace_layers, _searchable, _select
from redundancy.lowrank.search_result import RankSearchResult, _layer_row
from redundancy.lowrank.tt_decompose import cp3_max_rank, init_factors, tt_max_rank
from redundancy.training import batches, check_device

__all__ = ["search_ranks", "max_search_rank", "decompose_at"]

_MAX_ITERS = 100_000
MAX_LAYERS = 10_000


@validate_params({"layer": Check(_searchable), "method": Choice(*SEARCH_METHODS)})
def max_search_rank(layer: nn.Module, method: str) -> int:
    """Largest rank worth searching: ``min(exact rank, break-even rank)``, at least 1.

    Exact rank: ``min(out, in)`` (SVD), ``max(min(C_out, S C_in), min(C_out S, C_in))`` (TT, Tucker
    with tied ranks), ``prod/max`` of the view (CP); break-even: the largest ``r`` whose chain has
    no more parameters than the layer.

    Parameters
    ----------
    layer : Conv1d, Conv2d, Conv3d (groups 1) or Linear
    method : {"tt", "cp", "tucker"}
        Ignored for a Linear layer (always the SVD).

    Returns
    -------
    int

    Examples
    --------
    >>> from torch import nn
    >>> max_search_rank(nn.Linear(10, 4), "tt")
    2
    >>> max_search_rank(nn.Conv2d(16, 16, 3), "tt")
    14
    """
    if isinstance(layer, nn.Linear):
        exact, m = min(layer.in_features, layer.out_features), "svd"
    else:
        dims = (layer.out_channels, int(np.prod(layer.kernel_size)), layer.in_channels)
        exact, m = (cp3_max_rank(*dims) if method == "cp" else tt_max_rank(*dims)), method
    dense = sum(p.numel() for p in layer.parameters())
    # chain_params grows with r: bisect the largest r <= exact whose chain is no larger than the layer
    lo, hi = 1, exact
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chain_params(layer, mid, m) <= dense:
            lo = mid
        else:
            hi = mid - 1
    return lo


#: first-stage logit lean of a search with data (``warm_start=None``); data-free searches start uniform
DEFAULT_WARM_START = 3.0


def search_ranks(model: nn.Module, candidates: Any = None, *, data: Any = None, method: str = "tt",
                 layers: Any = None, input_shape: Any = None, factor: int = 10, warmup: int = 20, iters: int = 100,
                 lr_factors: float = 1e-3, lr_logits: float = 0.5, gamma: float = 0.4, beta: float = 0.8,
                 val_fraction: float = 0.1, batch_size: int = 256, warm_start: float | None = None, seed: int = 0,
                 device: Any = "cpu", progress: bool = False) -> RankSearchResult:
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
    device : str
    progress : bool

    Returns
    -------
    RankSearchResult

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3))
    >>> res = search_ranks(net, [1, 2, 3], input_shape=(4, 6, 6), iters=5, warmup=2)
    >>> sorted(res.ranks) == ["0", "2"] and set(res.ranks.values()) <= {1, 2, 3}
    True
    """
    model = check_module("model", model)
    method = check_choice("method", method, SEARCH_METHODS)
    warmup = check_int("warmup", warmup, min_value=0, max_value=_MAX_ITERS)
    iters = check_int("iters", iters, min_value=1, max_value=_MAX_ITERS)
    factor = check_int("factor", factor, min_value=2)
    seed = check_int("seed", seed, min_value=0)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    lr_factors, lr_logits = check_positive_float("lr_factors", lr_factors), check_positive_float("lr_logits", lr_logits)
    gamma, beta = check_positive_float("gamma", gamma), check_positive_float("beta", beta)
    if warm_start is None:
        warm_start = 0.0 if data is None else DEFAULT_WARM_START
    warm_start = check_float("warm_start", warm_start, min_value=0.0, max_value=50.0)
    if not (isinstance(val_fraction, float) and 0 < val_fraction < 1):
        raise RedundancyError(f"val_fraction={val_fraction!r} is not allowed; it must be a float in (0, 1)")
    dev = check_device(device)
    ds = None if data is None else as_dataset(data)
    if ds is not None and ds.task != "classification":
        raise RedundancyError("data must be a classification data set (the logit step uses cross-entropy)")
    if input_shape is None:
        if ds is None:
            raise RedundancyError("input_shape=None and data=None: give input_shape (one input, no batch dim) "
                                  "so that MACs can be counted")
        input_shape = ds.input_shape
    input_shape = check_shape("input_shape", input_shape)
    names, skipped = _select(model, layers)
    if not names:
        raise RedundancyError("the model has no Conv1d/2d/3d (groups 1) or Linear layer to search")
    base = copy.deepcopy(model).to(dev).eval()
    pos = _layer_positions(base, names, input_shape)
    mods = {n: base.get_submodule(n) for n in names}
    max_r = {n: max_search_rank(mods[n], method) for n in names}
    plans = {n: _plan(n, candidates, max_r[n], factor) for n in names}
    Xv = yv = None
    if ds is not None:
        gen_np = np.random.default_rng(seed)
        n_tr = len(ds.y_train)
        idx = gen_np.permutation(n_tr)[: max(1, int(round(val_fraction * n_tr)))]
        p0 = next(base.parameters())
        Xv = torch.as_tensor(ds.X_train[idx]).to(device=dev, dtype=p0.dtype)
        yv = torch.as_tensor(ds.y_train[idx]).to(dev)
    gen = torch.Generator().manual_seed(seed)
    trajectory, stage, t0, final = [], 0, time.perf_counter(), {}
    from tqdm.auto import tqdm

    bar = tqdm(desc=f"search_ranks[{method}]", disable=not progress, leave=False)
    while True:
        mixed = {n: MixedRankLayer(mods[n], method, plans[n][0], seed=seed) for n in names}
        net = _replace_layers(copy.deepcopy(base), mixed)
        for p in net.parameters():
            p.requires_grad_(False)
        ml = [net.get_submodule(n) for n in names]
        if warm_start and stage == 0:
            with torch.no_grad():
                for m in ml:   # alpha_r = warm_start * (r - r_min) / (r_max - r_min): p leans to the largest rank
                    c = torch.as_tensor(m.candidates, dtype=m.alpha.dtype, device=m.alpha.device)
                    m.alpha.copy_(warm_start * (c - c[0]) / max(float(c[-1] - c[0]), 1.0))
        fac = [p for m in ml for p in m.factors]
        alphas = [m.alpha for m in ml]
        for p in fac + alphas:
            p.requires_grad_(True)
        opt_w = torch.optim.SGD(fac, lr=lr_factors, momentum=0.9, nesterov=True)
        opt_a = torch.optim.SGD(alphas, lr=lr_logits, momentum=0.9, nesterov=True)
        order = []
        for t in range(warmup + iters):
            joint = t >= warmup
            # factor step (Eq. 6 with the mixture error replaced by its Jensen bound: no co-adaptation)
            loss_w = expected_reconstruction_error(ml) * rank_penalty(ml, gamma, beta)
            for p, g in zip(fac, torch.autograd.grad(loss_w, fac)):
                p.grad = g
            torch.nn.utils.clip_grad_norm_(fac, 5.0)
            opt_w.step()
            loss_a = torch.zeros(())
            if joint:
                # logit step (Eq. 7): L_val · L_r, L_val = held-out CE or (data-free) the factor bracket
                if Xv is None:
                    l_val = expected_reconstruction_error(ml)
                else:
                    if not order:
                        order = batches(len(yv), batch_size, gen)
                    b = order.pop().to(dev)
                    l_val = nn.functional.cross_entropy(net(Xv[b]), yv[b])
                loss_a = l_val * rank_penalty(ml, gamma, beta)
                # gradient of log(L_val · L_r): the product's gradient divided by the product (same minimisers;
                # a product of 0, an exact fit, gives a zero step)
                denom = loss_a.detach().clamp_min(torch.finfo(loss_a.dtype).tiny)
                for p, g in zip(alphas, torch.autograd.grad(loss_a, alphas)):
                    p.grad = g / denom
                opt_a.step()
            if not torch.isfinite(loss_w) or not torch.isfinite(loss_a):
                raise RedundancyError(f"the search loss became non-finite at stage {stage}, iteration {t}; "
                                      "lower lr_factors / lr_logits")
            bar.update(1)
        with torch.no_grad():
            rec_f, pen_f = float(reconstruction_error(ml)), float(rank_penalty(ml, gamma, beta))
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
            c = contract(r_bar, step, f, 1, max_r[n])
            if c is None:
                final[n] = (r_bar, probs, cands)
                plans[n] = ((r_bar,), 1, 2)   # held at r_bar while other layers go on
            else:
                plans[n] = (c[0], c[1], f)
        if len(final) == len(names):
            break
        stage += 1
    bar.close()
    res = _finish(model, base, names, final, mods, pos, max_r, method, skipped, trajectory, seed, ds, input_shape,
                   time.perf_counter() - t0,
                   dict(warmup=warmup, iters=iters, lr_factors=lr_factors, lr_logits=lr_logits, gamma=gamma,
                        beta=beta, val_fraction=val_fraction, batch_size=batch_size, warm_start=warm_start,
                        seed=seed, device=str(dev),
                        candidates=repr(candidates), factor=factor, input_shape=list(input_shape)))
    if Xv is None:
        return res
    with torch.no_grad(), eval_mode(base), eval_mode(res.model):
        losses = [float(nn.functional.cross_entropy(m(Xv.to(d)), yv.to(d)))
                  for m, d in ((base, dev), (res.model, next(res.model.parameters()).device))]
    return dataclasses.replace(res, val_loss_dense=losses[0], val_loss_compressed=losses[1])


def _finish(model, base, names, final, mods, pos, max_r, method, skipped, trajectory, seed, ds, input_shape,
            seconds, settings):
    rows, chains = [], {}
    for n in names:
        r_star, probs, cands = final[n]
        row, chains[n] = _layer_row(n, mods[n], method, r_star, probs, cands, max_r[n], pos[n], seed)
        rows.append(row)
    compressed = _replace_layers(copy.deepcopy(base), chains).to(next(model.parameters()).device)
    from redundancy.counts import count_macs

    params_dense = sum(p.numel() for p in model.parameters())
    params_dec = sum(p.numel() for p in compressed.parameters())
    macs_dense = sum(count_macs(base, input_shape).values())
    macs_dec = sum(count_macs(compressed, input_shape).values())
    return RankSearchResult(method, "data-free" if ds is None else "data", tuple(rows), tuple(skipped),
                            tuple(trajectory), params_dense, params_dec, macs_dense, macs_dec, settings, seconds,
                            model=compressed)


def _rank_map(name, value):
    if not isinstance(value, dict) or not value:
        raise RedundancyError(f"{name}={type(value).__name__} is not allowed; {name} must be a non-empty dict "
                              "{layer name: rank}")
    if len(value) > MAX_LAYERS:
        raise RedundancyError(f"{name} has {len(value)} entries; at most {MAX_LAYERS} layers are allowed")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise RedundancyError(f"{name} key {k!r} is not a layer name (a non-empty str from named_modules())")
        out[k] = check_int(f"{name}[{k!r}]", v, min_value=1)
    return out


@validate_params({"model": Module(finite=True), "ranks": Check(_rank_map), "method": Choice(*SEARCH_METHODS),
                  "seed": Seed()})
def decompose_at(model: nn.Module, ranks: dict, *, method: str = "tt", seed: int = 0) -> nn.Module:
    """A copy of ``model`` with each named layer replaced by its chain at the given rank (no search).

    ``ranks`` maps qualified layer names to one int (the tied TT / Tucker rank, the CP rank, or the
    SVD rank of a Linear). Used for baselines (a global rank, EVBMF or energy ranks) at the same
    chains as the search. ``model`` is not changed.

    Parameters
    ----------
    model : torch.nn.Module
        Finite weights.
    ranks : dict of str to int
        Layer name (as in ``model.named_modules()``) to a rank in ``[1, max_search_rank(layer, method)]``
        for a conv (``min(out, in)`` for a Linear); at most ``MAX_LAYERS`` entries.
    method : {"tt", "cp", "tucker"}
    seed : int
        Seed of the CP-ALS / HOOI initialisation.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3))
    >>> type(decompose_at(net, {"0": 2})[0]).__name__
    'CompressedLayer'
    """
    known = dict(model.named_modules())
    for name, r in ranks.items():
        if name not in known:
            raise RedundancyError(f"ranks key {name!r} is not a submodule name of the model")
        layer = _searchable(f"layer {name!r}", known[name])
        limit = (min(layer.in_features, layer.out_features) if isinstance(layer, nn.Linear)
                 else max_search_rank(layer, method))
        if r > limit:
            raise RedundancyError(f"ranks[{name!r}]={r} is not allowed; layer {name!r} takes ranks 1..{limit} "
                                  f"with method {method!r}")
    out = copy.deepcopy(model)
    chains = {}
    for name, r in ranks.items():
        layer = out.get_submodule(name)
        m = "svd" if isinstance(layer, nn.Linear) else method
        w = layer.weight.detach().cpu().double().numpy()
        chains[name] = build_chain(layer, init_factors(w, method, int(r), seed=seed), m)
    return _replace_layers(out, chains)
