"""longtail.compressions: weight_sparsity and compression_suite refuse bad arguments."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail.compressions import compression_suite, quantize_dynamic_int8, weight_sparsity


def test_weight_sparsity_and_suite_refuse():
    with pytest.raises(RedundancyError, match="model"):
        weight_sparsity({1, 2})
    with torch.device("meta"):
        meta = nn.Linear(3, 3)
    with pytest.raises(RedundancyError, match="meta"):
        weight_sparsity(meta)
    with pytest.raises(RedundancyError, match="meta"):
        quantize_dynamic_int8(meta)
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    for kw, match in [(dict(ranks=("a",)), "ranks"), (dict(ranks=(0.0,)), "ranks"),
                      (dict(amounts=(1.0,)), "amounts"),
                      (dict(amounts=(0.5,) * 40), "amounts"), (dict(seed=-1), "seed")]:
        with pytest.raises(RedundancyError, match=match):
            compression_suite(net, **kw)
    from redundancy.longtail.compressions import quantize_static_int8

    for X, match in [(1 + 1j, "calibration_X"), (np.ones(3), "calibration_X"), (np.full((2, 2, 8), 1e300),
                                                                                 "float32"),
                     (np.ones((2, 2, 5)), "static int8")]:
        with pytest.raises(RedundancyError, match=match):
            quantize_static_int8(net, X)
    with pytest.raises(RedundancyError, match="backend"):
        quantize_static_int8(net, np.ones((2, 2, 6)), backend=np.array(["x86"]))
    assert weight_sparsity(nn.ReLU()) == 0.0
    lin = nn.Linear(4, 5)
    with torch.no_grad():
        lin.weight[:2] = 0
    assert weight_sparsity(nn.Sequential(lin, nn.Linear(5, 5, bias=False))) == pytest.approx(8 / 45)
