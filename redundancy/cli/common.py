"""Helpers shared by the CLI's subcommand modules (argument types, output folder, figures, model
loading). They parse and load; they compute nothing."""

from __future__ import annotations

import argparse
import ast
import importlib
import os

import numpy as np

from redundancy.errors import RedundancyError


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; give comma-separated positive integers such as 3,32,32")
    return shape


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
    if os.path.exists(path) and not os.path.isdir(path):
        raise RedundancyError(f"--out={path!r} exists and is not a directory")
    os.makedirs(path, exist_ok=True)
    return path


def _save_fig(display, path: str) -> None:
    display.figure_.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(display.figure_)


def _agg():
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files


def load_model(spec: str, model_args: dict | None = None):
    """A model from a zoo name or ``package.module:factory``; returns ``(model, default_input_shape)``."""
    kwargs = dict(model_args or {})
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            raise RedundancyError(f"MODEL={spec!r}: cannot import module {mod_name!r} ({exc})") from None
        factory = getattr(mod, attr, None)
        if factory is None or not callable(factory):
            raise RedundancyError(f"MODEL={spec!r}: module {mod_name!r} has no callable {attr!r}")
        model = factory(**kwargs)
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


def build_model(spec, weights, input_shape, model_args, what="MODEL", loader=None):
    """``(model, input_shape)`` in eval mode: built by ``loader`` (default :func:`load_model`), its
    weights loaded (``weights_only=True``), the shape given or the zoo model's default."""
    from redundancy.checkpoint import load_weights

    model, default = (loader or load_model)(spec, model_args)
    if weights is not None:
        load_weights(model, weights)
    shape = input_shape or default
    if shape is None:
        raise RedundancyError(f"{what}={spec!r} is not a zoo model; give --input-shape C,H,W")
    model.eval()
    return model, tuple(shape)


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


def _sub(sub, name, help_, epilog):
    return sub.add_parser(name, help=help_, description=help_, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
