"""The small example networks of ``redundancy.zoo.small`` (moved there from bayes, longtail and pruning in
0.3): each builds, the seeded ones repeat and keep the caller's RNG, and bad sizes are refused."""

from __future__ import annotations

import pytest
import torch

from redundancy import zoo
from redundancy.errors import RedundancyError
from redundancy.zoo.small import mlp, mlp_classifier, plain_cnn, simple_cnn, small_cnn, two_conv_cnn


@pytest.mark.parametrize("build,x", [
    (lambda: small_cnn(dims=1), torch.zeros(2, 1, 40)), (lambda: small_cnn(), torch.zeros(2, 1, 8, 8)),
    (lambda: simple_cnn(ndim=2, widths=(4, 8), seed=0), torch.zeros(2, 1, 8, 8)),
    (lambda: mlp((1, 8, 8), (16,), 10), torch.zeros(2, 1, 8, 8)),
    (lambda: plain_cnn((1, 8, 8), (4, 8), 10), torch.zeros(2, 1, 8, 8)),
    (lambda: two_conv_cnn((1, 40), 10, width=4), torch.zeros(2, 1, 40)),
    (lambda: mlp_classifier((1, 8, 8), 10, hidden=(8,)), torch.zeros(2, 1, 8, 8))])
def test_every_small_net_builds_and_runs(build, x):
    assert build()(x).shape == (2, 10)


@pytest.mark.parametrize("build", [lambda s: mlp((5,), (4,), 3, seed=s), lambda s: plain_cnn((1, 6), (2,), 3, seed=s)])
def test_seeded_nets_repeat_and_keep_the_caller_rng(build):
    state = torch.random.get_rng_state()
    a, b, c = build(1), build(1), build(2)
    assert torch.equal(state, torch.random.get_rng_state())
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_small_cnn_is_a_zoo_model_and_refuses_bad_widths():
    assert zoo.default_input_shape("small_cnn") == (1, 8, 8)
    assert zoo.get_model("small_cnn", widths=(4,))(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    for widths, match in ((2.5, "widths"), ("ab", "widths"), ((), "widths"), ((0,), "widths"),
                          ((10 ** 6,), "limit"), ((8192,) * 50, "parameters")):
        with pytest.raises(RedundancyError, match=match):
            small_cnn(widths=widths)
    with pytest.raises(RedundancyError, match="dims"):
        small_cnn(dims=3)


def test_the_face_holds_the_factories_users_call():
    assert len(zoo.__all__) <= 10
    assert {"small_cnn", "simple_cnn", "mlp", "get_model"} <= set(zoo.__all__)
    for name in zoo.__all__:
        assert callable(getattr(zoo, name)), name
