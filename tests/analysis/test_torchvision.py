"""analyze() on torchvision's models (weights=None, no downloads). Skipped without torchvision.

torchvision does not install next to the CPU torch 2.13 build; run with a torch 2.14.1 +
torchvision 0.29.1 environment (see the report of issue 7).
"""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

try:  # a torchvision whose compiled ops do not load next to this torch raises RuntimeError, not ImportError
    import torchvision as tv
except (ImportError, RuntimeError) as exc:
    pytest.skip(f"torchvision is not usable here: {type(exc).__name__}: {exc}", allow_module_level=True)

from redundancy.analysis.report import analyze  # noqa: E402

pytestmark = pytest.mark.torchvision
SHAPE = (3, 64, 64)


@pytest.fixture(scope="module", params=["resnet18", "resnet50", "mobilenet_v2", "shufflenet_v2_x1_0"])
def model_and_report(request):
    torch.manual_seed(0)
    m = getattr(tv.models, request.param)(weights=None)
    return request.param, m, analyze(m, SHAPE)


def test_rows_params_macs(model_and_report):
    name, m, rep = model_and_report
    convlin = [n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    names = [r.name for r in rep.layers]
    assert sorted(names) == sorted(convlin) and len(set(names)) == len(names)
    assert rep.summary.params == sum({id(p): p.numel() for p in m.parameters()}.values())
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m.eval()(torch.zeros(1, *SHAPE))
    assert 2 * rep.summary.macs == fc.get_total_flops()
    assert rep.summary.trace_method == "fx"
    assert rep.summary.n_segments_skipped == 0


def test_blocks(model_and_report):
    name, m, rep = model_and_report
    kinds = {b.kind for b in rep.blocks}
    if name == "resnet18":
        assert len(rep.blocks) == 8 and kinds == {"plain"}
    elif name == "resnet50":
        assert len(rep.blocks) == 16 and kinds == {"bottleneck"}
        assert all(b.kr_ratio == 4 for b in rep.blocks)
        b = rep.blocks[1]
        assert (b.K, b.R) == (256, 64) and b.shortcut == ()
        assert rep.blocks[0].shortcut == ("layer1.0.downsample.0",)
    elif name == "mobilenet_v2":
        assert len(rep.blocks) == 17 and kinds == {"inverted_residual", "depthwise_separable"}
        assert rep.blocks[1].kr_ratio == pytest.approx(96 / 16)  # expansion reading: t = 6 (16 -> 96 -> 24)
        # a linear projection feeds the next expansion: one segment, K/R = 6 on the expansion row
        segs = {s.layers for s in rep.segments}
        assert ("features.2.conv.2", "features.3.conv.0.0") in segs
        row = {r.name: r for r in rep.layers}["features.3.conv.0.0"]
        assert (row.arch_rank, row.kr_ratio) == (24, 6)
    else:
        assert len(rep.blocks) == 16 and kinds == {"depthwise_separable"}


def test_efficientnet_squeeze_excitation_off_main_path():
    m = tv.models.efficientnet_b0(weights=None)
    rep = analyze(m, SHAPE)
    mb = [b for b in rep.blocks if len(b.main_path) == 3]
    assert mb and all(b.kind == "inverted_residual" for b in mb)
    assert all(any(n.endswith("fc1") for n in b.shortcut) for b in mb)
    assert sorted(r.name for r in rep.layers) == sorted(
        n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear)))
