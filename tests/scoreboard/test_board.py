"""Scoreboard: every score checked against an independent computation, a planted redundant layer
found by every score that can see it, companion results reused (test doubles implementing the
companion interface; the real methods are exercised when their packages are present)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.scoreboard import SCORES, scoreboard
from redundancy.scoreboard import board as board_mod
from redundancy.scoreboard.channel_scores import l1_importance, participation_redundancy, taylor_importance
from redundancy.scoreboard.correlation import consensus, correlation_matrix, rank_normalise, reference_table


# ----------------------------------------------------------------------------- planted models
def _orth(rows, cols, rng):
    """Orthonormal rows (or columns): full rank, every singular value 1, distinct filters."""
    q, _ = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
    return q if rows >= cols else q.T


def _set(layer, mat):
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(mat, dtype=torch.float32).reshape(layer.weight.shape))


PLANTED = "5"


def planted_model(planted: bool, seed: int = 0) -> nn.Module:
    """Conv net whose layers all have orthonormal-row kernels (full rank, no bottleneck, no dead or
    duplicated filter: 'no redundancy'); with ``planted`` a 1x1 squeeze to 2 channels feeds layer
    ``5`` (K = 16, R = 2: K/R = 8) whose 16 filters are 4 copies of one filter and 12 zero filters
    (exactly rank 1)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    mid = ([nn.Conv2d(16, 2, 1), nn.Conv2d(2, 16, 1, bias=False), nn.ReLU()] if planted
           else [nn.Conv2d(16, 16, 1), nn.ReLU()])
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        *mid, nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(16, 10))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            _set(m, _orth(m.weight.shape[0], m.weight[0].numel(), rng))
    if planted:
        w = np.zeros((16, 2))
        f = rng.normal(size=2)
        w[:4] = f / np.linalg.norm(f)
        _set(net[5], w)
    return net


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 8, 8)).astype("float32"), rng.integers(0, 10, n)


@pytest.fixture(scope="module")
def boards():
    data = _data()
    return {p: scoreboard(planted_model(p), data, seed=0) for p in (True, False)}


# the scores that can see a planted layer of this kind (EVBMF cannot: see the test below)
SEES = ("dof", "kr_segment", "numerical", "energy", "l1", "taylor")


def test_planted_layer_is_most_redundant_for_every_score_that_sees_it(boards):
    t = boards[True].table.set_index("layer")
    for s in SEES:
        col = t[s]
        assert col.idxmax() == PLANTED or col[PLANTED] == col.max(), (s, col.to_dict())
        others = col.drop(PLANTED)
        if s != "dof":  # a segment score is shared by the two layers of the planted segment
            assert col[PLANTED] > others.max(), (s, col.to_dict())
    assert t["consensus"].idxmax() == PLANTED and t["consensus_rank"].idxmax() == PLANTED
    # exact values, worked out by hand: rank 1 of min(16, 2); 12 of 16 channels dead
    assert t.loc[PLANTED, "numerical"] == 0.5 and t.loc[PLANTED, "energy"] == 0.5
    assert t.loc[PLANTED, "kr_segment"] == pytest.approx(1 - 2 / 16)
    # segment 16 -> 2 -> 16 of 1x1 convs: W is a rank-2 16x16 matrix: dof 2(16 + 16 - 2) = 60, naive 64
    assert t.loc[PLANTED, "dof"] == pytest.approx(1 - 60 / 64)
    assert t.loc[PLANTED, "l1"] == pytest.approx(1 - 4 / 16)


def test_model_without_redundancy_scores_below_the_planted_layer_everywhere(boards):
    clean = boards[False].table.set_index("layer")
    planted = boards[True].table.set_index("layer")
    for s in ("dof", "kr_segment", "numerical"):
        assert (clean[s] == 0).all(), s          # exact scores: nothing at all
    for s in ("energy", "l1", "taylor"):
        assert clean[s].max() < planted.loc[PLANTED, s], s
    # flat spectrum: the energy rank is ceil(0.9 * n) of n
    full = {"0": 8, "2": 16, "4": 16, "6": 16, "10": 10}
    for layer, n in full.items():
        assert clean.loc[layer, "energy"] == pytest.approx(1 - math.ceil(0.9 * n - 1e-9) / n)
    # no dead channel anywhere in the clean model; the 12 planted dead channels score exactly 0
    assert (boards[False].channels["taylor"] > 0).all()
    ch = boards[True].channels
    dead = ch[(ch.layer == PLANTED) & (ch.channel >= 4)]
    assert (dead["taylor"] == 0).all() and (dead["l1"] == 0).all()


def test_evbmf_finds_the_planted_rank_but_reads_flat_full_rank_kernels_as_noise(boards):
    """EVBMF estimates the noise variance: a noise-free kernel with a flat spectrum is explained
    as all noise (rank 0), so it cannot single out an exactly low-rank layer among such kernels.
    A rank-0 reading is not a redundancy of 1 (issue 24): the score is left out of the consensus
    with the reason. It does recover the planted rank 1 (redundancy 1/2)."""
    t = boards[True].table.set_index("layer")
    assert t.loc[PLANTED, "evbmf"] == 0.5
    flat = boards[False]
    assert "evbmf" not in flat.table or flat.table["evbmf"].isna().all()
    assert "as noise" in flat.skipped.get("evbmf", "") + flat.notes.get("evbmf", "")


def test_block_kr_on_a_bottleneck_resnet():
    from redundancy import zoo

    net = zoo.bottleneck_resnet(kr=4, layers=(1,), widths=(8,), stem_width=32)
    sb = scoreboard(net, input_shape=(3, 8, 8), scores=["kr_block"])
    t = sb.table.set_index("layer")
    in_block = t["block"].notna()
    assert in_block.any() and np.allclose(t.loc[in_block, "kr_block"], 1 - 1 / 4)
    assert t.loc[~in_block, "kr_block"].isna().all()


# ----------------------------------------------------------------------------- single scores
def test_kernel_scores_match_numpy_ranks():
    rng = np.random.default_rng(1)
    net = nn.Sequential(nn.Conv2d(3, 12, 3), nn.ReLU(), nn.Conv2d(12, 6, 3, groups=3))
    w = rng.normal(size=(12, 3)) @ rng.normal(size=(3, 27))          # rank 3 of 12
    _set(net[0], w)
    sb = scoreboard(net, input_shape=(3, 9, 9), scores=["numerical", "energy", "evbmf", "l1"])
    t = sb.table.set_index("layer")
    assert t.loc["0", "numerical"] == pytest.approx(1 - np.linalg.matrix_rank(w) / 12)
    # an exactly rank-3 float32 kernel: EVBMF keeps 3 (float32 rounding is not read as signal)
    assert t.loc["0", "evbmf"] == pytest.approx(1 - 3 / 12)
    s = np.linalg.svd(w, compute_uv=False)
    r90 = next(r for r in range(1, 13) if np.sum(s[:r] ** 2) >= 0.9 * np.sum(s ** 2))
    assert t.loc["0", "energy"] == pytest.approx(1 - r90 / 12)
    # grouped conv: 3 blocks of (2, 4*9), each full rank 2: nothing redundant
    assert t.loc["2", "numerical"] == 0.0
    w2 = net[2].weight.detach().double().numpy().reshape(6, -1)
    assert np.allclose(l1_importance(net, ["2"])["2"], np.abs(w2).sum(1))


def test_participation_redundancy_exact():
    assert participation_redundancy([1, 1, 1, 1]) == 0.0
    assert participation_redundancy([3, 3, 0, 0, 0, 0]) == pytest.approx(1 - 2 / 6)
    assert participation_redundancy([0, 0]) == 1.0
    a = np.array([1.0, 2.0, 5.0])
    assert participation_redundancy(a) == pytest.approx(1 - a.sum() ** 2 / (3 * (a ** 2).sum()))
    with pytest.raises(RedundancyError):
        participation_redundancy([np.nan])


def test_taylor_matches_per_example_autograd_of_the_split_model():
    torch.manual_seed(0)
    head = nn.Sequential(nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5))
    tail = nn.Sequential(nn.ReLU(), nn.Conv2d(5, 4, 3), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    head[1].running_mean.normal_(); head[1].running_var.uniform_(0.5, 2)
    net = nn.Sequential(*head, *tail)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(13, 2, 6, 6)).astype("float32")
    y = rng.integers(0, 3, 13)
    net.train()
    got = taylor_importance(net, (X, y), ["1", "3"], batch_size=4)
    assert net.training and net[1].training            # the caller's mode is restored
    net.eval()
    want1, want3 = np.zeros(5), np.zeros(4)
    for i in range(13):                            # one example at a time, activations by hand
        a1 = head(torch.as_tensor(X[i:i + 1])).detach().requires_grad_(True)
        h = tail[0](a1)
        a3 = tail[1](h)
        out = tail[3](tail[2](a3))
        loss = nn.functional.cross_entropy(out, torch.as_tensor(y[i:i + 1]))
        g1, g3 = torch.autograd.grad(loss, [a1, a3])
        want1 += (a1 * g1).mean((2, 3)).abs()[0].detach().numpy() / 13
        want3 += (a3 * g3).mean((2, 3)).abs()[0].detach().numpy() / 13
    assert np.allclose(got["1"], want1, rtol=1e-4, atol=1e-8)
    assert np.allclose(got["3"], want3, rtol=1e-4, atol=1e-8)


def test_taylor_is_seeded_and_subsamples():
    net = planted_model(False)
    data = _data(200)
    a = taylor_importance(net, data, ["0"], n_examples=50, seed=3)["0"]
    b = taylor_importance(net, data, ["0"], n_examples=50, seed=3)["0"]
    c = taylor_importance(net, data, ["0"], n_examples=50, seed=4)["0"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ----------------------------------------------------------------------------- correlations
def test_rank_normalise_correlations_and_consensus_against_pandas():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(9, 3)), columns=list("abc"))
    df.iloc[2, 1] = np.nan
    assert np.allclose(correlation_matrix(df, "spearman"), df.corr(method="spearman"), equal_nan=True)
    assert np.allclose(correlation_matrix(df, "kendall"), df.corr(method="kendall"), equal_nan=True)
    rn = rank_normalise(df)
    assert np.allclose(rn["a"], (df["a"].rank() - 1) / 8)
    c = consensus(df)
    assert np.allclose(c["consensus"], df.mean(axis=1))
    assert np.allclose(c["spread"], df.std(axis=1, ddof=0))
    assert np.allclose(c["consensus_rank"], rn.mean(axis=1))
    ref = reference_table(df, "a")
    assert list(ref["score"]) == sorted(["b", "c"], key=lambda s: -stats.spearmanr(df[s], df["a"],
                                                                                    nan_policy="omit")[0])
    # constant or too few entries: undefined, not a number made up
    assert np.isnan(correlation_matrix(pd.DataFrame({"x": [1.0, 1, 1], "y": [1.0, 2, 3]})).loc["x", "y"])


# ----------------------------------------------------------------------------- companion results
class _Result:
    """A test double implementing the companion interface (layer_table / channel_table)."""

    def __init__(self, layer_red, channel_imp=None, pip=False):
        self.layer_red, self.channel_imp, self.pip = layer_red, channel_imp, pip
        self.calls = 0
        if channel_imp is None:  # a method that scores layers only has no channel_table
            self.channel_table = None

    def layer_table(self):
        self.calls += 1
        return pd.DataFrame({"layer": list(self.layer_red), "redundancy": list(self.layer_red.values())})

    def channel_table(self):
        rows = [{"layer": l, "channel": c, "importance": v} for l, imp in self.channel_imp.items()
                for c, v in enumerate(imp)]
        return pd.DataFrame(rows)


def test_companion_results_are_reused_and_merged(monkeypatch):
    net = planted_model(True)
    layers = ["0", "2", "4", "5", "7", "11"]
    car = _Result({l: 0.1 * i for i, l in enumerate(layers)},
                  {"5": [1.0] * 4 + [0.0] * 12, "7": list(np.linspace(0, 1, 16))})
    pip = _Result({}, {"5": [0.9] * 4 + [0.1] * 12, "7": [0.8] * 12 + [0.2] * 4})
    searched = _Result({"5": 0.5, "7": 0.25, "not_a_layer": 0.3})

    def boom(*a, **k):
        raise AssertionError("a passed result was computed again")

    monkeypatch.setattr(board_mod, "_compute_companion", boom)
    sb = scoreboard(net, _data(), results={"car": car, "pip": pip, "searched": searched},
                    scores=["numerical", "l1", "car", "pip", "searched"])
    t = sb.table.set_index("layer")
    assert np.allclose(t["car"].values, [0.1 * i for i in range(6)])
    assert t.loc["5", "pip"] == pytest.approx(12 / 16) and t.loc["7", "pip"] == pytest.approx(4 / 16)
    assert np.isnan(t.loc["0", "pip"]) and t.loc["5", "searched"] == 0.5
    assert json.loads(sb.to_json())["layers"][0]["pip"] is None   # NaN -> null, never NaN in JSON
    assert "not_a_layer" in sb.notes["searched"]
    assert car.calls == 1 and sb.results["car"] is car
    # CAR is the reference: the table ranks the other scores by their agreement with it
    assert set(sb.reference["score"]) == {"numerical", "l1", "pip", "searched"}
    want = stats.spearmanr(t["numerical"], t["car"])[0]
    assert sb.reference.set_index("score").loc["numerical", "spearman"] == pytest.approx(want)
    ch = sb.channels.set_index(["layer", "channel"])
    assert ch.loc[("5", 0), "car"] == 1.0 and ch.loc[("7", 15), "pip"] == 0.2
    assert sb.channel_reference is not None and "l1" in set(sb.channel_reference["score"])


def test_a_companion_score_asked_and_not_given_is_computed_once(monkeypatch):
    """``scores=["car"]`` without a result runs ``redundancy.pruning.car_scores`` (here a stand-in
    module implementing its signature), once, and keeps its result for reuse."""
    import sys
    import types

    calls = []

    def car_scores(model, data, layers=None, *, metric="accuracy", classwise=False):
        calls.append((model, metric))
        return _Result({"5": 0.9, "7": 0.1, "0": 0.2})

    fake = types.ModuleType("redundancy.pruning")
    fake.car_scores = car_scores
    monkeypatch.setitem(sys.modules, "redundancy.pruning", fake)
    net = planted_model(True)
    sb = scoreboard(net, _data(), scores=["numerical", "car"])
    assert len(calls) == 1 and calls[0][0] is net
    assert sb.table.set_index("layer").loc["5", "car"] == 0.9 and "car" in sb.results
    assert sb.reference["score"].tolist() == ["numerical"]
    sb2 = scoreboard(net, _data(), scores=["car"], results=sb.results)     # reused: no second call
    assert len(calls) == 1 and sb2.results["car"] is sb.results["car"]


def test_a_companion_that_refuses_the_model_is_skipped_with_its_reason(monkeypatch):
    import sys
    import types

    def fit_spike_slab(model, data, *, epochs=50, seed=0):
        raise RedundancyError("layer 1 (BatchNorm2d) cannot be converted")

    fake = types.ModuleType("redundancy.bayes")
    fake.fit_spike_slab = fit_spike_slab
    monkeypatch.setitem(sys.modules, "redundancy.bayes", fake)
    sb = scoreboard(planted_model(False), _data(), scores=["numerical", "pip"])
    assert sb.scores == ("numerical",) and "cannot be converted" in sb.skipped["pip"]


def test_scores_asked_without_data_or_method_are_skipped_with_a_reason():
    sb = scoreboard(planted_model(False), input_shape=(1, 8, 8), scores=["numerical", "taylor", "car", "pip"])
    assert sb.scores == ("numerical",)
    assert "needs data" in sb.skipped["taylor"]
    for s in ("car", "pip"):
        assert "needs data" in sb.skipped[s] or "not installed" in sb.skipped[s]


def test_bad_input_is_refused():
    net = planted_model(False)
    with pytest.raises(RedundancyError, match="input_shape"):
        scoreboard(net)
    with pytest.raises(RedundancyError, match="scores"):
        scoreboard(net, input_shape=(1, 8, 8), scores=["nope"])
    with pytest.raises(RedundancyError, match="scores"):
        scoreboard(net, input_shape=(1, 8, 8), scores=[])
    with pytest.raises(RedundancyError, match="scores"):
        scoreboard(net, input_shape=(1, 8, 8), scores=3)
    with pytest.raises(RedundancyError, match="seed"):
        scoreboard(net, input_shape=(1, 8, 8), seed=-1)
    with pytest.raises(RedundancyError, match="not modules"):
        taylor_importance(net, _data(), ["nope"])
    with pytest.raises(RedundancyError, match="results"):
        scoreboard(net, input_shape=(1, 8, 8), results={"nope": 1})
    with pytest.raises(RedundancyError, match="inf"):
        scoreboard(net, input_shape=(1, 8, 8), results={"car": _Result({"0": float("inf")})}, scores=["car"])
    # a layer the method did not score (NaN) is simply not on the board
    sb = scoreboard(net, input_shape=(1, 8, 8), results={"car": _Result({"0": float("nan"), "2": 0.5})},
                    scores=["car"])
    assert np.isnan(sb.table.set_index("layer").loc["0", "car"]) and sb.table.set_index("layer").loc["2", "car"] == 0.5
    with pytest.raises(RedundancyError, match=r"\[0, 1\]"):
        scoreboard(net, input_shape=(1, 8, 8), results={"searched": _Result({"0": 3.0})}, scores=["searched"])
    with pytest.raises(RedundancyError, match="layer_table"):
        scoreboard(net, input_shape=(1, 8, 8), results={"searched": object()}, scores=["searched"])


def test_to_dict_json_and_definitions(boards, tmp_path):
    sb = boards[True]
    d = json.loads(sb.to_json(tmp_path / "sb.json"))
    assert d["scores"] == list(sb.scores) and len(d["layers"]) == len(sb.table)
    assert "kr_block" not in d["scores"] and "no detected block" in d["skipped"]["kr_block"]
    assert set(d["definitions"]) == set(sb.scores)
    assert all(SCORES[s].formula for s in SCORES)
    assert 0 < d["redundant_fraction"] < 1
    assert "Scoreboard(" in repr(sb) and len(repr(sb)) < 400


# ----------------------------------------------------------------------------- the real companions
def test_real_car_on_the_scoreboard():
    pruning = pytest.importorskip("redundancy.pruning", exc_type=ImportError)
    net, data = planted_model(True), _data()
    car = pruning.car_scores(net, data)
    sb = scoreboard(net, data, results={"car": car})
    assert "car" in sb.scores and sb.reference is not None and sb.results["car"] is car
    scored = sb.table["car"].dropna()
    assert len(scored) >= 3 and scored.between(0, 1).all() and "car" not in sb.notes
    assert "car" in sb.channels.columns


def test_real_rank_search_on_the_scoreboard():
    search = pytest.importorskip("redundancy.rank_search.search", exc_type=ImportError)
    net = planted_model(True)
    res = search.search_ranks(net, data=_data(), seed=0)
    sb = scoreboard(net, _data(), results={"searched": res})
    assert sb.table["searched"].dropna().between(0, 1).all()


def test_real_spike_slab_on_the_scoreboard():
    bayes = pytest.importorskip("redundancy.bayes", exc_type=ImportError)
    net, data = planted_model(True), _data(32)
    res = bayes.fit_spike_slab(net, data, epochs=1, seed=0, n_samples=4)
    sb = scoreboard(net, data, results={"pip": res}, scores=["numerical", "pip"])
    pip = sb.table.set_index("layer")["pip"].dropna()
    want = res.channel_table().assign(low=lambda d: d.importance < 0.5).groupby("layer")["low"].mean()
    assert len(pip) >= 1 and np.allclose(pip, want.loc[pip.index])
    assert sb.results["pip"] is res and "pip" not in sb.notes          # every layer name matched
