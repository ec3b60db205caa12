"""compare_proportions(): RD/RR/OR intervals, exact OR, Mantel-Haenszel, tests, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable, Table2x2

from recoverystats import InvalidParameterError
from recoverystats.datasets import load_rossi
from recoverystats.rates import compare_proportions
from recoverystats.rates._intervals import exact_odds_ratio

#: values printed to 4 decimals: half a unit in the last printed digit
TOL_PRINTED_4DP = 5e-5
#: independent implementations (statsmodels, scipy, formulas written here)
RTOL_INDEPENDENT = 1e-6
#: R fisher.test finds the CI limits with uniroot's default tolerance
#: (.Machine$double.eps^0.25 ~ 1.22e-4) on the scale of psi (< 1) or 1/psi (> 1)
R_UNIROOT_TOL = 1.22e-4
#: R prints fisher.test results to 7 significant digits
RTOL_R_PRINTED = 5e-7


def two_arm_frame(
    x1: int, n1: int, x0: int, n0: int, g1: str = "treated", g0: str = "control"
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arm": [g1] * n1 + [g0] * n0,
            "y": [1] * x1 + [0] * (n1 - x1) + [1] * x0 + [0] * (n0 - x0),
        }
    )


# Newcombe (1998), Stat Med 17:873-890, Table II, method 10 (score, no CC).
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "printed"), NEWCOMBE_TABLE_II)
def test_risk_difference_newcombe_table_ii(
    counts: tuple[int, int, int, int], printed: tuple[float, float]
) -> None:
    x1, n1, x0, n0 = counts
    t = compare_proportions(two_arm_frame(*counts), "y", group="arm", reference="control").table
    assert t["comparison"][0] == "treated vs control"
    assert t["estimate"][0] == pytest.approx(x1 / n1 - x0 / n0)
    assert_allclose([t["ci_lower"][0], t["ci_upper"][0]], printed, atol=TOL_PRINTED_4DP)
    assert t["method"][0] == "Newcombe hybrid score"


def rossi_table() -> tuple[pd.DataFrame, Table2x2]:
    rossi = load_rossi()
    # fin = 1 vs fin = 0: arrested 48/216 vs 66/216 (Rossi et al. 1980)
    tab = Table2x2(np.array([[48, 168], [66, 150]]))
    return rossi, tab


def test_risk_ratio_katz_matches_statsmodels_on_rossi() -> None:
    rossi, tab = rossi_table()
    r = compare_proportions(rossi, "arrest", group="fin", measure="rr")
    t = r.table
    assert r.reference == 0 and t["comparison"][0] == "1 vs 0"
    assert t[["n", "events", "n_reference", "events_reference"]].values.tolist()[0] == [
        216,
        48,
        216,
        66,
    ]
    assert t["estimate"][0] == pytest.approx(tab.riskratio, rel=RTOL_INDEPENDENT)
    assert_allclose(
        t.loc[0, ["ci_lower", "ci_upper"]].astype(float),
        tab.riskratio_confint(),
        rtol=RTOL_INDEPENDENT,
    )
    assert t["std_error"][0] == pytest.approx(tab.log_riskratio_se, rel=RTOL_INDEPENDENT)


def test_odds_ratio_woolf_matches_statsmodels_on_rossi() -> None:
    rossi, tab = rossi_table()
    t = compare_proportions(rossi, "arrest", group="fin", measure="or").table
    assert t["method"][0] == "Woolf logit"
    assert t["estimate"][0] == pytest.approx(tab.oddsratio, rel=RTOL_INDEPENDENT)
    assert_allclose(
        t.loc[0, ["ci_lower", "ci_upper"]].astype(float),
        tab.oddsratio_confint(),
        rtol=RTOL_INDEPENDENT,
    )
    # Pearson chi-square without continuity correction, as scipy chi2_contingency(correction=False)
    chi = stats.chi2_contingency(np.array([[48, 168], [66, 150]]), correction=False)
    assert t["p_value"][0] == pytest.approx(chi.pvalue, rel=RTOL_INDEPENDENT)
    assert t["test"][0] == "Pearson chi-square"


def test_exact_odds_ratio_matches_r_fisher_test() -> None:
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2))
    #   odds ratio 6.408309; 95 percent CI 0.2117329 621.9337505; p-value = 0.4857
    est, lo, hi = exact_odds_ratio(3, 1, 1, 3, conf_level=0.95)
    assert 1 / est == pytest.approx(1 / 6.408309, abs=R_UNIROOT_TOL)
    assert est == pytest.approx(6.408309, rel=1e-5)
    assert lo == pytest.approx(0.2117329, abs=R_UNIROOT_TOL)
    assert 1 / hi == pytest.approx(1 / 621.9337505, abs=R_UNIROOT_TOL)
    # ours solves the defining equations to machine precision: P(X >= 3; lo) = P(X <= 3; hi) = 0.025
    support = np.arange(0, 5)
    w = stats.hypergeom.pmf(support, 8, 4, 4)

    def tail(psi: float, upper: bool) -> float:
        p = w * psi**support
        p /= p.sum()
        return p[support >= 3].sum() if upper else p[support <= 3].sum()

    assert tail(lo, upper=True) == pytest.approx(0.025, abs=1e-10)
    assert tail(hi, upper=False) == pytest.approx(0.025, abs=1e-10)
    # and the conditional MLE sets the mean equal to the observed count
    p = w * est**support
    assert (support * p / p.sum()).sum() == pytest.approx(3.0, abs=1e-9)


def test_small_cells_switch_to_exact_or_and_fisher_with_note() -> None:
    d = two_arm_frame(3, 4, 1, 4)
    r = compare_proportions(d, "y", group="arm", measure="or", reference="control")
    t = r.table
    assert t["method"][0] == "conditional MLE, exact (Cornfield) CI"
    assert t["test"][0] == "Fisher exact"
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value = 0.4857
    assert t["p_value"][0] == pytest.approx(
        stats.fisher_exact([[3, 1], [1, 3]]).pvalue, rel=RTOL_INDEPENDENT
    )
    assert t["p_value"][0] == pytest.approx(0.4857, abs=TOL_PRINTED_4DP)
    assert t["estimate"][0] == pytest.approx(6.408309, rel=1e-5)
    assert any("exact CI (as R fisher.test)" in n for n in r.notes)
    # a zero cell: the estimate is infinite, the lower limit finite
    t0 = compare_proportions(
        two_arm_frame(5, 5, 2, 6), "y", group="arm", measure="or", reference="control"
    ).table
    assert np.isinf(t0["estimate"][0]) and np.isinf(t0["ci_upper"][0]) and t0["ci_lower"][0] > 0


def test_test_option_forces_chi2_or_fisher() -> None:
    d = two_arm_frame(30, 60, 18, 60)
    chi = compare_proportions(d, "y", group="arm", reference="control", test="chi2").table
    fis = compare_proportions(d, "y", group="arm", reference="control", test="fisher").table
    assert chi["p_value"][0] == pytest.approx(
        stats.chi2_contingency([[30, 30], [18, 42]], correction=False).pvalue, rel=RTOL_INDEPENDENT
    )
    assert fis["p_value"][0] == pytest.approx(
        stats.fisher_exact([[30, 30], [18, 42]]).pvalue, rel=RTOL_INDEPENDENT
    )


def test_risk_ratio_zero_count_adds_half_with_note() -> None:
    r = compare_proportions(
        two_arm_frame(0, 20, 4, 20), "y", group="arm", measure="rr", reference="control"
    )
    t = r.table
    assert t["estimate"][0] == pytest.approx((0.5 / 21) / (4.5 / 21))
    assert "0.5 added" in t["method"][0]
    assert any("0.5 was added to every cell" in n for n in r.notes)


def test_more_than_two_groups_one_row_per_level() -> None:
    d = pd.concat(
        [two_arm_frame(10, 40, 20, 40, "b", "a"), two_arm_frame(30, 40, 0, 0, "c", "a")],
        ignore_index=True,
    )
    r = compare_proportions(d, "y", group="arm", measure="rd")
    t = r.table
    assert t["comparison"].tolist() == ["b vs a", "c vs a"]
    assert t["estimate"].tolist() == pytest.approx([10 / 40 - 20 / 40, 30 / 40 - 20 / 40])
    r2 = compare_proportions(d, "y", group="arm", reference={"arm": "c"})
    assert r2.table["comparison"].tolist() == ["a vs c", "b vs c"]


def _rossi_strata() -> tuple[pd.DataFrame, list[np.ndarray]]:
    rossi = load_rossi()
    tables = []
    for _, part in rossi.groupby("wexp"):
        a = int(part.loc[part.fin == 1, "arrest"].sum())
        n1 = int((part.fin == 1).sum())
        c = int(part.loc[part.fin == 0, "arrest"].sum())
        n0 = int((part.fin == 0).sum())
        tables.append(np.array([[a, n1 - a], [c, n0 - c]], dtype=float))
    return rossi, tables


def test_mantel_haenszel_odds_ratio_matches_statsmodels() -> None:
    rossi, tables = _rossi_strata()
    st = StratifiedTable(tables)
    r = compare_proportions(rossi, "arrest", group="fin", measure="or", strata="wexp")
    t = r.table
    assert t["n_strata"][0] == 2
    assert t["estimate"][0] == pytest.approx(st.oddsratio_pooled, rel=RTOL_INDEPENDENT)
    assert_allclose(
        t.loc[0, ["ci_lower", "ci_upper"]].astype(float),
        st.oddsratio_pooled_confint(),
        rtol=RTOL_INDEPENDENT,
    )
    assert t["std_error"][0] == pytest.approx(st.logodds_pooled_se, rel=RTOL_INDEPENDENT)
    cmh = st.test_null_odds(correction=False)
    assert t["p_value"][0] == pytest.approx(cmh.pvalue, rel=RTOL_INDEPENDENT)
    bd = st.test_equal_odds(adjust=True)
    assert t["homogeneity_statistic"][0] == pytest.approx(bd.statistic, rel=RTOL_INDEPENDENT)
    assert t["homogeneity_p_value"][0] == pytest.approx(bd.pvalue, rel=RTOL_INDEPENDENT)
    assert t["homogeneity_test"][0] == "Breslow-Day (Tarone)"
    assert r.method == "Mantel-Haenszel (Robins-Breslow-Greenland variance)"


# a sparse-ish stratified example with heterogeneous strata (hand-made; five strata)
STRATA = [
    np.array([[8, 12], [4, 16]], float),
    np.array([[5, 5], [3, 9]], float),
    np.array([[12, 30], [10, 40]], float),
    np.array([[2, 6], [1, 9]], float),
    np.array([[20, 10], [9, 21]], float),
]


def _frame_from_tables(tables: list[np.ndarray]) -> pd.DataFrame:
    rows = []
    for k, tab in enumerate(tables):
        (a, b), (c, d) = tab.astype(int)
        rows += [("t", 1, k)] * a + [("t", 0, k)] * b + [("c", 1, k)] * c + [("c", 0, k)] * d
    return pd.DataFrame(rows, columns=["arm", "y", "stratum"])


def test_mantel_haenszel_many_strata_against_statsmodels_and_direct_formulas() -> None:
    d = _frame_from_tables(STRATA)
    st = StratifiedTable(STRATA)
    t_or = compare_proportions(
        d, "y", group="arm", measure="or", strata="stratum", reference="c"
    ).table
    assert t_or["estimate"][0] == pytest.approx(st.oddsratio_pooled, rel=RTOL_INDEPENDENT)
    assert_allclose(
        t_or.loc[0, ["ci_lower", "ci_upper"]].astype(float),
        st.oddsratio_pooled_confint(),
        rtol=RTOL_INDEPENDENT,
    )
    assert t_or["homogeneity_statistic"][0] == pytest.approx(
        st.test_equal_odds(adjust=True).statistic, rel=RTOL_INDEPENDENT
    )
    assert t_or["homogeneity_df"][0] == 4

    # risk ratio: statsmodels gives the MH point estimate; the Greenland-Robins (1985)
    # variance of log RR_MH is written out here term by term
    t_rr = compare_proportions(
        d, "y", group="arm", measure="rr", strata="stratum", reference="c"
    ).table
    assert t_rr["estimate"][0] == pytest.approx(st.riskratio_pooled, rel=RTOL_INDEPENDENT)
    num = r_sum = s_sum = 0.0
    for tab in STRATA:
        (a, b), (c, d_) = tab
        n1, n0, n, m1 = a + b, c + d_, tab.sum(), a + c
        num += (n1 * n0 * m1 - a * c * n) / n**2
        r_sum += a * n0 / n
        s_sum += c * n1 / n
    se = np.sqrt(num / (r_sum * s_sum))
    z = stats.norm.ppf(0.975)
    rr = r_sum / s_sum
    assert t_rr["std_error"][0] == pytest.approx(se, rel=RTOL_INDEPENDENT)
    assert_allclose(
        t_rr.loc[0, ["ci_lower", "ci_upper"]].astype(float),
        [rr * np.exp(-z * se), rr * np.exp(z * se)],
        rtol=RTOL_INDEPENDENT,
    )

    # risk difference with Sato's (1989) variance, written out here
    t_rd = compare_proportions(
        d, "y", group="arm", measure="rd", strata="stratum", reference="c"
    ).table
    w_sum = rd_num = p_sum = q_sum = 0.0
    for tab in STRATA:
        (a, b), (c, d_) = tab
        n1, n0, n = a + b, c + d_, tab.sum()
        w_sum += n1 * n0 / n
        rd_num += (a * n0 - c * n1) / n
    rd = rd_num / w_sum
    for tab in STRATA:
        (a, b), (c, d_) = tab
        n1, n0, n = a + b, c + d_, tab.sum()
        p_sum += (n1**2 * c - n0**2 * a + n1 * n0 * (n0 - n1) / 2) / n**2
        q_sum += (a * (n0 - c) + c * (n1 - a)) / (2 * n)
    se_rd = np.sqrt((rd * p_sum + q_sum) / w_sum**2)
    assert t_rd["estimate"][0] == pytest.approx(rd, rel=RTOL_INDEPENDENT)
    assert t_rd["std_error"][0] == pytest.approx(se_rd, rel=RTOL_INDEPENDENT)
    assert t_rd["ci_lower"][0] == pytest.approx(rd - z * se_rd, rel=RTOL_INDEPENDENT)
    # the same CMH p-value whatever the measure
    p_cmh = st.test_null_odds(correction=False).pvalue
    for t in (t_or, t_rr, t_rd):
        assert t["p_value"][0] == pytest.approx(p_cmh, rel=RTOL_INDEPENDENT)

    # Cochran's Q on stratum log RR with inverse-variance weights, written out here
    theta = np.array([np.log((tb[0, 0] / tb[0].sum()) / (tb[1, 0] / tb[1].sum())) for tb in STRATA])
    var = np.array(
        [1 / tb[0, 0] - 1 / tb[0].sum() + 1 / tb[1, 0] - 1 / tb[1].sum() for tb in STRATA]
    )
    w = 1 / var
    q = (w * (theta - (w * theta).sum() / w.sum()) ** 2).sum()
    assert t_rr["homogeneity_statistic"][0] == pytest.approx(q, rel=RTOL_INDEPENDENT)
    assert t_rr["homogeneity_p_value"][0] == pytest.approx(
        stats.chi2.sf(q, 4), rel=RTOL_INDEPENDENT
    )


def test_single_stratum_mh_equals_crude_or_and_uninformative_strata_dropped() -> None:
    d = _frame_from_tables(STRATA[:1])
    extra = pd.DataFrame(
        {"arm": ["t", "t"], "y": [1, 0], "stratum": [99, 99]}
    )  # no control in stratum 99
    r = compare_proportions(
        pd.concat([d, extra]), "y", group="arm", measure="or", strata="stratum", reference="c"
    )
    t = r.table
    assert t["estimate"][0] == pytest.approx(8 * 16 / (12 * 4))
    assert t["n_strata"][0] == 1 and np.isnan(t["homogeneity_statistic"][0])
    assert any("1 stratum without both groups" in n for n in r.notes)


def test_missing_values_excluded_and_counted() -> None:
    d = two_arm_frame(10, 20, 5, 20)
    d.loc[0, "y"] = np.nan
    d.loc[25, "arm"] = None
    r = compare_proportions(d, "y", group="arm", reference="control")
    assert (r.n_used, r.n_excluded) == (38, 2)
    assert r.table["n"][0] == 19 and r.table["n_reference"][0] == 19


def test_bad_input_errors() -> None:
    d = two_arm_frame(3, 10, 4, 10)
    with pytest.raises(
        InvalidParameterError, match=r"measure must be one of 'rd', 'rr', 'or'; got 'hr'"
    ):
        compare_proportions(d, "y", group="arm", measure="hr")
    with pytest.raises(
        InvalidParameterError, match=r"test must be one of 'auto', 'chi2', 'fisher'; got 'z'"
    ):
        compare_proportions(d, "y", group="arm", test="z")
    with pytest.raises(
        InvalidParameterError, match=r"reference: 'placebo' is not a level of 'arm'"
    ):
        compare_proportions(d, "y", group="arm", reference="placebo")
    with pytest.raises(InvalidParameterError, match=r"group: column 'arm' has only one level"):
        compare_proportions(d[d.arm == "control"], "y", group="arm")
    with pytest.raises(InvalidParameterError, match=r"group: column\(s\) 'grp' not found"):
        compare_proportions(d, "y", group="grp")
    with pytest.raises(
        InvalidParameterError, match=r"strata: the group column 'arm' cannot also be a stratum"
    ):
        compare_proportions(d, "y", group="arm", strata="arm")
    with pytest.raises(
        InvalidParameterError,
        match=r"reference: the mapping has no entry for the group column 'arm'",
    ):
        compare_proportions(d, "y", group="arm", reference={"group": "x"})
    d2 = d.assign(y=d["y"].astype(float))
    d2.loc[d2.arm == "control", "y"] = np.nan
    with pytest.raises(
        InvalidParameterError,
        match=r"reference: group 'control' has no rows with a non-missing 'y'",
    ):
        compare_proportions(d2, "y", group="arm", reference="control")


def test_comparison_plot_has_null_line_and_log_axis_for_ratios() -> None:
    d = pd.concat([two_arm_frame(10, 40, 20, 40, "b", "a"), two_arm_frame(30, 40, 0, 0, "c", "a")])
    r = compare_proportions(d, "y", group="arm", measure="or")
    ax = r.plot()
    assert ax.get_xscale() == "log"
    null_lines = [ln for ln in ax.lines if ln.get_label() == "no difference"]
    assert len(null_lines) == 1 and list(null_lines[0].get_xdata()) == [1.0, 1.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b vs a", "c vs a"]
    ax2 = compare_proportions(d, "y", group="arm", measure="rd").plot()
    assert ax2.get_xscale() == "linear"
    assert [ln for ln in ax2.lines if ln.get_label() == "no difference"][0].get_xdata()[0] == 0.0
    assert ax2.get_xlabel() == "Risk difference (95% CI)"


def test_degenerate_strata_give_nan_ci_with_note_not_a_crash() -> None:
    # every treated row has the event, every control row has none, in both strata
    d = pd.DataFrame({"arm": ["t", "c"] * 10, "y": [1, 0] * 10, "s": [1, 1, 2, 2] * 5})
    r = compare_proportions(d, "y", group="arm", measure="or", strata="s", reference="c")
    t = r.table
    assert np.isnan(t["ci_lower"][0]) and np.isnan(t["homogeneity_statistic"][0])
    assert any("undefined" in n and "no CI is given" in n for n in r.notes)
    # a stratum with no events at all is left out of the Breslow-Day statistic
    tabs = [
        np.array([[8, 12], [4, 16]], float),
        np.array([[5, 5], [3, 9]], float),
        np.array([[0, 10], [0, 10]], float),
    ]
    d2 = _frame_from_tables(tabs)
    t2 = compare_proportions(
        d2, "y", group="arm", measure="or", strata="stratum", reference="c"
    ).table
    bd = StratifiedTable(tabs[:2]).test_equal_odds(adjust=True)
    assert t2["homogeneity_df"][0] == 1
    assert t2["homogeneity_statistic"][0] == pytest.approx(bd.statistic, rel=RTOL_INDEPENDENT)


def test_empty_category_of_group_gives_nan_row_and_no_pvalue() -> None:
    d = two_arm_frame(5, 10, 3, 10)
    d["arm"] = pd.Categorical(d["arm"], categories=["control", "treated", "other"])
    r = compare_proportions(d, "y", group="arm")
    t = r.table
    assert t["comparison"].tolist() == ["treated vs control", "other vs control"]
    assert t.loc[1, "n"] == 0 and np.isnan(t.loc[1, "estimate"]) and np.isnan(t.loc[1, "p_value"])
    assert any("Group 'other' has no usable rows" in n for n in r.notes)


def test_physicians_health_study_agresti() -> None:
    """Aspirin and myocardial infarction (Physicians' Health Study; Agresti, Categorical
    Data Analysis, 2nd ed., Table 2.3): placebo 189/11034 vs aspirin 104/11037.
    Agresti prints the sample OR 1.832 with the Woolf 95% CI (1.44, 2.33) -- (1.440, 2.331)
    to three decimals -- and the relative risk 1.82; Pearson X^2 = 25.014
    (R: prop.test(c(189, 104), c(11034, 11037), correct = FALSE))."""
    d = two_arm_frame(189, 11034, 104, 11037, "placebo", "aspirin")
    t_or = compare_proportions(d, "y", group="arm", measure="or", reference="aspirin").table
    assert t_or["estimate"][0] == pytest.approx(1.832, abs=5e-4)
    assert_allclose(t_or.loc[0, ["ci_lower", "ci_upper"]].astype(float), [1.440, 2.331], atol=5e-4)
    assert stats.chi2.isf(t_or["p_value"][0], 1) == pytest.approx(25.014, abs=5e-4)
    t_rr = compare_proportions(d, "y", group="arm", measure="rr", reference="aspirin").table
    assert t_rr["estimate"][0] == pytest.approx(1.82, abs=5e-3)
