"""Channel importances the scoreboard computes itself, and the participation redundancy of a layer.

* :func:`l1_importance`: ``a_k = ||W_k||_1``, the L1 norm of output channel ``k``'s filter
  (Li et al. 2017, "Pruning filters for efficient ConvNets"). Data-free.
* :func:`taylor_importance`: the first-order Taylor estimate of the loss change when channel ``k``
  is removed (Molchanov et al. 2017): for example ``n`` with activation ``a_nkm`` of channel ``k``
  at position ``m`` (``M`` positions) and ``g_nkm = dL_n/da_nkm``,
  ``Theta_k = (1/N) sum_n |(1/M) sum_m a_nkm g_nkm|``. Needs data.
* :func:`participation_redundancy`: ``1 - (sum_k a_k)^2 / (K sum_k a_k^2)`` in ``[0, 1 - 1/K]``
  (1 when every ``a_k`` is 0): 0 when all channels matter equally.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import as_generator
from redundancy.analysis.records import layer_kernel
from redundancy.channels.importance import L1, Taylor
from redundancy.counts import preserved_state
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError

__all__: list[str] = []  # the face is in the package's __init__

#: Most examples :func:`taylor_importance` accepts (the cost is one forward and backward pass each).
MAX_TAYLOR_EXAMPLES = 100_000
#: Most layers one call scores.
MAX_LAYERS = 100_000


def _layer_names(name: str, layers, model) -> list[str]:
    """``layers`` as a non-empty list of distinct module names of ``model`` that have a kernel."""
    if isinstance(layers, str):
        layers = [layers]
    names = list(dict.fromkeys(_v.Items(_v.Instance(str, "module name (str)"), min_len=1, max_len=MAX_LAYERS)(
        name, layers)))
    modules = dict(model.named_modules())
    missing = [nm for nm in names if nm not in modules]
    if missing:
        raise RedundancyError(f"{name} {missing[:5]} are not modules of the model")
    return names


def _kernel(model, name: str) -> torch.Tensor:
    mod = dict(model.named_modules())[name]
    try:
        w = layer_kernel(mod)
    except (RedundancyError, AttributeError, TypeError, RuntimeError) as exc:
        raise RedundancyError(f"layers contains {name!r} ({type(mod).__name__}), which has no conv/linear "
                              f"kernel ({_v._short(_v._first_line(exc), 80)})") from None
    if not torch.is_tensor(w) or w.dim() < 2 or w.is_meta or not w.is_floating_point():
        raise RedundancyError(f"layers contains {name!r} ({type(mod).__name__}), whose weight is not a "
                              "floating kernel of shape (out, in, ...)")
    return w


@_v.validate_params({"importance": _v.Array(min_ndim=0, min_size=1)})
def participation_redundancy(importance) -> float:
    """``1 - PR/K`` with ``PR = (sum a)^2 / sum a^2`` the effective number of channels.

    The importances are taken in absolute value and divided by their largest one first (the ratio
    does not change, and nothing overflows).

    Parameters
    ----------
    importance : array-like
        ``K >= 1`` finite channel importances (any shape; flattened).

    Examples
    --------
    >>> participation_redundancy([1.0, 1.0, 1.0, 1.0]), participation_redundancy([2.0, 2.0, 0.0, 0.0])
    (0.0, 0.5)
    """
    return _participation(importance)


def _participation(importance: np.ndarray) -> float:
    a = np.abs(importance.ravel())
    top = float(a.max())
    if top == 0.0:
        return 1.0
    a = a / top
    s2 = float(np.sum(a * a))
    if s2 == 0.0:
        return 1.0
    return float(min(max(1.0 - float(np.sum(a)) ** 2 / (a.size * s2), 0.0), 1.0))


@_v.validate_params({"model": _v.Module()})
def l1_importance(model: nn.Module, layers) -> dict[str, np.ndarray]:
    """``{layer: a}`` with ``a_k = sum |W[k, ...]|`` over the dense kernel of output channel ``k``.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str or sequence of str
        Names of conv/linear modules of ``model`` (at most 100,000); their kernels must be finite.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1., -2, 0], [0.5, 0, 0]]))
    >>> l1_importance(net, ["0"])["0"].tolist()
    [3.0, 0.5]
    """
    out = {}
    for name in _layer_names("layers", layers, model):
        v = L1.of_kernel(_kernel(model, name))
        if not np.isfinite(v).all():
            raise RedundancyError(f"the L1 norms of layer {name!r} are not finite (NaN or inf weights, or overflow)")
        out[name] = v
    return out


@_v.validate_params({"model": _v.Module(), "n_examples": _v.Int(1, MAX_TAYLOR_EXAMPLES),
                     "batch_size": _v.Int(1, MAX_TAYLOR_EXAMPLES), "seed": _v.Seed(allow_none=True, allow_generator=True),
                     "progress": _v.Bool()})
@_v.model_errors("taylor_importance")
def taylor_importance(model: nn.Module, data, layers, *, n_examples: int = 512, batch_size: int = 128,
                      seed=0, device="cpu", progress: bool = False) -> dict[str, np.ndarray]:
    """``{layer: Theta}``, ``Theta_k = mean_n |mean_m a_nkm dL_n/da_nkm|`` on training examples.

    ``L_n`` is example ``n``'s cross-entropy (classification) or squared error (regression); the
    model runs in eval mode (BatchNorm uses its running statistics, so examples do not interact and
    the gradient of the summed loss is each example's own gradient). ``n_examples`` training
    examples are drawn without replacement with ``seed`` (all of them when there are fewer). A layer
    called several times adds the terms of every call. The model's parameters, buffers and
    train/eval flags are put back afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        With floating parameters; its forward must accept the data's inputs.
    data : Dataset or (X, y)
        Training examples (the training split of a Dataset).
    layers : str or sequence of str
        Module names whose outputs are scored per channel (dimension 1).
    n_examples, batch_size : int in [1, 100000]
    seed : int, None or numpy Generator
    device : str or torch.device
    progress : bool

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> X = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    >>> t = taylor_importance(net, (X, (X[:, 0] > 0).astype(int)), ["0", "2"])
    >>> t["0"].shape, bool((t["0"] >= 0).all())
    ((3,), True)
    """
    from redundancy.training import check_device

    ds = as_dataset(data)
    layers = _layer_names("layers", layers, model)
    dev = check_device(device)
    n = len(ds.y_train)
    if n == 0:
        raise RedundancyError("data has no training examples; the Taylor importance needs some")
    idx = np.sort(as_generator(seed).permutation(n)[:n_examples]) if n > n_examples else np.arange(n)
    if not any(p.is_floating_point() for p in model.parameters()):
        raise RedundancyError("model has no floating-point parameters; the Taylor importance needs gradients")
    model.to(dev)  # as redundancy.training.evaluate does
    with _v.guard_model(model, eval=True), preserved_state(model):
        sums = Taylor.of_layers(model, layers, _taylor_batches(ds, idx, batch_size, _v.model_dtype(model), dev,
                                                               progress), ds.task)
    return _taylor_result(sums, len(idx))


def _taylor_batches(ds, idx, batch_size, dtype, dev, progress):
    """``(X, y)`` tensors of the training examples ``idx``, ``batch_size`` at a time."""
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(idx), batch_size), desc="taylor", disable=not progress):
        b = idx[start:start + batch_size]
        y = torch.as_tensor(ds.y_train[b], device=dev)
        yield (torch.as_tensor(ds.X_train[b], dtype=dtype, device=dev),
               y.long() if ds.task == "classification" else y.to(dtype))


def _taylor_result(sums, n: int) -> dict[str, np.ndarray]:
    out = {}
    for nm, v in sums.items():
        if v is None:
            raise RedundancyError(f"layer {nm!r} was not called by the model's forward pass; "
                                  "no Taylor importance")
        v = (v / n).numpy()
        if not np.isfinite(v).all():
            raise RedundancyError(f"Taylor importance of layer {nm!r} is not finite (NaN or inf in the "
                                  "activations or gradients)")
        out[nm] = v
    return out
