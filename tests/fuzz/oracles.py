"""Independent oracles for the explicit fuzz rows: each ``oracle(args, result)`` returns ``None`` when
the result agrees with a computation that does not share the library's code path (torch's
FlopCounterMode for MACs, exact fractions for the bounds, the model's own forward for ``W``), else a
short description of the disagreement."""

from __future__ import annotations

import math

import numpy as np
import torch


def _as_shape(s):
    return (int(s),) if isinstance(s, int) else tuple(int(v) for v in s)


def _flop_oracle(args, macs):
    """count_macs against torch's FlopCounterMode (conv and linear FLOPs / 2), on a copy."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from redundancy.counts import DenseChargedConv

    model = args["model"]
    if not isinstance(model, torch.nn.Module) or any(isinstance(m, DenseChargedConv) for m in model.modules()) \
            or any(t.is_meta for t in model.parameters()):
        return None  # factorised convs are charged for their dense conv only (documented)
    m = copy.deepcopy(model).eval()
    p = next(iter(m.parameters()), None)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.zeros((1, *_as_shape(args["input_shape"])), dtype=p.dtype if p is not None else torch.float32))
    want = fc.get_total_flops() // 2
    got = sum(macs.values())
    return None if got == want else f"total MACs {got} != FlopCounterMode {want}"


def _analyze_oracle(args, report):
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from redundancy.counts import DenseChargedConv

    if any(isinstance(m, DenseChargedConv) for m in args["model"].modules()):
        return None
    m = copy.deepcopy(args["model"]).eval()
    p = next(iter(m.parameters()), None)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.zeros((1, *_as_shape(args["input_shape"])), dtype=p.dtype if p is not None else torch.float32))
    want = fc.get_total_flops() // 2
    got = report.summary.macs
    return None if got == want else f"report MACs {got} != FlopCounterMode {want}"


def _params_oracle(args, n):
    m = args["model"]
    want = sum(p.numel() for p in {id(p): p for p in m.parameters()}.values()
               if p.requires_grad or not args.get("trainable_only"))
    return None if n == want else f"{n} != {want}"


def _tensor_oracle(args, res):
    """<W, x> + b against the model's own forward (float64 copy) on fresh random inputs, one at a time."""
    import copy

    if args.get("at") is not None:
        return None
    m = copy.deepcopy(args["model"]).double().eval()
    rng = np.random.default_rng(123)
    for _ in range(3):
        x = rng.normal(size=res.input_shape) + rng.normal()
        with torch.no_grad():
            y = m(torch.from_numpy(x)[None]).reshape(-1).numpy()
        pred = res.apply(x)
        if np.abs(pred - y).max() > 1e-6 * max(1.0, np.abs(y).max()):
            return f"<W,x>+b differs from the forward by {np.abs(pred - y).max():.3g}"
    return None


def _sample_oracle(args, res):
    from fractions import Fraction

    d = args["dof"]
    if not isinstance(d, int):
        return None
    c = Fraction(args.get("constant", 1.0)) * Fraction(args.get("sigma", 1.0)) ** 2 * d \
        * Fraction(args.get("log_factor", 1.0)) / Fraction(args["eps"]) ** 2
    want = math.ceil(c)
    return None if abs(res.n - want) <= 1 else f"n={res.n}, exact {want}"


def _error_oracle(args, res):
    import mpmath

    d = args["dof"]
    if not isinstance(d, int):
        return None
    mp = mpmath.mpf
    want = mp(args.get("constant", 1.0)) * mp(args.get("sigma", 1.0)) * mpmath.sqrt(
        mp(d) * mp(args.get("log_factor", 1.0)) / mp(args["n"]))
    return None if abs(mp(res.error) - want) <= 1e-9 * max(want, 1e-300) else f"error={res.error}, exact {want}"


def _rel(tensor, approx) -> float:
    t = np.asarray(tensor, dtype=np.float64)
    return float(np.linalg.norm(t - approx) / max(np.linalg.norm(t), 1e-300))


def _cp_oracle(args, res):
    """The CP error against the tensor rebuilt by an einsum of the returned weights and factors."""
    t = np.asarray(args["tensor"], dtype=np.float64)
    letters = "abcdefgh"[: t.ndim]
    full = np.einsum(",".join(f"{c}r" for c in letters) + ",r->" + letters, *res.factors, res.weights)
    want = _rel(t, full)
    if res.rank != args["rank"] or any(f.shape != (n, res.rank) for f, n in zip(res.factors, t.shape)):
        return f"factor shapes {[f.shape for f in res.factors]} do not fit rank {args['rank']}"
    return None if abs(res.rel_error - want) <= 1e-8 + 1e-6 * want else f"rel_error={res.rel_error}, rebuilt {want}"


def _tucker_oracle(args, res):
    """The Tucker error against the core multiplied by the factors mode by mode (tensordot), and
    orthonormal factor columns."""
    t = np.asarray(args["tensor"], dtype=np.float64)
    full = np.asarray(res.core, dtype=np.float64)
    for m, u in zip(res.modes, res.factors):
        full = np.moveaxis(np.tensordot(u, full, axes=(1, m)), 0, m)
        if not np.allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-8):
            return f"factor of mode {m} is not orthonormal"
    want = _rel(t, full)
    return None if abs(res.rel_error - want) <= 1e-8 + 1e-6 * want else f"rel_error={res.rel_error}, rebuilt {want}"
