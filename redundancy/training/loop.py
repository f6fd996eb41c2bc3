"""The one mini-batch training loop: :func:`train` (seeded, resumable, custom loss)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_choice, check_int, check_module, check_nonnegative_float, check_positive_float
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.training.common import (_MAX_BATCH, _MAX_EPOCHS, _model_dtype, _probe, _tensors, batches, check_device,
                                        default_loss)

__all__ = ["TrainResult", "train"]


@dataclass(frozen=True)
@_v.finite_result()
class TrainResult:
    """What :func:`train` did: the mean training loss of every epoch and the settings used.

    The model itself is trained in place and also held in ``model``.
    """

    losses: tuple[float, ...]
    epochs: int
    steps: int
    seconds: float
    seed: int
    settings: dict[str, Any]
    resumed_from_epoch: int = 0
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model")
        d["losses"] = list(self.losses)
        return d

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame({"epoch": np.arange(1, len(self.losses) + 1), "loss": self.losses})


def _save(path: str, model: nn.Module, opt, epoch: int, losses: list[float], gen: torch.Generator) -> None:
    tmp = f"{path}.tmp"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                "losses": torch.tensor(losses, dtype=torch.float64), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)  # atomic: a kill during the save leaves the previous checkpoint whole


def train(model: nn.Module, data: Any, *, epochs: int | None = 10, batch_size: int = 64, lr: float = 1e-3,
          weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.9,
          loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          parameters=None, seed: int = 0, device: Any = "cpu", checkpoint: str | os.PathLike | None = None,
          progress: bool = False, desc: str = "train", max_steps: int | None = None) -> TrainResult:
    r"""Train ``model`` in place by mini-batch gradient descent on the training split of ``data``.

    Each epoch visits the training examples once in a seeded random order, in batches of
    ``batch_size``, and takes one optimizer step per batch on

    .. math::  L = \frac{1}{|B|}\sum_{i \in B} \ell(f(x_i), y_i)

    (``ℓ`` = cross-entropy for classification, squared error for regression), or on whatever the
    callable ``loss(model, X_batch, y_batch)`` returns (an ELBO or a distillation loss).

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
        Passes over the training set (``None``: as many as ``max_steps`` needs), examples per step.
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
    >>> res = train(net, (X, y), epochs=20, lr=0.05, seed=0)
    >>> evaluate(net, (X, y)).accuracy > 0.9
    True
    """
    model = check_module("model", model)
    ds = as_dataset(data)
    batch_size = check_int("batch_size", batch_size, min_value=1, max_value=_MAX_BATCH)
    lr = check_positive_float("lr", lr)
    weight_decay = check_nonnegative_float("weight_decay", weight_decay)
    momentum = check_nonnegative_float("momentum", momentum)
    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd"))
    seed = check_int("seed", seed, min_value=0, max_value=2 ** 63 - 1)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, min_value=1, max_value=10 ** 9)
    if epochs is None:
        if max_steps is None:
            raise RedundancyError("epochs=None needs max_steps; give epochs, max_steps or both")
        epochs = -(-max_steps // -(-len(ds.y_train) // batch_size))
    epochs = check_int("epochs", epochs, min_value=0, max_value=_MAX_EPOCHS)
    if loss is not None and not callable(loss):
        raise RedundancyError(f"loss={loss!r} is not callable; give loss(model, X, y) -> scalar tensor or None")
    dev = check_device(device)
    model.to(dev)
    params = list(model.parameters()) if parameters is None else list(parameters)
    if not params:
        raise RedundancyError("the model has no parameters to train")
    opt = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay))
    loss_fn = loss or default_loss(ds.task)
    X, y = _tensors(ds, "train", dev, _model_dtype(model))
    if loss is None:
        _probe(model, lambda: model(X[:1]), "the model on the first example")
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start = 0
    ckpt = None if checkpoint is None else os.fspath(checkpoint)
    rng_state = None
    if ckpt is not None and os.path.exists(ckpt):
        from redundancy.checkpoint import load_checkpoint

        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
        losses = [float(v) for v in state["losses"]]
        gen.set_state(state["generator"])
        rng_state = state["torch_rng"]
    t0 = time.perf_counter()
    steps = 0
    from tqdm.auto import tqdm

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        else:
            torch.manual_seed(seed)
        model.train()
        bar = tqdm(range(start, epochs), desc=desc, disable=not progress, leave=False)
        for epoch in bar:
            total, count = 0.0, 0
            for idx in batches(len(y), batch_size, gen):
                if max_steps is not None and steps >= max_steps:
                    break
                idx = idx.to(dev)
                opt.zero_grad(set_to_none=True)
                value = loss_fn(model, X[idx], y[idx])
                if not torch.is_tensor(value) or value.numel() != 1:
                    raise RedundancyError("loss(model, X, y) must return a scalar tensor")
                if not torch.isfinite(value):
                    raise RedundancyError(f"the training loss became {float(value)} at epoch {epoch + 1}; "
                                          "lower lr or check the data")
                value.backward()
                opt.step()
                total += float(value.detach()) * len(idx)
                count += len(idx)
                steps += 1
            if count == 0:  # the step budget ran out before this epoch
                break
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            if ckpt is not None:
                _save(ckpt, model, opt, epoch + 1, losses, gen)
        model.eval()
    settings = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "momentum": momentum if optimizer == "sgd" else None, "device": str(dev),
                "loss": "default" if loss is None else getattr(loss, "__name__", "custom"),
                "n_train": int(len(y)), "max_steps": max_steps, "epochs_asked": epochs}
    return TrainResult(tuple(losses), len(losses), steps, time.perf_counter() - t0, seed, settings, start, model)
