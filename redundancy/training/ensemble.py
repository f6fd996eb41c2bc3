"""Many small models trained at once with ``torch.func`` (``vmap`` over stacked parameters): :func:`train_ensemble`."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_choice, check_int, check_module, check_nonnegative_float, check_positive_float
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.training.common import _MAX_ENSEMBLE, _MAX_EPOCHS, _OPT_PARAMS, _optimizer, _tensors, check_device


@_v.result()
class EnsembleTrainResult(_v.Result):
    """What :func:`train_ensemble` did: per-model mean training loss of every epoch, the settings.

    ``losses`` has shape ``(n_models, epochs)``; the models themselves are trained in place.
    """

    losses: np.ndarray = field(repr=False)
    epochs: int
    steps: int
    seconds: float
    seeds: tuple[int, ...] = field(repr=False)
    settings: dict[str, Any] = field(repr=False)

    def to_pandas(self):
        import pandas as pd

        t, e = np.meshgrid(np.arange(self.losses.shape[0]), np.arange(1, self.losses.shape[1] + 1), indexing="ij")
        return pd.DataFrame({"model": t.ravel(), "epoch": e.ravel(), "loss": self.losses.ravel()})


def _check_ensemble(models, subsets, seeds, n_train):
    models = list(models) if isinstance(models, (list, tuple)) else None
    if not models or not 1 <= len(models) <= _MAX_ENSEMBLE:
        raise RedundancyError(f"models must be a list of 1..{_MAX_ENSEMBLE} torch modules of one architecture")
    shapes = [(n, p.shape) for n, p in check_module("models[0]", models[0]).named_parameters()]
    for t, m in enumerate(models):
        if [(n, p.shape) for n, p in check_module(f"models[{t}]", m).named_parameters()] != shapes:
            raise RedundancyError(f"models[{t}] has other parameter names or shapes than models[0]; "
                                  "all models must share one architecture")
        if any(True for _ in m.buffers()) or any(isinstance(k, nn.modules.dropout._DropoutNd) and k.p > 0
                                                 for k in m.modules()):
            raise RedundancyError(f"models[{t}] has buffers (BatchNorm) or dropout; train_ensemble supports "
                                  "deterministic models without buffers (use GroupNorm/LayerNorm or none)")
    try:
        sub = np.asarray(subsets, dtype=np.int64)
    except (TypeError, ValueError):
        sub = np.zeros((0,))
    if sub.ndim != 2 or sub.shape[0] != len(models) or sub.shape[1] < 1 or sub.min() < 0 or sub.max() >= n_train:
        raise RedundancyError(f"subsets must be {len(models)} index arrays of one common length >= 1 with entries "
                              f"in [0, {n_train}) (equal sizes keep every model's batches aligned)")
    seeds = [check_int("seeds", s, min_value=0, max_value=2 ** 63 - 1) for s in seeds]
    if len(seeds) != len(models):
        raise RedundancyError(f"seeds has {len(seeds)} entries; give one per model ({len(models)})")
    return models, torch.as_tensor(sub), seeds


@_v.validate_params({**_OPT_PARAMS, "epochs": _v.Int(0, _MAX_EPOCHS)})
def train_ensemble(models, data: Any, subsets, *, seeds, epochs: int = 10, batch_size: int = 64,
                   lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.9,
                   device: Any = "cpu", progress: bool = False, desc: str = "ensemble") -> EnsembleTrainResult:
    r"""Train ``T`` models of one architecture at once, model ``t`` on the training examples ``subsets[t]``.

    The result is, up to floating-point rounding, what ``T`` separate calls
    ``train(models[t], (X_train[subsets[t]], y_train[subsets[t]]), seed=seeds[t], ...)`` give: each
    model sees its own seeded batch order (the permutation logic of :func:`train`) and takes the
    same optimizer steps. The parameters are stacked along a new leading axis
    (``torch.func.stack_module_state``); one step evaluates every model on its own batch with
    ``torch.func.vmap`` over ``torch.func.functional_call`` and minimises
    :math:`\sum_t \frac{1}{|B_t|}\sum_{i\in B_t}\ell(f_{\theta_t}(x_i), y_i)`, whose gradient with
    respect to :math:`\theta_t` is model ``t``'s own mean-loss gradient. Adam and SGD act elementwise,
    so one optimizer over the stacked tensors updates every model as its own optimizer would.
    All subsets have one size, so every model has the same number and sizes of batches.

    Parameters
    ----------
    models : list of torch.nn.Module
        Initialised models of one architecture, without buffers or dropout; trained in place.
    data : Dataset or arrays
    subsets : array of int, shape (T, m)
        Training-set indices of each model's subset.
    seeds : sequence of int
        One batch-order seed per model (``seed`` of :func:`train`).
    epochs, batch_size, lr, weight_decay, optimizer, momentum, device, progress
        As in :func:`train` (default loss: cross-entropy or mean squared error).

    Returns
    -------
    EnsembleTrainResult
        ``losses`` of shape ``(T, epochs)``; the models are trained in place.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> from torch import nn
    >>> from redundancy.training import evaluate
    >>> nets = [nn.Linear(2, 2) for _ in range(4)]
    >>> sub = np.stack([rng.permutation(100)[:70] for _ in range(4)])
    >>> res = train_ensemble(nets, (X, y), sub, seeds=[0, 1, 2, 3], epochs=40, lr=0.05)
    >>> res.losses.shape, evaluate(nets[0], (X, y)).accuracy > 0.9
    ((4, 40), True)
    """
    from torch.func import functional_call, stack_module_state, vmap

    ds = as_dataset(data)
    models, sub, seeds = _check_ensemble(models, subsets, seeds, len(ds.y_train))
    dev = check_device(device)
    for m in models:
        m.to(dev)
    stacked, _ = stack_module_state(models)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in stacked.items()}
    base = copy.deepcopy(models[0]).to("meta")
    opt = _optimizer(optimizer, list(params.values()), lr=lr, weight_decay=weight_decay, momentum=momentum)
    X, y = _tensors(ds, "train", dev, _v.model_dtype(models[0]))
    sub = sub.to(dev)
    T, m = sub.shape
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    fwd = vmap(lambda p, x: functional_call(base, p, (x,)))
    losses = np.zeros((T, epochs))
    steps, t0 = 0, time.perf_counter()
    from tqdm.auto import tqdm

    for epoch in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        order = torch.stack([torch.randperm(m, generator=g) for g in gens]).to(dev)
        for cols in torch.split(order, batch_size, dim=1):
            idx = torch.gather(sub, 1, cols)  # (T, b) training-set indices
            out, yb = fwd(params, X[idx]), y[idx]
            if ds.task == "regression":
                per = ((out.reshape(yb.shape) if out.numel() == yb.numel() else out) - yb) ** 2
                value = per.reshape(T, -1).mean(1)
            else:
                value = nn.functional.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none")
                value = value.reshape(T, -1).mean(1)
            if not torch.isfinite(value).all():
                bad = int((~torch.isfinite(value)).nonzero()[0])
                raise RedundancyError(f"the training loss of model {bad} became {float(value[bad])} at epoch "
                                      f"{epoch + 1}; lower lr or check the data")
            opt.zero_grad(set_to_none=True)
            value.sum().backward()
            opt.step()
            losses[:, epoch] += value.detach().cpu().numpy() * cols.shape[1]
            steps += 1
        losses[:, epoch] /= max(m, 1)
    with torch.no_grad():
        for t, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][t])
            model.eval()
    settings = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "momentum": momentum if optimizer == "sgd" else None, "device": str(dev), "subset_size": int(m),
                "n_models": int(T)}
    return EnsembleTrainResult(losses=losses, epochs=epochs, steps=steps, seconds=time.perf_counter() - t0,
                               seeds=tuple(seeds), settings=settings)
