"""Report figures are drawn from suppressed tables only: assert on what was drawn (Agg)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoverystats.plotting.report import (
    plot_enrollment,
    plot_flow,
    plot_followup,
    plot_forest,
    plot_km,
    plot_pchart,
    plot_retention,
)

AS_OF = pd.Timestamp("2026-09-30")


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_flow_boxes_and_suppressed_reasons():
    flow = pd.DataFrame({"stage": ["Enrolled", "Matched", "Discharged"],
                         "n": pd.array([300, 140, 202], dtype="Int64"), "of": [np.nan, 300.0, 300.0],
                         "pct": [np.nan, 140 / 300, 202 / 300]})
    reasons = pd.DataFrame({"reason": ["completed", "died", "Total"], "n": pd.array([195, pd.NA, pd.NA], dtype="Int64")})
    ax = plot_flow(flow, reasons, as_of=AS_OF)
    texts = _texts(ax)
    assert texts[0] == "Enrolled\n300"
    assert texts[1] == "Matched\n140 of 300 (47%)"
    assert "died: *" in texts[-1] and "completed: 195" in texts[-1]
    assert len(ax.patches) == 3 + 2 + 1 + 1  # boxes, arrows between them, reasons box, its arrow
    assert ax.get_title(loc="left") == "Program flow (n = 300, data to 2026-09-30)"


def test_pchart_leaves_out_suppressed_periods():
    t = pd.DataFrame({
        "period": ["2025Q1", "2025Q2", "2025Q3", "Total"],
        "n": pd.array([40, pd.NA, 50, 97], dtype="Int64"), "events": pd.array([12, pd.NA, 14, 30], dtype="Int64"),
        "estimate": [0.3, np.nan, 0.28, 30 / 97], "centre": [0.31, 0.31, 0.31, np.nan],
        "lcl": [0.09, np.nan, 0.11, np.nan], "ucl": [0.53, np.nan, 0.50, np.nan], "signal": [0.0, np.nan, 1.0, np.nan],
    })
    ax = plot_pchart(t, title="Relapse", as_of=AS_OF)
    main = ax.lines[0]
    np.testing.assert_array_equal(main.get_xdata(), [0, 2])  # the suppressed period is not drawn
    np.testing.assert_allclose(main.get_ydata(), [0.3, 0.28])
    assert "*" in _texts(ax)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["2025Q1", "2025Q2", "2025Q3"]
    signal = [ln for ln in ax.lines if ln.get_label() == "special-cause signal"][0]
    np.testing.assert_array_equal(signal.get_xdata(), [2])
    assert ax.get_title(loc="left").startswith("Relapse: p-chart (n = 97")


def test_km_curve_stops_before_fewer_than_min_cell_at_risk():
    table = pd.DataFrame({
        "_group": ["a"] * 4 + ["b"] * 2,
        "time": [10.0, 20.0, 30.0, 40.0, 15.0, 25.0],
        "n_at_risk": [30, 20, 11, 10, 9, 5],
        "estimate": [0.95, 0.9, 0.8, 0.7, 0.9, 0.8],
        "ci_lower": [0.9, 0.8, 0.7, 0.5, 0.7, 0.5], "ci_upper": [1.0, 0.97, 0.9, 0.85, 0.98, 0.95],
    })
    ax = plot_km(table, min_at_risk=11, title="Relapse-free", as_of=AS_OF, n=40, group_col="_group")
    assert len(ax.lines) == 1  # group b never has 11 at risk: no curve at all
    x = ax.lines[0].get_xdata()
    assert x.max() == 30.0 and ax.get_xlim()[1] == 30.0
    assert ax.get_legend().get_texts()[0].get_text() == "a"


def test_retention_and_followup_mark_suppressed_points():
    t = pd.DataFrame({"days": [90, 90, 90], "group": ["a", "b", "Total"], "n": [50, 60, 110],
                      "events": pd.array([40, pd.NA, 90], dtype="Int64"), "estimate": [0.8, np.nan, 90 / 110],
                      "ci_lower": [0.7, np.nan, 0.75], "ci_upper": [0.9, np.nan, 0.88]})
    ax = plot_retention(t, as_of=AS_OF, n=110)
    assert "*" in _texts(ax)
    assert [lg.get_text() for lg in ax.get_legend().get_texts()] == ["a", "b"]
    f = t.rename(columns={"days": "target"}).assign(target=0.8)
    ax2 = plot_followup(f, target=0.8, as_of=AS_OF)
    assert len(ax2.patches) == 2  # bars only for the two groups/rows with a value
    assert ax2.get_legend().get_texts()[0].get_text() == "target 80%"
    assert any(abs(ln.get_ydata()[0] - 0.8) < 1e-12 for ln in ax2.lines)


def test_forest_log_axis_and_terms():
    t = pd.DataFrame({"outcome": ["relapse"] * 3, "term": ["group[peer]", "age", "gender[x]"],
                      "estimate": [0.8, 1.02, np.nan], "ci_lower": [0.5, 0.99, np.nan],
                      "ci_upper": [1.3, 1.05, np.nan]})
    ax = plot_forest(t, as_of=AS_OF)
    assert ax.get_xscale() == "log"
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["group[peer]", "age", "gender[x]"]
    np.testing.assert_allclose(ax.lines[0].get_xdata()[:2], [0.8, 1.02])
    assert np.isnan(ax.lines[0].get_xdata()[2])
    assert _texts(ax) == [" * suppressed"]


def test_enrollment_bars_and_census_line():
    e = pd.DataFrame({"period": ["2025Q1", "2025Q2", "Total"], "new_a": pd.array([20, pd.NA, 40], dtype="Int64"),
                      "new_b": pd.array([15, 25, 40], dtype="Int64"), "new_total": [35, 45, 80]})
    c = pd.DataFrame({"period": ["2025Q1", "2025Q2"], "active_total": [30, 60]})
    ax = plot_enrollment(e, c, ["a", "b"], as_of=AS_OF, n=80)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == [15, 20, 25]  # the suppressed bar is not drawn
    assert "*" in _texts(ax)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [30, 60])


@pytest.mark.parametrize("fn", [plot_flow, plot_pchart])
def test_figures_accept_an_axes(fn):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    if fn is plot_flow:
        out = fn(pd.DataFrame({"stage": ["Enrolled"], "n": [5], "of": [np.nan], "pct": [np.nan]}), None, ax=ax)
    else:
        out = fn(pd.DataFrame({"period": ["2025Q1"], "n": [20], "events": [5], "estimate": [0.25], "centre": [0.25],
                               "lcl": [0.0], "ucl": [0.5], "signal": [0.0]}), ax=ax)
    assert out is ax
