"""Block detection for :func:`redundancy.analysis.graph.trace_model`.

A **block** is the outermost non-root module holding at least two conv/linear layers that is not a
*container*: an ``nn.Sequential``/``ModuleList``/``ModuleDict`` holding such a module, or a module
with two such children one of which feeds the other (parallel branches, as in a ShuffleNet
downsampling unit, do not make a container). Its **main path** is the longest chain of layers in
the layer data-flow graph inside it; shortcut/downsample convs are off it.

Squeeze-excitation layers (fed by a global pooling of the main path, and the layers fed only by
them) are kept off the main path. K = output width of the last main-path layer; R = narrowest
output width of the other main-path layers. Kinds: ``attention`` (a ``nn.MultiheadAttention`` on
the main path; K/R = the MLP expansion), ``multi_branch`` (branches whose outputs are concatenated:
Fire, inception; K = concatenated width), ``inverted_residual`` (a depthwise conv and an expansion
wider than both the block input and output, MobileNetV2 or ConvNeXt's Linear-based one; reported
with K = expanded width, R = input width, K/R = t), ``depthwise_separable`` (a depthwise conv
followed by a pointwise one), ``bottleneck`` (R < K and R no wider than the block input: narrower
than both ends), ``plain`` otherwise (a VGG stack that only widens is plain). R is None (no K/R
label) wherever K/R would not exceed 1.
"""

from __future__ import annotations

from torch import nn

from redundancy.analysis.records import BlockInfo, LayerInfo, _is_depthwise, _is_pointwise
import redundancy._validation as _v

__all__ = []  # the face is redundancy.analysis; the rest is importable from here



def _longest_path(layers: list[str], edges: set, order: dict[str, int]) -> list[str]:
    inside = set(layers)
    best: dict[str, list[str]] = {}
    for v in sorted(layers, key=order.get):
        preds = [u for (u, w) in edges if w == v and u in inside and u in best]
        cand = max((best[u] for u in preds), key=len, default=[])
        best[v] = cand + [v]
    return max(best.values(), key=lambda p: (len(p), order[p[-1]]), default=[])


def _reaches(a: set, b: set, edges: set) -> bool:
    frontier, seen = list(a), set(a)
    while frontier:
        u = frontier.pop()
        for (s, t) in edges:
            if s == u and t not in seen:
                if t in b:
                    return True
                seen.add(t)
                frontier.append(t)
    return False


_CONV_BLOCK = "K = output width of the last main-path layer, R = narrowest width inside the block"
_CONV_IR = ("MobileNetV2 'expansion' reading (as redundancy.linear.bounds.kr_inverted_residual's default): "
            "K = expanded width written by the expansion 1x1, R = block input width (the rank of the "
            "expansion map), so K/R = t; the 'projection' reading (K = projected width, R = expanded "
            "width, K/R = 1/t) is kr_inverted_residual(..., convention='projection')")


def _spatial(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape[1:]:
        n *= d
    return n


def _gates(names: list[str], layers: dict[str, LayerInfo], edges, order) -> set[str]:
    """Squeeze-excitation style layers: fed by a global pooling (input spatial size 1 while a
    predecessor's output is larger), and the layers fed only by such layers."""
    gates: set[str] = set()
    inside = set(names)
    for v in sorted(names, key=order.get):
        preds = [u for (u, w) in edges if w == v and u in inside]
        if not preds:
            continue
        pooled = _spatial(layers[v].input_shape) == 1 and any(
            _spatial(layers[u].output_shape) > 1 for u in preds)
        if pooled or all(u in gates for u in preds):
            gates.add(v)
    return gates


_CONV_CONCAT = ("multi-branch module with concatenated outputs (Fire, inception): K = concatenated width "
                "of the branches, R = rank bound of the block's linear reading: the width of a shared "
                "first layer (Fire's squeeze), else the sum over branches of each branch's narrowest width "
                "(the block input width included)")
_CONV_ATTN = ("transformer block: K = hidden width of its MLP, R = model (embedding) width, so K/R is the "
              "MLP expansion ratio (the 'expansion' reading of an inverted bottleneck); attention itself "
              "(softmax(QK^T)V) is not linear and has no K/R")
_CONV_PLAIN = "plain stack or block without a bottleneck or expansion: no K/R (R = None)"


def _stacked(c, mods, cand, inside, edges) -> bool:
    """Whether module ``c`` holds two candidate children one of which feeds the other (a stack)."""
    kids = [f"{c}.{k}" if c else k for k, _ in mods[c].named_children()]
    ckids = [k for k in kids if k in cand]
    return any(_reaches(set(inside[a]), set(inside[b]), edges) for a in ckids for b in ckids if a != b)


@_v.validate_params({"model": _v.Module(materialised=False), "layers": _v.Instance(dict), "edges": _v.Instance((set, frozenset, list, tuple)), "order": _v.Instance(dict)})
def find_blocks(model, layers: dict[str, LayerInfo], edges, order, widths: dict[str, int] | None = None
                ) -> list[BlockInfo]:
    """Blocks (see the module docstring); ``widths`` are the modules' output channel counts (for
    concatenated multi-branch modules)."""
    return _find_blocks(model, layers, edges, order, widths)


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _is_container(m, mods, cand, inside, edges) -> bool:
    kids = [f"{m}.{c}" for c, _ in mods[m].named_children()]
    ckids = [k for k in kids if k in cand]
    if isinstance(mods[m], _CONTAINERS):
        return bool(ckids)
    # a wrapper of a stack (a ViT's Encoder around its Sequential of blocks), or a stack itself
    return _stacked(m, mods, cand, inside, edges) or any(_stacked(c, mods, cand, inside, edges) for c in ckids)


def _find_blocks(model, layers, edges, order, widths=None) -> list[BlockInfo]:
    mods = dict(model.named_modules())
    widths = widths or {}
    inside = {m: [l for l in layers if l.startswith(m + ".")] for m in mods if m}
    cand = {m for m, ls in inside.items() if len(ls) >= 2 and m not in layers}
    blocks, chosen = [], []
    for m in mods:
        if m not in cand or any(m.startswith(c + ".") for c in chosen) or _is_container(m, mods, cand, inside, edges):
            continue
        chosen.append(m)
        gates = _gates(inside[m], layers, edges, order)
        on_path = [l for l in inside[m] if l not in gates] or inside[m]
        main = _longest_path(on_path, edges, order) or sorted(on_path, key=order.get)
        kind, conv, K, R = _classify(main, on_path, layers, mods, edges, order, widths.get(m))
        rest = tuple(l for l in sorted(inside[m], key=order.get) if l not in main)
        blocks.append(BlockInfo(m, kind, tuple(main), rest, K, R, conv))
    return blocks


def _concat_rank(on_path, inner, sinks, c_in, layers, edges, order) -> int:
    """R of a concatenated multi-branch block: a shared first layer's width, else per-branch sums."""
    roots = [l for l in on_path if not any(v == l and u in inner for (u, v) in edges)]
    if len(roots) == 1:
        return min(c_in, layers[roots[0]].out_channels)
    R = 0
    for s_ in sinks:
        path = _longest_path([l for l in on_path if l == s_ or _reaches({l}, {s_}, edges)], edges, order)
        R += min([layers[path[0]].in_channels] + [layers[l].out_channels for l in path])
    return R


def _classify(main, on_path, layers, mods, edges, order, out_w):
    """``(kind, convention, K, R)`` of a block with main path ``main``."""
    info = [layers[l] for l in main]
    K = info[-1].out_channels
    R = min(li.out_channels for li in info[:-1]) if len(info) > 1 else None
    E = max(li.out_channels for li in info[:-1]) if len(info) > 1 else None
    c_in = info[0].in_channels
    dw = [i for i, li in enumerate(info) if _is_depthwise(li)]
    attn = [i for i, l in enumerate(main) if isinstance(mods[l], nn.MultiheadAttention)]
    inner = set(on_path)
    sinks = [l for l in on_path if not any(u == l and v in inner for (u, v) in edges)]
    concat = (len(sinks) >= 2 and out_w is not None and not dw
              and sum(layers[l].out_channels for l in sinks) == out_w
              and all(layers[l].out_channels < out_w for l in sinks))
    if attn:
        mlp = [li for li in info[attn[-1] + 1:]]
        kind, conv = "attention", _CONV_ATTN
        if len(mlp) >= 2:
            K, R = max(li.out_channels for li in mlp[:-1]), mlp[0].in_channels
        else:
            K, R = info[-1].out_channels, None
    elif concat:
        kind, conv = "multi_branch", _CONV_CONCAT
        K, R = out_w, _concat_rank(on_path, inner, sinks, c_in, layers, edges, order)
    elif dw and E is not None and E > K and E > c_in:
        kind, conv = "inverted_residual", _CONV_IR
        K, R = E, c_in  # expanded width over the input width feeding the expansion
    elif dw and any(_is_pointwise(li) for li in info[dw[0] + 1:]):
        kind, conv = "depthwise_separable", _CONV_BLOCK
    elif R is not None and R < K and R <= c_in:
        kind, conv = "bottleneck", _CONV_BLOCK
    else:
        kind, conv, R = "plain", _CONV_PLAIN, None
    if R is not None and K <= R:
        R = None      # a K/R label only where K/R > 1
    return kind, conv, K, R
