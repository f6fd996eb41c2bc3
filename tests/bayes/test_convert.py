"""bayes.convert: zoo.small.mlp, zoo.small.plain_cnn and bayes.convert.to_spike_slab refuse bad arguments."""

import pytest
import torch
from torch import nn

from redundancy.zoo.small import mlp, plain_cnn
from redundancy.errors import RedundancyError


@pytest.mark.parametrize("kw,match", [
    (dict(input_shape=(5,), widths=3, n_out=2), "widths"), (dict(input_shape=(5,), widths=(0,), n_out=2), "widths"),
    (dict(input_shape=(5,), widths=(4,), n_out=0), "n_out"),
    (dict(input_shape="ab", widths=(4,), n_out=2), "input_shape"),
    (dict(input_shape=(5,), widths=(4,), n_out=2, seed=-1), "seed"),
    (dict(input_shape=(10 ** 4, 10 ** 4), widths=(1000,), n_out=2), "parameters")])
def test_mlp_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        mlp(**kw)


def test_mlp_builds_and_keeps_the_caller_rng():
    state = torch.random.get_rng_state()
    net = mlp((1, 4), (3,), 2, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert sum(p.numel() for p in net.parameters()) == (4 + 1) * 3 + (3 + 1) * 2
    assert torch.equal(net[1].weight, mlp((1, 4), [3], 2, seed=5)[1].weight)
    assert mlp((5,), (), 3)(torch.zeros(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("kw,match", [
    (dict(input_shape=(1, 8), channels=None, n_out=2), "channels"), (dict(input_shape=(8,), channels=(2,), n_out=2),
                                                                     "input_shape"),
    (dict(input_shape=(1, 8), channels=(2,) * 9, n_out=2), "channels"),
    (dict(input_shape=(1, 8), channels=(2,), n_out=2.5), "n_out"),
    (dict(input_shape=(1, 8), channels=(2,), n_out=2, hidden=0), "hidden"),
    (dict(input_shape=(1, 8000, 8000), channels=(4096,), n_out=2), "parameters")])
def test_plain_cnn_refuses(kw, match):
    with pytest.raises(RedundancyError, match=match):
        plain_cnn(**kw)


@pytest.mark.parametrize("kw,match", [(dict(prior_inclusion=1.001), "prior_inclusion"),
                                      (dict(slab_scale=float("nan")), "slab_scale"),
                                      (dict(temperature=(0,)), "temperature"),
                                      (dict(temperature=(1.0, 1e-9)), "temperature"),
                                      (dict(select_features=2.0), "select_features"),
                                      (dict(init_inclusion=1.0), "init_inclusion"),
                                      (dict(total_steps=0.5), "total_steps"),
                                      (dict(init_scale=1e308), "init_scale"),
                                      (dict(input_shape=(3,)), "shape")])
def test_to_spike_slab_refuses(kw, match):
    from redundancy.bayes import to_spike_slab

    args = dict(model=nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), input_shape=(4,))
    with pytest.raises(RedundancyError, match=match):
        to_spike_slab(**{**args, **kw})


def test_to_spike_slab_refuses_an_init_scale_its_dtype_cannot_hold():
    from redundancy.bayes import to_spike_slab

    half = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).half()
    with pytest.raises(RedundancyError, match="init_scale"):
        to_spike_slab(half, (4,), init_scale=1e5)  # softplus^-1(1e5) = 1e5 > float16 max 65504
