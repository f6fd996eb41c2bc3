"""bayes.curve: inclusion_curve refuses bad arguments."""

import numpy as np
import pytest

from redundancy.bayes import inclusion_curve
from redundancy.errors import RedundancyError


def test_inclusion_curve_refuses(tiny_fit):
    res, data = tiny_fit
    with pytest.raises(RedundancyError, match="fractions"):
        inclusion_curve(res, data, fractions=(0.0,))
    with pytest.raises(RedundancyError, match="fractions"):
        inclusion_curve(res, data, fractions="a")
    with pytest.raises(RedundancyError, match="result"):
        inclusion_curve({"net": None}, data)
    with pytest.raises(RedundancyError, match="shape"):
        inclusion_curve(res, (np.zeros((20, 3), "float32"), np.arange(20) % 2))
    with pytest.raises(RedundancyError, match="regression"):
        inclusion_curve(res, (data[0], data[0][:, 0].astype("float64")))
    with pytest.raises(RedundancyError, match="device"):
        inclusion_curve(res, data, device="nope")
    assert inclusion_curve(res, data, fractions=[0.5]).nodes_kept.tolist() == [2]


def test_inclusion_curve_reports_its_fits_convergence(tiny_fit):
    from redundancy.errors import ConvergenceWarning

    res, data = tiny_fit  # one epoch: not converged
    with pytest.warns(ConvergenceWarning, match="inclusion_curve"):
        curve = inclusion_curve(res, data, fractions=[1.0])
    assert curve.convergence == res.convergence and not curve.convergence.converged
    assert "NOT converged" in repr(curve) and curve.to_dict()["convergence"]["converged"] is False
