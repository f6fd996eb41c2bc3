"""Displays draw on Agg; the checks read back what is on the Axes (labels, points, scales)."""

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from torch import nn  # noqa: E402

from redundancy.errors import RedundancyError  # noqa: E402
from redundancy.plotting import BoundVsCountDisplay, ErrorCurveDisplay, RoiDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# Small stand-ins with the fields the Displays read (the real classes live in report.py,
# validate.py and roi.py); they keep these tests independent of those modules.
@dataclass
class _Row:
    name: str
    segment: object
    segment_dof: object
    segment_naive: object
    kr_ratio: float


@dataclass
class _Report:
    layers: list
    summary: dict = field(default_factory=dict)


def _report():
    return _Report(layers=[
        _Row("conv1", 0, 100, 400, 4.0),
        _Row("conv2", 0, 100, 400, 8.0),   # same segment: one pair, K/R the largest (8)
        _Row("fc", 1, 30, 30, float("nan")),
        _Row("skipped", None, None, None, float("nan")),
    ], summary={"model": "toy"})


def test_bound_vs_count_by_segment_points_and_labels():
    disp = BoundVsCountDisplay.from_report(_report()).plot()
    ax = disp.ax_
    assert disp.figure_ is ax.figure
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert len(lines) == 2
    naive, dof = lines
    np.testing.assert_array_equal(naive.get_ydata(), [400, 30])
    np.testing.assert_array_equal(dof.get_ydata(), [100, 30])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1…", "fc"]
    assert [t.get_text() for t in ax.texts] == ["K/R=8"]          # NaN K/R is not annotated
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"naive parameter count",
                                                                  "degrees of freedom"}
    assert "degrees of freedom" in ax.get_ylabel()


@dataclass
class _Seg:
    name: str
    dof: object
    naive: int


@dataclass
class _FullReport:
    layers: list
    segments: list
    model_name: str = "net"


def test_bound_vs_count_uses_segment_rows_when_present():
    rep = _FullReport(layers=[_Row("a", "seg0", 100, 400, 4.0), _Row("b", "seg0", 100, 400, 2.0),
                              _Row("c", "seg1", None, 9, 3.0)],
                      segments=[_Seg("seg0", 100, 400), _Seg("seg1", None, 9)])   # seg1 has no dof
    disp = BoundVsCountDisplay.from_report(rep).plot()
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["seg0"]
    assert [t.get_text() for t in disp.ax_.texts] == ["K/R=4"]
    disp = BoundVsCountDisplay.from_report([rep, rep]).plot()
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["net", "net"]


def test_bound_vs_count_per_model_sums_segments():
    reps = {"a": _report(), "b": _Report(layers=[_Row("c", "s", 5, 50, 2.0)])}
    disp = BoundVsCountDisplay.from_report(reps).plot()
    naive, dof = disp.ax_.get_lines()
    np.testing.assert_array_equal(naive.get_ydata(), [430, 50])
    np.testing.assert_array_equal(dof.get_ydata(), [130, 5])
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["a", "b"]
    assert [t.get_text() for t in disp.ax_.texts] == ["K/R=8", "K/R=2"]


def test_bound_vs_count_on_given_axes_and_errors():
    fig, ax = plt.subplots()
    disp = BoundVsCountDisplay.from_report(_report()).plot(ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    with pytest.raises(RedundancyError, match="by="):
        BoundVsCountDisplay.from_report(_report(), by="layer-ish")
    with pytest.raises(RedundancyError, match="no layer"):
        BoundVsCountDisplay.from_report(_Report(layers=[_Row("x", None, None, None, 1.0)]))


def test_bound_vs_count_with_eps_uses_sample_complexity():
    bounds = pytest.importorskip("redundancy.linear.bounds")
    disp = BoundVsCountDisplay.from_report(_report(), eps=0.5, sigma=2.0).plot()
    naive, dof = disp.ax_.get_lines()
    expect = bounds.sample_complexity(100, 0.5, 2.0, naive=400)
    assert dof.get_ydata()[0] == pytest.approx(expect.n)
    assert naive.get_ydata()[0] == pytest.approx(expect.n_naive)
    assert "ε=0.5" in disp.ax_.get_ylabel()


@dataclass
class _Curve:
    n_grid: np.ndarray
    errors: np.ndarray
    dof: int = 10
    naive: int = 40
    sigma: float = 2.0
    slope: float = -0.5
    slope_ci: tuple = (-0.6, -0.4)
    constant_dof: float = 0.5
    constant_naive: float = 0.25
    label: str = "tucker"


def _curve(label="tucker", reps=3):
    n = np.array([20.0, 40, 80, 160])
    err = np.sqrt(10 / n)[:, None] * np.linspace(0.9, 1.1, reps)[None, :]
    return _Curve(n, err, label=label)


def test_error_curve_display_lines_and_scales():
    disp = ErrorCurveDisplay.from_result([_curve("a"), _curve("b")]).plot()
    ax = disp.ax_
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "sample size n"
    # per result: median line + dof reference + naive reference
    assert len(ax.get_lines()) == 6
    n = np.array([20.0, 40, 80, 160])
    rms = np.sqrt(10 / n) * np.sqrt(np.mean(np.linspace(0.9, 1.1, 3) ** 2))
    med = disp.lines_[0]
    np.testing.assert_allclose(med.get_ydata(), rms)
    assert len(med.get_xdata()) == 4
    dof_ref, naive_ref = ax.get_lines()[1:3]         # c * sigma * sqrt(d / n)
    np.testing.assert_allclose(dof_ref.get_ydata(), 0.5 * 2.0 * np.sqrt(10 / n))
    np.testing.assert_allclose(naive_ref.get_ydata(), 0.25 * 2.0 * np.sqrt(40 / n))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "a (slope -0.50, CI [-0.60, -0.40])"
    assert len(ax.collections) == 2          # one spread band per result


def test_error_curve_single_result_no_refs_and_bad_shape():
    disp = ErrorCurveDisplay.from_result(_curve(reps=1)).plot(references=False)
    assert len(disp.ax_.get_lines()) == 1 and len(disp.ax_.collections) == 0
    bad = _Curve(np.array([1.0, 2.0]), np.ones((3, 2)))
    with pytest.raises(RedundancyError, match="errors must have shape"):
        ErrorCurveDisplay.from_result(bad)


def _Roi():
    """A RoiResult with round numbers (latency without per-repeat ratios: the quartile-extreme rule)."""
    from redundancy.analysis.roi import RoiData, RoiDesign, RoiMoney, RoiResult
    from redundancy.analysis.latency import LatencyPoint

    lat = LatencyPoint(batch_size=1, original_median_s=1.0, original_q25_s=0.9, original_q75_s=1.1,
                       compressed_median_s=2.0, compressed_q25_s=1.8, compressed_q75_s=2.2)
    return RoiResult(
        input_shape=(3,), batch_sizes=(1,), repeats=1, warmup=0, seed=0,
        design=RoiDesign(dtype="float32", params_original=1000, params_compressed=250, macs_original=10_000,
                         macs_compressed=5000, bytes_original=4000, bytes_compressed=1000),
        data=RoiData(eps=0.1, sigma=1.0, dof_original=4, dof_compressed=1, naive_original=10, naive_compressed=3,
                     dof_source="given", n_original=400, n_compressed=100, n_naive_original=1000,
                     n_naive_compressed=250),
        money=RoiMoney(data_cost_original=40.0, data_cost_compressed=10.0, serving_cost_per_month_original=1.0,
                       serving_cost_per_month_compressed=2.0, break_even_months=30.0,
                       cheaper_after_break_even="original"),
        latency=(lat,))


def test_roi_display_ratios():
    disp = RoiDisplay.from_result(_Roi()).plot()
    heights = [b.get_height() for b in disp.bars_]
    np.testing.assert_allclose(heights, [0.25, 0.5, 0.25, 0.25, 0.25, 2.0])
    assert [t.get_text() for t in disp.ax_.get_xticklabels()][-1] == "latency b=1"
    assert disp.ax_.get_ylabel() == "compressed / original"


def test_roi_display_cost_with_break_even():
    disp = RoiDisplay.from_result(_Roi()).plot(kind="cost")
    lines = disp.ax_.get_lines()
    assert len(lines) == 3                            # two designs + break-even line
    assert lines[0].get_xdata()[-1] == pytest.approx(60.0)   # horizon is twice the break-even
    co, cc = lines[0].get_ydata(), lines[1].get_ydata()
    i = np.argmin(np.abs(lines[0].get_xdata() - 30.0))
    assert co[i] == pytest.approx(cc[i])             # the curves cross at the break-even
    with pytest.raises(RedundancyError, match="kind="):
        RoiDisplay.from_result(_Roi()).plot(kind="pie")
    with pytest.raises(RedundancyError, match="not a RoiResult"):
        RoiDisplay.from_result(object())


def test_error_curve_display_on_a_real_error_curve():
    validate = pytest.importorskip("redundancy.validation.validate")
    from redundancy.validation.simulate import Design

    res = validate.error_curve(Design(input_shape=(8,), kernel=2, K=2, structure="cp", rank=1), [40, 160], n_reps=2,
                               sigma=0.5, progress=False)
    disp = ErrorCurveDisplay.from_result(res).plot()
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), res.rms_errors)
    dof_ref = disp.ax_.get_lines()[1]
    np.testing.assert_allclose(dof_ref.get_ydata(),
                               res.constant_dof * res.sigma * np.sqrt(res.dof / np.asarray(res.n_grid)))


def test_bound_vs_count_on_a_real_report():
    report_mod = pytest.importorskip("redundancy.analysis.report")
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 4, 1, bias=False), nn.Conv2d(4, 4, 3, padding=1, bias=False),
                        nn.Conv2d(4, 16, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 16, 3))
    rep = report_mod.analyze(net, (16, 4, 4))
    disp = BoundVsCountDisplay.from_report(rep).plot()
    naive, dof = disp.ax_.get_lines()
    segs = [s for s in rep.segments if s.dof is not None]
    assert len(naive.get_xdata()) == len(segs) == 2
    np.testing.assert_array_equal(dof.get_ydata(), [s.dof for s in segs])
    np.testing.assert_array_equal(naive.get_ydata(), [s.naive for s in segs])
    assert dof.get_ydata()[0] < naive.get_ydata()[0]          # the 1x1 -> 3x3 -> 1x1 chain is redundant
    assert "K/R=4" in [t.get_text() for t in disp.ax_.texts]


def test_bound_vs_count_many_segments_short_labels_and_wide_figure():
    rows = [_Row(f"features.{i}.conv.0.long_module_name", i, 10 + i, 20 + i, 2.0) for i in range(20)]
    disp = BoundVsCountDisplay.from_report(_Report(layers=rows)).plot()
    labels = [t.get_text() for t in disp.ax_.get_xticklabels()]
    assert len(labels) == 20 and all(len(lab) <= 22 for lab in labels) and labels[0].startswith("…")
    assert disp.ax_.get_xticklabels()[0].get_rotation() == 90
    assert disp.figure_.get_figwidth() >= 0.28 * 20 - 1e-9
    assert len(disp.ax_.texts) == 20


def test_bound_vs_count_refuses_a_dof_too_large_for_float():
    # before: float(10**400) escaped as a raw OverflowError from the Display
    from types import SimpleNamespace as NS

    from redundancy.errors import RedundancyError
    from redundancy.plotting import BoundVsCountDisplay

    row = NS(segment=0, name="a", kr_ratio=2.0, segment_dof=10 ** 400, segment_naive=10 ** 401)
    rep = NS(model_name="m", layers=[row], segments=None, summary=None)
    with pytest.raises(RedundancyError, match="too large"):
        BoundVsCountDisplay.from_report(rep)
    with pytest.raises(RedundancyError, match="too large"):
        BoundVsCountDisplay.from_report(rep, eps=0.1)


def test_displays_refuse_string_ax_and_survive_zero_originals():
    import dataclasses

    from redundancy.analysis.roi import estimate_roi
    from redundancy.plotting import RoiDisplay

    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    roi = estimate_roi(a, a, (1, 6), measure=False, dof=(4, 4), naive=(12, 12))
    with pytest.raises(RedundancyError, match="Axes"):
        RoiDisplay.from_result(roi).plot(ax="abc")
    zero = dataclasses.replace(roi, data=dataclasses.replace(roi.data, n_original=0, n_naive_original=0))
    labels, vals, _ = RoiDisplay.from_result(zero).ratios()
    assert np.isfinite(vals).all() and "original 0" in labels[3]
