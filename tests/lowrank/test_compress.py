"""Compressed chains equal a plain conv with the reconstructed kernel; compress() on whole models."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from torch import nn

from redundancy import RankError, RedundancyError, UnsupportedLayerError
from redundancy.lowrank.compression import CompressedLayer, CompressionResult, compress, cp_layer, tucker2_layer
from redundancy.lowrank.decompose import cp_decompose, tucker_decompose

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
FCONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@st.composite
def conv_setups(draw):
    nd = draw(st.integers(1, 3))
    c, k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(d * (l - 1) + 1 + draw(st.integers(0, 4)) for d, l in zip(dil, ks))
    if nd == 3:
        size = tuple(min(s, 6) if s > d * (l - 1) + 1 else s for s, d, l in zip(size, dil, ks))
    torch.manual_seed(draw(st.integers(0, 1000)))
    conv = CONV[nd](c, k, ks, stride=stride, padding=pad, dilation=dil, bias=draw(st.booleans())).double()
    x = torch.randn(2, c, *size, dtype=torch.float64)
    return conv, x


def _tucker_kernel(dec):
    """Independent reconstruction G x_0 U_out x_1 U_in."""
    u_out, u_in = dec.factors
    core = dec.core.reshape(*dec.core.shape[:2], -1)
    k = np.einsum("abs,oa,cb->ocs", core, u_out, u_in)
    return k.reshape(u_out.shape[0], u_in.shape[0], *dec.core.shape[2:])


def _cp_kernel(dec):
    letters = "abcde"[: len(dec.factors)]
    return np.einsum("r," + ",".join(c + "r" for c in letters) + "->" + letters, dec.weights, *dec.factors)


@given(conv_setups(), st.data())
def test_tucker_chain_equals_conv_with_reconstructed_kernel(setup, data):
    conv, x = setup
    k, c = conv.out_channels, conv.in_channels
    ranks = (data.draw(st.integers(1, k)), data.draw(st.integers(1, c)))
    dec = tucker_decompose(conv.weight.detach().numpy(), ranks, modes=(0, 1))
    chain = tucker2_layer(conv, dec)
    nd = x.ndim - 2
    ref = FCONV[nd](x, torch.from_numpy(_tucker_kernel(dec)), conv.bias, conv.stride, conv.padding, conv.dilation)
    torch.testing.assert_close(chain(x), ref, rtol=1e-10, atol=1e-10)
    assert isinstance(chain, CompressedLayer) and chain.ranks == ranks
    assert chain.core.stride == conv.stride and chain.core.dilation == conv.dilation


@given(conv_setups(), st.integers(1, 4))
def test_cp_chain_equals_conv_with_reconstructed_kernel(setup, rank):
    conv, x = setup
    w = conv.weight.detach().numpy()
    rank = min(rank, math.prod(w.shape) // max(w.shape))
    dec = cp_decompose(w, rank, n_iter_max=50)
    chain = cp_layer(conv, dec)
    nd = x.ndim - 2
    kernel = torch.from_numpy(np.ascontiguousarray(_cp_kernel(dec)))
    ref = FCONV[nd](x, kernel, conv.bias, conv.stride, conv.padding, conv.dilation)
    torch.testing.assert_close(chain(x), ref, rtol=1e-10, atol=1e-10)
    assert chain.core.groups == rank


@given(conv_setups())
def test_full_tucker_ranks_reproduce_the_layer(setup):
    conv, x = setup
    res = compress(conv, ranks=(conv.out_channels, conv.in_channels), allow_larger=True)
    assert torch.max(torch.abs(res.model(x) - conv(x))).item() < 1e-10
    assert res.layers[0].rel_error < 1e-10


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_padding_modes_commute_with_the_1x1_convs(mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, padding_mode=mode).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    full = compress(conv, ranks=(5, 3), allow_larger=True).model
    assert torch.max(torch.abs(full(x) - conv(x))).item() < 1e-10


def test_full_cp_rank_of_pointwise_conv_and_linear_reproduce():
    torch.manual_seed(0)
    pw = nn.Conv2d(4, 6, 1).double()
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    assert torch.max(torch.abs(compress(pw, ranks=4, method="cp", allow_larger=True).model(x) - pw(x))).item() < 1e-10
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    z = torch.randn(4, 5, dtype=torch.float64)
    for method, r in (("tucker", {"0": (7, 5), "2": (3, 7)}), ("cp", {"0": 5, "2": 3})):
        res = compress(net, ranks=r, method=method, allow_larger=True)
        assert torch.max(torch.abs(res.model(z) - net(z))).item() < 1e-10
        assert set(res.ranks) == {"0", "2"}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.gr = nn.Conv2d(8, 8, 1, groups=2)
        self.up = nn.ConvTranspose2d(8, 8, 2)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y = self.gr(self.dw(self.conv1(x))) + x
        return self.fc(self.up(y).mean((2, 3)))


def test_compress_model_result_and_original_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(Block(), ).double()
    before = copy.deepcopy(net.state_dict())
    res = compress(net, ranks=(4, 3), seed=1, allow_larger=True)
    assert isinstance(res, CompressionResult)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert isinstance(net[0].conv1, nn.Conv2d)
    assert isinstance(res.model[0].conv1, CompressedLayer)
    assert res.ranks == {"0.conv1": (4, 3), "0.gr": (4, 3)}  # the grouped conv: ranks per group
    assert res.model[0].gr.groups == 2 and res.model[0].gr.core.groups == 2
    reasons = {s.name: s.reason for s in res.skipped}
    assert "depthwise" in reasons["0.dw"] and "transposed" in reasons["0.up"] and len(reasons) == 2
    assert res.params_before == sum(p.numel() for p in net.parameters())
    assert res.params_after == sum(p.numel() for p in res.model.parameters())
    row = res.layers[0]
    assert row.params_before == 8 * 8 * 9 and row.params_after == 8 * 3 + 3 * 4 * 9 + 4 * 8
    gr = res.layers[1]
    assert gr.params_before == 8 * 4 + 8 and gr.params_after == 2 * (4 * 3 + 3 * 4 + 4 * 4) + 8
    assert res.params_before - res.params_after == sum(r.params_before - r.params_after for r in res.layers)
    # the kernel error is the error of the chain's effective kernel (independent: impulse responses)
    assert 0 < row.rel_error < 1
    df = res.to_pandas()
    assert len(df) == 4 and set(df["name"]) == {"0.conv1", "0.dw", "0.gr", "0.up"}
    assert res.to_dict()["layers"][0]["ranks"] == [4, 3]
    assert "replaced=2" in repr(res)
    x = torch.randn(1, 8, 5, 5, dtype=torch.float64)
    assert res.model(x).shape == net(x).shape


def test_named_depthwise_conv_is_skipped_and_linear_compressed():
    net = nn.Sequential(Block()).double()
    res = compress(net, ranks={"0.dw": (1, 1), "0.fc": (2, 4)}, seed=0, allow_larger=True)
    assert [r.name for r in res.layers] == ["0.fc"]
    assert [s.name for s in res.skipped] == ["0.dw"]


@settings(max_examples=15)
@given(st.integers(1, 3), st.sampled_from([2, 3]), st.integers(1, 3), st.integers(1, 3), st.data())
def test_grouped_conv_chains_equal_the_grouped_conv_with_reconstructed_blocks(nd, g, cg, kg, data):
    assume(cg * kg > 1)  # one filter per channel: skipped (tested above)
    torch.manual_seed(data.draw(st.integers(0, 100)))
    ks = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    conv = CONV[nd](g * cg, g * kg, ks, stride=data.draw(st.integers(1, 2)), padding=data.draw(st.integers(0, 1)),
                    dilation=data.draw(st.integers(1, 2)), groups=g).double()
    x = torch.randn(2, g * cg, *[2 * k + 3 for k in ks], dtype=torch.float64)
    ranks = (data.draw(st.integers(1, kg)), data.draw(st.integers(1, cg)))
    res = compress(conv, ranks=ranks, allow_larger=True)
    blocks = [_tucker_kernel(d) for d in res.layers[0].decomposition]
    ref = FCONV[nd](x, torch.from_numpy(np.concatenate(blocks)), conv.bias, conv.stride, conv.padding,
                    conv.dilation, g)
    torch.testing.assert_close(res.model(x), ref, rtol=1e-10, atol=1e-10)
    full = compress(conv, ranks=(kg, cg), allow_larger=True).model
    assert torch.max(torch.abs(full(x) - conv(x))).item() < 1e-10
    cp = compress(conv, ranks=1, method="cp", n_iter_max=30, allow_larger=True)
    blocks = [_cp_kernel(d) for d in cp.layers[0].decomposition]
    ref = FCONV[nd](x, torch.from_numpy(np.concatenate(blocks)), conv.bias, conv.stride, conv.padding,
                    conv.dilation, g)
    torch.testing.assert_close(cp.model(x), ref, rtol=1e-10, atol=1e-10)
    err = np.linalg.norm(np.concatenate(blocks) - conv.weight.detach().numpy()) / np.linalg.norm(conv.weight.detach())
    assert abs(err - cp.layers[0].rel_error) < 1e-10


def test_shared_conv_is_replaced_everywhere():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), conv).double()
    res = compress(net, ranks=(2, 2))
    assert res.model[0] is res.model[2] and isinstance(res.model[2], CompressedLayer)
    assert res.params_after == sum(p.numel() for p in res.model[0].parameters())


def test_ranks_as_callable_and_cp():
    net = nn.Sequential(nn.Conv1d(4, 6, 3), nn.Conv1d(6, 6, 3)).double()
    res = compress(net, ranks=lambda name, layer: 2 if name == "0" else 3, method="cp")
    assert res.ranks == {"0": (2,), "1": (3,)}
    assert res.model[1].core.groups == 3


def test_kernel_error_matches_chain_impulse_response():
    torch.manual_seed(3)
    conv = nn.Conv2d(5, 6, 3, bias=False).double()
    res = compress(conv, ranks=(2, 2))
    eye = torch.eye(5 * 9, dtype=torch.float64).reshape(45, 5, 3, 3)
    k_chain = res.model(eye)[:, :, 0, 0].T.reshape(6, 5, 3, 3)  # column j = response to basis input j
    k = conv.weight.detach()
    assert abs(torch.linalg.norm(k_chain - k) / torch.linalg.norm(k) - res.layers[0].rel_error) < 1e-10


@pytest.mark.parametrize("ranks,err,match", [
    ((9, 3), RankError, r"output channels \(8\)"), ((0, 3), RankError, "not allowed"),
    ((-1, 3), RankError, "not allowed"), ((2, 2, 2), RankError, "3 entries"),
    (4, RankError, "pair"), ({"nope": (2, 2)}, RankError, "without an entry|not submodules"),
])
def test_bad_ranks(ranks, err, match):
    with pytest.raises(err, match=match):
        compress(nn.Sequential(nn.Conv2d(3, 8, 3)), ranks=ranks)


def test_bad_cp_ranks_layers_and_method():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    for r in (0, -1, (2, 2), 10**6):
        with pytest.raises(RankError, match="CP needs one integer"):
            compress(net, ranks=r, method="cp")
    with pytest.raises(UnsupportedLayerError, match="ReLU"):
        compress(net, ranks=(2, 2), layers=["1"])
    with pytest.raises(RedundancyError, match="not a submodule"):
        compress(net, ranks=(2, 2), layers=["conv9"])
    with pytest.raises(RedundancyError, match="method"):
        compress(net, ranks=(2, 2), method="tt")
    with pytest.raises(RedundancyError, match="torch.nn.Module"):
        compress("net", ranks=(2, 2))
