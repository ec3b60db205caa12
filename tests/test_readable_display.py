"""What a researcher sees in Jupyter reads as words and numbers, not as column names (issue 12).

- rich tables: whole-day times as integers, text left-aligned (Jupyter right-aligns every
  cell), readable column headers;
- survival figures: the time axis labelled in words, censor marks that stay ticks when a
  curve has hundreds of censoring times.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.datasets import load_rossi
from recoverystats.results.render import label, render_html_table, render_markdown_table

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return load_rossi()


def _cells(html: str) -> list[tuple[str, str]]:
    """(style attribute, text) of every body cell."""
    body = re.search(r"<tbody>.*?</tbody>", html, re.S).group(0)
    return re.findall(r"<td((?: style=\"[^\"]*\")?)>(.*?)</td>", body)


def _headers(html: str) -> list[tuple[str, str]]:
    head = re.search(r"<thead>.*?</thead>", html, re.S).group(0)
    return re.findall(r"<th((?: style=\"[^\"]*\")?)>(.*?)</th>", head)


def test_whole_day_times_show_as_integers(rossi):
    at = rs.survival_curve(rossi, time="week", event="arrest", by="fin").at([26, 52])
    assert at["time"].dtype.kind == "f"  # the table keeps floats; only the display changes
    shown = [text for _, text in _cells(render_html_table(at))]
    assert "26" in shown and "52" in shown
    assert "26.000" not in shown and "52.000" not in shown
    md = render_markdown_table(at)
    assert "| 0 | 52 | 154 |" in md, md
    # a time that is not whole keeps its decimals
    half = render_html_table(pd.DataFrame({"time": [2.5]}))
    assert "2.500" in half


def test_text_cells_and_headers_are_left_aligned_numbers_right(rossi):
    rates = rs.proportion(pd.DataFrame({"g": ["a"] * 10 + ["b"] * 10, "y": [1, 0] * 10}), "y", by="g")
    html = rates._repr_html_()
    cells = _cells(html)
    assert (' style="text-align:left"', "a") in cells  # the group label
    numbers = [style for style, text in cells if text in {"10", "5", "0.500"}]
    assert numbers and all(style == ' style="text-align:right"' for style in numbers)
    headers = dict((text, style) for style, text in _headers(html))
    assert headers["G"] == ' style="text-align:left"'
    assert headers["Estimate"] == ""  # numeric columns: right, as Jupyter's default


def test_report_tables_keep_their_own_alignment():
    """The report's display frames are strings aligned by report.css: no inline left."""
    frame = pd.DataFrame({"site": ["north", "south"], "n": ["12", "*"]})
    html = render_html_table(frame, align_text=False)
    assert "text-align:left" not in html
    assert "<td>north</td>" in html and "<th>Site</th>" in html


def test_column_headers_read_as_words(rossi):
    fit = rs.odds_ratios(rossi, "arrest", exposure="fin", adjust=["age", "prio"])
    diff = rs.compare_proportions(rossi.assign(fin=rossi["fin"].map({0: "no", 1: "yes"})), "arrest",
                                  group="fin", reference="no")
    km = rs.survival_curve(rossi, time="week", event="arrest", by="fin")
    for result_html in (fit._repr_html_(), diff._repr_html_(), render_html_table(km.at(52))):
        headers = [text for _, text in _headers(result_html)]
        assert headers and not [h for h in headers if "_" in h], headers
    assert label("term_p_value") == "p (all levels)"
    assert label("n_reference") == "N (reference)"


def test_survival_time_axis_is_labelled_in_words(rossi):
    rel = pd.DataFrame({"time_days": [10.0, 20, 30, 40], "event": [1, 0, 1, 0], "event_type": [1, 0, 2, 0]})
    assert rs.survival_curve(rel, time="time_days", event="event").plot().get_xlabel() == "Days of follow-up"
    cif = rs.cumulative_incidence(rel, time="time_days", event="event_type", cause=1)
    assert cif.plot().get_xlabel() == "Days of follow-up"
    assert rs.survival_curve(rossi, time="week", event="arrest").plot().get_xlabel() == "Weeks of follow-up"
    other = rs.survival_curve(rel.rename(columns={"time_days": "time_on_study"}), time="time_on_study",
                              event="event")
    assert other.plot().get_xlabel() == "time on study"
    assert other.plot(xlabel="Days since release").get_xlabel() == "Days since release"


def _marks(ax):
    return [ln for ln in ax.lines if ln.get_gid() == "censor-marks"]


def test_censor_marks_stay_ticks_when_there_are_hundreds(rossi):
    # Rossi: one censoring time per arm (week 52) -> full-size marks
    ax = rs.survival_curve(rossi, time="week", event="arrest", by="fin").plot()
    assert [m.get_markersize() for m in _marks(ax)] == [7.0, 7.0]
    # n = 3,000 censored over ~700 distinct days: the marks shrink so they do not make a band
    rng = np.random.default_rng(12)
    n = 3000
    t_event = rng.exponential(900, n)
    t_cens = rng.uniform(1, 730, n)
    big = pd.DataFrame({"time_days": np.ceil(np.minimum(t_event, t_cens)),
                        "event": (t_event <= t_cens).astype(int)})
    ax = rs.survival_curve(big, time="time_days", event="event").plot()
    (marks,) = _marks(ax)
    assert len(marks.get_xdata()) > 300
    assert marks.get_markersize() <= 3.0 and marks.get_markeredgewidth() <= 0.5
