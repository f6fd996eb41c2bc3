"""estimate_roi: counts against independent sums, n(eps) against the formula, money against brute force."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.analysis.roi import cost_comparison, measure_latency


def _brute_break_even(data, serving):
    """Cumulative costs on a fine month grid; the first month where the cheaper design changes."""
    t = np.linspace(0, 100, 200_001)
    diff = (data[0] + t * serving[0]) - (data[1] + t * serving[1])   # > 0: compressed cheaper
    change = np.nonzero(np.sign(diff) != np.sign(diff[0]))[0]
    return t[change[0]] if len(change) else None


@given(n=st.tuples(st.integers(1, 10**5), st.integers(1, 10**5)),
       macs=st.tuples(st.integers(1, 10**10), st.integers(1, 10**10)),
       cps=st.floats(0.001, 10), cpg=st.floats(1e-5, 1), ipm=st.floats(1e3, 1e8))
def test_cost_comparison_matches_brute_force(n, macs, cps, cpg, ipm):
    data, serving, be, cheaper = cost_comparison(n, macs, cps, cpg, ipm)
    assert data == pytest.approx([n[0] * cps, n[1] * cps])
    assert serving == pytest.approx([m * 1e-9 * cpg * ipm for m in macs])
    co = lambda t: data[0] + t * serving[0]
    cc = lambda t: data[1] + t * serving[1]
    if be is not None:
        assert be > 0
        assert co(be) == pytest.approx(cc(be), rel=1e-9, abs=1e-9)
        later = be * 2 + 1
        assert (cc(later) < co(later)) == (cheaper == "compressed")
    elif cheaper is not None:
        for t in (0.0, 1.0, 1e6):   # never crossing: the same design is cheaper at all times
            if cheaper == "compressed":
                assert cc(t) <= co(t) + 1e-9 * max(1.0, abs(co(t)))
            else:
                assert co(t) <= cc(t) + 1e-9 * max(1.0, abs(cc(t)))


def test_cost_comparison_without_costs_and_brute_grid():
    assert cost_comparison([1, 2], [3, 4]) == ([None, None], [None, None], None, None)
    data, serving, be, cheaper = cost_comparison([1000, 3000], [4e9, 2e9], 0.5, 1.0, 100.0)
    assert be == pytest.approx(_brute_break_even(data, serving), abs=1e-3) and cheaper == "compressed"
    data, serving, be, cheaper = cost_comparison([3000, 1000], [4e9, 2e9], 0.5, 1.0, 100.0)
    assert _brute_break_even(data, serving) is None and be is None and cheaper == "compressed"


def test_measure_latency_shapes_and_state():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU())
    net.train()
    lat = measure_latency([net, net], (2, 5, 5), batch_sizes=(1, 2), repeats=3, warmup=1)
    assert sorted(lat) == [1, 2]
    for b in (1, 2):
        assert len(lat[b]) == 2
        for med, q25, q75 in lat[b]:
            assert 0 < q25 <= med <= q75
    assert net.training and net[0].weight.dtype == torch.float32   # the caller's model is untouched
    with pytest.raises(RedundancyError, match="dtype"):
        measure_latency([net], (2, 5, 5), dtype=torch.int32)


# ---- the rest needs issue4 (bounds, dof) and issue7a (count_macs) -------------------------------

def _designs():
    from redundancy.linear.spec import AvgPool, Conv, Dense, LinearCNN, TuckerConv

    shape = (4, 8, 8)
    plain = LinearCNN(shape, [Conv(16, 3), AvgPool(2), Dense(1)]).build(seed=0)
    tucker = LinearCNN(shape, [TuckerConv(16, 3, ranks=(2, 2)), AvgPool(2), Dense(1)]).build(seed=0)
    return plain, tucker, shape


def _flop_macs(model, shape):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        model(torch.zeros((1, *shape), dtype=next(model.parameters()).dtype))
    return fc.get_total_flops() // 2


def test_estimate_roi_counts_bytes_and_samples():
    pytest.importorskip("redundancy.linear.bounds")
    pytest.importorskip("redundancy.linear.dof")
    from redundancy import counts

    if not hasattr(counts, "count_macs"):
        pytest.skip("count_macs not merged yet")
    from redundancy.analysis.roi import estimate_roi

    plain, tucker, shape = _designs()
    roi = estimate_roi(plain, tucker, shape, measure=False, eps=0.2, sigma=1.5, dtype=torch.float64,
                       cost_per_sample=2.0, cost_per_gmac=0.5, inferences_per_month=1e6)
    uniq = lambda m: sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())
    assert (roi.params_original, roi.params_compressed) == (uniq(plain), uniq(tucker))
    assert roi.bytes_original == 8 * uniq(plain) and roi.bytes_saved == 8 * roi.params_saved
    assert roi.macs_original == _flop_macs(plain, shape)
    # n(eps) = sigma^2 dof / eps^2 (C = 1, log factor 1), rounded up: recomputed here from the dof
    for d, n in ((roi.dof_original, roi.n_original), (roi.dof_compressed, roi.n_compressed)):
        assert n == math.ceil(1.5 ** 2 * d / 0.2 ** 2 - 1e-9)
    assert roi.dof_compressed < roi.dof_original and roi.extra_samples < 0
    assert roi.dof_source == "whole-network" and roi.latency == ()
    assert roi.data_cost_compressed == pytest.approx(roi.n_compressed * 2.0)
    assert roi.serving_cost_per_month_original == pytest.approx(roi.macs_original * 1e-9 * 0.5 * 1e6)
    d = roi.to_dict()
    assert d["params_saved"] == roi.params_saved and d["input_shape"] == list(shape)
    df = roi.to_pandas()
    assert df.loc["params", "saved"] == roi.params_saved
    assert "RoiResult" in repr(roi)


def test_estimate_roi_latency_and_given_dof():
    from redundancy import counts

    if not hasattr(counts, "count_macs"):
        pytest.skip("count_macs not merged yet")
    pytest.importorskip("redundancy.linear.bounds")
    from redundancy.analysis.roi import SLOWER_NOTE, estimate_roi

    plain, tucker, shape = _designs()
    roi = estimate_roi(plain, tucker, shape, batch_sizes=(1, 3), repeats=2, warmup=0,
                       dof=(500, 100), eps=1.0)
    assert [p.batch_size for p in roi.latency] == [1, 3]
    assert all(p.original_median_s > 0 and p.compressed_median_s > 0 for p in roi.latency)
    assert roi.dof_source == "given" and roi.naive_original == roi.params_original
    assert (roi.n_original, roi.n_compressed) == (500, 100)
    assert SLOWER_NOTE in roi.notes
    assert roi.break_even_months is None and roi.data_cost_original is None


@pytest.mark.parametrize("kw, match", [
    ({"eps": 0}, "eps=0"), ({"dtype": torch.int64}, "dtype"), ({"batch_sizes": (0,)}, "batch_sizes"),
    ({"repeats": 0}, "repeats=0"), ({"cost_per_sample": -1.0}, "cost_per_sample"),
    ({"input_shape": (3, -1)}, "input_shape"), ({"dof": (1, 2, 3)}, "dof"),
])
def test_estimate_roi_bad_arguments(kw, match):
    from redundancy.analysis.roi import estimate_roi

    net = nn.Linear(3, 1)
    args = {"input_shape": (3,), **kw}
    with pytest.raises(RedundancyError, match=match):
        estimate_roi(net, net, **args)


def test_estimate_roi_not_a_module():
    from redundancy.analysis.roi import estimate_roi

    with pytest.raises(RedundancyError, match="original must be a torch.nn.Module"):
        estimate_roi("resnet", nn.Linear(3, 1), (3,))


def test_estimate_roi_nonlinear_models_use_segments():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    b = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    from redundancy.analysis.roi import estimate_roi

    roi = estimate_roi(a, b, (3, 6, 6), measure=False, eps=0.5)
    assert roi.dof_source == "segments"
    # each segment is one generic full-rank layer: its dof is its kernel size (weights, no biases)
    kernels = lambda m: sum(mod.weight.numel() for mod in m if hasattr(mod, "weight"))
    assert (roi.dof_original, roi.dof_compressed) == (kernels(a), kernels(b))
    assert roi.n_original == math.ceil(kernels(a) / 0.25 - 1e-9)
    assert any("not linear" in note for note in roi.notes)


@pytest.mark.parametrize("kw, match", [({"repeats": 0}, "repeats=0"), ({"batch_sizes": (2, 0)}, "batch_sizes"),
                                       ({"warmup": -1}, "warmup=-1")])
def test_measure_latency_bad_arguments(kw, match):
    with pytest.raises(RedundancyError, match=match):
        measure_latency([nn.Linear(2, 2)], (2,), **kw)
    with pytest.raises(RedundancyError, match=r"models\[0\] must be a torch.nn.Module"):
        measure_latency(["net"], (2,))


@pytest.mark.parametrize("which", ["input_shape", "meta"])
def test_estimate_roi_wrong_shape_or_meta_model_is_named(which):
    # a wrong input_shape or a meta-device model never reaches torch as a raw error
    from redundancy.analysis.roi import estimate_roi

    a = nn.Sequential(nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    if which == "input_shape":
        with pytest.raises(RedundancyError, match="input_shape"):
            estimate_roi(a, a, (3, 6, 6), measure=False)
    else:
        meta = nn.Linear(4, 2, device="meta")
        with pytest.raises(RedundancyError, match="original"):
            estimate_roi(meta, nn.Linear(4, 2), (4,), measure=False)


def test_roi_result_parts_and_flat_names():
    from redundancy.analysis.roi import RoiData, RoiDesign, RoiMoney, RoiRisk, estimate_roi

    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    roi = estimate_roi(a, a, (1, 6), measure=False, dof=(4, 4), naive=(12, 12), cost_per_sample=1.0)
    assert isinstance(roi.design, RoiDesign) and isinstance(roi.data, RoiData)
    assert isinstance(roi.money, RoiMoney) and isinstance(roi.risk, RoiRisk)
    assert roi.params_original == roi.design.params_original and roi.n_original == roi.data.n_original
    assert roi.extra_data_cost == roi.money.extra_data_cost == 0.0
    d = roi.to_dict()
    assert d["design"]["params_original"] == roi.params_original and d["params_saved"] == 0
    with pytest.raises(AttributeError):
        roi.no_such_field


def test_latency_threads_recorded_and_error_bars_from_measured_quantiles():
    from redundancy.analysis.latency import measure_latency
    from redundancy.analysis.roi import estimate_roi
    from redundancy.plotting import RoiDisplay

    before = torch.get_num_threads()
    lat = measure_latency([nn.Linear(8, 8), nn.Linear(8, 2)], (8,), batch_sizes=(1,), repeats=7, warmup=0)
    assert lat.threads == 1 and torch.get_num_threads() == before
    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    b = nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten(), nn.Linear(4, 1))
    roi = estimate_roi(a, b, (1, 6), batch_sizes=(1,), repeats=9, warmup=0)
    p = roi.latency[0]
    assert p.threads == 1
    # the bar is the median of the per-repeat ratios and its bar ends are their quartiles
    _, vals, errs = RoiDisplay.from_result(roi).ratios()
    assert vals[-1] == pytest.approx(p.ratio_median)
    assert vals[-1] - errs[0, -1] == pytest.approx(p.ratio_q25) and vals[-1] + errs[1, -1] == pytest.approx(p.ratio_q75)
    assert (vals - errs[0] >= 0).all()
