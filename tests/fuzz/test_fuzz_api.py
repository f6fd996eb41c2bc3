"""Fuzz every public callable (the registry in ``registry.py``): only ``ok`` and ``clear`` pass."""

from __future__ import annotations


import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz import registry as _registry
from tests.fuzz.registry import UNHARDENED, registry

ROWS = registry()


def _describe(kwargs) -> str:
    parts = []
    for k, v in kwargs.items():
        r = repr(v) if not isinstance(v, torch.nn.Module) else f"<{type(v).__name__}>"
        parts.append(f"{k}={r[:60]}")
    return ", ".join(parts)


def _state(kwargs):
    """Snapshot of every module argument's state (the call must not change the caller's model)."""
    snap = {}
    for k, v in kwargs.items():
        if isinstance(v, torch.nn.Module) and k not in ("model",) or (k == "model" and isinstance(v, torch.nn.Module)):
            try:
                snap[k] = {n: t.detach().clone() for n, t in v.state_dict().items() if not t.is_meta}
            except Exception:  # noqa: BLE001 - lazy parameters cannot be cloned
                pass
    return snap


#: documented to change the model in place
MUTATING = {"redundancy.load_weights", "redundancy.checkpoint.load_weights", "redundancy.training.train"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    reason="not hardened yet (tests/fuzz/registry.py UNHARDENED)", strict=False)) if n in UNHARDENED else n
    for n in sorted(ROWS)])
def test_fuzz(name):
    target = ROWS[name]
    failures: list[str] = []

    @fuzz_settings()
    @given(st.data())
    def run(data):
        kwargs = data.draw(target.kwargs, label="kwargs")
        before = _state(kwargs) if name not in MUTATING else {}
        oracle = None if target.oracle is None else (lambda res: target.oracle(kwargs, res))
        outcome = harness.classify(lambda: target.fn(**kwargs), allowed_nonfinite=target.allowed_nonfinite,
                                   oracle=oracle)
        if outcome.cls in harness.PASSING and before:
            for k, snap in before.items():
                after = kwargs[k].state_dict()
                changed = [n for n, t in snap.items() if n in after and not torch.equal(
                    torch.nan_to_num(t), torch.nan_to_num(after[n].detach()))]
                if changed:
                    outcome = harness.Outcome("wrong", f"the caller's {k} changed: {changed[:3]}")
        harness.record(name, outcome, _describe(kwargs))
        if outcome.cls not in harness.PASSING and not _registry.known_escape(name, kwargs):
            failures.append(f"{outcome.cls}: {name}({_describe(kwargs)}) -> {outcome.detail[:300]}")

    run()  # every example is classified and counted; no shrinking, so the counts are per call
    assert not failures, f"{len(failures)} failing call(s):\n" + "\n".join(failures[:5])


def test_rows_files_load():
    """Every rows file loads (a file that imports a name its area removed is reported here, and its
    rows are missing from the parametrization above until it is fixed)."""
    assert _registry.ROW_ERRORS == {}


def test_every_discovered_callable_has_a_row():
    """Each callable on a face is fuzzed: by an explicit row or by a generic one (classes that are not
    dataclasses are exercised through the functions that build them)."""
    by_id = {id(t.fn) for t in ROWS.values()}
    missing = [n for n, fn in _registry.discover().items()
               if n not in ROWS and id(fn) not in by_id and not isinstance(fn, type)]
    assert missing == []


def test_discovery_follows_the_faces():
    """Discovery reads the faces: ``redundancy.__all__``'s callables are found, and nothing private."""
    import redundancy

    found = _registry.discover()
    names = {fn for fn in found.values()}
    for n in redundancy.__all__:
        v = getattr(redundancy, n)
        if callable(v) and not isinstance(v, type(redundancy)) and not (
                isinstance(v, type) and issubclass(v, BaseException)):
            assert v in names, n
    assert not [k for k in found if any(part.startswith("_") for part in k.split(".")[1:-1])
                and "<locals>" not in k]
