"""bayes.fit: fit_spike_slab (result interface, regression noise, resume, refusals, planted features, CLI,
displays), expected_calibration_error and posterior_predictive (checks, brute force, state restored)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.bayes import SpikeSlabResult, fit_spike_slab, posterior_predictive
from redundancy.bayes.fit import expected_calibration_error
from redundancy.bayes.curve import inclusion_curve
from redundancy.cli import main
from redundancy.errors import RedundancyError
from redundancy.plotting import InclusionCurveDisplay, InclusionDisplay


def _blobs(n=200, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype("float32")
    return X, (X[:, 0] - X[:, 1] > 0).astype("int64")


@pytest.fixture(scope="module")
def fitted():
    return fit_spike_slab((8,), _blobs(), seed=0, n_samples=8)


def test_result_interface(fitted):
    r = fitted
    assert isinstance(r, SpikeSlabResult) and r.layers == ("1",)
    lt = r.layer_table()
    assert {"layer", "redundancy"} <= set(lt.columns) and lt["redundancy"].between(0, 1).all()
    assert lt["redundancy"].iloc[0] == pytest.approx(float((r.node_pip["1"] < 0.5).mean()))
    ct = r.channel_table()
    assert {"layer", "channel", "importance"} <= set(ct.columns) and len(ct) == 8
    np.testing.assert_allclose(ct["importance"], r.node_pip["1"])
    assert len(r.feature_table()) == 6 and len(r.to_pandas()) == 14
    d = json.loads(json.dumps(r.to_dict()))
    assert d["task"] == "classification" and len(d["feature_pip"]) == 6
    assert 0 <= r.ece <= 1 and r.nll > 0 and r.accuracy > 0.85
    assert np.allclose(r.predictive.sum(1), 1)
    assert "SpikeSlabResult(classification" in repr(r) and len(repr(r)) < 300
    # the two relevant features are in, and the predictive NLL is the mean of -log p̄(y|x)
    assert r.feature_pip[:2].min() > 0.5
    X, y = _blobs()
    assert r.nll == pytest.approx(float(-np.log(r.predictive[np.arange(len(y)), y]).mean()), rel=1e-6)


def test_regression_fitted_and_known_noise():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4)).astype("float32")
    y = (2 * X[:, 0] + 0.5 * rng.normal(size=400)).astype("float32")
    r = fit_spike_slab(torch.nn.Sequential(torch.nn.Linear(4, 1)), (X, y), n_samples=4)
    assert r.task == "regression" and r.ece is None and r.accuracy is None
    assert r.noise_scale == pytest.approx(0.5, rel=0.25) and r.rmse < 0.7 and r.r2 > 0.9
    assert r.feature_pip[0] > 0.5 and (r.feature_pip[1:] < 0.5).all()
    k = fit_spike_slab(torch.nn.Sequential(torch.nn.Linear(4, 1)), (X, y), epochs=2, noise_scale=0.5, n_samples=2)
    assert k.noise_scale == pytest.approx(0.5) and k.settings["noise"] == "known"


def test_resume_after_kill_matches_uninterrupted(tmp_path, monkeypatch):
    import redundancy.training.loop as tr

    data = _blobs(n=64)
    kw = dict(epochs=4, batch_size=32, lr=3e-2, seed=3, n_samples=2)
    full = fit_spike_slab((4,), data, checkpoint=tmp_path / "a.pt", **kw)
    real_save = tr._save

    def save_then_die(path, model, opt, epoch, *a):
        real_save(path, model, opt, epoch, *a)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit_spike_slab((4,), data, checkpoint=tmp_path / "b.pt", **kw)
    monkeypatch.setattr(tr, "_save", real_save)
    resumed = fit_spike_slab((4,), data, checkpoint=tmp_path / "b.pt", **kw)
    assert resumed.settings["resumed_from_epoch"] == 2
    np.testing.assert_allclose(resumed.node_pip["1"], full.node_pip["1"], rtol=1e-5)


@pytest.mark.parametrize("kw,match", [({"prior_inclusion": 1.0}, "prior_inclusion"), ({"slab_scale": -1}, "slab_scale"),
                                      ({"epochs": 0}, "epochs"), ({"temperature": (1.0,)}, "temperature"),
                                      ({"noise_scale": 0.0}, None)])
def test_bad_arguments(kw, match):
    X, y = _blobs(n=20)
    data = (X, y.astype("float32")) if "noise_scale" in kw else (X, y)
    with pytest.raises(RedundancyError, match=match or "noise_scale"):
        fit_spike_slab((3,), data, **{"epochs": 1, **kw})
    with pytest.raises(RedundancyError, match="model_or_widths"):
        fit_spike_slab("big", (X, y))


def test_planted_features_found():
    """5 of 20 features drive a ReLU teacher with 2 hidden nodes; the student has 8."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 20)).astype("float32")
    h = np.maximum(X[:, :5] @ rng.normal(size=(5, 2)) * 1.5, 0)
    y = h @ np.array([1.5, -1.5])
    y = ((y - y.mean()) / y.std() + 0.3 * rng.normal(size=600)).astype("float32")
    r = fit_spike_slab((8,), (X, y), n_samples=4, temperature=(1.0, 0.05),
                       init_inclusion=0.5)
    sel = r.feature_pip > 0.5
    assert sel[:5].all() and sel[5:].sum() <= 1
    assert 2 <= r.n_nodes_kept["1"] <= 8


def test_curve_display_and_cli(fitted, tmp_path, capsys):
    curve = inclusion_curve(fitted, _blobs(), fractions=(1.0, 0.5, 0.25))
    assert curve.nodes_kept.tolist() == [8, 4, 2] and len(curve.to_pandas()) == 3
    d = InclusionCurveDisplay.from_result(curve).plot()
    assert d.ax_ is not None and d.figure_ is not None
    assert InclusionDisplay.from_result(fitted).plot().ax_.get_ylabel().startswith("posterior")
    rc = main(["bayes", "mlp:8", "--data", "digits", "--epochs", "1", "--n-train", "200", "--no-progress",
               "--out", str(tmp_path / "o")])
    assert rc == 0
    written = {p.name for p in (tmp_path / "o").iterdir()}
    assert {"bayes.json", "pips.png", "curve.png", "removed.csv", "layers.csv"} <= written
    out, err = capsys.readouterr()
    assert "posterior predictive (unpruned" in out and "verdict:" in out
    assert "WARNING: the spike-and-slab fit did not converge" in err  # one epoch: a visible mark on stderr
    assert json.loads((tmp_path / "o" / "bayes.json").read_text())["fit"]["convergence"]["converged"] is False
    unconverged = dataclasses.replace(fitted, convergence=dataclasses.replace(fitted.convergence, converged=False))
    assert "NOT CONVERGED" in InclusionDisplay.from_result(unconverged).plot().ax_.get_title()
    assert main(["bayes", "mlp:0", "--data", "digits"]) == 2
    assert main(["bayes", "resnet20", "--data", "digits", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "BatchNorm2d" in err and "Traceback" not in err


@pytest.mark.parametrize("seed", [float("inf"), float("nan"), 1.0, True, -1, 2 ** 63])
def test_fit_and_posterior_predictive_refuse_a_seed_that_is_not_an_integer(seed):
    import numpy as np

    from redundancy.bayes import fit_spike_slab
    from redundancy.bayes.fit import posterior_predictive
    from redundancy.errors import RedundancyError

    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    with pytest.raises(RedundancyError, match="seed"):
        fit_spike_slab((4,), (X, y), epochs=1, seed=seed)
    res = fit_spike_slab((4,), (X, y), epochs=1, n_samples=2, seed=np.int64(0))
    assert res.seed == 0 and type(res.seed) is int
    with pytest.raises(RedundancyError, match="seed"):
        posterior_predictive(res.net, X[:2], 2, seed=seed)


def test_ece_refuses_bad_probabilities_and_labels():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(RedundancyError, match="probs"):
        expected_calibration_error(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(RedundancyError, match="probs"):
        expected_calibration_error(np.array([[0.5, 0.1]]), np.array([0]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0, 2]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0, 0.5]))
    with pytest.raises(RedundancyError, match="y"):
        expected_calibration_error(p, np.array([0]))
    with pytest.raises(RedundancyError, match="n_bins"):
        expected_calibration_error(p, np.array([0, 1]), n_bins=0)


def test_ece_against_brute_force():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, size=50)
    conf, hit = p.max(1), p.argmax(1) == y
    want = 0.0
    for lo in np.arange(10) / 10:  # bins [lo, lo + 0.1)
        m = (conf >= lo) & (conf < lo + 0.1)
        if m.any():
            want += m.mean() * abs(hit[m].mean() - conf[m].mean())
    assert expected_calibration_error(p, y, n_bins=10) == pytest.approx(want, abs=1e-12)


def test_posterior_predictive_checks_and_restores(tiny_fit):
    res, (X, _) = tiny_fit
    net = res.net
    with pytest.raises(RedundancyError, match="net"):
        posterior_predictive(nn.Linear(5, 2), X, 2, 0)
    with pytest.raises(RedundancyError, match="X"):
        posterior_predictive(net, X[:, :3], 2, 0)
    with pytest.raises(RedundancyError, match="X"):
        posterior_predictive(net, np.full((2, 5), np.nan), 2, 0)
    with pytest.raises(RedundancyError, match="n_samples"):
        posterior_predictive(net, X, 0, 0)
    with pytest.raises(RedundancyError, match="seed"):
        posterior_predictive(net, X, 2, -3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_state, mode = torch.random.get_rng_state(), net.mode
    a = posterior_predictive(net, X[:7], 3, seed=1)
    b = posterior_predictive(net, torch.as_tensor(X[:7]), 3, seed=1)
    assert a.shape == (3, 7, 2) and torch.equal(a, b)
    assert net.mode == mode and torch.equal(rng_state, torch.random.get_rng_state())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
