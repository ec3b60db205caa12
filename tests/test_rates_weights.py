"""Counts and weights as input (issue 13): frequency weights equal the expanded data,
sampling weights give robust variances; exact odds ratio with Fisher's test; the
continuity-corrected Cochran-Mantel-Haenszel test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal
from statsmodels.stats.contingency_tables import StratifiedTable

from recoverystats import InvalidParameterError
from recoverystats.rates import compare_proportions, incidence_rate, proportion

#: R prints fisher.test and mantelhaen.test results to 7 (4 for X-squared) significant digits
RTOL_R_PRINTED = 5e-7
#: R fisher.test finds the CI limits with uniroot's default tolerance (~1.22e-4) on psi
R_UNIROOT_TOL = 1.22e-4
#: printed to 4 decimals: half a unit in the last digit
TOL_PRINTED_4DP = 5e-5
#: independent implementations (statsmodels)
RTOL_INDEPENDENT = 1e-6

# Fisher RA (1935). The logic of inductive inference. JRSS 98:39-82: Lange's criminal
# twins (R datasets example in ?fisher.test, "Convictions").
# R: Convictions <- matrix(c(2, 10, 15, 3), nrow = 2,
#        dimnames = list(c("Dizygotic", "Monozygotic"), c("Convicted", "Not convicted")))
#    fisher.test(Convictions)
#    p-value = 0.0005367; 95 percent CI 0.003325764 0.363182271; odds ratio 0.04693661
CONVICTIONS = pd.DataFrame(
    {
        "twins": ["Dizygotic", "Dizygotic", "Monozygotic", "Monozygotic"],
        "convicted": [1, 0, 1, 0],
        "count": [2, 15, 10, 3],
    }
)

# Bickel PJ, Hammel EA, O'Connell JW (1975). Sex bias in graduate admissions: data from
# Berkeley. Science 187:398-404 (R datasets::UCBAdmissions; public-domain counts).
UCB = [  # dept, gender, admitted, rejected
    ("A", "Male", 512, 313), ("A", "Female", 89, 19),
    ("B", "Male", 353, 207), ("B", "Female", 17, 8),
    ("C", "Male", 120, 205), ("C", "Female", 202, 391),
    ("D", "Male", 138, 279), ("D", "Female", 131, 244),
    ("E", "Male", 53, 138), ("E", "Female", 94, 299),
    ("F", "Male", 22, 351), ("F", "Female", 24, 317),
]


def ucb_frame() -> pd.DataFrame:
    rows = []
    for dept, gender, adm, rej in UCB:
        rows.append({"dept": dept, "gender": gender, "admitted": 1, "freq": adm})
        rows.append({"dept": dept, "gender": gender, "admitted": 0, "freq": rej})
    return pd.DataFrame(rows)


def expand(frame: pd.DataFrame, weights: str) -> pd.DataFrame:
    return frame.loc[frame.index.repeat(frame[weights].astype(int))].drop(columns=weights).reset_index(drop=True)


# -- defect 3: Fisher's test pairs with the exact interval ---------------------------------


def test_fisher_test_reports_the_exact_conditional_or_and_interval_convictions() -> None:
    r = compare_proportions(
        expand(CONVICTIONS, "count"), "convicted", group="twins", measure="or",
        reference="Monozygotic", test="fisher",
    )
    t = r.table
    assert t["test"][0] == "Fisher exact"
    assert t["method"][0] == "conditional MLE, exact (Cornfield) CI"
    assert t["p_value"][0] == pytest.approx(0.0005367, rel=1e-4)  # printed to 4 significant digits
    assert t["estimate"][0] == pytest.approx(0.04693661, rel=1e-5)
    assert t["ci_lower"][0] == pytest.approx(0.003325764, abs=R_UNIROOT_TOL)
    assert t["ci_upper"][0] == pytest.approx(0.363182271, abs=R_UNIROOT_TOL)
    # R's limits are uniroot solutions (tolerance 1.22e-4 on psi); ours solve the defining
    # equations P(X <= 2; lo) = ... exactly: P(X >= 2; lo) = P(X <= 2; hi) = 0.025
    from scipy import stats

    support = np.arange(0, 13)  # X = convicted dizygotic twins; margins 17, 13, 12
    w = stats.hypergeom.pmf(support, 30, 12, 17)

    def tail(psi: float, upper: bool) -> float:
        q = w * psi**support
        q /= q.sum()
        return q[support >= 2].sum() if upper else q[support <= 2].sum()

    assert tail(t["ci_lower"][0], upper=True) == pytest.approx(0.025, abs=1e-10)
    assert tail(t["ci_upper"][0], upper=False) == pytest.approx(0.025, abs=1e-10)
    # ci="exact" gives the same with the chi-square test; ci="woolf" keeps Woolf's
    ex = compare_proportions(CONVICTIONS, "convicted", group="twins", measure="or",
                             reference="Monozygotic", ci="exact", weights="count").table
    assert ex["test"][0] == "Pearson chi-square"
    assert ex[["estimate", "ci_lower", "ci_upper"]].values.tolist() == t[["estimate", "ci_lower", "ci_upper"]].values.tolist()
    wo = compare_proportions(CONVICTIONS, "convicted", group="twins", measure="or",
                             reference="Monozygotic", test="fisher", ci="woolf", weights="count")
    assert wo.table["method"][0] == "Woolf logit"
    assert wo.table["estimate"][0] == pytest.approx(2 * 3 / (15 * 10))
    assert any("can disagree" in n for n in wo.notes)


def test_ci_option_checked() -> None:
    with pytest.raises(InvalidParameterError, match=r"ci must be one of 'auto', 'exact', 'woolf'; got 'x'"):
        compare_proportions(CONVICTIONS, "convicted", group="twins", measure="or", ci="x", weights="count")
    with pytest.raises(InvalidParameterError, match=r"ci='exact' applies to unstratified odds ratios only; got measure='rd'"):
        compare_proportions(CONVICTIONS, "convicted", group="twins", ci="exact", weights="count")


# -- CMH with continuity correction ----------------------------------------------------------


def test_cmh_continuity_correction_ucb_admissions() -> None:
    d = ucb_frame()
    # R: mantelhaen.test(UCBAdmissions)
    #   Mantel-Haenszel X-squared = 1.4269, df = 1, p-value = 0.2323
    #   common odds ratio 0.9046968; 95 percent CI 0.7719074 1.0603298
    r = compare_proportions(d, "admitted", group="gender", reference="Female", measure="or",
                            strata="dept", weights="freq", continuity=True)
    t = r.table
    assert t["statistic"][0] == pytest.approx(1.4269, abs=TOL_PRINTED_4DP)
    assert t["p_value"][0] == pytest.approx(0.2323, abs=TOL_PRINTED_4DP)
    assert bool(t["continuity_correction"][0]) is True
    assert t["test"][0] == "Cochran-Mantel-Haenszel"
    assert t["estimate"][0] == pytest.approx(0.9046968, rel=RTOL_R_PRINTED)
    assert_allclose([t["ci_lower"][0], t["ci_upper"][0]], [0.7719074, 1.0603298], rtol=RTOL_R_PRINTED)
    # uncorrected (R correct = FALSE; SAS): statsmodels test_null_odds(correction=False)
    u = compare_proportions(d, "admitted", group="gender", reference="Female", measure="or",
                            strata="dept", weights="freq").table
    tables = [np.array([[adm, rej], [adm2, rej2]]) for (_, _, adm, rej), (_, _, adm2, rej2)
              in zip(UCB[0::2], UCB[1::2], strict=True)]
    ref = StratifiedTable(tables).test_null_odds(correction=False)
    assert u["statistic"][0] == pytest.approx(ref.statistic, rel=RTOL_INDEPENDENT)
    assert u["p_value"][0] == pytest.approx(ref.pvalue, rel=RTOL_INDEPENDENT)
    assert bool(u["continuity_correction"][0]) is False
    refc = StratifiedTable(tables).test_null_odds(correction=True)
    assert t["statistic"][0] == pytest.approx(refc.statistic, rel=RTOL_INDEPENDENT)


def test_yates_correction_of_the_pearson_test() -> None:
    from scipy import stats

    d = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1, 0, 1, 0], "w": [30, 30, 18, 42]})
    t = compare_proportions(d, "y", group="g", weights="w", test="chi2", continuity=True).table
    ref = stats.chi2_contingency(np.array([[18, 42], [30, 30]]), correction=True)
    assert t["p_value"][0] == pytest.approx(ref.pvalue, rel=RTOL_INDEPENDENT)
    assert bool(t["continuity_correction"][0]) is True


# -- frequency weights equal the expanded data ----------------------------------------------------

cell = st.integers(min_value=0, max_value=12)


@st.composite
def stratified_counts(draw: st.DrawFn) -> pd.DataFrame:
    k = draw(st.integers(min_value=1, max_value=3))
    rows = []
    for s in range(k):
        for g in ("ctl", "trt"):
            for y in (0, 1):
                rows.append({"stratum": f"s{s}", "arm": g, "y": y, "count": draw(cell)})
    frame = pd.DataFrame(rows)
    tot = frame.groupby("arm")["count"].sum()
    if (tot == 0).any():  # both arms must exist in the expanded data
        frame.loc[(frame.arm == "ctl") & (frame.y == 0), "count"] += 1
        frame.loc[(frame.arm == "trt") & (frame.y == 1), "count"] += 1
    return frame


def _drop_weight_note(notes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in notes if not n.startswith("Frequency weights from"))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(frame=stratified_counts(), measure=st.sampled_from(["rd", "rr", "or"]),
       test=st.sampled_from(["auto", "chi2", "fisher"]), stratified=st.booleans(),
       continuity=st.booleans())
def test_frequency_weights_equal_expanded_data_compare(frame, measure, test, stratified, continuity) -> None:
    kw = dict(group="arm", reference="ctl", measure=measure, continuity=continuity)
    if stratified:
        kw["strata"] = "stratum"
    else:
        kw["test"] = test
    expanded = expand(frame, "count")
    a = compare_proportions(frame, "y", weights="count", **kw)
    b = compare_proportions(expanded, "y", **kw)
    assert_frame_equal(a.table, b.table, check_exact=True)
    assert (a.n_used, a.n_excluded) == (b.n_used, b.n_excluded)
    assert _drop_weight_note(a.notes) == b.notes


@settings(max_examples=20, deadline=None, derandomize=True)
@given(frame=stratified_counts(), method=st.sampled_from(["wilson", "exact", "jeffreys", "wald"]),
       by=st.sampled_from([None, "arm", ["stratum", "arm"]]))
def test_frequency_weights_equal_expanded_data_proportion(frame, method, by) -> None:
    frame = frame.copy()
    frame.loc[frame.index[::5], "y"] = np.nan  # missing outcomes are excluded and counted alike
    a = proportion(frame, "y", by=by, method=method, weights="count")
    b = proportion(expand(frame, "count"), "y", by=by, method=method)
    assert_frame_equal(a.table, b.table, check_exact=True)
    assert (a.n_used, a.n_excluded) == (b.n_used, b.n_excluded)
    assert _drop_weight_note(a.notes) == b.notes


@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 4), st.integers(0, 400), st.integers(0, 5)),
                     min_size=1, max_size=8), per=st.sampled_from([1.0, 1000.0]))
def test_frequency_weights_equal_expanded_data_incidence(data, per) -> None:
    # person-time in whole days: float sums are exact, so equality is exact
    frame = pd.DataFrame(data, columns=["site", "events", "days", "count"])
    a = incidence_rate(frame, events="events", person_time="days", by="site", per=per, weights="count")
    b = incidence_rate(expand(frame, "count"), events="events", person_time="days", by="site", per=per)
    assert_frame_equal(a.table, b.table, check_exact=True, check_dtype=False)
    assert (a.n_used, a.n_excluded) == (b.n_used, b.n_excluded)
    assert _drop_weight_note(a.notes) == b.notes


def test_frequency_weights_must_be_whole_and_valid() -> None:
    d = CONVICTIONS.assign(count=[2.5, 15, 10, 3])
    with pytest.raises(InvalidParameterError, match=r"frequency weights in 'count' must be whole numbers.*weight_type='sampling'"):
        compare_proportions(d, "convicted", group="twins", weights="count")
    with pytest.raises(InvalidParameterError, match=r"must hold non-negative finite numbers; 1 row hold -1.0"):
        proportion(CONVICTIONS.assign(count=[2, -1, 10, 3]), "convicted", weights="count")
    with pytest.raises(InvalidParameterError, match=r"weight_type must be one of 'frequency', 'sampling'; got 'analytic'"):
        proportion(CONVICTIONS, "convicted", weights="count", weight_type="analytic")
    with pytest.raises(InvalidParameterError, match=r"weights: column 'wt' not found"):
        incidence_rate(CONVICTIONS, events="convicted", person_time="count", weights="wt")


# -- sampling weights: robust variances ---------------------------------------------------------------


def _sampling_frame(seed: int = 13, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["ctl", "trt"], n)
    y = (rng.random(n) < np.where(arm == "trt", 0.35, 0.5)).astype(int)
    return pd.DataFrame({"arm": arm, "y": y, "w": rng.uniform(0.2, 4.0, n),
                         "days": rng.integers(1, 365, n).astype(float), "x": rng.poisson(1.2, n)})


def _glm_hc0(frame: pd.DataFrame, formula_y: str, family, offset=None) -> tuple[np.ndarray, np.ndarray]:
    X = sm.add_constant((frame["arm"] == "trt").astype(float)) if "arm" in formula_y else np.ones((len(frame), 1))
    fit = sm.GLM(frame[formula_y.split(":")[0]], X, family=family, var_weights=frame["w"], offset=offset).fit(cov_type="HC0")
    n = len(frame)
    return np.asarray(fit.params), np.asarray(fit.cov_params()) * n / (n - 1)


def test_sampling_weights_proportion_matches_weighted_glm_sandwich() -> None:
    d = _sampling_frame()
    r = proportion(d, "y", weights="w", weight_type="sampling", method="wald")
    t = r.table
    beta, V = _glm_hc0(d, "y", sm.families.Binomial())
    p = 1 / (1 + np.exp(-beta[0]))
    se = np.sqrt(V[0, 0]) * p * (1 - p)  # delta method back from the logit: exact for an intercept-only model
    assert t["estimate"][0] == pytest.approx(p, rel=RTOL_INDEPENDENT)
    assert t["std_error"][0] == pytest.approx(se, rel=RTOL_INDEPENDENT)
    assert_allclose([t["ci_lower"][0], t["ci_upper"][0]], [p - 1.959963984540054 * se, p + 1.959963984540054 * se],
                    rtol=RTOL_INDEPENDENT)
    assert t["n"][0] == len(d) and t["n_effective"][0] < len(d)


def test_sampling_weights_odds_ratio_matches_weighted_glm_sandwich() -> None:
    d = _sampling_frame()
    r = compare_proportions(d, "y", group="arm", reference="ctl", measure="or",
                            weights="w", weight_type="sampling")
    t = r.table
    beta, V = _glm_hc0(d, "y:arm", sm.families.Binomial())
    assert t["estimate"][0] == pytest.approx(np.exp(beta[1]), rel=RTOL_INDEPENDENT)
    assert t["std_error"][0] == pytest.approx(np.sqrt(V[1, 1]), rel=RTOL_INDEPENDENT)
    assert t["test"][0] == "Wald (robust)"
    rd = compare_proportions(d, "y", group="arm", reference="ctl", weights="w", weight_type="sampling").table
    p1 = np.average(d.y[d.arm == "trt"], weights=d.w[d.arm == "trt"])
    p0 = np.average(d.y[d.arm == "ctl"], weights=d.w[d.arm == "ctl"])
    assert rd["estimate"][0] == pytest.approx(p1 - p0, rel=1e-12)


def test_sampling_weights_incidence_rate_matches_weighted_poisson_sandwich() -> None:
    d = _sampling_frame()
    r = incidence_rate(d, events="x", person_time="days", per=365.0, weights="w", weight_type="sampling")
    t = r.table
    beta, V = _glm_hc0(d, "x", sm.families.Poisson(), offset=np.log(d["days"]))
    rate = np.exp(beta[0])
    assert t["estimate"][0] == pytest.approx(rate * 365, rel=RTOL_INDEPENDENT)
    assert t["std_error"][0] == pytest.approx(rate * np.sqrt(V[0, 0]) * 365, rel=RTOL_INDEPENDENT)
    assert t["ci_lower"][0] == pytest.approx(rate * 365 * np.exp(-1.959963984540054 * np.sqrt(V[0, 0])), rel=RTOL_INDEPENDENT)


def test_sampling_weights_refuse_exact_tests_and_mh() -> None:
    d = _sampling_frame()
    with pytest.raises(InvalidParameterError, match=r"exact \(Fisher\), chi-square and continuity-corrected tests assume counts"):
        compare_proportions(d, "y", group="arm", measure="or", test="fisher", weights="w", weight_type="sampling")
    with pytest.raises(InvalidParameterError, match=r"Mantel-Haenszel pooling .* take frequency weights only"):
        compare_proportions(d.assign(s=d.x > 1), "y", group="arm", strata="s", weights="w", weight_type="sampling")


def _glm_cluster(frame: pd.DataFrame, yname: str, family, *, arm: bool, offset=None, weights: str = "w"):
    X = sm.add_constant((frame["arm"] == "trt").astype(float)) if arm else np.ones((len(frame), 1))
    fit = sm.GLM(frame[yname], X, family=family, var_weights=frame[weights], offset=offset).fit(
        cov_type="cluster", cov_kwds={"groups": frame["site"].to_numpy(), "use_correction": False})
    G = frame["site"].nunique()
    return np.asarray(fit.params), np.asarray(fit.cov_params()) * G / (G - 1)  # survey's G/(G-1)


@pytest.mark.filterwarnings("ignore:cov_type not fully supported with var_weights")
def test_cluster_robust_rates_match_clustered_glm_sandwich() -> None:
    d = _sampling_frame().assign(site=lambda f: np.arange(len(f)) % 23, one=1.0)
    # proportion, weighted and unweighted (cluster= alone means weights of 1)
    for weights in ("w", None):
        r = proportion(d, "y", weights=weights, weight_type="sampling", cluster="site", method="wald").table
        beta, V = _glm_cluster(d, "y", sm.families.Binomial(), arm=False, weights=weights or "one")
        p = 1 / (1 + np.exp(-beta[0]))
        assert r["estimate"][0] == pytest.approx(p, rel=RTOL_INDEPENDENT)
        assert r["std_error"][0] == pytest.approx(np.sqrt(V[0, 0]) * p * (1 - p), rel=RTOL_INDEPENDENT)
    # odds ratio: clusters hold both arms, so the two proportions covary
    t = compare_proportions(d, "y", group="arm", reference="ctl", measure="or", weights="w",
                            weight_type="sampling", cluster="site").table
    beta, V = _glm_cluster(d, "y", sm.families.Binomial(), arm=True)
    assert t["estimate"][0] == pytest.approx(np.exp(beta[1]), rel=RTOL_INDEPENDENT)
    assert t["std_error"][0] == pytest.approx(np.sqrt(V[1, 1]), rel=RTOL_INDEPENDENT)
    # incidence rate
    r = incidence_rate(d, events="x", person_time="days", weights="w", weight_type="sampling", cluster="site").table
    beta, V = _glm_cluster(d, "x", sm.families.Poisson(), arm=False, offset=np.log(d["days"]))
    assert r["std_error"][0] == pytest.approx(np.exp(beta[0]) * np.sqrt(V[0, 0]), rel=RTOL_INDEPENDENT)
    with pytest.raises(InvalidParameterError, match=r"frequency weights \(counts\) have no clusters"):
        proportion(d.assign(k=1), "y", weights="k", cluster="site")
