"""Survival figures: what is drawn (steps, bands, censor marks, at-risk table, suppression, forest)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

from recoverystats.errors import InvalidParameterError  # noqa: E402
from recoverystats.survival import cumulative_incidence, hazard_ratios, survival_curve  # noqa: E402

REF = Path(str(resources.files("recoverystats.datasets").joinpath("data")))


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return pd.read_csv(REF / "rossi.csv")


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def test_km_plot_draws_steps_bands_censor_marks_and_risk_table(rossi):
    res = survival_curve(rossi, time="week", event="arrest", by="fin")
    ax = res.plot(times=[0, 10, 20, 30, 40, 50])
    curves = [ln for ln in ax.lines if ln.get_drawstyle() == "steps-post"]
    assert len(curves) == 2
    assert [ln.get_label() for ln in curves] == ["0", "1"]
    x, y = curves[0].get_data()
    assert x[0] == 0 and y[0] == 1.0
    assert_allclose(y[-1], 150 / 216)  # the week-52 value for fin = 0
    assert len(ax.collections) == 2  # one CI band per group
    marks = [ln for ln in ax.lines if ln.get_gid() == "censor-marks"]
    assert len(marks) == 2 and marks[0].get_marker() == "|"
    assert_allclose(marks[0].get_xdata(), [52.0])  # everyone censored is censored at week 52
    counts = _texts(ax, "risk-table-count")
    rt = res.risk_table([0, 10, 20, 30, 40, 50])
    assert counts == [f"{int(v):,}" for v in rt["n_at_risk"]]
    assert _texts(ax, "risk-table-label") == ["0", "1"]
    assert ax.get_ylim() == (0.0, 1.02)
    assert list(ax.get_xticks()) == [0, 10, 20, 30, 40, 50]
    assert ax.get_xlabel() == "Weeks of follow-up" and ax.get_title(loc="left").startswith("Kaplan-Meier estimate (n = 432")
    assert ax.get_legend().get_title().get_text() == "fin"
    assert ax.figure.__class__.__name__ == "Figure"


def test_km_plot_suppresses_small_counts():
    d = pd.DataFrame({"t": np.arange(1, 31, dtype=float), "e": [1, 0] * 15})
    ax = survival_curve(d, time="t", event="e").plot(times=[0, 10, 20, 25], suppress_below=11)
    # at risk: 30 at 0, 21 at 10, 11 at 20 (not suppressed: 11 is not below 11), 6 at 25
    assert _texts(ax, "risk-table-count") == ["30", "21", "11", "<11"]
    assert _texts(ax, "risk-table-footnote") == ["counts 1-10 shown as <11"]
    ax2 = survival_curve(d, time="t", event="e").plot(times=[0, 25], suppress_below=None)
    assert _texts(ax2, "risk-table-count") == ["30", "6"]
    with pytest.raises(InvalidParameterError, match="suppress_below must be a positive integer"):
        survival_curve(d, time="t", event="e").plot(suppress_below=0)


def test_km_plot_options_and_given_axes(rossi):
    from matplotlib.figure import Figure

    ax0 = Figure().add_subplot()
    res = survival_curve(rossi, time="week", event="arrest")
    ax = res.plot(ax=ax0, ci=False, censor_marks=False, risk_table=False, title="Arrest-free")
    assert ax is ax0
    assert len(ax.collections) == 0 and not _texts(ax, "risk-table-count")
    assert not [ln for ln in ax.lines if ln.get_gid() == "censor-marks"]
    assert ax.get_title(loc="left") == "Arrest-free (n = 432)"
    assert ax.get_legend() is None


def test_cif_plot():
    rng = np.random.default_rng(0)
    n = 200
    d = pd.DataFrame({"t": rng.exponential(5, n), "s": rng.choice([0, 1, 2], n), "g": rng.choice(["x", "y"], n)})
    res = cumulative_incidence(d, time="t", event="s", cause=1, by="g")
    ax = res.plot(times=[0, 5, 10], suppress_below=11)
    curves = [ln for ln in ax.lines if ln.get_drawstyle() == "steps-post"]
    assert len(curves) == 2
    x, y = curves[0].get_data()
    assert y[0] == 0.0 and np.all(np.diff(y) >= 0)
    assert_allclose(y[-1], res.table[res.table.g == "x"]["estimate"].iloc[-1])
    assert ax.get_ylabel() == "Cumulative incidence"
    marks = [ln for ln in ax.lines if ln.get_gid() == "censor-marks"]
    assert len(marks) == 2
    cens_x = res.table[(res.table.g == "x") & (res.table.censored > 0)]
    assert_allclose(marks[0].get_xdata(), cens_x["time"])
    assert_allclose(marks[0].get_ydata(), cens_x["estimate"])
    assert 0 < ax.get_ylim()[1] <= 1.0
    expected = res.risk_table([0, 5, 10])["n_at_risk"]
    shown = _texts(ax, "risk-table-count")
    assert shown[0] == str(int(expected.iloc[0]))
    assert all(s == "<11" for s, v in zip(shown, expected, strict=False) if 0 < v < 11)


def test_forest_plot(rossi):
    res = hazard_ratios(rossi, time="week", event="arrest", exposure="fin", adjust=["age", "prio"])
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fin", "age", "prio"]
    assert ax.get_xscale() == "log"
    pts = [ln for ln in ax.lines if ln.get_gid() == "forest-points"][0]
    assert_allclose(pts.get_xdata(), res.table["estimate"])
    assert list(pts.get_ydata()) == [2.0, 1.0, 0.0]  # first term on top
    null = [ln for ln in ax.lines if ln.get_gid() == "forest-null"][0]
    assert list(null.get_xdata()) == [1.0, 1.0]
    segs = [c for c in ax.collections if c.get_gid() == "forest-ci"][0].get_segments()
    assert_allclose([s[0][0] for s in segs], res.table["ci_lower"])
    assert_allclose([s[1][0] for s in segs], res.table["ci_upper"])
    lo, hi = ax.get_xlim()
    assert lo < res.table["ci_lower"].min() and hi > res.table["ci_upper"].max()
    assert ax.get_xlabel() == "Hazard ratio (95% CI, log scale)"
    ax2 = res.plot(terms=["prio"])
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["prio"]
    with pytest.raises(InvalidParameterError, match="terms: \\['nope'\\] not in the model"):
        res.plot(terms="nope")


def test_forest_plot_labels_categorical_terms_like_the_odds_ratio_plot(rossi):
    d = rossi.assign(aid=np.where(rossi.fin == 1, "financial_aid", "none"))
    res = hazard_ratios(d, time="week", event="arrest", exposure="aid", adjust=["age"],
                        reference={"aid": "none"})
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["aid: financial_aid vs none", "age"]
    ax.figure.canvas.draw()
    ticklabels = {tl.get_text() for tl in ax.get_xticklabels() if tl.get_text()}
    assert "1" in ticklabels  # plain numbers on the log axis, not powers of ten
