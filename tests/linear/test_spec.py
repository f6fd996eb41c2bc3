"""LinearCNN specs: bad layer arguments are refused at construction."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


@pytest.mark.parametrize("ranks,spatial", [((0, 2), None), ((-1, 2), None), ((True, 2), None), ((2, 2), (1,))])
def test_linear_cnn_rejects_bad_ranks_at_construction(ranks, spatial):
    from redundancy.linear.spec import LinearCNN, TuckerConv

    with pytest.raises(RankError):
        LinearCNN((2, 6, 6), [TuckerConv(4, 3, ranks=ranks, spatial_ranks=spatial)])
