"""Many channel-masked variants of one model per forward pass.

A batch of ``V`` variants (each a set of removed units, see :mod:`redundancy.pruning.groups`) and a
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

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.pruning.groups import mask_hooks, unit_masks

__all__ = ["variant_quality", "check_metric"]

_MAX_ROWS = 2_000_000


def check_metric(metric, task: str):
    """``metric`` normalised: a name allowed for ``task`` or a callable."""
    if metric is None:
        return "accuracy" if task == "classification" else "r2"
    if callable(metric):
        return metric
    allowed = ("accuracy", "loss") if task == "classification" else ("r2", "loss")
    if metric not in allowed:
        raise RedundancyError(f"metric={metric!r} is not allowed for a {task} data set; choose one of "
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
    pred = out.reshape(V, *y.shape).double() if out[0].numel() == y.numel() else out.double()
    res = ((pred - y.double().unsqueeze(0)) ** 2).reshape(V, -1).sum(1)
    if metric == "loss":
        return (-res / y.numel()).cpu().numpy(), None
    tot = float(((y.double() - y.double().mean()) ** 2).sum())
    return (1.0 - res / tot).cpu().numpy() if tot > 0 else np.zeros(V), None


@torch.no_grad()
def variant_quality(model: nn.Module, groups, removed_sets, X: torch.Tensor, y: torch.Tensor, *,
                    metric="accuracy", task: str = "classification", n_classes: int = 0,
                    batch_masks: int = 32, batch_size: int = 4096, progress=None):
    """Quality of the unmasked model and of every variant in ``removed_sets``.

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
    for start in range(0, len(sets), M):
        chunk_sets = sets[start:start + M]
        chunk_sets = chunk_sets + [()] * (M - len(chunk_sets))
        masks = unit_masks(groups, chunk_sets)
        outs = []
        with mask_hooks(model, masks):
            for i in range(0, N, n_chunk):
                xb = X[i:i + n_chunk]
                rows = xb.repeat(M, *([1] * (xb.dim() - 1)))
                o = model(rows)
                outs.append(o.reshape(M, len(xb), *o.shape[1:]))
        out = torch.cat(outs, 1)
        q, pc = _quality(out, y, metric, task, n_classes)
        quals.append(q)
        pcs.append(pc)
        if progress is not None:
            progress.update(len(chunk_sets))
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
    p = next(iter(model.parameters()), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=device, dtype=dtype)
    yt = torch.as_tensor(np.ascontiguousarray(y)).to(device)
    if ds.task == "regression":
        yt = yt.to(dtype)
    return Xt, yt

