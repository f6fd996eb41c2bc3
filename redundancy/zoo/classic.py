"""Small reference CNNs for examples and tests, each with its K/R ratio as an argument.

Four families, written here (no torchvision needed), with standard layer names so that
:func:`redundancy.analyze` finds their blocks:

* ``"resnet20"``: CIFAR-style ResNet-20 (basic blocks, 3 stages of 3 blocks, widths 16/32/64).
  ``kr`` narrows the first conv of each block: widths K -> K/kr -> K.
* ``"bottleneck_resnet"``: ResNet with bottleneck blocks 1x1 (C->R) -> 3x3 (R->R) -> 1x1 (R->K),
  K = kr * R (``kr=4`` is ResNet-50's 256 -> 64 -> 64 -> 256).
* ``"resnet50_sized"``: the bottleneck ResNet at ResNet-50 depths (3, 4, 6, 3) and widths
  (64, 128, 256, 512), ImageNet stem, 1000 classes, input 3x224x224 (about 25.6 M parameters).
* ``"mobilenet_v2"``: MobileNetV2-style inverted residual blocks 1x1 expand (C->tC), 3x3
  depthwise, linear 1x1 project (tC->K). ``kr`` is the expansion factor t, which is the K/R of each
  expansion layer (its output width over the projected width R feeding it); the block rows of a
  report use the block convention K = projected width, R = expanded width, so they show 1/kr.
* ``"shufflenet_v2"``: ShuffleNetV2-style units (channel split, 1x1 -> 3x3 depthwise -> 1x1 on one
  half, concat, channel shuffle). ``kr`` narrows the unit's first 1x1: c -> c/kr -> c.

Every factory takes ``in_channels`` and ``num_classes``; the defaults are small enough for tests.
:func:`default_input_shape` gives the ``(C, H, W)`` each one is meant for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import functools

from redundancy._validation import check_choice, check_float, check_int, check_seed, check_shape
from redundancy._validation.limits import _first_line
from redundancy.errors import RedundancyError

#: limits of the zoo's arguments (stated in the messages): widths/channels, repeated blocks, classes,
#: and the parameter count of the model (checked on the meta device before anything is allocated)
MAX_WIDTH = 8192
MAX_BLOCKS = 256
MAX_CLASSES = 1_000_000
MAX_PARAMS = 2 ** 28



def _width(k: int, kr: float, name: str = "kr") -> int:
    r = int(round(k / kr))
    if r < 1:
        raise RedundancyError(f"{name}={kr} leaves a width of {k}/{kr} < 1 channel; use {name} <= {k}")
    return r


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """Two 3x3 convs C -> R -> K with BatchNorm, ReLU and a residual shortcut (1x1 when needed)."""

    def __init__(self, c_in: int, k: int, stride: int = 1, kr: float = 1.0):
        super().__init__()
        r = _width(k, kr)
        self.conv1, self.bn1 = _conv_bn(c_in, r, 3, stride)
        self.conv2, self.bn2 = _conv_bn(r, k, 3)
        self.relu = nn.ReLU()
        self.shortcut = (nn.Sequential(*_conv_bn(c_in, k, 1, stride))
                         if stride != 1 or c_in != k else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 (C -> R), 3x3 (R -> R, stride), 1x1 (R -> K = kr * R), residual shortcut."""

    def __init__(self, c_in: int, r: int, stride: int = 1, kr: float = 4.0):
        super().__init__()
        k = int(round(r * kr))
        self.conv1, self.bn1 = _conv_bn(c_in, r, 1)
        self.conv2, self.bn2 = _conv_bn(r, r, 3, stride)
        self.conv3, self.bn3 = _conv_bn(r, k, 1)
        self.relu = nn.ReLU()
        self.out_channels = k
        self.shortcut = (nn.Sequential(*_conv_bn(c_in, k, 1, stride))
                         if stride != 1 or c_in != k else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class InvertedResidual(nn.Module):
    """1x1 expand C -> tC (ReLU6), 3x3 depthwise (ReLU6), linear 1x1 project tC -> K; residual if
    stride 1 and C == K. With t == 1 the expansion is left out (depthwise-separable)."""

    def __init__(self, c_in: int, k: int, stride: int, t: float):
        super().__init__()
        hidden = int(round(c_in * t))
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(),
                   *_conv_bn(hidden, k, 1)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups (a fixed permutation, hence linear)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels, transform one half. Stride 2: two branches."""

    def __init__(self, c_in: int, c_out: int, stride: int, kr: float = 1.0):
        super().__init__()
        self.stride = stride
        c = c_out // 2
        if stride == 1 and c_in != c_out:
            raise RedundancyError(f"a stride-1 shuffle unit needs c_in == c_out; got {c_in} and {c_out}")
        c_b = c_in if stride > 1 else c_in // 2
        r = _width(c, kr)
        if stride > 1:
            self.branch1 = nn.Sequential(*_conv_bn(c_in, c_in, 3, stride, groups=c_in),
                                         *_conv_bn(c_in, c, 1), nn.ReLU())
        else:
            self.branch1 = nn.Identity()
        self.branch2 = nn.Sequential(*_conv_bn(c_b, r, 1), nn.ReLU(),
                                     *_conv_bn(r, r, 3, stride, groups=r),
                                     *_conv_bn(r, c, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def _check_common(kr, in_channels, num_classes):
    kr = check_float("kr", kr, min_value=0.0, min_inclusive=False, max_value=float(MAX_WIDTH))
    check_int("in_channels", in_channels, min_value=1, max_value=MAX_WIDTH)
    check_int("num_classes", num_classes, min_value=1, max_value=MAX_CLASSES)
    return kr


def _widths(name, value, **kw):
    out = check_shape(name, value, **kw)
    if max(out) > MAX_WIDTH:
        raise RedundancyError(f"{name}={out} has a width above the limit {MAX_WIDTH}")
    return out


def _counts(name, value, **kw):
    out = check_shape(name, value, **kw)
    if max(out) > MAX_BLOCKS:
        raise RedundancyError(f"{name}={out} repeats a block more than the limit {MAX_BLOCKS} times")
    return out


def _bounded(builder):
    """Build on the meta device first (no memory): refuse a model above :data:`MAX_PARAMS`
    parameters, and turn torch's construction errors into a RedundancyError; then build for real.

    Every wrapped factory also takes ``seed`` (int or None, default None): given, the weights are
    drawn from ``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng` (the same seed gives
    bit-identical weights in any process, and the global generator is left as it was); None draws
    from torch's global generator as plain torch does."""

    import inspect

    sig = inspect.signature(builder)

    @functools.wraps(builder)
    def wrapper(*, seed=None, **kw):
        seed = check_seed("seed", seed, allow_none=True)
        if seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return wrapper(**kw)
        try:
            sig.bind(**kw)
        except TypeError as exc:
            raise RedundancyError(f"{builder.__name__}(): bad keyword arguments {sorted(kw)}: {exc}") from None
        try:
            with torch.device("meta"):
                probe = builder(**kw)
        except RedundancyError:
            raise
        except Exception as exc:  # noqa: BLE001 - torch refuses some combinations of sizes
            first = _first_line(exc)[:160]
            raise RedundancyError(f"{builder.__name__}({', '.join(sorted(kw))}): these arguments do not give a "
                                  f"valid model ({type(exc).__name__}: {first})") from None
        n = sum(p.numel() for p in probe.parameters())
        if n > MAX_PARAMS:
            raise RedundancyError(f"{builder.__name__} with these arguments has {n:,} parameters; the limit is "
                                  f"{MAX_PARAMS:,}")
        return builder(**kw)
    params = list(sig.parameters.values())
    if "seed" not in sig.parameters:
        params.append(inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=None))
    wrapper.__signature__ = sig.replace(parameters=params)
    return wrapper


def _head(c: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))


@_bounded
def resnet20(*, kr: float = 1.0, blocks_per_stage: int = 3, widths=(16, 32, 64), in_channels: int = 3,
             num_classes: int = 10) -> nn.Module:
    """CIFAR-style ResNet (He et al. 2016, sec. 4.2): 6n+2 layers, n = ``blocks_per_stage``.

    ``kr`` sets each basic block's K/R: its first 3x3 conv has ``round(K / kr)`` outputs.

    Examples
    --------
    >>> m = resnet20()
    >>> sum(p.numel() for p in m.parameters())
    272474
    """
    kr = _check_common(kr, in_channels, num_classes)
    n = check_int("blocks_per_stage", blocks_per_stage, min_value=1, max_value=MAX_BLOCKS)
    widths = _widths("widths", widths, min_len=1)
    stem = nn.Sequential(*_conv_bn(in_channels, widths[0], 3), nn.ReLU())
    stages, c = [], widths[0]
    for i, w in enumerate(widths):
        blocks = [BasicBlock(c if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1, kr) for j in range(n)]
        stages.append(nn.Sequential(*blocks))
        c = w
    return nn.Sequential(stem, *stages, _head(c, num_classes))


@_bounded
def bottleneck_resnet(*, kr: float = 4.0, layers=(1, 1), widths=(8, 16), stem: str = "cifar",
                      stem_width: int | None = None, in_channels: int = 3,
                      num_classes: int = 10) -> nn.Module:
    """ResNet of bottleneck blocks; stage ``i`` has ``layers[i]`` blocks of bottleneck width
    ``widths[i]`` and output width ``kr * widths[i]`` (K/R = ``kr``).

    ``stem="cifar"``: one 3x3 conv; ``stem="imagenet"``: 7x7 stride-2 conv and 3x3 max-pool.

    Examples
    --------
    >>> m = bottleneck_resnet(kr=4, layers=(1,), widths=(64,), stem_width=256)
    >>> [m[1][0].conv1.in_channels, m[1][0].conv1.out_channels, m[1][0].conv3.out_channels]
    [256, 64, 256]
    """
    kr = _check_common(kr, in_channels, num_classes)
    layers = _counts("layers", layers, min_len=1)
    widths = _widths("widths", widths, min_len=len(layers), max_len=len(layers))
    check_choice("stem", stem, ["cifar", "imagenet"])
    c = check_int("stem_width", stem_width, min_value=1, max_value=MAX_WIDTH) if stem_width is not None else widths[0]
    if stem == "cifar":
        head = nn.Sequential(*_conv_bn(in_channels, c, 3), nn.ReLU())
    else:
        head = nn.Sequential(nn.Conv2d(in_channels, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c),
                             nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    stages = []
    for i, (n, w) in enumerate(zip(layers, widths)):
        blocks = []
        for j in range(n):
            b = Bottleneck(c, w, 2 if (i > 0 and j == 0) else 1, kr)
            c = b.out_channels
            blocks.append(b)
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(head, *stages, _head(c, num_classes))


@_bounded
def resnet50_sized(*, kr: float = 4.0, in_channels: int = 3, num_classes: int = 1000) -> nn.Module:
    """The bottleneck ResNet at ResNet-50 depths and widths (25,557,032 parameters at ``kr=4``).

    Examples
    --------
    >>> sum(p.numel() for p in resnet50_sized().parameters())
    25557032
    """
    return bottleneck_resnet(kr=kr, layers=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem="imagenet",
                             stem_width=64, in_channels=in_channels, num_classes=num_classes)


@_bounded
def mobilenet_v2(*, kr: float = 6.0, settings=((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2)),
                 stem_width: int = 8, last_width: int = 64, in_channels: int = 3,
                 num_classes: int = 10) -> nn.Module:
    """MobileNetV2-style network (Sandler et al. 2018). ``settings`` rows are ``(t, c, n, s)``;
    every ``t != 1`` is replaced by ``kr``, the K/R of the expansion layers (expanded width over
    the projected width feeding them). Block rows of a report show 1/kr (K = projected width,
    R = expanded width); the convention is stated in their ``kr_convention`` field.

    Examples
    --------
    >>> m = mobilenet_v2(kr=4)
    >>> m[2][0].conv[0].out_channels // m[2][0].conv[0].in_channels
    4
    """
    kr = _check_common(kr, in_channels, num_classes)
    check_int("stem_width", stem_width, min_value=1, max_value=MAX_WIDTH)
    check_int("last_width", last_width, min_value=1, max_value=MAX_WIDTH)
    feats: list[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, stem_width, 3, 2), nn.ReLU6())]
    c = stem_width
    if not isinstance(settings, (tuple, list)) or not 1 <= len(settings) <= MAX_BLOCKS:
        raise RedundancyError(f"settings={settings!r:.60} must be a list of 1..{MAX_BLOCKS} rows (t, c, n, s)")
    for row in settings:
        t, w, n, s = _widths("settings row", row, min_len=4, max_len=4)
        _counts("settings row (t, c, n, s): n", n)
        blocks = []
        for j in range(n):
            blocks.append(InvertedResidual(c, w, s if j == 0 else 1, 1.0 if t == 1 else kr))
            c = w
        feats.append(nn.Sequential(*blocks))
    feats.append(nn.Sequential(*_conv_bn(c, last_width, 1), nn.ReLU6()))
    return nn.Sequential(*feats, _head(last_width, num_classes))


@_bounded
def shufflenet_v2(*, kr: float = 1.0, stage_repeats=(2, 2), stage_widths=(16, 32), stem_width: int = 8,
                  last_width: int = 64, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """ShuffleNetV2-style network (Ma et al. 2018): each stage opens with a stride-2 unit.

    ``kr`` sets K/R of each unit's transformed branch: 1x1 (-> c/kr), 3x3 depthwise, 1x1 (-> c).

    Examples
    --------
    >>> m = shufflenet_v2()
    >>> type(m[1][0]).__name__
    'ShuffleUnit'
    """
    kr = _check_common(kr, in_channels, num_classes)
    repeats = _counts("stage_repeats", stage_repeats, min_len=1)
    widths = _widths("stage_widths", stage_widths, min_len=len(repeats), max_len=len(repeats))
    for w in widths:
        if w % 2:
            raise RedundancyError(f"stage_widths={widths!r} has an odd width {w}; widths must be even")
    stem = nn.Sequential(*_conv_bn(in_channels, stem_width, 3, 2), nn.ReLU())
    stages, c = [], stem_width
    for n, w in zip(repeats, widths):
        units = [ShuffleUnit(c, w, 2, kr)] + [ShuffleUnit(w, w, 1, kr) for _ in range(n - 1)]
        stages.append(nn.Sequential(*units))
        c = w
    last = nn.Sequential(*_conv_bn(c, last_width, 1), nn.ReLU())
    return nn.Sequential(stem, *stages, last, _head(last_width, num_classes))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet20": resnet20,
    "bottleneck_resnet": bottleneck_resnet,
    "resnet50_sized": resnet50_sized,
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
}

_INPUT_SHAPES = {"resnet20": (3, 32, 32), "bottleneck_resnet": (3, 32, 32),
                 "resnet50_sized": (3, 224, 224), "mobilenet_v2": (3, 32, 32),
                 "shufflenet_v2": (3, 32, 32)}


def get_model(name: str, **kw) -> nn.Module:
    """Build zoo model ``name`` (one of :data:`MODELS`) with keyword arguments ``kw``.

    Examples
    --------
    >>> get_model("resnet20", kr=2)[1][0].conv1.out_channels
    8
    """
    check_choice("name", name, list(MODELS))
    if not all(isinstance(k, str) for k in kw):
        raise RedundancyError(f"get_model({name!r}): keyword names must be strings")
    try:
        return MODELS[name](**kw)
    except TypeError as exc:
        raise RedundancyError(f"get_model({name!r}): bad keyword arguments {sorted(kw)}: {exc}") from None


def default_input_shape(name: str) -> tuple[int, int, int]:
    """The ``(C, H, W)`` input zoo model ``name`` is meant for (``in_channels`` left at 3).

    Examples
    --------
    >>> default_input_shape("resnet50_sized")
    (3, 224, 224)
    """
    check_choice("name", name, list(MODELS))
    return _INPUT_SHAPES[name]
