"""Many small models trained at once with ``torch.func`` (``vmap`` over stacked parameters): :func:`train_ensemble`."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_choice, check_int, check_module, check_nonnegative_float, check_positive_float
from redundancy.data import as_dataset
from redundancy.errors import ConvergenceWarning, RedundancyError
from redundancy.training.common import _MAX_ENSEMBLE, _MAX_EPOCHS, _OPT_PARAMS, _optimizer, _tensors, check_device
from redundancy.training.diagnostics import Convergence, assess_convergence, has_settled


@_v.result()
class EnsembleTrainResult(_v.Result):
    """What :func:`train_ensemble` did: every member's objective history, when it stopped and why.

    Attributes
    ----------
    losses : numpy.ndarray, shape (n_models, epochs)
        Mean training loss of every member and epoch; after a member stopped its last value is
        repeated (``epochs_run`` says where it stopped).
    epochs : int
        Epochs the ensemble ran (those of its slowest member; at most the cap).
    epochs_run : numpy.ndarray of int, shape (n_models,)
        Epochs each member trained before it stopped (and was frozen) or hit the cap.
    converged : numpy.ndarray of bool, shape (n_models,)
        Whether each member's stopping rule fired (objective settled, or ``target_accuracy`` reached).
    train_accuracy : numpy.ndarray or None, shape (n_models,)
        Each member's final accuracy on its own subset (classification).
    convergence : Convergence
        The least converged member's diagnostics (an unconverged member if there is one, else the
        slowest); :meth:`member` gives any member's.
    """

    losses: np.ndarray = field(repr=False)
    epochs: int
    steps: int
    seconds: float
    epochs_run: np.ndarray = field(repr=False)
    converged: np.ndarray = field(repr=False)
    train_accuracy: np.ndarray | None = field(repr=False)
    convergence: Convergence
    seeds: tuple[int, ...] = field(repr=False)
    settings: dict[str, Any] = field(repr=False)

    __eq__ = object.__eq__  # identity (arrays have no single truth value)
    __hash__ = object.__hash__

    def member(self, t: int) -> Convergence:
        """The :class:`~redundancy.training.Convergence` of member ``t``."""
        t = check_int("t", t, min_value=0, max_value=len(self.epochs_run) - 1)
        s = self.settings
        acc = None if self.train_accuracy is None else float(self.train_accuracy[t])
        return assess_convergence(self.losses[t, : self.epochs_run[t]], max_epochs=s["max_epochs"], tol=s["tol"],
                                  patience=s["patience"], train_accuracy=acc, stopped=bool(self.converged[t]))

    def _extra_dict(self) -> dict[str, Any]:
        return {"n_converged": int(self.converged.sum()), "n_models": int(len(self.converged))}

    def to_pandas(self):
        import pandas as pd

        t, e = np.meshgrid(np.arange(self.losses.shape[0]), np.arange(1, self.losses.shape[1] + 1), indexing="ij")
        keep = (e <= self.epochs_run[:, None]).ravel()
        return pd.DataFrame({"model": t.ravel()[keep], "epoch": e.ravel()[keep], "loss": self.losses.ravel()[keep]})


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


class _Freezer:
    """Keeps stopped members where they stopped: their parameter rows and optimizer-state rows are put
    back after every step (Adam's moments would otherwise move them even with a zero gradient)."""

    def __init__(self, params: dict, opt: torch.optim.Optimizer, T: int, dev):
        self.params, self.opt = params, opt
        self.frozen = torch.zeros(T, dtype=torch.bool, device=dev)
        self.saved: dict = {}

    def _rows(self):
        for k, p in self.params.items():
            yield (k,), p
            for name, v in self.opt.state.get(p, {}).items():
                if torch.is_tensor(v) and v.shape == p.shape:
                    yield (k, name), v

    def freeze(self, members: torch.Tensor) -> None:
        """Freeze ``members`` (bool mask) from now on, at their current values."""
        with torch.no_grad():
            for key, v in self._rows():
                saved = self.saved.setdefault(key, v.detach().clone())
                saved[members] = v[members]
        self.frozen |= members

    def restore(self) -> None:
        if not bool(self.frozen.any()):
            return
        with torch.no_grad():
            for key, v in self._rows():
                v[self.frozen] = self.saved[key][self.frozen]


def _subset_accuracy(fwd, params, X, y, sub, chunk: int = 2048) -> np.ndarray:
    """Each member's accuracy on its own subset (vmapped forward, ``chunk`` columns at a time)."""
    correct = torch.zeros(sub.shape[0], dtype=torch.float64, device=sub.device)
    with torch.no_grad():
        for cols in torch.split(torch.arange(sub.shape[1], device=sub.device), chunk):
            idx = sub[:, cols]
            correct += (fwd(params, X[idx]).argmax(-1) == y[idx]).sum(1).to(torch.float64)
    return (correct / sub.shape[1]).cpu().numpy()


def _ensemble_epoch(fwd, params, opt, freezer, X, y, sub, gens, batch_size, task, epoch):
    """One epoch of every member on its own seeded batches; returns per-member mean losses, the running
    accuracy over the epoch's batches (classification; a cheap hint for the target check) and the steps."""
    T, m = sub.shape
    order = torch.stack([torch.randperm(m, generator=g) for g in gens]).to(sub.device)
    total, hits, steps = np.zeros(T), torch.zeros(T, device=sub.device), 0
    for cols in torch.split(order, batch_size, dim=1):
        idx = torch.gather(sub, 1, cols)  # (T, b) training-set indices
        out, yb = fwd(params, X[idx]), y[idx]
        if task == "regression":
            per = ((out.reshape(yb.shape) if out.numel() == yb.numel() else out) - yb) ** 2
            value = per.reshape(T, -1).mean(1)
        else:
            value = nn.functional.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none")
            value = value.reshape(T, -1).mean(1)
            hits += (out.detach().argmax(-1) == yb).sum(1)
        bad = ~torch.isfinite(value) & ~freezer.frozen
        if bad.any():
            t = int(bad.nonzero()[0])
            raise RedundancyError(f"the training loss of model {t} became {float(value[t])} at epoch "
                                  f"{epoch + 1}; lower lr or check the data")
        opt.zero_grad(set_to_none=True)
        value.sum().backward()
        opt.step()
        freezer.restore()
        total += value.detach().cpu().numpy() * cols.shape[1]
        steps += 1
    return total / max(m, 1), (hits / max(m, 1)).cpu().numpy(), steps


def _stops(history: np.ndarray, acc, target, tol, patience) -> bool:
    if target is not None and acc is not None and acc >= target:
        return True
    return tol > 0 and has_settled(history, tol=tol, patience=patience)


#: the exact subset accuracy is computed once a member's running accuracy over an epoch is this close to the target
_TARGET_SLACK = 0.05

_STOP_PARAMS = {"epochs": _v.Int(0, _MAX_EPOCHS), "tol": _v.Check(_v.check_nonnegative_float),
                "patience": _v.Int(1, _MAX_EPOCHS),
                "target_accuracy": lambda name, v: None if v is None else _v.Float(0.0, 1.0, lo_open=True)(name, v)}


@_v.validate_params({**_OPT_PARAMS, **_STOP_PARAMS})
def train_ensemble(models, data: Any, subsets, *, seeds, epochs: int = 10, batch_size: int = 64,
                   lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.9,
                   tol: float = 1e-4, patience: int = 5, target_accuracy: float | None = None,
                   device: Any = "cpu", progress: bool = False, desc: str = "ensemble") -> EnsembleTrainResult:
    r"""Train ``T`` models of one architecture at once, model ``t`` on the training examples ``subsets[t]``,
    each until its own stopping rule fires or ``epochs`` (the cap) runs out.

    Until a member stops, it is, up to floating-point rounding, what a separate call
    ``train(models[t], (X_train[subsets[t]], y_train[subsets[t]]), seed=seeds[t], ...)`` gives: each
    model sees its own seeded batch order (the permutation logic of :func:`train`) and takes the
    same optimizer steps. The parameters are stacked along a new leading axis
    (``torch.func.stack_module_state``); one step evaluates every model on its own batch with
    ``torch.func.vmap`` over ``torch.func.functional_call`` and minimises
    :math:`\sum_t \frac{1}{|B_t|}\sum_{i\in B_t}\ell(f_{\theta_t}(x_i), y_i)`, whose gradient with
    respect to :math:`\theta_t` is model ``t``'s own mean-loss gradient. Adam and SGD act elementwise,
    so one optimizer over the stacked tensors updates every model as its own optimizer would.
    All subsets have one size, so every model has the same number and sizes of batches.

    Stopping, per member, checked after every epoch: its mean training loss has settled
    (:func:`~redundancy.training.diagnostics.has_settled` with ``tol`` and ``patience``; ``tol=0``
    turns this off), or its accuracy on its own subset reached ``target_accuracy``. A member that
    stops is frozen (parameters and optimizer state no longer change); the ensemble ends when every
    member has stopped or after ``epochs`` epochs. Members that hit the cap unconverged trigger one
    :class:`~redundancy.errors.ConvergenceWarning`.

    Parameters
    ----------
    models : list of torch.nn.Module
        Initialised models of one architecture, without buffers or dropout; trained in place.
    data : Dataset or arrays
    subsets : array of int, shape (T, m)
        Training-set indices of each model's subset.
    seeds : sequence of int
        One batch-order seed per model (``seed`` of :func:`train`).
    epochs : int
        The cap on every member's epochs.
    tol, patience : float, int
        The loss rule: stop when the best loss improved by less than ``tol`` (relative) in ``patience`` epochs.
    target_accuracy : float, optional
        Also stop a member once its accuracy on its own subset is at least this (classification).
    batch_size, lr, weight_decay, optimizer, momentum, device, progress
        As in :func:`train` (default loss: cross-entropy or mean squared error).

    Returns
    -------
    EnsembleTrainResult
        Per-member loss histories, ``epochs_run``, ``converged`` and ``train_accuracy``; the models
        are trained in place.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> from torch import nn
    >>> nets = [nn.Linear(2, 2) for _ in range(4)]
    >>> sub = np.stack([rng.permutation(100)[:70] for _ in range(4)])
    >>> res = train_ensemble(nets, (X, y), sub, seeds=[0, 1, 2, 3], epochs=100, lr=0.05, target_accuracy=0.95)
    >>> bool(res.converged.all()), bool((res.train_accuracy >= 0.95).all()), res.epochs < 100
    (True, True, True)
    """
    ds = as_dataset(data)
    models, sub, seeds = _check_ensemble(models, subsets, seeds, len(ds.y_train))
    if target_accuracy is not None and ds.task != "classification":
        raise RedundancyError("target_accuracy needs a classification data set; use the loss rule (tol) instead")
    dev = check_device(device)
    for m in models:
        m.to(dev)
    t0 = time.perf_counter()
    run = _run_ensemble(models, ds, sub.to(dev), seeds, dev, epochs=epochs, batch_size=batch_size,
                        opt_kw=dict(lr=lr, weight_decay=weight_decay, momentum=momentum), optimizer=optimizer,
                        stop=(tol, patience, target_accuracy), bar=dict(desc=desc, disable=not progress, leave=False))
    settings = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "momentum": momentum if optimizer == "sgd" else None, "device": str(dev), "subset_size": int(sub.shape[1]),
                "n_models": int(sub.shape[0]), "max_epochs": epochs, "tol": tol, "patience": patience,
                "target_accuracy": target_accuracy}
    res = EnsembleTrainResult(seconds=time.perf_counter() - t0, seeds=tuple(seeds), settings=settings,
                              convergence=_worst(run, epochs, tol, patience), **run)
    _warn_members(res, epochs)
    return res


def _run_ensemble(models, ds, sub, seeds, dev, *, epochs, batch_size, opt_kw, optimizer, stop, bar) -> dict:
    """The epochs of :func:`train_ensemble`; writes the trained parameters back into ``models``."""
    from torch.func import functional_call, stack_module_state, vmap
    from tqdm.auto import tqdm

    tol, patience, target = stop
    stacked, _ = stack_module_state(models)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in stacked.items()}
    base = copy.deepcopy(models[0]).to("meta")
    opt = _optimizer(optimizer, list(params.values()), **opt_kw)
    X, y = _tensors(ds, "train", dev, _v.model_dtype(models[0]))
    T = sub.shape[0]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    fwd = vmap(lambda p, x: functional_call(base, p, (x,)))
    freezer = _Freezer(params, opt, T, dev)
    losses, epochs_run, converged = np.full((T, epochs), np.nan), np.zeros(T, np.int64), np.zeros(T, bool)
    acc, steps, epoch = None, 0, 0
    for epoch in tqdm(range(epochs), **bar):
        mean, running, n = _ensemble_epoch(fwd, params, opt, freezer, X, y, sub, gens, batch_size, ds.task, epoch)
        steps += n
        active = ~freezer.frozen.cpu().numpy()
        losses[active, epoch] = mean[active]
        epochs_run[active] += 1
        # the exact subset accuracy (one more forward pass) only once some member's running accuracy is close
        near = target is not None and bool((running[active] >= target - _TARGET_SLACK).any())
        acc = _subset_accuracy(fwd, params, X, y, sub) if near else None
        for t in np.flatnonzero(active):
            converged[t] = _stops(losses[t, : epoch + 1], None if acc is None else acc[t], target, tol, patience)
        if converged.any():
            freezer.freeze(torch.as_tensor(converged, device=dev) & ~freezer.frozen)
        if converged.all():
            break
    acc = _subset_accuracy(fwd, params, X, y, sub) if ds.task == "classification" else None
    with torch.no_grad():
        for t, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][t])
            model.eval()
    ran = int(epochs_run.max(initial=0))
    for t in range(T):
        losses[t, epochs_run[t]:ran] = losses[t, epochs_run[t] - 1] if epochs_run[t] else 0.0
    return {"losses": losses[:, :ran], "epochs": ran, "steps": steps, "epochs_run": epochs_run,
            "converged": converged, "train_accuracy": acc}


def _worst(run: dict, epochs: int, tol: float, patience: int) -> Convergence:
    """The least converged member: an unconverged one with the largest recent change, else the slowest."""
    er, conv = run["epochs_run"], run["converged"]
    if len(er) == 0 or er.max(initial=0) == 0:
        return Convergence(epochs_run=0, max_epochs=epochs, final_objective=float("nan"), rel_change=0.0,
                           converged=False, tol=float(tol), patience=int(patience))
    convs = [assess_convergence(run["losses"][t, : er[t]], max_epochs=epochs, tol=tol, patience=patience,
                                train_accuracy=None if run["train_accuracy"] is None else float(run["train_accuracy"][t]),
                                stopped=bool(conv[t])) for t in range(len(er))]
    if not conv.all():
        return max((c for c in convs if not c.converged), key=lambda c: c.rel_change)
    return max(convs, key=lambda c: c.epochs_run)


def _warn_members(res: EnsembleTrainResult, epochs: int) -> None:
    n_bad = int((~res.converged).sum())
    if n_bad and epochs > 0:
        warnings.warn(f"train_ensemble: {n_bad} of {len(res.converged)} models hit the cap epochs={epochs} before "
                      f"their stopping rule fired (least converged: {res.convergence.summary()}); raise epochs or "
                      "lr, or loosen tol/target_accuracy", ConvergenceWarning, stacklevel=3)
