"""Tracing into layers, maximal linear segments and blocks (fx and hook routes)."""

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from redundancy import zoo
from redundancy.errors import RedundancyError
from redundancy.analysis.graph import trace_model


def _names(model):
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("name", ["resnet20", "bottleneck_resnet", "mobilenet_v2", "shufflenet_v2"])
def test_fx_and_hooks_agree_on_layers_and_blocks(name):
    m = zoo.get_model(name)
    shape = zoo.default_input_shape(name)
    a = trace_model(m, shape, method="fx")
    b = trace_model(m, shape, method="hooks")
    assert a.method == "fx" and b.method == "hooks"
    assert sorted(li.name for li in a.layers) == sorted(_names(m))
    assert a.layers == b.layers
    assert [(x.name, x.kind, x.main_path, x.K, x.R) for x in a.blocks] == \
        [(x.name, x.kind, x.main_path, x.K, x.R) for x in b.blocks]
    # every layer in exactly one segment
    for g in (a, b):
        flat = [n for s in g.segments for n in s.layers]
        assert sorted(flat) == sorted(_names(m))


def test_block_kinds_of_zoo():
    g = trace_model(zoo.bottleneck_resnet(kr=4, layers=(1,), widths=(64,), stem_width=256), (3, 8, 8))
    (blk,) = g.blocks
    assert blk.kind == "bottleneck" and (blk.K, blk.R) == (256, 64)
    assert blk.main_path == ("1.0.conv1", "1.0.conv2", "1.0.conv3") and blk.shortcut == ()
    kinds = {b.kind for b in trace_model(zoo.mobilenet_v2(), (3, 32, 32)).blocks}
    assert kinds == {"inverted_residual", "depthwise_separable"}
    g = trace_model(zoo.shufflenet_v2(), (3, 32, 32))
    assert {b.kind for b in g.blocks} == {"depthwise_separable"}
    assert g.blocks[0].shortcut == ("1.0.branch1.0", "1.0.branch1.2")  # the shorter branch
    assert {b.kind for b in trace_model(zoo.resnet20(), (3, 32, 32)).blocks} == {"plain"}


def test_segments_factorised_chain_bn_and_relu():
    chain = nn.Sequential(nn.Conv2d(8, 2, 1), nn.BatchNorm2d(2), nn.Conv2d(2, 3, 3, padding=1),
                          nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    g = trace_model(chain, (8, 6, 6))
    assert [s.layers for s in g.segments] == [("0", "2", "3"), ("5",), ("9",)]
    assert g.segments[0].name == "0..3" and g.segments[0].input_shape == (8, 6, 6)


def test_projection_feeds_next_expansion_through_residual_add():
    g = trace_model(zoo.mobilenet_v2(), (3, 32, 32))
    segs = {s.layers for s in g.segments}
    assert ("2.0.conv.6", "2.1.conv.0") in segs      # no residual at 2.0's output
    assert ("2.1.conv.6", "3.0.conv.0") in segs      # 2.1 adds a residual before 3.0 expands


def test_segment_module_equals_model_on_a_linear_model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AvgPool2d(2), nn.Conv2d(4, 2, 1),
                      nn.Flatten(), nn.Linear(2 * 3 * 3, 5)).eval()
    m[1].running_mean.normal_()
    g = trace_model(m, (3, 8, 8))
    (seg,) = g.segments
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(seg.module(x), m(x))


class _Gate(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        y = self.a(x)
        if y.sum() > 1e9:
            y = -y
        return self.b(y)


def test_hook_fallback_on_untraceable_model():
    g = trace_model(_Gate(), (3, 6, 6))
    assert g.method == "hooks" and "torch.fx failed" in g.notes[0]
    assert [s.layers for s in g.segments] == [("a", "b")]
    with pytest.raises(RedundancyError, match="torch.fx"):
        trace_model(_Gate(), (3, 6, 6), method="fx")


def test_inplace_activation_breaks_hook_chain():
    m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 1))
    g = trace_model(m, (3, 4, 4), method="hooks")
    assert [s.layers for s in g.segments] == [("0",), ("3",)]


def test_trace_leaves_modes_and_statistics():
    m = zoo.bottleneck_resnet().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    trace_model(m, (3, 32, 32))
    assert m.training and all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())


@settings(max_examples=30)
@given(plan=st.lists(st.tuples(st.sampled_from([1, 3]), st.integers(1, 4), st.booleans(), st.booleans()),
                     min_size=1, max_size=6),
       method=st.sampled_from(["fx", "hooks"]))
def test_segments_are_runs_between_nonlinearities(plan, method):
    """Random conv stacks; BatchNorm may follow a conv, a ReLU may follow: the expected segments
    are the maximal runs of convs with no ReLU between them (brute force from the plan)."""
    mods, c, expected, run = [], 2, [], []
    for k, c_out, bn, relu in plan:
        name = str(len(mods))
        mods.append(nn.Conv2d(c, c_out, k, padding=k // 2))
        run.append(name)
        if bn:
            mods.append(nn.BatchNorm2d(c_out))
        if relu:
            mods.append(nn.ReLU())
            expected.append(tuple(run))
            run = []
        c = c_out
    if run:
        expected.append(tuple(run))
    g = trace_model(nn.Sequential(*mods), (2, 5, 5), method=method)
    assert [s.layers for s in g.segments] == expected
    assert [li.out_channels for li in g.layers] == [p[1] for p in plan]


class _MBConvSE(nn.Module):
    """Inverted residual with squeeze-excitation (EfficientNet style)."""

    def __init__(self, c=8, t=4, se=2):
        super().__init__()
        h = c * t
        self.expand = nn.Conv2d(c, h, 1)
        self.dw = nn.Conv2d(h, h, 3, padding=1, groups=h)
        self.fc1 = nn.Conv2d(h, se, 1)
        self.fc2 = nn.Conv2d(se, h, 1)
        self.project = nn.Conv2d(h, c, 1)

    def forward(self, x):
        y = torch.relu(self.dw(torch.relu(self.expand(x))))
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return x + self.project(y * s)


def test_squeeze_excitation_is_off_the_main_path():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), _MBConvSE())
    (blk,) = trace_model(m, (3, 10, 10)).blocks
    assert blk.main_path == ("1.expand", "1.dw", "1.project")
    assert blk.shortcut == ("1.fc1", "1.fc2")
    assert (blk.kind, blk.K, blk.R) == ("inverted_residual", 32, 8)  # expanded width / input width


def test_stride_to_one_pixel_is_not_a_gate():
    m = nn.Sequential(nn.Conv2d(3, 4, 1), zoo.Bottleneck(4, 2, stride=2, kr=2))
    (blk,) = trace_model(m, (3, 2, 2)).blocks
    assert blk.main_path == ("1.conv1", "1.conv2", "1.conv3") and blk.kind == "bottleneck"
