"""The one mini-batch training loop: :func:`train` (seeded, resumable, custom loss)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.training.common import (_MAX_EPOCHS, _OPT_PARAMS, _optimizer, _probe, _tensors, batches, check_device,
                                        default_loss)
from redundancy.training.diagnostics import Convergence, assess_convergence, has_settled, warn_unconverged

@_v.result()
class TrainResult(_v.Result):
    """What :func:`train` did: the mean training loss of every epoch, whether it settled, the settings.

    The model itself is trained in place and also held in ``model``. ``convergence`` is the stopping
    rule's evidence (``None`` when no epoch ran); ``convergence.converged`` is False when the epoch
    cap (or ``max_steps``) ran out before the loss settled.
    """

    losses: tuple[float, ...]
    epochs: int
    steps: int
    seconds: float
    seed: int
    settings: dict[str, Any]
    resumed_from_epoch: int = 0
    convergence: Convergence | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False, metadata=_v.NOT_EXPORTED)

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"epoch": np.arange(1, len(self.losses) + 1), "loss": self.losses})


def _save(path: str, model: nn.Module, opt, epoch: int, losses: list[float], gen: torch.Generator) -> None:
    tmp = f"{path}.tmp"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                "losses": torch.tensor(losses, dtype=torch.float64), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)  # atomic: a kill during the save leaves the previous checkpoint whole


def _resume(ckpt, model, opt, gen):
    """``(start epoch, losses, torch RNG state)`` of a checkpoint file, loaded into ``model``/``opt``/``gen``."""
    if ckpt is None or not os.path.exists(ckpt):
        return 0, [], None
    from redundancy.checkpoint import load_checkpoint

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    return int(state["epoch"]), [float(v) for v in state["losses"]], state["torch_rng"]


@dataclass(frozen=True)
class _Objective:
    """One optimisation step of :func:`_descend`: ``loss(t)`` minimised over ``params`` by ``optimizer``.

    ``start``: first iteration that takes the step (earlier ones report a zero loss); ``clip``: the
    gradient-norm cap; ``log_scale``: step on ``log loss`` (the gradient divided by the loss, clamped
    away from 0) instead of on ``loss``.
    """

    params: Sequence[torch.Tensor]
    optimizer: torch.optim.Optimizer
    loss: Callable[[int], torch.Tensor]
    start: int = 0
    clip: float | None = None
    log_scale: bool = False


def _objective_step(obj: _Objective, t: int) -> torch.Tensor:
    if t < obj.start:
        return torch.zeros(())
    value = obj.loss(t)
    grads = torch.autograd.grad(value, list(obj.params))
    if obj.log_scale:
        denom = value.detach().clamp_min(torch.finfo(value.dtype).tiny)
        grads = [g / denom for g in grads]
    for p, g in zip(obj.params, grads):
        p.grad = g
    if obj.clip is not None:
        torch.nn.utils.clip_grad_norm_(list(obj.params), obj.clip)
    obj.optimizer.step()
    return value


def _descend(objectives: Sequence[_Objective], n_steps: int, *, on_nonfinite: Callable[[int], str],
             on_step: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """The loop for objectives that are not a mean over training batches (rank search's factor and
    logit steps): at each of ``n_steps`` iterations every objective takes one step, in order; a
    non-finite loss raises a RedundancyError with ``on_nonfinite(t)``. Returns the last losses."""
    values: list[torch.Tensor] = []
    for t in range(n_steps):
        values = [_objective_step(obj, t) for obj in objectives]
        if not all(bool(torch.isfinite(v)) for v in values):
            raise RedundancyError(on_nonfinite(t))
        if on_step is not None:
            on_step(t)
    return values


def _batch_loss(loss_fn, model, X, y, epoch):
    value = loss_fn(model, X, y)
    if not torch.is_tensor(value) or value.numel() != 1:
        raise RedundancyError("loss(model, X, y) must return a scalar tensor")
    if not torch.isfinite(value):
        raise RedundancyError(f"the training loss became {float(value)} at epoch {epoch + 1}; "
                              "lower lr or check the data")
    return value


def _epoch(model, opt, loss_fn, X, y, order, epoch, budget, schedule=None, first_step=0):
    """One pass over the batches in ``order`` (at most ``budget`` steps): ``(sum of losses, examples, steps)``.

    ``schedule(t)`` (optional) multiplies every group's initial learning rate at global step ``t``
    (``first_step`` + the steps of this pass)."""
    total, count, steps = 0.0, 0, 0
    for idx in order:
        if budget is not None and steps >= budget:
            break
        idx = idx.to(X.device)
        if schedule is not None:
            factor = float(schedule(first_step + steps))
            for g in opt.param_groups:
                g["lr"] = g.setdefault("initial_lr", g["lr"]) * factor
        opt.zero_grad(set_to_none=True)
        value = _batch_loss(loss_fn, model, X[idx], y[idx], epoch)
        value.backward()
        opt.step()
        total += float(value.detach()) * len(idx)
        count += len(idx)
        steps += 1
    return total, count, steps


def _epochs(ds, batch_size, epochs, max_steps):
    if epochs is None:
        if max_steps is None:
            raise RedundancyError("epochs=None needs max_steps; give epochs, max_steps or both")
        epochs = -(-max_steps // -(-len(ds.y_train) // batch_size))
    return _v.check_int("epochs", epochs, min_value=0, max_value=_MAX_EPOCHS)


@_v.validate_params({"model": _v.Module(materialised=False), **_OPT_PARAMS, "loss": _v.NoneOr(_v.Check(
    lambda name, value: value if callable(value) else _not_callable(value))),
    "seed": _v.Int(0, 2 ** 63 - 1), "max_steps": _v.NoneOr(_v.Int(1, 10 ** 9)),
    "tol": _v.NoneOr(_v.Float(0.0, 1.0)), "patience": _v.Int(1, 10_000), "warn": _v.Bool(),
    "lr_schedule": _v.NoneOr(_v.CallableArg()), "monitor_window": _v.Int(1, 10_000), "settle_after": _v.Int(0),
    "checkpoint_every": _v.Int(1, 10 ** 9), "fused": _v.Bool()})
def train(model: nn.Module, data: Any, *, epochs: int | None = 100, batch_size: int = 64, lr: float = 1e-3,
          weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.9,
          loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          parameters=None, seed: int = 0, device: Any = "cpu", checkpoint: str | os.PathLike | None = None,
          progress: bool = False, desc: str = "train", max_steps: int | None = None, tol: float | None = 1e-4,
          patience: int = 5, warn: bool = True, lr_schedule: Callable[[int], float] | None = None,
          monitor_window: int = 1, settle_after: int = 0, checkpoint_every: int = 1, fused: bool = False,
          monitor: str = "training loss") -> TrainResult:
    r"""Train ``model`` in place by mini-batch gradient descent on the training split of ``data``.

    Each epoch visits the training examples once in a seeded random order, in batches of
    ``batch_size``, and takes one optimizer step per batch on

    .. math::  L = \frac{1}{|B|}\sum_{i \in B} \ell(f(x_i), y_i)

    (``ℓ`` = cross-entropy for classification, squared error for regression), or on whatever the
    callable ``loss(model, X_batch, y_batch)`` returns (an ELBO or a distillation loss).

    Stopping rule: after each epoch the mean training loss ``h_t`` is recorded; training stops once
    the best loss improved by less than ``tol`` (relative) over the last ``patience`` epochs,
    :math:`(b_{t-p} - b_t)/|b_{t-p}| < \mathrm{tol}` with :math:`b_t = \min_{s\le t} h_s`
    (:func:`~redundancy.training.diagnostics.has_settled`), or the default loss reached ``1e-8``.
    ``epochs`` is the cap; a run that hits it unsettled returns ``convergence.converged = False``
    and emits a :class:`~redundancy.errors.ConvergenceWarning` (``warn=False`` silences it).

    Determinism: the batch order comes from a ``torch.Generator`` seeded with ``seed``; the global
    torch RNG (dropout, reparameterised samples) is seeded with ``seed`` inside a forked RNG state,
    so the caller's global state is untouched and the same seed gives the same weights.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place (moved to ``device``).
    data : Dataset or arrays
        See :func:`redundancy.data.as_dataset`.
    epochs, batch_size : int
        The cap on passes over the training set (``None``: as many as ``max_steps`` needs), and
        examples per step.
    lr, weight_decay, momentum : float
        Optimizer settings (``momentum`` for SGD only).
    optimizer : {"adam", "sgd"}
    loss : callable, optional
        ``loss(model, X, y) -> scalar tensor``; default cross-entropy or MSE by the data's task.
    parameters : iterable of tensors, optional
        What the optimizer updates (default: every parameter of ``model``).
    seed : int
    device : str or torch.device
        ``"cpu"`` by default; the same code runs on ``"cuda"``.
    checkpoint : path, optional
        A file saved after every epoch (``torch.save``; loaded with ``weights_only=True``). When it
        exists at the start, training resumes after its last finished epoch.
    progress : bool
        Show a tqdm bar over epochs.
    max_steps : int, optional
        Stop after this many optimizer steps (a fixed step budget whatever the training-set size);
        ``epochs`` is then only an upper bound.
    tol, patience : float or None, int
        The stopping rule (``tol=None`` trains for exactly ``epochs`` epochs; convergence is still
        assessed with ``tol=1e-4``).
    warn : bool
        Emit a ConvergenceWarning when the cap runs out before the loss settled.
    lr_schedule : callable, optional
        ``lr_schedule(t)`` multiplies ``lr`` at optimizer step ``t`` (counted across a resume).
    monitor_window, settle_after : int
        For a noisy objective (a one-draw ELBO): the rule watches the mean of the last
        ``monitor_window`` epoch losses (that is ``convergence.history``), and may fire only after
        ``settle_after`` optimizer steps (e.g. once an annealing schedule is over).
    checkpoint_every : int
        Epochs between checkpoint saves (the last epoch is always saved).
    fused : bool
        Adam with one fused kernel for all parameters (the multi-tensor one where fused is not
        available): for tiny models, where the per-parameter loop dominates a step.
    monitor : str
        What the objective is called in ``convergence`` and its warning.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> from redundancy.training import evaluate
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> net = nn.Linear(2, 2)
    >>> res = train(net, (X, y), lr=0.05, seed=0)
    >>> res.convergence.converged, res.convergence.train_accuracy > 0.9
    (True, True)
    >>> evaluate(net, (X, y)).accuracy > 0.9
    True
    """
    ds = as_dataset(data)
    epochs = _epochs(ds, batch_size, epochs, max_steps)
    dev = check_device(device)
    model.to(dev)
    params = list(model.parameters()) if parameters is None else list(parameters)
    if not params:
        raise RedundancyError("the model has no parameters to train")
    opt = _optimizer(optimizer, params, lr=lr, weight_decay=weight_decay, momentum=momentum, fused=fused)
    loss_fn = loss or default_loss(ds.task)
    X, y = _tensors(ds, "train", dev, _v.model_dtype(model))
    if loss is None:
        _probe(model, lambda: model(X[:1]), "the model on the first example")
    gen = torch.Generator().manual_seed(seed)
    ckpt = None if checkpoint is None else os.fspath(checkpoint)
    start, losses, rng_state = _resume(ckpt, model, opt, gen)
    t0 = time.perf_counter()
    rule = _Rule(tol, patience, 1e-8 if loss is None else None, monitor_window, settle_after, monitor)
    steps, stopped = _loop(model, opt, loss_fn, X, y, gen, losses, seed=seed, rng_state=rng_state, dev=dev,
                           epochs=range(start, epochs), batch_size=batch_size, max_steps=max_steps, ckpt=ckpt,
                           bar=dict(desc=desc, disable=not progress, leave=False), rule=rule,
                           schedule=lr_schedule, every=checkpoint_every, cap=epochs)
    conv = _convergence(model, ds, X, y, losses, stopped, rule, epochs, loss is None)
    if conv is not None and warn:
        warn_unconverged(desc, conv, f"raise epochs (now {epochs}) or lr (now {lr:g})", stacklevel=4)
    settings = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "momentum": momentum if optimizer == "sgd" else None, "device": str(dev),
                "loss": "default" if loss is None else getattr(loss, "__name__", "custom"),
                "n_train": int(len(y)), "max_steps": max_steps, "epochs_asked": epochs, "tol": tol,
                "patience": patience}
    return TrainResult(losses=tuple(losses), epochs=len(losses), steps=steps, seconds=time.perf_counter() - t0,
                       seed=seed, settings=settings, resumed_from_epoch=start, convergence=conv, model=model)


@dataclass(frozen=True)
class _Rule:
    """The stopping rule's settings (``tol=None``: never stop early) and what it watches."""

    tol: float | None
    patience: int
    atol: float | None
    window: int = 1
    after: int = 0
    name: str = "training loss"

    def monitored(self, losses) -> list[float]:
        """The watched history: each epoch's mean of the last ``window`` epoch losses."""
        w = self.window
        return list(losses) if w == 1 else [float(np.mean(losses[max(0, i + 1 - w):i + 1])) for i in range(len(losses))]

    def settled(self, losses) -> bool:
        return has_settled(self.monitored(losses), tol=1e-4 if self.tol is None else self.tol,
                           patience=self.patience, atol=self.atol)


def _convergence(model, ds, X, y, losses, stopped, rule, cap, default_loss_used) -> Convergence | None:
    """The :class:`Convergence` of a finished run (training accuracy for a classifier with the default loss)."""
    if not losses:
        return None
    acc = None
    if default_loss_used and ds.task == "classification":
        with _v.guard_model(model, eval=True), torch.no_grad():
            acc = float(sum(int((model(X[i:i + 1024]).argmax(-1) == y[i:i + 1024]).sum())
                            for i in range(0, len(y), 1024)) / max(len(y), 1))
    return assess_convergence(rule.monitored(losses), max_epochs=cap, tol=1e-4 if rule.tol is None else rule.tol,
                              patience=rule.patience, atol=rule.atol, monitor=rule.name, train_accuracy=acc,
                              stopped=stopped or rule.settled(losses))


def _loop(model, opt, loss_fn, X, y, gen, losses, *, seed, rng_state, dev, epochs, batch_size, max_steps, ckpt, bar,
          rule, schedule=None, every=1, cap=None):
    """The epochs of :func:`train` (appends each epoch's mean loss to ``losses``); returns the steps
    taken and whether the stopping rule fired."""
    from tqdm.auto import tqdm

    steps, stopped = 0, False
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        else:
            torch.manual_seed(seed)
        model.train()
        pbar = tqdm(epochs, **bar)
        per_epoch = -(-len(y) // batch_size)
        done_before = epochs.start * per_epoch if isinstance(epochs, range) else 0  # steps of a resumed run
        for epoch in pbar:
            budget = None if max_steps is None else max_steps - steps
            total, count, n = _epoch(model, opt, loss_fn, X, y, batches(len(y), batch_size, gen), epoch, budget,
                                     schedule, done_before + steps)
            steps += n
            if count == 0:  # the step budget ran out before this epoch
                break
            losses.append(total / count)
            pbar.set_postfix(loss=f"{losses[-1]:.4g}")
            if ckpt is not None and ((epoch + 1) % every == 0 or epoch + 1 == cap):
                _save(ckpt, model, opt, epoch + 1, losses, gen)
            if rule.tol is not None and done_before + steps >= rule.after and rule.settled(losses):
                stopped = True
                if ckpt is not None:
                    _save(ckpt, model, opt, epoch + 1, losses, gen)
                break
        model.eval()
    return steps, stopped


def _not_callable(value):
    raise RedundancyError(f"loss={value!r} is not callable; give loss(model, X, y) -> scalar tensor or None")
