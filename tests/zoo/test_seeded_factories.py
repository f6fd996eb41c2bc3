"""Zoo factories take ``seed``: the same seed builds bit-identical weights in two separate
processes, and the caller's global generator is left as it was (issue 24)."""

import hashlib
import os
import subprocess
import sys

import torch

from redundancy import zoo
from redundancy.zoo.small import mlp_classifier, two_conv_cnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FACTORIES = ["resnet20", "bottleneck_resnet", "mobilenet_v2", "shufflenet_v2", "small_cnn"]

_CHILD = """
import hashlib, torch
from redundancy import zoo
from redundancy.zoo.small import mlp_classifier, two_conv_cnn
models = [zoo.get_model(n, seed=7) for n in {names!r}] + [two_conv_cnn(seed=7), mlp_classifier(seed=7)]
h = hashlib.sha256()
for m in models:
    for v in m.state_dict().values():
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
print(h.hexdigest())
"""


def _digest():
    out = subprocess.run([sys.executable, "-c", _CHILD.format(names=FACTORIES)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    return out.stdout.strip()


def test_same_seed_same_weights_in_two_processes():
    a, b = _digest(), _digest()
    assert a == b and len(a) == 64


def test_seed_leaves_the_global_generator_alone_and_none_uses_it():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    m1 = zoo.small_cnn(seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(zoo.small_cnn(seed=1)[0].weight, m1[0].weight)
    assert not torch.equal(zoo.small_cnn(seed=2)[0].weight, m1[0].weight)
    torch.manual_seed(5)
    u = zoo.small_cnn()[0].weight
    torch.manual_seed(5)
    assert torch.equal(zoo.small_cnn()[0].weight, u)
    assert torch.equal(two_conv_cnn(seed=3)[0].weight, two_conv_cnn(seed=3)[0].weight)
    assert torch.equal(mlp_classifier(seed=3)[1].weight, mlp_classifier(seed=3)[1].weight)
