"""trend(): per-period proportions, p-chart and Laney p' limits, special-cause signals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.proportion import proportion_confint

from recoverystats import InvalidParameterError
from recoverystats.rates import trend

#: hand computations written in the test (same arithmetic, different code) at rtol 1e-9
RTOL_HAND = 1e-9
#: statsmodels Wilson intervals at rtol 1e-6
RTOL_INDEPENDENT = 1e-6


def frame_from_counts(
    events: list[int], n: list[int], start: str = "2024-01-01", freq: str = "QS"
) -> pd.DataFrame:
    starts = pd.date_range(start, periods=len(n), freq=freq)
    rows = []
    for s, x, m in zip(starts, events, n, strict=True):
        rows += [(s + pd.Timedelta(days=10), 1)] * x + [(s + pd.Timedelta(days=20), 0)] * (m - x)
    return pd.DataFrame(rows, columns=["enrolled", "retained"])


def test_p_chart_limits_by_hand() -> None:
    events = [12, 15, 9, 20, 14, 11]
    n = [40, 50, 30, 60, 45, 35]
    r = trend(frame_from_counts(events, n), "retained", date="enrolled", chart="p")
    t = r.table
    assert t["period"].tolist() == ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    pbar = sum(events) / sum(n)
    for i, (x, m) in enumerate(zip(events, n, strict=True)):
        sigma = np.sqrt(pbar * (1 - pbar) / m)
        assert t.loc[i, "centre"] == pytest.approx(pbar, rel=RTOL_HAND)
        assert t.loc[i, "lcl"] == pytest.approx(max(pbar - 3 * sigma, 0), rel=RTOL_HAND)
        assert t.loc[i, "ucl"] == pytest.approx(min(pbar + 3 * sigma, 1), rel=RTOL_HAND)
        assert t.loc[i, "estimate"] == pytest.approx(x / m)
    lo, hi = proportion_confint(np.array(events), np.array(n), method="wilson")
    assert_allclose(t["ci_lower"], lo, rtol=RTOL_INDEPENDENT)
    assert_allclose(t["ci_upper"], hi, rtol=RTOL_INDEPENDENT)
    assert not t["signal"].any() and (t["chart"] == "p").all() and r.method == "p chart"


def test_laney_p_prime_by_hand_and_auto_rule() -> None:
    # large n and period-to-period variation well beyond binomial: over-dispersed
    n = [2000] * 10
    events = [400, 520, 430, 560, 410, 540, 450, 500, 420, 530]
    d = frame_from_counts(events, n)
    r = trend(d, "retained", date="enrolled", chart="auto")
    t = r.table
    pbar = sum(events) / sum(n)
    p = np.array(events) / np.array(n)
    sig = np.sqrt(pbar * (1 - pbar) / np.array(n))
    z = (p - pbar) / sig
    sigma_z = np.mean(np.abs(np.diff(z))) / 1.128
    assert sigma_z > 1
    assert (t["chart"] == "laney").all()
    assert t["sigma_z"].iloc[0] == pytest.approx(sigma_z, rel=RTOL_HAND)
    assert_allclose(t["ucl"], pbar + 3 * sig * sigma_z, rtol=RTOL_HAND)
    assert_allclose(t["lcl"], pbar - 3 * sig * sigma_z, rtol=RTOL_HAND)
    assert any("Laney p' limits used" in note for note in r.notes)
    # the same data on a classic p chart flags several points that Laney does not
    classic = trend(d, "retained", date="enrolled", chart="p").table
    assert classic["signal_outside"].sum() > t["signal_outside"].sum()


def test_auto_keeps_p_chart_for_binomial_variation() -> None:
    rng = np.random.default_rng(7)
    n = [300] * 12
    events = list(rng.binomial(300, 0.35, size=12))
    t = trend(frame_from_counts(events, n), "retained", date="enrolled").table
    assert (t["chart"] == "p").all()


def test_point_outside_limits_is_a_signal() -> None:
    events = [20, 22, 19, 21, 45, 20]
    n = [100] * 6
    t = trend(frame_from_counts(events, n), "retained", date="enrolled", chart="p").table
    assert t["signal_outside"].tolist() == [False, False, False, False, True, False]
    assert t["signal"].tolist() == t["signal_outside"].tolist()


def test_run_of_eight_on_one_side() -> None:
    # 2 low points, then 8 slightly high ones: no point outside the limits, but a shift
    events = [15, 15, 21, 21, 21, 21, 21, 21, 21, 21]
    n = [100] * 10
    t = trend(frame_from_counts(events, n), "retained", date="enrolled", chart="p").table
    assert not t["signal_outside"].any()
    assert t["signal_run"].tolist() == [False] * 2 + [True] * 8
    # seven in a row is not enough
    t7 = trend(frame_from_counts(events[:9], n[:9]), "retained", date="enrolled", chart="p").table
    assert not t7["signal_run"].any()
    # a custom run length
    t6 = trend(
        frame_from_counts(events[:9], n[:9]), "retained", date="enrolled", chart="p", run_length=6
    ).table
    assert t6["signal_run"].sum() == 7


def test_empty_period_is_a_gap_and_does_not_break_runs_or_limits() -> None:
    d = frame_from_counts([10, 12, 0, 11], [50, 50, 0, 50])
    r = trend(d, "retained", date="enrolled")
    t = r.table
    assert t["n"].tolist() == [50, 50, 0, 50]
    assert np.isnan(t.loc[2, "estimate"]) and np.isnan(t.loc[2, "ucl"])
    assert t.loc[0, "centre"] == pytest.approx(33 / 150)
    assert any("1 period with no rows" in n for n in r.notes)


def test_by_gives_one_chart_per_series_and_monthly_freq() -> None:
    a = frame_from_counts([5, 6, 7], [20, 20, 20], freq="MS").assign(site="a")
    b = frame_from_counts([10, 1, 9], [20, 20, 20], freq="MS").assign(site="b")
    r = trend(pd.concat([a, b]), "retained", date="enrolled", freq="M", by="site", chart="p")
    t = r.table
    assert list(t.columns[:3]) == ["site", "period", "period_start"]
    assert t["period"].tolist() == ["2024-01", "2024-02", "2024-03"] * 2
    assert t.loc[t.site == "a", "centre"].iloc[0] == pytest.approx(18 / 60)
    assert t.loc[t.site == "b", "centre"].iloc[0] == pytest.approx(20 / 60)


def test_missing_rows_excluded_and_string_dates_parsed() -> None:
    d = frame_from_counts([3, 4], [10, 10])
    d["enrolled"] = d["enrolled"].dt.strftime("%Y-%m-%d")
    d.loc[0, "retained"] = np.nan
    d.loc[1, "enrolled"] = None
    r = trend(d, "retained", date="enrolled")
    assert r.n_excluded == 2 and r.table["n"].sum() == 18


def test_bad_input_errors() -> None:
    d = frame_from_counts([3, 4], [10, 10])
    with pytest.raises(
        InvalidParameterError, match=r"freq must be a pandas period frequency .*got 'fortnight'"
    ):
        trend(d, "retained", date="enrolled", freq="fortnight")
    with pytest.raises(
        InvalidParameterError, match=r"chart must be one of 'auto', 'p', 'laney'; got 'u'"
    ):
        trend(d, "retained", date="enrolled", chart="u")
    with pytest.raises(
        InvalidParameterError, match=r"date: column 'enrolled' could not be read as dates"
    ):
        trend(d.assign(enrolled="soon"), "retained", date="enrolled")
    with pytest.raises(InvalidParameterError, match=r"date: column\(s\) 'when' not found"):
        trend(d, "retained", date="when")
    with pytest.raises(InvalidParameterError, match=r"run_length must be an integer >= 2"):
        trend(d, "retained", date="enrolled", run_length=1)
    with pytest.raises(
        InvalidParameterError, match=r"outcome: no rows with both 'retained' and 'enrolled'"
    ):
        trend(d.assign(retained=np.nan), "retained", date="enrolled")


def test_trend_plot_draws_limits_and_marks_signals() -> None:
    events = [20, 22, 19, 21, 45, 20]
    r = trend(frame_from_counts(events, [100] * 6), "retained", date="enrolled", chart="p")
    ax = r.plot()
    lines = ax.lines
    data_line = lines[0]
    assert_allclose(data_line.get_ydata(), np.array(events))  # percent of 100
    ucl = [ln for ln in lines if ln.get_label() == "_ucl"][0]
    assert np.nanmax(ucl.get_ydata()) == pytest.approx(r.table["ucl"].max() * 100)
    sig = [ln for ln in lines if ln.get_label() == "_signal"]
    assert len(sig) == 1 and list(sig[0].get_xdata()) == [4.0]
    assert [t.get_text() for t in ax.get_xticklabels()][4] == "2025Q1"
    assert "special-cause signal" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_title(loc="left").startswith("Retained: p chart by period")  # in words
