"""compress / rank_rule: options are checked before any work."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


def test_options_are_checked_up_front():
    with pytest.raises(RedundancyError, match="n_iter"):
        R.compress(nn.Conv2d(3, 4, 3), (2, 2), n_iter=5)
    with pytest.raises(RedundancyError, match="fraction"):
        R.rank_rule("fraction")
