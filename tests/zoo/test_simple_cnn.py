"""simple_cnn: absurd sizes are refused before anything is allocated."""

from __future__ import annotations

import pytest
from torch import nn
from redundancy.errors import RedundancyError


def test_simple_cnn_refuses_absurd_sizes_before_allocating():
    from redundancy.counts import parameter_count
    from redundancy.zoo.small import MAX_CNN_PARAMS, simple_cnn

    for kw, name in (({"in_channels": 2 ** 64}, "in_channels"), ({"widths": (10 ** 7,)}, "widths"),
                     ({"kernel_size": 1000}, "kernel_size"), ({"seed": 2 ** 64}, "seed"),
                     ({"widths": (50_000, 50_000)}, "parameters")):
        with pytest.raises(RedundancyError, match=name):
            simple_cnn(**kw)
    assert parameter_count(simple_cnn(in_channels=3, widths=(5, 7), num_classes=4, kernel_size=2)) < MAX_CNN_PARAMS
