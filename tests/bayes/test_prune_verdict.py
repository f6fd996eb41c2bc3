"""Issue 24: Bayesian pruning judges the model it hands back (verdict, budget, collapse warning)."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.bayes import fit_spike_slab
from redundancy.bayes.prune import prune_by_inclusion, prune_by_magnitude, prune_to_counts
from redundancy.errors import DecisionWarning, RedundancyError
from redundancy.training import evaluate


def _blobs(n=300, seed=0):
    """Four well-separated Gaussian clusters in 6-D (one-vs-rest easy), labels balanced."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    centres = 3.0 * np.eye(6)[:4]
    return (centres[y] + rng.normal(size=(n, 6))).astype("float32"), y.astype("int64")


@pytest.fixture(scope="module")
def fit():
    X, y = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_spike_slab((16,), (X, y), prior_inclusion=0.5, seed=0, n_samples=4), (X, y)


def test_verdict_against_independent_scores(fit):
    res, data = fit
    pr = prune_by_inclusion(res, data=data)
    v = pr.verdict
    assert v.metric == "accuracy" and v.budget == 0.05 and v.finetuned is None
    assert v.decided == pytest.approx(evaluate(pr.model, data).accuracy)
    assert v.decided == pytest.approx(res.median_score)  # the pruned net is the median model
    assert v.chance == pytest.approx(0.25)
    assert v.verdict == "ok" and v.original > 0.9
    assert "pruned model's test accuracy" in repr(pr) and pr.to_dict()["verdict"]["verdict"] == "ok"


def test_collapsed_network_warns(fit):
    res, data = fit
    name = res.layers[0]
    collapsed = dataclasses.replace(res, node_pip={name: np.full(16, 0.1)})
    with pytest.warns(DecisionWarning) as rec:
        pr = prune_by_inclusion(collapsed, data=data)
    msgs = " ".join(str(w.message) for w in rec)
    assert "collapsed" in msgs and pr.nodes_after[name] == 1
    assert pr.verdict.verdict in ("near_chance", "over_budget")


def test_budget_before_and_after_fine_tuning(fit):
    res, data = fit
    name = res.layers[0]
    keep2 = prune_to_counts(res, {name: 1}, order="magnitude", data=data, max_accuracy_drop=1.0)
    assert keep2.verdict.budget == 1.0 and keep2.verdict.verdict == "ok"
    with pytest.warns(DecisionWarning, match="more than the budget|near chance"):
        tight = prune_to_counts(res, {name: 1}, order="magnitude", data=data, max_accuracy_drop=0.0)
    assert tight.verdict.verdict != "ok"
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = prune_by_magnitude(plain, {"0": 2}, (6,), data=data, fine_tune_epochs=3, lr=1e-2)
    v = pr.verdict
    assert v.finetuned is not None and v.finetuned == pytest.approx(evaluate(pr.model, data).accuracy)
    assert v.final == v.finetuned


def test_no_data_no_verdict_and_bad_budget(fit):
    res, _ = fit
    pr = prune_by_inclusion(res)
    assert pr.verdict is None and "not checked on data" in repr(pr)
    with pytest.raises(RedundancyError, match="max_accuracy_drop"):
        prune_by_inclusion(res, data=fit[1], max_accuracy_drop=2.0)


def test_fit_repr_labels_the_posterior_predictive(fit):
    res, _ = fit
    r = repr(res)
    assert "posterior predictive (unpruned)" in r
    assert r.index("median model") < r.index("posterior predictive")
