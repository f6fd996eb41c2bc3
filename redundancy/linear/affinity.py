"""Is a model affine in its input? The check of :func:`redundancy.linear.whole_network_tensor`.

``<W, x> + b`` is compared with the model's forward pass at nine independent inputs, each run
alone (:func:`_check_points`); a failure names the deepest submodule that breaks the midpoint test
``f((a+b)/2) = (f(a)+f(b))/2`` (:func:`_locate_nonaffine`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import redundancy._validation as _v
from redundancy.errors import NotLinearError, RedundancyError


def _run_checked(model: nn.Module, x: torch.Tensor, input_shape) -> torch.Tensor:
    """Forward pass that turns torch's shape errors into a RedundancyError naming the layer."""
    entered: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_pre_hook(lambda mod, args: entered.append(names.get(mod, "?")))
             for m in model.modules()]
    try:
        return model(x)
    except RedundancyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the caller's forward may raise anything (KeyError...)
        where = f" in submodule '{entered[-1] or '<root>'}'" if entered else ""
        first = _v._first_line(exc)
        first = f"{type(exc).__name__}: {first}" if not isinstance(exc, (RuntimeError, ValueError)) else first
        raise RedundancyError(
            f"the model cannot be evaluated on input_shape={tuple(input_shape)}{where}: {first}. "
            "input_shape is the shape of one example without the batch dimension, e.g. (C, H, W)") from exc
    finally:
        for h in hooks:
            h.remove()


def _locate_nonaffine(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> str | None:
    """Name the deepest submodule whose own map fails the midpoint test f((a+b)/2) = (f(a)+f(b))/2."""
    records: dict[str, list] = {}
    hooks = []
    for name, mod in model.named_modules():

        def hook(mod, args, out, name=name):
            records.setdefault(name, []).append((args, out))
        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x1)
            model(x2)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    failing = []
    for name, rec in records.items():
        if len(rec) != 2:
            continue
        (a1, o1), (a2, o2) = rec
        if not (all(isinstance(t, torch.Tensor) for t in a1) and isinstance(o1, torch.Tensor)):
            continue
        mid = tuple((u + v) / 2 for u, v in zip(a1, a2))
        try:
            with torch.no_grad():
                om = modules[name](*mid)
        except Exception:  # noqa: BLE001 - a module that cannot be re-called is simply not tested
            continue
        ref = (o1 + o2) / 2
        scale = max(float(ref.abs().max()), 1e-300)
        if float((om - ref).abs().max()) > 1e-7 * scale:
            failing.append(name)
    if not failing:
        return None
    # the deepest failing module: no other failing module lies below it
    def below(o: str, n: str) -> bool:
        return o != n and (n == "" or o.startswith(n + "."))
    deepest = [n for n in failing if not any(below(o, n) for o in failing)]
    return deepest[0] or "<root>"


def _check_points(input_shape, seed) -> torch.Tensor:
    """Independent check inputs, each run alone (a batch of one: nothing can cancel across the batch,
    and a forward that branches on a batch statistic sees each draw by itself): standard normal,
    all-positive, all-negative, shifted, two scales (10**3, 10**-3), and three far points (10**8 in a
    random and in an all-negative direction, 10**12): an affine map fits all of them; a piecewise-linear
    or data-dependent one (``|l(x) + c|`` with a large ``c``) leaves its region around x0 for one."""
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((6, *input_shape), generator=gen, dtype=torch.float64)
    far = torch.randn((3, *input_shape), generator=gen, dtype=torch.float64)
    return torch.stack([z[0], z[1].abs(), -z[2].abs(), z[3] + 1.0, 1e3 * z[4], 1e-3 * z[5],
                        1e8 * far[0], -1e8 * far[1].abs(), 1e12 * far[2]])


def _affinity_check(net, jac_flat, bias, input_shape, seed) -> float:
    """Largest relative error of ``<W, x> + b`` against the forward pass; NotLinearError above 1e-8."""
    xs = _check_points(input_shape, seed)
    errs = []
    with torch.no_grad():
        for i, x in enumerate(xs):
            y = _run_checked(net, x[None], input_shape).reshape(-1)
            p = jac_flat @ x.reshape(-1) + torch.from_numpy(bias)
            if i >= 6 and not (bool(torch.isfinite(y).all()) and bool(torch.isfinite(p).all())):
                errs.append(0.0)  # a far point beyond this model's float range says nothing about affinity
                continue
            scale = max(float(y.abs().max()), float(p.abs().max()), 1e-300)
            errs.append(float((y - p).abs().max()) / scale)
    max_err = float(max(errs)) if all(np.isfinite(errs)) else float("inf")
    if not np.isfinite(max_err) or max_err > 1e-8:
        _raise_not_affine(net, xs, errs, max_err)
    return max_err


def _raise_not_affine(net, xs, errs, max_err) -> None:
    worst = int(np.nanargmax(np.where(np.isfinite(errs), errs, np.inf)))
    other = 4 if worst != 4 else 0
    where = _locate_nonaffine(net, xs[worst:worst + 1], xs[other:other + 1])
    if where is None:
        loc = "its forward"
    else:
        mod = net if where == "<root>" else net.get_submodule(where)
        hint = " (a functional non-linearity in its forward?)" if any(True for _ in mod.children()) else ""
        loc = f"submodule '{where}'{hint}"
    shown = f"{max_err:.2e}" if np.isfinite(max_err) else "not finite"
    raise NotLinearError(
        f"model is not linear in its input: {loc} fails the affinity check "
        f"(relative error {shown} > 1e-8). Pass at=x0 for a local linearisation",
        module_name=where)
