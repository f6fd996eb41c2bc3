"""The widened fuzz: every row's call with ONE argument replaced by a value of a widened kind.

Kinds (``values.WIDE_VALUES``): 0-d and n-d numpy/torch values where scalars go, strings where arrays
go, meta and sparse tensors, astronomically large counts (10**12, 10**300, 2**63), floats near the
limits (1e308, -1e308, 5e-324) and arrays of them, NaN/inf, a model that is affine only near the probe
points (``|l(x) + 1e6|``) and meta-device models. The argument and the kind are drawn from those that
fit the argument's type. Each call is classified like the main fuzz (only ``ok`` and ``clear`` pass)
and counted per ``callable <- kind``; a failing pair listed in ``registry.KNOWN_ESCAPES`` is counted
but does not fail.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz import values as V
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.registry import KNOWN_ESCAPES, registry
from tests.fuzz.test_fuzz_api import ROWS, _describe


@pytest.mark.parametrize("name", sorted(ROWS))
def test_fuzz_widened(name):
    target = ROWS[name]
    failures: list[str] = []

    @fuzz_settings()
    @given(st.data())
    def run(data):
        kwargs = dict(data.draw(target.kwargs, label="kwargs"))
        kind = None
        if kwargs:
            key = data.draw(st.sampled_from(sorted(kwargs)), label="argument")
            kind = data.draw(st.sampled_from(V.widened_kinds(kwargs[key])), label="kind")
            kwargs[key] = data.draw(V.widened(kind), label="value")
        oracle = None if target.oracle is None else (lambda res: target.oracle(kwargs, res))
        outcome = harness.classify(lambda: target.fn(**kwargs), allowed_nonfinite=target.allowed_nonfinite,
                                   oracle=oracle)
        harness.record(f"{name} <- {kind}", outcome, _describe(kwargs))
        if outcome.cls not in harness.PASSING and (name, kind) not in KNOWN_ESCAPES:
            failures.append(f"{outcome.cls}: {name}({_describe(kwargs)}) [{kind}] -> {outcome.detail[:300]}")

    run()
    assert not failures, f"{len(failures)} failing call(s):\n" + "\n".join(failures[:5])


def test_widened_kinds_are_told_back():
    """Every widened value is recognised by ``kind_of`` (so KNOWN_ESCAPES can match it)."""
    for kind, factories in V.WIDE_VALUES.items():
        for f in factories:
            assert V.kind_of(f()) == kind, kind


def test_known_escapes_name_rows_and_kinds():
    """A KNOWN_ESCAPES entry names a fuzzed callable and a widened kind, and gives its reason."""
    rows = registry()
    for (name, kind), reason in KNOWN_ESCAPES.items():
        assert kind in V.WIDE_VALUES, kind
        assert reason.strip(), (name, kind)
        assert name in rows or name.split(" <- ")[0] in rows, name


def test_near_affine_is_affine_only_near_the_probe():
    m = V.NearAffine()
    x = torch.randn(4, 1, 6)
    assert torch.allclose(m(x), m.l(x.flatten(1)) + 1e6)
    far = -1e7 * torch.sign(m.l.weight[0]).reshape(1, 1, 6)
    assert (m.l(far.flatten(1))[0, 0] + 1e6) < 0 and m(far)[0, 0] > 0  # folded: not the affine extension
