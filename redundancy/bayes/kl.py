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

import torch
from torch.nn import functional as F

__all__ = ["kl_bernoulli", "kl_normal", "spike_slab_kl", "relaxed_bernoulli"]


def kl_bernoulli(logit: torch.Tensor, prior_inclusion: float) -> torch.Tensor:
    r"""Elementwise ``KL(Bern(p) || Bern(λ))`` with ``p = sigmoid(logit)``, stable for any logit.

    Examples
    --------
    >>> import torch
    >>> float(kl_bernoulli(torch.tensor(0.0), 0.5))
    0.0
    """
    lam = torch.as_tensor(prior_inclusion, dtype=logit.dtype, device=logit.device)
    p = torch.sigmoid(logit)
    log_p, log_1mp = F.logsigmoid(logit), F.logsigmoid(-logit)
    return p * (log_p - torch.log(lam)) + (1 - p) * (log_1mp - torch.log1p(-lam))


def kl_normal(mu: torch.Tensor, sigma: torch.Tensor, slab_scale: float) -> torch.Tensor:
    r"""Elementwise ``KL(N(μ, σ²) || N(0, σ0²)) = log(σ0/σ) + (σ² + μ²)/(2σ0²) − 1/2``.

    Examples
    --------
    >>> import torch
    >>> float(kl_normal(torch.tensor(0.0), torch.tensor(2.0), 2.0))
    0.0
    """
    s0 = float(slab_scale)
    return torch.log(s0 / sigma) + (sigma ** 2 + mu ** 2) / (2 * s0 * s0) - 0.5


def spike_slab_kl(logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, prior_inclusion: float,
                  slab_scale: float) -> torch.Tensor:
    r"""``Σ_j [KL_B(p_j) + p_j Σ_k KL_N(μ_jk, σ_jk)]`` for nodes along the first axis of ``mu``.

    ``logit`` has shape ``(n_nodes,)``; ``mu`` and ``sigma`` have shape ``(n_nodes, ...)``.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(3, 2)
    >>> float(spike_slab_kl(torch.zeros(3), z, torch.ones(3, 2), 0.5, 1.0))
    0.0
    """
    p = torch.sigmoid(logit)
    per_node = kl_normal(mu, sigma, slab_scale).reshape(mu.shape[0], -1).sum(1)
    return kl_bernoulli(logit, prior_inclusion).sum() + (p * per_node).sum()


def relaxed_bernoulli(logit: torch.Tensor, temperature: float, *, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    r"""One Concrete sample ``sigmoid((logit + log u − log(1−u)) / τ)`` per entry of ``logit``.

    Differentiable in ``logit`` (the reparameterisation trick); ``u`` is clamped to
    ``[1e-6, 1 − 1e-6]`` so the sample is finite.

    Examples
    --------
    >>> import torch
    >>> g = relaxed_bernoulli(torch.zeros(4), 0.5, generator=torch.Generator().manual_seed(0))
    >>> bool(((g > 0) & (g < 1)).all())
    True
    """
    if generator is None:
        u = torch.rand(logit.shape, dtype=logit.dtype, device=logit.device)
    else:
        u = torch.rand(logit.shape, generator=generator, dtype=logit.dtype).to(logit.device)
    u = u.clamp(1e-6, 1 - 1e-6)
    return torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / temperature)
