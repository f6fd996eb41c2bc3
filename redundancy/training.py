"""The one training and evaluation loop of the package.

Every method that trains or scores a network (the real-data K/R ablation, rank-search fine-tuning,
CAR fine-tuning, spike-and-slab fits, the memorization estimator) goes through :func:`train` and
:func:`evaluate`; none has a loop of its own.

* :func:`train`: seeded, deterministic mini-batch training (Adam or SGD) of a torch model in place,
  with a tqdm bar, an optional custom loss ``loss(model, X, y) -> scalar`` (an ELBO, a distillation
  loss) and an optional checkpoint file that lets an interrupted run resume where it stopped.
* :func:`evaluate`: accuracy, mean loss, per-class accuracy and predictions (classification), or
  mean squared error, R² and predictions (regression), in eval mode, without gradients.

``data`` is a :class:`redundancy.data.Dataset` or arrays (see :func:`redundancy.data.as_dataset`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from redundancy._validation import check_choice, check_int, check_module, check_nonnegative_float, check_positive_float
from redundancy.data import Dataset, as_dataset
from redundancy.errors import RedundancyError

__all__ = ["TrainResult", "EvalResult", "train", "evaluate", "check_device", "batches"]

_MAX_EPOCHS = 100_000
_MAX_BATCH = 1_000_000


def check_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device`, refusing one that is not available here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise RedundancyError(f"device={device!r:.60} is not a torch device ({first}); use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RedundancyError(f"device={device!r} asks for CUDA, which is not available on this machine; use 'cpu'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RedundancyError(f"device={device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def _probe(model: nn.Module, run: Callable[[], Any], what: str) -> None:
    """Run ``run()`` once without gradients and put the model's state back; a failure (the data
    does not fit the model) becomes one RedundancyError instead of a torch traceback mid-loop."""
    flags = [(m, m.training) for m in model.modules()]
    snap = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            run()
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller's forward or loss may raise anything
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise RedundancyError(f"{what} cannot be computed ({type(exc).__name__}: {first}); check that the "
                              "data's shape and labels fit the model") from None
    finally:
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if k in snap and v.shape == snap[k].shape:
                    v.copy_(snap[k])
        for m, f in flags:
            m.training = f


def _tensors(ds: Dataset, split: str, dev: torch.device, dtype: torch.dtype):
    X = ds.X_train if split == "train" else ds.X_test
    y = ds.y_train if split == "train" else ds.y_test
    Xt = torch.as_tensor(np.ascontiguousarray(X)).to(device=dev, dtype=dtype)
    yt = torch.as_tensor(np.ascontiguousarray(y)).to(dev)
    if ds.task == "regression":
        yt = yt.to(dtype)
    return Xt, yt


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.float32


def default_loss(task: str) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy (classification) or mean squared error (regression) of ``model(X)``."""
    if task == "regression":
        def mse(model, X, y):
            out = model(X)
            return nn.functional.mse_loss(out.reshape(y.shape) if out.numel() == y.numel() else out, y)
        return mse

    def ce(model, X, y):
        return nn.functional.cross_entropy(model(X), y)
    return ce


def batches(n: int, batch_size: int, generator: torch.Generator, *, shuffle: bool = True):
    """Index tensors of one epoch: a seeded permutation cut into ``batch_size`` pieces."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return list(torch.split(order, batch_size))


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured on one split.

    Attributes
    ----------
    task : str
        ``"classification"`` or ``"regression"``.
    n : int
        Number of examples.
    loss : float
        Mean cross-entropy (classification) or mean squared error (regression).
    accuracy : float or None
        Fraction of correct argmax predictions (classification).
    per_class_accuracy : numpy.ndarray or None
        Accuracy on the examples of each class (NaN-free: a class absent from the split gets 0 and
        is listed in ``absent_classes``).
    r2 : float or None
        Coefficient of determination ``1 − SS_res/SS_tot`` (regression; 0 when ``SS_tot = 0``).
    predictions : numpy.ndarray
        Argmax labels (classification) or outputs (regression), one per example.
    correct : numpy.ndarray or None
        Per-example 0/1 correctness (classification).
    """

    task: str
    n: int
    loss: float
    accuracy: float | None
    per_class_accuracy: np.ndarray | None = field(repr=False)
    r2: float | None
    predictions: np.ndarray = field(repr=False)
    correct: np.ndarray | None = field(repr=False)
    absent_classes: tuple[int, ...] = ()
    split: str = "test"

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "split": self.split, "n": self.n, "loss": self.loss, "accuracy": self.accuracy,
                "r2": self.r2, "absent_classes": list(self.absent_classes),
                "per_class_accuracy": None if self.per_class_accuracy is None else self.per_class_accuracy.tolist()}

    def to_pandas(self):
        import pandas as pd

        if self.per_class_accuracy is None:
            return pd.DataFrame([{"loss": self.loss, "r2": self.r2, "n": self.n}])
        return pd.DataFrame({"class": np.arange(len(self.per_class_accuracy)),
                             "accuracy": self.per_class_accuracy})


def _save(path: str, model: nn.Module, opt, epoch: int, losses: list[float], gen: torch.Generator) -> None:
    tmp = f"{path}.tmp"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                "losses": torch.tensor(losses, dtype=torch.float64), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)  # atomic: a kill during the save leaves the previous checkpoint whole


def train(model: nn.Module, data: Any, *, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
          weight_decay: float = 0.0, optimizer: str = "adam", momentum: float = 0.9,
          loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          parameters=None, seed: int = 0, device: Any = "cpu", checkpoint: str | os.PathLike | None = None,
          progress: bool = False, desc: str = "train") -> TrainResult:
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
        Passes over the training set, examples per step.
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

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> net = nn.Linear(2, 2)
    >>> res = train(net, (X, y), epochs=20, lr=0.05, seed=0)
    >>> evaluate(net, (X, y)).accuracy > 0.9
    True
    """
    model = check_module("model", model)
    ds = as_dataset(data)
    epochs = check_int("epochs", epochs, min_value=0, max_value=_MAX_EPOCHS)
    batch_size = check_int("batch_size", batch_size, min_value=1, max_value=_MAX_BATCH)
    lr = check_positive_float("lr", lr)
    weight_decay = check_nonnegative_float("weight_decay", weight_decay)
    momentum = check_nonnegative_float("momentum", momentum)
    optimizer = check_choice("optimizer", optimizer, ("adam", "sgd"))
    seed = check_int("seed", seed, min_value=0, max_value=2 ** 63 - 1)
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
            losses.append(total / max(count, 1))
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
            if ckpt is not None:
                _save(ckpt, model, opt, epoch + 1, losses, gen)
        model.eval()
    settings = {"batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer,
                "momentum": momentum if optimizer == "sgd" else None, "device": str(dev),
                "loss": "default" if loss is None else getattr(loss, "__name__", "custom"),
                "n_train": int(len(y))}
    return TrainResult(tuple(losses), epochs, steps, time.perf_counter() - t0, seed, settings, start, model)


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """``model(X)`` in eval mode, batch by batch, without gradients; the caller's mode is restored."""
    from redundancy.counts import eval_mode

    with eval_mode(model):
        return torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def evaluate(model: nn.Module, data: Any, *, split: str = "test", batch_size: int = 1024,
             device: Any = "cpu") -> EvalResult:
    r"""Score ``model`` on one split of ``data`` in eval mode, without gradients.

    Classification: ``accuracy = mean(argmax f(x_i) = y_i)``, mean cross-entropy, per-class
    accuracy. Regression: mean squared error and :math:`R^2 = 1 - \sum(y-\hat y)^2 / \sum(y-\bar y)^2`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> net = nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1., 0, 0], [-1., 0, 0]])); _ = net.bias.zero_()
    >>> X = np.array([[1., 0, 0], [-1., 0, 0], [2., 1, 1]], dtype="float32"); y = np.array([0, 1, 1])
    >>> r = evaluate(net, (X, y))
    >>> round(r.accuracy, 3), r.per_class_accuracy.tolist()
    (0.667, [1.0, 0.5])
    """
    model = check_module("model", model)
    ds = as_dataset(data)
    split = check_choice("split", split, ("train", "test"))
    batch_size = check_int("batch_size", batch_size, min_value=1, max_value=_MAX_BATCH)
    dev = check_device(device)
    model.to(dev)
    X, y = _tensors(ds, split, dev, _model_dtype(model))
    _probe(model, lambda: model(X[:1]), "the model on the first example")
    out = predict(model, X, batch_size=batch_size)
    if not torch.isfinite(out).all():
        raise RedundancyError("the model's outputs hold NaN or inf on this data; its weights or inputs are not finite")
    if ds.task == "regression":
        pred = out.reshape(y.shape) if out.numel() == y.numel() else out
        res = (pred - y).double()
        mse = float((res ** 2).mean())
        ss_tot = float(((y.double() - y.double().mean(0)) ** 2).sum())
        r2 = 1.0 - float((res ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0
        return EvalResult("regression", len(y), mse, None, None, r2, pred.cpu().numpy(), None, (), split)
    if out.dim() != 2 or out.shape[1] < ds.n_classes:
        raise RedundancyError(f"the model's outputs have shape {tuple(out.shape)}; classification needs "
                              f"(n, n_classes >= {ds.n_classes})")
    loss = float(nn.functional.cross_entropy(out.double(), y))
    pred = out.argmax(1)
    correct = (pred == y).cpu().numpy().astype(np.int8)
    yn = y.cpu().numpy()
    per = np.zeros(ds.n_classes)
    absent = []
    for c in range(ds.n_classes):
        m = yn == c
        if m.any():
            per[c] = correct[m].mean()
        else:
            absent.append(c)
    return EvalResult("classification", len(y), loss, float(correct.mean()), per, None, pred.cpu().numpy(),
                      correct, tuple(absent), split)
