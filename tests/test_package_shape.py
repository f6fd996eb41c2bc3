"""The package's shape, measured from the code (issue 22's figures): small faces, one definition per
public class, short functions, few hand-written ``to_dict``, tests that mirror the package.

Each figure is measured by walking the source with :mod:`ast` (nothing is imported), so a test names
what is over its limit.
"""

from __future__ import annotations

import ast
import collections
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "redundancy"
TESTS = ROOT / "tests"

MAX_EXPORTED = 150          # distinct names across every __all__ of the package
MAX_TOP_LEVEL = 40          # redundancy.__all__
MAX_LONG_FUNCTIONS = 3      # functions over LONG code lines (docstrings not counted)
LONG = 60
LONG_ALLOWED = {"redundancy/cli/commands.py:build_parser"}   # the CLI's parser builder may be long
MAX_OWN_TO_DICT = 6         # classes that write their own to_dict

_pending = pytest.mark.xfail(strict=False, reason="issue 22: lands when all areas merge")


def _sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _all_names(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


def exported_names() -> set[str]:
    out: set[str] = set()
    for f in _sources():
        out |= set(_all_names(_tree(f)) or ())
    return out


def long_functions() -> list[str]:
    """``path:name (lines)`` of every function whose body, docstring left out, spans more than LONG lines."""
    out = []
    for f in _sources():
        for node in ast.walk(_tree(f)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            if body and body[-1].end_lineno - body[0].lineno + 1 > LONG:
                out.append(f"{_rel(f)}:{node.name} ({body[-1].end_lineno - body[0].lineno + 1})")
    return out


def own_to_dict() -> list[str]:
    out = []
    for f in _sources():
        for node in ast.walk(_tree(f)):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(m, ast.FunctionDef) and m.name == "to_dict" for m in node.body):
                out.append(f"{_rel(f)}:{node.name}")
    return out


def public_class_definitions() -> dict[str, list[str]]:
    where = collections.defaultdict(list)
    for f in _sources():
        for node in ast.walk(_tree(f)):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where[node.name].append(_rel(f))
    return where


def subpackages() -> list[str]:
    return sorted(d.name for d in PKG.iterdir()
                  if d.is_dir() and (d / "__init__.py").exists() and not d.name.startswith("_"))


# ----------------------------------------------------------------------------------- the figures
def test_at_most_150_names_are_exported():
    names = exported_names()
    assert len(names) <= MAX_EXPORTED, f"{len(names)} distinct names across every __all__ (limit {MAX_EXPORTED})"


def test_the_top_level_face_is_small():
    import redundancy

    assert len(redundancy.__all__) <= MAX_TOP_LEVEL
    assert len(set(redundancy.__all__)) == len(redundancy.__all__), "a name is listed twice"


def test_no_public_class_is_defined_in_two_modules():
    twice = {k: v for k, v in public_class_definitions().items() if len(v) > 1}
    assert twice == {}


def test_at_most_3_long_functions():
    long = [f for f in long_functions() if f.split(" (")[0] not in LONG_ALLOWED]
    assert len(long) <= MAX_LONG_FUNCTIONS, f"{len(long)} functions over {LONG} code lines:\n" + "\n".join(long)


def test_at_most_6_classes_write_their_own_to_dict():
    own = own_to_dict()
    assert len(own) <= MAX_OWN_TO_DICT, f"{len(own)} classes write their own to_dict:\n" + "\n".join(own)


def test_every_subpackage_has_a_test_folder():
    missing = [s for s in subpackages() if not (TESTS / s).is_dir()]
    assert missing == []


def test_no_test_file_is_named_after_hardening_or_an_issue():
    bad = [_rel(p) for p in TESTS.rglob("test_*.py") if re.search(r"harden|issue", p.name)]
    assert bad == []


def test_submodule_all_is_a_subset_of_the_face():
    """A subpackage's modules either have no ``__all__`` or one inside the face (its ``__init__``'s);
    private modules and packages (leading underscore) have none."""
    bad = []
    for f in _sources():
        names = _all_names(_tree(f))
        rel = f.relative_to(PKG).parts
        if names is None or len(rel) == 1 and f.name == "__init__.py":
            continue
        private = any(p.startswith("_") for p in rel[:-1]) or (f.stem.startswith("_") and f.name != "__init__.py")
        if private:
            bad.append(f"{_rel(f)}: a private module has __all__")
        elif len(rel) > 1 and f.name != "__init__.py":
            face = set(_all_names(_tree(f.parent / "__init__.py")) or ())
            if not set(names) <= face:
                bad.append(f"{_rel(f)}: {sorted(set(names) - face)[:5]} not on the face")
    assert bad == []


# ----------------------------------------------------------------------------------- the measures
def test_the_measures_see_what_they_measure(tmp_path):
    """The walkers find what they look for (a broken walker would pass every figure vacuously)."""
    assert "whole_network_tensor" in exported_names()
    assert "linear" in subpackages() and "zoo" in subpackages()
    assert public_class_definitions()["WholeNetworkTensor"] == ["redundancy/linear/tensor.py"]
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG + 1))
    tree = ast.parse(f'def f():\n    """doc\n\n    more"""\n{body}\n')
    fn = tree.body[0]
    assert fn.body[-1].end_lineno - fn.body[1].lineno + 1 == LONG + 1


def test_the_zoo_and_testing_faces_are_small():
    import redundancy.testing
    import redundancy.zoo

    assert len(redundancy.zoo.__all__) <= 10
    assert len(redundancy.testing.__all__) <= 5
    for mod in (redundancy.zoo, redundancy.testing):
        for name in mod.__all__:
            assert callable(getattr(mod, name)), name
