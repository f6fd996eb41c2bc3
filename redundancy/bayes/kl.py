r"""Closed-form KL terms of the node-level spike-and-slab family and the Concrete relaxation.

Prior of one node (or input feature) ``j`` with incoming weights ``w_j`` (``d`` numbers):
``γ_j ~ Bern(λ)``, ``w_j | γ_j = 1 ~ N(0, σ0² I)``, ``w_j | γ_j = 0 = δ_0`` (the spike).
Mean-field posterior: ``q(γ_j) = Bern(p_j)``, ``q(w_j | γ_j = 1) = N(μ_j, diag σ_j²)``,
``q(w_j | γ_j = 0) = δ_0``. Because both joints factor as ``γ`` then ``w | γ``, the chain rule of KL
gives

.. math::

    \mathrm{KL}(q \,\|\, p) = \mathrm{KL}(\mathrm{Bern}(p_j) \,\|\, \mathrm{Bern}(\lambda))
        + p_j \, \mathrm{KL}(N(\mu_j, \sigma_j^2) \,\|\, N(0, \sigma_0^2))
        + (1 - p_j) \, \mathrm{KL}(\delta_0 \,\|\, \delta_0),

and the last term is 0. In closed form, summed over the ``d`` weights,

.. math::

    \mathrm{KL}_B = p \log\frac{p}{\lambda} + (1-p)\log\frac{1-p}{1-\lambda}, \qquad
    \mathrm{KL}_N = \sum_{k=1}^{d} \Big[\log\frac{\sigma_0}{\sigma_k}
        + \frac{\sigma_k^2 + \mu_k^2}{2\sigma_0^2} - \frac12\Big].

With two independent gates on one weight (a node gate ``γ_i`` on its row and a feature gate
``η_j`` on its column, the weight in the slab only when both are on) the same argument gives
``Σ_i KL_B(p_i) + Σ_j KL_B(r_j) + Σ_ij p_i r_j KL_N(w_ij)``.

The Concrete (relaxed Bernoulli) sample with logit ``a = log p/(1-p)`` and temperature ``τ`` is
``γ̃ = sigmoid((a + log u − log(1−u)) / τ)``, ``u ~ U(0, 1)``: ``P(γ̃ > 1/2) = p`` exactly at
every ``τ``, and ``E γ̃ → p`` as ``τ → 0``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn import functional as F

import redundancy._validation as _v
from redundancy.errors import RedundancyError

#: temperatures of the Concrete sample (below 1e-6 the division by τ underflows in float16/float32)
_TAU_RANGE = (1e-6, 1e6)


# ----------------------------------------------------------------------------------- unchecked kernels
# The layers call these on every training step (their arguments are the layer's own parameters);
# the public functions below validate their arguments first and refuse a non-finite result.
def _kl_bernoulli(logit: torch.Tensor, prior_inclusion: float) -> torch.Tensor:
    lam = float(prior_inclusion)
    p = torch.sigmoid(logit)
    log_p, log_1mp = F.logsigmoid(logit), F.logsigmoid(-logit)
    return p * (log_p - math.log(lam)) + (1 - p) * (log_1mp - math.log1p(-lam))


def _kl_normal(mu: torch.Tensor, sigma: torch.Tensor, slab_scale: float) -> torch.Tensor:
    s0 = float(slab_scale)
    a, b = sigma / s0, mu / s0  # scaled first: s0² may under/overflow where σ/s0 does not
    return (a * a + b * b) * 0.5 - torch.log(sigma) + (math.log(s0) - 0.5)


def _relaxed_bernoulli(logit: torch.Tensor, temperature: float, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    if generator is None:
        u = torch.rand(logit.shape, dtype=logit.dtype, device=logit.device)
    else:
        u = torch.rand(logit.shape, generator=generator, dtype=logit.dtype).to(logit.device)
    return torch.sigmoid((logit + torch.logit(u, eps=1e-6)) / temperature)  # logit(u) = log u - log(1 - u), clamped


# ----------------------------------------------------------------------------------- argument checks
def _tensor(name: str, value: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """A finite floating tensor: a torch tensor as given (gradients kept), or numbers/arrays as
    float64 (or ``like``'s dtype and device)."""
    if isinstance(value, torch.Tensor):
        _v.Tensor()(name, value)
        if not value.is_floating_point():
            raise RedundancyError(f"{name} has dtype {value.dtype}; {name} must be a floating-point tensor")
        if value.numel() > _v.MAX_NUMEL:
            raise RedundancyError(f"{name} has {value.numel():,} elements; the limit is {_v.MAX_NUMEL:,}")
        return value
    arr = _v.check_array(name, value)
    t = torch.from_numpy(arr)
    return t if like is None else t.to(dtype=like.dtype, device=like.device)


def _prob(name: str, value: Any) -> float:
    return _v.check_float(name, value, min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False)


def _positive(name: str, value: Any) -> float:
    return _v.check_positive_float(name, value)


_OVERFLOW_HINT = "an extreme mean, scale or slab_scale for the tensor's dtype"


def _same_device(*ts: torch.Tensor) -> None:
    devs = {t.device for t in ts}
    if len(devs) > 1:
        raise RedundancyError(f"the tensors are on different devices {sorted(map(str, devs))}; put them on one")


# ----------------------------------------------------------------------------------- public
@_v.validate_params({"logit": _tensor, "prior_inclusion": _prob})
def kl_bernoulli(logit: torch.Tensor, prior_inclusion: float) -> torch.Tensor:
    r"""Elementwise ``KL(Bern(p) || Bern(λ)) = p log(p/λ) + (1-p) log((1-p)/(1-λ))``, ``p = sigmoid(logit)``.

    Stable for any finite logit (``log p`` and ``log(1-p)`` are log-sigmoids).

    Parameters
    ----------
    logit : tensor or array of float
        Finite logits of the posterior inclusion probabilities (a tensor keeps its gradient).
    prior_inclusion : float
        ``λ`` in (0, 1).

    Examples
    --------
    >>> import torch
    >>> float(kl_bernoulli(torch.tensor(0.0), 0.5))
    0.0
    """
    return _v.check_finite_result("kl_bernoulli", _kl_bernoulli(logit, prior_inclusion), _OVERFLOW_HINT)


def _check_normal(mu, sigma, slab_scale) -> tuple[torch.Tensor, torch.Tensor, float]:
    mu = _tensor("mu", mu)
    sigma = _tensor("sigma", sigma, like=mu)
    _same_device(mu, sigma)
    try:
        torch.broadcast_shapes(mu.shape, sigma.shape)
    except RuntimeError:
        raise RedundancyError(f"mu has shape {tuple(mu.shape)} and sigma {tuple(sigma.shape)}; they must "
                              "broadcast together") from None
    if not bool((sigma.detach() > 0).all()):
        raise RedundancyError("sigma holds a value <= 0; every posterior standard deviation must be > 0")
    return mu, sigma, _positive("slab_scale", slab_scale)


@_v.validate_params({})
def kl_normal(mu: torch.Tensor, sigma: torch.Tensor, slab_scale: float) -> torch.Tensor:
    r"""Elementwise ``KL(N(μ, σ²) || N(0, σ0²)) = log(σ0/σ) + (σ² + μ²)/(2σ0²) − 1/2``.

    Parameters
    ----------
    mu, sigma : tensor or array of float
        Posterior means and standard deviations (``sigma > 0``), broadcastable.
    slab_scale : float
        ``σ0 > 0``.

    Examples
    --------
    >>> import torch
    >>> float(kl_normal(torch.tensor(0.0), torch.tensor(2.0), 2.0))
    0.0
    """
    mu, sigma, s0 = _check_normal(mu, sigma, slab_scale)
    return _v.check_finite_result("kl_normal", _kl_normal(mu, sigma, s0), _OVERFLOW_HINT)


@_v.validate_params({"prior_inclusion": _prob})
def spike_slab_kl(logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, prior_inclusion: float,
                  slab_scale: float) -> torch.Tensor:
    r"""``Σ_j [KL_B(p_j) + p_j Σ_k KL_N(μ_jk, σ_jk)]`` for nodes along the first axis of ``mu``.

    Parameters
    ----------
    logit : tensor of shape (n_nodes,)
    mu, sigma : tensors of shape (n_nodes, ...)
        ``sigma > 0`` and the same shape as ``mu``.
    prior_inclusion, slab_scale : float
        ``λ`` in (0, 1) and ``σ0 > 0``.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(3, 2)
    >>> float(spike_slab_kl(torch.zeros(3), z, torch.ones(3, 2), 0.5, 1.0))
    0.0
    """
    mu, sigma, s0 = _check_normal(mu, sigma, slab_scale)
    logit = _tensor("logit", logit, like=mu)
    _same_device(logit, mu)
    if mu.dim() < 1 or logit.dim() != 1 or mu.shape[0] != logit.shape[0] or sigma.shape != mu.shape:
        raise RedundancyError(f"logit has shape {tuple(logit.shape)}, mu {tuple(mu.shape)}, sigma "
                              f"{tuple(sigma.shape)}; give logit (n_nodes,) and mu, sigma (n_nodes, ...) alike")
    p = torch.sigmoid(logit)
    per_node = _kl_normal(mu, sigma, s0).reshape(mu.shape[0], -1).sum(1)
    kl = _kl_bernoulli(logit, prior_inclusion).sum() + (p * per_node).sum()
    return _v.check_finite_result("spike_slab_kl", kl, _OVERFLOW_HINT)


def _generator(name: str, value: Any):
    if value is None:
        return None
    if not isinstance(value, torch.Generator):
        raise RedundancyError(f"{name}={_v._short(value)} is not allowed; give a torch.Generator (on the CPU) or None")
    if value.device.type != "cpu":
        raise RedundancyError(f"{name} is a {value.device.type} generator; give a CPU torch.Generator or None")
    return value


@_v.validate_params({"logit": _tensor, "temperature": _v.Float(*_TAU_RANGE), "generator": _generator})
def relaxed_bernoulli(logit: torch.Tensor, temperature: float, *, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    r"""One Concrete sample ``sigmoid((logit + log u − log(1−u)) / τ)`` per entry of ``logit``.

    Differentiable in ``logit`` (the reparameterisation trick); ``u ~ U(0, 1)`` is clamped to
    ``[1e-6, 1 − 1e-6]`` so the sample is finite.

    Parameters
    ----------
    logit : tensor or array of float
        Finite logits ``log p/(1-p)``.
    temperature : float
        ``τ`` in [1e-6, 1e6].
    generator : torch.Generator, optional
        A CPU generator for ``u`` (the sample is moved to ``logit``'s device).

    Examples
    --------
    >>> import torch
    >>> g = relaxed_bernoulli(torch.zeros(4), 0.5, generator=torch.Generator().manual_seed(0))
    >>> bool(((g > 0) & (g < 1)).all())
    True
    """
    return _v.check_finite_result("relaxed_bernoulli", _relaxed_bernoulli(logit, temperature, generator),
                                  _OVERFLOW_HINT)
