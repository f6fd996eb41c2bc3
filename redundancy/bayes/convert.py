r"""Turn an ``nn.Sequential`` MLP or plain CNN (or a list of widths) into a spike-and-slab network.

What converts: a (possibly nested) :class:`torch.nn.Sequential` whose leaves are

* weight layers ``Linear``, ``Conv1d``, ``Conv2d``, ``Conv3d`` (``groups=1``, zero padding): each
  becomes a :class:`~redundancy.bayes.layers.SpikeSlabLayer`; every one but the last has node
  indicators (the last layer's outputs are the classes or targets and are always kept, its weights
  are Gaussian with the slab prior); the first may carry input-feature indicators;
* activations with ``f(0) = 0`` (ReLU, ReLU6, LeakyReLU, ELU, GELU, SiLU, Tanh, Hardtanh,
  Softsign, Identity), pooling (Max/Avg/AdaptiveMax/AdaptiveAvg 1-3d), ``Flatten`` (default dims)
  and Dropout: copied unchanged.

What does not, refused with a :class:`~redundancy.errors.UnsupportedLayerError`: BatchNorm and
other normalisations (a dropped channel's normalised output is the constant ``β − γ m/√(v+ε)``,
not 0, so a spike at 0 in the weights does not remove the node), activations with ``f(0) ≠ 0``
(Sigmoid, Softplus), grouped or depthwise convs, residual or branching models (anything that is
not a ``Sequential``), attention, recurrent layers, and any other module.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

import redundancy._validation as _v
from redundancy.bayes.layers import (MODES, SpikeSlabConv1d, SpikeSlabConv2d, SpikeSlabConv3d, SpikeSlabLayer,
                                     SpikeSlabLinear)
from redundancy.errors import RedundancyError, UnsupportedLayerError

__all__ = ["SpikeSlabNet", "to_spike_slab"]

WEIGHT_TYPES = {nn.Linear: SpikeSlabLinear, nn.Conv1d: SpikeSlabConv1d, nn.Conv2d: SpikeSlabConv2d,
                nn.Conv3d: SpikeSlabConv3d}
PASS_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardtanh, nn.Softsign,
              nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
              nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
              nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
              nn.Dropout3d)


def _flat_leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of the leaves of a nested ``Sequential``, in forward order.

    Raises :class:`UnsupportedLayerError` for anything that is not a ``Sequential`` of supported
    leaves (see the module docstring).
    """
    if not isinstance(model, nn.Sequential):
        raise UnsupportedLayerError(
            f"model{'.' + prefix if prefix else ''} is a {type(model).__name__}; only an nn.Sequential MLP or "
            "plain CNN (Linear/Conv, activations with f(0)=0, pooling, Flatten, Dropout) can be converted")
    out = []
    for name, child in model.named_children():
        q = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            out += _flat_leaves(child, q)
        elif type(child) in WEIGHT_TYPES:
            out.append((q, child))
        elif isinstance(child, nn.Flatten):
            if child.start_dim != 1 or child.end_dim != -1:
                raise UnsupportedLayerError(f"{q} is Flatten(start_dim={child.start_dim}, end_dim={child.end_dim}); "
                                            "only Flatten(1, -1) is supported")
            out.append((q, child))
        elif isinstance(child, PASS_TYPES):
            out.append((q, child))
        else:
            why = (" (a dropped channel's normalised output is a nonzero constant, so it cannot be pruned "
                   "as a node; fold it into the conv first)" if "Norm" in type(child).__name__ else
                   " (f(0) != 0 or not elementwise/pooling)")
            raise UnsupportedLayerError(f"layer {q} ({type(child).__name__}) cannot be converted{why}")
    return out


class SpikeSlabNet(nn.Module):
    """A converted network: its layers in forward order plus the temperature schedule.

    Attributes
    ----------
    body : nn.Sequential
        The flat sequence of spike-and-slab layers and copied pass-through modules.
    names : list of str
        Qualified name (in the caller's model) of each module of ``body``.
    input_shape : tuple of int
        One example's shape.
    step : buffer
        Training steps taken (saved in checkpoints, so the annealing resumes where it stopped).
    """

    def __init__(self, body: list[nn.Module], names: list[str], input_shape: tuple[int, ...], *,
                 temperature: tuple[float, float] = (1.0, 0.1), total_steps: int = 1):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.names = list(names)
        self.input_shape = tuple(input_shape)
        self.temperature_range = (float(temperature[0]), float(temperature[1]))
        self.total_steps = max(1, int(total_steps))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.set_mode("relaxed")

    @property
    def temperature(self) -> float:
        r"""``τ_t = τ_0 (τ_1/τ_0)^{min(t/T, 1)}``: geometric annealing from ``τ_0`` to ``τ_1`` over ``T`` steps."""
        t0, t1 = self.temperature_range
        frac = min(float(self.step) / self.total_steps, 1.0)
        return t0 * (t1 / t0) ** frac

    def weight_layers(self) -> list[tuple[str, SpikeSlabLayer]]:
        return [(n, m) for n, m in zip(self.names, self.body) if isinstance(m, SpikeSlabLayer)]

    def set_mode(self, mode: str) -> "SpikeSlabNet":
        if mode not in MODES:
            raise RedundancyError(f"mode={mode!r} is not allowed; choose one of {list(MODES)}")
        for m in self.body:
            if isinstance(m, SpikeSlabLayer):
                m.mode = mode
        self.mode = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "relaxed":
            tau = self.temperature
            for _, m in self.weight_layers():
                m.temperature = tau
        return self.body(x)

    def kl(self) -> torch.Tensor:
        """Sum of the layers' closed-form KL terms."""
        return sum(m.kl() for _, m in self.weight_layers())


_PROB = _v.Float(0.0, 1.0, lo_open=True, hi_open=True)


@_v.validate_params({"model": _v.Module(finite=True), "input_shape": _v.Shape(1), "prior_inclusion": _PROB,
                     "slab_scale": _v.Float(0.0, None, lo_open=True), "select_features": _v.Bool(),
                     "init_inclusion": _PROB, "init_scale": _v.Float(0.0, 1e6, lo_open=True),
                     "temperature": _v.Items(_v.Float(1e-6, 1e6), min_len=2, max_len=2),
                     "total_steps": _v.Int(1, 10 ** 15)})
def to_spike_slab(model: nn.Module, input_shape: Sequence[int], *, prior_inclusion: float = 0.5,
                  slab_scale: float = 1.0, select_features: bool = False, init_inclusion: float = 0.9,
                  init_scale: float = 1e-3, temperature: tuple[float, float] = (1.0, 0.1),
                  total_steps: int = 1) -> SpikeSlabNet:
    """A :class:`SpikeSlabNet` whose posterior means start at ``model``'s weights (``model`` is not changed).

    ``prior_inclusion`` and ``init_inclusion`` lie in (0, 1), ``slab_scale`` is positive,
    ``init_scale`` in (0, 1e6] (and representable in the model's dtype), ``temperature`` is ``(start, end)`` in [1e-6, 1e6], ``total_steps`` >= 1; the model's
    weights must be finite.

    Examples
    --------
    >>> from redundancy.zoo import mlp
    >>> net = to_spike_slab(mlp((5,), (4,), 2), (5,), select_features=True)
    >>> [(n, type(m).__name__) for n, m in net.weight_layers()]
    [('1', 'SpikeSlabLinear'), ('3', 'SpikeSlabLinear')]
    """
    leaves = _flat_leaves(model)
    weight_idx = [i for i, (_, m) in enumerate(leaves) if type(m) in WEIGHT_TYPES]
    if not weight_idx:
        raise UnsupportedLayerError("the model has no Linear or Conv layer to put a spike-and-slab prior on")
    dtype = leaves[weight_idx[0]][1].weight.dtype
    if dtype.is_floating_point and init_scale + 1.0 > torch.finfo(dtype).max:  # ρ = softplus⁻¹(σ) ≈ σ here
        raise RedundancyError(f"init_scale={init_scale!r} overflows the model's dtype {dtype} "
                              f"(largest {torch.finfo(dtype).max:.4g}); give a smaller init_scale")
    body, names = [], []
    kw = dict(prior_inclusion=prior_inclusion, slab_scale=slab_scale, init_inclusion=init_inclusion,
              init_scale=init_scale)
    for i, (name, m) in enumerate(leaves):
        if i in weight_idx:
            m = WEIGHT_TYPES[type(m)].from_module(m, gate_nodes=i != weight_idx[-1],
                                                  gate_inputs=select_features and i == weight_idx[0], **kw)
        else:
            m = copy.deepcopy(m)
        body.append(m)
        names.append(name)
    net = SpikeSlabNet(body, names, tuple(input_shape), temperature=temperature, total_steps=total_steps)
    dtype = _v.model_dtype(model)
    net.to(dtype=dtype)
    try:
        with torch.no_grad():
            net.set_mode("median")(torch.zeros((1, *input_shape), dtype=dtype, device=_v.model_device(model)))
    except Exception as exc:  # noqa: BLE001 - the converted forward may raise anything on a wrong shape
        raise RedundancyError(f"the model does not accept inputs of shape {tuple(input_shape)} "
                              f"({type(exc).__name__}: {_v._first_line(exc)[:200]})") from None
    return net.set_mode("relaxed")
