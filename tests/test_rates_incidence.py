"""incidence_rate() and incidence_rate_ratio(): exact Poisson CIs and rate ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from recoverystats import InvalidParameterError
from recoverystats.rates import incidence_rate, incidence_rate_ratio

#: independent implementations (scipy quantiles, statsmodels) at rtol 1e-6
RTOL_INDEPENDENT = 1e-6
#: R prints 7 significant digits: half a unit in the last printed digit
RTOL_R_PRINTED = 1e-6


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grp": ["peer"] * 4 + ["usual"] * 4,
            "arrests": [0, 2, 1, 3, 1, 0, 4, 5],
            "years": [1.0, 0.5, 1.0, 1.5, 2.0, 0.5, 1.0, 1.5],
        }
    )


def test_garwood_interval_equals_chi_square_quantiles() -> None:
    d = frame()
    r = incidence_rate(d, events="arrests", person_time="years", by="grp", per=100)
    t = r.table
    assert list(t.columns[:6]) == [
        "grp",
        "events",
        "person_time",
        "estimate",
        "ci_lower",
        "ci_upper",
    ]
    for _, row in t.iterrows():
        x, pt = row["events"], row["person_time"]
        lo = stats.chi2.ppf(0.025, 2 * x) / 2 / pt * 100
        hi = stats.chi2.ppf(0.975, 2 * x + 2) / 2 / pt * 100
        assert_allclose([row["ci_lower"], row["ci_upper"]], [lo, hi], rtol=RTOL_INDEPENDENT)
        assert row["estimate"] == pytest.approx(x / pt * 100)
    assert t["events"].tolist() == [6, 10] and t["person_time"].tolist() == [4.0, 5.0]
    assert any("per 100" in n for n in r.notes)


def test_matches_r_poisson_test() -> None:
    # R: poisson.test(10, 1)$conf.int -> 4.795389 18.390356
    d = pd.DataFrame({"x": [10], "t": [1.0]})
    t = incidence_rate(d, events="x", person_time="t").table
    assert_allclose(
        [t["ci_lower"][0], t["ci_upper"][0]], [4.795389, 18.390356], rtol=RTOL_R_PRINTED
    )
    # zero events: lower limit 0, upper -log(0.025) = 3.688879 (R poisson.test(0, 1))
    t0 = incidence_rate(pd.DataFrame({"x": [0], "t": [1.0]}), events="x", person_time="t").table
    assert t0["ci_lower"][0] == 0.0
    assert t0["ci_upper"][0] == pytest.approx(-np.log(0.025), rel=RTOL_INDEPENDENT)


def test_rate_ratio_exact_conditional_and_wald() -> None:
    d = frame()
    r = incidence_rate_ratio(
        d, events="arrests", person_time="years", group="grp", reference="usual"
    )
    t = r.table
    d1, t1, d0, t0 = 6, 4.0, 10, 5.0
    assert t["comparison"][0] == "peer vs usual"
    assert t["estimate"][0] == pytest.approx((d1 / t1) / (d0 / t0))
    # exact: Clopper-Pearson for pi = D1/(D1+D0), mapped to pi/(1-pi) * T0/T1
    # (R: poisson.test(c(6, 10), c(4, 5)))
    pl, pu = proportion_confint(d1, d1 + d0, method="beta")
    assert_allclose(
        [t["ci_lower"][0], t["ci_upper"][0]],
        [pl / (1 - pl) * t0 / t1, pu / (1 - pu) * t0 / t1],
        rtol=RTOL_INDEPENDENT,
    )
    assert t["p_value"][0] == pytest.approx(
        stats.binomtest(d1, d1 + d0, t1 / (t1 + t0)).pvalue, rel=RTOL_INDEPENDENT
    )
    se = np.sqrt(1 / d1 + 1 / d0)
    z = stats.norm.ppf(0.975)
    est = t["estimate"][0]
    assert_allclose(
        [t["ci_lower_wald"][0], t["ci_upper_wald"][0]],
        [est * np.exp(-z * se), est * np.exp(z * se)],
        rtol=RTOL_INDEPENDENT,
    )
    assert r.measure == "irr" and r.null_value == 1.0


def test_zero_events_in_one_group() -> None:
    d = pd.DataFrame({"g": ["a", "b"], "x": [0, 4], "t": [10.0, 10.0]})
    t = incidence_rate_ratio(d, events="x", person_time="t", group="g", reference="b").table
    assert t["estimate"][0] == 0 and t["ci_lower"][0] == 0
    assert np.isfinite(t["ci_upper"][0]) and np.isnan(t["ci_lower_wald"][0])


def test_missing_rows_and_zero_person_time() -> None:
    d = pd.DataFrame(
        {
            "g": pd.Categorical(["a", "a", "b"], categories=["a", "b", "c"]),
            "x": [1.0, np.nan, 2.0],
            "t": [2.0, 1.0, 0.0],
        }
    )
    r = incidence_rate(d, events="x", person_time="t", by="g")
    t = r.table
    assert r.n_excluded == 1 and t["events"].tolist() == [1, 2, 0]
    assert np.isnan(t.loc[1, "estimate"]) and np.isnan(t.loc[2, "ci_upper"])
    assert any("2 groups with no person-time" in n for n in r.notes)


def test_bad_input_errors() -> None:
    d = frame()
    with pytest.raises(
        InvalidParameterError, match=r"person_time: column 'years' must be non-negative.*-1.0"
    ):
        incidence_rate(d.assign(years=-1.0), events="arrests", person_time="years")
    with pytest.raises(
        InvalidParameterError,
        match=r"events: column 'arrests' must hold non-negative whole counts; found 0.5",
    ):
        incidence_rate(d.assign(arrests=0.5), events="arrests", person_time="years")
    # a text column is dtype object under pandas 2 and str under pandas 3
    with pytest.raises(
        InvalidParameterError,
        match=r"events: column 'arrests' must be numeric; got dtype (object|str)\. Convert it first",
    ):
        incidence_rate(d.assign(arrests="x"), events="arrests", person_time="years")
    with pytest.raises(InvalidParameterError, match=r"per must be a positive number .*got 0"):
        incidence_rate(d, events="arrests", person_time="years", per=0)
    with pytest.raises(InvalidParameterError, match=r"person_time: column\(s\) 'days' not found"):
        incidence_rate(d, events="arrests", person_time="days")
    with pytest.raises(InvalidParameterError, match=r"group: column 'grp' has only one level"):
        incidence_rate_ratio(d[d.grp == "peer"], events="arrests", person_time="years", group="grp")


def test_incidence_plot_uses_rate_axis() -> None:
    r = incidence_rate(frame(), events="arrests", person_time="years", by="grp", per=100)
    ax = r.plot()
    assert ax.get_xlabel() == "Arrests: rate per 100, 95% CI"  # in words
    assert ax.get_xlim()[1] == pytest.approx(r.table["ci_upper"].max() * 1.05)
    assert len(ax.lines) == 4
