"""prune_by_inclusion / prune_by_magnitude: the pruned plain network computes what it should."""

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.bayes import fit_spike_slab
from redundancy.bayes.prune import prune_by_inclusion, prune_by_magnitude, prune_to_counts
from redundancy.errors import RedundancyError, UnsupportedLayerError


def _data(shape, n=40, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype("float32"), rng.integers(0, k, n)


def _random_gates(res, seed=0):
    """Put random indicator logits (some layers all but one off) into the fitted net."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in res.net.weight_layers():
            for logit in (m.node_logit, m.input_logit):
                if logit is not None:
                    logit.copy_(3 * torch.randn(logit.shape, generator=g))
                    logit[0] = 2.0  # at least one on
    layers = [(n, m) for n, m in res.net.weight_layers() if m.node_logit is not None]
    first = res.net.weight_layers()[0][1]
    return dataclasses.replace(res, node_pip={n: m.node_pip.detach().double().numpy() for n, m in layers},
                               feature_pip=None if first.input_logit is None else
                               first.input_pip.detach().double().numpy())


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 7), nn.Tanh(),
                                  nn.Linear(7, 3)), (12,), True),
    "cnn2d": (lambda: nn.Sequential(nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                                    nn.Conv2d(6, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 2 * 2, 8),
                                    nn.ReLU(), nn.Linear(8, 3)), (2, 8, 8), True),
    "cnn1d": (lambda: nn.Sequential(nn.Conv1d(1, 6, 5, padding=2, stride=2), nn.GELU(), nn.AvgPool1d(2),
                                    nn.Conv1d(6, 4, 3, dilation=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                    nn.Flatten(), nn.Linear(4, 3)), (1, 20), False),
    "cnn3d": (lambda: nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                    nn.Linear(4 * 27, 3)), (1, 3, 3, 3), False),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_pruned_network_equals_median_model(name):
    make, shape, feats = MODELS[name]
    torch.manual_seed(0)
    X, y = _data(shape)
    res = fit_spike_slab(make(), (X, y), epochs=1, n_samples=1, select_features=feats)
    res = _random_gates(res)
    pruned = prune_by_inclusion(res)
    xt = torch.as_tensor(X)
    with torch.no_grad():
        ref = res.net.set_mode("median")(xt)
        out = pruned.model(xt)
    res.net.set_mode("relaxed")
    assert torch.allclose(out, ref, atol=1e-5)
    n_removed = sum(int((p <= 0.5).sum()) for p in res.node_pip.values())
    n_removed += 0 if res.feature_pip is None else int((res.feature_pip <= 0.5).sum())
    table = pruned.to_pandas()
    assert len(table) == n_removed > 0
    assert set(table.columns) == {"layer", "kind", "channel", "score"}
    assert (table["score"] <= 0.5).all()
    assert pruned.params_after < pruned.params_before
    assert not any(hasattr(m, "node_logit") for m in pruned.model.modules())  # plain modules only


def test_magnitude_pruning_equals_zeroed_rows():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    pr = prune_by_magnitude(net, {"0": 3, "2": 4}, (5,))
    z = copy.deepcopy(net)
    with torch.no_grad():
        for idx, k in ((0, 3), (2, 4)):
            w, b = z[idx].weight, z[idx].bias
            norms = (w ** 2).sum(1) + b ** 2
            drop = torch.argsort(norms, descending=True)[k:]
            w[drop] = 0
            b[drop] = 0
        x = torch.randn(30, 5)
        assert torch.allclose(pr.model(x), z(x), atol=1e-6)
    assert pr.nodes_after == {"0": 3, "2": 4} and pr.nodes_before == {"0": 8, "2": 6}
    assert len(pr.to_pandas()) == 5 + 2


def test_prune_to_counts_orders():
    X, y = _data((10,))
    res = _random_gates(fit_spike_slab((6,), (X, y), epochs=1, n_samples=1))
    name = res.layers[0]
    for order, score in (("pip", res.node_pip[name]), ("magnitude", res.node_magnitude[name])):
        pr = prune_to_counts(res, {name: 2}, order=order)
        removed = pr.to_pandas()
        assert len(removed) == 4
        assert removed["score"].max() <= np.sort(score)[-2] + 1e-12


def test_threshold_and_forced_and_fine_tune():
    X, y = _data((10,), n=60)
    res = fit_spike_slab((6,), (X, y), epochs=1, n_samples=1)
    name = res.layers[0]
    res = dataclasses.replace(res, node_pip={name: np.full(6, 0.2)})
    pr = prune_by_inclusion(res, data=(X, y), fine_tune_epochs=2)
    assert pr.forced == (name,) and pr.nodes_after[name] == 1
    assert pr.fine_tune["epochs"] == 2
    with pytest.raises(RedundancyError, match="threshold"):
        prune_by_inclusion(res, threshold=1.5)
    with pytest.raises(RedundancyError, match="SpikeSlabResult"):
        prune_by_inclusion(object())


@pytest.mark.parametrize("model,match", [
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)), "BatchNorm2d"),
    (nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2)), "Sigmoid"),
    (nn.Linear(3, 2), "only an nn.Sequential"),
    (nn.Sequential(nn.ReLU()), "no Linear or Conv"),
])
def test_unconvertible_models_refused(model, match):
    X, y = _data((1, 5, 5) if isinstance(model[0] if isinstance(model, nn.Sequential) else model, nn.Conv2d)
                 else (3,))
    with pytest.raises(UnsupportedLayerError, match=match):
        fit_spike_slab(model, (X, y), epochs=1)
