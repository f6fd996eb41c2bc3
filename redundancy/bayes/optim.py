r"""The training plan of :func:`redundancy.bayes.fit_spike_slab` (it trains through
:func:`redundancy.training.train`, the one loop, with these settings).

The negative ELBO is a stochastic objective (one reparameterised draw per step), so the fit

* takes **full-batch** steps when the training set is small (``batch_size=None`` and at most
  :data:`FULL_BATCH_MAX` examples; otherwise mini-batches of :data:`DEFAULT_BATCH`), so an epoch
  is one step and nothing but the forward/backward pass runs per step;
* anneals the Concrete temperature and the learning rate together over the first
  ``anneal_steps`` steps (geometrically, ``lr → lr · lr_end``), then holds both;
* monitors the negative ELBO per example averaged over the last :data:`WINDOW` steps (the loop's
  ``monitor_window``; one value per epoch, the :class:`~redundancy.training.Convergence` history)
  and stops, once the annealing is over (``settle_after``), when
  :func:`~redundancy.training.diagnostics.has_settled` fires (``tol``, ``patience``); ``epochs``
  is the cap.

Checkpoints are saved every epoch for mini-batches and every :data:`WINDOW` steps for full batches
(``checkpoint_every``) and resume exactly.
"""

from __future__ import annotations

import math

FULL_BATCH_MAX = 4096
DEFAULT_BATCH = 256
DEFAULT_STEPS = 3000
ANNEAL_STEPS = 1000
WINDOW = 50
LR_END = 0.05
SMALL_WORK = 10_000_000


def plan(n_train: int, batch_size: int | None, epochs: int | None) -> tuple[int, int, int]:
    """``(batch_size, max_epochs, steps per epoch)`` for ``n_train`` examples (``None``: the defaults)."""
    if batch_size is None:
        batch_size = n_train if n_train <= FULL_BATCH_MAX else DEFAULT_BATCH
    batch_size = min(batch_size, n_train)
    spe = math.ceil(n_train / batch_size)
    if epochs is None:
        epochs = max(10, math.ceil(DEFAULT_STEPS / spe))
    return batch_size, epochs, spe
