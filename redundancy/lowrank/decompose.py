"""Tucker and CP decompositions of layers and of the whole-network tensor ``W``.

:func:`decompose_layer` decomposes the kernel of one ``Conv1d/2d/3d`` or ``Linear`` layer (N-d
kernels in torch layout ``(out_channels, in_channels, *kernel_size)``, the matrix case for
``Linear``) and :func:`decompose_whole_network` the tensor ``W`` of
:func:`redundancy.whole_network_tensor`. The work is done by the modules split out of this one,
which are re-exported here under the same names (``from redundancy.lowrank.decompose import ...``
keeps working):

* :mod:`redundancy.lowrank.tensor_ops`: ``unfold``, ``mode_product``, ``multi_mode_product``,
  ``cp_full`` (tensorly's tensor algebra, numpy backend);
* :mod:`redundancy.lowrank.tucker`: ``TuckerDecomposition``, ``tucker_decompose`` (HOSVD/HOOI,
  tensorly's ``partial_tucker``);
* :mod:`redundancy.lowrank.cp`: ``CPDecomposition``, ``cp_decompose``, ``cp_rank_bound`` (ALS,
  tensorly's ``parafac``).

This module has no tensorly import of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from redundancy._validation import check_choice, check_finite_module
from redundancy.errors import RedundancyError, UnsupportedLayerError
from redundancy.lowrank.cp import MAX_RESTARTS, CPDecomposition, cp_decompose, cp_rank_bound
from redundancy.lowrank.tensor_ops import _as_array, cp_full, mode_product, multi_mode_product, unfold
from redundancy.lowrank.tucker import TuckerDecomposition, tucker_decompose


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_REEXPORTED = (MAX_RESTARTS, _as_array)  # kept importable from here (ranks.py and evbmf.py use _as_array)


_OPTIONS = {"tucker": ("n_iter_max", "tol"), "cp": ("n_iter_max", "tol", "n_restarts", "init")}


def _check_options(method: str, kwargs: dict) -> None:
    """``**kwargs`` passed on to the decomposition: refuse unknown keys before any work."""
    extra = sorted(set(kwargs) - set(_OPTIONS[method]))
    if extra:
        raise RedundancyError(f"unknown option(s) {extra} for method={method!r}; allowed: {list(_OPTIONS[method])}")


def layer_kernel(layer: nn.Module) -> np.ndarray:
    """The weight of a ``Conv1d/2d/3d`` (``(out, in/groups, *k)``) or ``Linear`` (``(out, in)``) in float64.

    Also accepts :class:`redundancy.linear.layers.TuckerConvLayer` / ``CPConvLayer`` (their rebuilt kernel).
    """
    from redundancy.linear.layers import _FactorisedConv

    check_finite_module("layer", layer)
    if isinstance(layer, (*_CONVS, nn.Linear)):
        return layer.weight.detach().cpu().double().numpy()
    if isinstance(layer, _FactorisedConv):
        return layer.kernel().detach().cpu().double().numpy()
    raise UnsupportedLayerError(
        f"layer of type {type(layer).__name__} has no kernel to decompose; supported: Conv1d, Conv2d, "
        "Conv3d, Linear, TuckerConv, CPConv")


def decompose_layer(layer: nn.Module, ranks: Any, *, method: str = "tucker", modes: Any = "channels",
                    seed: Any = 0, algorithm: str = "hooi", **kwargs) -> TuckerDecomposition | CPDecomposition:
    """Decompose the kernel of one conv (1-D/2-D/3-D) or ``Linear`` layer.

    Parameters
    ----------
    layer : torch.nn.Module
        ``Conv1d/2d/3d``, ``Linear`` (matrix case) or a factorised conv of :mod:`redundancy.linear.layers`.
        Grouped convs are refused: their stored weight ``(out, in/groups, *k)`` is not the
        block-diagonal kernel, and decomposing it as if it were would be wrong.
    ranks : int or tuple
        Tucker: one rank per decomposed mode (``(R_out, R_in)`` for Tucker-2); CP: one int.
    method : {"tucker", "cp"}
    modes : "channels", "all" or sequence of int
        Tucker modes: ``"channels"`` = ``(0, 1)`` (Tucker-2), ``"all"`` = every mode.
    seed : int or numpy.random.Generator
    algorithm : {"hooi", "hosvd"}
        Tucker algorithm (ignored by CP).
    **kwargs
        Passed to :func:`tucker_decompose` or :func:`cp_decompose`.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(6, 8, 3).double()
    >>> decompose_layer(conv, (8, 6)).rel_error < 1e-10
    True
    """
    check_choice("method", method, ("tucker", "cp"))
    _check_options(method, kwargs)
    kernel = layer_kernel(layer)
    if getattr(layer, "groups", 1) != 1:
        raise UnsupportedLayerError(
            f"layer has groups={layer.groups}; grouped/depthwise kernels are block-diagonal and are not "
            "decomposed as one tensor (decompose each group's slice instead)")
    if method == "cp":
        return cp_decompose(kernel, ranks, seed=seed, **kwargs)
    if isinstance(modes, str):
        check_choice("modes", modes, ("channels", "all"))
        modes = (0, 1) if modes == "channels" else tuple(range(kernel.ndim))
    return tucker_decompose(kernel, ranks, modes=modes, seed=seed, method=algorithm, **kwargs)


def decompose_whole_network(W: Any, ranks: Any, *, method: str = "tucker", modes: Any = None,
                            seed: Any = 0, algorithm: str = "hooi", **kwargs) -> TuckerDecomposition | CPDecomposition:
    """Decompose a whole-network tensor ``W`` (a :class:`~redundancy.linear.tensor.WholeNetworkTensor` or array).

    ``W`` has shape ``(n_outputs, *input_shape)``; with one output the leading mode of size 1 is
    dropped before decomposing (it carries no structure), so ``ranks`` refer to the input modes.
    ``method`` is ``"tucker"`` (``algorithm`` ``"hooi"``/``"hosvd"``, optional ``modes``) or ``"cp"``.

    Examples
    --------
    >>> import torch
    >>> from redundancy import whole_network_tensor
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3, bias=False), torch.nn.Flatten(),
    ...                           torch.nn.Linear(12, 1, bias=False)).double()
    >>> W = whole_network_tensor(net, (2, 6))
    >>> decompose_whole_network(W, (2, 6)).rel_error < 1e-10
    True
    """
    check_choice("method", method, ("tucker", "cp"))
    _check_options(method, kwargs)
    arr = _as_array(W.W if hasattr(W, "W") and hasattr(W, "bias") else W, "W")
    if arr.ndim >= 3 and arr.shape[0] == 1:
        arr = arr[0]
    if method == "cp":
        return cp_decompose(arr, ranks, seed=seed, **kwargs)
    return tucker_decompose(arr, ranks, modes=modes, seed=seed, method=algorithm, **kwargs)
