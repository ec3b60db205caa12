"""Where a fresh figure from ``result.plot()`` lives: pyplot in Jupyter, a bare Figure elsewhere.

The end-to-end check (each notebook's ``.plot(`` cells show an ``image/png`` under the inline
backend) is in tests/test_notebooks.py; these tests pin the rule itself, quickly.
"""

from __future__ import annotations

import sys
import types

import pytest

plt = pytest.importorskip("matplotlib.pyplot")

import recoverystats as rs  # noqa: E402
from recoverystats.plotting.style import new_axes  # noqa: E402


@pytest.fixture
def rates() -> rs.RateResult:
    import pandas as pd

    df = pd.DataFrame({"group": ["a"] * 20 + ["b"] * 20, "y": [1] * 12 + [0] * 8 + [1] * 5 + [0] * 15})
    return rs.proportion(df, "y", by="group")


@pytest.fixture
def ipython_session(monkeypatch):
    """A running IPython shell as seen by ``new_axes`` (``IPython.get_ipython()`` is not None)."""
    # pyplot, on its first figure, registers a post-execute hook with the shell: give it one
    shell = types.SimpleNamespace(events=types.SimpleNamespace(register=lambda *args: None))
    ipython = pytest.importorskip("IPython")
    monkeypatch.setattr(ipython, "get_ipython", lambda: shell)
    plt.close("all")
    yield
    plt.close("all")


def test_script_gets_a_bare_figure(rates, monkeypatch):
    monkeypatch.delattr(sys, "ps1", raising=False)
    before = plt.get_fignums()
    ax = rates.plot()
    assert ax.figure.canvas.manager is None  # not registered with pyplot
    assert plt.get_fignums() == before


def test_jupyter_gets_a_pyplot_figure(rates, ipython_session):
    ax = rates.plot()
    assert ax.figure.canvas.manager is not None
    assert plt.get_fignums() == [ax.figure.number]  # the inline backend will show (and close) it
    # the shared look is still applied to the pyplot figure
    assert not ax.spines["top"].get_visible()
    assert ax.figure.get_layout_engine() is not None


def test_given_axes_are_used_as_they_are(rates, ipython_session):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert rates.plot(ax=ax) is ax
    assert plt.get_fignums() == []


def test_explicit_choice_overrides_the_session(ipython_session):
    assert new_axes(pyplot=False).figure.canvas.manager is None
    assert plt.get_fignums() == []


def test_report_figures_never_go_through_pyplot(ipython_session):
    """In a notebook the report is previewed from its own PNG/SVG; a pyplot copy would be
    shown a second time under the cell."""
    from recoverystats.report.build import _figure

    block = _figure("demo", "Demo", lambda ax: ax.plot([0, 1], [0, 1]))
    assert block.png.startswith(b"\x89PNG")
    assert plt.get_fignums() == []
