"""The fuzz registry: one row per public callable.

``REGISTRY`` maps a dotted name (``"redundancy.count_macs"``) to a :class:`Target`: a hypothesis
strategy for the keyword arguments, an optional oracle and the result fields allowed to be
non-finite. Add a new public function by adding one row; callables that have no row are
**discovered** (``discover()``) from the package's faces and get generic strategies chosen from
their signature (parameter names, defaults and annotations).

The faces (found again on every run, so a face that grows or shrinks needs no edit here):

* ``redundancy.__all__``;
* every public subpackage's face, the ``__all__`` of its ``__init__`` (a subpackage whose
  ``__init__`` has no ``__all__`` yet falls back to the ``__all__`` of its public modules);
* every public base module's ``__all__`` (``counts``, ``data``, ``parallel``, ``checkpoint``,
  ``errors``, ...).

Explicit rows whose callable is no longer on a face still run (they test what they test); a rows
file that no longer loads (a name it imports was removed) does not break collection: it is reported
by ``test_rows_files_load``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import typing
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import strategies as st

from tests.fuzz import values as V
from tests.fuzz.oracles import (_analyze_oracle, _cp_oracle, _error_oracle, _flop_oracle, _params_oracle,
                                _sample_oracle, _tensor_oracle, _tucker_oracle)

#: parts of the package the API fuzz does not discover (with the reason)
EXCLUDED_PARTS = {
    "redundancy.cli": "driven through its argv by tests/fuzz/test_fuzz_cli.py",
    "redundancy.__main__": "the console entry point (test_fuzz_cli.py)",
}
#: callables the fuzz does not drive directly (with the reason)
SKIP = {
    "redundancy.validation.study.run_study": "minutes per call even in quick mode; covered by the CLI fuzz",
}


#: callables that this fuzz still breaks (raw exception or non-finite on odd input). They run and are
#: counted as xfail (not skipped), so CI shows how many remain; each one leaves this set when it is
#: hardened. Empty since issue 12 was closed: every discovered callable must pass.
UNHARDENED: frozenset[str] = frozenset()


#: (callable, widened value kind) pairs that the widened fuzz still breaks on main (issue 22): a call
#: whose failing argument is of that kind is counted (the summary shows it) but does not fail CI. Each
#: entry names the escape; the lead removes it once the area's fix is merged. Kinds: see
#: ``values.WIDE_VALUES`` (``values.kind_of`` tells a drawn argument's kind). Never add an entry to hide
#: a new escape: fix the callable.
_SPARSE = "a sparse tensor reaches numpy/torch ops (TypeError/NotImplementedError), not refused as a RedundancyError"
KNOWN_ESCAPES: dict[tuple[str, str], str] = {
    # empty: every escape the widened fuzz found is fixed at its root (sparse/meta tensors refused by the
    # shared Array/Tensor checks, scalar result fields type-checked by the Result base, one-line messages)
}


def known_escape(name: str, kwargs: dict) -> str | None:
    """The reason a failing call of ``name`` with ``kwargs`` is a known escape, or None."""
    for v in kwargs.values():
        reason = KNOWN_ESCAPES.get((name, V.kind_of(v)))
        if reason:
            return reason
    return None


@dataclass
class Target:
    """How to fuzz one callable: ``kwargs`` draws a dict of arguments (``"*"`` holds positional ones)."""

    fn: Callable[..., Any]
    kwargs: st.SearchStrategy
    oracle: Callable[[dict, Any], str | None] | None = None
    allowed_nonfinite: tuple[str, ...] = ()
    then: Callable[[Any], Any] | None = None  # a follow-up on the result (e.g. a Display's plot)
    generic: bool = False


# ----------------------------------------------------------------------------------- explicit rows
@st.composite
def _model_call(draw, extra=None, good_only=False, shape_key="input_shape"):
    model, shape, _ = draw(V.model_and_shape(good_only=good_only))
    kw = {"model": model, shape_key: shape}
    for k, strat in (extra or {}).items():
        if draw(st.booleans()):
            kw[k] = draw(strat)
    return kw


def _opt(**strats):
    """A dict strategy where each key is present or not."""
    return st.fixed_dictionaries({}, optional=strats)


@st.composite
def _roi_call(draw):
    a, shape, _ = draw(V.model_and_shape())
    b = V.MODELS[draw(V.model_names())][0]()
    kw = {"original": a, "compressed": b, "input_shape": shape, "batch_sizes": (1,), "repeats": 2, "warmup": 0}
    kw.update(draw(_opt(batch_sizes=V.shapes_for((1, 2)), repeats=V.ints(), warmup=V.ints(), eps=V.pos_floats(),
                        sigma=V.floats(), cost_per_sample=V.pos_floats(), cost_per_gmac=V.pos_floats(),
                        inferences_per_month=V.pos_floats(), measure=st.booleans() | V.odd_scalars(),
                        seed=V.seeds(), dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, "float32"]),
                        dof=st.sampled_from([(10, 5), (0, 0), (1, 10 ** 400), "x"]),
                        constant=V.pos_floats(), log_factor=V.pos_floats())))
    return kw


def _roi_result():
    from redundancy.analysis.roi import estimate_roi
    from torch import nn

    a = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(16, 1))
    b = nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten(), nn.Linear(4, 1))
    return estimate_roi(a, b, (1, 6), batch_sizes=(1,), repeats=2, warmup=0,
                        cost_per_sample=1.0, cost_per_gmac=1.0, inferences_per_month=1e6)


def _roi_plot(**kw):
    from redundancy.plotting import RoiDisplay

    disp = RoiDisplay.from_result(kw["roi"], **{k: v for k, v in kw.items() if k == "months"})
    out = disp.plot(**{k: v for k, v in kw.items() if k in ("ax", "kind")})
    import matplotlib.pyplot as plt

    plt.close("all")
    return out.ratios()


def _train_call(data, opts):
    """A small MLP for (n, d) data, or a conv that does not fit it; every argument may be odd."""
    from torch import nn

    x0 = data[0] if isinstance(data, tuple) and data else None
    d = x0.shape[1] if getattr(x0, "ndim", 0) == 2 else 3
    model = nn.Sequential(nn.Linear(d, 4), nn.ReLU(), nn.Linear(4, 2)) if opts.pop("conv", False) is False \
        else nn.Conv2d(1, 2, 3)
    return {"model": model, "data": data, **opts}


def _predict_call(model_shape, n, opt):
    """``predict(model, X)`` with ``n`` random inputs of the drawn shape (when the shape is one)."""
    model, shape, _ = model_shape
    try:
        X = torch.randn(n, *shape) if all(isinstance(v, int) and 0 < v < 100 for v in shape) else shape
    except TypeError:
        X = shape
    return {"model": model, "X": X, **opt}


def _batches_oracle(args, result):
    """The batches partition ``range(n)``: every index once, each batch at most ``batch_size`` long."""
    flat = sorted(int(i) for b in result for i in b)
    if flat != list(range(args["n"])):
        return f"the batches do not partition range({args['n']})"
    if any(len(b) > args["batch_size"] for b in result):
        return "a batch is longer than batch_size"
    return None


def T(fn, kwargs, **kw) -> Target:
    """One explicit row."""
    return Target(fn=fn, kwargs=kwargs, **kw)


def _core_rows(T) -> dict[str, Target]:
    """The rows of the package's top-level face and base modules."""
    import redundancy as R
    from redundancy import checkpoint as C
    from redundancy import data as D
    from redundancy.lowrank import multilinear as ML
    from redundancy import training as TR
    from redundancy.zoo import small as ZS

    models_shapes = _model_call()
    rows = {
        "redundancy.count_macs": T(R.count_macs, models_shapes, oracle=_flop_oracle),
        "redundancy.parameter_count": T(R.parameter_count, st.builds(
            lambda m, t: {"model": m, **({} if t is None else {"trainable_only": t})},
            V.model_names(good_only=True).map(lambda n: V.MODELS[n][0]()), st.none() | st.booleans()),
            oracle=_params_oracle),
        "redundancy.memory_bytes": T(R.memory_bytes, st.builds(lambda m, d: {"model": m, "dtype": d},
                                                               V.modules(), st.sampled_from(
                                                                   ["float32", "bfloat16", torch.float16, "abc",
                                                                    None, 3, torch.int8]))),
        "redundancy.whole_network_tensor": T(R.whole_network_tensor, _model_call(extra={
            "at": st.sampled_from([None, "abc", np.zeros(3), float("nan")]), "seed": V.seeds(),
            "method": st.sampled_from(["auto", "vjp", "jvp", "x", None]), "chunk_size": V.ints(),
            "check": st.booleans() | V.odd_scalars(), "fast": st.booleans() | V.odd_scalars()}),
            oracle=_tensor_oracle),
        "redundancy.analyze": T(R.analyze, _model_call(extra={"rank_tol": V.pos_floats()}),
                                oracle=_analyze_oracle),
        "redundancy.estimate_roi": T(R.estimate_roi, _roi_call(), allowed_nonfinite=("break_even_months",)),
        "redundancy.sample_complexity": T(R.sample_complexity, st.builds(
            lambda d, e, o: {"dof": d, "eps": e, **o}, V.mostly(st.integers(0, 10 ** 6), V.ints(0, 10 ** 6)),
            V.mostly(st.floats(1e-3, 1.0), V.pos_floats()),
            _opt(sigma=V.mostly(st.floats(0.1, 10.0), V.pos_floats()), naive=st.none() | V.ints(),
                 constant=V.mostly(st.floats(0.1, 10.0), V.pos_floats()),
                 log_factor=V.mostly(st.floats(1.0, 10.0), V.pos_floats()))), oracle=_sample_oracle),
        "redundancy.error_bound": T(R.error_bound, st.builds(
            lambda d, n, o: {"dof": d, "n": n, **o}, V.mostly(st.integers(0, 10 ** 6), V.ints(0, 10 ** 6)),
            V.mostly(st.integers(1, 10 ** 6), V.ints(1, 10 ** 6)),
            _opt(sigma=V.mostly(st.floats(0.1, 10.0), V.pos_floats()), naive=st.none() | V.ints(),
                 constant=V.mostly(st.floats(0.1, 10.0), V.pos_floats()),
                 log_factor=V.mostly(st.floats(1.0, 10.0), V.pos_floats()))), oracle=_error_oracle),
        "redundancy.load_weights": T(C.load_weights, st.builds(
            lambda m, p, s: {"model": m, "path": p, **s}, V.mostly(st.sampled_from(["seq1d", "seq1d", "linear"]).map(
                lambda n: V.MODELS[n][0]()), V.anything()), V.mostly(V.checkpoint_files(), V.anything()),
            _opt(strict=V.mostly(st.booleans(), V.odd_scalars())))),
        "redundancy.checkpoint.load_checkpoint": T(C.load_checkpoint, st.builds(
            lambda p, o: {"path": p, **o}, V.checkpoint_files() | V.anything(), _opt(what=st.sampled_from(
                ["weights", 3, None]))), allowed_nonfinite=("*",)),  # a raw reader: values as stored
        "redundancy.rank_rule": T(R.rank_rule, st.builds(
            lambda r, o: {"rule": r, **o}, st.sampled_from(["explicit", "energy", "fraction", "evbmf", "x", 3]),
            _opt(method=st.sampled_from(["tucker", "cp", "x"]), fraction=V.pos_floats(), energy=V.pos_floats(),
                 ranks=V.ints(), bogus=V.ints()))),
        "redundancy.compress": T(R.compress, st.builds(
            lambda m, r, o: {"model": m, "ranks": r, **o}, V.modules(),
            st.integers(1, 3) | st.sampled_from([(1, 1), (0, 1), (10 ** 12, 1), "evbmf", None, 1.5]),
            _opt(method=st.sampled_from(["tucker", "cp", "x"]), seed=V.seeds(), n_iter=V.ints(),
                 layers=st.sampled_from([None, ["0"], ["nope"], "0", 3])))),
        "redundancy.evbmf": T(R.evbmf, st.builds(lambda a, s: {"matrix": a, **s}, V.mostly(
            V.legal_arrays(((4, 3), (6, 5), (2, 2), (8, 3))), V.arrays()),
            _opt(sigma2=V.mostly(st.floats(1e-3, 1.0), V.pos_floats())))),
        "redundancy.cp_decompose": T(R.cp_decompose, st.builds(
            lambda a, r, o: {"tensor": a, "rank": r, **o}, V.mostly(V.legal_arrays(), V.arrays()),
            V.mostly(st.integers(1, 3), V.ints()), _opt(
                seed=V.mostly(st.integers(0, 5), V.seeds()), n_iter_max=V.mostly(st.integers(5, 50), V.ints()),
                tol=V.mostly(st.floats(1e-8, 1e-3), V.pos_floats()))), oracle=_cp_oracle),
        "redundancy.tucker_decompose": T(R.tucker_decompose, st.builds(
            lambda a, r, o: {"tensor": a, "ranks": r, **o}, V.mostly(V.legal_arrays(), V.arrays()),
            V.mostly(st.integers(1, 2), V.ints() | V.odd_containers()), _opt(
                seed=V.mostly(st.integers(0, 5), V.seeds()), method=st.sampled_from(["hooi", "hosvd", "x"]))),
            oracle=_tucker_oracle),
        "redundancy.data.load_mnist1d": T(D.load_mnist1d, st.builds(
            lambda n, o: {"num_samples": n, **o}, st.integers(20, 100) | V.ints(-1, 2),
            _opt(seed=V.seeds(), train_split=V.floats()))),
        "redundancy.lowrank.multilinear.multilinear_rank": T(
            ML.multilinear_rank,
            st.builds(lambda a, o: {"tensor": a, **o}, V.arrays(), _opt(rtol=V.pos_floats())),
            allowed_nonfinite=("result[1]",)),  # the gaps: inf when nothing was cut (documented)
        "redundancy.training.train": T(TR.train, st.builds(_train_call, V.datasets(), _opt(
            epochs=st.integers(1, 2) | V.ints(), batch_size=st.integers(1, 8) | V.ints(), lr=V.pos_floats(),
            seed=V.seeds(), device=st.sampled_from(["cpu", "cuda:7", "abc", None, 3])))),
        "redundancy.training.evaluate": T(TR.evaluate, st.builds(_train_call, V.datasets(), _opt(
            batch_size=st.integers(1, 8) | V.ints(), split=st.sampled_from(["test", "train", "x", 3])))),
        "redundancy.training.evaluation.predict": T(TR.predict, st.builds(
            _predict_call, V.model_and_shape(), st.integers(1, 3), _opt(batch_size=st.integers(1, 4) | V.ints()))),
        "redundancy.training.common.batches": T(TR.batches, st.builds(
            lambda n, b, g, o: {"n": n, "batch_size": b, "generator": g, **o}, st.integers(0, 20) | V.ints(),
            st.integers(1, 8) | V.ints(), st.just(None).map(lambda _: torch.Generator().manual_seed(0)) |
            V.anything(), _opt(shuffle=st.booleans() | V.odd_scalars())), oracle=_batches_oracle),
        "redundancy.zoo.small.two_conv_cnn": T(ZS.two_conv_cnn, _opt(
            input_shape=V.mostly(st.sampled_from([(1, 8, 8), (1, 40), (2, 6)]), V.shapes_for((1, 8, 8))),
            num_classes=V.mostly(st.integers(2, 5), V.ints()), width=V.mostly(st.integers(1, 8), V.ints()))),
        "redundancy.zoo.small.mlp_classifier": T(ZS.mlp_classifier, _opt(
            input_shape=V.mostly(st.sampled_from([(1, 8, 8), (5,)]), V.shapes_for((1, 8, 8))),
            num_classes=V.mostly(st.integers(2, 5), V.ints()),
            hidden=V.mostly(st.lists(st.integers(1, 8), max_size=2).map(tuple), V.odd_containers()))),
        "redundancy.plotting.RoiDisplay.plot": T(_roi_plot, st.builds(
            lambda o: {"roi": _roi_result(), **o}, _opt(kind=st.sampled_from(["ratios", "cost", "x"]),
                                                         ax=st.sampled_from(["abc", 3, None]),
                                                         months=V.arrays()))),
    }
    return rows


#: where the explicit rows live: this file's core rows and one rows file per area (``rows(T)``;
#: ``rows_pruning_scoreboard.rows()`` takes no argument)
ROW_FILES = {
    "tests.fuzz.registry": _core_rows,
    "tests.fuzz.lowrank_rows": lambda T: importlib.import_module("tests.fuzz.lowrank_rows").rows(T),
    "tests.fuzz.rows_pruning_scoreboard": lambda T: importlib.import_module(
        "tests.fuzz.rows_pruning_scoreboard").rows(),
    "tests.fuzz.rows_bayes_longtail": lambda T: importlib.import_module("tests.fuzz.rows_bayes_longtail").rows(T),
    "tests.fuzz.rows_rank_search": lambda T: importlib.import_module("tests.fuzz.rows_rank_search").rows(T),
}
#: rows files that did not load (file -> error), filled by :func:`_explicit`; test_rows_files_load fails on any
ROW_ERRORS: dict[str, str] = {}


def _explicit() -> dict[str, Target]:
    """Every explicit row; a rows file that does not load is recorded in :data:`ROW_ERRORS`, not raised,
    so the other files' rows still run."""
    rows: dict[str, Target] = {}
    for name, load in ROW_FILES.items():
        try:
            rows.update(load(T))
        except Exception as exc:  # noqa: BLE001 - e.g. a rows file importing a name another area removed
            ROW_ERRORS[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return rows


# ----------------------------------------------------------------------------------- generic rows
_MODEL_NAMES = {"model", "original", "compressed", "net", "module", "layer", "models"}
_SHAPE_NAMES = {"input_shape", "shape", "output_shape", "in_shape"}
_ARRAY_NAMES = {"tensor", "matrix", "w", "w_hat", "w_star", "x", "y", "weight", "a", "b", "first", "second",
                "maps", "s", "errors", "cov", "kernel", "at", "months", "samples", "macs"}
_FLOAT_HINTS = ("eps", "sigma", "tol", "energy", "fraction", "constant", "log_factor", "lr", "rho", "norm",
                "cost", "scale", "ratio", "kr", "sigma2", "weight_decay", "test_fraction", "train_split",
                "inferences")


def _hint_strategy(tp) -> st.SearchStrategy:
    """Legal values for a dataclass field annotation (used to build result objects)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of(*[_hint_strategy(a) for a in args])
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(1, 10 ** 6)
    if tp is float:
        return st.floats(1e-6, 1e6) | st.sampled_from([1e-300, 1e300])
    if tp is str:
        return st.sampled_from(["a", "conv", ""])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = _hint_strategy(args[0])
            return st.just(()) if inner.is_empty else st.lists(inner, max_size=3).map(tuple)
        return st.tuples(*[_hint_strategy(a) for a in args]) if args else st.just(())
    if origin in (list, typing.List):
        inner = _hint_strategy(args[0]) if args else st.integers()
        return st.just([]) if inner.is_empty else st.lists(inner, max_size=3)
    if origin is dict:
        return st.just({})
    return st.nothing()


def _param_strategy(name: str, param: inspect.Parameter) -> st.SearchStrategy:
    low = name.lower()
    default = param.default
    if low in _MODEL_NAMES:
        return V.modules() if low != "models" else st.lists(V.modules(), max_size=2)
    if low in _SHAPE_NAMES:
        return V.shapes_for((1, 6))
    if low == "data":
        return V.datasets()
    if low == "seed":
        return V.seeds()
    if low in ("path", "out_dir", "cache_dir", "checkpoint", "out"):
        return V.checkpoint_files() | st.sampled_from([None, 3])
    if low in _ARRAY_NAMES or low.startswith(("w_", "x_")):
        return V.arrays()
    if low in ("ranks", "rank", "modes", "layers", "batch_sizes", "spatial_ranks", "n_grid", "settings",
               "widths", "stage_repeats", "stage_widths"):
        plausible = st.just(default) if default is not inspect.Parameter.empty else st.integers(1, 3)
        return plausible | V.ints(0, 4) | V.odd_containers()
    if isinstance(default, bool):
        return st.booleans() | V.odd_scalars()
    if isinstance(default, str):
        return st.sampled_from([default, default, "abc", ""]) | V.odd_scalars()
    if isinstance(default, float) or any(h in low for h in _FLOAT_HINTS):
        base = st.just(default) if isinstance(default, float) else st.floats(1e-3, 1.0)
        return base | base | V.pos_floats()
    if isinstance(default, int) or low.startswith(("n_", "num_", "max_", "min_")) or low in (
            "n", "k", "r", "epochs", "repeats", "warmup", "batch_size", "chunk_size", "n_jobs", "c_in",
            "c_out", "width", "expansion", "groups", "d", "l", "m", "dof", "naive", "p", "blocks_per_stage"):
        base = st.just(default) if isinstance(default, int) else st.integers(1, 4)
        return base | base | V.ints()
    if default is None:
        return st.none() | st.none() | V.anything()
    if default is not inspect.Parameter.empty:
        return st.just(default) | V.anything()
    return V.anything()


def generic_target(fn: Callable) -> Target | None:
    """Generic strategies for ``fn`` from its signature (dataclasses: legal values of their hints)."""
    if dataclasses.is_dataclass(fn) and isinstance(fn, type):
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001
            return None
        req, opt = {}, {}
        for f in dataclasses.fields(fn):
            if not f.init:
                continue
            s = _hint_strategy(hints.get(f.name, Any))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                req[f.name] = s
            else:
                opt[f.name] = s
        if any(s.is_empty for s in req.values()):
            return None
        return Target(fn=fn, kwargs=st.fixed_dictionaries(req, optional=opt), generic=True)
    if isinstance(fn, type):
        return None  # other classes: exercised through the functions that build them
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    req, opt = {}, {}
    var_kw = False
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        s = _param_strategy(name, p)
        (req if p.default is inspect.Parameter.empty else opt)[name] = s
    if var_kw:
        opt["bogus_option"] = V.ints()
    return Target(fn=fn, kwargs=st.fixed_dictionaries(req, optional=opt), generic=True)


# ----------------------------------------------------------------------------------- discovery
def _public_callables(mod) -> dict[str, Callable]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)
                 and getattr(v, "__module__", "").startswith(mod.__name__)]
    out = {}
    for n in names:
        try:
            v = getattr(mod, n)
        except AttributeError:
            continue
        if callable(v) and not inspect.ismodule(v) and not isinstance(v, BaseException.__class__) \
                and not (isinstance(v, type) and issubclass(v, BaseException)):
            out[f"{getattr(v, '__module__', mod.__name__)}.{getattr(v, '__qualname__', n)}"] = v
    return out


def _in_tree(mod) -> bool:
    """True for a module of the ``redundancy`` package under test (not one that an editable install of
    another checkout makes importable next to it)."""
    import os

    import redundancy

    root = os.path.dirname(os.path.abspath(redundancy.__file__))
    return os.path.abspath(getattr(mod, "__file__", "") or "").startswith(root + os.sep)


def _faces() -> list:
    """The modules whose ``__all__`` is a face: every public subpackage's ``__init__`` (or, while it
    has no ``__all__``, its public modules) and every public base module."""
    import redundancy

    if not _in_tree(redundancy):
        return []
    mods = []
    for info in sorted(pkgutil.iter_modules(redundancy.__path__), key=lambda i: i.name):
        name = f"redundancy.{info.name}"
        if info.name.startswith("_") or name in EXCLUDED_PARTS:
            continue
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if not info.ispkg or hasattr(mod, "__all__"):
            mods.append(mod)
            continue
        for sub in pkgutil.iter_modules(mod.__path__):  # no face yet: its modules' __all__
            if sub.name.startswith("_"):
                continue
            try:
                submod = importlib.import_module(f"{name}.{sub.name}")
            except ImportError:
                continue
            if hasattr(submod, "__all__"):
                mods.append(submod)
    return mods


def discover() -> dict[str, Callable]:
    """Every public callable on a face: ``redundancy.__all__``, each public subpackage's face and each
    public base module's ``__all__`` (see the module docstring)."""
    import redundancy

    found: dict[str, Callable] = {}
    for n in redundancy.__all__:
        v = getattr(redundancy, n)
        if callable(v) and not inspect.ismodule(v) and not (isinstance(v, type) and issubclass(v, BaseException)):
            found[f"{v.__module__}.{v.__qualname__}"] = v
    for mod in _faces():
        found.update(_public_callables(mod))
    return {k: v for k, v in found.items() if k.startswith("redundancy.") and k not in SKIP}


#: documented non-finite result fields of discovered callables (path as the harness names it)
GENERIC_ALLOWED = {"redundancy.linear.bounds.interface_rank": ("result[3]",),  # the gap: inf for an exact rank
                   "redundancy.linear.dof_numerical.rank_from_singular_values": ("result[1]",),
                   "redundancy.analysis.kr.numerical_rank": ("result[2]",)}


def registry() -> dict[str, Target]:
    """Explicit rows plus a generic row for every discovered callable without one."""
    rows = _explicit()
    explicit_fns = {id(t.fn) for t in rows.values()}
    for name, fn in sorted(discover().items()):
        if id(fn) in explicit_fns or name in rows:
            continue
        t = generic_target(fn)
        if t is not None:
            t.allowed_nonfinite = GENERIC_ALLOWED.get(name, ())
            rows[name] = t
    return rows
