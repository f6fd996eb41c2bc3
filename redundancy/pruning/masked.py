"""Many channel-masked variants of one model per forward pass.

A batch of ``V`` variants (each a set of removed units, see :mod:`redundancy.channels.groups`) and a
chunk of ``n`` examples make one forward pass of ``V * n`` rows: the chunk repeated ``V`` times, and a
forward hook on every mask point multiplies variant ``v``'s rows by its 0/1 channel mask. Every
pass has the same shape (the last batch of variants is padded with unmasked ones), so the unmasked
reference and the variants go through identical kernels.

Quality of one variant (higher is better):

* ``"accuracy"``: :math:`\\frac1N \\sum_i [\\arg\\max_k f_k(x_i) = y_i]`, and per class;
* ``"loss"``: minus the mean cross-entropy (classification) or minus the mean squared error;
* ``"r2"``: :math:`1 - \\sum_i (y_i - f(x_i))^2 / \\sum_i (y_i - \\bar y)^2` (0 when the denominator is 0);
* a callable ``metric(outputs, targets) -> float`` (higher is better) on the whole split.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from redundancy._validation import _short
from redundancy.errors import RedundancyError
from redundancy.channels.masks import mask_hooks, unit_masks

__all__: list[str] = []  # the face is in the package's __init__

_MAX_ROWS = 2_000_000


def _check_metric(metric, task: str):
    """``metric`` normalised: a name allowed for ``task`` or a callable."""
    if metric is None:
        return "accuracy" if task == "classification" else "r2"
    if callable(metric) and not isinstance(metric, type):
        return metric
    allowed = ("accuracy", "loss") if task == "classification" else ("r2", "loss")
    if not isinstance(metric, str) or metric not in allowed:
        raise RedundancyError(f"metric={_short(metric)} is not allowed for a {task} data set; choose one of "
                              f"{list(allowed)} or give a callable metric(outputs, targets) -> float")
    return metric


def _quality(out: torch.Tensor, y: torch.Tensor, metric, task: str, n_classes: int):
    """Quality per variant (V,) and per-class accuracy (V, n_classes) or None."""
    V = out.shape[0]
    per_class = None
    if not torch.isfinite(out).all():
        raise RedundancyError("the model's outputs hold NaN or inf on this data; its weights or inputs are not finite")
    if task == "classification":
        correct = (out.argmax(-1) == y.unsqueeze(0)).double()  # (V, N)
        counts = torch.bincount(y, minlength=n_classes).double()
        onehot = torch.nn.functional.one_hot(y, n_classes).double()  # (N, K)
        per_class = ((correct @ onehot) / counts.clamp(min=1)).cpu().numpy()
    if callable(metric):
        vals = []
        for v in range(V):
            val = metric(out[v], y)
            val = float(val.detach()) if torch.is_tensor(val) else float(val)
            if not np.isfinite(val):
                raise RedundancyError(f"metric returned {val} for a masked model; it must return a finite float")
            vals.append(val)
        return np.asarray(vals), per_class
    if metric == "accuracy":
        return correct.mean(1).cpu().numpy(), per_class
    if task == "classification":  # loss
        logp = torch.log_softmax(out.double(), -1)
        ce = -logp.gather(-1, y.reshape(1, -1, 1).expand(V, -1, 1)).squeeze(-1).mean(1)
        return (-ce).cpu().numpy(), per_class
    if out[0].numel() != y.numel():
        raise RedundancyError(f"the model gives {out[0].numel() // max(len(y), 1)} outputs per example but the "
                              f"regression targets have {y.numel() // max(len(y), 1)}; they must match")
    pred = out.reshape(V, *y.shape).double()
    res = ((pred - y.double().unsqueeze(0)) ** 2).reshape(V, -1).sum(1)
    if metric == "loss":
        return (-res / y.numel()).cpu().numpy(), None
    tot = float(((y.double() - y.double().mean()) ** 2).sum())
    return (1.0 - res / tot).cpu().numpy() if tot > 0 else np.zeros(V), None


def _leaves(model: nn.Module):
    return [m for m in model.modules() if next(m.children(), None) is None]


@torch.no_grad()
def _record(model: nn.Module, x: torch.Tensor):
    """(module, output copy) of every leaf-module call of ``model(x)``, in call order."""
    calls = []
    hs = [m.register_forward_hook(lambda mod, a, o: calls.append((mod, o.clone() if torch.is_tensor(o) else None)))
          for m in _leaves(model)]
    try:
        model(x)
    finally:
        for h in hs:
            h.remove()
    return calls


@contextlib.contextmanager
def _replay(calls, upto: int, M: int, needed=None, poison: int = -1):
    """Leaf calls ``0..upto`` return their recorded output repeated ``M`` times (variant-major);
    a call not in ``needed`` returns uninitialised memory of the right shape instead (its value
    never reaches the output, see :func:`_needed`); call ``poison`` returns NaN."""
    queues: dict = {}
    for j, (mod, o) in enumerate(calls[:upto + 1]):
        queues.setdefault(mod, []).append((j, o))
    saved = []
    try:
        for mod, q in queues.items():
            had = "forward" in mod.__dict__
            saved.append((mod, had, mod.__dict__.get("forward")))
            orig = mod.forward
            it = iter(q)

            def fwd(*a, _it=it, _orig=orig, **k):
                j, o = next(_it, (None, None))
                if o is None:
                    return _orig(*a, **k)
                shape = (M * o.shape[0], *o.shape[1:])
                if j == poison:
                    return torch.full(shape, float("nan"), dtype=o.dtype, device=o.device)
                if needed is not None and j not in needed:
                    return torch.empty(shape, dtype=o.dtype, device=o.device)
                return o.repeat(M, *([1] * (o.dim() - 1)))
            mod.forward = fwd
        yield
    finally:
        for mod, had, f in saved:
            if had:
                mod.forward = f
            else:
                del mod.forward


@torch.no_grad()
def _needed(model: nn.Module, calls, upto: int, x1: torch.Tensor) -> set:
    """Replayed calls whose output reaches the model output: call ``j`` is needed when returning NaN
    from it (all other calls replayed) makes the output of one example non-finite."""
    one = [(m, None if o is None else o[:1]) for m, o in calls]
    need = {upto}
    for j in range(upto):
        if one[j][1] is None:
            continue
        with _replay(one, upto, 1, poison=j):
            out = model(x1)
        if not torch.isfinite(out).all():
            need.add(j)
    return need


@torch.no_grad()
def _variant_quality(model: nn.Module, groups, removed_sets, X: torch.Tensor, y: torch.Tensor, *,
                    metric="accuracy", task: str = "classification", n_classes: int = 0,
                    batch_masks: int = 32, batch_size: int = 4096, replay: bool = True, progress=None):
    """Quality of the unmasked model and of every variant in ``removed_sets``.

    With ``replay`` (default), each data chunk first runs once unmasked while the output of every
    leaf module is recorded; the masked pass then returns the recorded outputs (repeated for the
    variants) for every leaf call up to the first masked module instead of computing them again, so
    only the part of the network after the masked layer is run per variant. Recorded outputs that
    never reach the model output (found once per masked layer by NaN probes on one example) are not
    even copied. The values are the same (the prefix does not see the masks); only the work shrinks.

    Returns
    -------
    (float, numpy.ndarray, numpy.ndarray or None, numpy.ndarray or None)
        Reference quality, quality per variant, reference per-class accuracy, per-class accuracy
        per variant (classification only).
    """
    sets = [()] + [tuple(s) for s in removed_sets]
    M = int(batch_masks)
    n_chunk = max(1, int(batch_size) // M)
    N = len(X)
    if M * min(n_chunk, N) > _MAX_ROWS:
        raise RedundancyError(f"batch_masks={M} x {min(n_chunk, N)} examples is over {_MAX_ROWS} rows per pass")
    quals, pcs = [], []
    model.eval()
    mods = dict(model.named_modules())
    needed_at: dict = {}
    batches = []
    for start in range(0, len(sets), M):
        chunk_sets = sets[start:start + M]
        chunk_sets = chunk_sets + [()] * (M - len(chunk_sets))
        masks = unit_masks(groups, chunk_sets)
        batches.append((masks, {mods[name] for name in masks}))
    outs: list[list] = [[] for _ in batches]
    for i in range(0, N, n_chunk):  # one recording per chunk, shared by every batch of variants
        xb = X[i:i + n_chunk]
        calls = _record(model, xb) if replay else []
        rows = xb.repeat(M, *([1] * (xb.dim() - 1)))
        for b, (masks, masked_mods) in enumerate(batches):
            upto = next((j for j, (m, _) in enumerate(calls) if m in masked_mods), -1)
            if upto not in needed_at:
                needed_at[upto] = _needed(model, calls, upto, xb[:1]) if upto > 0 else None
            with _replay(calls, upto, M, needed_at[upto]), mask_hooks(model, masks):
                o = model(rows)
            if needed_at[upto] is not None and not torch.isfinite(o).all():  # a skipped output was used
                with _replay(calls, upto, M), mask_hooks(model, masks):
                    o = model(rows)
            outs[b].append(o.reshape(M, len(xb), *o.shape[1:]))
            if progress is not None and i + n_chunk >= N:
                progress.update(M)
    for b in range(len(batches)):
        q, pc = _quality(torch.cat(outs[b], 1), y, metric, task, n_classes)
        quals.append(q)
        pcs.append(pc)
    q = np.concatenate(quals)[:len(sets)]
    pc = None if pcs[0] is None else np.concatenate(pcs)[:len(sets)]
    return float(q[0]), q[1:], (None if pc is None else pc[0]), (None if pc is None else pc[1:])


def as_tensors(ds, split: str, model: nn.Module, device, max_examples=None, seed=0):
    """Inputs and targets of ``split`` as tensors on ``device`` in the model's dtype (a seeded
    subset of ``max_examples`` when given)."""
    from redundancy._validation import as_generator, check_int

    X = ds.X_train if split == "train" else ds.X_test
    y = ds.y_train if split == "train" else ds.y_test
    if max_examples is not None:
        max_examples = check_int("max_examples", max_examples, min_value=1)
        if max_examples < len(y):
            idx = np.sort(as_generator(seed).permutation(len(y))[:max_examples])
            X, y = X[idx], y[idx]
    from redundancy._validation import model_dtype

    dtype = model_dtype(model)
    Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=device, dtype=dtype)
    yt = torch.as_tensor(np.ascontiguousarray(y)).to(device)
    if ds.task == "regression":
        yt = yt.to(dtype)
    return Xt, yt

