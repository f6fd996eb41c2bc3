"""Run the sympy derivation of the closed-form dof; wrong variants must fail."""

import sys
from pathlib import Path

import sympy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python -m pytest` from the root already has it
    sys.path.insert(0, str(ROOT))

from proofs import dof_closed_forms as pf  # noqa: E402
from redundancy.linear.dof import cp_dof, tucker_dof, vanilla_dof  # noqa: E402


def test_count_minus_gauge_certificates():
    v = pf.count_minus_gauge_vanilla()
    t = pf.count_minus_gauge_tucker()
    c = pf.count_minus_gauge_cp()
    assert v["holds"] and t["holds"] and c["holds"]
    # the library's closed forms agree with the certified ranks
    assert v["exact_rank"] == vanilla_dof(3, 4, 2)
    assert t["exact_rank"] == tucker_dof((3, 3, 4), (2, 2, 2))
    assert c["exact_rank"] == cp_dof((3, 3, 3), 2)


def test_certificate_can_fail():
    # K > min(L, P): the GL(K) generators are no longer independent, so count - gauge is wrong
    bad = pf.count_minus_gauge_vanilla(L=2, P=2, K=3)
    assert not bad["holds"] and bad["exact_rank"] == 4 == vanilla_dof(2, 2, 3)
    # a wrong "gauge" generator (scaling A alone) is not in the kernel
    A = sympy.Matrix(2, 1, sympy.symbols("a0 a1"))
    B = sympy.Matrix(2, 1, sympy.symbols("b0 b1"))
    res = pf._certify(list(A * B.T), list(A) + list(B), [list(A) + [0, 0]], 3, seed=0)
    assert not res["generators_in_kernel"] and not res["holds"]


def test_algebra_discrepancy_and_k_independence():
    assert pf.general_count_algebra()["holds"]
    td = pf.tucker_discrepancy()
    assert td["holds"] and td["limit_P_to_inf"] == "K/R"
    assert pf.tucker_discrepancy(N=3)["holds"]
    assert pf.cp_discrepancy()["holds"]
    assert pf.k_independence()["holds"]
