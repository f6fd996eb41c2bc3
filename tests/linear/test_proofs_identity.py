"""The sympy proof of the whole-network identity (proofs/whole_network_identity.py) is run here.

Every difference must expand to exactly 0 (not approximately), deliberately wrong variants must
not, and the symbolic objects agree numerically with torch's convolution and with
``redundancy.linear.statmodel`` (an extra check; the proof itself does not use the package).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python -m pytest` from the root already has it
    sys.path.insert(0, str(ROOT))

from proofs import whole_network_identity as pf  # noqa: E402
from redundancy.linear.statmodel import BasicCNN  # noqa: E402

CASE_IDS = [c.name for c in pf.CASES]
KRON_CASES = [c for c in pf.CASES if c.s == c.l]


def test_cases_cover_the_claimed_configurations():
    assert {c.N for c in pf.CASES} >= {1, 2}
    assert any(c.overlapping for c in pf.CASES)
    assert KRON_CASES and all(c.N in (1, 2) for c in KRON_CASES)
    assert any(any(s > l for s, l in zip(c.s, c.l)) for c in pf.CASES)
    assert all(any(q > 1 for q in c.q) for c in pf.CASES)           # every case pools
    assert any(any(l == d for l, d in zip(c.l, c.d)) for c in pf.CASES)  # a channel mode


@pytest.mark.parametrize("case", pf.CASES, ids=CASE_IDS)
def test_identity_is_exact(case):
    diff = pf.identity_difference(case)
    assert isinstance(diff, sympy.Expr)
    assert diff == 0


@pytest.mark.parametrize("case", pf.CASES, ids=CASE_IDS)
def test_tucker_like_and_raw_input_forms_are_exact(case):
    diffs = pf.tucker_like_differences(case)
    assert len(diffs) == np.prod(case.l) * np.prod(case.p)
    assert all(e == 0 for e in diffs)
    raw = pf.raw_input_differences(case)
    assert len(raw["weights"]) == np.prod(case.d)
    for key, values in raw.items():
        assert all(e == 0 for e in values), key


@pytest.mark.parametrize("case", KRON_CASES, ids=[c.name for c in KRON_CASES])
def test_kronecker_form_is_exact(case):
    diffs = pf.kronecker_differences(case)
    assert all(e == 0 for e in diffs["kronecker"])
    assert all(e == 0 for e in diffs["pooling"])
    wrong = pf.kronecker_differences(case, swapped=True)["kronecker"]
    assert any(e != 0 for e in wrong)


def test_kronecker_form_refuses_overlapping_stride():
    with pytest.raises(ValueError, match="stride == kernel"):
        pf.kronecker_differences(pf.CASES[0])


@pytest.mark.parametrize("variant", pf.WRONG_VARIANTS)
@pytest.mark.parametrize("case", pf.CASES, ids=CASE_IDS)
def test_wrong_patch_tensor_fails(case, variant):
    assert pf.identity_difference(case, variant) != 0


def test_run_all_reports_every_check_true():
    results = pf.run_all(pf.CASES[:2])
    assert set(results) == {c.name for c in pf.CASES[:2]}
    assert all(all(v.values()) for v in results.values())
    assert "kronecker" in results[pf.CASES[1].name]


def test_unknown_variant_rejected():
    with pytest.raises(ValueError, match="variant"):
        pf.patch_tensor(pf.CASES[0], {}, variant="nope")


@pytest.mark.parametrize("case", pf.CASES, ids=CASE_IDS)
def test_symbolic_objects_match_torch_and_statmodel(case):
    """Numbers in: the symbolic y equals torch's conv/pool/FC and W_eff equals BasicCNN's."""
    rng = np.random.default_rng(7)
    A, B, X = pf.make_symbols(case)
    A_np = rng.normal(size=case.l + (case.K,))
    B_np = rng.normal(size=case.p + (case.K,))
    X_np = rng.normal(size=case.d)
    subs = {}
    for k in range(case.K):
        subs.update({A[k][t]: A_np[t + (k,)] for t in A[k]})
        subs.update({B[k][g]: B_np[g + (k,)] for g in B[k]})
    subs.update({X[x]: X_np[x] for x in X})
    y_sym = float(pf.direct_output(case, A, B, X).xreplace(subs))

    conv = {1: F.conv1d, 2: F.conv2d}[case.N]
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d}[case.N]
    w = torch.from_numpy(np.moveaxis(A_np, -1, 0)[:, None].copy())
    z = pool(conv(torch.from_numpy(X_np)[None, None], w, stride=case.s), case.q)[0]   # (K, *p)
    y_torch = float((z * torch.from_numpy(np.moveaxis(B_np, -1, 0).copy())).sum())
    assert y_sym == pytest.approx(y_torch, rel=1e-12, abs=1e-12)

    y = sympy.expand(pf.direct_output(case, A, B, X))
    W_sym = np.array([float(sympy.diff(y, X[x]).xreplace(subs)) for x in pf._grid(case.d)]).reshape(case.d)
    net = BasicCNN(case.d, case.l, case.s, case.q, K=case.K)
    np.testing.assert_allclose(W_sym, net.effective_weight(A_np, B_np), rtol=1e-12, atol=1e-12)


# ---- proofs/composition_and_overlap.py -------------------------------------------------------

from proofs import composition_and_overlap as co  # noqa: E402


@pytest.mark.parametrize("chain", co.CHAINS, ids=[c.name for c in co.CHAINS])
def test_two_convs_are_one_strided_conv(chain):
    diffs = co.composition_differences(chain)
    assert len(diffs) == chain.K2 * np.prod(chain.m2)
    assert all(e == 0 for e in diffs)
    assert any(e != 0 for e in co.composition_differences(chain, "no_dilation"))


@pytest.mark.parametrize("case", pf.CASES, ids=CASE_IDS)
def test_gram_is_scaled_identity_exactly_without_overlap(case):
    exact = all(e == 0 for e in co.gram_differences(case))
    assert exact == co.is_non_overlapping(case)


def test_overlap_example_is_invisible():
    ex = co.overlap_null_example()
    assert ex["output"] == 0
    assert all(e == 0 for e in ex["Mt_vecW"])
    assert ex["rank_M"] == ex["LP"] - 1          # M lost one row rank: W is not identifiable
    assert any(e != 0 for e in ex["patch"])


def test_composite_kernel_matches_torch():
    """Numbers in: the composite kernel formula against two torch conv1d calls."""
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(1, 2, 20)))
    a1 = torch.from_numpy(rng.normal(size=(3, 2, 3)))
    a2 = torch.from_numpy(rng.normal(size=(2, 3, 2)))
    s1, s2 = 2, 3
    ref = F.conv1d(F.conv1d(x, a1, stride=s1), a2, stride=s2)
    a_eff = torch.zeros(2, 2, 3 + s1 * (2 - 1), dtype=torch.float64)
    for tau in range(2):
        for t in range(3):
            a_eff[:, :, tau * s1 + t] += torch.einsum("ab,bc->ac", a2[:, :, tau], a1[:, :, t])
    np.testing.assert_allclose(F.conv1d(x, a_eff, stride=s1 * s2).numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
