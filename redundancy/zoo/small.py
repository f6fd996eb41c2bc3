"""Small example networks for the examples, tests, experiments and the CLI.

* :func:`small_cnn`: ``conv(3) -> BN -> ReLU`` per width, global average pooling, linear head
  (a zoo model: :func:`~redundancy.zoo.get_model` knows it as ``"small_cnn"``).
* :func:`simple_cnn`: ``conv -> BN -> ReLU -> max-pool`` per width, adaptive pooling, linear head
  (the CNN the CAR experiment, the ``prune`` CLI and the docs prune).
* :func:`plain_cnn`: ``conv(3) -> ReLU -> max-pool`` per width, a hidden linear layer, seeded; no
  normalisation, so :func:`redundancy.bayes.to_spike_slab` converts it.
* :func:`mlp`: ``Flatten, (Linear, ReLU)*, Linear``, seeded (the spike-and-slab examples' MLP).
* :func:`two_conv_cnn`: two 3-wide convolutions and a linear head, no buffers or dropout (the
  reference CNN of the long-tail experiment).
* :func:`mlp_classifier`: ``Flatten, (Linear, ReLU)*, Linear`` on the caller's RNG (the memorization
  ensemble's model).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
from torch import nn

import redundancy._validation as _v
from redundancy._validation import check_choice, check_int, check_param_count, check_seed, check_shape
from redundancy.errors import RedundancyError
from redundancy.zoo.classic import _INPUT_SHAPES, MAX_BLOCKS, MODELS, _bounded, _check_common, _widths

#: Most parameters :func:`simple_cnn` builds (refused before anything is allocated).
MAX_CNN_PARAMS = 100_000_000
_MAX_SIZE = 1_000_000
#: most parameters of a network built by :func:`mlp`, :func:`plain_cnn`, :func:`two_conv_cnn` or
#: :func:`mlp_classifier` (200 MB in float32)
_MAX_PARAMS = 50_000_000
_MAX_WIDTH = 100_000
_MAX_LAYERS = 64


@_bounded
def small_cnn(*, in_channels: int = 1, num_classes: int = 10, dims: int = 2, widths=(16, 32, 32)) -> nn.Module:
    """A small plain CNN for digits (``dims=2``, input ``(1, 8, 8)``) or MNIST-1D (``dims=1``,
    input ``(1, 40)``): one ``conv(3) -> BN -> ReLU`` per width (the second with stride 2), global
    average pooling and a linear head.

    Examples
    --------
    >>> import torch
    >>> small_cnn(dims=1)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """
    if isinstance(dims, bool) or dims not in (1, 2):
        raise RedundancyError(f"dims={dims!r} is not allowed; choose 1 (sequences) or 2 (images)")
    widths = _widths("widths", widths, min_len=1, max_len=MAX_BLOCKS)
    _check_common(1.0, in_channels, num_classes)
    conv, bn, pool = ((nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d) if dims == 1
                      else (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d))
    layers, c = [], in_channels
    for i, w in enumerate(widths):
        layers += [conv(c, w, 3, stride=2 if i == 1 else 1, padding=1, bias=False), bn(w), nn.ReLU(inplace=True)]
        c = w
    return nn.Sequential(*layers, pool(1), nn.Flatten(), nn.Linear(c, num_classes))


def simple_cnn(*, ndim: int = 2, in_channels: int = 1, widths=(16, 32), num_classes: int = 10,
               kernel_size: int | None = None, seed: int | None = None) -> nn.Sequential:
    """A plain CNN: one ``conv -> BN -> ReLU -> max-pool`` stage per entry of ``widths``.

    ``in_channels``, ``num_classes`` and every width are at most 1,000,000, ``kernel_size`` at most
    64, and the whole network at most :data:`MAX_CNN_PARAMS` parameters.

    Examples
    --------
    >>> net = simple_cnn(ndim=1, widths=(8, 16))
    >>> [type(m).__name__ for m in net][:4], net[-1].in_features
    (['Conv1d', 'BatchNorm1d', 'ReLU', 'MaxPool1d'], 64)
    """
    import torch

    check_choice("ndim", ndim, (1, 2))
    check_int("in_channels", in_channels, min_value=1, max_value=_MAX_SIZE)
    widths = check_shape("widths", widths, min_len=1, max_len=8)
    if max(widths) > _MAX_SIZE:
        raise RedundancyError(f"widths={widths} has an entry above {_MAX_SIZE:,}")
    check_int("num_classes", num_classes, min_value=1, max_value=_MAX_SIZE)
    k = check_int("kernel_size", kernel_size, min_value=1, max_value=64) if kernel_size is not None else \
        (3 if ndim == 2 else 5)
    pooled = 2 if ndim == 2 else 4
    chans = (in_channels,) + widths
    n_params = sum(a * b * k ** ndim + 3 * b for a, b in zip(chans, chans[1:])) \
        + (widths[-1] * pooled ** ndim + 1) * num_classes
    if n_params > MAX_CNN_PARAMS:
        raise RedundancyError(f"simple_cnn(in_channels={in_channels}, widths={widths}, num_classes={num_classes}, "
                              f"kernel_size={k}) would have {n_params:,} parameters; the limit is {MAX_CNN_PARAMS:,}")
    Conv, BN, Pool, Ad = ((nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d) if ndim == 2 else
                          (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d))
    if seed is not None:
        torch.manual_seed(check_seed("seed", seed))
    layers: list[nn.Module] = []
    c = in_channels
    for w in widths:
        layers += [Conv(c, w, k, padding=k // 2), BN(w), nn.ReLU(), Pool(2, ceil_mode=True)]
        c = w
    layers += [Ad(pooled), nn.Flatten(), nn.Linear(c * pooled ** ndim, num_classes)]
    return nn.Sequential(*layers)


@_v.validate_params({"input_shape": _v.Shape(1), "widths": _v.Items(_v.Int(1, _MAX_WIDTH), max_len=_MAX_LAYERS),
                     "n_out": _v.Int(1, _MAX_WIDTH), "seed": _v.Seed()})
def mlp(input_shape: Sequence[int], widths: Sequence[int], n_out: int, *, seed: int = 0) -> nn.Sequential:
    """``Flatten, Linear(d, w1), ReLU, ..., Linear(w_L, n_out)`` with ``d = prod(input_shape)``.

    Parameters
    ----------
    input_shape : tuple of int
        One example's shape (at most ``MAX_NUMEL`` entries in all).
    widths : sequence of int
        Hidden widths, each in [1, 100000], at most 64 of them (empty: one linear layer).
    n_out : int
        Outputs (classes or targets), in [1, 100000].
    seed : int
        Seeds the initialisation (the caller's torch RNG is not changed).

    Refuses a network of more than 50 million parameters.

    Examples
    --------
    >>> mlp((1, 8, 8), (16,), 10)
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=64, out_features=16, bias=True)
      (2): ReLU()
      (3): Linear(in_features=16, out_features=10, bias=True)
    )
    """
    d = math.prod(input_shape)
    sizes = (d, *widths, n_out)
    _v.check_param_count("mlp", sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), _MAX_PARAMS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten()]
        for w in widths:
            layers += [nn.Linear(d, w), nn.ReLU()]
            d = w
        layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


@_v.validate_params({"input_shape": _v.Shape(2, 3, max_numel=_v.MAX_NUMEL),
                     "channels": _v.Items(_v.Int(1, 4096), min_len=1, max_len=8), "n_out": _v.Int(1, _MAX_WIDTH),
                     "hidden": _v.Int(1, _MAX_WIDTH), "seed": _v.Seed()})
def plain_cnn(input_shape: Sequence[int], channels: Sequence[int], n_out: int, *, hidden: int = 32,
               seed: int = 0) -> nn.Sequential:
    """A plain CNN for ``(C, L)`` or ``(C, H, W)`` inputs: per entry of ``channels`` a 3-wide conv
    (padding 1), ReLU and max-pooling by 2 (while the size allows), then ``Flatten``,
    ``Linear(·, hidden)``, ReLU, ``Linear(hidden, n_out)``.

    Parameters
    ----------
    input_shape : (C, L) or (C, H, W)
    channels : sequence of int
        1 to 8 conv widths, each in [1, 4096].
    n_out, hidden : int
        Outputs and width of the hidden linear layer, each in [1, 100000].
    seed : int
        Seeds the initialisation (the caller's torch RNG is not changed).

    Refuses a network of more than 50 million parameters.

    Examples
    --------
    >>> plain_cnn((1, 8, 8), (4, 8), 10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    shape = input_shape
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(shape) == 2 else (nn.Conv2d, nn.MaxPool2d)
    k = 3 ** (len(shape) - 1)
    n_params, c, size = 0, shape[0], list(shape[1:])
    for w in channels:
        n_params += (c * k + 1) * w
        size = [s // 2 for s in size] if min(size) >= 2 else size
        c = w
    n_params += (c * math.prod(size) + 1) * hidden + (hidden + 1) * n_out
    _v.check_param_count("plain_cnn", n_params, _MAX_PARAMS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        c, size = shape[0], list(shape[1:])
        for w in channels:
            layers += [conv(c, w, 3, padding=1), nn.ReLU()]
            if min(size) >= 2:
                layers.append(pool(2))
                size = [s // 2 for s in size]
            c = w
        layers += [nn.Flatten(), nn.Linear(c * math.prod(size), hidden), nn.ReLU(), nn.Linear(hidden, n_out)]
    return nn.Sequential(*layers)


@contextlib.contextmanager
def _seeded(seed):
    """Draw from ``torch.manual_seed(seed)`` inside, the global generator untouched (None: as is)."""
    seed = check_seed("seed", seed, allow_none=True)
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def two_conv_cnn(input_shape=(1, 8, 8), num_classes: int = 10, width: int = 16, *,
                 seed: int | None = None) -> nn.Sequential:
    """``conv(C→w) ReLU conv(w→2w) ReLU [pool 2] flatten linear(→num_classes)``, 'same' padding;
    ``seed`` (optional) draws the weights from ``torch.manual_seed(seed)`` without touching the
    global generator.

    Examples
    --------
    >>> import torch
    >>> two_conv_cnn((1, 40), 10)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """
    shape = check_shape("input_shape", input_shape, min_len=2, max_len=3)
    num_classes = check_int("num_classes", num_classes, min_value=2, max_value=100_000)
    width = check_int("width", width, min_value=1, max_value=4096)
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(shape) == 2 else (nn.Conv2d, nn.MaxPool2d)
    spatial = [s // 2 for s in shape[1:]]
    k = 3 ** (len(shape) - 1)
    check_param_count("two_conv_cnn", (shape[0] * k + 1) * width + (width * k + 1) * 2 * width
                      + (2 * width * math.prod(spatial) + 1) * num_classes, _MAX_PARAMS)
    with _seeded(seed):
        return nn.Sequential(conv(shape[0], width, 3, padding=1), nn.ReLU(),
                             conv(width, 2 * width, 3, padding=1), nn.ReLU(), pool(2), nn.Flatten(),
                             nn.Linear(2 * width * math.prod(spatial), num_classes))


def mlp_classifier(input_shape=(1, 8, 8), num_classes: int = 10, hidden=(128,), *,
                   seed: int | None = None) -> nn.Sequential:
    """``flatten (linear ReLU)* linear``; ``seed`` as in :func:`two_conv_cnn`.

    Examples
    --------
    >>> import torch
    >>> mlp_classifier((1, 8, 8), 10, hidden=(32, 32))(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """
    shape = check_shape("input_shape", input_shape, min_len=1)
    hidden = check_shape("hidden", hidden, min_len=0)
    num_classes = check_int("num_classes", num_classes, min_value=2, max_value=100_000)
    sizes = (math.prod(shape), *hidden, num_classes)
    check_param_count("mlp_classifier", sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), _MAX_PARAMS)
    layers, d = [nn.Flatten()], math.prod(shape)
    with _seeded(seed):
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        return nn.Sequential(*layers, nn.Linear(d, num_classes))


MODELS["small_cnn"] = small_cnn
_INPUT_SHAPES["small_cnn"] = (1, 8, 8)
