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
from redundancy._validation import check_positive_float
from redundancy.bayes.convert import WEIGHT_TYPES, SpikeSlabNet, _flat_leaves, to_spike_slab
from redundancy.zoo.small import mlp
from redundancy.bayes.result import SpikeSlabResult
from redundancy.data import as_dataset
from redundancy.errors import RedundancyError, UnsupportedLayerError
import redundancy.bayes.optim as optim
from redundancy.training import check_device, predict
from redundancy.training.common import _tensors
from redundancy.training.diagnostics import assess_convergence, warn_unconverged

__all__ = ["fit_spike_slab", "posterior_predictive"]


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
    return _ece(probs, y, n_bins)


def _ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
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
    >>> X = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    >>> res = fit_spike_slab((6,), (X, (X[:, 0] > 0).astype("int64")), epochs=2, n_samples=2)
    >>> posterior_predictive(res.net, X[:5], 3, seed=0).shape
    torch.Size([3, 5, 2])
    """
    if isinstance(X, torch.Tensor):
        _v.Tensor()("X", X)
        X = X.detach()
    else:
        X = torch.from_numpy(_v.check_array("X", X, min_ndim=1))
    want = tuple(net.input_shape)
    if X.dim() != len(want) + 1 or tuple(X.shape[1:]) != want or len(X) == 0:
        raise RedundancyError(f"X has shape {tuple(X.shape)}; the network takes (n >= 1, *{want})")
    dtype = _v.model_dtype(net)
    X = X.to(device=_v.model_device(net), dtype=dtype)
    run = _v.model_errors("posterior_predictive")(_sample_outputs)
    per_example = run(net, X[:1], 1, seed).numel()
    _v.check_memory("the posterior predictive samples", n_samples * len(X) * per_example, dtype.itemsize)
    return run(net, X, n_samples, seed)  # predict refuses NaN/inf outputs


def _magnitude(layer) -> np.ndarray:
    w = layer.weight_mu.detach().reshape(layer.weight_mu.shape[0], -1)
    sq = (w ** 2).sum(1)
    if layer.bias_mu is not None:
        sq = sq + layer.bias_mu.detach() ** 2
    return sq.sqrt().cpu().double().numpy()


def _gaussian_nll(out, y, log_s):
    out = out.reshape(y.shape) if out.numel() == y.numel() else out
    d = y - out
    per = 0.5 * math.log(2 * math.pi) + log_s + 0.5 * d * d * torch.exp(-2 * log_s)
    return per.reshape(len(y), -1).sum(1)


def _neg_elbo(reg: bool, n_train: int):
    """The training loss ``J / N``: negative log-likelihood of the batch plus the KL per example."""
    def neg_elbo(net, X, y):
        if net.training:
            net.step += 1
        out = net(X)
        nll = _gaussian_nll(out, y, net.log_noise).mean() if reg else F.cross_entropy(out, y)
        return nll + net.kl() / n_train
    return neg_elbo


def _temperature(name: str, value: Any) -> tuple[float, float]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise RedundancyError(f"{name}={value!r} is not allowed; give (start, end), both > 0")
    return (check_positive_float(f"{name}[0]", value[0]), check_positive_float(f"{name}[1]", value[1]))


def _model_or_widths(name: str, value: Any) -> Any:
    if not isinstance(value, (nn.Module, tuple, list)):
        raise RedundancyError(f"{name}={type(value).__name__} is not allowed; give an "
                              "nn.Sequential or a list of hidden widths such as (64, 32)")
    return value


def _outputs(ds, noise_scale):
    """Number of outputs of the network for ``ds`` (regression targets checked; ``noise_scale`` too)."""
    if ds.task != "regression":
        return ds.n_classes, noise_scale
    if ds.y_train.ndim > 2:
        raise RedundancyError(f"regression targets have shape {ds.y_train.shape}; give (n,) or (n, outputs)")
    n_out = 1 if ds.y_train.ndim == 1 else ds.y_train.shape[1]
    if noise_scale is not None:
        noise_scale = check_positive_float("noise_scale", noise_scale)
    return n_out, noise_scale


def _build_net(model_or_widths, ds, n_out: int, *, seed: int, steps: int, select_features, noise_scale,
               **prior) -> tuple[SpikeSlabNet, bool]:
    """The variational network (and whether its input features are gated) for the caller's model or widths."""
    if isinstance(model_or_widths, nn.Module):
        model = model_or_widths
    else:
        model = mlp(ds.input_shape, model_or_widths, n_out, seed=seed % (2 ** 63))
    first = next((m for _, m in _flat_leaves(model) if type(m) in WEIGHT_TYPES), None)
    if first is None:
        raise UnsupportedLayerError("the model has no Linear or Conv layer to put a spike-and-slab prior on")
    if select_features is None:
        select_features = isinstance(first, nn.Linear)
    net = to_spike_slab(model, ds.input_shape, select_features=bool(select_features), total_steps=steps, **prior)
    if ds.task == "regression":
        start = math.log(noise_scale) if noise_scale is not None else math.log(float(np.std(ds.y_train)) + 1e-6)
        if noise_scale is None:
            net.log_noise = nn.Parameter(torch.tensor(start))
        else:
            net.register_buffer("log_noise", torch.tensor(start))
    return net, bool(select_features)


def _inclusions(net: SpikeSlabNet) -> dict[str, Any]:
    """Node and feature inclusion probabilities and node magnitudes of a fitted network."""
    layers = [(n, m) for n, m in net.weight_layers() if m.node_logit is not None]
    first_name, first_layer = net.weight_layers()[0]
    feature_pip = None if first_layer.input_logit is None else \
        first_layer.input_pip.detach().cpu().double().numpy()
    return {"layers": tuple(n for n, _ in layers),
            "node_pip": {n: m.node_pip.detach().cpu().double().numpy() for n, m in layers},
            "node_magnitude": {n: _magnitude(m) for n, m in layers}, "feature_pip": feature_pip,
            "feature_layer": first_name if feature_pip is not None else None}


def _regression_scores(net, outs, med, y, n_samples: int) -> dict[str, Any]:
    log_s = float(net.log_noise.detach())
    logp = -torch.stack([_gaussian_nll(o, y, torch.tensor(log_s)) for o in outs])
    nll = float(-(torch.logsumexp(logp.double(), 0) - math.log(n_samples)).mean())
    mean = outs.mean(0).reshape(y.shape) if outs[0].numel() == y.numel() else outs.mean(0)
    ss_tot = float(((y - y.mean(0)) ** 2).double().sum())
    med = med.reshape(y.shape) if med.numel() == y.numel() else med
    return {"accuracy": None, "nll": nll, "ece": None, "rmse": float(((mean - y) ** 2).double().mean().sqrt()),
            "r2": 1.0 - float(((mean - y) ** 2).double().sum()) / ss_tot if ss_tot > 0 else 0.0,
            "median_score": float(((med - y) ** 2).double().mean().sqrt()), "noise_scale": math.exp(log_s),
            "predictive": mean.cpu().numpy()}


def _classification_scores(outs, med, y, n_samples: int) -> dict[str, Any]:
    logp = torch.log_softmax(outs.double(), -1)
    logbar = torch.logsumexp(logp, 0) - math.log(n_samples)
    probs = logbar.exp().cpu().numpy()
    yn = y.cpu().numpy()
    return {"accuracy": float((probs.argmax(1) == yn).mean()), "nll": float(-logbar[torch.arange(len(y)), y].mean()),
            "ece": _ece(probs, yn), "rmse": None, "r2": None,
            "median_score": float((med.argmax(1) == y).double().mean()), "noise_scale": None, "predictive": probs}


def _scores(net: SpikeSlabNet, ds, dev, n_samples: int, seed: int) -> dict[str, Any]:
    """Posterior-predictive and median-model scores on the test split."""
    X = torch.as_tensor(np.ascontiguousarray(ds.X_test)).to(dev, _v.model_dtype(net))
    y = torch.as_tensor(np.ascontiguousarray(ds.y_test)).to(dev)
    outs = _sample_outputs(net, X, n_samples, seed + 1)  # predict refuses NaN/inf outputs
    net.set_mode("median")
    med = predict(net, X)
    net.set_mode("relaxed")
    if ds.task == "regression":
        return _regression_scores(net, outs, med, y.to(X.dtype), n_samples)
    return _classification_scores(outs, med, y, n_samples)


@_v.validate_params({"model_or_widths": _model_or_widths, "data": lambda n, v: as_dataset(v),
                     "prior_inclusion": _prob, "slab_scale": check_positive_float,
                     "epochs": _v.NoneOr(_v.Int(1, 100_000)), "batch_size": _v.NoneOr(_v.Int(1, 1_000_000)),
                     "lr": check_positive_float, "tol": _v.Float(0.0, 1.0), "patience": _v.NoneOr(_v.Int(1, 100_000)),
                     "seed": _v.Seed(), "device": lambda n, v: check_device(v),
                     "select_features": _v.NoneOr(_v.Bool()), "temperature": _temperature, "init_inclusion": _prob,
                     "init_scale": check_positive_float, "n_samples": _v.Int(1, 10_000)})
def fit_spike_slab(model_or_widths: nn.Module | Sequence[int], data: Any, *, prior_inclusion: float = 0.5,
                   slab_scale: float = 1.0, epochs: int | None = None, batch_size: int | None = None, lr: float = 5e-2,
                   tol: float = 1e-4, patience: int | None = None, seed: int = 0, device: Any = "cpu",
                   select_features: bool | None = None, noise_scale: float | None = None,
                   temperature: tuple[float, float] = (1.0, 0.1), init_inclusion: float = 0.9, init_scale: float = 0.05,
                   n_samples: int = 32, checkpoint=None, progress: bool = False) -> SpikeSlabResult:
    r"""Fit node-level (and input-feature) spike-and-slab posteriors to ``data``.

    Training (:func:`redundancy.training.train` with the plan of :mod:`redundancy.bayes.optim`): Adam on the negative ELBO, full-batch steps when the
    training set has at most 4096 examples (else mini-batches of 256), the Concrete temperature and
    the learning rate (``lr → lr/20``) annealed together over the first ``min(1000, cap)`` steps,
    then the stopping rule on the negative ELBO (averaged over the last 50 steps): stop when it
    improved by less than ``tol`` (relative) in ``patience`` epochs. ``epochs`` is the cap. A fit
    that hits the cap unconverged emits a :class:`~redundancy.errors.ConvergenceWarning`; the
    evidence is ``result.convergence``.

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
    epochs : int or None
        The cap on epochs; ``None``: 3000 steps' worth (at least 10 epochs).
    batch_size : int or None
        ``None``: the whole training set when it has at most 4096 examples, else 256.
    lr : float
        Adam's initial learning rate (annealed to ``lr/20``).
    tol, patience : float, int or None
        The stopping rule; ``patience`` in epochs, ``None``: 100 steps' worth.
    seed, device, checkpoint, progress
        Seed of the initialisation, draws and batch order; torch device; a file saved during training
        from which an interrupted fit resumes; a tqdm bar.
    select_features : bool or None
        Gate the input units of the first weight layer; default: yes when it is a Linear.
    noise_scale : float or None
        Regression noise standard deviation; ``None`` fits it.
    temperature : (float, float)
        Start and end of the Concrete temperature (geometric annealing).
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
    >>> X = np.random.default_rng(0).normal(size=(300, 6)).astype("float32")
    >>> y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    >>> res = fit_spike_slab((8,), (X, y), seed=0)
    >>> res.accuracy > 0.9, bool(res.feature_pip[:2].min() > 0.5), res.convergence.converged
    (True, True, True)
    """
    ds = data
    n_out, noise_scale = _outputs(ds, noise_scale)
    n_train = len(ds.y_train)
    batch_size, epochs, spe = optim.plan(n_train, batch_size, epochs)
    patience = patience if patience is not None else max(1, math.ceil(100 / spe))
    net, select_features = _build_net(model_or_widths, ds, n_out, seed=seed, steps=min(epochs * spe, optim.ANNEAL_STEPS),
                                      select_features=select_features, noise_scale=noise_scale,
                                      prior_inclusion=prior_inclusion, slab_scale=slab_scale,
                                      init_inclusion=init_inclusion, init_scale=init_scale, temperature=temperature)
    t0 = time.perf_counter()
    dev = check_device(device)
    net.to(dev)
    X, y = _tensors(ds, "train", dev, _v.model_dtype(net))
    run = _optimise(net, ds, X, epochs=epochs, batch_size=batch_size, spe=spe, lr=lr, tol=tol, patience=patience,
                    seed=seed, device=dev, checkpoint=checkpoint, progress=progress)
    conv = _convergence(net, ds, X, y, run, epochs, tol, patience)
    warn_unconverged("fit_spike_slab", conv, f"raise epochs above {epochs} (or lr above {lr:g})", stacklevel=4)
    scores = _scores(net, ds, dev, n_samples, seed)
    reg = ds.task == "regression"
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "tol": tol, "patience": patience,
                "device": str(device), "select_features": select_features, "temperature": list(temperature),
                "init_inclusion": init_inclusion, "init_scale": init_scale, "n_train": n_train,
                "n_test": int(len(ds.y_test)), "noise": "fitted" if reg and noise_scale is None else
                ("known" if reg else None), "data": ds.name, "resumed_from_epoch": run["resumed_from_epoch"],
                "steps": run["steps"]}
    return SpikeSlabResult(task=ds.task, **_inclusions(net), **scores, prior_inclusion=prior_inclusion,
                           slab_scale=slab_scale, n_samples=n_samples, seed=seed, losses=tuple(run["raw"]),
                           convergence=conv, seconds=time.perf_counter() - t0, settings=settings, net=net)


def _optimise(net, ds, X, *, epochs, batch_size, spe, lr, tol, patience, seed, device, checkpoint, progress):
    """Adam on the negative ELBO through the one training loop, with the schedule of
    :mod:`redundancy.bayes.optim`: learning rate annealed with the Concrete temperature over the
    first ``net.total_steps`` steps, the stopping rule on the ELBO averaged over the last
    :data:`~redundancy.bayes.optim.WINDOW` steps, allowed to fire once the annealing is over."""
    from redundancy.training import train

    anneal = int(net.total_steps)
    threads = torch.get_num_threads()
    if X.device.type == "cpu" and batch_size * sum(p.numel() for p in net.parameters()) < optim.SMALL_WORK:
        torch.set_num_threads(1)  # on a tiny step, intra-op threads cost more than they save
    try:
        tr = train(net, ds, epochs=epochs, batch_size=batch_size, lr=lr, loss=_neg_elbo(ds.task == "regression",
                   len(ds.y_train)), seed=seed, device=device, checkpoint=checkpoint, progress=progress,
                   desc="spike-slab", tol=tol, patience=patience, warn=False, fused=True,
                   lr_schedule=lambda t: optim.LR_END ** min(t / anneal, 1.0), monitor_window=math.ceil(optim.WINDOW / spe),
                   settle_after=anneal, checkpoint_every=1 if spe > 1 else optim.WINDOW, monitor="-ELBO/n")
    finally:
        torch.set_num_threads(threads)
    conv = tr.convergence
    return {"raw": list(tr.losses), "monitored": list(conv.history), "stopped": conv.converged,
            "resumed_from_epoch": tr.resumed_from_epoch, "steps": int(net.step)}


def _convergence(net, ds, X, y, run, epochs, tol, patience):
    """The fit's :class:`~redundancy.training.Convergence` (training accuracy of the median model for classifiers)."""
    acc = None
    if ds.task == "classification":
        net.set_mode("median")
        acc = float((predict(net, X).argmax(1) == y).double().mean())
        net.set_mode("relaxed")
    return assess_convergence(run["monitored"], max_epochs=epochs, tol=tol, patience=patience,
                              monitor="-ELBO/n (50-step mean)", train_accuracy=acc,
                              stopped=run["stopped"])
