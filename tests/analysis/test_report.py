"""analyze(): rows, counts, K/R, numerical rank and segment dof against independent computations."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from redundancy import zoo
from redundancy.errors import RedundancyError
from redundancy.analysis.report import LayerRow, analyze, numerical_rank

ZOO = ["resnet20", "bottleneck_resnet", "mobilenet_v2", "shufflenet_v2"]


@pytest.fixture(scope="module")
def reports():
    torch.manual_seed(0)
    out = {}
    for name in ZOO:
        m = zoo.get_model(name)
        out[name] = (m, analyze(m, zoo.default_input_shape(name)))
    return out


@pytest.mark.parametrize("name", ZOO)
def test_every_layer_once_and_totals(reports, name):
    m, rep = reports[name]
    convlin = [n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    names = [r.name for r in rep.layers]
    assert sorted(names) == sorted(convlin) and len(set(names)) == len(names)
    unique = {id(p): p.numel() for p in m.parameters()}
    assert rep.summary.params == sum(unique.values())
    layer_params = {id(p): p.numel() for n in convlin for p in m.get_submodule(n).parameters()}
    assert sum(r.params for r in rep.layers) == sum(layer_params.values())
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m.eval()(torch.zeros(1, *zoo.default_input_shape(name)))
    assert 2 * rep.summary.macs == fc.get_total_flops()
    assert rep.summary.flops == 2 * rep.summary.macs
    assert rep.summary.bytes == 4 * rep.summary.params
    assert rep.summary.n_segments_skipped == 0
    for r in rep.layers:  # segment rows consistent with the layer rows
        seg = next(s for s in rep.segments if s.name == r.segment)
        assert r.name in seg.layers and r.segment_dof == seg.dof and r.segment_naive == seg.naive
        assert seg.dof <= seg.naive


def test_resnet_bottleneck_kr_is_4():
    m = zoo.bottleneck_resnet(kr=4, layers=(2,), widths=(64,), stem_width=256)
    rep = analyze(m, (3, 8, 8))
    for b in rep.blocks:
        assert (b.kind, b.K, b.R, b.kr_ratio) == ("bottleneck", 256, 64, 4.0)
    row = {r.name: r for r in rep.layers}["1.0.conv3"]
    assert (row.out_channels, row.arch_rank, row.kr_ratio, row.block) == (256, 64, 4.0, "1.0")
    assert row.numerical_rank == 64  # random init: full rank of a 256 x 64 unfolding
    assert {r.name: r for r in rep.layers}["1.0.conv2"].arch_rank is None


def test_mobilenet_convention_is_explicit():
    t = 6
    rep = analyze(zoo.mobilenet_v2(kr=t), (3, 32, 32))
    inv = [b for b in rep.blocks if b.kind == "inverted_residual"]
    assert inv and all(b.kr_ratio == pytest.approx(b.K / (b.K and b.R)) for b in inv)
    b = next(b for b in inv if b.name == "2.1")
    assert b.kr_ratio == pytest.approx(t) and "expanded width" in b.kr_convention
    assert b.numerical_kr_ratio == pytest.approx(t)  # the expansion map has full rank c_in
    expansions = [r for r in rep.layers if r.name.endswith("conv.0") and r.out_channels > r.in_channels]
    assert expansions and all(r.kr_ratio == t for r in expansions)
    assert "bottleneck width feeding" in rep.summary.layer_kr_convention
    assert "kr_convention" in rep.blocks_frame().columns


@settings(max_examples=30)
@given(k=st.integers(1, 12), c=st.integers(1, 10), g=st.sampled_from([1, 2, 3]), r=st.integers(1, 6),
       taps=st.sampled_from([(), (3,), (2, 2)]), seed=st.integers(0, 2**16))
def test_numerical_rank_matches_numpy(k, c, g, r, taps, seed):
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(g):
        blocks.append(rng.standard_normal((k, r)) @ rng.standard_normal((r, c * int(np.prod(taps)))))
    w = torch.tensor(np.concatenate(blocks).reshape(g * k, c, *taps))
    rank, tol, gap = numerical_rank(w, g)
    expected = sum(np.linalg.matrix_rank(b) for b in blocks)
    assert rank == expected
    assert gap > 1e6 or rank == g * min(k, c * int(np.prod(taps)))
    w32 = w.float()
    assert numerical_rank(w32, g)[0] == expected  # float32 weights: Gram-eigenvalue route


def _chain(draw):
    kind = draw(st.sampled_from(["single", "pointwise", "dwpw"]))
    c = draw(st.integers(1, 4))
    h = draw(st.integers(1, 5))
    if kind == "single":
        k, s, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        if h + 2 * p < k:
            p = k
        out = draw(st.integers(1, 4))
        return nn.Sequential(nn.Conv2d(c, out, k, s, p, bias=False), nn.BatchNorm2d(out)), (c, h, h)
    if kind == "pointwise":
        widths = [c] + draw(st.lists(st.integers(1, 5), min_size=2, max_size=3))
        mods = []
        for a, b in zip(widths, widths[1:]):
            mods += [nn.Conv2d(a, b, 1, bias=draw(st.booleans())), nn.BatchNorm2d(b)]
        return nn.Sequential(*mods), (c, h, h)
    k = draw(st.integers(2, 3))
    return nn.Sequential(nn.Conv2d(c, c, k, padding=1, groups=c, bias=False), nn.BatchNorm2d(c),
                         nn.Conv2d(c, draw(st.integers(1, 4)), 1)), (c, h, h)


@settings(max_examples=15)
@given(data=st.data())
def test_closed_forms_match_numerical_jacobian_rank(data):
    """Closed-form segment dof (auto route) equals the numerical Jacobian rank (redundancy.linear.dof)."""
    pytest.importorskip("redundancy.linear.dof")
    model, shape = _chain(data.draw)
    auto = analyze(model, shape, dof="auto")
    num = analyze(model, shape, dof="numerical")
    (sa,), (sn,) = auto.segments, num.segments
    assert sa.method.startswith("closed form") and sn.method.startswith("numerical")
    assert sa.dof == sn.dof


def test_tucker_spec_segment_matches_spec_dof():
    dof = pytest.importorskip("redundancy.linear.dof")
    from redundancy.linear.spec import Dense, LinearCNN, TuckerConv

    spec = LinearCNN((4, 6, 6), [TuckerConv(8, 3, ranks=(2, 3), stride=3), Dense(2)])
    rep = analyze(spec.build(0), spec.input_shape)
    (seg,) = rep.segments
    assert seg.layers == tuple(spec.layer_names()) if hasattr(spec, "layer_names") else True
    assert seg.dof == dof.degrees_of_freedom(spec).dof
    tucker = rep.layers[0]
    assert tucker.arch_rank == 2 and tucker.numerical_rank == 2 and tucker.kr_ratio == 4


def test_shared_layer_one_row_and_modes_kept():
    lin = nn.Linear(6, 6)
    m = nn.Sequential(lin, nn.ReLU(), lin, nn.BatchNorm1d(6)).train()
    rep = analyze(m, (6,))
    assert [r.name for r in rep.layers] == ["0"]
    assert rep.layers[0].macs == 72 and rep.layers[0].params == 42
    assert rep.layers[0].segment_dof == 36 and rep.layers[0].dof_method.startswith("closed form")
    # the numerical route has no module for a layer called twice: it falls back to the closed form
    assert analyze(m, (6,), dof="numerical").layers[0].segment_dof == 36
    assert analyze(m, (6,), progress=True).layers[0].segment_dof == 36  # tqdm bars run
    assert m.training and m[3].num_batches_tracked.item() == 0


def test_outputs(tmp_path, reports):
    _, rep = reports["mobilenet_v2"]
    df = rep.to_pandas()
    for col in ["name", "type", "params", "macs", "kr_ratio", "out_channels", "arch_rank",
                "numerical_rank", "segment_dof", "segment_naive", "dof_ratio", "skip_reason"]:
        assert col in df.columns
    assert len(df) == len(rep.layers) and len(rep.blocks_frame()) == len(rep.blocks)
    path = tmp_path / "r.json"
    text = rep.to_json(path)
    back = json.loads(path.read_text())
    assert back == json.loads(text) == rep.to_dict()
    assert back["summary"]["flops"] == 2 * back["summary"]["macs"]
    assert back["layers"][0]["name"] == rep.layers[0].name
    s = repr(rep)
    assert "macs=" in s and "flops=" in s and rep.layers[-1].name in s and "inverted_residual" in s
    assert set(LayerRow.__dataclass_fields__) >= {"name", "type", "params", "macs", "kr_ratio"}


def test_bad_arguments():
    m = zoo.resnet20()
    with pytest.raises(RedundancyError, match="input_shape"):
        analyze(m, (4, 32, 32))
    with pytest.raises(RedundancyError, match="input_shape"):
        analyze(m, "3,32,32")
    for tol in (0, 1.5, -1, True):
        with pytest.raises(RedundancyError, match="rank_tol"):
            analyze(m, (3, 32, 32), rank_tol=tol)
    with pytest.raises(RedundancyError, match="model"):
        analyze(object(), (3, 32, 32))
    with pytest.raises(RedundancyError, match="no parameters"):
        analyze(nn.ReLU(), (3,))
    with pytest.raises(RedundancyError, match="dof="):
        analyze(m, (3, 32, 32), dof="fast")
    with pytest.raises(RedundancyError, match="dtype"):
        analyze(m, (3, 32, 32), dtype="float7")
    with pytest.raises(RedundancyError, match="no conv or linear"):
        analyze(nn.BatchNorm1d(3), (3,))


@settings(max_examples=6)
@given(c=st.integers(2, 5), r1=st.integers(1, 3), r2=st.integers(1, 3), k=st.integers(3, 6))
def test_tucker2_chain_numerical_dof_matches_formula(c, r1, r2, k):
    """1x1 (C->R1) -> 3x3 (R1->R2) -> BN -> 1x1 (R2->K) with no activation is one segment whose dof
    is the Tucker-2 count R1 R2 9 + (C R1 - R1^2) + (K R2 - R2^2) (research note, sec. 3.4)."""
    pytest.importorskip("redundancy.linear.dof")
    r1, r2 = min(r1, c), min(r2, k)
    m = nn.Sequential(nn.Conv2d(c, r1, 1, bias=False), nn.Conv2d(r1, r2, 3, padding=1, bias=False),
                      nn.BatchNorm2d(r2), nn.Conv2d(r2, k, 1))
    (seg,) = analyze(m, (c, 8, 8), dof="numerical").segments
    assert seg.method.startswith("numerical")
    assert seg.dof == r1 * r2 * 9 + (c * r1 - r1 ** 2) + (k * r2 - r2 ** 2)
    (closed,) = analyze(m, (c, 8, 8)).segments   # the traced chain's closed form agrees
    assert closed.route == "closed:tucker2" and closed.dof == seg.dof
    assert seg.naive == c * r1 + r1 * r2 * 9 + r2 * k


class _Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Conv2d(3, 4, 3)
        self.aux = nn.Linear(4, 2)  # never called

    def forward(self, x):
        return self.used(x)


def test_uncalled_layer_is_listed_with_reason():
    rep = analyze(_Unused(), (3, 5, 5))
    rows = {r.name: r for r in rep.layers}
    assert set(rows) == {"used", "aux"}
    assert rows["aux"].macs == 0 and rows["aux"].calls == 0 and "never called" in rows["aux"].skip_reason
    assert rows["aux"].segment_dof is None and rep.summary.n_segments_skipped == 1
    assert "never called" in rep.summary.notes[0]


def test_transposed_conv_rank_uses_output_channels():
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(2, 6, 1, bias=False)  # weight (2, 6, 1, 1): output-mode rank <= 2
    rep = analyze(nn.Sequential(up), (2, 3, 3))
    row = rep.layers[0]
    assert row.kernel_shape == (6, 2, 1, 1) and row.numerical_rank == 2 and row.arch_rank == 2
    assert row.kr_ratio == 3


def test_block_numerical_rank_sees_low_rank_weights():
    m = zoo.bottleneck_resnet(kr=4, layers=(1,), widths=(8,), stem_width=32)
    with torch.no_grad():  # make conv2's output unfolding rank 3 (< its width 8)
        w = m[1][0].conv2.weight
        w.copy_((torch.randn(8, 3) @ torch.randn(3, w[0].numel())).reshape(w.shape))
    (b,) = analyze(m, (3, 8, 8)).blocks
    assert (b.R, b.kr_ratio, b.numerical_R, b.numerical_kr_ratio) == (8, 4.0, 3, 32 / 3)


def test_dof_none_is_the_documented_skip():
    # before: analyze(..., dof="none") was refused by segment_dof's own check
    net = nn.Sequential(nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    rep = analyze(net, (8, 6, 6), dof="none")
    assert rep.dof == "none" and all(s.dof is None and s.route == "skipped" for s in rep.segments)
    assert all("not requested" in s.skip_reason for s in rep.segments)
    assert rep.summary.n_segments_skipped == len(rep.segments)


@pytest.mark.parametrize("which", ["input_shape", "meta"])
def test_analyze_wrong_shape_or_meta_model_is_named(which):
    net = nn.Sequential(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 1))
    if which == "input_shape":
        with pytest.raises(RedundancyError, match="input_shape"):
            analyze(net, (3, 6, 6))
    else:
        with pytest.raises(RedundancyError, match="model"):
            analyze(nn.Linear(4, 2, device="meta"), (4,))
