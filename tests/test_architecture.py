"""The package's imports run one way: no module imports one that imports it back (directly or
through others), and no part imports a part above it in the documented order
(docs/architecture.md). Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "redundancy"

# Lower number = lower in the flow. A module may import its own part and parts with a lower number;
# parts with the same number (the companion methods) may not import each other, except the base
# modules of level 2 (a cycle among them is still caught by test_no_import_cycles).
LEVELS = {
    "errors": 0, "_validation": 1,
    "counts": 2, "data": 2, "parallel": 2, "checkpoint": 2, "zoo": 2, "training": 2,
    "linear": 3, "lowrank": 4,
    "channels": 4.5, "validation": 5, "rank_search": 5, "pruning": 5, "bayes": 5, "longtail": 5,
    "analysis": 6, "scoreboard": 7, "plotting": 8, "testing": 8, "cli": 9, "__main__": 10,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every redundancy module that ``name`` imports (top level or inside functions)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]  # importlib.import_module("redundancy.x.y") is an import too
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t != "redundancy":
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        color[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if color.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if color.get(v) is None:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        color[u] = 2
        return None

    for u in sorted(graph):
        if color.get(u) is None:
            found = visit(u)
            if found:
                return found
    return None


def _violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        src = _part(mod)
        if src == "__init__":  # the package root re-exports the pipeline
            continue
        for dep in deps:
            dst = _part(dep)
            if dst == src:
                continue
            if src not in LEVELS or dst not in LEVELS:
                bad.append(f"{mod} -> {dep}: part {src if src not in LEVELS else dst!r} has no level")
            elif LEVELS[dst] == LEVELS[src] == LEVELS["counts"]:
                continue
            elif LEVELS[dst] >= LEVELS[src]:
                bad.append(f"{mod} -> {dep} runs against the direction ({src}={LEVELS[src]}, {dst}={LEVELS[dst]})")
    return sorted(bad)


def test_no_import_cycles():
    cycle = _find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_imports_follow_the_documented_direction():
    assert _violations(_graph()) == []


def test_every_part_has_a_level():
    parts = {_part(m) for m in _modules()} - {"__init__"}
    assert parts <= set(LEVELS), sorted(parts - set(LEVELS))


def test_string_imports_are_seen(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import importlib\ndef g():\n    return importlib.import_module('redundancy.cli.commands')\n")
    assert _imports("redundancy.linear.m", f, {"redundancy.cli.commands"}) == {"redundancy.cli.commands"}


def test_checker_catches_a_cycle_and_a_wrong_direction():
    # the checker itself must be able to fail
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    bad = _violations({"redundancy.linear.dof": {"redundancy.analysis.report"}})
    assert len(bad) == 1 and "against the direction" in bad[0]
    assert _violations({"redundancy.analysis.report": {"redundancy.linear.dof"}}) == []
    assert len(_violations({"redundancy.pruning.car": {"redundancy.bayes.fit"}})) == 1  # siblings


@pytest.mark.parametrize("name", ["linear", "lowrank", "validation", "analysis", "plotting", "cli"])
def test_subpackages_exist(name):
    assert (PKG / name / "__init__.py").is_file()
