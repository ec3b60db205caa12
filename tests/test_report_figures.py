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


# ---------------------------------------------------------------------------------------
# layout: nothing clipped, nothing overlapping (what a reader would stumble on)
# ---------------------------------------------------------------------------------------
def _inside(inner, outer, tol=1.0) -> bool:
    return (inner.x0 >= outer.x0 - tol and inner.y0 >= outer.y0 - tol and inner.x1 <= outer.x1 + tol
            and inner.y1 <= outer.y1 + tol)


def _draw(fn, *args, figsize=(7.0, 4.5), **kwargs):
    import matplotlib as mpl

    from recoverystats.plotting.style import RC, new_axes

    with mpl.rc_context(RC):
        ax = new_axes(None, figsize=figsize)
        fn(*args, ax=ax, **kwargs)
        ax.figure.draw_without_rendering()
    return ax


def test_flow_every_text_inside_the_figure_and_its_box():
    from matplotlib.patches import FancyBboxPatch

    from recoverystats.report.build import layout_problems

    flow = pd.DataFrame({
        "stage": ["Enrolled", "Matched with a mentor", "Engaged (3+ contacts in 90 days)", "Followed up at 6 months",
                  "Discharged"],
        "n": pd.array([1200, 492, 387, 518, 780], dtype="Int64"), "of": [np.nan, 564.0, 492.0, 780.0, 1200.0],
        "of_label": ["", "in peer_mentoring", "matched", "due", "enrolled"]})
    flow["pct"] = flow["n"].astype(float) / flow["of"]
    # many reasons: the box used to run off the bottom of the figure
    reasons = pd.DataFrame({"reason": [f"reason_{i}" for i in range(10)] + ["Total"],
                            "n": pd.array([*range(20, 30), 245], dtype="Int64")})
    ax = _draw(plot_flow, flow, reasons, figsize=(7.5, 5.2), as_of=AS_OF)
    fig = ax.figure
    r = fig._get_renderer()
    assert layout_problems(fig) == ()
    for t in [*ax.texts, ax.title, ax._left_title]:
        if t.get_text():
            assert _inside(t.get_window_extent(r), fig.bbox), t.get_text()
    assert ax.texts[1].get_text() == "Matched with a mentor\n492 of 564 in peer_mentoring (87%)"
    assert ax.texts[2].get_text() == "Engaged (3+ contacts in 90 days)\n387 of 492 matched (79%)"
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(flow) + 1
    for box, t in zip(boxes, ax.texts, strict=True):  # each text inside its own box, each box inside the axes
        assert _inside(t.get_window_extent(r), box.get_window_extent(r)), t.get_text()
        assert _inside(box.get_window_extent(r), ax.bbox)


def test_flow_one_box_lists_every_mentored_group():
    flow = pd.DataFrame({"stage": ["Enrolled", "Matched with a mentor", "Matched with a mentor"],
                         "n": pd.array([300, 90, pd.NA], dtype="Int64"), "of": [np.nan, 100.0, 120.0],
                         "of_label": ["", "in arm_a", "in arm_b"], "pct": [np.nan, 0.9, np.nan]})
    ax = plot_flow(flow, as_of=AS_OF)
    assert _texts(ax) == ["Enrolled\n300", "Matched with a mentor\n90 of 100 in arm_a (90%)\n* of 120 in arm_b"]


def test_pchart_draws_no_limits_for_a_suppressed_period():
    # a first quarter of a dozen people: huge limits, events suppressed
    t = pd.DataFrame({
        "period": ["2025Q3", "2025Q4", "2026Q1", "2026Q2", "Total"],
        "n": pd.array([13, 150, 160, 140, 463], dtype="Int64"), "events": pd.array([pd.NA, 40, 35, pd.NA, 100], dtype="Int64"),
        "estimate": [np.nan, 40 / 150, 35 / 160, np.nan, 100 / 463], "centre": [0.216] * 4 + [np.nan],
        "lcl": [0.0, 0.115, 0.12, 0.11, np.nan], "ucl": [0.56, 0.317, 0.31, 0.32, np.nan],
        "signal": [np.nan, 0.0, 0.0, np.nan, np.nan]})
    from recoverystats.report.build import layout_problems

    ax = _draw(plot_pchart, t, title="Rearrest", as_of=AS_OF)
    limits = [c for c in ax.collections if c.get_label() == "3-sigma limits"]
    xs = sorted({round(float(seg[:, 0].mean()), 6) for c in ax.collections for seg in c.get_segments()})
    assert limits and xs == [1.0, 2.0]  # limits only where the point is shown
    assert ax.get_ylim()[1] < 0.56  # the suppressed period's limit does not set the scale
    assert "suppressed period (no point or limits)" in [x.get_text() for x in ax.get_legend().get_texts()]
    assert _texts(ax).count("*") == 2
    assert layout_problems(ax.figure) == ()


def test_forest_with_many_terms_is_readable():
    from recoverystats.report.build import layout_problems

    terms = ["group[peer_mentoring]", "age", "gender[female]", "gender[nonbinary]", "risk_level[moderate]",
             "risk_level[high]", "risk_level[very_high]", "prior_incarcerations", "primary_substance[cannabis]",
             "primary_substance[cocaine]", "primary_substance[methamphetamine]", "primary_substance[opioids]",
             "primary_substance[other]"]
    rng = np.random.default_rng(1)
    est = np.exp(rng.normal(0, 0.5, 2 * len(terms)))
    est[[3, 12, 16, 25]] = np.nan
    t = pd.DataFrame({"outcome": ["relapse within 180 days"] * 13 + ["rearrest within 365 days"] * 13,
                      "term": terms * 2, "estimate": est, "ci_lower": est / 1.8, "ci_upper": est * 1.8})
    ax = _draw(plot_forest, t, figsize=(7.5, 0.28 * len(t) + 1.4), as_of=AS_OF)
    assert layout_problems(ax.figure) == ()
    ticks = [x.get_text() for x in ax.get_xticklabels()]
    assert "1" in ticks and all("^" not in x and "$" not in x for x in ticks)  # plain numbers, not 10^0
    heads = [x.get_text() for x in ax.texts if x.get_fontweight() == "bold"]
    assert heads == ["relapse within 180 days", "rearrest within 365 days"]  # each outcome's block is headed


def test_enrollment_all_suppressed_group_keeps_its_legend_colour_and_stars_stay_in_the_axes():
    from recoverystats.report.build import layout_problems

    e = pd.DataFrame({"period": ["2025Q1", "2025Q2", "Total"], "new_a": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
                      "new_b": pd.array([15, 25, 40], dtype="Int64"), "new_total": [35, 45, 80]})
    c = pd.DataFrame({"period": ["2025Q1", "2025Q2"], "active_total": [30, 60]})
    ax = _draw(plot_enrollment, e, c, ["a", "b"], as_of=AS_OF)
    assert ax.get_ylim()[0] == 0
    leg = ax.get_legend()
    labels = [t.get_text() for t in leg.get_texts()]
    assert "new: a (all suppressed)" in labels
    handle = leg.legend_handles[labels.index("new: a (all suppressed)")]
    from matplotlib.colors import to_hex

    from recoverystats.plotting.style import palette

    assert to_hex(handle.get_facecolor()) == to_hex(palette(0))
    assert layout_problems(ax.figure) == ()


def test_followup_legend_is_not_over_a_bar():
    from recoverystats.report.build import layout_problems

    t = pd.DataFrame({"group": ["a", "b", "Total"], "n": [50, 60, 110], "events": [30, 40, 70],
                      "estimate": [0.6, 0.67, 0.64], "ci_lower": [0.5, 0.55, 0.55], "ci_upper": [0.7, 0.77, 0.72],
                      "target": [0.8] * 3})
    ax = _draw(plot_followup, t, target=0.8, as_of=AS_OF)
    assert layout_problems(ax.figure) == ()
    target = [ln for ln in ax.lines if ln.get_label() == "target 80%"][0]
    assert target.get_color() not in {palette_colour for palette_colour in ("#0072B2", "#D55E00")}
