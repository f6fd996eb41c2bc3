"""Trace any ``nn.Module`` into layers, maximal linear segments and blocks.

:func:`trace_model` runs ``torch.fx`` symbolic tracing (conv, linear and factorised-conv modules
as leaves) with shape propagation on one zero input; when fx cannot trace the model (data-dependent
control flow, unsupported Python), it falls back to forward hooks on the leaf modules, linking
calls through tensor identity (and the tensor version counter, so in-place activations break a
link). The hook route cannot see functional calls (``F.relu``, ``torch.flatten``): a link passing
through one is cut, which can only split segments, never join across a non-linearity.

Definitions (each layer is one conv/linear *module*; a module called several times is one layer):

* **linear op**: eval-mode BatchNorm (read as its affine eval map, whatever the module's mode:
  the deployed model), identity, dropout (eval), average pooling, flatten/view/reshape/permute,
  padding, channel shuffle. Residual ``add``/``sub`` is linear in the chain operand.
* **maximal linear segment**: a chain ``L1 -> ... -> Lm`` of layers where ``L(j+1)`` is reached
  from ``Lj`` through linear ops only. At a fork the chain follows the unique linear consumer
  (a residual add beside it is read as a side branch); two linear consumers end the chain.
* **block**: the outermost non-root module holding at least two layers that is not a *container*
  (an ``nn.Sequential``/``ModuleList``/``ModuleDict`` holding such a module, or a module with two
  such children one of which feeds the other). Its **main path** is the longest chain of layers in
  the layer data-flow graph inside it (shortcut/downsample convs are off it). K = output width of
  the last main-path layer, R = narrowest output width of the other main-path layers.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from redundancy.analysis.blocks import _find_blocks
from redundancy.analysis.hooks import _hook_structure
from redundancy.analysis.records import (_MERGE, _PASS_FUNCS, _PASS_METHODS, _PASS_MODULES, _SCALE,
                                         BlockInfo, LayerInfo, ModelGraph, SegmentInfo, _is_attention,
                                         _layer_types, _attention_macs, layer_kernel)
from redundancy._validation import Choice, Module, Shape, validate_params
from redundancy.counts import _layer_macs, preserved_state
import redundancy._validation as _v
from redundancy.errors import RedundancyError

__all__ = ["trace_model"]  # the face is redundancy.analysis; the rest is importable from here


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _layer_types() + _PASS_MODULES):
            return True
        return super().is_leaf_module(m, qualname)


# --------------------------------------------------------------------------- fx route

def _tensor_meta(node):
    tm = node.meta.get("tensor_meta")
    return tm if hasattr(tm, "shape") else None


def _node_kind(node, modules, layer_ids) -> str:
    """'layer', 'linear' (affine op of one tensor), 'merge' (add/sub of two tensors) or 'other'
    (non-linear or unknown)."""
    tensor_args = [a for a in node.all_input_nodes if _tensor_meta(a) is not None]
    if node.op == "call_module":
        mod = modules[node.target]
        if id(mod) in layer_ids:
            return "layer"
        return "linear" if isinstance(mod, _PASS_MODULES) else "other"
    if node.op == "call_function":
        if node.target in _MERGE and len(tensor_args) == 2:
            return "merge"
        if node.target in _SCALE and len(tensor_args) == 1:
            return "linear"
        if node.target in _PASS_FUNCS or node.target in _MERGE:
            return "linear" if len(tensor_args) <= 1 else "other"
        return "other"
    if node.op == "call_method":
        if node.target in ("add", "sub", "add_", "sub_") and len(tensor_args) == 2:
            return "merge"
        if node.target in _PASS_METHODS and len(tensor_args) <= 1:
            return "linear"
    return "other"


def _to_module(node, modules):
    """A module doing what ``node`` does to its chain input, or None."""
    if node.op == "call_module":
        return modules[node.target]
    fn = node.target
    if (node.op == "call_function" and fn is torch.flatten) or (node.op == "call_method" and fn == "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return nn.Flatten(start, end)
    if node.op == "call_method" and fn in ("view", "reshape"):
        shp = _tensor_meta(node).shape
        if len(shp) == 2:
            return nn.Flatten(1, -1)
    if node.op == "call_method" and fn in ("contiguous", "clone"):
        return nn.Identity()
    return None


def _trace_fx(model, x):
    import contextlib
    import io

    gm = fx.GraphModule(model, _Tracer().trace(model))
    from torch.fx.passes.shape_prop import ShapeProp

    # ShapeProp prints a traceback to stderr before re-raising; the caller turns the failure into
    # one line (or falls back to hooks), so the print is swallowed
    with contextlib.redirect_stderr(io.StringIO()):
        ShapeProp(gm).propagate(x)
    return gm


def _fx_structure(model, gm, layer_ids, names):
    """Return (modules by name, first call node per layer, layer data-flow edges, and for each layer
    the next layer of its linear chain with the op nodes between them)."""
    modules = dict(gm.named_modules())
    kinds = {n: _node_kind(n, modules, layer_ids) for n in gm.graph.nodes}
    first_node: dict[str, fx.Node] = {}
    up: dict[fx.Node, set] = {}
    edges: set[tuple[str, str]] = set()
    for n in gm.graph.nodes:
        ups = set()
        for a in n.all_input_nodes:
            ups |= ({names[id(modules[a.target])]} if kinds[a] == "layer" else up.get(a, set()))
        if kinds[n] == "layer":
            me = names[id(modules[n.target])]
            first_node.setdefault(me, n)
            edges |= {(u, me) for u in ups if u != me}
        up[n] = ups
    nxt: dict[str, tuple[str, list]] = {}
    taken: set[str] = set()
    for lname, node in first_node.items():
        cur, path = node, []
        while True:
            users = [u for u in cur.users if _tensor_meta(u) is not None or kinds[u] != "other"]
            lin = [u for u in users if kinds[u] in ("layer", "linear")]
            mer = [u for u in users if kinds[u] == "merge"
                   and not (u.target in (operator.sub, torch.sub, operator.isub, "sub", "sub_")
                            and u.args[0] is not cur)]
            if len(lin) == 1:
                cur = lin[0]
            elif not lin and len(mer) == 1:
                cur = mer[0]
            else:
                break
            if kinds[cur] == "layer":
                target = names[id(modules[cur.target])]
                if first_node.get(target) is cur and target not in taken:
                    nxt[lname] = (target, path)
                    taken.add(target)
                break
            path.append(cur)
    return modules, first_node, edges, nxt


# --------------------------------------------------------------------------- entry point

@validate_params({"model": Module(), "input_shape": Shape(1, 6), "method": Choice("auto", "fx", "hooks")})
def trace_model(model: nn.Module, input_shape: tuple[int, ...], *, method: str = "auto") -> ModelGraph:
    """Trace ``model`` on one zero input of shape ``input_shape`` (no batch dimension).

    ``method``: ``"fx"``, ``"hooks"`` or ``"auto"`` (fx, hooks when fx fails; the reason is kept
    in ``notes``). The model is run in eval mode and restored to its own modes, parameters and
    buffers afterwards. A model that is itself a single layer (``nn.Conv2d(...)``) is traced with
    hooks (fx would inline its forward and never call it as a module).

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3), nn.ReLU())
    >>> g = trace_model(m, (3, 8, 8))
    >>> [s.layers for s in g.segments]
    [('0', '2')]
    """
    return _trace_model(model, input_shape, method=method)


def _layer_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> qualified name`` of every conv/linear layer (not those inside attention)."""
    types = _layer_types()
    names: dict[int, str] = {}
    attn = [nm for nm, mod in model.named_modules() if _is_attention(mod)]
    for nm, mod in model.named_modules():
        if isinstance(mod, types) and not any(nm.startswith(a + ".") for a in attn):
            names.setdefault(id(mod), nm)
    return names


def _call_hook(names: dict[int, str], info: dict[str, dict]):
    """A forward hook recording each layer's input/output shapes, MACs and number of calls."""
    def hook(mod, args, out):
        nm = names[id(mod)]
        d = info.get(nm)
        if _is_attention(mod):
            out = out[0] if isinstance(out, (tuple, list)) else out
            macs = _attention_macs(mod, args, out)
        else:
            macs = _layer_macs(mod, args[0], out)
        if d is None:
            info[nm] = {"mod": mod, "in": tuple(args[0].shape[1:]), "out": tuple(out.shape[1:]),
                        "macs": macs, "calls": 1}
        else:
            d["macs"] += macs
            d["calls"] += 1
    return hook


def _structure(model, x, input_shape, method, layer_ids, names, info, notes):
    """``(edges, nxt, used)``: the layer graph from fx, or from forward hooks when fx fails."""
    gm = None
    if method in ("auto", "fx"):
        try:
            gm = _trace_fx(model, x)
        except Exception as exc:  # fx raises many types on untraceable Python
            if method == "fx":
                raise RedundancyError(f"torch.fx could not trace the model: {type(exc).__name__}: "
                                      f"{_v._first_line(exc)[:200]}") from None
            notes.append(f"torch.fx failed ({type(exc).__name__}: {str(exc)[:120]}); used forward hooks")
            info.clear()
    if gm is None:
        edges, nxt = _hook_structure(model, x, input_shape, layer_ids, names)
        return edges, nxt, "hooks"
    _, _, edges, nxt = _fx_structure(model, gm, layer_ids, names)
    return edges, nxt, "fx"


def _layer_info(nm: str, d: dict) -> LayerInfo:
    mod = d["mod"]
    w = layer_kernel(mod)
    ks = tuple(w.shape[2:]) if w.dim() > 2 else ()
    groups = getattr(mod, "groups", 1)
    c_in = getattr(mod, "in_channels", getattr(mod, "in_features", w.shape[1] * groups))
    c_out = getattr(mod, "out_channels", getattr(mod, "out_features", w.shape[0]))
    if _is_attention(mod):
        c_in = c_out = mod.embed_dim
    return LayerInfo(name=nm, type=type(mod).__name__, kernel_shape=tuple(w.shape), groups=int(groups),
                     in_channels=int(c_in), out_channels=int(c_out), kernel_size=ks, input_shape=d["in"],
                     output_shape=d["out"], macs=int(d["macs"]), calls=d["calls"])


def _trace_model(model: nn.Module, input_shape: tuple[int, ...], *, method: str = "auto") -> ModelGraph:
    """The kernel of :func:`trace_model` (arguments already checked)."""
    names = _layer_names(model)
    layer_ids = set(names)
    x = torch.zeros((1, *input_shape), dtype=_v.model_dtype(model), device=_v.model_device(model))
    notes: list[str] = []
    info: dict[str, dict] = {}
    hook = _call_hook(names, info)
    handles = [mod.register_forward_hook(hook)
               for mod in {id(m): m for m in model.modules() if id(m) in layer_ids}.values()]
    if isinstance(model, _layer_types()) and method == "auto":
        method = "hooks"
        notes.append("the model is itself one layer; traced with forward hooks")
    with torch.no_grad(), preserved_state(model), _v.guard_model(model, eval=True):
        try:
            edges, nxt, used = _structure(model, x, input_shape, method, layer_ids, names, info, notes)
        finally:
            for h in handles:
                h.remove()
    all_mods = dict(model.named_modules())
    missing = sorted({names[i] for i in layer_ids if names[i] not in info})
    if missing:
        notes.append(f"{len(missing)} layer(s) never called in forward: {missing[:5]}")
    for nm in missing:  # listed too (no shapes, 0 MACs), after the called ones
        info[nm] = {"mod": all_mods[nm], "in": (), "out": (), "macs": 0, "calls": 0}
    order = {nm: i for i, nm in enumerate(info)}
    layers = {nm: _layer_info(nm, d) for nm, d in info.items()}
    attn_layers = {nm for nm in layers if _is_attention(all_mods[nm])}
    nxt = {a: (t, p) for a, (t, p) in nxt.items() if a not in attn_layers and t not in attn_layers}
    segments = _segments(model, layers, nxt, used)
    blocks = _find_blocks(model, layers, edges, order, _module_widths(model, x))
    return ModelGraph(tuple(layers.values()), tuple(segments), tuple(blocks), used, tuple(notes))


def _module_widths(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Output channel count (dim 1 of a tensor with >= 3 dims) of every non-root module, first call."""
    widths: dict[str, int] = {}
    handles = []
    for nm, mod in model.named_modules():
        if not nm:
            continue

        def hook(m, args, out, nm=nm):
            if nm not in widths and isinstance(out, torch.Tensor) and out.dim() >= 3:
                widths[nm] = int(out.shape[1])

        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad(), _v.guard_model(model, eval=True):
            model(x)
    except Exception:  # widths are a hint for block kinds; a model the hooks cannot run keeps none
        widths.clear()
    finally:
        for h in handles:
            h.remove()
    return widths


def _segments(model, layers, nxt, used) -> list[SegmentInfo]:
    has_prev = {t for (t, _) in nxt.values()}
    modules = dict(model.named_modules())
    out = []
    for head in layers:
        if head in has_prev:
            continue
        chain, parts, reason = [head], [modules[head]], None
        cur = head
        while cur in nxt:
            tgt, path = nxt[cur]
            for op in path:
                if used == "hooks":
                    parts.append(op)
                    continue
                if _node_is_merge(op):
                    continue
                m = _to_module(op, modules)
                if m is None:
                    reason = reason or f"op {op.target!r} on the chain has no module form"
                parts.append(m)
            chain.append(tgt)
            parts.append(modules[tgt])
            cur = tgt
        if any(layers[c].calls > 1 for c in chain):
            reason = reason or "a layer of the segment is called more than once"
        if layers[head].calls == 0:
            reason = "layer never called in forward for this input_shape"
        elif _is_attention(modules[head]):
            reason = ("attention softmax(Q K^T) V is not linear in its input: no linear segment dof "
                      "(its parameters and MACs are counted)")
        name = chain[0] if len(chain) == 1 else f"{chain[0]}..{chain[-1]}"
        module = None if reason else nn.Sequential(*[p for p in parts if p is not None])
        out.append(SegmentInfo(name, tuple(chain), layers[head].input_shape, module, reason))
    return out


def _node_is_merge(node) -> bool:
    return node.target in _MERGE or (node.op == "call_method" and node.target in ("add", "sub", "add_", "sub_"))
