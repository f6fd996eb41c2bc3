"""The audit's listed examples (issue 12), each checked against an independent computation or the
exact message class: no raw exception, no NaN/inf, no hang, no silent wrong number."""

import numpy as np
import pytest
import torch
from torch import nn

import redundancy as R
from redundancy.errors import CheckpointError, NotLinearError, RankError, RedundancyError


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        x = x.flatten(1)
        return self.l(x) if x.sum() > 0 else -self.l(x)


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.l(x.flatten(1))


def test_one_layer_model_macs_match_the_formula():
    # nn.Conv2d(1, 2, 3) on 1x5x5: 2 * 3 * 3 outputs, each 1 * 3 * 3 MACs
    rep = R.analyze(nn.Conv2d(1, 2, 3), (1, 5, 5))
    assert rep.summary.macs == 2 * 3 * 3 * 9 == R.count_macs(nn.Conv2d(1, 2, 3), (1, 5, 5))[""]


def test_data_dependent_branch_fails_the_affinity_check():
    with pytest.raises(NotLinearError):
        R.whole_network_tensor(Branchy(), (1, 6))


def test_lazy_and_meta_models_are_refused_not_initialised():
    lazy = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(RedundancyError, match="lazy"):
        R.whole_network_tensor(lazy, (1, 6))
    assert isinstance(lazy[1].weight, nn.parameter.UninitializedParameter)  # untouched
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(RedundancyError, match="meta"):
        R.whole_network_tensor(meta, (1, 6))
    assert R.count_macs(meta, (1, 6)) == {"0": 24, "2": 16}   # shapes alone are enough to count


@pytest.mark.parametrize("ranks,spatial", [((0, 2), None), ((-1, 2), None), ((True, 2), None), ((2, 2), (1,))])
def test_linear_cnn_rejects_bad_ranks_at_construction(ranks, spatial):
    from redundancy.linear.spec import LinearCNN, TuckerConv

    with pytest.raises(RankError):
        LinearCNN((2, 6, 6), [TuckerConv(4, 3, ranks=ranks, spatial_ranks=spatial)])


def test_nan_weights_inputs_and_checkpoints_are_refused(tmp_path):
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    res = R.whole_network_tensor(net, (1, 6))
    with pytest.raises(RedundancyError, match="NaN"):
        res.apply(np.full((1, 6), np.nan))
    path = tmp_path / "nan.pt"
    torch.save({k: torch.full_like(v, float("nan")) for k, v in net.state_dict().items()}, path)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match="NaN"):
        R.load_weights(net, path)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():
        net[0].weight[0, 0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="NaN"):
        R.whole_network_tensor(net, (1, 6))
    from redundancy.linear.statmodel import BasicCNN

    with pytest.raises(RedundancyError, match="NaN"):
        BasicCNN((6,), 3, 2).patch_tensor(np.full((2, 6), np.nan))


def test_bounds_refuse_overflow_and_keep_exact_values():
    with pytest.raises(RedundancyError, match="overflow"):
        R.error_bound(10, 1, log_factor=1e308, constant=1e308)
    with pytest.raises(RedundancyError, match="overflow"):
        R.sample_complexity(1, 1e-300)
    # exact rational arithmetic as the oracle
    from fractions import Fraction
    import math

    res = R.sample_complexity(80, 0.3, 0.7, constant=2.5, log_factor=1.3)
    assert res.n == math.ceil(Fraction(2.5) * Fraction(0.7) ** 2 * 80 * Fraction(1.3) / Fraction(0.3) ** 2)
    assert "n=0" in repr(R.sample_complexity(5, 0.1, 0.0, naive=7))   # sigma=0: n = 0, ratio None


def test_counts_and_shapes_are_bounded_with_the_limit_stated():
    with pytest.raises(RedundancyError, match="limit"):
        R.count_macs(nn.Linear(2, 2), (10 ** 12,))
    with pytest.raises(RedundancyError, match="1000"):
        R.cp_decompose(np.random.default_rng(0).normal(size=(3, 4)), 1, n_restarts=2 ** 64)
    with pytest.raises(RedundancyError, match="10000"):
        from redundancy.analysis.latency import measure_latency

        measure_latency([nn.Linear(2, 2)], (2,), repeats=10 ** 12)
    with pytest.raises(RedundancyError, match="256"):
        R.zoo.resnet20(blocks_per_stage=10 ** 12)


@pytest.mark.parametrize("bad", [np.array(3), torch.tensor([6]), "abc", 10 ** 400, (1.5,)])
def test_odd_shapes_are_clear_errors(bad):
    with pytest.raises(RedundancyError):
        R.count_macs(nn.Linear(6, 2), bad)


@pytest.mark.parametrize("seed", [None, float("nan"), 2 ** 64, "abc"])
def test_whole_network_tensor_seed_and_at(seed):
    with pytest.raises(RedundancyError, match="seed"):
        R.whole_network_tensor(nn.Linear(3, 1), (3,), seed=seed)
    with pytest.raises(RedundancyError, match="at"):
        R.whole_network_tensor(nn.Linear(3, 1), (3,), at="abc")


def test_options_are_checked_up_front():
    with pytest.raises(RedundancyError, match="n_iter"):
        R.compress(nn.Conv2d(3, 4, 3), (2, 2), n_iter=5)
    with pytest.raises(RedundancyError, match="fraction"):
        R.rank_rule("fraction")


def test_load_weights_text_file_and_int_keys(tmp_path):
    text = tmp_path / "w.pt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not a readable"):
        R.load_weights(nn.Linear(2, 2), text)
    ints = tmp_path / "i.pt"
    torch.save({1: torch.zeros(2)}, ints)
    with pytest.raises(CheckpointError, match="strings"):
        R.load_weights(nn.Linear(2, 2), ints)


def test_evbmf_is_scale_equivariant():
    V = np.random.default_rng(0).normal(size=(12, 3)) @ np.random.default_rng(1).normal(size=(3, 10))
    V = V + 0.05 * np.random.default_rng(2).normal(size=V.shape)
    ref = R.evbmf(V)
    for s in (1e-100, 1e100):
        out = R.evbmf(V * s)
        assert out.rank == ref.rank
        np.testing.assert_allclose(out.sigma2 / s ** 2, ref.sigma2, rtol=1e-6)
    for s in (1e-200, 1e200):
        with pytest.raises(RedundancyError, match="float64"):
            R.evbmf(V * s)


def test_decompositions_after_tensorly_pytorch_backend():
    import tensorly as tl

    t = np.random.default_rng(0).normal(size=(3, 4, 5))
    ref = R.cp_decompose(t, 2).rel_error
    tl.set_backend("pytorch")
    try:
        assert R.cp_decompose(t, 2).rel_error == pytest.approx(ref)
        assert R.compress(nn.Conv2d(3, 4, 3).double(), 2, method="cp").layers[0].rel_error >= 0
    finally:
        tl.set_backend("numpy")


def test_cp_at_extreme_scales_reports_the_unit_scale_error():
    t = np.random.default_rng(0).normal(size=(3, 4, 5))
    ref = R.cp_decompose(t, 2).rel_error
    for s in (1e-200, 1e200):
        assert R.cp_decompose(t * s, 2).rel_error == pytest.approx(ref, rel=1e-6)


def test_forward_errors_are_wrapped_and_fx_prints_nothing(capfd):
    class KeyErrorNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(6, 2)

        def forward(self, x):
            raise KeyError("missing")

    with pytest.raises(RedundancyError, match="KeyError"):
        R.whole_network_tensor(KeyErrorNet(), (6,))
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(RedundancyError, match="input_shape"):
        R.analyze(net, (1, 7))
    assert "Traceback" not in capfd.readouterr().err


def test_counting_and_analysis_leave_the_callers_buffers_alone():
    m = Counter()
    R.count_macs(m, (1, 6))
    R.analyze(m, (1, 6))
    R.estimate_roi(m, Counter(), (1, 6), measure=False, dof=(4, 4), naive=(12, 12))
    assert float(m.calls) == 0
