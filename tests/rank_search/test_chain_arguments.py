"""The rank-search chains (:mod:`redundancy.rank_search.chains`) refuse bad layers, factors, ranks and
methods with one clear RedundancyError naming the argument."""

import math
import re
import numpy as np
import pytest
import torch
from torch import nn
from redundancy.errors import RankError, RedundancyError, UnsupportedLayerError
from redundancy.lowrank import cp as CP
from redundancy.lowrank import decompose as D
from redundancy.rank_search import chains as RC
from redundancy.lowrank import tensor_ops as TO
from redundancy.rank_search import factors as TT
from redundancy.lowrank import tucker as TU
from redundancy.lowrank.chains import tucker2_layer

RNG = np.random.default_rng(0)
T3 = RNG.normal(size=(3, 4, 5))


def test_counts_refuse_bad_layers_ranks_methods_and_positions():
    conv, lin = nn.Conv2d(4, 6, 3), nn.Linear(5, 3)
    with pytest.raises(UnsupportedLayerError, match="layer"):
        RC.chain_params(nn.ReLU(), 1, "tt")
    with pytest.raises(UnsupportedLayerError, match="groups=2"):
        RC.dense_macs(nn.Conv2d(4, 4, 3, groups=2), 4, 4)
    with pytest.raises(RedundancyError, match="layer"):
        RC.chain_macs("conv", 1, "tt", 4, 4)
    with pytest.raises(RedundancyError, match="rank"):
        RC.chain_params(conv, 0, "tt")
    with pytest.raises(RedundancyError, match="rank"):
        RC.chain_params(conv, 10 ** 12, "tt")
    with pytest.raises(RedundancyError, match="method"):
        RC.chain_params(conv, 1, "svdd")
    with pytest.raises(RedundancyError, match="method='svd'"):
        RC.chain_macs(conv, 1, "svd", 4, 4)
    with pytest.raises(RedundancyError, match="in_positions"):
        RC.chain_macs(conv, 1, "tt", None, 4)
    with pytest.raises(RedundancyError, match="out_positions"):
        RC.dense_macs(conv, 4, 0)
    # the formulas, counted by building the chain and counting its parameters / the dense MACs by hand
    for method in ("tt", "tucker", "cp"):
        chain = RC.build_chain(conv, TT.init_factors(conv.weight.detach().double().numpy(), method, 2), method)
        assert RC.chain_params(conv, 2, method) == sum(p.numel() for p in chain.parameters())
    assert RC.chain_params(lin, 2, "svd") == 2 * (5 + 3) + 3
    assert RC.dense_macs(conv, 64, 36) == 36 * 6 * 4 * 9


def test_factors_kernel_refuses_factors_that_do_not_chain():
    a, g, b = np.ones((2, 1)), np.ones((1, 4, 1)), np.ones((1, 3))
    with pytest.raises(RedundancyError, match="factors"):
        RC.factors_kernel(None, "tt", (2, 2))
    with pytest.raises(RedundancyError, match="method"):
        RC.factors_kernel((a, g, b), None, (2, 2))
    with pytest.raises(RedundancyError, match="kernel_size"):
        RC.factors_kernel((a, g, b), "tt", (3, 2))
    with pytest.raises(RedundancyError, match="kernel_size"):
        RC.factors_kernel((a, g, b), "tt")
    with pytest.raises(RedundancyError, match="do not fit method='cp'"):
        RC.factors_kernel((a, g, b), "cp", (2, 2))
    with pytest.raises(RedundancyError, match="do not chain"):
        RC.factors_kernel((a, np.ones((2, 4, 1)), b), "tt", (2, 2))
    with pytest.raises(RedundancyError, match="SVD pair"):
        RC.factors_kernel((a, np.ones((2, 3))), "svd")
    with pytest.raises(RedundancyError, match=r"factors\[1\]"):
        RC.factors_kernel((a, np.full((1, 4, 1), np.nan), b), "tt", (2, 2))
    with pytest.raises(RedundancyError, match="dtype"):
        RC.factors_kernel((torch.ones(2, 1), torch.ones(1, 4, 1, dtype=torch.float64), torch.ones(1, 3)), "tt", (4,))
    with pytest.raises(RedundancyError, match="overflow"):
        RC.factors_kernel((torch.full((2, 1), 1e30), torch.full((1, 4, 1), 1e30), torch.ones(1, 3)), "tt", (4,))
    # differentiable for torch factors
    ta = torch.ones(2, 1, dtype=torch.float64, requires_grad=True)
    w = RC.factors_kernel((ta, torch.ones(1, 4, 1, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)),
                          "tucker", (2, 2))
    w.sum().backward()
    assert w.shape == (2, 3, 2, 2) and float(ta.grad.sum()) == 2 * 3 * 4


def test_build_chain_refuses_bad_layers_factors_and_methods():
    conv = nn.Conv1d(3, 4, 3).double()
    w = conv.weight.detach().numpy()
    fs = TT.init_factors(w, "tt", 2)
    with pytest.raises(UnsupportedLayerError, match="groups=3"):
        RC.build_chain(nn.Conv1d(3, 3, 3, groups=3), fs, "tt")
    with pytest.raises(RedundancyError, match="layer"):
        RC.build_chain(None, fs, "tt")
    bad = nn.Conv1d(3, 4, 3)
    with torch.no_grad():
        bad.weight[0, 0, 0] = float("nan")
    with pytest.raises(RedundancyError, match="layer"):
        RC.build_chain(bad, fs, "tt")
    with pytest.raises(RedundancyError, match="method"):
        RC.build_chain(conv, fs, "abc")
    with pytest.raises(RedundancyError, match="method='svd'"):
        RC.build_chain(conv, fs, "svd")
    with pytest.raises(RedundancyError, match="factors"):
        RC.build_chain(conv, None, "tt")
    with pytest.raises(RedundancyError, match="factors"):
        RC.build_chain(conv, fs[:2], "tt")
    with pytest.raises(RedundancyError, match="do not fit the layer"):
        RC.build_chain(conv, TT.init_factors(np.ones((5, 3, 3)), "tt", 2), "tt")
    with pytest.raises(RedundancyError, match="do not fit method='cp'"):
        RC.build_chain(conv, fs, "cp")
    with pytest.raises(RedundancyError, match="Linear"):
        RC.build_chain(nn.Linear(5, 3), TT.svd_factors(np.ones((3, 4)), 1), "svd")
    with pytest.raises(RedundancyError, match="overflow"):
        RC.build_chain(nn.Conv1d(3, 4, 3).half(), [f * 1e10 for f in fs], "tt")
    # legal input: torch factors are accepted, and the caller's layer is unchanged
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    chain = RC.build_chain(conv, [torch.from_numpy(f) for f in fs], "tt")
    assert all(torch.equal(before[k], v) for k, v in conv.state_dict().items())
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    assert torch.allclose(chain(x), nn.functional.conv1d(x, RC.chain_kernel(chain), conv.bias))


def test_chain_kernel_refuses_what_is_not_an_ungrouped_chain():
    from collections import OrderedDict

    from redundancy.lowrank.chains import CompressedLayer

    with pytest.raises(RedundancyError, match="chain"):
        RC.chain_kernel(nn.Conv2d(2, 2, 3))
    grouped = nn.Conv2d(4, 4, 3, groups=2)
    decs = [D.decompose_layer(nn.Conv2d(2, 2, 3), (1, 1)) for _ in range(2)]
    with pytest.raises(RedundancyError, match="not a rank-search chain"):
        RC.chain_kernel(tucker2_layer(grouped, decs))
    strided = CompressedLayer(OrderedDict(reduce=nn.Conv1d(2, 1, 1, stride=2), core=nn.Conv1d(1, 1, 3),
                                          restore=nn.Conv1d(1, 2, 1)), "tt", (1,))
    with pytest.raises(RedundancyError, match="not a rank-search chain"):
        RC.chain_kernel(strided)
    broken = CompressedLayer(OrderedDict(a=nn.Linear(3, 2), b=nn.Linear(4, 1)), "svd", (2,))
    with pytest.raises(RedundancyError, match="features"):
        RC.chain_kernel(broken)
    chain = tucker2_layer(nn.Conv2d(3, 2, 3), D.decompose_layer(nn.Conv2d(3, 2, 3), (2, 3)))
    with torch.no_grad():
        chain.core.weight.view(-1)[0] = float("inf")
    with pytest.raises(RedundancyError, match="chain"):
        RC.chain_kernel(chain)
    # an ungrouped Tucker-2 chain of lowrank.chains (untied ranks) rebuilds its layer's kernel
    conv = nn.Conv2d(3, 2, 3).double()
    chain = tucker2_layer(conv, D.decompose_layer(conv, (2, 3)))
    assert torch.allclose(RC.chain_kernel(chain), conv.weight, atol=1e-10)
    assert math.prod(RC.chain_kernel(chain).shape) == conv.weight.numel()
