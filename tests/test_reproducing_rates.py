"""docs/reproducing-r-stata.md, section "Rates, tables and logistic regression": every
example runs as a doctest and prints the R/Stata value quoted beside it."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reproducing-r-stata.md"
SECTION = "## Rates, tables and logistic regression"


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    nxt = re.search(r"^## ", text[start + len(SECTION):], flags=re.M)
    return text[start: start + len(SECTION) + nxt.start()] if nxt else text[start:]


def test_rates_section_examples_run_as_doctests() -> None:
    text = _section()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "reproducing-r-stata.md#rates", str(PAGE), 0)
    assert len(test.examples) >= 20
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
