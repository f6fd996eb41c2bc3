"""longtail.nets: the example networks bound their parameter count."""

import pytest

from redundancy.errors import RedundancyError
from redundancy.zoo.small import mlp_classifier as lt_mlp
from redundancy.zoo.small import two_conv_cnn as lt_cnn


def test_longtail_nets_bound_the_parameter_count():
    with pytest.raises(RedundancyError, match="parameters"):
        lt_mlp((1, 6, 2), hidden=(10 ** 6, 10 ** 6))
    with pytest.raises(RedundancyError, match="parameters"):
        lt_cnn((1, 10 ** 4, 10 ** 4), 10, width=4096)
    assert sum(p.numel() for p in lt_cnn((3, 8, 8), 10, 4).parameters()) == (27 + 1) * 4 + (36 + 1) * 8 + (128 + 1) * 10
