"""ROI over full coverage: every segment of both designs has a dof, n(eps) ratio = dof ratio; the
compressed Tucker-2 chains are counted by the closed form, checked by hand and against an
independent Jacobian rank; incomplete coverage is refused or warned about loudly."""


import pytest
import torch
from torch import nn

from redundancy import zoo
from redundancy.analysis.report import analyze
from redundancy.analysis.roi import estimate_roi
from redundancy.errors import RedundancyError
from redundancy.linear.dof_closed import tucker_dof
from redundancy.lowrank.compression import compress
from redundancy.lowrank.ranks import rank_rule

from .helpers import jacobian_dof


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    net = zoo.resnet20()
    res = compress(net, rank_rule("fraction", fraction=0.25))
    return net, res, analyze(res.model, (3, 32, 32))


def test_roi_resnet20_fraction_quarter_full_coverage(pair):
    net, res, rep = pair
    roi = estimate_roi(net, res.model, (3, 32, 32), eps=0.1, measure=False)
    assert roi.coverage_original == roi.coverage_compressed == 1.0
    assert roi.n_original / roi.n_compressed == pytest.approx(roi.dof_original / roi.dof_compressed, rel=1e-5)
    # the data saving is no longer larger than the parameter saving would allow (was 20x for 4x)
    assert roi.n_original / roi.n_compressed < 1.5 * roi.params_original / roi.params_compressed
    assert rep.summary.n_segments_skipped == 0 and rep.summary.coverage_params == 1.0
    assert roi.dof_compressed == rep.summary.segment_dof


def test_one_tucker_block_by_hand_and_by_jacobian(pair):
    net, res, rep = pair
    row = {r.name: r for r in res.layers}["1.0.conv1"]
    r_out, r_in = row.ranks
    seg = next(s for s in rep.segments if s.layers[0] == "1.0.conv1.reduce")
    assert seg.route == "closed:tucker2"
    by_hand = r_in * 9 * r_out + 16 * r_in - r_in ** 2 + 16 * r_out - r_out ** 2   # Tucker-2 (16, 9, 16)
    assert seg.dof == by_hand == tucker_dof((16, 9, 16), (r_in, 9, r_out))
    chain = res.model.get_submodule("1.0.conv1")
    assert seg.dof == jacobian_dof(nn.Sequential(*[m for m in chain]), (16, 3, 3))


def _skipping_model():
    # two full 3x3 convs on the same axes: no closed form; too large for the numerical route
    return nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.Conv2d(64, 64, 3, bias=False), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 2))


def test_incomplete_coverage_is_stated_and_roi_refuses():
    m = _skipping_model()
    rep = analyze(m, (64, 8, 8))
    s = rep.summary
    assert s.n_segments_skipped == 1 and s.coverage_params < 0.01 and not s.complete
    assert "SKIPPED" in s.coverage_text() and "max_rank" in s.coverage_text()
    assert "SKIPPED" in repr(rep)
    small = nn.Sequential(nn.Conv2d(64, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(RedundancyError, match="INCOMPLETE COVERAGE"):
        estimate_roi(m, small, (64, 8, 8), measure=False)
    with pytest.warns(RuntimeWarning, match="INCOMPLETE COVERAGE"):
        roi = estimate_roi(m, small, (64, 8, 8), measure=False, allow_partial=True)
    assert roi.coverage_original < 0.01 and roi.coverage_compressed == 1.0
    assert roi.notes[0].startswith("INCOMPLETE") and "WARNING" in repr(roi)
    with pytest.raises(RedundancyError, match="allow_partial"):
        estimate_roi(m, small, (64, 8, 8), measure=False, allow_partial="yes")
