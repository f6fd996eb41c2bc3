"""The examples of docs/api.md are doctests: they must run and print what the page says."""

import doctest
from pathlib import Path

import pytest

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@pytest.mark.skipif(not API_MD.exists(), reason="docs/api.md is not in this checkout")
def test_api_page_examples():
    result = doctest.testfile(str(API_MD), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 20
    assert result.failed == 0
