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
    None, True, False, 0, -1, 1, 2, 3, 10 ** 12, 2 ** 63, 2 ** 64, 10 ** 300, 10 ** 400, -(10 ** 400),
    0.0, -0.0, 0.5, 1.0, -1.5, 1e-300, 1e-200, 1e200, 1e308, -1e308, 5e-324, float("nan"), float("inf"),
    -float("inf"), "abc", "", "1", b"x", Fraction(1, 3), complex(1, 1),
]


def odd_scalars():
    return st.sampled_from(ODD_SCALARS) | st.builds(np.float64, st.sampled_from([np.nan, np.inf, 2.0])) \
        | st.builds(lambda v: np.array(v), st.sampled_from([3, 2.5, np.nan])) \
        | st.builds(lambda v: torch.tensor(v), st.sampled_from([3, 2.5, float("nan")])) \
        | st.builds(lambda v: np.full((2,), v), st.sampled_from([3, 2.5]))  # n-d where a scalar goes


# ----------------------------------------------------------------------------------- widened kinds
#: the kinds of odd value the widened fuzz (``test_fuzz_widened``) puts in place of one argument, each
#: a list of factories (built fresh per example). ``kind_of`` tells a drawn value's kind back, so a
#: failure can be matched against ``registry.KNOWN_ESCAPES``.
def _sparse():
    return torch.eye(3).to_sparse()


def _meta_tensor():
    return torch.empty(3, 3, device="meta")


WIDE_VALUES: dict[str, list] = {
    "0d-array": [lambda: np.array(3), lambda: np.array(2.5), lambda: np.float64(0.5), lambda: torch.tensor(2)],
    "nd-array": [lambda: np.ones(2), lambda: np.full((2, 2), 3), lambda: torch.ones(3)],
    "string": [lambda: "abc", lambda: "", lambda: "1e308", lambda: "nan"],
    "meta-tensor": [_meta_tensor],
    "sparse-tensor": [_sparse],
    "huge-count": [lambda: 10 ** 12, lambda: 10 ** 300, lambda: 2 ** 63, lambda: -(2 ** 63)],
    "float-limit": [lambda: 1e308, lambda: -1e308, lambda: 5e-324, lambda: 1.7976931348623157e308],
    "nan-inf": [lambda: float("nan"), lambda: float("inf"), lambda: -float("inf"), lambda: np.float64("nan")],
    "float-limit-array": [lambda: np.full((3, 3), 1e308), lambda: np.array([[1e308, -1e308], [5e-324, 0.0]]),
                          lambda: torch.full((2, 3), 1e308, dtype=torch.float64)],
    "near-affine-model": [lambda: NearAffine()],
    "meta-model": [lambda: _meta()],
}
_KINDS_FOR = {  # the widened kinds tried in place of an argument of each type
    "module": ("meta-model", "near-affine-model", "string"),
    "int": ("huge-count", "0d-array", "nd-array", "nan-inf", "string"),
    "float": ("float-limit", "nan-inf", "0d-array", "nd-array", "string"),
    "array": ("string", "meta-tensor", "sparse-tensor", "float-limit-array", "0d-array"),
    "shape": ("huge-count", "0d-array", "nd-array", "string"),
    "other": ("string", "nan-inf", "huge-count", "0d-array"),
}


def _type_key(value) -> str:
    if isinstance(value, nn.Module):
        return "module"
    if isinstance(value, bool) or value is None:
        return "other"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return "array"
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "shape"
    return "other"


def widened_kinds(value) -> tuple[str, ...]:
    """The widened kinds to try in place of ``value`` (chosen by its type)."""
    return _KINDS_FOR[_type_key(value)]


def widened(kind: str):
    """A strategy for the values of one widened kind."""
    return st.sampled_from(WIDE_VALUES[kind]).map(lambda f: f())


def kind_of(value, depth: int = 0) -> str | None:
    """The widened kind of a drawn value (None for an ordinary one)."""
    if isinstance(value, NearAffine):
        return "near-affine-model"
    if isinstance(value, nn.Module):
        try:
            return "meta-model" if any(p.is_meta for p in value.parameters()) else None
        except Exception:  # noqa: BLE001 - a module whose parameters() raises
            return None
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            return "meta-tensor"
        if value.layout != torch.strided:
            return "sparse-tensor"
        if value.ndim == 0:
            return "0d-array"
    if isinstance(value, float):  # np.float64 too
        if not math.isfinite(value):
            return "nan-inf"
        if value != 0 and (abs(value) >= 1e307 or abs(value) < 1e-307):
            return "float-limit"
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic) \
            and not isinstance(value, (np.bool_,)):
        return "0d-array"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.dtype in (np.float64, torch.float64) and value.size and float(abs(value).max()) >= 1e307:
            return "float-limit-array"
        return "nd-array"  # odd only where a scalar goes: KNOWN_ESCAPES entries of this kind name such rows
    if isinstance(value, str):
        return "string"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 12:
        return "huge-count"
    if isinstance(value, (tuple, list)) and depth == 0:  # a shape or a list of widths
        return next((k for k in map(lambda v: kind_of(v, 1), value[:16]) if k is not None), None)
    return None


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
    return st.integers(0, 5) | st.sampled_from([None, -1, 2 ** 64, 2 ** 63, float("nan"), float("inf"), 1.5, "abc",
                                                 True, np.int64(3), np.array(3), np.random.default_rng(0)])


# ----------------------------------------------------------------------------------- models
class Branchy(nn.Module):
    """Affine on each half-space only: the output flips sign with the sign of x.sum()."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        x = x.flatten(1)
        return self.l(x) if x.sum() > 0 else -self.l(x)


class NearAffine(nn.Module):
    """``|l(x) + 1e6|``: affine near any probe point of moderate size, not affine everywhere (the
    absolute value folds where ``l(x) = -1e6``)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.l = nn.Linear(6, 2)

    def forward(self, x):
        return (self.l(x.flatten(1)) + 1e6).abs()


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
    "near_affine": (NearAffine, (1, 6)),
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
                         (1.5,), 3, np.array(6), torch.tensor([6]), (Fraction(6),), (10 ** 400,), (10 ** 300,),
                         (2 ** 63,), np.array(valid), (np.int64(1), 6)]),
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
        lambda: np.array([[1e308, -1e308], [5e-324, 1.0]]), lambda: "abc", _meta_tensor, _sparse,
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
    """Paths: missing, a directory, text, empty, int keys, all-NaN weights, sparse or meta tensors, a good
    seq1d state dict."""
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
        if kind == "sparse":
            return _file("sparse.pt", lambda p: torch.save(
                {k: v.to_sparse() for k, v in _seq1d().state_dict().items()}, p))
        if kind == "meta":
            return _file("meta.pt", lambda p: torch.save(_meta().state_dict(), p))
        return _file("good.pt", lambda p: torch.save(_seq1d().state_dict(), p))
    return st.sampled_from(["missing", "dir", "text", "empty", "intkeys", "nan", "list", "sparse", "meta", "good",
                            "good"]).map(build)


def tmp_path_for(name: str) -> str:
    return os.path.join(_TMP, name)


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
