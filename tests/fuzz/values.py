"""Generic hypothesis strategies for fuzzing: odd values, small models with their shapes, data, files.

Everything is built fresh per example (models are factories), so a call that mutates its argument
cannot leak into the next example.
"""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

# ----------------------------------------------------------------------------------- odd values
ODD_SCALARS = [
    None, True, False, 0, -1, 1, 2, 3, 10 ** 12, 2 ** 64, 10 ** 400, -(10 ** 400),
    0.0, -0.0, 0.5, 1.0, -1.5, 1e-300, 1e-200, 1e200, 1e308, -1e308, float("nan"), float("inf"), -float("inf"),
    "abc", "", "1", b"x", Fraction(1, 3), complex(1, 1),
]


def odd_scalars():
    return st.sampled_from(ODD_SCALARS) | st.builds(np.float64, st.sampled_from([np.nan, np.inf, 2.0])) \
        | st.builds(lambda v: np.array(v), st.sampled_from([3, 2.5, np.nan])) \
        | st.builds(lambda v: torch.tensor(v), st.sampled_from([3, 2.5, float("nan")]))


def odd_containers():
    return st.sampled_from([(), [], {}, (1,), (0,), (-1,), (True,), (1.5,), ("a",), (10 ** 12,),
                            (10 ** 6, 10 ** 6), (2 ** 64,), (1, None), [[1, 2], [3]], {"a": 1}, {1, 2}])


def anything():
    """An argument of a type or value nobody should have passed."""
    return odd_scalars() | odd_containers() | st.builds(object) | st.just(print) \
        | st.builds(lambda: nn.Identity()) | st.builds(lambda: np.zeros((0, 3)))


@st.composite
def mostly(draw, good, odd, n=3):
    """``good`` n times out of n + 1, else ``odd``. (``good | odd`` would flatten ``odd``'s many
    branches and draw a legal value only once in a dozen; a row whose every argument is odd that
    often almost never makes a legal call, and its oracle never runs.)"""
    return draw(good) if draw(st.integers(0, n)) < n else draw(odd)


def legal_arrays(shapes=((4, 3), (3, 4, 5), (2, 2), (5, 2), (2, 3, 2))):
    """Finite random arrays of a few small shapes."""
    return st.tuples(st.sampled_from(shapes), st.integers(0, 9)).map(
        lambda t: np.random.default_rng(t[1]).normal(size=t[0]))


def ints(lo=-3, hi=12):
    return st.integers(lo, hi) | st.sampled_from([0, -1, 10 ** 12, 2 ** 64, 10 ** 400, True]) | odd_scalars()


def floats():
    return st.floats(allow_nan=True, allow_infinity=True) | st.floats(1e-3, 10) | odd_scalars()


def pos_floats():
    return st.floats(1e-3, 10) | st.sampled_from([1e-300, 1e308, 1e200, 1e-200, 0.0, -1.0, float("nan"),
                                                   float("inf")]) | odd_scalars()


def seeds():
    return st.integers(0, 5) | st.sampled_from([None, -1, 2 ** 64, float("nan"), 1.5, "abc", True,
                                                 np.int64(3), np.random.default_rng(0)])


# ----------------------------------------------------------------------------------- models
class Branchy(nn.Module):
    """Affine on each half-space only: the output flips sign with the sign of x.sum()."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        x = x.flatten(1)
        return self.l(x) if x.sum() > 0 else -self.l(x)


class KeyErrorNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        raise KeyError("missing")


class Counter(nn.Module):
    """A forward that updates a buffer (the caller's model must not change)."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.l(x.flatten(1))


class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        return self.l(x.flatten(1)), 3


def _seq1d():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))


def _nan_weights():
    m = _seq1d()
    with torch.no_grad():
        m[0].weight.fill_(float("nan"))
    return m


def _inf_weights():
    m = _seq1d()
    with torch.no_grad():
        m[2].weight[0, 0] = float("inf")
    return m


def _meta():
    with torch.device("meta"):
        return nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))


def _bn_train():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.Flatten(), nn.Linear(8, 2))


def _linear_cnn():
    from redundancy.linear.spec import AvgPool, Conv, Dense, LinearCNN, TuckerConv

    return LinearCNN((2, 6, 6), [TuckerConv(4, 3, ranks=(2, 2)), AvgPool(2), Dense(1)]).build(seed=0)


def _resnet_tiny():
    from redundancy import zoo

    return zoo.resnet20(blocks_per_stage=1, widths=(2, 2, 2), in_channels=1, num_classes=2)


#: name -> (factory, a valid input shape)
MODELS = {
    "conv2d": (lambda: nn.Conv2d(1, 2, 3), (1, 5, 5)),
    "seq1d": (_seq1d, (1, 6)),
    "linear": (lambda: nn.Linear(6, 2), (6,)),
    "relu": (lambda: nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)), (1, 6)),
    "bn_train": (_bn_train, (1, 6)),
    "linear_cnn": (_linear_cnn, (2, 6, 6)),
    "resnet_tiny": (_resnet_tiny, (1, 8, 8)),
    "lazy": (lambda: nn.Sequential(nn.Flatten(), nn.LazyLinear(2)), (1, 6)),
    "meta": (_meta, (1, 6)),
    "nan": (_nan_weights, (1, 6)),
    "inf": (_inf_weights, (1, 6)),
    "branchy": (Branchy, (1, 6)),
    "keyerror": (KeyErrorNet, (1, 6)),
    "counter": (Counter, (1, 6)),
    "tuple": (TupleNet, (1, 6)),
    "empty": (lambda: nn.Sequential(), (1, 6)),
    "identity": (lambda: nn.Identity(), (1, 6)),
}
GOOD_MODELS = ("conv2d", "seq1d", "linear", "linear_cnn")


def model_names(good_only: bool = False):
    return st.sampled_from(GOOD_MODELS if good_only else tuple(MODELS))


def shapes_for(valid):
    """A shape near ``valid``: itself, a wrong one, an absurd one, or a wrong type."""
    valid = tuple(valid)
    return st.one_of(
        st.just(valid), st.just(valid),
        st.just(valid[1:] or (1,)), st.just((*valid, 2)), st.just(tuple(2 * v for v in valid)),
        st.sampled_from([(10 ** 12,), (1, 10 ** 6, 10 ** 6), (2 ** 64,), (0,), (-1,), (True,), (), "abc",
                         (1.5,), 3, np.array(6), torch.tensor([6]), (Fraction(6),), (10 ** 400,)]),
        st.lists(st.integers(1, 7), min_size=1, max_size=4).map(tuple),
    )


@st.composite
def model_and_shape(draw, good_only: bool = False):
    """``(model, input_shape, name)`` with the shape valid most of the time."""
    name = draw(model_names(good_only))
    factory, shape = MODELS[name]
    model = factory()
    if draw(st.integers(0, 3)) == 0:
        shape = draw(shapes_for(shape))
    return model, shape, name


def modules():
    return model_names().map(lambda n: MODELS[n][0]()) | anything()


# ----------------------------------------------------------------------------------- arrays
def arrays():
    good = st.sampled_from([(4, 3), (3, 4, 5), (2, 2), (5,), (2, 3, 2, 2)]).map(
        lambda s: np.random.default_rng(0).normal(size=s))
    odd = st.sampled_from([
        lambda: np.full((3, 3), np.nan), lambda: np.array([[1.0, np.inf], [0, 1]]), lambda: np.zeros((3, 3)),
        lambda: np.zeros((0, 3)), lambda: np.array(2.0), lambda: np.ones((2, 2)) * 1e-200,
        lambda: np.ones((2, 2)) * 1e200, lambda: np.eye(3) * 1e308, lambda: np.array([["a", "b"]]),
        lambda: torch.randn(3, 4), lambda: [[1, 2], [3]], lambda: np.ones((2, 2), dtype=complex),
    ]).map(lambda f: f())
    return good | odd | anything()


# ----------------------------------------------------------------------------------- data
def datasets():
    def make(n, d, kind):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, 2, size=n)
        if kind == "nan":
            X[0, 0] = np.nan
        if kind == "mismatch":
            y = y[:-1]
        return X, y
    return st.builds(make, st.integers(1, 20), st.integers(1, 6),
                     st.sampled_from(["ok", "ok", "nan", "mismatch"])) | anything()


# ----------------------------------------------------------------------------------- files
_TMP = tempfile.mkdtemp(prefix="redundancy-fuzz-")


def _file(name: str, writer) -> str:
    path = os.path.join(_TMP, name)
    if not os.path.exists(path):
        writer(path)
    return path


def _write_text(p):
    with open(p, "w") as fh:
        fh.write("hello, this is not a checkpoint\n")


def checkpoint_files():
    """Paths: missing, a directory, text, empty, int keys, all-NaN weights, a good seq1d state dict."""
    def build(kind):
        if kind == "missing":
            return os.path.join(_TMP, "does-not-exist.pt")
        if kind == "dir":
            return _TMP
        if kind == "text":
            return _file("text.pt", _write_text)
        if kind == "empty":
            return _file("empty.pt", lambda p: open(p, "wb").close())
        if kind == "intkeys":
            return _file("intkeys.pt", lambda p: torch.save({1: torch.zeros(2), 2: torch.ones(3)}, p))
        if kind == "nan":
            return _file("nan.pt", lambda p: torch.save(
                {k: torch.full_like(v, float("nan")) for k, v in _seq1d().state_dict().items()}, p))
        if kind == "list":
            return _file("list.pt", lambda p: torch.save([1, 2, 3], p))
        return _file("good.pt", lambda p: torch.save(_seq1d().state_dict(), p))
    return st.sampled_from(["missing", "dir", "text", "empty", "intkeys", "nan", "list", "good", "good"]).map(build)


def tmp_path_for(name: str) -> str:
    return os.path.join(_TMP, name)


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
