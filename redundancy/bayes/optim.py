r"""The optimiser of :func:`redundancy.bayes.fit_spike_slab`: Adam with a schedule and a stopping rule.

The negative ELBO is a stochastic objective (one reparameterised draw per step), so the plain
per-epoch training loop of :mod:`redundancy.training` cannot tell a settled fit from a noisy one.
This loop

* takes **full-batch** steps when the training set is small (``batch_size=None`` and at most
  :data:`FULL_BATCH_MAX` examples; otherwise mini-batches of :data:`DEFAULT_BATCH`), so an epoch
  is one step and nothing but the forward/backward pass runs per step;
* anneals the Concrete temperature and the learning rate together over the first
  ``anneal_steps`` steps (geometrically, ``lr → lr · lr_end``), then holds both;
* monitors the negative ELBO per example averaged over the last :data:`WINDOW` steps (one value per
  epoch, the :class:`~redundancy.training.Convergence` history) and stops, once the annealing is
  over, when :func:`~redundancy.training.diagnostics.has_settled` fires (``tol``, ``patience``);
  ``max_epochs`` is the cap.

Checkpoints go through :func:`redundancy.training.loop._save` (every epoch for mini-batches, every
:data:`WINDOW` steps for full batches) and resume exactly.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

import redundancy.training.loop as _loop
from redundancy.errors import RedundancyError
from redundancy.training.common import batches
from redundancy.training.diagnostics import has_settled

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


def _smoothed(raw: list[float], spe: int) -> float:
    """Mean of the last :data:`WINDOW` steps' objective (``raw`` holds one mean per epoch)."""
    k = max(1, math.ceil(WINDOW / spe))
    tail = raw[-k:]
    return sum(tail) / len(tail)


def _adam(net, lr: float) -> torch.optim.Optimizer:
    """Adam with one fused kernel for all parameters (the per-parameter loop dominates a tiny step);
    the multi-tensor version where the fused one is not available for the device or dtype."""
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(net.parameters(), lr=lr, foreach=True)


def optimise(net, loss_fn, X: torch.Tensor, y: torch.Tensor, *, max_epochs: int, batch_size: int, lr: float,
             lr_end: float, tol: float, patience: int, seed: int, checkpoint: Any = None,
             progress: bool = False) -> dict[str, Any]:
    """Minimise ``loss_fn(net, X_b, y_b)``; returns raw and monitored histories, steps, resume epoch, stop flag."""
    opt = _adam(net, lr)
    gen = torch.Generator().manual_seed(seed)
    ckpt = None if checkpoint is None else os.fspath(checkpoint)
    start, raw, rng_state = _loop._resume(ckpt, net, opt, gen)
    state = dict(net=net, loss_fn=loss_fn, X=X, y=y, opt=opt, gen=gen, ckpt=ckpt, raw=raw, lr=lr, lr_end=lr_end,
                 tol=tol, patience=patience, batch_size=batch_size, max_epochs=max_epochs)
    threads = torch.get_num_threads()
    if X.device.type == "cpu" and batch_size * sum(p.numel() for p in net.parameters()) < SMALL_WORK:
        torch.set_num_threads(1)  # on a tiny step, intra-op threads cost more than they save
    try:
        with torch.random.fork_rng():
            torch.set_rng_state(rng_state) if rng_state is not None else torch.manual_seed(seed)
            stopped, monitored = _epochs(state, start, progress)
    finally:
        torch.set_num_threads(threads)
    return {"raw": raw, "monitored": monitored, "resumed_from_epoch": start, "stopped": stopped,
            "steps": int(net.step), "steps_per_epoch": math.ceil(len(y) / batch_size)}


def _epochs(st: dict[str, Any], start: int, progress: bool) -> tuple[bool, list[float]]:
    """The epochs ``start..max_epochs`` of :func:`optimise`: ``(stopped by the rule, monitored history)``."""
    from tqdm.auto import tqdm

    net, opt, X, y, raw = st["net"], st["opt"], st["X"], st["y"], st["raw"]
    n, bs = len(y), st["batch_size"]
    spe = math.ceil(n / bs)
    monitored = [_smoothed(raw[:i + 1], spe) for i in range(len(raw))]
    anneal, save_every = net.total_steps, (1 if spe > 1 else WINDOW)
    net.train()
    for epoch in tqdm(range(start, st["max_epochs"]), desc="spike-slab", disable=not progress, leave=False):
        total = torch.zeros((), dtype=torch.float64)
        for idx in ([None] if spe == 1 else batches(n, bs, st["gen"])):
            for g in opt.param_groups:
                g["lr"] = st["lr"] * st["lr_end"] ** min(float(net.step) / anneal, 1.0)
            opt.zero_grad(set_to_none=True)
            value = st["loss_fn"](net, X, y) if idx is None else st["loss_fn"](net, X[idx], y[idx])
            value.backward()
            opt.step()
            total += value.detach() * (n if idx is None else len(idx))
        raw.append(float(total) / n)
        if not math.isfinite(raw[-1]):
            net.eval()
            raise RedundancyError(f"the negative ELBO became {raw[-1]} at epoch {epoch + 1}; lower lr or check the data")
        monitored.append(_smoothed(raw, spe))
        if st["ckpt"] is not None and ((epoch + 1) % save_every == 0 or epoch + 1 == st["max_epochs"]):
            _loop._save(st["ckpt"], net, opt, epoch + 1, raw, st["gen"])
        if int(net.step) >= anneal and has_settled(monitored, tol=st["tol"], patience=st["patience"]):
            net.eval()
            return True, monitored
    net.eval()
    return False, monitored
