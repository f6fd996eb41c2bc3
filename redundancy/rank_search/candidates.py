"""Stage 1 of the rank search: which layers it touches, where they sit, how large a rank each can
take (:func:`max_search_rank`), and how layers are swapped for their candidates or chains."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.errors import RedundancyError
from redundancy.rank_search.chains import SEARCH_METHODS, chain_params, skip_reason
from redundancy.rank_search.factors import cp3_max_rank, tt_max_rank


def _searchable(name, value):
    """A Conv1d/2d/3d with groups 1 or a Linear (what the search decomposes)."""
    if not isinstance(value, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        raise RedundancyError(f"{name}={type(value).__name__} is not allowed; {name} must be a Conv1d, Conv2d, "
                              "Conv3d (groups 1) or Linear layer")
    reason = skip_reason(value)
    if reason is not None:
        raise RedundancyError(f"{name} cannot be searched: {reason}")
    return value


def _layer_positions(model: nn.Module, names, input_shape) -> dict[str, list[tuple[int, int]]]:
    """Per named layer and call, ``(P_in, P_out)``: input and output positions of one input example."""
    pos: dict[str, list] = {n: [] for n in names}
    handles = []
    for n in names:
        mod = model.get_submodule(n)

        def hook(m, args, out, n=n):
            ch_in = m.in_features if isinstance(m, nn.Linear) else m.in_channels
            ch_out = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            pos[n].append((args[0].numel() // ch_in, out.numel() // ch_out))
        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad(), _v.guard_model(model, eval=True):
            x = torch.zeros((1, *input_shape), dtype=_v.model_dtype(model), device=_v.model_device(model))
            model(x)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller's forward may raise anything
        raise RedundancyError(f"input_shape={tuple(input_shape)} does not fit the model ({type(exc).__name__}: "
                              f"{_v._first_line(exc)[:200]}); give the shape of one input without the batch "
                              "dimension") from None
    finally:
        for h in handles:
            h.remove()
    return pos


def _replace_layers(model: nn.Module, new: dict[str, nn.Module]) -> nn.Module:
    """Set ``model.<name> = new[name]`` for every qualified name (in place); returns ``model``, or
    ``new[""]`` when the model itself (the empty name) is the searched layer."""
    if "" in new:
        return new[""]
    for name, mod in new.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, mod)
    return model


def _select(model, layers):
    if layers is None:
        names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        known = dict(model.named_modules())
        for n in names:
            if n not in known or not n:
                raise RedundancyError(f"layers entry {n!r} is not a submodule name of the model")
    keep, skipped = [], []
    for n in names:
        mod = model.get_submodule(n)
        reason = skip_reason(mod)
        if reason is not None:
            skipped.append({"name": n, "layer_type": type(mod).__name__, "reason": reason})
        else:
            keep.append(n)
    return keep, skipped


@_v.validate_params({"layer": _v.Check(_searchable), "method": _v.Choice(*SEARCH_METHODS)})
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
    return _max_rank(layer, method)


def _max_rank(layer: nn.Module, method: str) -> int:
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
