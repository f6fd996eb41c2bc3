"""The long-tail line of the ROI: flip rate overall and on the tail (high-score or rarest-class decile).

:func:`tail_flip_rates` compares a reference and a compressed model on one split and returns the
flip rate :math:`\\bar m` over all examples and over the tail: the ``fraction`` of examples with the
highest ``scores`` (memorization, maximal influence, ...) or, without scores, the ``fraction`` of
examples whose class is rarest in the training split (examples ordered by their class's training
count, ascending; ties by class index, then position).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import redundancy._validation as _v
from redundancy._validation import check_module
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError
from redundancy.longtail.mismatch import _as_scores, _classification
from redundancy.training import check_device, evaluate

__all__ = ["tail_flip_rates", "example_loss"]


def _tail_indices(y_split, y_train, n_classes: int, scores=None, fraction: float = 0.1) -> tuple[np.ndarray, str]:
    """Indices of the tail set and its description (see the module docstring)."""
    n = len(y_split)
    k = min(n, max(1, math.ceil(fraction * n)))
    if scores is not None:
        return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k], f"top {fraction:.0%} by score"
    freq = np.bincount(y_train, minlength=n_classes)
    order = np.lexsort((np.arange(n), y_split, freq[y_split]))
    return order[:k], f"rarest-class {fraction:.0%}"


def _fraction(name: str, value: Any) -> float:
    if not (isinstance(value, float) and 0 < value <= 1):
        raise RedundancyError(f"{name}={value!r} is not allowed; it must be a float in (0, 1]")
    return value


@_v.validate_params({"reference": check_module, "compressed": check_module,
                     "data": _classification("tail_flip_rates"), "fraction": _fraction,
                     "split": _v.Choice("test", "train"), "device": lambda name, v: check_device(v)})
def tail_flip_rates(reference, compressed, data: Any, scores=None, *, fraction: float = 0.1, split: str = "test",
                    device: Any = "cpu") -> dict[str, Any]:
    """Flip rate of ``compressed`` against ``reference`` overall and on the long tail.

    Returns
    -------
    dict
        ``flip_rate``, ``tail_flip_rate``, ``tail`` (how the tail was chosen), ``tail_n``, ``n``,
        ``fraction``, ``split``, ``accuracy_reference``, ``accuracy_compressed``.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32"); y = np.arange(20) % 2
    >>> net = nn.Linear(3, 2)
    >>> tail_flip_rates(net, net, (X, y))["flip_rate"]
    0.0
    """
    ds = data
    y = ds.y_test if split == "test" else ds.y_train
    sc = _as_scores(scores, len(y), split) if scores is not None else {}
    s = next(iter(sc.values())) if sc else None
    a = evaluate(reference, ds, split=split, device=device)
    b = evaluate(compressed, ds, split=split, device=device)
    mis = a.predictions != b.predictions
    idx, how = _tail_indices(y, ds.y_train, ds.n_classes, s, fraction)
    return {"flip_rate": float(mis.mean()), "tail_flip_rate": float(mis[idx].mean()), "tail": how,
            "tail_n": int(len(idx)), "n": int(len(y)), "fraction": fraction, "split": split,
            "accuracy_reference": float(a.accuracy), "accuracy_compressed": float(b.accuracy)}


@_v.validate_params({"model": _v.Module(), "split": _v.Choice("test", "train")})
def example_loss(model, data: Any, *, split: str = "test", device: Any = "cpu") -> np.ndarray:
    """Per-example cross-entropy :math:`-\\log p_\\theta(y_j \\mid x_j)` of ``model`` (a long-tail score).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier with outputs ``(n, n_classes)`` (run in eval mode without gradients; its mode
        and state are restored; it is moved to ``device`` as by :func:`redundancy.training.evaluate`).
    data : Dataset or arrays
        A classification data set.
    split : {"test", "train"}
    device : str

    Returns
    -------
    numpy.ndarray (n,), float64, finite

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> lin = nn.Linear(2, 2); _ = nn.init.zeros_(lin.weight); _ = nn.init.zeros_(lin.bias)
    >>> example_loss(lin, (np.ones((3, 2), "float32"), np.array([0, 1, 0]))).round(4).tolist()
    [0.6931, 0.6931, 0.6931]
    """
    import torch

    from redundancy.training import check_device, predict

    ds = as_dataset(data)
    if ds.task != "classification":
        raise RedundancyError("example_loss needs a classification data set (integer labels)")
    dev = check_device(device)
    model.to(dev)
    dtype = _v.model_dtype(model)
    X = torch.as_tensor(np.ascontiguousarray(ds.X_test if split == "test" else ds.X_train)).to(dev, dtype)
    y = torch.as_tensor(ds.y_test if split == "test" else ds.y_train).to(dev)
    out = predict(model, X)  # restores the model's state; wraps its errors; refuses NaN/inf outputs
    if out.dim() != 2 or out.shape[0] != len(y) or out.shape[1] < ds.n_classes:
        raise RedundancyError(f"the model's outputs have shape {tuple(out.shape)}; example_loss needs "
                              f"({len(y)}, n_classes >= {ds.n_classes})")
    return torch.nn.functional.cross_entropy(out.double(), y, reduction="none").cpu().numpy()
