"""One guard for a caller's model: its state is put back however a function leaves.

Every function that runs a caller's model (evaluates it, traces it, scores its channels, trains a
copy) uses :func:`guard_model`, so mode flags, ``requires_grad`` flags, device and dtype come back
as they were on return *and* on error. :func:`model_dtype` and :func:`model_device` are the one
probe of where a model's parameters live.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn



def model_dtype(model: nn.Module, default: torch.dtype = torch.float32) -> torch.dtype:
    """The floating dtype of ``model``'s first floating parameter (or buffer), else ``default``.

    Examples
    --------
    >>> model_dtype(nn.Linear(2, 2).double())
    torch.float64
    >>> model_dtype(nn.ReLU())
    torch.float32
    """
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return default


def model_device(model: nn.Module, default: str | torch.device = "cpu") -> torch.device:
    """The device of ``model``'s first parameter (or buffer), else ``default``.

    Examples
    --------
    >>> model_device(nn.Linear(2, 2))
    device(type='cpu')
    """
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device(default)


@contextlib.contextmanager
def guard_model(model: nn.Module, *, eval: bool | None = None, grad: bool | None = None,
                buffers: bool = False) -> Iterator[nn.Module]:
    """Run a block on ``model`` and put its state back on exit or error.

    Restored: every submodule's ``training`` flag, every parameter's ``requires_grad``, and (with
    ``buffers=True``) every buffer's values (a forward in train mode updates BatchNorm statistics).
    Device and dtype are restored when the block moved the parameters. ``eval=True`` puts the model
    in eval mode inside the block (``False``: train mode); ``grad`` sets every ``requires_grad``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with guard_model(net, eval=True, grad=False):
    ...     net.training, net[0].weight.requires_grad
    (False, False)
    >>> net.training, net[0].weight.requires_grad
    (True, True)
    """
    if not isinstance(model, nn.Module):  # nothing to guard (the caller's checks refuse it elsewhere)
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    placement = (model_device(model), model_dtype(model))
    saved = ([(b, b.detach().clone()) for b in model.buffers()] if buffers else [])
    try:
        if eval is not None:
            model.train(not eval)
        if grad is not None:
            for p, _ in flags:
                if p.is_floating_point() or p.is_complex():
                    p.requires_grad_(grad)
        yield model
    finally:
        if (model_device(model), model_dtype(model)) != placement:
            model.to(device=placement[0], dtype=placement[1])
        for m, flag in modes:
            m.training = flag
        for p, flag in flags:
            if p.requires_grad != flag and (p.is_leaf or not flag):
                p.requires_grad_(flag)
        with torch.no_grad():
            for b, value in saved:
                if b.shape == value.shape:
                    b.copy_(value)
