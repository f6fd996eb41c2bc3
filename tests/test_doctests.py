"""Every ``Examples`` section in the package's docstrings runs and prints what it says (doctest).

The project's standard asks each public function for a runnable example; this test runs them all,
module by module, so an example that rots fails CI.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import redundancy


def _modules() -> list[str]:
    names = [redundancy.__name__]
    for info in pkgutil.walk_packages(redundancy.__path__, prefix="redundancy."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(mod, name) if t.examples]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t, out=lambda _s: None)
    res = runner.summarize(verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} docstring example(s) of {name} fail; " \
                            f"run `python -m pytest --doctest-modules {mod.__file__}` to see them"


def test_the_examples_are_found():
    """The finder sees the examples (a broken finder would make the test above pass vacuously)."""
    mod = importlib.import_module("redundancy.training.common")
    found = [t for t in doctest.DocTestFinder().find(mod) if t.examples]
    assert {t.name.rsplit(".", 1)[-1] for t in found} >= {"batches", "default_loss"}
