"""Zoo models: they run at their default input shape, and ``kr`` sets the widths it promises."""

import pytest
import torch
from torch import nn

from redundancy import zoo
from redundancy.errors import RedundancyError


@pytest.mark.parametrize("name", [n for n in zoo.MODELS if n != "resnet50_sized"])
def test_forward_at_default_shape(name):
    m = zoo.get_model(name, num_classes=7).eval()
    with torch.no_grad():
        y = m(torch.randn(2, *zoo.default_input_shape(name)))
    assert y.shape == (2, 7)


def test_resnet50_sized_matches_resnet50_parameter_count():
    # torchvision's resnet50 has 25,557,032 parameters (torchvision model table); same depths/widths.
    m = zoo.resnet50_sized()
    assert sum(p.numel() for p in m.parameters()) == 25_557_032
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert len(convs) == 53  # 1 stem + 16 blocks x 3 + 4 downsample convs


def test_resnet20_depth_and_kr():
    m = zoo.resnet20()
    weighted = [mod for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))
                and not (isinstance(mod, nn.Conv2d) and mod.kernel_size == (1, 1))]
    assert len(weighted) == 20  # 19 3x3 convs + fc: the "20" of ResNet-20
    m2 = zoo.resnet20(kr=2)
    blk = m2[2][0]
    assert (blk.conv1.out_channels, blk.conv2.out_channels) == (16, 32)


@pytest.mark.parametrize("kr", [1, 2, 4])
def test_bottleneck_kr(kr):
    m = zoo.bottleneck_resnet(kr=kr, layers=(2,), widths=(8,))
    for blk in m[1]:
        assert blk.conv3.out_channels == kr * blk.conv2.out_channels
        assert blk.conv1.out_channels == 8


@pytest.mark.parametrize("kr", [2, 3, 6])
def test_mobilenet_expansion_is_kr(kr):
    m = zoo.mobilenet_v2(kr=kr)
    ir = [b for b in m.modules() if isinstance(b, zoo.InvertedResidual)]
    expanded = [b for b in ir if len(b.conv) == 8]
    assert expanded
    for b in expanded:
        assert b.conv[0].out_channels == kr * b.conv[0].in_channels
        assert b.conv[3].groups == b.conv[3].in_channels  # depthwise


def test_shufflenet_kr_and_shuffle_is_permutation():
    m = zoo.shufflenet_v2(kr=2)
    unit = m[1][1]
    assert unit.branch2[0].out_channels * 2 == unit.branch2[5].out_channels
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    y = zoo.channel_shuffle(x, 2).flatten().tolist()
    assert sorted(y) == list(range(8)) and y[:4] == [0.0, 4.0, 1.0, 5.0]


def test_errors_name_the_argument():
    with pytest.raises(RedundancyError, match="name='vgg'"):
        zoo.get_model("vgg")
    with pytest.raises(RedundancyError, match="kr"):
        zoo.resnet20(kr=0)
    with pytest.raises(RedundancyError, match="kr=64"):
        zoo.resnet20(kr=64)
    with pytest.raises(RedundancyError, match="stage_widths"):
        zoo.shufflenet_v2(stage_widths=(15, 32))
    with pytest.raises(RedundancyError, match="bad keyword"):
        zoo.get_model("resnet20", depth=3)
    with pytest.raises(RedundancyError, match="name"):
        zoo.default_input_shape("nope")
