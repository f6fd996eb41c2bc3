"""Block kinds on small replicas of the zoo's modules (no torchvision needed): Fire and inception
(concatenated branches), VGG stacks, ConvNeXt's Linear inverted bottleneck, attention blocks with
nn.MultiheadAttention as a layer whose MACs match torch's FLOP counter."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from redundancy.analysis.report import analyze


class Fire(nn.Module):
    def __init__(self, c, s, e):
        super().__init__()
        self.squeeze = nn.Conv2d(c, s, 1)
        self.e1 = nn.Conv2d(s, e, 1)
        self.e3 = nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class Inception(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b1 = nn.Conv2d(c, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, 12, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, 6, 5, padding=2))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)


class CNBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1 = nn.Linear(c, 4 * c)
        self.pw2 = nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + y


class Encoder(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(e), nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, h, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(e, 4 * e), nn.GELU(), nn.Linear(4 * e, e))

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def test_fire_and_inception_are_multi_branch_with_concatenated_k():
    m = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), Fire(16, 4, 8), Inception(16))
    rep = analyze(m, (3, 10, 10))
    b = {x.name: x for x in rep.blocks}
    assert (b["2"].kind, b["2"].K, b["2"].R) == ("multi_branch", 16, 4)
    assert (b["3"].kind, b["3"].K, b["3"].R) == ("multi_branch", 26, 8 + 4 + 2)


def test_vgg_stack_is_plain_without_kr():
    feats = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
    m = nn.Sequential()
    m.add_module("features", feats)
    m.add_module("pool", nn.AdaptiveAvgPool2d(1))
    rep = analyze(m, (3, 8, 8))
    (blk,) = rep.blocks
    assert blk.kind == "plain" and blk.R is None and blk.kr_ratio is None


def test_convnext_linear_inverted_bottleneck():
    rep = analyze(nn.Sequential(nn.Conv2d(3, 8, 1), CNBlock(8)), (3, 9, 9))
    (blk,) = rep.blocks
    assert (blk.kind, blk.K, blk.R, blk.kr_ratio) == ("inverted_residual", 32, 8, 4.0)


def test_attention_is_a_layer_with_macs_and_the_block_reports_mlp_ratio():
    torch.manual_seed(0)
    m = nn.Sequential(Encoder(16, 2), Encoder(16, 2))
    rep = analyze(m, (5, 16))
    rows = {r.name: r for r in rep.layers}
    assert "0.attn" in rows and "0.attn.out_proj" not in rows
    assert rows["0.attn"].params == 4 * 16 * 16 + 4 * 16 and rows["0.attn"].calls == 1
    with torch.no_grad(), FlopCounterMode(display=False) as fc:   # train mode: no fused fast path
        m.train()(torch.zeros(1, 5, 16))                          # (dropout is 0: the same maps)
    products = 2 * (2 * 5 * 5 * 16)   # QK^T and AV of both blocks (L = S = 5, E = 16), by hand
    # torch's counter sees the projections (F.linear) but not the fused attention products
    assert 2 * rep.summary.macs == fc.get_total_flops() + 2 * products
    assert [(b.kind, b.K, b.R) for b in rep.blocks] == [("attention", 64, 16)] * 2
    seg = next(s for s in rep.segments if s.layers == ("0.attn",))
    assert seg.dof is None and "not linear" in seg.skip_reason
    assert "0.attn" in dict(rep.summary.skipped) and rep.summary.params_outside_layers == 4 * 2 * 16
