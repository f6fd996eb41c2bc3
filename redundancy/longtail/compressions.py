"""Compressed copies of a model to compare for long-tail risk (the original is never modified).

* :func:`low_rank`: Tucker-2 of every convolution at a fraction of its channel ranks
  (:func:`redundancy.lowrank.compression.compress`), ``R = max(1, round(fraction * size))``.
* :func:`magnitude_prune`: global L1 (magnitude) unstructured pruning of the conv and linear
  weights with ``torch.nn.utils.prune.global_unstructured``; the masks are made permanent.
* :func:`quantize_dynamic_int8`: ``torch.ao.quantization.quantize_dynamic`` of the Linear layers
  (int8 weights, activations quantized on the fly).
* :func:`quantize_static_int8`: post-training static int8 quantization of convs and linears with
  FX graph mode (``prepare_fx`` / calibration on ``calibration_X`` / ``convert_fx``; CPU only).
* :func:`compression_suite`: all of them at a few levels, as a ``{name: model}`` dict for
  :func:`redundancy.longtail.mismatch_report`. CAR pruning, RENE and any other model plug in the same way.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_finite_module
from redundancy.errors import RedundancyError

__all__: list[str] = []

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAX_LEVELS = 32


def _fraction(name, value, *, closed=False):
    ok = isinstance(value, float) and (0 < value < 1 or (closed and value == 1.0))
    if not ok:
        raise RedundancyError(f"{name}={value!r} is not allowed; it must be a float in (0, 1{']' if closed else ')'}")
    return value


def _rank_fraction(name, value):
    return _fraction(name, value, closed=True)


@_v.validate_params({"model": _v.Module(), "fraction": _v.Check(_rank_fraction), "seed": _v.Seed()})
def low_rank(model: nn.Module, fraction: float, *, seed: int = 0) -> nn.Module:
    """Tucker-2 compression of every (non-depthwise) conv at ``fraction`` of its output/input ranks.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv1d(4, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3))
    >>> small = low_rank(net, 0.5)
    >>> sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters())
    True
    """
    return _low_rank(model, fraction, seed)


def _low_rank(model: nn.Module, fraction: float, seed: int) -> nn.Module:
    from redundancy.lowrank.compression import compress

    def ranks(name, layer):
        g = layer.groups
        return (max(1, round(fraction * layer.out_channels / g)), max(1, round(fraction * layer.in_channels / g)))

    return compress(model, ranks, method="tucker", seed=seed).model.eval()


@_v.validate_params({"model": _v.Module(), "amount": _v.Check(_fraction)})
def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """Zero the ``amount`` fraction of smallest-magnitude conv/linear weights, globally.

    Examples
    --------
    >>> from torch import nn
    >>> pruned = magnitude_prune(nn.Linear(10, 10), 0.7)
    >>> weight_sparsity(pruned)
    0.7
    """
    return _magnitude_prune(model, amount)


def _magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """Unstructured: single weights are zeroed, no channel is removed (channel removal is
    :func:`redundancy.channels.prune_units`)."""
    from torch.nn.utils import prune

    new = copy.deepcopy(model)
    targets = [(m, "weight") for m in new.modules() if isinstance(m, (*_CONVS, nn.Linear))]
    if not targets:
        raise RedundancyError("the model has no Conv or Linear weights to prune")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in targets:
        prune.remove(m, name)
    return new.eval()


@_v.validate_params({"model": _v.Module()})
def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero conv/linear weights (0.0 for a model without any).

    .. math::  \\text{sparsity} = \\#\\{w = 0\\} / \\#\\{w\\}

    over the ``weight`` of every ``Conv1d/2d/3d`` and ``Linear`` (a NaN weight is not zero).

    Examples
    --------
    >>> from torch import nn
    >>> lin = nn.Linear(4, 2); _ = nn.init.zeros_(lin.weight)
    >>> weight_sparsity(nn.Sequential(lin, nn.ReLU()))
    1.0
    """
    ws = [m.weight for m in model.modules() if isinstance(m, (*_CONVS, nn.Linear))
          and isinstance(getattr(m, "weight", None), torch.Tensor)]
    total = sum(w.numel() for w in ws)
    return float(sum(int((w.detach() == 0).sum()) for w in ws) / total) if total else 0.0


@_v.validate_params({"model": _v.Module(finite=True)})
def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """int8 dynamic quantization of the Linear layers (``torch.ao.quantization.quantize_dynamic``)."""
    return _quantize_dynamic_int8(model)


def _quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def quantize_static_int8(model: nn.Module, calibration_X, *, backend: str = "x86") -> nn.Module:
    """Post-training static int8 quantization (FX graph mode), calibrated on ``calibration_X`` (CPU).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 3)).eval()
    >>> X = torch.randn(32, 1, 8)
    >>> q = quantize_static_int8(net, X)
    >>> float((q(X) - net(X)).abs().max().detach()) < 0.2
    True
    """
    check_finite_module("model", model)
    Xa = _v.check_array("calibration_X", calibration_X, min_ndim=2)
    if np.abs(Xa).max() > np.finfo(np.float32).max:
        raise RedundancyError("calibration_X holds values beyond the float32 range (3.4e38); the quantized model "
                              "runs in float32")
    X = torch.as_tensor(Xa, dtype=torch.float32)
    _v.check_choice("backend", backend, tuple(torch.backends.quantized.supported_engines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        prev = torch.backends.quantized.engine
        torch.backends.quantized.engine = backend
        try:
            prepared = prepare_fx(copy.deepcopy(model).cpu().eval(), get_default_qconfig_mapping(backend),
                                  example_inputs=(X[:1],))
            with torch.no_grad():
                for a in range(0, len(X), 256):
                    prepared(X[a:a + 256])
            return convert_fx(prepared)
        except RedundancyError:
            raise
        except Exception as exc:  # noqa: BLE001 - FX tracing and the model's forward may raise anything
            raise RedundancyError(f"static int8 quantization failed on this model and calibration_X of shape "
                                  f"{tuple(X.shape)} ({type(exc).__name__}: {_v._short(_v._first_line(exc), 200)})"
                                  ) from None
        finally:
            torch.backends.quantized.engine = prev


@_v.validate_params({"model": _v.Module(),
                     "ranks": _v.Items(_v.Float(0.0, 1.0, lo_open=True), max_len=_MAX_LEVELS),
                     "amounts": _v.Items(_v.Float(0.0, 1.0, lo_open=True, hi_open=True), max_len=_MAX_LEVELS),
                     "seed": _v.Seed()})
def compression_suite(model: nn.Module, calibration_X=None, *, ranks=(0.5, 0.25, 0.125),
                      amounts=(0.5, 0.8, 0.9), seed: int = 0) -> dict[str, nn.Module]:
    """``{name: compressed copy}``: low-rank and magnitude pruning at each level, int8 dynamic and,
    with ``calibration_X``, int8 static (``model`` is not changed).

    Parameters
    ----------
    model : torch.nn.Module
    calibration_X : array (n, *input_shape), optional
        Calibration batch of the static int8 model (left out without it).
    ranks : sequence of float
        Up to 32 rank fractions in (0, 1] of :func:`low_rank` (keys ``lowrank_<f>``).
    amounts : sequence of float
        Up to 32 pruned fractions in (0, 1) of :func:`magnitude_prune` (keys ``prune_<a>``).
    seed : int
        Seed of the low-rank decompositions.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    >>> sorted(compression_suite(net, ranks=(0.5,), amounts=(0.5,)))
    ['int8_dynamic', 'lowrank_0.5', 'prune_0.5']
    """
    out = {f"lowrank_{f:g}": _low_rank(model, float(f), seed) for f in ranks}
    out.update({f"prune_{a:g}": _magnitude_prune(model, float(a)) for a in amounts})
    out["int8_dynamic"] = quantize_dynamic_int8(model)
    if calibration_X is not None:
        out["int8_static"] = quantize_static_int8(model, calibration_X)
    return out
