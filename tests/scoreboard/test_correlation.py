"""Agreement between scores (consensus, rank normalisation, correlation, reference): bad frames, overflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from redundancy.errors import RedundancyError
from redundancy.scoreboard.correlation import consensus, correlation_matrix, rank_normalise, reference_table


_GOOD = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.2, 0.4, np.nan]})


@pytest.mark.parametrize("fn", [rank_normalise, correlation_matrix, consensus, lambda f: reference_table(f, "a")])
@pytest.mark.parametrize("frame", [None, np.zeros((3, 2)), pd.DataFrame({"a": ["x", "y"]}),
                                   pd.DataFrame({"a": [1.0, np.inf]}),
                                   pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])])
def test_correlation_functions_refuse_frames_that_are_not_scores(fn, frame):
    with pytest.raises(RedundancyError, match="frame"):
        fn(frame)


def test_correlation_method_reference_and_overflow():
    with pytest.raises(RedundancyError, match="method"):
        correlation_matrix(_GOOD, "pearson")
    with pytest.raises(RedundancyError, match="reference"):
        reference_table(_GOOD, "nope")
    with pytest.raises(RedundancyError, match="reference"):
        reference_table(_GOOD, ["a"])
    big = pd.DataFrame({"a": [1e308, -1e308, 1e308], "b": [1e308, 1e308, np.nan]})
    c = consensus(big)  # by hand: row means 1e308, 0, 1e308
    assert np.allclose(c["consensus"].to_numpy() / 1e308, [1.0, 0.0, 1.0])
    assert np.allclose(c["spread"].to_numpy() / 1e308, [0.0, 1.0, 0.0]) and (c["n_scores"] == [2, 2, 1]).all()
    assert consensus(pd.DataFrame(index=[0, 1]))["n_scores"].tolist() == [0, 0]
