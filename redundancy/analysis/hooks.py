"""Forward-hook route of :func:`redundancy.analysis.graph.trace_model` (used when torch.fx fails).

Every leaf module call is recorded with the identity and version counter of its input and output
tensors (the tensors are kept alive during the pass so identities are not reused). A call consumes
another's output when the keys match; an in-place op bumps the version and so cuts the link.
Functional calls are invisible: a link through one is cut, which only splits segments.
"""

from __future__ import annotations

import torch

from redundancy.counts import _forward
from redundancy.analysis.records import _PASS_MODULES, _layer_types
import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here



@_v.validate_params({"model": _v.Module(materialised=False), "x": _v.Tensor(min_ndim=1), "shape": _v.Shape(1, 6), "layer_ids": _v.Instance((set, frozenset)), "names": _v.Instance(dict)})
def hook_structure(model, x, shape, layer_ids, names):
    """``(edges, nxt)`` of the layer graph from one forward pass with hooks (see the module docstring)."""
    return _hook_structure(model, x, shape, layer_ids, names)


def _hook_structure(model, x, shape, layer_ids, names):
    calls = _record_calls(model, x, shape)
    producer = {out_key: i for i, (_, _, out_key) in enumerate(calls)}
    consumers: dict[int, list[int]] = {}
    for i, (mod, in_key, _) in enumerate(calls):
        if in_key in producer:
            consumers.setdefault(producer[in_key], []).append(i)
    is_layer = [id(m) in layer_ids for m, _, _ in calls]
    edges, first = _edges(calls, producer, is_layer, names)
    return edges, _chains(calls, consumers, is_layer, first, names)


def _record_calls(model, x, shape) -> list:
    """``(module, in_key, out_key)`` of every leaf call, keys = (tensor id, version)."""
    types = _layer_types() + _PASS_MODULES
    calls = []   # (module, in_key, out_key)
    keep = []
    leaf_names = {}
    for nm, mod in model.named_modules():
        if isinstance(mod, types) or (len(list(mod.children())) == 0 and nm):
            leaf_names.setdefault(id(mod), nm)
    handles = []

    pending: dict[int, list] = {}   # module id -> stack of input keys (re-entrant calls)

    def pre(mod, args):
        t = args[0] if args and isinstance(args[0], torch.Tensor) else None
        keep.append(t)
        pending.setdefault(id(mod), []).append(None if t is None else (id(t), t._version))

    def post(mod, args, out):
        in_key = pending[id(mod)].pop()
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            out = out[0]   # attention returns (output, weights)
        if isinstance(out, torch.Tensor):
            keep.append(out)
            calls.append((mod, in_key, (id(out), out._version)))

    seen = set()
    for mod in model.modules():
        if id(mod) in leaf_names and id(mod) not in seen:
            seen.add(id(mod))
            handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        _forward(model, x, shape)
    finally:
        for h in handles:
            h.remove()
    return calls


def _edges(calls, producer, is_layer, names):
    """Layer-to-layer edges (through pass-through modules) and each layer's first call."""
    up: dict[int, set] = {}
    edges = set()
    first: dict[str, int] = {}
    for i, (mod, in_key, _) in enumerate(calls):
        src = producer.get(in_key)
        ups = set() if src is None else ({names[id(calls[src][0])]} if is_layer[src] else up.get(src, set()))
        if is_layer[i]:
            me = names[id(mod)]
            first.setdefault(me, i)
            edges |= {(u, me) for u in ups if u != me}
        up[i] = ups
    return edges, first


def _chains(calls, consumers, is_layer, first, names):
    """``layer -> (next layer, pass-through modules between)`` along unique linear consumers."""
    is_pass = [isinstance(m, _PASS_MODULES) for m, _, _ in calls]
    nxt = {}
    taken = set()
    for lname, i in first.items():
        cur, path = i, []
        while True:
            lin = [c for c in consumers.get(cur, []) if is_layer[c] or is_pass[c]]
            if len(lin) != 1:
                break
            cur = lin[0]
            if is_layer[cur]:
                t = names[id(calls[cur][0])]
                if first.get(t) == cur and t not in taken:
                    nxt[lname] = (t, path)
                    taken.add(t)
                break
            path.append(calls[cur][0])
    return nxt
