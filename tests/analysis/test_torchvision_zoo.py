"""analyze() on torchvision classification models (weights=None, nothing downloaded): no segment
skipped without a reason in the summary; block kinds and K/R that hold on the model zoos.
Skipped without torchvision (run it in a torch 2.14.1 + torchvision 0.29.1 environment)."""

import time

import pytest
import torch

try:  # a torchvision whose compiled ops do not load next to this torch raises RuntimeError, not ImportError
    import torchvision as tv
except (ImportError, RuntimeError) as exc:
    pytest.skip(f"torchvision is not usable here: {type(exc).__name__}: {exc}", allow_module_level=True)

from redundancy.analysis.report import analyze  # noqa: E402

pytestmark = pytest.mark.torchvision
MODELS = {"resnet50": (3, 64, 64), "mobilenet_v2": (3, 64, 64), "convnext_tiny": (3, 64, 64),
          "squeezenet1_0": (3, 64, 64), "googlenet": (3, 64, 64), "vgg11": (3, 64, 64),
          "regnet_y_400mf": (3, 64, 64), "vit_b_16": (3, 224, 224)}
TABLE = []


@pytest.fixture(scope="module", params=list(MODELS))
def rep(request):
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if request.param == "googlenet" else {}
    m = getattr(tv.models, request.param)(weights=None, **kw)
    t = time.perf_counter()
    r = analyze(m, MODELS[request.param])
    s = r.summary
    kinds = {}
    for b in r.blocks:
        kinds[b.kind] = kinds.get(b.kind, 0) + 1
    TABLE.append((request.param, s.params, s.n_layers, s.n_segments, s.n_segments_skipped,
                  round(100 * s.coverage_params, 1), s.dof_ratio, kinds, s.block_kr,
                  round(time.perf_counter() - t, 1)))
    return request.param, m, r


def test_no_silent_skip(rep):
    name, m, r = rep
    s = r.summary
    assert len(s.skipped) == s.n_segments_skipped
    text = s.text()
    for seg in r.segments:
        if seg.dof is None:
            assert seg.skip_reason and seg.name in dict(s.skipped)
    if s.skipped:
        assert "SKIPPED" in text
    assert "K/R" in text and "naive/dof" in text and "heuristic" in text


def test_block_kinds_and_kr(rep):
    name, m, r = rep
    blocks = {b.name: b for b in r.blocks}
    kinds = {b.kind for b in r.blocks}
    if name == "resnet50":
        assert len(r.blocks) == 16 and kinds == {"bottleneck"} and all(b.kr_ratio == 4 for b in r.blocks)
    elif name == "mobilenet_v2":
        assert kinds == {"inverted_residual", "depthwise_separable"}
        assert {b.kr_ratio for b in r.blocks if b.kind == "inverted_residual"} == {6.0}
    elif name == "convnext_tiny":
        ir = [b for b in r.blocks if b.kind == "inverted_residual"]
        assert len(ir) == 18 and all(b.K == 4 * b.R for b in ir)
        assert (blocks["features.1.0"].K, blocks["features.1.0"].R) == (384, 96)
    elif name == "squeezenet1_0":
        fire = [b for b in r.blocks if b.kind == "multi_branch"]
        assert len(fire) == 8 and (blocks["features.3"].K, blocks["features.3"].R) == (128, 16)
    elif name == "googlenet":
        inc = [b for b in r.blocks if b.kind == "multi_branch"]
        assert len(inc) == 9
        b = blocks["inception3a"]
        assert b.K == 256 and b.R == 64 + 96 + 16 + 32   # concatenated width over summed branch bottlenecks
    elif name == "vgg11":
        assert "bottleneck" not in kinds and all(b.R is None for b in r.blocks)
    elif name == "regnet_y_400mf":
        assert "bottleneck" not in kinds   # bottleneck_multiplier 1: no width ratio
        from redundancy.lowrank.compression import compress
        from redundancy.lowrank.ranks import rank_rule

        res = compress(m, rank_rule("fraction", fraction=0.5))
        assert res.params_after < res.params_before
    elif name == "vit_b_16":
        att = [b for b in r.blocks if b.kind == "attention"]
        assert len(att) == 12 and all((b.K, b.R) == (3072, 768) for b in att)
        rows = {x.name: x for x in r.layers}
        mha = rows["encoder.layers.encoder_layer_0.self_attention"]
        assert mha.macs > 0 and mha.calls == 1 and mha.params == 4 * 768 * 768 + 4 * 768
        assert r.summary.params_outside_layers < 0.01 * r.summary.params
        from redundancy.counts import count_macs  # the fused attention is counted as analyze counts it

        assert sum(count_macs(m, MODELS[name]).values()) == sum(x.macs for x in r.layers)
    for b in r.blocks:   # K/R labels only where they exceed 1
        assert b.kr_ratio is None or b.kr_ratio > 1


def test_print_table():
    if not TABLE:
        pytest.skip("no model ran")
    print("\nmodel | params | layers | segments | skipped | coverage % | naive/dof | blocks | block K/R | s")
    for row in TABLE:
        print(" | ".join(str(x) for x in row))
    assert len(TABLE) == len(MODELS)
