"""The rank search's budget and verdict: held-out accuracy and loss of the compressed model.

With data, the compressed model is scored on the test split of ``data`` (never seen by the search;
the training split when there is none): accuracy and mean cross-entropy of the original and of the
compressed model. When it costs more than ``max_accuracy_drop`` in accuracy (or, when given, more
than ``max_loss_increase`` in cross-entropy), the search backs off: each compressed layer's cost is
the accuracy lost with that layer alone compressed, and the costliest layers are put back dense, one
at a time, until the model is within budget (they are recorded in ``skipped`` with the reason).

Data-free, nothing can be scored: conv layers whose input or output has very few channels (``<= 3``, a
one-channel stem) are kept dense, and the verdict is ``"not_applicable"``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v

__all__: list[str] = []

#: defaults of :func:`~redundancy.rank_search.search_ranks`
DEFAULT_MAX_ACCURACY_DROP = 0.05
PROTECT_CHANNELS = 3


def few_channels(layer: nn.Module, limit: int = PROTECT_CHANNELS) -> str | None:
    """Why a data-free search keeps the conv ``layer`` dense (None: it is searched; Linear layers are)."""
    if isinstance(layer, nn.Linear):
        return None
    c_in, c_out = layer.in_channels, layer.out_channels
    if min(c_in, c_out) <= limit:
        return (f"kept dense: {c_in} input / {c_out} output channels (<= {limit}); a data-free search cannot "
                "tell what a rank this small costs, and the layer has almost nothing to save")
    return None


def _split(ds):
    return (ds.X_test, ds.y_test) if len(ds.y_test) else (ds.X_train, ds.y_train)


def score(model: nn.Module, ds) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` on the held-out split (eval mode, no gradients)."""
    X, y = _split(ds)
    dev = _v.model_device(model)
    with torch.no_grad(), _v.guard_model(model, eval=True):
        Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=dev, dtype=_v.model_dtype(model))
        yt = torch.as_tensor(np.ascontiguousarray(y)).to(dev)
        out = torch.cat([model(Xt[i:i + 1024]) for i in range(0, len(yt), 1024)])
        return float((out.argmax(1) == yt).double().mean()), float(nn.functional.cross_entropy(out.double(), yt))


def _within(orig, now, budget) -> bool:
    acc_drop, loss_up = budget
    return ((acc_drop is None or orig[0] - now[0] <= acc_drop + 1e-12)
            and (loss_up is None or now[1] - orig[1] <= loss_up + 1e-12))


def back_off(original: nn.Module, res, ds, budget, count_macs_shape):
    """``(result, original score, compressed score, restored names)``: ``res`` with its costliest
    layers put back dense until the compressed model is within ``budget = (acc drop, loss increase)``."""
    from redundancy.counts import count_macs
    from redundancy.rank_search.candidates import _replace_layers

    orig, now = score(original, ds), score(res.model, ds)
    if _within(orig, now, budget) or not res.layers:
        return res, orig, now, []
    dev = _v.model_device(res.model)
    cost = {}
    for row in res.layers:  # each layer alone compressed
        one = _replace_layers(copy.deepcopy(original).to(dev),
                              {row.name: copy.deepcopy(res.model.get_submodule(row.name))})
        cost[row.name] = orig[0] - score(one, ds)[0]
    model, restored = copy.deepcopy(res.model), []
    for name in sorted(cost, key=lambda n: (-cost[n], n)):
        model = _replace_layers(model, {name: copy.deepcopy(original.get_submodule(name)).to(dev)})
        restored.append(name)
        now = score(model, ds)
        if _within(orig, now, budget):
            break
    skipped = tuple(res.skipped) + tuple(
        {"name": n, "layer_type": type(original.get_submodule(n)).__name__,
         "reason": f"kept dense by the budget: compressed alone it cost {cost[n]:.4f} held-out accuracy"}
        for n in restored)
    res = dataclasses.replace(res, layers=tuple(r for r in res.layers if r.name not in restored), skipped=skipped,
                              params_decomposed=sum(p.numel() for p in model.parameters()),
                              macs_decomposed=sum(count_macs(model, count_macs_shape).values()), model=model)
    return res, orig, now, restored


def judge(orig, decided, finetuned, ds, budget, restored, *, left=1, warn=True):
    """The :class:`~redundancy.training.Verdict` on held-out accuracy (scores are ``(acc, loss)``)."""
    from redundancy.training import chance_level, check_decision

    v = check_decision(metric="accuracy", original=orig[0], decided=decided[0],
                       finetuned=None if finetuned is None else finetuned[0], chance=chance_level(_split(ds)[1]),
                       budget=budget[0], what="search_ranks", warn=warn, stacklevel=6)
    final = decided if finetuned is None else finetuned
    notes = [f"held-out cross-entropy {orig[1]:.4f} -> {final[1]:.4f}"]
    if budget[1] is not None and final[1] - orig[1] > budget[1] + 1e-12:
        notes.append(f"past max_loss_increase={budget[1]:g}")
        if v.verdict == "ok":
            v = dataclasses.replace(v, verdict="over_budget")
            if warn:
                import warnings

                from redundancy.errors import DecisionWarning

                warnings.warn(f"search_ranks: held-out cross-entropy {orig[1]:.4f} -> {final[1]:.4f}, more than "
                              f"max_loss_increase={budget[1]:g}", DecisionWarning, stacklevel=5)
    if restored:
        notes.append(f"{len(restored)} layer(s) kept dense to stay within the budget ({', '.join(restored)})")
    if restored and not left:
        notes.append("no layer can be compressed within the budget: the model handed back is the original")
        if warn:
            import warnings

            from redundancy.errors import DecisionWarning

            warnings.warn(f"search_ranks: every searched layer costs more than the budget (max_accuracy_drop="
                          f"{budget[0]}, max_loss_increase={budget[1]}) when compressed at its searched rank; "
                          "no layer is compressed (try warm_start=0, more iters, or a larger budget)",
                          DecisionWarning, stacklevel=5)
    return dataclasses.replace(v, reason=f"{v.reason}; " + "; ".join(notes))


def data_free_verdict(res):
    """Data-free: nothing held out to judge with; the verdict is ``"not_applicable"``."""
    from redundancy.training import Verdict

    err = [r.rel_error for r in res.layers]
    return Verdict(metric="loss", original=0.0, decided=float(np.mean(err)) if err else 0.0, finetuned=None,
                   chance=1.0, budget=None, verdict="not_applicable",
                   reason=("data-free search: no held-out data to judge the compressed model (decided = mean relative "
                           "kernel reconstruction error); pass data=... or evaluate res.model before using it"))
