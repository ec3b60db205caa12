"""proportion(): interval formulas, exact coverage, grouping, bad input, display."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from recoverystats import InvalidParameterError
from recoverystats.datasets import load_rossi, load_uis
from recoverystats.rates import proportion
from recoverystats.rates._intervals import binomial_ci

#: independent implementations (statsmodels, scipy, formulas written here): rtol 1e-6
RTOL_INDEPENDENT = 1e-6
#: absolute floor for limits that are exactly 0 or 1
ATOL_BOUNDARY = 1e-12
#: Wilson's mean coverage over p must be within this of nominal (Brown, Cai & DasGupta
#: 2001, Fig. 5 and §4.1.1: "the Wilson interval ... mean coverage close to nominal")
WILSON_MEAN_COVERAGE_TOL = 0.01
#: floating-point slack when checking that Clopper-Pearson coverage is >= nominal
EXACT_COVERAGE_SLACK = 1e-9
#: limits printed to 3 decimals: half a unit in the last printed digit, plus 2e-6 for
#: one pair of cells that sits on a rounding boundary (x = 3 upper 0.7654988 is printed
#: 0.766 and its mirror, x = 4 lower 0.2345012, 0.234: the table's own computation was
#: a little above .xxx5 there; measured excess 1.25e-6)
PRINTED_3DP = 5e-4 + 2e-6

#: Brown, Cai & DasGupta (2001), Appendix Table A.1, 95% limits of the modified Jeffreys
#: interval, row n = 7 (x = 0..4; the table gives x <= n/2, the rest by symmetry).
#: Transcribed from the table as cited in Boost.Histogram's test suite
#: (test/utility_jeffreys_interval_test.cpp); the paper itself is not in our stored sources.
BCD_TABLE_A1_N7 = {
    0: (0.000, 0.410),
    1: (0.000, 0.501),
    2: (0.065, 0.648),
    3: (0.139, 0.766),
    4: (0.234, 0.861),
}

SM_NAMES = {
    "wilson": "wilson",
    "exact": "beta",
    "jeffreys": "jeffreys",
    "agresti_coull": "agresti_coull",
    "wald": "normal",
}
GRID = [
    (x, n)
    for n in (1, 2, 5, 10, 17, 30, 50, 100, 1000)
    for x in sorted({0, 1, n // 3, n // 2, n - 1, n})
]


def _frame(x: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"y": [1] * x + [0] * (n - x)})


@pytest.mark.parametrize("method", list(SM_NAMES))
@pytest.mark.parametrize("conf_level", [0.9, 0.95, 0.99])
def test_matches_statsmodels_proportion_confint(method: str, conf_level: float) -> None:
    x = np.array([g[0] for g in GRID])
    n = np.array([g[1] for g in GRID])
    lo, hi = binomial_ci(x, n, method=method, conf_level=conf_level)
    sm_lo, sm_hi = proportion_confint(x, n, alpha=1 - conf_level, method=SM_NAMES[method])
    interior = (x > 0) & (x < n) if method == "jeffreys" else np.ones(len(x), bool)
    assert_allclose(lo[interior], sm_lo[interior], rtol=RTOL_INDEPENDENT, atol=ATOL_BOUNDARY)
    assert_allclose(hi[interior], sm_hi[interior], rtol=RTOL_INDEPENDENT, atol=ATOL_BOUNDARY)


def test_independent_formulas_written_here() -> None:
    x, n, level = 7, 23, 0.95
    z = stats.norm.ppf(0.975)
    p = x / n
    # Wilson (1927): centre and half-width
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    # Clopper-Pearson through the F distribution (Leemis & Trivedi form)
    f_lo = stats.f.ppf(0.025, 2 * x, 2 * (n - x + 1))
    cp_lo = x * f_lo / (n - x + 1 + x * f_lo)
    f_hi = stats.f.ppf(0.975, 2 * (x + 1), 2 * (n - x))
    cp_hi = (x + 1) * f_hi / (n - x + (x + 1) * f_hi)
    # Jeffreys: Beta(x + 1/2, n - x + 1/2) quantiles
    j_lo, j_hi = stats.beta.ppf([0.025, 0.975], x + 0.5, n - x + 0.5)
    # Agresti-Coull: add z^2/2 successes and failures
    nt = n + z**2
    pt = (x + z**2 / 2) / nt
    ac = pt + np.array([-1, 1]) * z * np.sqrt(pt * (1 - pt) / nt)
    wald = p + np.array([-1, 1]) * z * np.sqrt(p * (1 - p) / n)
    expected = {
        "wilson": (centre - half, centre + half),
        "exact": (cp_lo, cp_hi),
        "jeffreys": (j_lo, j_hi),
        "agresti_coull": tuple(ac),
        "wald": tuple(wald),
    }
    d = _frame(x, n)
    for method, (lo, hi) in expected.items():
        t = proportion(d, "y", method=method, conf_level=level).table
        assert_allclose([t["ci_lower"][0], t["ci_upper"][0]], [lo, hi], rtol=RTOL_INDEPENDENT)
        assert t["estimate"][0] == pytest.approx(p)


def test_jeffreys_boundary_convention_lower_0_at_x0_upper_1_at_xn() -> None:
    lo, hi = binomial_ci(np.array([0, 10]), np.array([10, 10]), method="jeffreys", conf_level=0.95)
    assert lo[0] == 0.0 and hi[1] == 1.0
    # the other end is the ordinary Beta(1/2, n + 1/2) quantile
    assert hi[0] == pytest.approx(stats.beta.ppf(0.975, 0.5, 10.5), rel=RTOL_INDEPENDENT)


def test_modified_jeffreys_reproduces_brown_cai_dasgupta_table_a1() -> None:
    n = 7
    x = np.arange(n + 1)
    lo, hi = binomial_ci(x, np.full(n + 1, n), method="jeffreys_modified", conf_level=0.95)
    for k, (t_lo, t_hi) in BCD_TABLE_A1_N7.items():
        assert abs(lo[k] - t_lo) <= PRINTED_3DP, (k, lo[k], t_lo)
        assert abs(hi[k] - t_hi) <= PRINTED_3DP, (k, hi[k], t_hi)
        # the other half of the row by the table's symmetry: [1 - U(x), 1 - L(x)] at n - x
        assert abs(lo[n - k] - (1 - t_hi)) <= PRINTED_3DP
        assert abs(hi[n - k] - (1 - t_lo)) <= PRINTED_3DP
    # through the public function too (x = 2 of 7)
    t = proportion(_frame(2, 7), "y", method="modified_jeffreys").table
    assert abs(t["ci_lower"][0] - 0.065) <= PRINTED_3DP
    assert abs(t["ci_upper"][0] - 0.648) <= PRINTED_3DP


def test_plain_jeffreys_matches_table_a1_only_where_unmodified() -> None:
    n = 7
    lo, hi = binomial_ci(np.arange(n + 1), np.full(n + 1, n), method="jeffreys", conf_level=0.95)
    for k in (2, 3, 4):  # interior cells: the modification does not touch them
        t_lo, t_hi = BCD_TABLE_A1_N7[k]
        assert abs(lo[k] - t_lo) <= PRINTED_3DP and abs(hi[k] - t_hi) <= PRINTED_3DP
    # at x = 0 the plain upper limit (0.292) is well below the modified 0.410, and at
    # x = 1 the plain lower limit is 0.016, not 0
    assert hi[0] < BCD_TABLE_A1_N7[0][1] - 0.1
    assert lo[1] > 0.01


def _coverage(method: str, n: int, ps: np.ndarray, level: float = 0.95) -> np.ndarray:
    x = np.arange(n + 1)
    lo, hi = binomial_ci(x, np.full(n + 1, n), method=method, conf_level=level)
    pmf = stats.binom.pmf(x[:, None], n, ps[None, :])
    inside = (lo[:, None] <= ps[None, :]) & (ps[None, :] <= hi[:, None])
    return (pmf * inside).sum(axis=0)


def test_exact_coverage_by_binomial_sums() -> None:
    """Exact coverage over n = 10..200 and p in (0, 1): the published behaviour."""
    ps = np.linspace(0.005, 0.995, 397)
    min_exact = 1.0
    wilson_means, wald_means = [], []
    for n in range(10, 201, 5):
        min_exact = min(min_exact, _coverage("exact", n, ps).min())
        wilson_means.append(_coverage("wilson", n, ps).mean())
        wald_means.append(_coverage("wald", n, ps).mean())
    # Clopper-Pearson is never below nominal (it is conservative by construction)
    assert min_exact >= 0.95 - EXACT_COVERAGE_SLACK
    # Wilson is close to nominal on average (Brown, Cai & DasGupta 2001, §4.1.1)
    assert abs(np.mean(wilson_means) - 0.95) < WILSON_MEAN_COVERAGE_TOL
    assert all(abs(m - 0.95) < 2 * WILSON_MEAN_COVERAGE_TOL for m in wilson_means)
    # ... while Wald falls clearly short (their headline finding)
    assert np.mean(wald_means) < 0.93


def test_modified_jeffreys_lifts_coverage_near_the_boundary() -> None:
    """BCD §4.1.2: the modification removes the plain interval's coverage dips near 0."""
    ps = np.linspace(0.0005, 0.05, 200)
    ns = range(10, 201, 5)
    plain = min(_coverage("jeffreys", n, ps).min() for n in ns)
    modified = min(_coverage("jeffreys_modified", n, ps).min() for n in ns)
    # measured: plain 0.878, modified 0.927
    assert plain < 0.90 and modified > 0.92
    grid = np.linspace(0.005, 0.995, 397)
    mean = np.mean([_coverage("jeffreys_modified", n, grid).mean() for n in ns])
    assert abs(mean - 0.95) < WILSON_MEAN_COVERAGE_TOL


def test_real_data_counts_rossi_and_uis() -> None:
    # Rossi: 114 of 432 arrested within a year (REFERENCE_VALUES.md); by fin 66/216 and 48/216
    rossi = load_rossi()
    overall = proportion(rossi, "arrest").table
    assert overall[["n", "events"]].values.tolist() == [[432, 114]]
    by_fin = proportion(rossi, "arrest", by="fin").table
    assert by_fin[["fin", "n", "events"]].values.tolist() == [[0, 216, 66], [1, 216, 48]]
    sm = proportion_confint(66, 216, method="wilson")
    assert_allclose(
        by_fin.loc[0, ["ci_lower", "ci_upper"]].astype(float), sm, rtol=RTOL_INDEPENDENT
    )
    # UIS: drug free at 12 months (TIME >= 365) 147 of 575 (ALR 2e, Table 4.1 data)
    uis = load_uis().assign(dfree=lambda d: (d["TIME"] >= 365).astype(int))
    t = proportion(uis, "dfree").table
    assert t[["n", "events"]].values.tolist() == [[575, 147]]


def test_by_several_columns_sorted_and_counted() -> None:
    d = pd.DataFrame(
        {
            "y": [1, 0, 1, 1, 0, 1],
            "site": ["b", "b", "a", "a", "a", "b"],
            "grp": ["x", "y", "x", "x", "y", "x"],
        }
    )
    t = proportion(d, "y", by=["site", "grp"]).table
    assert list(t.columns[:7]) == ["site", "grp", "n", "events", "estimate", "ci_lower", "ci_upper"]
    assert t[["site", "grp", "n", "events"]].values.tolist() == [
        ["a", "x", 2, 2],
        ["a", "y", 1, 0],
        ["b", "x", 2, 2],
        ["b", "y", 1, 0],
    ]


def test_missing_outcome_excluded_counted_and_noted() -> None:
    d = pd.DataFrame({"y": [1.0, np.nan, 0.0, np.nan, 1.0]})
    r = proportion(d, "y")
    assert (r.n_used, r.n_excluded) == (3, 2)
    assert r.table["events"][0] == 2 and r.table["n"][0] == 3
    assert any("2 rows with missing 'y' excluded" in n for n in r.notes)


def test_nullable_boolean_and_bool_outcomes() -> None:
    d = pd.DataFrame(
        {"y": pd.array([True, None, False, True], dtype="boolean"), "b": [True, False, False, True]}
    )
    assert proportion(d, "y").table[["n", "events"]].values.tolist() == [[3, 2]]
    assert proportion(d, "b").table[["n", "events"]].values.tolist() == [[4, 2]]


def test_empty_category_gives_nan_with_note() -> None:
    d = pd.DataFrame(
        {"y": [1, 0, 1], "site": pd.Categorical(["a", "a", "b"], categories=["a", "b", "c"])}
    )
    r = proportion(d, "y", by="site")
    t = r.table
    assert t["site"].astype(str).tolist() == ["a", "b", "c"]
    row = t.iloc[2]
    assert row["n"] == 0 and row["events"] == 0
    assert np.isnan(row["estimate"]) and np.isnan(row["ci_lower"]) and np.isnan(row["ci_upper"])
    assert any("1 group with no usable rows (n = 0)" in n for n in r.notes)


def test_all_missing_and_zero_rows_give_nan_not_crash() -> None:
    d = pd.DataFrame({"y": [np.nan, np.nan]})
    r = proportion(d, "y")
    assert r.table["n"][0] == 0 and np.isnan(r.table["estimate"][0])
    assert r.n_excluded == 2
    assert any("No usable rows (n = 0)" in n for n in r.notes)
    r0 = proportion(pd.DataFrame({"y": pd.Series([], dtype=float)}), "y")
    assert r0.table["n"][0] == 0 and np.isnan(r0.table["ci_upper"][0])


def test_missing_group_key_excluded_and_noted() -> None:
    d = pd.DataFrame({"y": [1, 0, 1], "site": ["a", None, "a"]})
    r = proportion(d, "y", by="site")
    assert r.table[["site", "n"]].values.tolist() == [["a", 2]]
    assert r.n_excluded == 1
    assert any("missing value in 'site'" in n for n in r.notes)


def test_outcome_not_binary_names_column_and_values() -> None:
    d = pd.DataFrame({"score": [0, 1, 2, 3]})
    with pytest.raises(
        InvalidParameterError, match=r"outcome: column 'score' must hold 0/1.*found 2, 3"
    ):
        proportion(d, "score")
    d = pd.DataFrame({"status": ["yes", "no"]})
    with pytest.raises(InvalidParameterError, match=r"column 'status'.*'yes', 'no'"):
        proportion(d, "status")


def test_bad_arguments_are_named() -> None:
    d = pd.DataFrame({"y": [0, 1]})
    with pytest.raises(InvalidParameterError, match=r"by: column\(s\) 'site' not found"):
        proportion(d, "y", by="site")
    with pytest.raises(InvalidParameterError, match=r"outcome: column\(s\) 'z' not found"):
        proportion(d, "z")
    with pytest.raises(InvalidParameterError, match=r"method must be one of 'wilson'.*got 'bayes'"):
        proportion(d, "y", method="bayes")
    with pytest.raises(InvalidParameterError, match=r"conf_level must be strictly between 0 and 1"):
        proportion(d, "y", conf_level=95)
    with pytest.raises(InvalidParameterError, match=r"df must be a pandas DataFrame; got list"):
        proportion([0, 1], "y")
    with pytest.raises(InvalidParameterError, match=r"cannot also be a grouping column"):
        proportion(d, "y", by="y")


def test_method_aliases() -> None:
    d = _frame(3, 10)
    a = proportion(d, "y", method="clopper_pearson")
    b = proportion(d, "y", method="exact")
    assert a.method == "exact"
    assert_allclose(a.table["ci_lower"], b.table["ci_lower"])


def test_result_is_frozen_and_renders() -> None:
    d = pd.DataFrame({"y": [1, 0, 1, 1], "g": ["a", "a", "b", "b"]})
    r = proportion(d, "y", by="g")
    with pytest.raises(AttributeError):
        r.conf_level = 0.9  # type: ignore[misc]
    t = r.table
    t.loc[0, "n"] = 999
    assert r.table.loc[0, "n"] == 2  # .table is a copy
    html = r._repr_html_()
    assert "<table" in html and "CI lower" in html and "method=wilson" in html
    md = r.to_markdown()
    assert md.splitlines()[0].startswith("| G | N | Events | Estimate")
    payload = json.loads(json.dumps(r.to_dict()))
    assert payload["result"] == "RateResult" and payload["table"][1]["events"] == 2
    assert "RateResult(method=wilson" in repr(r)


def test_plot_draws_points_and_whiskers() -> None:
    d = pd.DataFrame({"y": [1, 0, 1, 1, 0, 0], "g": ["a", "a", "b", "b", "c", "c"]})
    r = proportion(d, "y", by="g")
    ax = r.plot()
    # one whisker and one marker per group
    assert len(ax.lines) == 6
    whisker = ax.lines[0]
    assert_allclose(
        whisker.get_xdata(), r.table.loc[0, ["ci_lower", "ci_upper"]].astype(float) * 100
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlim() == (0.0, 100.0)
    assert ax.get_title(loc="left").startswith("Y by g (n = 6")  # column names in words


def test_by_a_coded_column_lists_levels_in_code_order():
    # data-model coded columns (risk_level) come out in code-list order, as in table_one
    df = pd.DataFrame(
        {
            "risk_level": ["very_high", "low", "high", "moderate", "low", "high"],
            "y": [1, 0, 1, 0, 1, 1],
        }
    )
    t = proportion(df, "y", by="risk_level").table
    assert list(t["risk_level"]) == ["low", "moderate", "high", "very_high"]
    np.testing.assert_allclose(t["n"], [2, 1, 2, 1])
    np.testing.assert_allclose(t["events"], [1, 0, 2, 1])
