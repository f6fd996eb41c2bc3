"""Compression schemes for the long-tail comparison: what each does, checked directly."""

import numpy as np
import pytest
import torch
from torch import nn

from redundancy.errors import RedundancyError
from redundancy.longtail import mismatch_report
from redundancy.longtail.compressions import (compression_suite, low_rank, magnitude_prune, quantize_dynamic_int8,
                                              quantize_static_int8, weight_sparsity)


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 12, 4)).eval()


def test_magnitude_prune_zeroes_the_smallest_weights_globally():
    net = _cnn()
    before = [m.weight.detach().clone() for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    pruned = magnitude_prune(net, 0.6)
    after = [m.weight.detach() for m in pruned.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    w0, w1 = torch.cat([w.flatten() for w in before]), torch.cat([w.flatten() for w in after])
    assert weight_sparsity(pruned) == pytest.approx(round(0.6 * w0.numel()) / w0.numel())
    zero = w1 == 0
    assert w0[zero].abs().max() <= w0[~zero].abs().min()
    assert torch.equal(w1[~zero], w0[~zero])
    assert torch.equal(before[0], net[0].weight)  # the original is untouched
    assert not any(hasattr(m, "weight_mask") for m in pruned.modules())
    with pytest.raises(RedundancyError, match="amount"):
        magnitude_prune(net, 1.5)


def test_low_rank_full_rank_is_exact_and_lower_rank_is_smaller():
    net = _cnn()
    X = torch.randn(5, 1, 12)
    full = low_rank(net, 1.0)
    torch.testing.assert_close(full(X), net(X), rtol=1e-4, atol=1e-4)
    half = low_rank(net, 0.5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(half) < count(net)
    assert not torch.allclose(half(X), net(X), atol=1e-4)


def test_int8_quantization_close_to_float():
    net = _cnn()
    X = torch.randn(64, 1, 12)
    dyn = quantize_dynamic_int8(net)
    assert any("quantized" in type(m).__module__ for m in dyn.modules())
    with torch.no_grad():
        ref = net(X)
        assert (dyn(X) - ref).abs().max() < 0.05 * ref.abs().max()
        st = quantize_static_int8(net, X)
        assert (st(X) - ref).abs().max() < 0.1 * ref.abs().max()
        assert (st(X).argmax(1) == ref.argmax(1)).float().mean() > 0.8


def test_suite_plugs_into_mismatch_report():
    net = _cnn()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1, 12)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    suite = compression_suite(net, X, ranks=(0.5,), amounts=(0.5,))
    assert set(suite) == {"lowrank_0.5", "prune_0.5", "int8_dynamic", "int8_static"}
    rep = mismatch_report(net, suite, (X, y), scores=rng.random(40), n_permutations=100)
    assert len(rep.rows) == 4 and all(0 <= r["flip_rate"] <= 1 for r in rep.rows)
