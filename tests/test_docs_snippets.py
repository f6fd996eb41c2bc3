"""Every ```python block of README.md and of every page under docs/ runs as written.

Blocks of one page run in order in one shared namespace, in a temporary working directory, on the
CPU. Blocks written as doctests (``>>>`` lines) run through :mod:`doctest` with that namespace and
must print what the page says.

A page may put one directive in an HTML comment right before a block (invisible when rendered):

* ``<!-- docs-test: replace "OLD" "NEW" -->`` (several pairs allowed): run the block with OLD
  replaced by NEW — the reduced mode of a slow block (fewer repeats, a smaller grid). Each OLD
  must occur in the block, so a stale directive fails.
  The name ``REPO`` (the repository root) is defined for such replacements, e.g. to read a committed
  result file instead of one that a minutes-long command would write.
* ``<!-- docs-test: skip REASON -->``: only for a block that needs something optional that may be
  missing (torchvision); the reason is shown as the skip reason.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# docs/api.md is one doctest file (its setup lines sit outside the python fences): it runs whole
# through doctest.testfile in tests/test_docs_api.py.
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name != "api.md")]

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(replace|skip)\b(.*?)-->\s*$", re.S)


class SnippetError(AssertionError):
    """A block of a page failed."""


def extract_blocks(text: str) -> list[dict]:
    """The python blocks of a markdown page, with their line number and directive."""
    blocks = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip()
        last = before.splitlines()[-1] if before else ""
        d = _DIRECTIVE.search(last)
        kind, arg = (d.group(1), d.group(2).strip()) if d else (None, "")
        blocks.append({"code": m.group(1), "line": text[: m.start()].count("\n") + 1, "directive": kind,
                       "arg": arg})
    return blocks


def _apply_replacements(code: str, arg: str, where: str) -> str:
    parts = shlex.split(arg)
    if not parts or len(parts) % 2:
        raise SnippetError(f"{where}: 'replace' needs pairs of quoted strings, got {arg!r}")
    for old, new in zip(parts[::2], parts[1::2]):
        if old not in code:
            raise SnippetError(f"{where}: the reduced-mode string {old!r} is not in the block (stale directive)")
        code = code.replace(old, new)
    return code


def run_page(path: Path, text: str | None = None) -> dict:
    """Run every python block of a page in order in one namespace; return counts."""
    text = path.read_text() if text is None else text
    ns: dict = {"__name__": f"docs_{path.stem}", "REPO": ROOT}  # REPO: for reduced-mode directives only
    ran = skipped = 0
    reasons = []
    for b in extract_blocks(text):
        where = f"{path.name}:{b['line']}"
        if b["directive"] == "skip":
            skipped += 1
            reasons.append(f"{where}: {b['arg']}")
            continue
        code = b["code"]
        if b["directive"] == "replace":
            code = _apply_replacements(code, b["arg"], where)
        if re.search(r"^\s*>>> ", code, re.M):
            parser = doctest.DocTestParser()
            test = parser.get_doctest(code, ns, where, str(path), b["line"])
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            out: list[str] = []
            runner.run(test, out=out.append, clear_globs=False)
            if runner.failures:
                raise SnippetError(f"{where}: doctest failed\n" + "".join(out)[-3000:])
        else:
            try:
                exec(compile(code, where, "exec"), ns)
            except Exception as exc:  # any failure of the snippet is the test's failure
                raise SnippetError(f"{where}: {type(exc).__name__}: {exc}") from exc
        ran += 1
    return {"ran": ran, "skipped": skipped, "reasons": reasons}


def _pages_with_blocks():
    return [p for p in PAGES if p.exists() and extract_blocks(p.read_text())]


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages_with_blocks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_snippets_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    res = run_page(page)
    import matplotlib.pyplot as plt

    plt.close("all")
    if res["skipped"] and not res["ran"]:
        pytest.skip("; ".join(res["reasons"]))
    assert res["ran"] >= 1


# ----------------------------------------------------------------------------- the test of the test

def test_a_broken_snippet_fails(tmp_path):
    page = tmp_path / "page.md"
    good = "text\n\n```python\nx = 2\n```\n\nmore\n\n```python\nassert x == 2\ny = x + 1\n```\n"
    assert run_page(page, good)["ran"] == 2
    broken = good.replace("y = x + 1", "y = undefined_name + 1")
    with pytest.raises(SnippetError, match="NameError"):
        run_page(page, broken)


def test_doctest_blocks_must_print_what_the_page_says(tmp_path):
    page = tmp_path / "page.md"
    assert run_page(page, "```python\n>>> 1 + 1\n2\n```\n")["ran"] == 1
    with pytest.raises(SnippetError, match="doctest failed"):
        run_page(page, "```python\n>>> 1 + 1\n3\n```\n")


def test_reduced_mode_directive_and_stale_directive(tmp_path):
    page = tmp_path / "page.md"
    text = '<!-- docs-test: replace "n = 10**9" "n = 3" -->\n```python\nn = 10**9\nassert n == 3\n```\n'
    assert run_page(page, text)["ran"] == 1
    stale = text.replace("```python\nn = 10**9", "```python\nn = 10**8")
    with pytest.raises(SnippetError, match="stale"):
        run_page(page, stale)


def test_every_page_was_found():
    names = {p.name for p in _pages_with_blocks()}
    assert "README.md" in names and "howto_compress.md" in names
    assert os.path.exists(ROOT / "docs" / "api.md")
