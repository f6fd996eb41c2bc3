r"""Fit a spike-and-slab variational network by minimising the negative ELBO.

.. math::

    J(\theta, p) = -\frac{N}{B} \sum_{i \in B} \mathbb E_q \log p(y_i \mid x_i, \gamma, w)
        + \sum_{\text{layers}} \mathrm{KL}(q \,\|\, p)

with the KL in closed form (:mod:`redundancy.bayes.kl`) and the expectation estimated by one
reparameterised draw per batch (Concrete ``γ̃`` at temperature ``τ``, Gaussian ``w``). The loss
handed to :func:`redundancy.training.train` is ``J / N`` (the same minimiser; per-example
scale). ``τ`` is annealed geometrically from ``temperature[0]`` to ``temperature[1]`` over all
training steps; the step counter is a buffer of the network, so a resumed run continues the schedule.

Likelihood: softmax cross-entropy (classification) or Gaussian ``N(y; f(x), s²)`` with a known
``s = noise_scale`` or, when ``noise_scale=None``, ``s`` fitted jointly (a point estimate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import redundancy._validation as _v
from redundancy._validation import check_int, check_positive_float
from redundancy.bayes.convert import WEIGHT_TYPES, SpikeSlabNet, _flat_leaves, to_spike_slab
from redundancy.zoo.small import mlp
from redundancy.bayes.result import SpikeSlabResult
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.training import check_device, predict, train

__all__ = ["fit_spike_slab", "expected_calibration_error", "posterior_predictive"]


def _prob(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < 1):
        raise RedundancyError(f"{name}={v!r} is not allowed; {name} must be a number in (0, 1)")
    return float(v)


def _probs(name: str, value: Any) -> np.ndarray:
    a = _v.check_array(name, value, min_ndim=2, max_ndim=2)
    if a.shape[1] < 1:
        raise RedundancyError(f"{name} has shape {a.shape}; give (n_examples, n_classes) probabilities")
    if (a < 0).any() or (a > 1).any() or not np.allclose(a.sum(1), 1.0, rtol=0, atol=1e-3):
        raise RedundancyError(f"{name} is not a matrix of probabilities; every entry must be in [0, 1] and every "
                              "row must sum to 1 (within 1e-3)")
    return a


@_v.validate_params({"probs": _probs, "y": _v.Array(min_ndim=1, max_ndim=1), "n_bins": _v.Int(1, 10_000)})
def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    r"""``ECE = Σ_b (n_b/n) |acc_b − conf_b|`` over ``n_bins`` equal-width bins of the top probability.

    Parameters
    ----------
    probs : array (n, n_classes)
        Predicted class probabilities (entries in [0, 1], rows summing to 1).
    y : array (n,)
        Integer labels in ``[0, n_classes)``.
    n_bins : int
        In [1, 10000].

    Examples
    --------
    >>> import numpy as np
    >>> expected_calibration_error(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))
    0.45
    """
    if len(y) != len(probs):
        raise RedundancyError(f"y has {len(y)} labels and probs {len(probs)} rows; give one label per row")
    if (y != np.round(y)).any() or (y < 0).any() or (y >= probs.shape[1]).any():
        raise RedundancyError(f"y holds a value that is not an integer label in [0, {probs.shape[1] - 1}] "
                              f"(probs has {probs.shape[1]} columns)")
    conf = probs.max(1)
    correct = (probs.argmax(1) == y.astype(np.int64)).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += m.sum() / len(y) * abs(correct[m].mean() - conf[m].mean())
    return float(round(total, 12))


def _sample_outputs(net: SpikeSlabNet, X: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
    mode = net.mode
    net.set_mode("sample")
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[X.device] if X.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return torch.stack([predict(net, X) for _ in range(n_samples)])
    finally:
        net.set_mode(mode)


@_v.validate_params({"net": _v.Instance(SpikeSlabNet, "SpikeSlabNet (result.net of fit_spike_slab)"),
                     "n_samples": _v.Int(1, 10_000), "seed": _v.Seed()})
def posterior_predictive(net: SpikeSlabNet, X: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
    """``n_samples`` outputs of ``net`` on ``X``, each with Bernoulli ``γ`` and Gaussian ``w`` drawn anew.

    Parameters
    ----------
    net : SpikeSlabNet
        A fitted network (``result.net``); its mode and the caller's torch RNG are restored.
    X : tensor or array (n, *net.input_shape)
        Finite inputs (cast to the network's dtype and device).
    n_samples : int
        In [1, 10000].
    seed : int

    Returns
    -------
    torch.Tensor of shape (n_samples, n, *output)

    Examples
    --------
    >>> import numpy as np
    >>> from redundancy.bayes import fit_spike_slab
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    >>> res = fit_spike_slab((6,), (X, y), epochs=2, n_samples=2)
    >>> posterior_predictive(res.net, X[:5], 3, seed=0).shape
    torch.Size([3, 5, 2])
    """
    p = next(net.parameters())
    if isinstance(X, torch.Tensor):
        _v.Tensor()("X", X)
        X = X.detach()
    else:
        X = torch.from_numpy(_v.check_array("X", X, min_ndim=1))
    want = tuple(net.input_shape)
    if X.dim() != len(want) + 1 or tuple(X.shape[1:]) != want or len(X) == 0:
        raise RedundancyError(f"X has shape {tuple(X.shape)}; the network takes (n >= 1, *{want})")
    X = X.to(device=p.device, dtype=p.dtype)
    run = _v.model_errors("posterior_predictive")(_sample_outputs)
    per_example = run(net, X[:1], 1, seed).numel()
    _v.check_memory("the posterior predictive samples", n_samples * len(X) * per_example, p.element_size())
    return run(net, X, n_samples, seed)  # predict refuses NaN/inf outputs


def _magnitude(layer) -> np.ndarray:
    w = layer.weight_mu.detach().reshape(layer.weight_mu.shape[0], -1)
    sq = (w ** 2).sum(1)
    if layer.bias_mu is not None:
        sq = sq + layer.bias_mu.detach() ** 2
    return sq.sqrt().cpu().double().numpy()


def fit_spike_slab(model_or_widths: nn.Module | Sequence[int], data: Any, *, prior_inclusion: float = 0.5,
                   slab_scale: float = 1.0, epochs: int = 50, batch_size: int = 64, lr: float = 1e-2,
                   seed: int = 0, device: Any = "cpu", select_features: bool | None = None,
                   noise_scale: float | None = None, temperature: tuple[float, float] = (1.0, 0.1),
                   init_inclusion: float = 0.9, init_scale: float = 0.05, n_samples: int = 32,
                   checkpoint=None, progress: bool = False) -> SpikeSlabResult:
    r"""Fit node-level (and input-feature) spike-and-slab posteriors to ``data``.

    Parameters
    ----------
    model_or_widths : nn.Sequential or sequence of int
        A model to convert (see :mod:`redundancy.bayes.convert`; its weights are the initial
        posterior means and it is not changed), or hidden widths of a ReLU MLP built by
        :func:`redundancy.zoo.mlp` (seeded with ``seed``).
    data : Dataset or arrays
        Classification (integer labels) or regression (float targets).
    prior_inclusion : float
        ``λ`` in (0, 1), the prior probability that a node or feature is in the model.
    slab_scale : float
        ``σ0``, the prior standard deviation of an included weight.
    epochs, batch_size, lr, seed, device, checkpoint, progress
        Passed to :func:`redundancy.training.train` (Adam).
    select_features : bool or None
        Gate the input units of the first weight layer; default: yes when it is a Linear.
    noise_scale : float or None
        Regression noise standard deviation; ``None`` fits it.
    temperature : (float, float)
        Start and end of the Concrete temperature (geometric annealing over all steps).
    init_inclusion, init_scale : float
        Initial ``p`` of every indicator and initial posterior standard deviation of every weight.
    n_samples : int
        Posterior draws averaged in the predictive.

    Returns
    -------
    SpikeSlabResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 6)).astype("float32"); y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    >>> res = fit_spike_slab((8,), (X, y), epochs=30, lr=3e-2, seed=0)
    >>> res.accuracy > 0.9, bool(res.feature_pip[:2].min() > 0.5)
    (True, True)
    """
    ds = as_dataset(data)
    lam = _prob("prior_inclusion", prior_inclusion)
    s0 = check_positive_float("slab_scale", slab_scale)
    epochs = check_int("epochs", epochs, min_value=1, max_value=100_000)
    batch_size = check_int("batch_size", batch_size, min_value=1, max_value=1_000_000)
    n_samples = check_int("n_samples", n_samples, min_value=1, max_value=10_000)
    seed = check_int("seed", seed, min_value=0, max_value=2 ** 63 - 1)
    init_inclusion = _prob("init_inclusion", init_inclusion)
    init_scale = check_positive_float("init_scale", init_scale)
    if not (isinstance(temperature, (tuple, list)) and len(temperature) == 2):
        raise RedundancyError(f"temperature={temperature!r} is not allowed; give (start, end), both > 0")
    temperature = (check_positive_float("temperature[0]", temperature[0]),
                   check_positive_float("temperature[1]", temperature[1]))
    dev = check_device(device)
    reg = ds.task == "regression"
    if reg:
        if ds.y_train.ndim > 2:
            raise RedundancyError(f"regression targets have shape {ds.y_train.shape}; give (n,) or (n, outputs)")
        n_out = 1 if ds.y_train.ndim == 1 else ds.y_train.shape[1]
        if noise_scale is not None:
            noise_scale = check_positive_float("noise_scale", noise_scale)
    else:
        n_out = ds.n_classes
    if isinstance(model_or_widths, nn.Module):
        model = model_or_widths
    elif isinstance(model_or_widths, (tuple, list)):
        model = mlp(ds.input_shape, model_or_widths, n_out, seed=seed % (2 ** 63))
    else:
        raise RedundancyError(f"model_or_widths={type(model_or_widths).__name__} is not allowed; give an "
                              "nn.Sequential or a list of hidden widths such as (64, 32)")
    leaves = _flat_leaves(model)
    first = next((m for _, m in leaves if type(m) in WEIGHT_TYPES), None)
    if first is None:
        raise UnsupportedLayerError("the model has no Linear or Conv layer to put a spike-and-slab prior on")
    if select_features is None:
        select_features = isinstance(first, nn.Linear)
    n_train = len(ds.y_train)
    steps = epochs * math.ceil(n_train / batch_size)
    net = to_spike_slab(model,
                        ds.input_shape, prior_inclusion=lam, slab_scale=s0, select_features=bool(select_features),
                        init_inclusion=init_inclusion, init_scale=init_scale, temperature=temperature,
                        total_steps=steps)
    if reg:
        start = math.log(noise_scale) if noise_scale is not None else math.log(float(np.std(ds.y_train)) + 1e-6)
        if noise_scale is None:
            net.log_noise = nn.Parameter(torch.tensor(start))
        else:
            net.register_buffer("log_noise", torch.tensor(start))

    def gaussian_nll(out, y, log_s):
        out = out.reshape(y.shape) if out.numel() == y.numel() else out
        per = 0.5 * math.log(2 * math.pi) + log_s + 0.5 * (y - out) ** 2 * torch.exp(-2 * log_s)
        return per.reshape(len(y), -1).sum(1)

    def neg_elbo(net, X, y):
        if net.training:
            net.step += 1
        out = net(X)
        nll = gaussian_nll(out, y, net.log_noise).mean() if reg else F.cross_entropy(out, y)
        return nll + net.kl() / n_train

    t0 = time.perf_counter()
    tr = train(net, ds, epochs=epochs, batch_size=batch_size, lr=lr, loss=neg_elbo, seed=seed, device=dev,
               checkpoint=checkpoint, progress=progress, desc="spike-slab")
    X = torch.as_tensor(np.ascontiguousarray(ds.X_test)).to(dev, next(net.parameters()).dtype)
    y = torch.as_tensor(np.ascontiguousarray(ds.y_test)).to(dev)
    outs = _sample_outputs(net, X, n_samples, seed + 1)  # predict refuses NaN/inf outputs
    net.set_mode("median")
    med = predict(net, X)
    net.set_mode("relaxed")
    layers = [(n, m) for n, m in net.weight_layers() if m.node_logit is not None]
    node_pip = {n: m.node_pip.detach().cpu().double().numpy() for n, m in layers}
    node_mag = {n: _magnitude(m) for n, m in layers}
    first_name, first_layer = net.weight_layers()[0]
    feature_pip = None if first_layer.input_logit is None else \
        first_layer.input_pip.detach().cpu().double().numpy()
    if reg:
        y = y.to(X.dtype)
        log_s = float(net.log_noise.detach())
        logp = -torch.stack([gaussian_nll(o, y, torch.tensor(log_s)) for o in outs])
        nll = float(-(torch.logsumexp(logp.double(), 0) - math.log(n_samples)).mean())
        mean = outs.mean(0).reshape(y.shape) if outs[0].numel() == y.numel() else outs.mean(0)
        rmse = float(((mean - y) ** 2).double().mean().sqrt())
        ss_tot = float(((y - y.mean(0)) ** 2).double().sum())
        r2 = 1.0 - float(((mean - y) ** 2).double().sum()) / ss_tot if ss_tot > 0 else 0.0
        med = med.reshape(y.shape) if med.numel() == y.numel() else med
        median_score = float(((med - y) ** 2).double().mean().sqrt())
        acc = ece = None
        predictive = mean.cpu().numpy()
        noise = math.exp(log_s)
    else:
        logp = torch.log_softmax(outs.double(), -1)
        logbar = torch.logsumexp(logp, 0) - math.log(n_samples)
        nll = float(-logbar[torch.arange(len(y)), y].mean())
        probs = logbar.exp().cpu().numpy()
        yn = y.cpu().numpy()
        acc = float((probs.argmax(1) == yn).mean())
        ece = expected_calibration_error(probs, yn)
        median_score = float((med.argmax(1) == y).double().mean())
        rmse = r2 = noise = None
        predictive = probs
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": str(dev),
                "select_features": bool(select_features), "temperature": list(temperature),
                "init_inclusion": init_inclusion, "init_scale": init_scale, "n_train": n_train,
                "n_test": int(len(ds.y_test)), "noise": "fitted" if reg and noise_scale is None else
                ("known" if reg else None), "data": ds.name, "resumed_from_epoch": tr.resumed_from_epoch}
    return SpikeSlabResult(ds.task, tuple(n for n, _ in layers), node_pip, node_mag, feature_pip,
                           first_name if feature_pip is not None else None, acc, nll, ece, rmse, r2,
                           median_score, noise, lam, s0, n_samples, seed, tr.losses,
                           time.perf_counter() - t0, settings, predictive, net)
