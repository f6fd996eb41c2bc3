"""Compress a model's conv (and linear) layers into chains of ordinary torch layers.

A decomposition of a trained kernel ``K`` (torch layout ``(K_out, C, *k)``) is realised *exactly*
by a chain of plain convolutions:

* **Tucker-2** ``K = G ×_0 U_out ×_1 U_in``: 1×1 conv ``C → R_in`` (weight ``U_inᵀ``), spatial conv
  ``R_in → R_out`` with the core ``G`` and the layer's stride, padding, dilation and padding mode,
  1×1 conv ``R_out → K_out`` (weight ``U_out``) carrying the bias.
* **CP** ``K = Σ_r w_r a_r ∘ b_r ∘ s^{(1)}_r ∘ ...``: 1×1 conv ``C → R`` (``b_r``), depthwise conv
  ``R → R`` (groups ``R``, kernel ``w_r ∘_i s^{(i)}_r``), 1×1 conv ``R → K_out`` (``a_r``) with the bias.

The chains are built by :mod:`redundancy.lowrank.chains`; they are exact because a 1×1 conv acts on each
pixel alone. Grouped convs are decomposed block by block (the ranks apply to each group's block
``(K/g, C/g, *k)``) and realised by grouped chains; depthwise convs with one filter per channel
(nothing to compress) and transposed convs are skipped with the reason recorded. Nothing is
reshaped silently.

References
----------
Kim et al., "Compression of deep convolutional neural networks for fast and low power mobile
applications", ICLR 2016 (Tucker-2). Lebedev et al., "Speeding-up convolutional neural networks
using fine-tuned CP-decomposition", ICLR 2015 (CP).
"""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any

import numpy as np
from torch import nn

import redundancy._validation as _v
from redundancy._validation import as_generator, check_finite_module, check_choice, check_module, check_ranks
from redundancy.counts import parameter_count
from redundancy.lowrank.chains import CompressedLayer, cp_layer, tucker2_layer
from redundancy.lowrank.decompose import cp_decompose, cp_rank_bound, layer_kernel, tucker_decompose
from redundancy.errors import RankError, RedundancyError, UnsupportedLayerError


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _is_conv(layer):
    return isinstance(layer, _CONVS)


@_v.result()
class LayerCompression(_v.Result):
    """One replaced layer: its name, kernel shape, ranks, relative kernel error and parameter counts."""

    name: str
    layer_type: str
    kernel_shape: tuple[int, ...]
    method: str
    ranks: tuple[int, ...]
    rel_error: float
    params_before: int
    params_after: int
    decomposition: Any = field(default=None, repr=False, metadata=_v.NOT_EXPORTED)


@_v.result()
class SkippedLayer(_v.Result):
    """A layer left as it was, with the reason."""

    name: str
    layer_type: str
    reason: str


@_v.result()
class CompressionResult(_v.Result):
    """Result of :func:`compress`: the new model, one row per replaced layer, the skipped layers.

    Attributes
    ----------
    model : torch.nn.Module
        A deep copy of the input model with the chosen layers replaced by :class:`CompressedLayer`.
    method : {"tucker", "cp"}
    layers : tuple of LayerCompression
    skipped : tuple of SkippedLayer
    params_before, params_after : int
        Parameter counts (deduplicated) of the whole original and compressed model.
    seed : int or None
    n_larger_skipped : int
        Layers left as they were because their chain would have more parameters than the layer
        (``allow_larger=False``, the default); each is in ``skipped`` with the counts.
    """

    model: nn.Module = field(repr=False, metadata=_v.NOT_EXPORTED)
    method: str
    layers: tuple[LayerCompression, ...]
    skipped: tuple[SkippedLayer, ...]
    params_before: int
    params_after: int
    seed: Any = None
    n_larger_skipped: int = 0

    @property
    def ranks(self) -> dict[str, tuple[int, ...]]:
        return {row.name: row.ranks for row in self.layers}

    @property
    def errors(self) -> dict[str, float]:
        """Relative kernel reconstruction error ``||K - K̂||_F / ||K||_F`` per replaced layer."""
        return {row.name: row.rel_error for row in self.layers}

    @property
    def parameter_ratio(self) -> float:
        """``params_after / params_before``."""
        return self.params_after / self.params_before if self.params_before else float("nan")

    def to_pandas(self):
        """One row per layer considered (replaced or skipped); ``reason`` is empty for replaced ones."""
        import pandas as pd

        rows = [{**r.to_dict(), "reason": ""} for r in self.layers]
        rows += [{**s.to_dict(), "method": None, "ranks": None, "rel_error": None} for s in self.skipped]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        worst = max(self.errors.values(), default=float("nan"))
        larger = f" ({self.n_larger_skipped} because the chain would be larger)" if self.n_larger_skipped else ""
        return (f"CompressionResult(method={self.method!r}, replaced={len(self.layers)}, skipped={len(self.skipped)}"
                f"{larger}, params {self.params_before} -> {self.params_after} ({self.parameter_ratio:.3f}), "
                f"max rel_error={worst:.3g})")


def _skip_reason(layer: nn.Module) -> str | None:
    if _is_conv(layer) and layer.groups == layer.in_channels == layer.out_channels and layer.groups > 1:
        return (f"depthwise conv (groups={layer.groups}, one filter per channel): each group's kernel "
                f"{(1, 1, *layer.kernel_size)} has nothing to compress")
    return None


def _blocks(layer: nn.Module, kernel: np.ndarray) -> list[np.ndarray]:
    """The diagonal blocks ``(K/g, C/g, *k)`` of a grouped conv's kernel (one block if ``groups=1``)."""
    g = getattr(layer, "groups", 1)
    return list(np.split(kernel, g, axis=0))


def _layer_ranks(name, layer, kernel, spec, method):
    """Validate one layer's rank spec against one block's shape; returns (R_out, R_in) or (R,)."""
    g = getattr(layer, "groups", 1)
    if g > 1:
        kernel = kernel[: kernel.shape[0] // g]
    block = f" (one block of groups={g})" if g > 1 else ""
    where = f" for layer {name!r} with kernel shape {kernel.shape}{block}"
    if method == "cp":
        bound = cp_rank_bound(kernel.shape)
        if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)) or not 1 <= spec <= bound:
            raise RankError(f"ranks={spec!r} is not allowed{where}; CP needs one integer rank in [1, {bound}]")
        return (int(spec),)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        raise RankError(f"ranks={spec!r} is a single integer{where}; Tucker-2 needs a pair (R_out, R_in)")
    return check_ranks("ranks", spec, kernel.shape[:2], context=where,
                       labels=(f"the output channels ({kernel.shape[0]})", f"the input channels ({kernel.shape[1]})"))


def _seed(name, value):
    as_generator(value)  # refuses what is not a seed
    return value


@_v.validate_params({"model": _v.Module(finite=True), "method": _v.Choice("tucker", "cp"),
                     "algorithm": _v.Choice("hooi", "hosvd"), "seed": _v.Check(_seed), "allow_larger": _v.Bool()})
def compress(model: nn.Module, ranks: Any, *, method: str = "tucker", layers: Any = None, seed: Any = 0,
             algorithm: str = "hooi", allow_larger: bool = False, **decompose_kwargs) -> CompressionResult:
    """Replace conv (and, when named, linear) layers of a copy of ``model`` by decomposed chains.

    Each selected layer's kernel ``K`` is decomposed (Tucker-2 of the channel modes by HOOI, or
    CP by ALS) and replaced by the chain of :func:`tucker2_layer` / :func:`cp_layer`, whose forward
    pass equals a conv with the reconstructed kernel ``K̂``. The original model is not modified.

    Parameters
    ----------
    model : torch.nn.Module
    ranks : int, tuple, dict or callable
        Tucker: a pair ``(R_out, R_in)``; CP: an int. Either one spec for every selected layer, a
        dict ``{layer name: spec}`` (with ``layers=None`` the dict's keys are the layers), or a
        callable ``ranks(name, layer) -> spec`` (e.g. a rule of :mod:`redundancy.lowrank.ranks`).
    method : {"tucker", "cp"}
    layers : sequence of str, optional
        Names (as in ``model.named_modules()``) of the layers to compress. Default: every
        ``Conv1d/2d/3d``; grouped convs are compressed block by block (``ranks`` per group),
        depthwise convs with one filter per channel are skipped with the reason recorded.
        ``Linear`` layers are compressed only when named here.
    seed : int or numpy.random.Generator
        Seed for the decompositions.
    algorithm : {"hooi", "hosvd"}
        Tucker algorithm (ignored by CP).
    allow_larger : bool
        Replace a layer even when its chain has more parameters than the layer (a 1×1 or
        depthwise-heavy layer at high ranks). Default False: such a layer is left as it was, listed
        in ``skipped`` with both counts, and counted in ``n_larger_skipped``; the model never grows.
    **decompose_kwargs
        Passed to :func:`~redundancy.lowrank.decompose.tucker_decompose` / ``cp_decompose``.

    Returns
    -------
    CompressionResult

    Raises
    ------
    RankError
        Ranks of the wrong form or outside ``[1, mode size]``, or a dict without a selected layer.
    UnsupportedLayerError
        A named layer that is not a conv or linear layer.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3))
    >>> res = compress(net, ranks=(4, 3))
    >>> res.ranks
    {'0': (4, 3), '2': (4, 3)}
    >>> res.params_after < res.params_before
    True
    """
    _check_options(method, decompose_kwargs)
    new = copy.deepcopy(model)
    modules = dict(new.named_modules())
    if isinstance(ranks, dict):
        extra = [n for n in ranks if n not in modules]
        if extra:
            raise RankError(f"ranks names layers {extra} that are not submodules of the model")
        if layers is None:
            layers = list(ranks)
    names, skipped = _layer_names(modules, layers)
    if isinstance(ranks, dict):
        missing = [n for n in names if n not in ranks]
        if missing:
            raise RankError(f"ranks is a dict without an entry for layers {missing}")
    params_before = parameter_count(model)
    aliases: dict[int, list[str]] = {}  # a module registered under several names is replaced everywhere
    for n, m in new.named_modules(remove_duplicate=False):
        aliases.setdefault(id(m), []).append(n)
    rows: list[LayerCompression] = []
    n_larger = 0
    for name in names:
        layer = modules[name]
        reason = _skip_reason(layer)
        if reason is not None:
            skipped.append(SkippedLayer(name=name, layer_type=type(layer).__name__, reason=reason))
            continue
        spec = ranks[name] if isinstance(ranks, dict) else ranks(name, layer) if callable(ranks) else ranks
        row, chain = _compress_layer(name, layer, spec, method, seed, algorithm, decompose_kwargs)
        if row.params_after > row.params_before and not allow_larger:
            skipped.append(SkippedLayer(name=name, layer_type=type(layer).__name__, reason=(
                f"the {method} chain at ranks {row.ranks} would have {row.params_after} parameters, more than the "
                f"layer's {row.params_before}; pass allow_larger=True to replace it anyway")))
            n_larger += 1
            continue
        new = _swap(new, name, aliases[id(layer)], chain)
        rows.append(row)
    return CompressionResult(model=new, method=method, layers=tuple(rows), skipped=tuple(skipped),
                             params_before=params_before, params_after=parameter_count(new),
                             seed=seed if isinstance(seed, int) else None, n_larger_skipped=n_larger)


def _check_options(method, decompose_kwargs):
    allowed = ("n_iter_max", "tol") if method == "tucker" else ("n_iter_max", "tol", "n_restarts", "init")
    extra = sorted(set(decompose_kwargs) - set(allowed))
    if extra:  # refused before any work, not deep inside the first decomposition
        raise RedundancyError(f"compress() got unknown option(s) {extra} for method={method!r}; allowed: {list(allowed)}")


def _layer_names(modules, layers):
    """The names of the layers to compress, and the layers skipped on the way (default selection)."""
    skipped: list[SkippedLayer] = []
    if layers is None:
        inside_chain = {n for n, m in modules.items() if isinstance(m, CompressedLayer)}
        names = []
        for n, m in modules.items():
            if any(n.startswith(c + ".") for c in inside_chain):
                continue
            if _is_conv(m):
                names.append(n)
            elif isinstance(m, nn.modules.conv._ConvTransposeNd):
                skipped.append(SkippedLayer(name=n, layer_type=type(m).__name__,
                                            reason="transposed convolution: not supported"))
        return names, skipped
    if isinstance(layers, str) or not hasattr(layers, "__iter__"):
        raise RedundancyError(f"layers={layers!r} must be a sequence of layer names")
    names = list(layers)
    for n in names:
        if n not in modules:
            avail = [k for k, m in modules.items() if _is_conv(m) or isinstance(m, nn.Linear)]
            raise RedundancyError(f"layers contains {n!r}, which is not a submodule of the model; "
                                  f"conv and linear layers: {avail}")
        if not (_is_conv(modules[n]) or isinstance(modules[n], nn.Linear)):
            raise UnsupportedLayerError(
                f"layer {n!r} is a {type(modules[n]).__name__}; compress supports Conv1d, Conv2d, Conv3d and Linear")
    return names, skipped


def _compress_layer(name, layer, spec, method, seed, algorithm, decompose_kwargs):
    """One layer's chain (block by block for a grouped conv) and its :class:`LayerCompression` row."""
    kernel = layer_kernel(layer)
    r = _layer_ranks(name, layer, kernel, spec, method)
    blocks = _blocks(layer, kernel)
    if method == "tucker":
        decs = [tucker_decompose(b, r, modes=(0, 1), seed=seed, method=algorithm, **decompose_kwargs)
                for b in blocks]
        chain = tucker2_layer(layer, decs)
    else:
        decs = [cp_decompose(b, r[0], seed=seed, **decompose_kwargs) for b in blocks]
        chain = cp_layer(layer, decs)
    sq = sum((d.rel_error * np.linalg.norm(b)) ** 2 for d, b in zip(decs, blocks))
    rel_error = float(np.sqrt(sq) / (np.linalg.norm(kernel) or 1.0))
    dec = decs[0] if len(decs) == 1 else tuple(decs)
    row = LayerCompression(name=name, layer_type=type(layer).__name__, kernel_shape=kernel.shape, method=method,
                           ranks=r, rel_error=rel_error, params_before=parameter_count(layer),
                           params_after=parameter_count(chain), decomposition=dec)
    return row, chain


def _swap(model, name, aliases, chain):
    """``model`` with the layer at every name in ``aliases`` replaced by ``chain`` (``chain`` itself
    when the model is the layer)."""
    if not name:
        return chain
    for alias in aliases:
        parent_name, _, child = alias.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, chain)
    return model
