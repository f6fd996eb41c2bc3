"""Helpers shared by the CLI's subcommand modules (argument types, output folder, figures, model
loading). They parse and load; they compute nothing."""

from __future__ import annotations

import argparse
import ast
import importlib
import os

import numpy as np

import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__ = []  # the face is redundancy.cli; the rest is importable from here


_MODEL_SPEC = {"spec": _v.Instance(str, "a zoo name or package.module:factory"),
               "model_args": _v.NoneOr(_v.Instance(dict, "a dict of keyword arguments"))}


@_v.validate_params({**_MODEL_SPEC, "weights": _v.NoneOr(_v.PathArg()), "input_shape": _v.NoneOr(_v.Shape()),
                     "what": _v.Instance(str, "a str"), "loader": _v.NoneOr(_v.CallableArg()),
                     "seed": _v.NoneOr(_v.Seed())})
def build_model(spec, weights, input_shape, model_args, what="MODEL", loader=None, seed=0):
    """``(model, input_shape)`` in eval mode: built by ``loader`` (default :func:`load_model`) from
    ``seed``, its weights loaded (``weights_only=True``), the shape given or the zoo model's default."""
    from redundancy.checkpoint import load_weights

    model, default = (loader or load_model)(spec, model_args, seed)
    if weights is not None:
        load_weights(model, weights)
    shape = input_shape or default
    if shape is None:
        raise RedundancyError(f"{what}={spec!r} is not a zoo model; give --input-shape C,H,W")
    model.eval()
    return model, tuple(shape)


def _sub(sub, name, help_, epilog):
    return sub.add_parser(name, help=help_, description=help_, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400] + ("..." if len(text) > 400 else "")


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; give comma-separated positive integers such as 3,32,32")
    return shape


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 2 ** 63 - 1:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a seed; give an integer in [0, 2**63 - 1]")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 10_000:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a count; give an integer in [0, 10000]")
    return v


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive integers such as 1,8,32")
    return vals


def _float(text: str, *, strict: bool) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not np.isfinite(v) or v < 0 or (strict and v == 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number {'>' if strict else '>='} 0")
    return v


def _pos_float(text: str) -> float:
    return _float(text, strict=True)


def _nonneg_float(text: str) -> float:
    return _float(text, strict=False)


def _kv(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. kr=4)")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _out_dir(path: str | None) -> str | None:
    if path is None:
        return None
    if not path.strip():
        raise RedundancyError("--out='' is empty; give a directory name")
    if os.path.exists(path) and not os.path.isdir(path):
        raise RedundancyError(f"--out={path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise RedundancyError(f"--out={path!r} cannot be created ({exc.strerror or exc})") from None
    return path


def _save_fig(display, path: str) -> None:
    display.figure_.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(display.figure_)


def _agg():
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files


@_v.validate_params({**_MODEL_SPEC, "seed": _v.NoneOr(_v.Seed())})
def load_model(spec: str, model_args: dict | None = None, seed: int | None = 0):
    """A model from a zoo name or ``package.module:factory``; returns ``(model, default_input_shape)``.

    The weights are drawn from ``torch.manual_seed(seed)`` (default 0, the CLI's ``--seed``) inside
    :func:`torch.random.fork_rng`, so two processes build bit-identical models; a ``seed`` in
    ``model_args`` wins; ``seed=None`` leaves torch's global generator in charge."""
    import torch

    kwargs = dict(model_args or {})
    if seed is not None and "seed" not in kwargs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_model(spec, kwargs, None)
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except Exception as exc:  # noqa: BLE001 - ImportError, ValueError (empty name), errors at import
            raise RedundancyError(f"MODEL={spec!r}: cannot import module {mod_name!r} "
                                  f"({type(exc).__name__}: {_one_line(exc)})") from None
        factory = getattr(mod, attr, None) if attr.isidentifier() else None
        if factory is None or not callable(factory):
            raise RedundancyError(f"MODEL={spec!r}: module {mod_name!r} has no callable {attr!r}")
        try:
            model = factory(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller's factory may raise anything
            raise RedundancyError(f"MODEL={spec!r}: {attr}({', '.join(f'{k}=...' for k in kwargs)}) raised "
                                  f"{type(exc).__name__}: {_one_line(exc)}") from None
        import torch

        if not isinstance(model, torch.nn.Module):
            raise RedundancyError(f"MODEL={spec!r}: {attr}() returned {type(model).__name__}, "
                                  "not a torch.nn.Module")
        return model, None
    from redundancy import zoo

    names = list(zoo.MODELS)
    if spec not in names:
        raise RedundancyError(f"MODEL={spec!r} is not a zoo model ({', '.join(names)}) nor "
                              "package.module:factory")
    return zoo.get_model(spec, **kwargs), zoo.default_input_shape(spec)
