"""Counting what a model costs: parameters (deduplicated), and (see below) MACs and memory."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from redundancy._validation import Bool, Module, Shape, _short, validate_params
import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__ = ["parameter_count", "count_macs", "memory_bytes"]


@validate_params({"model": Module(materialised=False), "trainable_only": Bool()})
def parameter_count(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters, each shared tensor counted once.

    .. math::  n = \\sum_{\\theta \\in \\mathrm{unique}(\\mathrm{params})} \\mathrm{numel}(\\theta)

    Parameters are deduplicated by identity (``model.parameters()`` already does this for tensors
    registered twice; tied weights shared across modules are counted once).

    Examples
    --------
    >>> from torch import nn
    >>> lin = nn.Linear(3, 3, bias=False)
    >>> parameter_count(nn.Sequential(lin, lin))
    9
    """
    from torch.nn.parameter import UninitializedParameter

    seen: set[int] = set()
    total = 0
    for name, p in model.named_parameters():
        if isinstance(p, UninitializedParameter):
            raise RedundancyError(f"model has an uninitialised (lazy) parameter '{name}' whose size is not known "
                                  "yet; run one forward pass on a real input first")
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return int(total)


# --------------------------------------------------------------------------- MACs and memory

class DenseChargedConv(nn.Module):
    """Base of a factorised conv module (``TuckerConv``, ``CPConv``) that rebuilds its dense kernel
    and is counted as one dense convolution (``in_channels``, ``out_channels``, ``kernel_size``,
    ``groups`` attributes): its MACs are those of the dense conv, not of the factors."""


_MAC_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                    nn.ConvTranspose3d, nn.Linear, DenseChargedConv)


def _mac_layer_types():
    return _MAC_LAYER_TYPES


def _attention_macs(mod: nn.MultiheadAttention, args, out) -> int:
    """MACs of one ``nn.MultiheadAttention`` call (what ``F.multi_head_attention_forward`` does):
    projections ``L·E·E`` (queries) + ``S·E·kdim`` + ``S·E·vdim`` (keys, values) + ``L·E·E`` (output),
    and the two products ``QKᵀ`` and ``AV``: ``2·L·S·E`` (all heads together)."""
    q = args[0]
    k = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else q
    batch_first = getattr(mod, "batch_first", False)
    if q.dim() == 2:
        n, L, S = 1, q.shape[0], k.shape[0]
    elif batch_first:
        n, L, S = q.shape[0], q.shape[1], k.shape[1]
    else:
        n, L, S = q.shape[1], q.shape[0], k.shape[0]
    E = mod.embed_dim
    return int(n * (L * E * E + S * E * mod.kdim + S * E * mod.vdim + L * E * E + 2 * L * S * E))


def _layer_macs(module: nn.Module, inp, out) -> int:
    """MACs of one call: one multiply-add per weight tap that reaches an output element."""
    if isinstance(module, nn.Linear):
        return int(out.numel() * module.in_features)
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        # each input element meets (out_channels / groups) * prod(kernel) weights
        w = module.weight
        return int(inp.numel() * w.shape[1] * math.prod(w.shape[2:]))
    # convolutions (ordinary and factorised): out elements x (in_channels / groups) x prod(kernel)
    groups = getattr(module, "groups", 1)
    return int(out.numel() * (module.in_channels // groups) * math.prod(module.kernel_size))


@validate_params({"model": Module(materialised=False), "input_shape": Shape(1, 6)})
def count_macs(model: nn.Module, input_shape) -> dict[str, int]:
    """Multiply-accumulates of every conv, linear and attention layer for one input of shape ``input_shape``.

    For a convolution with output ``y`` (shape ``(K, *out_spatial)``), ``groups`` g and kernel
    ``k``:

    .. math::  \\mathrm{MACs} = \\mathrm{numel}(y)\\,\\frac{C_\\mathrm{in}}{g}\\prod_i k_i,

    for ``nn.Linear``: ``numel(y) * in_features``; for ``nn.MultiheadAttention`` (queries ``L``, keys
    ``S``, width ``E``) the four projections and the two products ``QKᵀ``, ``AV``:
    ``L·E² + S·E·kdim + S·E·vdim + L·E² + 2·L·S·E`` (the fused attention kernels are not seen by
    ``FlopCounterMode``; the fused encoder fast path is switched off for the count). A layer called several times is summed over its
    calls. Counting rules (the same as ``torch.utils.flop_counter.FlopCounterMode`` divided by 2 for
    conv and linear layers): bias additions, BatchNorm, activations, pooling and residual additions
    are not counted; a factorised conv (:class:`~redundancy.linear.layers.TuckerConvLayer`,
    :class:`~redundancy.linear.layers.CPConvLayer`) is charged for its dense convolution only, not for
    rebuilding its kernel. The batch dimension is 1 (one forward pass on zeros, or on a meta tensor
    for a model on the meta device). Layers applied through ``torch.nn.functional`` rather than a
    module are not seen. The caller's model is left as it was: every submodule's training flag, and
    its parameters and buffers, are restored after the pass (:func:`preserved_state`). Lazy
    (uninitialised) modules are refused; ``input_shape`` is bounded (at most
    ``redundancy._validation.MAX_NUMEL`` elements) before anything is allocated.

    Returns
    -------
    dict[str, int]
        Qualified module name -> MACs, in order of first call.

    Examples
    --------
    >>> from torch import nn
    >>> count_macs(nn.Conv2d(3, 8, 3, padding=1), (3, 5, 5))
    {'': 5400}
    """
    import torch


    from redundancy._validation import check_materialised

    shape = input_shape
    if not any(t.is_meta for t in model.parameters()):
        check_materialised("model", model)
    types = (*_mac_layer_types(), nn.MultiheadAttention)
    names = {}
    for name, mod in model.named_modules():
        if isinstance(mod, types):
            names.setdefault(id(mod), name)
    macs: dict[str, int] = {}
    handles = []

    def hook(mod, args, out):
        name = names[id(mod)]
        n = _attention_macs(mod, args, out) if isinstance(mod, nn.MultiheadAttention) else _layer_macs(mod, args[0], out)
        macs[name] = macs.get(name, 0) + n

    seen = set()
    for mod in model.modules():
        if isinstance(mod, types) and id(mod) not in seen:
            seen.add(id(mod))
            handles.append(mod.register_forward_hook(hook))
    try:
        x = torch.zeros((1, *shape), dtype=_v.model_dtype(model), device=_v.model_device(model))
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder path would skip the attention module
        with torch.no_grad(), preserved_state(model), eval_mode(model):
            _forward(model, x, shape)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        for h in handles:
            h.remove()
    return macs


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put every submodule in eval mode for the block and restore each one's own flag after.

    A probing forward pass must not update BatchNorm running statistics or draw dropout masks.
    """
    with _v.guard_model(model, eval=True):
        yield model


@contextlib.contextmanager
def preserved_state(model: nn.Module):
    """Run a block that calls ``model`` and put its parameters and buffers back afterwards.

    A probing forward pass (MAC counting, tracing, latency) must not change the caller's model,
    even when its ``forward`` updates a buffer (a call counter, running statistics of a custom
    layer). Values are snapshotted (``state_dict`` clones) and copied back in place.
    """
    import torch

    snap = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()
            if isinstance(v, torch.Tensor) and not v.is_meta
            and not isinstance(v, nn.parameter.UninitializedTensorMixin)}
    try:
        yield model
    finally:
        current = model.state_dict(keep_vars=True)
        with torch.no_grad():
            for k, v in snap.items():
                t = current.get(k)
                if isinstance(t, torch.Tensor) and t.shape == v.shape and t.dtype == v.dtype:
                    t.copy_(v)


def _forward(model: nn.Module, x, shape, *, who: str = "the model", width: int = 200,
             hint: str = "; give the per-sample shape without the batch dimension, e.g. (3, 32, 32)"):
    """Run ``model(x)``, turning any error of the forward into one RedundancyError naming ``who``, the
    shape and the first ``width`` characters of the error, followed by ``hint``."""
    try:
        return model(x)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller's forward may raise anything
        first = _v._first_line(exc)[:width]
        raise RedundancyError(f"{who} cannot run on input_shape={shape!r} ({type(exc).__name__}: {first}){hint}"
                              ) from None


@validate_params({"model": Module(materialised=False), "include_buffers": Bool()})
def memory_bytes(model: nn.Module, *, dtype="float32", include_buffers: bool = False) -> int:
    """Bytes needed to store the model's unique parameters (and buffers) at ``dtype``.

    .. math::  \\mathrm{bytes} = n_\\mathrm{params}\\cdot\\mathrm{itemsize}(\\mathrm{dtype})
       \\;[+\\; n_\\mathrm{buffers}\\cdot\\mathrm{itemsize}]

    ``dtype`` is a torch dtype or its name (``"float32"``, ``"float16"``, ``"bfloat16"``,
    ``"int8"``, ...); integer buffers (e.g. BatchNorm's batch counter) are counted at their own
    size. Shared tensors are counted once.

    Examples
    --------
    >>> from torch import nn
    >>> memory_bytes(nn.Linear(10, 10), dtype="float16")
    220
    """
    item = dtype_itemsize(dtype)
    total = parameter_count(model) * item
    if include_buffers:
        seen: set[int] = set()
        for b in model.buffers():
            if id(b) in seen:
                continue
            seen.add(id(b))
            total += b.numel() * (item if b.is_floating_point() else b.element_size())
    return int(total)


def dtype_itemsize(dtype) -> int:
    """Bytes per element of a torch dtype given as a dtype or a name such as ``"float16"``."""
    import torch

    if isinstance(dtype, str):
        d = getattr(torch, dtype, None)
        if not isinstance(d, torch.dtype):
            raise RedundancyError(
                f"dtype={dtype[:40]!r} is not a torch dtype name; use e.g. 'float32', 'float16', 'bfloat16', 'int8'")
        dtype = d
    if not isinstance(dtype, torch.dtype):
        raise RedundancyError(f"dtype={_short(dtype)} is not allowed; give a torch.dtype or its name")
    return int(torch.empty((), dtype=dtype).element_size())
