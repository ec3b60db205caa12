"""odds_ratios (issue 13): model tests (null log-likelihood, LR and Wald tests, AIC/BIC,
global term tests), .vcov, the Firth headline, Greene's Spector-Mazzeo data, and case
weights (frequency = expanded data; sampling = robust sandwich)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal

from recoverystats import InvalidParameterError
from recoverystats.datasets import load_uis
from recoverystats.errors import SmallSampleWarning
from recoverystats.regression import odds_ratios

#: independent implementation (statsmodels) at machine precision (STYLE.md)
RTOL = 1e-6
#: Greene prints the Spector-Mazzeo estimates to 3 decimals: half a unit in the last digit
PUB_3DP = 5e-4
#: weighted vs expanded fits: the same Newton iterations on different row sums; they agree
#: to the solver's convergence (step < 1e-9 relative), far below any printed digit
RTOL_EXPANDED = 1e-8
#: coefficients that are exactly 0 in theory come out as ~1e-16 in either fit
ATOL_ZERO = 1e-12
#: a failing example is reported as generated: shrinking model fits takes minutes
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@pytest.fixture(scope="module")
def spector() -> pd.DataFrame:
    return sm.datasets.spector.load_pandas().data


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    d = load_uis().copy()
    d["DFREE"] = (d["TIME"] >= 365).astype(int)
    return d


# -- Greene's Spector-Mazzeo model: ML on request, Firth announced ------------------------------


def test_spector_mle_reproduces_greene(spector) -> None:
    # Greene WH (2003). Econometric Analysis, 5th ed., Table 21.1 (logit column), from
    # Spector LC, Mazzeo M (1980) J Econ Educ 11:37-44: 32 students, 11 grade improvements.
    # Coefficients (SE): constant -13.021 (4.931), GPA 2.826 (1.263), TUCE 0.095 (0.142),
    # PSI 2.379 (1.065); log-likelihood -12.890, restricted -20.592.
    r = odds_ratios(spector, "GRADE", exposure="PSI", adjust=["GPA", "TUCE"], method="mle")
    t = r.table.set_index("term")
    assert_allclose(t.loc[["Intercept", "GPA", "TUCE", "PSI"], "log_odds"], [-13.021, 2.826, 0.095, 2.379], atol=PUB_3DP)
    assert_allclose(t.loc[["Intercept", "GPA", "TUCE", "PSI"], "std_error"], [4.931, 1.263, 0.142, 1.065], atol=PUB_3DP)
    assert_allclose([r.loglik, r.loglik_null], [-12.890, -20.592], atol=PUB_3DP)
    assert r.headline == "" and not repr(r).startswith("Firth")


def test_spector_auto_fits_firth_and_says_so_first(spector) -> None:
    r = odds_ratios(spector, "GRADE", exposure="PSI", adjust=["GPA", "TUCE"])
    assert r.method.startswith("Firth")
    assert r.headline == "Firth (events per variable 3.7 < 5): set method='mle' for ML"
    assert repr(r).splitlines()[0] == r.headline
    html = r._repr_html_()
    assert html.startswith('<div class="rs-result"><p class="rs-headline"><strong>Firth (events per variable 3.7 &lt; 5)')
    assert html.index("rs-headline") < html.index("<table")
    assert r.to_dict()["headline"] == r.headline
    # explicit Firth is what was asked for: no headline
    assert odds_ratios(spector, "GRADE", adjust=["GPA", "TUCE", "PSI"], method="firth").headline == ""


def test_model_tests_aic_bic_vcov_match_statsmodels(spector, uis) -> None:
    r = odds_ratios(spector, "GRADE", adjust=["GPA", "TUCE", "PSI"], method="mle")
    ref = sm.Logit(spector["GRADE"], sm.add_constant(spector[["GPA", "TUCE", "PSI"]])).fit(disp=0)
    mt = r.model_tests.set_index("test")
    assert list(mt.index) == ["likelihood ratio", "wald"]
    assert_allclose(mt.loc["likelihood ratio", ["statistic", "p_value"]].astype(float), [ref.llr, ref.llr_pvalue], rtol=RTOL)
    assert mt.loc["likelihood ratio", "df"] == 3 and not mt["robust"].any()
    assert_allclose([r.loglik_null, r.aic, r.bic], [ref.llnull, ref.aic, ref.bic], rtol=RTOL)
    w = ref.wald_test("GPA = 0, TUCE = 0, PSI = 0", scalar=True)
    assert_allclose(mt.loc["wald", "statistic"], w.statistic, rtol=RTOL)
    V = r.vcov
    assert list(V.index) == list(r.table["term"]) == list(V.columns)
    names = {"GPA": "GPA", "TUCE": "TUCE", "PSI": "PSI", "Intercept": "const"}
    assert_allclose(V.loc[list(names), list(names)].to_numpy(),
                    ref.cov_params().loc[list(names.values()), list(names.values())].to_numpy(), rtol=RTOL)
    # UIS: the global LR test of the 3-level IV term equals R anova(reduced, full, test="LRT")
    f = "DFREE ~ TREAT + AGE + BECK + C(IV) + NDT + RACE + SITE"
    res = odds_ratios(uis, formula=f, exposure="TREAT")
    full, red = smf.logit(f, uis).fit(disp=0), smf.logit(f.replace(" + C(IV)", ""), uis).fit(disp=0)
    tt = res.term_tests.set_index("term")
    assert_allclose(tt.loc["IV", "statistic"], 2 * (full.llf - red.llf), rtol=RTOL)
    mt = res.model_tests.set_index("test")
    assert_allclose(mt.loc["likelihood ratio", "statistic"], full.llr, rtol=RTOL)
    assert mt.loc["likelihood ratio", "df"] == full.df_model == 8
    assert_allclose([res.loglik_null, res.aic, res.bic], [full.llnull, full.aic, full.bic], rtol=RTOL)


def test_clustered_model_wald_keeps_its_name_and_says_robust(uis) -> None:
    d = uis.assign(block=uis["ID"] % 45)  # 45 pseudo-clusters
    r = odds_ratios(d, "DFREE", exposure="TREAT", adjust=["AGE", "BECK"], cluster="block")
    mt = r.model_tests.set_index("test")
    assert list(mt.index) == ["likelihood ratio", "wald"]
    assert bool(mt.loc["wald", "robust"]) and not bool(mt.loc["likelihood ratio", "robust"])
    # the Wald statistic uses the cluster-robust covariance exposed as .vcov
    V = r.vcov.loc[["TREAT", "AGE", "BECK"], ["TREAT", "AGE", "BECK"]].to_numpy()
    b = r.table.set_index("term").loc[["TREAT", "AGE", "BECK"], "log_odds"].to_numpy()
    assert_allclose(mt.loc["wald", "statistic"], b @ np.linalg.solve(V, b), rtol=1e-10)
    assert_allclose(np.sqrt(np.diag(r.vcov)), r.table["std_error"], rtol=1e-12)
    # 2 sites: a rank-1 robust covariance cannot test 3 coefficients jointly (NaN, not 1e16)
    with pytest.warns(SmallSampleWarning):
        r2 = odds_ratios(uis, "DFREE", exposure="TREAT", adjust=["AGE", "BECK"], cluster="SITE")
    assert np.isnan(r2.model_tests.set_index("test").loc["wald", "statistic"])


# -- frequency weights: the fit on the expanded data ------------------------------------------------


@st.composite
def patterns(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for g in ("comparison", "mentoring"):
        for risk in ("low", "moderate", "high"):
            for y in (0, 1):
                rows.append({"group": g, "risk": risk, "site": f"s{len(rows) % 3}",
                             "y": y, "count": draw(st.integers(1, 12))})
    return pd.DataFrame(rows)


def _expand(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame.index.repeat(frame["count"])].drop(columns="count").reset_index(drop=True)


@settings(max_examples=10, deadline=None, derandomize=True, phases=NO_SHRINK)
@given(frame=patterns(), method=st.sampled_from(["mle", "firth"]), cluster=st.sampled_from([None, "site"]))
def test_frequency_weights_equal_the_expanded_fit(frame, method, cluster) -> None:
    frame = frame.astype({"risk": object})
    frame.loc[0, "risk"] = None  # one missing covariate pattern: excluded, counted by weight
    kw = dict(exposure="group", adjust=["risk"], method=method, cluster=cluster, missing="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)  # 3 clusters: CR1 warns, alike for both
        a = odds_ratios(frame, "y", weights="count", **kw)
        b = odds_ratios(_expand(frame), "y", **kw)
    num = ["log_odds", "std_error", "estimate", "ci_lower", "ci_upper", "p_value", "statistic", "term_p_value"]
    assert_frame_equal(a.table.drop(columns=num), b.table.drop(columns=num))  # terms, n, events: exact
    assert_allclose(a.table[num].to_numpy(float), b.table[num].to_numpy(float), rtol=RTOL_EXPANDED, atol=ATOL_ZERO)
    assert (a.n_used, a.n_events, a.n_excluded) == (b.n_used, b.n_events, b.n_excluded)
    assert_frame_equal(a.inverted().table[["term", "n", "events"]], b.inverted().table[["term", "n", "events"]])
    assert_allclose(a.vcov.to_numpy(), b.vcov.to_numpy(), rtol=RTOL_EXPANDED, atol=ATOL_ZERO)
    assert_allclose(a.model_tests[["statistic", "p_value"]].to_numpy(float),
                    b.model_tests[["statistic", "p_value"]].to_numpy(float), rtol=RTOL_EXPANDED, atol=ATOL_ZERO)
    assert_allclose([a.loglik, a.loglik_null, a.aic, a.bic], [b.loglik, b.loglik_null, b.aic, b.bic],
                    rtol=RTOL_EXPANDED, atol=ATOL_ZERO)
    ta, tb = a.term_tests, b.term_tests
    assert_allclose(ta["statistic"].to_numpy(float), tb["statistic"].to_numpy(float), rtol=RTOL_EXPANDED, atol=ATOL_ZERO)
    rd_a, rd_b = a.risk_difference().table, b.risk_difference().table
    assert_allclose(rd_a[["estimate", "std_error"]].to_numpy(float), rd_b[["estimate", "std_error"]].to_numpy(float),
                    rtol=RTOL_EXPANDED, atol=ATOL_ZERO)


# -- sampling weights: robust sandwich ------------------------------------------------------------------------


def _sampling_frame(seed: int = 7, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"group": rng.choice(["comparison", "mentoring"], n), "age": rng.normal(35, 9, n).round(),
                      "risk": rng.choice(["low", "moderate", "high"], n), "site": rng.integers(0, 30, n),
                      "w": rng.uniform(0.3, 5.0, n)})
    lp = -0.6 + 0.5 * (d.group == "mentoring") - 0.02 * (d.age - 35) + 0.4 * (d.risk == "high")
    d["y"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return d


def test_sampling_weights_sandwich_matches_statsmodels_glm() -> None:
    d = _sampling_frame()
    r = odds_ratios(d, "y", exposure="group", adjust=["age", "risk"], weights="w", weight_type="sampling")
    f = "y ~ C(group, Treatment('comparison')) + age + C(risk, Treatment('high'))"
    X = pd.get_dummies(d[["group", "risk"]], drop_first=False).astype(float)
    X = pd.DataFrame({"Intercept": 1.0, "group[mentoring]": X["group_mentoring"], "age": d["age"],
                      "risk[low]": X["risk_low"], "risk[moderate]": X["risk_moderate"]})
    del f
    ref = sm.GLM(d["y"], X, family=sm.families.Binomial(), var_weights=d["w"]).fit(cov_type="HC0")
    n = len(d)
    t = r.table.set_index("term").loc[list(X.columns)]
    assert list(r.table["variable"].dropna().unique()) == ["group", "age", "risk"]
    assert_allclose(t["log_odds"], ref.params, rtol=RTOL)
    V = ref.cov_params().to_numpy() * n / (n - 1)  # Stata [pw] / survey::svyglm factor
    assert_allclose(t["std_error"], np.sqrt(np.diag(V)), rtol=RTOL)
    assert_allclose(r.vcov.loc[list(X.columns), list(X.columns)].to_numpy(), V, rtol=RTOL)
    mt = r.model_tests
    assert list(mt["test"]) == ["wald"] and bool(mt["robust"][0])
    assert np.isnan(r.aic) and np.isnan(r.bic)
    tt = r.term_tests.set_index("term")
    cols = ["risk[low]", "risk[moderate]"]
    b = ref.params[cols].to_numpy()
    Vr = V[np.ix_([3, 4], [3, 4])]
    assert_allclose(tt.loc["risk", "statistic"], b @ np.linalg.solve(Vr, b), rtol=RTOL)
    # clustered: the CR1 formula on the weighted scores = statsmodels GLM cluster covariance
    rc = odds_ratios(d, "y", exposure="group", adjust=["age", "risk"], weights="w", weight_type="sampling",
                     cluster="site")
    refc = sm.GLM(d["y"], X, family=sm.families.Binomial(), var_weights=d["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": d["site"]})
    tc = rc.table.set_index("term").loc[list(X.columns)]
    assert_allclose(tc["std_error"], refc.bse, rtol=RTOL)


def test_weight_errors(spector) -> None:
    d = spector.assign(w=1.5)
    with pytest.raises(InvalidParameterError, match=r"frequency weights in 'w' must be whole numbers"):
        odds_ratios(d, "GRADE", adjust=["GPA"], weights="w")
    with pytest.raises(InvalidParameterError, match=r"method='firth' takes frequency weights only"):
        odds_ratios(d, "GRADE", adjust=["GPA"], weights="w", weight_type="sampling", method="firth")
    with pytest.raises(InvalidParameterError, match=r"cluster_correction='CR2' is not available with weights"):
        odds_ratios(d.assign(c=np.arange(len(d)) % 4), "GRADE", adjust=["GPA"], weights="w",
                    weight_type="sampling", cluster="c", cluster_correction="CR2")
