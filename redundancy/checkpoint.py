"""Loading a state_dict safely: ``torch.load(..., weights_only=True)`` and named key mismatches."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import torch
from torch import nn

from redundancy._validation import Bool, Instance, Module, PathArg, _short, validate_params
import redundancy._validation as _v
from redundancy.errors import CheckpointError

__all__ = ["load_weights"]

_SHOW = 8


def _names(keys) -> str:
    keys = list(keys)
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def _key_names(keys) -> str:
    return _names([str(k) for k in keys])


@validate_params({"model": Module(materialised=False), "path": PathArg(), "strict": Bool()})
def load_weights(model: nn.Module, path, *, strict: bool = True) -> nn.Module:
    """Load a state_dict file into ``model`` without ever running code from the file.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: only
    tensors and plain containers are unpickled. A file holding any other pickled object (which
    could run code on load) is refused. A dict with a ``"state_dict"`` entry is unwrapped. With
    ``strict=True`` missing keys, unexpected keys and shape mismatches are all named in the error.

    Parameters
    ----------
    model : torch.nn.Module
        Receives the weights (in place).
    path : str or os.PathLike
        The checkpoint file (``torch.save(model.state_dict(), path)``).
    strict : bool
        Require the keys and shapes to match exactly.

    Returns
    -------
    The same ``model``.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, holds non-tensor objects or non-string keys, holds NaN or
        infinite values, or does not match the model (keys, shapes); the model is on the meta device.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from torch import nn
    >>> src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> f = os.path.join(tempfile.mkdtemp(), "w.pt"); torch.save(src.state_dict(), f)
    >>> bool(torch.equal(load_weights(dst, f).weight, src.weight))
    True
    """
    if any(t.is_meta for t in model.parameters()):
        raise CheckpointError("model has parameters on the meta device; loading would copy nothing. "
                              "Materialise it first (model.to_empty(device='cpu'))")
    obj = load_checkpoint(path, what="weights")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"weights={os.fspath(path)!r} holds a {type(obj).__name__}, not a state_dict "
                              "(a dict of parameter names to tensors)")
    keys = [k for k in obj if not isinstance(k, str)]
    if keys:
        raise CheckpointError(f"weights={os.fspath(path)!r} has keys that are not parameter names (strings): "
                              f"{_key_names(keys)}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"weights={os.fspath(path)!r} has entries that are not tensors: {_names(bad)}")
    odd = [f"{k} ({'meta' if v.is_meta else str(v.layout).replace('torch.', '')})" for k, v in obj.items()
           if v.is_meta or v.layout != torch.strided]
    if odd:
        raise CheckpointError(f"weights={os.fspath(path)!r} holds tensors that are not dense with values: "
                              f"{_names(odd)}; save dense tensors (tensor.to_dense(), real values, not meta)")
    nonfinite = [k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"weights={os.fspath(path)!r} holds NaN or infinite values in {_names(nonfinite)}; "
                              "refusing to load them")
    expected = model.state_dict()
    missing = [k for k in expected if k not in obj]
    unexpected = [k for k in obj if k not in expected]
    lazy = nn.parameter.UninitializedTensorMixin
    shapes = [f"{k} {tuple(obj[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in obj and not isinstance(expected[k], lazy)
              and obj[k].shape != expected[k].shape]
    problems = []
    if missing and strict:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected and strict:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_names(shapes)}")
    if problems:
        raise CheckpointError(f"weights={os.fspath(path)!r} does not match the model: " + "; ".join(problems))
    try:
        model.load_state_dict(dict(obj), strict=strict)
    except (RuntimeError, ValueError, TypeError) as exc:
        first = _v._first_line(exc)[:200]
        raise CheckpointError(f"weights={os.fspath(path)!r} could not be loaded into the model ({first})") from None
    return model


@validate_params({"what": Instance(str, "string")})
def load_checkpoint(path, *, what: str = "checkpoint"):
    """Read a file written by ``torch.save`` with ``torch.load(..., weights_only=True)``.

    Only tensors, numbers, strings and containers of them load; a file holding a pickled Python
    object (which could run code) is refused with a :class:`CheckpointError`, as is a file that is
    missing or not a torch checkpoint. ``what`` names the argument in the messages. Values are
    returned as stored (a NaN in a saved loss stays NaN); :func:`load_weights` refuses non-finite weights.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> f = os.path.join(tempfile.mkdtemp(), "c.pt"); torch.save({"epoch": 3, "w": torch.ones(2)}, f)
    >>> load_checkpoint(f)["epoch"]
    3
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"{what}={_short(path)} is not a file path; give the path of a saved state_dict")
    if not os.path.isfile(path):
        raise CheckpointError(f"{what}={os.fspath(path)!r} does not exist or is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln]
        if lines:
            raise CheckpointError(
                f"{what}={os.fspath(path)!r} was refused: it contains a pickled Python object that "
                f"could run code when loaded ({lines[0].rstrip('.')}); save only model.state_dict() "
                "(tensors)") from None
        raise CheckpointError(f"{what}={os.fspath(path)!r} is not a readable torch checkpoint "
                              f"({str(exc).splitlines()[-1].strip() or type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - a text file can fail anywhere in the unpickler (KeyError: 101)
        msg = _v._first_line(exc)[:160]
        raise CheckpointError(f"{what}={os.fspath(path)!r} is not a readable torch checkpoint "
                              f"({type(exc).__name__}: {msg})") from None
    return obj
