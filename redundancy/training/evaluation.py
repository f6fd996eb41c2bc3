"""Scoring a model on a split: :func:`evaluate` (accuracy, loss, per-class accuracy, R²) and :func:`predict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.training.common import _MAX_BATCH, _probe, _tensors, check_device



@_v.result()
class EvalResult(_v.Result):
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
    predictions: np.ndarray = field(repr=False, metadata=_v.NOT_EXPORTED)
    correct: np.ndarray | None = field(repr=False, metadata=_v.NOT_EXPORTED)
    absent_classes: tuple[int, ...] = ()
    split: str = "test"

    def to_pandas(self):
        import pandas as pd

        if self.per_class_accuracy is None:
            return pd.DataFrame([{"loss": self.loss, "r2": self.r2, "n": self.n}])
        return pd.DataFrame({"class": np.arange(len(self.per_class_accuracy)),
                             "accuracy": self.per_class_accuracy})


@torch.no_grad()
def _as_input(name, value):
    """A torch tensor of inputs (a numpy array or nested list is converted), finite, >= 1 dimension."""
    if not torch.is_tensor(value):
        value = torch.as_tensor(_v.check_array(name, value, min_ndim=1))
    return _v.Tensor(min_ndim=1)(name, value)


@_v.validate_params({"model": _v.Module(), "X": _v.Check(_as_input), "batch_size": _v.Int(1, _MAX_BATCH)})
def predict(model: nn.Module, X: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """``model(X)`` in eval mode, batch by batch (``batch_size`` rows at a time), without gradients;
    the caller's train/eval flags and its parameters and buffers (a forward that updates a buffer) are
    restored. ``X`` is a tensor (or array) whose first axis indexes
examples; floating inputs are cast to the model's parameter dtype.

    A failure inside the model's forward becomes a :class:`~redundancy.errors.RedundancyError`, and
    so do NaN or infinite outputs.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(3, 2)
    >>> X = torch.randn(5, 3)
    >>> bool(torch.allclose(predict(net, X, batch_size=2), net(X)))
    True
    """
    return _predict(model, X, batch_size)


def _predict(model: nn.Module, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    if len(X) == 0:
        raise RedundancyError(f"X has shape {tuple(X.shape)}: no examples to predict")
    if X.is_floating_point():
        X = X.to(_v.model_dtype(model))
    from redundancy.counts import preserved_state

    with _v.guard_model(model, eval=True), preserved_state(model), torch.no_grad():
        try:
            out = torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
        except RedundancyError:
            raise
        except Exception as exc:  # noqa: BLE001 - the caller's forward may raise anything
            raise RedundancyError(f"the model failed on X of shape {tuple(X.shape)} ({type(exc).__name__}: "
                                  f"{_v._short(_v._first_line(exc), 200)})") from None
    if not torch.is_tensor(out) or not out.is_floating_point() or not bool(torch.isfinite(out).all()):
        raise RedundancyError("the model's outputs hold NaN or inf (or are not floating point) on X; "
                              "its weights or inputs are not finite")
    return out


@_v.validate_params({"model": _v.Module(materialised=False), "split": _v.Choice("train", "test"),
                     "batch_size": _v.Int(1, _MAX_BATCH), "device": _v.Check(lambda name, value: check_device(value))})
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
    ds = as_dataset(data)
    dev = check_device(device)
    model.to(dev)
    X, y = _tensors(ds, split, dev, _v.model_dtype(model))
    _probe(model, lambda: model(X[:1]), "the model on the first example")
    out = _predict(model, X, batch_size)  # refuses NaN/inf outputs
    if ds.task == "regression":
        return _regression(out, y, split)
    return _classification(out, y, ds.n_classes, split)


def _regression(out, y, split):
    pred = out.reshape(y.shape) if out.numel() == y.numel() else out
    res = (pred - y).double()
    mse = float((res ** 2).mean())
    ss_tot = float(((y.double() - y.double().mean(0)) ** 2).sum())
    r2 = 1.0 - float((res ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0
    return EvalResult(task="regression", n=len(y), loss=mse, accuracy=None, per_class_accuracy=None, r2=r2,
                      predictions=pred.cpu().numpy(), correct=None, absent_classes=(), split=split)


def _classification(out, y, n_classes, split):
    if out.dim() != 2 or out.shape[1] < n_classes:
        raise RedundancyError(f"the model's outputs have shape {tuple(out.shape)}; classification needs "
                              f"(n, n_classes >= {n_classes})")
    loss = float(nn.functional.cross_entropy(out.double(), y))
    pred = out.argmax(1)
    correct = (pred == y).cpu().numpy().astype(np.int8)
    yn = y.cpu().numpy()
    per = np.zeros(n_classes)
    absent = []
    for c in range(n_classes):
        m = yn == c
        if m.any():
            per[c] = correct[m].mean()
        else:
            absent.append(c)
    return EvalResult(task="classification", n=len(y), loss=loss, accuracy=float(correct.mean()),
                      per_class_accuracy=per, r2=None, predictions=pred.cpu().numpy(), correct=correct,
                      absent_classes=tuple(absent), split=split)
