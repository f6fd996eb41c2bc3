r"""Last stage of the rank search: the final chains (:func:`decompose_at`, the search's result) and
fine-tuning a decomposed network with layer-wise distillation from the original (RENE §4.4).

For the decomposed layers ``i`` (chains at the names of the original layers) and a batch ``x``:

.. math::

    L = \mathrm{CE} + \lambda \Big( \sum_i \frac{\|W_i - \hat W_i\|_F^2}{\mathrm{numel}(W_i)}
        + \sum_i \frac{\|O_i(x) - D_i(x)\|_F^2}{\mathrm{numel}(O_i(x))} \Big)

``W_i`` the original kernel, ``Ŵ_i`` the kernel rebuilt from the chain's weights
(:func:`~redundancy.rank_search.chains.chain_kernel`), ``O_i``/``D_i`` the outputs of layer ``i`` in
the original and the decomposed network. Each term is divided by its element count (the authors'
re-implementation's default "mean"; the literal sum swamps the cross-entropy); ``λ = 0.5``. The
training itself is :func:`redundancy.training.train` with this loss.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import (Check, Choice, Float, Items, Module, NoneOr, Seed, check_int, model_errors,
                                    validate_params)
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.lowrank.chains import CompressedLayer
from redundancy.rank_search.candidates import _max_rank, _replace_layers, _searchable
from redundancy.rank_search.chains import SEARCH_METHODS, build_chain, chain_kernel
from redundancy.rank_search.factors import init_factors
from redundancy.rank_search.result import RankSearchResult, _layer_row
from redundancy.training.loop import TrainResult, train

MAX_LAYERS = 10_000


def _layer_name(name, value):
    if not isinstance(value, str) or not value:
        raise RedundancyError(f"{name}={value!r} is not a layer name (a non-empty str from named_modules())")
    return value


def _pairs(compressed, original, layers):
    names = ([n for n, m in compressed.named_modules() if isinstance(m, CompressedLayer)]
             if layers is None else list(layers))
    if not names:
        raise RedundancyError("the compressed model has no CompressedLayer chain; give layers=[names]")
    orig = dict(original.named_modules())
    comp = dict(compressed.named_modules())
    for n in names:
        if n not in orig or n not in comp:
            raise RedundancyError(f"layer {n!r} is not a submodule of both the compressed and the original model")
        if not isinstance(comp[n], CompressedLayer):
            raise RedundancyError(f"layer {n!r} of the compressed model is a {type(comp[n]).__name__}, not a chain")
    return names


_LAYER_NAMES = NoneOr(Items(Check(_layer_name), min_len=1, max_len=10_000))


@validate_params({"compressed": Module(finite=True), "original": Module(finite=True), "layers": _LAYER_NAMES,
                  "lam": Float(0, 1e6)})
def distillation_loss(compressed: nn.Module, original: nn.Module, *, layers: Any = None, lam: float = 0.5):
    """The loss ``loss(model, X, y)`` above, for :func:`redundancy.training.train`.

    The teacher is a frozen copy of ``original`` (in eval mode), so ``original`` is not changed.
    Returns ``(loss, close)``: call ``close()`` to remove the forward hooks it registers.
    """
    names = _pairs(compressed, original, layers)
    # the teacher is a frozen copy in eval mode: the caller's model keeps its mode, flags and device
    original = copy.deepcopy(original).eval()
    for p in original.parameters():
        p.requires_grad_(False)
    outs_o, outs_d, handles = {}, {}, []
    for n in names:
        handles.append(original.get_submodule(n).register_forward_hook(
            lambda m, a, o, n=n: outs_o.__setitem__(n, o.detach())))
        handles.append(compressed.get_submodule(n).register_forward_hook(
            lambda m, a, o, n=n: outs_d.__setitem__(n, o)))
    targets = {n: original.get_submodule(n).weight.detach() for n in names}

    def loss(model, X, y):
        logits = model(X)
        if _v.model_device(original) != X.device:
            original.to(X.device)
        with torch.no_grad():
            original(X.to(_v.model_dtype(original)))
        ce = nn.functional.cross_entropy(logits, y)
        w_term = sum(((targets[n].to(logits.dtype) - chain_kernel(model.get_submodule(n))) ** 2).mean() for n in names)
        o_term = sum(((outs_o[n].to(logits.dtype) - outs_d[n]) ** 2).mean() for n in names)
        return ce + lam * (w_term + o_term)

    def close():
        for h in handles:
            h.remove()

    return loss, close


@validate_params({"compressed": Module(finite=True), "original": Module(finite=True),
                  "layers": _LAYER_NAMES, "lam": Float(0, 1e6)})
def finetune(compressed: nn.Module, original: nn.Module, data: Any, *, layers: Any = None, lam: float = 0.5,
             epochs: int = 5, lr: float = 1e-3, batch_size: int = 64, optimizer: str = "adam", seed: int = 0,
             device: Any = "cpu", checkpoint: Any = None, progress: bool = False) -> TrainResult:
    """Fine-tune ``compressed`` in place with CE + λ·(kernel + output distillation) from ``original``.

    Parameters
    ----------
    compressed : torch.nn.Module
        E.g. ``search_ranks(...).model``; its :class:`~redundancy.lowrank.chains.CompressedLayer`
        chains (or the names in ``layers``) are matched to ``original`` by qualified name.
    original : torch.nn.Module
        The teacher: a frozen copy in eval mode is used, ``original`` itself is not changed.
    data : Dataset or (X, y)
    layers : list of str, optional
        Names of the chains to distil (default: every ``CompressedLayer``).
    lam : float
        ``λ`` in ``[0, 1e6]`` (0.5 by default).
    epochs, lr, batch_size, optimizer, seed, device, checkpoint, progress
        Passed to :func:`redundancy.training.train` (``checkpoint`` makes the run resumable).

    Returns
    -------
    TrainResult
        On failure (bad data, a forward error, a non-finite loss) a RedundancyError is raised and
        ``compressed`` is restored to its state before the call.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from redundancy.rank_search.search import search_ranks
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(24, 2))
    >>> X = np.random.default_rng(0).normal(size=(64, 1, 8)).astype("float32"); y = (X[:, 0, 0] > 0).astype("int64")
    >>> res = search_ranks(net, [1, 2], data=(X, y), iters=2, warmup=1)
    >>> finetune(res.model, net, (X, y), epochs=1).epochs
    1
    """
    ds = as_dataset(data)
    if ds.task != "classification":
        raise RedundancyError("data must be a classification data set (the fine-tune loss is cross-entropy)")
    loss, close = distillation_loss(compressed, original, layers=layers, lam=lam)
    snapshot = copy.deepcopy(compressed.state_dict())
    try:
        res = model_errors("finetune")(train)(compressed, ds, epochs=epochs, lr=lr, batch_size=batch_size,
                                              optimizer=optimizer, loss=loss, seed=seed, device=device,
                                              checkpoint=checkpoint, progress=progress, desc="finetune")
        if not all(math.isfinite(v) for v in res.losses):
            raise RedundancyError(f"the fine-tune loss became non-finite (first losses {res.losses[:3]}); "
                                  "lower lr or lam")
    except BaseException:
        compressed.load_state_dict(snapshot)   # a failed fine-tune leaves the compressed model as it was
        raise
    finally:
        close()
    return res


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
    _check_ranks(model, ranks, method)
    out = copy.deepcopy(model)
    chains = {}
    for name, r in ranks.items():
        layer = out.get_submodule(name)
        m = "svd" if isinstance(layer, nn.Linear) else method
        w = layer.weight.detach().cpu().double().numpy()
        chains[name] = build_chain(layer, init_factors(w, method, int(r), seed=seed), m)
    return _replace_layers(out, chains)


def _check_ranks(model, ranks, method):
    known = dict(model.named_modules())
    for name, r in ranks.items():
        if name not in known:
            raise RedundancyError(f"ranks key {name!r} is not a submodule name of the model")
        layer = _searchable(f"layer {name!r}", known[name])
        limit = (min(layer.in_features, layer.out_features) if isinstance(layer, nn.Linear)
                 else _max_rank(layer, method))
        if r > limit:
            raise RedundancyError(f"ranks[{name!r}]={r} is not allowed; layer {name!r} takes ranks 1..{limit} "
                                  f"with method {method!r}")


def _finish(model, base, names, final, mods, pos, max_r, method, skipped, trajectory, seed, ds, input_shape,
            seconds, settings):
    """The search's result: every layer's chain at its final rank ``r*`` (from the original weights)."""
    rows, chains = [], {}
    for n in names:
        r_star, probs, cands = final[n]
        row, chains[n] = _layer_row(n, mods[n], method, r_star, probs, cands, max_r[n], pos[n], seed)
        rows.append(row)
    compressed = _replace_layers(copy.deepcopy(base), chains).to(_v.model_device(model))
    from redundancy.counts import count_macs

    return RankSearchResult(
        method=method, mode="data-free" if ds is None else "data", layers=tuple(rows), skipped=tuple(skipped),
        trajectory=tuple(trajectory), params_dense=sum(p.numel() for p in model.parameters()),
        params_decomposed=sum(p.numel() for p in compressed.parameters()),
        macs_dense=sum(count_macs(base, input_shape).values()),
        macs_decomposed=sum(count_macs(compressed, input_shape).values()), settings=settings, seconds=seconds,
        model=compressed)
