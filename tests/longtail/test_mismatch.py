"""mismatch_report and tail_flip_rates against direct computations (sklearn AUC, exact hypergeometric)."""

import numpy as np
import pytest
import torch
from scipy.stats import hypergeom
from sklearn.metrics import roc_auc_score
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail import estimate_memorization, mismatch_report, tail_flip_rates
from redundancy.longtail.mismatch import as_scores, bin_edges


def _fixed(pred, n_classes):
    """A model that outputs class pred[j] on the one-hot input e_j."""
    lin = nn.Linear(len(pred), n_classes, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[torch.as_tensor(pred), torch.arange(len(pred))] = 1.0
    return lin


def _setup(rng, n=60, k=3):
    X = np.eye(n, dtype=np.float32)
    y = rng.integers(0, k, n)
    ref = rng.integers(0, k, n)
    ref[: n // 2] = y[: n // 2]  # the reference is right on half
    cmps = {}
    for name, p in (("a", 0.2), ("b", 0.5)):
        c = ref.copy()
        flip = rng.random(n) < p
        c[flip] = (c[flip] + 1 + rng.integers(0, k - 1, flip.sum())) % k
        cmps[name] = c
    return X, y, ref, cmps


def test_rates_and_per_class_match_direct(rng):
    X, y, ref, cmps = _setup(rng)
    rep = mismatch_report(_fixed(ref, 3), {k: _fixed(v, 3) for k, v in cmps.items()}, (X, y))
    assert rep.models == ("a", "b") and len(rep.to_pandas()) == 2
    assert rep.reference_accuracy == pytest.approx(np.mean(ref == y))
    for i, (name, c) in enumerate(cmps.items()):
        row = rep.rows[i]
        mis = ref != c
        assert row["flip_rate"] == pytest.approx(mis.mean()) and row["agreement"] == pytest.approx(1 - mis.mean())
        assert row["ref_correct_to_wrong"] == pytest.approx(np.mean((ref == y) & (c != y)))
        assert row["ref_wrong_to_correct"] == pytest.approx(np.mean((ref != y) & (c == y)))
        assert row["both_wrong_differ"] == pytest.approx(np.mean((ref != y) & (c != y) & mis))
        for cls in range(3):
            assert rep.per_class[i, cls] == pytest.approx(mis[y == cls].mean())
        np.testing.assert_array_equal(rep.mismatches[name], mis)
    assert len(rep.class_table()) == 6 and rep.to_dict()["n"] == 60


def test_auc_enrichment_bins_against_direct(rng):
    X, y, ref, cmps = _setup(rng, n=80)
    mis = ref != cmps["b"]
    score = np.round(mis + rng.normal(0, 0.8, 80), 1)  # ties on purpose
    rep = mismatch_report(_fixed(ref, 3), {"b": _fixed(cmps["b"], 3)}, (X, y), scores={"s": score},
                          n_bins=4, top_fraction=0.2, n_permutations=500)
    r = rep.score_rows[0]
    assert r["auc"] == pytest.approx(roc_auc_score(mis, score))
    top = np.argsort(-score, kind="stable")[:16]
    rest = np.setdiff1d(np.arange(80), top)
    assert r["rate_top"] == pytest.approx(mis[top].mean()) and r["rate_rest"] == pytest.approx(mis[rest].mean())
    assert r["enrichment"] == pytest.approx(mis[top].mean() / mis.mean())
    bt = rep.bin_table()
    assert bt["count"].sum() == 80
    assert (bt["count"] * bt["mismatch_rate"]).sum() == pytest.approx(mis.sum())
    for _, b in bt.iterrows():  # each bin's rate from its own score range
        sel = (score >= b["lo"]) & ((score < b["hi"]) if b["bin"] < bt["bin"].max() else (score <= b["hi"]))
        assert b["count"] == sel.sum() and b["mismatch_rate"] == pytest.approx(mis[sel].mean())
    assert bt["mismatch_rate"].iloc[-1] > bt["mismatch_rate"].iloc[0]
    assert "s_auc" in rep.to_pandas().columns and "mismatch_b" in rep.example_table().columns
    # explicit edges and uniform bins: counts and rates from the edges directly
    for bins, edges in (([-5.0, 0.0, 0.5, 5.0], np.array([-5.0, 0.0, 0.5, 5.0])),
                        ("uniform:3", np.linspace(score.min(), score.max(), 4))):
        bt = mismatch_report(_fixed(ref, 3), {"b": _fixed(cmps["b"], 3)}, (X, y), scores={"s": score}, n_bins=bins,
                             n_permutations=0).bin_table()
        which = np.clip(np.digitize(score, edges) - 1, 0, len(edges) - 2)
        assert bt["count"].tolist() == np.bincount(which, minlength=len(edges) - 1).tolist()
        for b in range(len(edges) - 1):
            if (which == b).any():
                assert bt["mismatch_rate"][b] == pytest.approx(mis[which == b].mean())
                assert bt["mean_score"][b] == pytest.approx(score[which == b].mean())
    with pytest.raises(RedundancyError, match="bins"):
        mismatch_report(_fixed(ref, 3), _fixed(cmps["b"], 3), (X, y), scores=score, n_bins=[1.0, 0.0])


def test_permutation_p_value_matches_hypergeometric():
    n, n_mis, k = 30, 9, 6
    mis_idx = np.array([0, 1, 2, 3, 10, 11, 12, 13, 14])  # 4 of the top-6 scores are mismatches
    ref = np.zeros(n, int)
    cmp = ref.copy()
    cmp[mis_idx] = 1
    score = -np.arange(n, dtype=float)  # top 6 = examples 0..5
    X, y = np.eye(n, dtype=np.float32), np.zeros(n, int)
    y[0] = 1
    rep = mismatch_report(_fixed(ref, 2), _fixed(cmp, 2), (X, y), scores=score, top_fraction=0.2,
                          n_permutations=40_000, seed=1)
    r = rep.score_rows[0]
    exact = hypergeom.sf(4 - 1, n, n_mis, k)  # P(X >= 4)
    assert r["mismatch_top"] == 4 and r["n_top"] == k
    assert r["p_value"] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 40_000) + 1e-4)


def test_memorization_result_as_scores_and_errors(rng):
    X, y, ref, cmps = _setup(rng, n=20)
    M, C = rng.random((10, 20)) < 0.7, rng.random((10, 20)) < 0.8
    mem = estimate_memorization(M, C, C)
    rep = mismatch_report(_fixed(ref, 3), _fixed(cmps["a"], 3), (X, y), scores=mem, split="train")
    assert rep.score_rows[0]["score"] == "memorization"
    with pytest.raises(RedundancyError, match="shape"):
        mismatch_report(_fixed(ref, 3), _fixed(cmps["a"], 3), (X, y), scores=np.ones(5))
    with pytest.raises(RedundancyError, match="top_fraction"):
        mismatch_report(_fixed(ref, 3), _fixed(cmps["a"], 3), (X, y), top_fraction=2)
    with pytest.raises(RedundancyError, match="compressed"):
        mismatch_report(_fixed(ref, 3), {}, (X, y))
    # no mismatch at all: AUC undefined (None), never NaN
    same = mismatch_report(_fixed(ref, 3), _fixed(ref, 3), (X, y), scores=np.arange(20.0))
    assert same.score_rows[0]["auc"] is None and same.score_rows[0]["enrichment"] is None


def test_tail_flip_rates_score_and_rarest_class():
    n = 40
    X = np.eye(n, dtype=np.float32)
    y = np.array([0] * 30 + [1] * 6 + [2] * 4)
    ref = y.copy()
    cmp = y.copy()
    cmp[36:40] = 0  # every class-2 example flips
    cmp[0] = 1
    data = (X, y)
    out = tail_flip_rates(_fixed(ref, 3), _fixed(cmp, 3), data, fraction=0.1)
    assert out["flip_rate"] == pytest.approx(5 / 40) and out["tail_n"] == 4
    assert out["tail_flip_rate"] == 1.0 and out["tail"].startswith("rarest")
    s = np.zeros(n)
    s[[0, 1, 2, 3]] = 1.0
    out = tail_flip_rates(_fixed(ref, 3), _fixed(cmp, 3), data, scores=s, fraction=0.1)
    assert out["tail_flip_rate"] == pytest.approx(0.25)


@pytest.mark.parametrize("n_bins", [1e-300, 0.5, "uniform:0", [1.0], True])
def test_mismatch_report_refuses_bad_n_bins_without_scores(n_bins):
    X = np.eye(4, dtype="float32"); y = np.array([0, 1, 0, 1])
    with pytest.raises(RedundancyError, match="n_bins"):
        mismatch_report(nn.Linear(4, 2), nn.Linear(4, 2), (X, y), n_bins=n_bins)


@pytest.mark.parametrize("seed", [float("inf"), float("nan"), 1.0, True, -1, 2 ** 63])
@pytest.mark.parametrize("scores", [None, [0.0, 0.0, 1.0, 0.0]])
def test_mismatch_report_refuses_a_seed_that_is_not_an_integer(seed, scores):
    X = np.eye(4, dtype="float32"); y = np.array([0, 1, 0, 1])
    with pytest.raises(RedundancyError, match="seed"):
        mismatch_report(nn.Linear(4, 2), nn.Linear(4, 2), (X, y), scores=scores, seed=seed)


def test_mismatch_report_takes_a_numpy_integer_seed_and_echoes_an_int():
    X = np.eye(4, dtype="float32"); y = np.array([0, 1, 0, 1])
    rep = mismatch_report(nn.Linear(4, 2), nn.Linear(4, 2), (X, y), seed=np.int64(3), n_bins=np.int64(2))
    assert type(rep.settings["seed"]) is int and rep.settings["seed"] == 3 and rep.settings["n_bins"] == 2


@pytest.mark.parametrize("score,bins,match", [(None, 5, "score"), (np.array([1.0, np.nan]), 5, "score"),
                                              (np.zeros((2, 2)), 5, "score"), (np.arange(4.0), 0, "bins"),
                                              (np.arange(4.0), "uniform:0", "bins"),
                                              (np.arange(4.0), "uniform:100000", "bins"),
                                              (np.arange(4.0), "uniform:\u00b2", "bins"),
                                              (np.arange(4.0), "uniform:" + "9" * 5000, "bins"),
                                              (np.arange(4.0), [2.0, 1.0], "bins"), (np.arange(4.0), 10 ** 400, "bins"),
                                              (np.arange(4.0), True, "bins")])
def test_bin_edges_refuses(score, bins, match):
    with pytest.raises(RedundancyError, match=match):
        bin_edges(score, bins)


@pytest.mark.parametrize("score", [np.array([-1e308, 1e308, 0.0]), np.full(4, 1.7976931348623157e308),
                                   np.full(4, -1.7976931348623157e308), np.array([0.0, 5e-324]), np.full(3, 2.0)])
@pytest.mark.parametrize("bins", [3, "uniform:4"])
def test_bin_edges_extreme_scores_are_finite_and_increasing(score, bins):
    e = bin_edges(score, bins)
    assert np.isfinite(e).all() and (np.diff(e) > 0).all()
    which = np.clip(np.searchsorted(e, score, side="right") - 1, 0, len(e) - 2)
    assert ((e[which] <= score) | (which == 0)).all()  # every score lies in (or at the low end of) its bin


def test_bin_edges_uniform_matches_linspace_and_constant_score():
    s = np.array([0.0, 1.0, 4.0])
    np.testing.assert_array_equal(bin_edges(s, "uniform:4"), np.linspace(0.0, 4.0, 5))
    np.testing.assert_array_equal(bin_edges(np.full(3, 2.0), 5), [2.0, 3.0])


def test_mismatch_report_extreme_scores_give_finite_bin_means(toy_data):
    X, y = toy_data(40)
    ref, cmp = nn.Linear(4, 2), nn.Linear(4, 2)
    scores = np.where(np.arange(40) % 2 == 0, 1.7e308, 1.6e308)
    rep = mismatch_report(ref, {"c": cmp}, (X, y), scores=scores, n_permutations=10)
    means = [b["mean_score"] for b in rep.bins]
    assert np.isfinite(means).all() and min(means) >= 1.6e308 * (1 - 1e-12)


def test_mismatch_report_bounds_permutation_work(toy_data):
    X, y = toy_data(10)
    Xt, yt = toy_data(2001, seed=1)  # 10**6 shuffles x 2001 examples: above the 2 * 10**9 draws allowed
    with pytest.raises(RedundancyError, match="random draws"):
        mismatch_report(nn.Linear(4, 2), nn.Linear(4, 2), (X, y, Xt, yt), scores=np.arange(2001.0),
                        n_permutations=10 ** 6)


def test_as_scores_refuses():
    with pytest.raises(RedundancyError, match="scores"):
        as_scores(-10 ** 400, 3, "test")
    with pytest.raises(RedundancyError, match="n"):
        as_scores(np.zeros(3), float("nan"), "test")
    with pytest.raises(RedundancyError, match="split"):
        as_scores(np.zeros(3), 3, 0.5)
    assert list(as_scores([1, 2, 3], 3, "train")) == ["score"]
