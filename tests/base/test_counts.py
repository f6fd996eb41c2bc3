"""MACs and memory, checked against torch's FlopCounterMode and direct arithmetic."""

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from redundancy import zoo
from redundancy.counts import count_macs, dtype_itemsize, eval_mode, memory_bytes, parameter_count
from redundancy.errors import RedundancyError


def torch_flops(model, shape):
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, *shape))
    return fc.get_total_flops()


@pytest.mark.parametrize("name", ["resnet20", "bottleneck_resnet", "mobilenet_v2", "shufflenet_v2"])
def test_macs_equal_flop_counter_over_two(name):
    m = zoo.get_model(name)
    shape = zoo.default_input_shape(name)
    macs = count_macs(m, shape)
    assert 2 * sum(macs.values()) == torch_flops(m, shape)
    named = {n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))}
    assert set(macs) == named


@settings(max_examples=25)
@given(c_in=st.integers(1, 4), groups=st.sampled_from([1, 2]), k=st.integers(1, 4),
       stride=st.integers(1, 3), pad=st.integers(0, 2), dil=st.integers(1, 2), h=st.integers(5, 9),
       ndim=st.sampled_from([1, 2, 3]))
def test_conv_macs_match_flop_counter(c_in, groups, k, stride, pad, dil, h, ndim):
    conv = [nn.Conv1d, nn.Conv2d, nn.Conv3d][ndim - 1](c_in * groups, 2 * groups, k, stride=stride,
                                                      padding=pad, dilation=dil, groups=groups)
    shape = (c_in * groups,) + (h,) * ndim
    if (h + 2 * pad - dil * (k - 1)) < 1:
        return
    assert 2 * count_macs(conv, shape)[""] == torch_flops(conv, shape)


def test_linear_on_sequences_and_shared_layer():
    lin = nn.Linear(6, 4)
    assert count_macs(lin, (5, 6)) == {"": 5 * 4 * 6}
    m = nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 6))
    m.append(lin)  # same module called twice: MACs add up, parameters count once
    macs = count_macs(m, (6,))
    assert macs["0"] == 2 * 24 and macs["2"] == 24
    assert 2 * sum(macs.values()) == torch_flops(m, (6,))
    assert parameter_count(m) == 28 + 30


def test_memory_bytes_at_dtypes():
    m = zoo.resnet20()
    n = sum(p.numel() for p in m.parameters())
    assert memory_bytes(m) == 4 * n
    assert memory_bytes(m, dtype=torch.float16) == 2 * n
    assert memory_bytes(m, dtype="int8") == n
    bufs = sum(b.numel() for b in m.buffers() if b.is_floating_point())
    ints = sum(b.numel() * b.element_size() for b in m.buffers() if not b.is_floating_point())
    assert memory_bytes(m, dtype="float64", include_buffers=True) == 8 * (n + bufs) + ints
    assert dtype_itemsize("bfloat16") == 2


def test_probe_leaves_model_state_alone():
    m = zoo.resnet20().train()
    m[1][0].bn1.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    count_macs(m, (3, 32, 32))
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert m.training and not m[1][0].bn1.training and m[1][0].bn2.training
    with eval_mode(m):
        assert not any(mod.training for mod in m.modules())
    assert m[1][0].bn2.training


def test_bad_input():
    with pytest.raises(RedundancyError, match="input_shape"):
        count_macs(nn.Conv2d(3, 4, 3), (4, 8, 8))
    with pytest.raises(RedundancyError, match="input_shape"):
        count_macs(nn.Conv2d(3, 4, 3), (3, 0, 8))
    with pytest.raises(RedundancyError, match="dtype='float33'"):
        memory_bytes(nn.Linear(2, 2), dtype="float33")
    with pytest.raises(RedundancyError, match="model"):
        count_macs("not a model", (3,))


@settings(max_examples=10)
@given(c=st.integers(1, 3), groups=st.sampled_from([1, 2]), k=st.integers(1, 3), stride=st.integers(1, 2),
       h=st.integers(2, 5))
def test_transposed_conv_macs_match_flop_counter(c, groups, k, stride, h):
    conv = nn.ConvTranspose2d(c * groups, 2 * groups, k, stride=stride, groups=groups)
    shape = (c * groups, h, h)
    assert 2 * count_macs(conv, shape)[""] == torch_flops(conv, shape)


def test_count_macs_sees_attention_and_agrees_with_analyze_and_a_hand_count():
    import torch
    from torch import nn

    from redundancy.analysis import analyze
    from redundancy.counts import count_macs

    n, d, f = 16, 64, 128
    enc = nn.Sequential(nn.TransformerEncoderLayer(d_model=d, nhead=4, dim_feedforward=f, batch_first=True)).eval()
    hand = n * (3 * d * d + d * d + 2 * d * f) + 2 * n * n * d  # qkv, out, FFN; QK^T and AV
    macs = count_macs(enc, (n, d))
    assert sum(macs.values()) == hand and macs["0.self_attn"] == n * 4 * d * d + 2 * n * n * d
    assert sum(r.macs for r in analyze(enc, (n, d), dof="none").layers) == hand
    assert torch.backends.mha.get_fastpath_enabled()  # the switch is put back

    # cross-attention widths: keys of width kdim, values of width vdim (sequence-first, unbatched input)
    mha = nn.MultiheadAttention(8, 2, kdim=5, vdim=3)

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):  # x: (1, L, 8) -> sequence-first (L, 1, 8); keys/values of length S = 7
            q = x.transpose(0, 1)
            k, v = torch.zeros(7, 1, 5), torch.zeros(7, 1, 3)
            return self.mha(q, k, v, need_weights=False)[0]

    L, S, E = 4, 7, 8
    assert count_macs(Cross(), (L, E)) == {"mha": L * E * E + S * E * 5 + S * E * 3 + L * E * E + 2 * L * S * E}
