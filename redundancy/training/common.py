"""Shared pieces of the training loops: device check, tensors of a split, default losses, batch order, size limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.data import Dataset
from redundancy.errors import RedundancyError



_MAX_EPOCHS = 100_000
_MAX_BATCH = 1_000_000
_MAX_ENSEMBLE = 100_000


def check_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device`, refusing one that is not available here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        first = _v._first_line(exc)[:120]
        raise RedundancyError(f"device={_v._short(device)} is not a torch device ({first}); use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RedundancyError(f"device={device!r} asks for CUDA, which is not available on this machine; use 'cpu'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RedundancyError(f"device={device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def _probe(model: nn.Module, run: Callable[[], Any], what: str) -> None:
    """Run ``run()`` once without gradients and put the model's state back; a failure (the data
    does not fit the model) becomes one RedundancyError instead of a torch traceback mid-loop."""
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]), _v.guard_model(model, buffers=True):
            run()
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller's forward or loss may raise anything
        raise RedundancyError(f"{what} cannot be computed ({type(exc).__name__}: {_v._first_line(exc)[:200]}); "
                              "check that the data's shape and labels fit the model") from None


def _tensors(ds: Dataset, split: str, dev: torch.device, dtype: torch.dtype):
    X = ds.X_train if split == "train" else ds.X_test
    y = ds.y_train if split == "train" else ds.y_test
    Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=dev, dtype=dtype)
    yt = torch.as_tensor(np.ascontiguousarray(y)).to(dev)
    if ds.task == "regression":
        yt = yt.to(dtype)
    return Xt, yt


def _optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
               nesterov: bool = False, fused: bool = False) -> torch.optim.Optimizer:
    """The optimizer every loop of the package builds: Adam (``fused``: one kernel for all parameters,
    or the multi-tensor one where fused is not available), or SGD with (Nesterov) momentum."""
    if name == "adam" and fused:
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, ValueError):
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


#: the argument constraints :func:`~redundancy.training.train` and :func:`~redundancy.training.train_ensemble` share
_OPT_PARAMS = {"batch_size": _v.Int(1, _MAX_BATCH), "lr": _v.Check(_v.check_positive_float),
               "weight_decay": _v.Check(_v.check_nonnegative_float), "momentum": _v.Check(_v.check_nonnegative_float),
               "optimizer": _v.Choice("adam", "sgd"), "device": _v.Check(lambda name, value: check_device(value))}


@_v.validate_params({"task": _v.Choice("classification", "regression")})
def default_loss(task: str) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    r"""The loss ``loss(model, X, y)`` that :func:`~redundancy.training.train` uses for a task.

    Classification: mean cross-entropy :math:`-\frac1n\sum_i \log \mathrm{softmax}(f(x_i))_{y_i}`;
    regression: mean squared error :math:`\frac1n\sum_i \|f(x_i) - y_i\|^2` (divided by the
    number of output entries).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 2)
    >>> loss = default_loss("classification")
    >>> X, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    >>> bool(torch.isclose(loss(net, X, y), nn.functional.cross_entropy(net(X), y)))
    True
    """
    if task == "regression":
        def mse(model, X, y):
            out = model(X)
            return nn.functional.mse_loss(out.reshape(y.shape) if out.numel() == y.numel() else out, y)
        return mse

    def ce(model, X, y):
        return nn.functional.cross_entropy(model(X), y)
    return ce


@_v.validate_params({"n": _v.Int(0, _v.MAX_NUMEL), "batch_size": _v.Int(1, _MAX_BATCH),
                     "generator": _v.Instance(torch.Generator, "torch.Generator"), "shuffle": _v.Bool()})
def batches(n: int, batch_size: int, generator: torch.Generator, *, shuffle: bool = True):
    """Index tensors of one epoch: a seeded permutation of ``range(n)`` cut into ``batch_size`` pieces
    (the last one shorter); ``shuffle=False`` keeps the order.

    Examples
    --------
    >>> import torch
    >>> [b.tolist() for b in batches(5, 2, torch.Generator().manual_seed(0), shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return list(torch.split(order, batch_size))
