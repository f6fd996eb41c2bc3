"""Explicit fuzz rows for the low-rank primitives and the rank-search chains (legal and odd values mixed).

The generic strategies almost never draw a legal call for these (a list of matrices whose columns
fit the tensor, factors whose shapes chain, a ``CompressedLayer``), so each row mixes legal calls
with odd ones. Oracles recompute the result by explicit loops / numpy einsum (not tensorly).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from tests.fuzz import values as V

_ODD_ARRAYS = [np.nan, np.inf, 1e200, 1e-200, 0.0]


@st.composite
def _array(draw, shape):
    """A random array of ``shape``, sometimes scaled to 1e±200, zero, or with a NaN/inf."""
    a = np.random.default_rng(draw(st.integers(0, 9))).normal(size=shape)
    kind = draw(st.sampled_from(["ok", "ok", "ok", "torch", *_ODD_ARRAYS]))
    if kind == "ok":
        return a
    if kind == "torch":
        return torch.from_numpy(a)
    if kind in (np.nan, np.inf):
        a.flat[0] = kind
    elif kind == 0.0:
        a = np.zeros(shape)
    else:
        a = a * kind
    return a


@st.composite
def _mostly(draw, good, odd, n=4):
    """``good`` n times out of n + 1, else ``odd`` (``a | b`` would flatten ``odd``'s many branches and
    draw them far more often than ``good``)."""
    return draw(good) if draw(st.integers(0, n)) < n else draw(odd)


def _dims(lo=1, hi=4):
    return st.integers(lo, hi)


@st.composite
def mode_product_call(draw):
    shape = tuple(draw(st.lists(_dims(), min_size=1, max_size=4)))
    tensor = draw(_mostly(_array(shape), V.arrays()))
    modes = draw(st.permutations(range(len(shape)))).copy()[: draw(st.integers(0, len(shape)))]
    mats = [draw(_array((draw(_dims()), shape[m] + draw(st.sampled_from([0, 0, 0, 1]))))) for m in modes]
    if draw(st.integers(0, 4)) == 4:
        modes = draw(V.odd_containers() | st.just([*modes, 0]))
    if draw(st.integers(0, 6)) == 6:
        mats = draw(V.anything())
    return {"tensor": tensor, "matrices": mats, "modes": modes}


def _mode_product_oracle(args, out):
    t = np.asarray(args["tensor"], dtype=np.float64)
    for a, m in zip(args["matrices"], args["modes"]):
        t = np.moveaxis(np.tensordot(np.asarray(a, dtype=np.float64), t, axes=(1, m)), 0, m)
    return None if np.allclose(out, t, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(t).max())) else "differs from tensordot"


@st.composite
def cp_full_call(draw):
    r = draw(_dims())
    rows = draw(st.lists(_dims(), min_size=1, max_size=4))
    factors = [draw(_array((n, r + draw(st.sampled_from([0, 0, 0, 0, 1]))))) for n in rows]
    weights = draw(_mostly(st.none() | _array((r,)) | _array((r,)) | _array((r + 1,)), V.anything()))
    if draw(st.integers(0, 6)) == 6:
        factors = draw(V.anything())
    return {"weights": weights, "factors": factors}


def _cp_full_oracle(args, out):
    fs = [np.asarray(f, dtype=np.float64) for f in args["factors"]]
    w = np.ones(fs[0].shape[1]) if args["weights"] is None else np.asarray(args["weights"], dtype=np.float64)
    want = np.zeros([f.shape[0] for f in fs])
    for r in range(len(w)):
        term = np.array(w[r])
        for f in fs:
            term = np.multiply.outer(term, f[:, r])
        want += term
    return None if np.allclose(out, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max())) else "differs"


def _layer(kind):
    torch.manual_seed(0)
    return {"conv1d": lambda: nn.Conv1d(3, 4, 3, padding=1), "conv2d": lambda: nn.Conv2d(2, 3, 2, stride=2),
            "conv3d": lambda: nn.Conv3d(2, 2, 2), "linear": lambda: nn.Linear(5, 3),
            "grouped": lambda: nn.Conv2d(4, 4, 3, groups=2), "half": lambda: nn.Conv1d(2, 3, 3).half(),
            "nobias": lambda: nn.Conv2d(3, 2, 3, bias=False).double()}[kind]()


def layers():
    return _mostly(st.sampled_from(["conv1d", "conv2d", "conv3d", "linear", "linear", "grouped", "half", "nobias"])
                   .map(_layer), V.modules())


@st.composite
def _factors_for(draw, layer, method):
    """Legal (init_factors) or perturbed factors for ``layer``."""
    from redundancy.rank_search.factors import init_factors

    w = layer.weight.detach().double().numpy()
    r = draw(st.integers(1, 3))
    try:
        fs = list(init_factors(w, method if method in ("tt", "tucker", "cp") else "tt", r))
    except Exception:  # noqa: BLE001 - rank above the bound: odd factors instead
        fs = [np.ones((2, 2))] * 3
    how = draw(st.sampled_from(["ok", "ok", "ok", "torch", "wrong", "nan", "big", "drop", "odd"]))
    if how == "torch":
        fs = [torch.from_numpy(f) for f in fs]
    elif how == "wrong":
        fs[0] = np.ones((fs[0].shape[0] + 1, fs[0].shape[1]))
    elif how == "nan":
        fs[-1] = fs[-1].copy()
        fs[-1].flat[0] = np.nan
    elif how == "big":
        fs = [f * 1e200 for f in fs]
    elif how == "drop":
        fs = fs[:-1]
    elif how == "odd":
        fs = draw(V.anything())
    return fs


@st.composite
def build_chain_call(draw):
    layer = draw(layers())
    method = draw(_mostly(st.sampled_from(["tt", "tucker", "cp", "svd", "abc"]), V.odd_scalars()))
    factors = draw(_factors_for(layer, method)) if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) \
        else draw(V.anything())
    return {"layer": layer, "factors": factors, "method": method}


@st.composite
def chain_kernel_call(draw):
    from redundancy.lowrank.chains import tucker2_layer
    from redundancy.lowrank.decompose import decompose_layer
    from redundancy.rank_search.chains import build_chain
    from redundancy.rank_search.factors import init_factors

    kind = draw(st.sampled_from(["tt", "cp", "tucker", "svd", "tucker2", "grouped", "nan", "odd"]))
    if kind in ("tt", "cp", "tucker", "svd", "nan"):
        layer = _layer("linear" if kind == "svd" else draw(st.sampled_from(["conv1d", "conv2d", "conv3d"])))
        method = "tt" if kind == "nan" else kind
        chain = build_chain(layer, init_factors(layer.weight.detach().double().numpy(),
                                                "tt" if method == "svd" else method, 2), method)
        if kind == "nan":
            with torch.no_grad():
                chain.core.weight.view(-1)[0] = float("nan")
        return {"chain": chain}
    if kind in ("tucker2", "grouped"):
        layer = _layer("grouped" if kind == "grouped" else "conv2d")
        g = layer.groups
        k = layer.weight.shape
        decs = [decompose_layer(nn.Conv2d(k[1], k[0] // g, layer.kernel_size), (1, 1)) for _ in range(g)]
        return {"chain": tucker2_layer(layer, decs if g > 1 else decs[0])}
    return {"chain": draw(V.modules())}


def _chain_kernel_oracle(args, K):
    """The chain's own forward against one dense conv / linear with the rebuilt kernel (torch.nn.functional)."""
    chain = args["chain"]
    mods = list(chain.children())
    torch.manual_seed(0)
    with torch.no_grad():
        if isinstance(mods[0], nn.Linear):
            x = torch.randn(3, mods[0].in_features, dtype=K.dtype)
            want, got = chain(x), nn.functional.linear(x, K, mods[-1].bias)
        else:
            core = mods[1]
            nd = K.ndim - 2
            x = torch.randn(2, K.shape[1], *[core.dilation[i] * (K.shape[2 + i] - 1) + 3 for i in range(nd)],
                            dtype=K.dtype)
            conv = {1: nn.functional.conv1d, 2: nn.functional.conv2d, 3: nn.functional.conv3d}[nd]
            want = chain(x)
            got = conv(x, K, mods[2].bias, stride=core.stride, padding=core.padding, dilation=core.dilation)
    err = float((want - got).abs().max())
    return None if err <= 1e-4 * max(1.0, float(want.abs().max())) else f"chain forward differs by {err:.3g}"


def _chain_params_oracle(args, n):
    """Build a chain of that rank from random factors and count its parameters."""
    from redundancy.rank_search.chains import build_chain

    layer, r, m = args["layer"], args["rank"], args["method"]
    if r > 16:
        return None
    rng = np.random.default_rng(0)
    if isinstance(layer, nn.Linear):
        fs = (rng.normal(size=(layer.out_features, r)), rng.normal(size=(r, layer.in_features)))
    else:
        s = math.prod(layer.kernel_size)
        g = rng.normal(size=(s, r)) if m == "cp" else rng.normal(size=(r, s, r))
        fs = (rng.normal(size=(layer.out_channels, r)), g, rng.normal(size=(r, layer.in_channels)))
    want = sum(p.numel() for p in build_chain(layer, fs, m).parameters())
    return None if n == want else f"{n} != {want} parameters of the built chain"


@st.composite
def factors_kernel_call(draw):
    method = draw(_mostly(st.sampled_from(["tt", "tucker", "cp", "svd"]), V.odd_scalars()))
    co, ci, r, r2 = (draw(_dims()) for _ in range(4))
    k = tuple(draw(st.lists(_dims(1, 3), min_size=1, max_size=3)))
    s = math.prod(k)
    if method == "svd":
        fs = [draw(_array((co, r))), draw(_array((r, ci)))]
        ks = draw(st.none() | st.just(k))
    elif method == "cp":
        fs = [draw(_array((co, r))), draw(_array((s, r))), draw(_array((r, ci)))]
        ks = draw(_mostly(st.just(k), V.shapes_for(k)))
    else:
        fs = [draw(_array((co, r))), draw(_array((r, s, r2))), draw(_array((r2, ci)))]
        ks = draw(_mostly(st.just(k), V.shapes_for(k)))
    if draw(st.booleans()) and all(isinstance(f, np.ndarray) for f in fs):
        fs = [torch.from_numpy(f).requires_grad_() for f in fs]
    if draw(st.integers(0, 6)) == 6:
        fs = draw(V.anything())
    return {"factors": fs, "method": method, "kernel_size": ks}


def _factors_kernel_oracle(args, out):
    fs = [f.detach().double().numpy() if torch.is_tensor(f) else np.asarray(f, dtype=np.float64)
          for f in args["factors"]]
    got = out.detach().double().numpy() if torch.is_tensor(out) else out
    if len(fs) == 2:
        want = np.array([[sum(fs[0][i, a] * fs[1][a, j] for a in range(fs[0].shape[1]))
                          for j in range(fs[1].shape[1])] for i in range(fs[0].shape[0])])
    else:
        a, g, b = fs
        want = np.zeros((a.shape[0], b.shape[1], g.shape[0] if g.ndim == 2 else g.shape[1]))
        for t, c, p in itertools.product(*map(range, want.shape)):
            if g.ndim == 2:
                want[t, c, p] = sum(a[t, i] * g[p, i] * b[i, c] for i in range(a.shape[1]))
            else:
                want[t, c, p] = sum(a[t, i] * g[i, p, j] * b[j, c] for i in range(g.shape[0]) for j in range(g.shape[2]))
        want = want.reshape(got.shape)
    tol = 1e-5 if torch.is_tensor(out) and out.dtype == torch.float32 else 1e-10
    return None if np.allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max())) else "differs from loops"


def _counts(method=True, rank=True):
    def build(layer, r, m, pin, pout):
        kw = {"layer": layer, "in_positions": pin, "out_positions": pout}
        if rank:
            kw["rank"] = r
        if method:
            kw["method"] = m
        return kw
    return st.builds(build, layers(), _mostly(st.integers(1, 8), V.ints()),
                     _mostly(st.sampled_from(["tt", "tucker", "cp", "svd"]), V.odd_scalars()),
                     _mostly(st.integers(1, 64), V.ints()), _mostly(st.integers(1, 64), V.ints()))


@st.composite
def view_call(draw, extra=()):
    shape = (draw(_dims()), draw(_dims(1, 9)), draw(_dims()))
    kw = {"view": draw(_mostly(_array(shape), V.arrays())), "rank": draw(_mostly(st.integers(1, 4), V.ints()))}
    if "seed" in extra and draw(st.booleans()):
        kw["seed"] = draw(V.seeds())
    if "n_iter_max" in extra and draw(st.booleans()):
        kw["n_iter_max"] = draw(_mostly(st.integers(1, 50), V.ints()))
    return kw


@st.composite
def init_factors_call(draw):
    shape = draw(st.sampled_from([(3, 4), (4, 3, 3), (2, 3, 2, 2), (2, 2, 1, 2, 2)]))
    return {"kernel": draw(_mostly(_array(shape), V.arrays())), "rank": draw(_mostly(st.integers(1, 4), V.ints())),
            "method": draw(_mostly(st.sampled_from(["tt", "tucker", "cp", "svd"]), V.odd_scalars())),
            **({"seed": draw(V.seeds())} if draw(st.booleans()) else {})}


@st.composite
def unfold_call(draw, matrix=False):
    shape = tuple(draw(st.lists(_dims(), min_size=1, max_size=4)))
    kw = {"tensor": draw(_mostly(_array(shape), V.arrays())),
          "mode": draw(_mostly(st.integers(0, len(shape) - 1), V.ints()))}
    if matrix:
        cols = shape[kw["mode"]] if isinstance(kw["mode"], int) and 0 <= kw["mode"] < len(shape) else 2
        kw["matrix"] = draw(_mostly(_array((draw(_dims()), cols)), V.arrays()))
    return kw


def sizes():
    one = _mostly(st.integers(1, 10 ** 4), V.ints())
    return st.fixed_dictionaries({"c_out": one, "s": one, "c_in": one})


def rows(T):
    """The explicit rows, built with the registry's ``T(fn, kwargs, **kw)``."""
    from redundancy.rank_search import chains as RC
    from redundancy.lowrank import tensor_ops as TO
    from redundancy.rank_search import factors as TT

    return {
        "redundancy.lowrank.tensor_ops.unfold": T(TO.unfold, unfold_call()),
        "redundancy.lowrank.tensor_ops.mode_product": T(TO.mode_product, unfold_call(matrix=True), oracle=lambda a, out:
                                                        _mode_product_oracle({"tensor": a["tensor"], "matrices": [
                                                            a["matrix"]], "modes": [a["mode"]]}, out)),
        "redundancy.rank_search.factors.tt_max_rank": T(TT.tt_max_rank, sizes()),
        "redundancy.rank_search.factors.cp3_max_rank": T(TT.cp3_max_rank, sizes()),
        "redundancy.rank_search.factors.conv_view": T(TT.conv_view, init_factors_call().map(
            lambda kw: {"kernel": kw["kernel"]})),
        "redundancy.rank_search.factors.svd_factors": T(TT.svd_factors, st.builds(
            lambda m, r: {"matrix": m, "rank": r}, st.tuples(_dims(), _dims()).flatmap(lambda sh: _mostly(
                _array(sh), V.arrays())), _mostly(st.integers(1, 4), V.ints()))),
        "redundancy.lowrank.tensor_ops.multi_mode_product": T(TO.multi_mode_product, mode_product_call(),
                                                              oracle=_mode_product_oracle),
        "redundancy.lowrank.tensor_ops.cp_full": T(TO.cp_full, cp_full_call(), oracle=_cp_full_oracle),
        "redundancy.rank_search.chains.build_chain": T(RC.build_chain, build_chain_call()),
        "redundancy.rank_search.chains.chain_kernel": T(RC.chain_kernel, chain_kernel_call(),
                                                         oracle=_chain_kernel_oracle),
        "redundancy.rank_search.chains.factors_kernel": T(RC.factors_kernel, factors_kernel_call(),
                                                           oracle=_factors_kernel_oracle),
        "redundancy.rank_search.chains.chain_params": T(RC.chain_params, _counts().map(
            lambda kw: {k: v for k, v in kw.items() if "positions" not in k}), oracle=_chain_params_oracle),
        "redundancy.rank_search.chains.chain_macs": T(RC.chain_macs, _counts()),
        "redundancy.rank_search.chains.dense_macs": T(RC.dense_macs, _counts(method=False, rank=False)),
        "redundancy.rank_search.factors.tt_svd_factors": T(TT.tt_svd_factors, view_call()),
        "redundancy.rank_search.factors.tucker_factors": T(TT.tucker_factors, view_call(("seed",))),
        "redundancy.rank_search.factors.cp3_factors": T(TT.cp3_factors, view_call(("seed", "n_iter_max"))),
        "redundancy.rank_search.factors.init_factors": T(TT.init_factors, init_factors_call()),
    }
