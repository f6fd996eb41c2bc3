"""Small classifiers without buffers or dropout (trainable by :func:`redundancy.training.train_ensemble`).

* :func:`small_cnn`: two convolutions (3 wide, ReLU) and a linear head, for 1-D ``(C, L)`` or
  2-D ``(C, H, W)`` inputs; the reference CNN of the long-tail experiment.
* :func:`mlp`: flatten, hidden ReLU layers, linear head; the memorization ensemble's model.
"""

from __future__ import annotations

import math

from torch import nn

from redundancy._validation import check_int, check_param_count, check_shape

#: most parameters of a network built here (200 MB in float32)
_MAX_PARAMS = 50_000_000



def small_cnn(input_shape=(1, 8, 8), num_classes: int = 10, width: int = 16) -> nn.Sequential:
    """``conv(C→w) ReLU conv(w→2w) ReLU [pool 2] flatten linear(→num_classes)``, 'same' padding.

    Examples
    --------
    >>> import torch
    >>> small_cnn((1, 40), 10)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """
    shape = check_shape("input_shape", input_shape, min_len=2, max_len=3)
    num_classes = check_int("num_classes", num_classes, min_value=2, max_value=100_000)
    width = check_int("width", width, min_value=1, max_value=4096)
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if len(shape) == 2 else (nn.Conv2d, nn.MaxPool2d)
    spatial = [s // 2 for s in shape[1:]]
    k = 3 ** (len(shape) - 1)
    check_param_count("small_cnn", (shape[0] * k + 1) * width + (width * k + 1) * 2 * width
                      + (2 * width * math.prod(spatial) + 1) * num_classes, _MAX_PARAMS)
    return nn.Sequential(conv(shape[0], width, 3, padding=1), nn.ReLU(),
                         conv(width, 2 * width, 3, padding=1), nn.ReLU(), pool(2), nn.Flatten(),
                         nn.Linear(2 * width * math.prod(spatial), num_classes))


def mlp(input_shape=(1, 8, 8), num_classes: int = 10, hidden=(128,)) -> nn.Sequential:
    """``flatten (linear ReLU)* linear``.

    Examples
    --------
    >>> import torch
    >>> mlp((1, 8, 8), 10, hidden=(32, 32))(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """
    shape = check_shape("input_shape", input_shape, min_len=1)
    hidden = check_shape("hidden", hidden, min_len=0)
    num_classes = check_int("num_classes", num_classes, min_value=2, max_value=100_000)
    sizes = (math.prod(shape), *hidden, num_classes)
    check_param_count("mlp", sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), _MAX_PARAMS)
    layers, d = [nn.Flatten()], math.prod(shape)
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, num_classes))
