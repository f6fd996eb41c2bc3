"""Explicit fuzz rows for ``redundancy.bayes`` and ``redundancy.longtail`` helpers whose generic
strategies (chosen from parameter names) never build a legal call: legal values mixed with odd ones,
and independent oracles where the answer is cheap to recompute (torch.distributions, brute force)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from tests.fuzz import values as V


def _opt(**strats):
    return st.fixed_dictionaries({}, optional=strats)


def _tensors(*shape):
    return st.sampled_from([torch.float32, torch.float64]).flatmap(
        lambda dt: st.integers(0, 99).map(lambda s: torch.randn(*shape, generator=torch.Generator().manual_seed(s),
                                                                dtype=dt)))


def _pos_tensors(*shape):
    return _tensors(*shape).map(lambda t: t.abs() + 0.05)


def _odd():
    return V.arrays() | V.odd_scalars()


def _mix(legal, odd=None):
    """``legal`` three times in four, else an odd value (``st.one_of`` would weigh every odd branch alike)."""
    odd = _odd() if odd is None else odd
    return st.integers(0, 3).flatmap(lambda i: odd if i == 0 else legal)


@functools.lru_cache(maxsize=1)
def _fitted():
    """One tiny spike-and-slab fit (5 features, 4 hidden nodes), shared by the rows below."""
    from redundancy.bayes import fit_spike_slab

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    return fit_spike_slab((4,), (X, y), epochs=1, n_samples=2, seed=0), (X, y)


# ----------------------------------------------------------------------------------- oracles
def _small(t) -> bool:
    return bool((t.abs() < 1e30).all())


def _kl_bernoulli_oracle(args, res):
    from torch.distributions import Bernoulli, kl_divergence

    lam = float(args["prior_inclusion"])
    if not 1e-10 < lam < 1 - 1e-10 or not isinstance(args["logit"], torch.Tensor) or not _small(args["logit"]):
        return None
    ref = kl_divergence(Bernoulli(logits=args["logit"].double()), Bernoulli(probs=torch.tensor(lam).double()))
    return None if torch.allclose(res.double(), ref, rtol=1e-4, atol=1e-5) else "KL differs from torch.distributions"


def _kl_normal_oracle(args, res):
    from torch.distributions import Normal, kl_divergence

    mu, sigma, s0 = args["mu"], args["sigma"], float(args["slab_scale"])
    if not all(isinstance(t, torch.Tensor) for t in (mu, sigma)) or not 1e-3 < s0 < 1e3:
        return None
    ref = kl_divergence(Normal(mu.double(), sigma.double()), Normal(0.0, torch.tensor(s0, dtype=torch.float64)))
    return None if torch.allclose(res.double(), ref, rtol=1e-4, atol=1e-5) else "KL differs from torch.distributions"


def _ece_oracle(args, res):
    """Brute force over the bins ``[b/B, (b+1)/B)`` of the top probability (``np.digitize``; 1.0 in the top bin)."""
    p, y, nb = np.asarray(args["probs"], float), np.asarray(args["y"]), args.get("n_bins", 15)
    conf, hit = p.max(1), (p.argmax(1) == y)
    which = np.digitize(conf, np.linspace(0, 1, nb + 1)[1:-1])
    total = sum((which == b).mean() * abs(hit[which == b].mean() - conf[which == b].mean())
                for b in range(nb) if (which == b).any())
    return None if abs(total - res) < 1e-9 else f"ECE {res} != brute force {total}"


def _edges_oracle(args, res):
    ok = res.ndim == 1 and len(res) >= 2 and np.isfinite(res).all() and (np.diff(res) > 0).all()
    return None if ok else f"edges {res} are not increasing and finite"


def _runs_oracle(args, res):
    sub, init, order = res
    m = int(round(args.get("subset_ratio", 0.7) * args["n_train"]))
    ok = sub.shape == (args["n_models"], m) and all(len(set(r)) == m and r.min() >= 0 and r.max() < args["n_train"]
                                                    and (np.diff(r) > 0).all() for r in sub)
    return None if ok and len(init) == len(order) == args["n_models"] else "subsets are not sorted distinct indices"


def _loss_oracle(args, res):
    from scipy.special import log_softmax

    from redundancy.data import as_dataset

    ds = as_dataset(args["data"])
    test = args.get("split", "test") == "test"
    X, y = (ds.X_test, ds.y_test) if test else (ds.X_train, ds.y_train)
    with torch.no_grad():
        out = args["model"](torch.as_tensor(X)).double().numpy()
    ref = -log_softmax(out, axis=1)[np.arange(len(y)), y]
    return None if np.allclose(res, ref, rtol=1e-6, atol=1e-9) else "per-example loss differs from -log_softmax"


def _shape_oracle(n_out_key):
    def oracle(args, model):
        s = args["input_shape"]
        shape = (int(s),) if isinstance(s, (int, np.integer)) else tuple(s)
        if math.prod(shape) > 10 ** 6:
            return None  # too large to run here (the builder only allocates the weights)
        with torch.no_grad():
            out = model(torch.zeros((2, *shape)))
        return None if tuple(out.shape) == (2, args[n_out_key]) else f"output shape {tuple(out.shape)}"
    return oracle


def _magnitude_oracle(args, res):
    """The pruned network against the original one with the removed hidden units zeroed."""
    net, x = args["model"], torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = torch.relu(net[0](x))
        h[:, [r["channel"] for r in res.removed if r["layer"] == "0"]] = 0
        want, got = net[2](h), res.model(x)
    return None if torch.allclose(got, want, atol=1e-6) else "pruned network differs from the masked original"


def _suite_oracle(args, res):
    want = {f"lowrank_{f:g}" for f in args.get("ranks", (0.5, 0.25, 0.125))} | {"int8_dynamic"}
    want |= {f"prune_{a:g}" for a in args.get("amounts", (0.5, 0.8, 0.9))}
    want |= {"int8_static"} if args.get("calibration_X") is not None else set()
    return None if set(res) == want else f"models {sorted(res)} != {sorted(want)}"


def _conv1d():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))


def _mlp4():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


# ----------------------------------------------------------------------------------- rows
def _factory(kind):
    return {"linear": lambda: nn.Linear(2, 1), "int": lambda: 3, "raises": lambda: 1 / 0}[kind]


def _blobs(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    return X, np.arange(n) % 2


def _loss_call(data, opts):
    x0 = data[0] if isinstance(data, tuple) and data else None
    d = x0.shape[1] if getattr(x0, "ndim", 0) == 2 else 3
    model = nn.Linear(d, 2) if not opts.pop("conv", False) else nn.Conv2d(1, 2, 3)
    return {"model": model, "data": data, **opts}


def rows(T) -> dict:
    from redundancy.bayes import convert as BC, curve as BU, fit as BF, kl as BK, prune as BP
    from redundancy.zoo import small as ZS
    from redundancy.longtail import compressions as LC, mismatch as LM, subsample as LS, tail as LT

    lam = _mix(st.floats(0.01, 0.99), V.pos_floats())
    widths = _mix(st.lists(st.integers(1, 6), max_size=3), V.odd_containers() | V.ints())
    channels = _mix(st.lists(st.integers(1, 6), min_size=1, max_size=3), V.odd_containers() | V.ints())
    probs = st.tuples(st.integers(1, 12), st.integers(1, 4), st.integers(0, 99)).map(
        lambda a: torch.softmax(torch.randn(a[0], a[1], generator=torch.Generator().manual_seed(a[2]),
                                            dtype=torch.float64) * 3, 1).numpy())
    scores = _mix(st.sampled_from([np.arange(10.0), np.r_[np.zeros(6), np.ones(4)], np.full(5, 2.0),
                              np.array([-1e308, 1e308, 0.0]), np.full(3, 1.7976931348623157e308),
                              np.array([0.0, 5e-324]), np.random.default_rng(1).normal(size=30)]))
    bins = st.integers(1, 6) | st.sampled_from(["uniform:3", "uniform:1", "uniform:0", "uniform:10000", "x",
                                                [0.0, 1.0, 5.0], [1.0, 0.0], np.array([-np.inf, 0.0]), 10 ** 400])
    return {
        "redundancy.bayes.kl.kl_bernoulli": T(BK.kl_bernoulli, st.fixed_dictionaries(
            {"logit": _mix(_tensors(4) | _tensors(4).map(lambda t: t * 1e6)), "prior_inclusion": lam}),
            oracle=_kl_bernoulli_oracle),
        "redundancy.bayes.kl.kl_normal": T(BK.kl_normal, st.fixed_dictionaries(
            {"mu": _mix(_tensors(3)),
             "sigma": _mix(_pos_tensors(3) | _pos_tensors(3).map(lambda t: t * 1e-30) | _tensors(3)),
             "slab_scale": _mix(st.floats(0.1, 3), V.pos_floats())}), oracle=_kl_normal_oracle),
        "redundancy.bayes.kl.spike_slab_kl": T(BK.spike_slab_kl, st.fixed_dictionaries(
            {"logit": _mix(_tensors(3), _tensors(2) | _odd()), "mu": _mix(_tensors(3, 2)),
             "sigma": _mix(_pos_tensors(3, 2), _pos_tensors(2) | _odd()), "prior_inclusion": lam,
             "slab_scale": _mix(st.floats(0.1, 3), V.pos_floats())})),
        "redundancy.bayes.kl.relaxed_bernoulli": T(BK.relaxed_bernoulli, st.builds(
            lambda a, o: {**a, **o}, st.fixed_dictionaries({"logit": _mix(_tensors(5)),
                                                            "temperature": _mix(st.floats(1e-7, 10), V.pos_floats())}),
            _opt(generator=st.sampled_from([None, "abc", 3]) | st.just(0).map(
                lambda s: torch.Generator().manual_seed(s))))),
        "redundancy.zoo.small.mlp": T(ZS.mlp, st.builds(
            lambda a, o: {**a, **o}, st.fixed_dictionaries({
                "input_shape": _mix(st.sampled_from([(5,), (1, 4, 4)]), V.shapes_for((1, 6))), "widths": widths,
                "n_out": _mix(st.integers(1, 4), V.ints())}), _opt(seed=V.seeds())), oracle=_shape_oracle("n_out")),
        "redundancy.zoo.small.plain_cnn": T(ZS.plain_cnn, st.builds(
            lambda a, o: {**a, **o}, st.fixed_dictionaries({
                "input_shape": _mix(st.sampled_from([(1, 8), (2, 6, 6), (1, 1), (1, 1, 1), (1, 10 ** 4, 10 ** 4)]),
                                    V.shapes_for((1, 6))),
                "channels": channels, "n_out": _mix(st.integers(1, 4), V.ints())}),
            _opt(hidden=_mix(st.integers(1, 8), V.ints()), seed=V.seeds())), oracle=_shape_oracle("n_out")),
        "redundancy.bayes.fit.expected_calibration_error": T(BF.expected_calibration_error, probs.flatmap(
            lambda p: st.fixed_dictionaries({"probs": _mix(st.just(p)), "y": _mix(st.lists(
                st.integers(0, p.shape[1] - 1), min_size=len(p), max_size=len(p)).map(np.array))},
                optional={"n_bins": _mix(st.integers(1, 20), V.ints())})), oracle=_ece_oracle),
        "redundancy.bayes.fit.posterior_predictive": T(BF.posterior_predictive, st.builds(
            lambda X, n, s: {"net": _fitted()[0].net, "X": X, "n_samples": n, "seed": s},
            _mix(st.integers(1, 6).map(lambda n: np.ones((n, 5), "float32")) | st.just(torch.zeros(2, 5))),
            _mix(st.integers(1, 3), V.ints()), _mix(st.integers(0, 9), V.seeds()))),
        "redundancy.bayes.prune.prune_to_counts": T(BP.prune_to_counts, st.builds(
            lambda r, c, o: {"result": _fitted()[0] if r else V.ODD_SCALARS[3], "counts": c, **o}, st.integers(0, 5),
            _mix(st.dictionaries(st.sampled_from(["1", "1", "nope"]), _mix(st.integers(1, 4), V.ints()), max_size=2)),
            _opt(order=st.sampled_from(["pip", "magnitude", "x", None])))),
        "redundancy.bayes.convert.to_spike_slab": T(BC.to_spike_slab, st.builds(
            lambda m, o: {"model": m, **o}, _mix(st.builds(_mlp4), V.modules()), st.fixed_dictionaries(
                {"input_shape": _mix(st.just((4,)), V.shapes_for((1, 6)))}, optional={
                    "prior_inclusion": lam, "slab_scale": _mix(st.floats(0.1, 3), V.pos_floats()),
                    "select_features": _mix(st.booleans(), V.odd_scalars()), "init_inclusion": lam,
                    "init_scale": _mix(st.floats(1e-3, 1), V.pos_floats()),
                    "temperature": _mix(st.tuples(st.floats(0.05, 2), st.floats(0.05, 2)), V.odd_containers()),
                    "total_steps": _mix(st.integers(1, 100), V.ints())}))),
        "redundancy.bayes.prune.prune_by_magnitude": T(BP.prune_by_magnitude, st.builds(
            lambda c, s_, o: {"model": _mlp4(), "counts": c, "input_shape": s_, **o},
            _mix(st.dictionaries(st.sampled_from(["0", "0", "2", "1"]), _mix(st.integers(1, 6), V.ints()),
                                 max_size=2)), _mix(st.just((4,)), V.shapes_for((1, 6))),
            _opt(fine_tune_epochs=st.sampled_from([0, 0, -1, 10 ** 9, 1.5]))), oracle=_magnitude_oracle),
        "redundancy.bayes.curve.inclusion_curve": T(BU.inclusion_curve, st.builds(
            lambda d, f: {"result": _fitted()[0], "data": _fitted()[1] if d is None else d, "fractions": f},
            _mix(st.none(), V.datasets()),
            _mix(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=2), V.odd_containers()))),
        "redundancy.longtail.mismatch.bin_edges": T(LM.bin_edges, st.builds(
            lambda s, o: {"score": s, **o}, scores, _opt(bins=bins)), oracle=_edges_oracle),
        "redundancy.longtail.compressions.compression_suite": T(LC.compression_suite, st.builds(
            lambda m, o: {"model": m, **o}, _mix(st.builds(_conv1d), V.modules()), _opt(
                calibration_X=_mix(_odd(), st.just(np.ones((3, 2, 4), "float32"))),  # legal 1 in 4: FX is slow
                ranks=_mix(st.lists(st.floats(0.1, 1.0), max_size=1), V.odd_containers()),
                amounts=_mix(st.lists(st.floats(0.1, 0.9), max_size=1), V.odd_containers()),
                seed=_mix(st.integers(0, 9), V.seeds()))), oracle=_suite_oracle),
        "redundancy.longtail.subsample.draw_runs": T(LS.draw_runs, st.builds(
            lambda a, o: {**a, **o}, st.fixed_dictionaries({"n_train": _mix(st.integers(2, 30), V.ints()),
                                                            "n_models": _mix(st.integers(1, 4), V.ints())}),
            _opt(subset_ratio=_mix(st.floats(0.05, 0.95), V.pos_floats()), seed=_mix(st.integers(0, 9), V.seeds()))),
            oracle=_runs_oracle),
        "redundancy.longtail.subsample.make_models": T(LS.make_models, st.fixed_dictionaries({
            "make_model": _mix(st.sampled_from(["linear", "linear", "int", "raises"]).map(_factory), V.anything()),
            "seeds": _mix(st.lists(st.integers(0, 5), max_size=3), V.odd_containers())})),
        "redundancy.longtail.tail.example_loss": T(LT.example_loss, st.builds(_loss_call, _mix(st.builds(
            _blobs, st.integers(6, 30), st.integers(1, 5), st.integers(0, 9)), V.datasets()), _opt(
            split=st.sampled_from(["test", "train", "x"]), conv=st.booleans())), oracle=_loss_oracle),
    }
