"""The small CNN the CAR experiment, the CLI and the docs prune (1-D or 2-D inputs).

``conv(k) -> BatchNorm -> ReLU -> max-pool(2)`` per width, then adaptive average pooling to a
fixed size (2x2 in 2-D, 4 in 1-D, so any input size works), flatten and a linear classifier.
"""

from __future__ import annotations

from torch import nn

from redundancy._validation import check_choice, check_int, check_seed, check_shape
from redundancy.errors import RedundancyError

__all__ = ["simple_cnn"]

#: Most parameters :func:`simple_cnn` builds (refused before anything is allocated).
MAX_CNN_PARAMS = 100_000_000
_MAX_SIZE = 1_000_000


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
