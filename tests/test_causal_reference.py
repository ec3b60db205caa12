"""Reference values for recoverystats.causal.

* Hernán & Robins, *Causal Inference: What If* (2020), chapter 12 (NHEFS, effect of
  quitting smoking on weight gain), Program 12.2/12.3 and the text of 12.2-12.4.
  NHEFS ships in the ``causaldata`` package (MIT licence; a dev/test dependency).
* VanderWeele & Ding (2017), Annals of Internal Medicine 167:268, worked example.
* statsmodels ``TreatmentEffect`` (ipw, aipw, ra) as an independent implementation of
  the same estimators and their GMM (stacked estimating-equation) standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import recoverystats as rs
from recoverystats.causal import evalue

#: Published numbers printed to 2 decimals (weights) / 1 decimal (effect): half a unit
#: in the last printed digit.
HALF_2DP = 0.005 + 1e-12
HALF_1DP = 0.05 + 1e-12
#: Independent implementations of the same formula.
RTOL_IMPL = 1e-6

# Program 12.2: the book's propensity model (squares of the continuous covariates,
# categorical education/exercise/active).
BOOK_FORMULA = (
    "~ C(sex) + C(race) + age + I(age**2) + C(education) + smokeintensity + I(smokeintensity**2)"
    " + smokeyrs + I(smokeyrs**2) + C(exercise) + C(active) + wt71 + I(wt71**2)"
)


@pytest.fixture(scope="module")
def nhefs() -> pd.DataFrame:
    causaldata = pytest.importorskip("causaldata")
    d = causaldata.nhefs.load_pandas().data
    # the book excludes the 63 people censored (no 1982 weight): 1,566 rows
    return d[d["wt82"].notna()].copy()


def test_nhefs_rows(nhefs):
    assert len(nhefs) == 1566
    assert int(nhefs["qsmk"].sum()) == 403


def test_nhefs_unstabilised_weights(nhefs):
    # What If 12.2: "the estimated IP weights ... range from 1.05 to 16.7, and their mean is 2.00"
    # (Program 12.2 prints mean 2.00, SD 1.47, min 1.05, max 16.70)
    w = rs.balancing_weights(nhefs, exposure="qsmk", formula=BOOK_FORMULA, stabilize=False).weights
    assert_allclose(w.mean(), 2.00, atol=HALF_2DP)
    assert_allclose(w.std(), 1.47, atol=HALF_2DP)
    assert_allclose(w.min(), 1.05, atol=HALF_2DP)
    assert_allclose(w.max(), 16.70, atol=HALF_2DP)


def test_nhefs_stabilised_weights(nhefs):
    # What If 12.3 / Program 12.3: stabilised weights mean 1.00, SD 0.29, range 0.33-4.30
    res = rs.balancing_weights(nhefs, exposure="qsmk", formula=BOOK_FORMULA)
    w = res.weights
    assert_allclose(w.mean(), 1.00, atol=HALF_2DP)
    assert_allclose(w.std(), 0.29, atol=HALF_2DP)
    assert_allclose(w.min(), 0.33, atol=HALF_2DP)
    assert_allclose(w.max(), 4.30, atol=HALF_2DP)
    # the "all" row of the summary is the same distribution
    allrow = res.table.set_index("group").loc["all"]
    assert_allclose([allrow["mean"], allrow["sd"], allrow["max"]], [w.mean(), w.std(), w.max()], rtol=1e-12)
    assert w.index.equals(nhefs.index)


def test_nhefs_ip_weighted_effect_book_interval(nhefs):
    # What If 12.2: IP-weighted difference 3.4 kg (95% CI 2.4 to 4.5), the CI from a
    # robust (GEE) variance that treats the weights as fixed -- which is the weighted
    # difference in means with the weights given (method="gcomp", no covariates).
    bw = rs.balancing_weights(nhefs, exposure="qsmk", formula=BOOK_FORMULA)
    te = rs.treatment_effect(nhefs, outcome="wt82_71", exposure="qsmk", method="gcomp", weights=bw,
                             weight_type="sampling")
    row = te.table.iloc[0]
    assert row["measure"] == "mean_difference"
    assert_allclose(row["estimate"], 3.4, atol=HALF_1DP)
    assert_allclose(row["ci_lower"], 2.4, atol=HALF_1DP)
    assert_allclose(row["ci_upper"], 4.5, atol=HALF_1DP)


def test_nhefs_ipw_point_and_narrower_estimated_ps_interval(nhefs):
    # The IPW estimator itself gives the same 3.4 kg; its sandwich accounts for estimating
    # the propensity score, which (for the ATE) makes the interval narrower than the
    # fixed-weights one (Lunceford & Davidian 2004).
    te = rs.treatment_effect(nhefs, outcome="wt82_71", exposure="qsmk", formula=BOOK_FORMULA, method="ipw")
    row = te.table.iloc[0]
    assert_allclose(row["estimate"], 3.4, atol=HALF_1DP)
    fixed = rs.treatment_effect(nhefs, outcome="wt82_71", exposure="qsmk", method="gcomp",
                                weights=rs.balancing_weights(nhefs, exposure="qsmk", formula=BOOK_FORMULA),
                                weight_type="sampling").table.iloc[0]
    assert_allclose(row["estimate"], fixed["estimate"], rtol=1e-10)  # stabilisation does not move it
    assert row["std_error"] < fixed["std_error"]


def test_evalue_vanderweele_ding_example():
    # VanderWeele & Ding 2017: RR 3.9 (95% CI 1.8 to 8.7) -> E-value 7.26; for the CI 3.0
    e = evalue(3.9, 1.8, 8.7)
    assert_allclose(e.point, 7.26, atol=HALF_2DP)
    assert_allclose(e.ci, 3.0, atol=HALF_2DP)
    assert "7.26" in e.notes[-1] and "3.00" in e.notes[-1]


def test_evalue_protective_and_null_interval():
    # RR < 1 uses 1/RR; the CI E-value uses the upper limit (closer to 1)
    e = evalue(1 / 3.9, 1 / 8.7, 1 / 1.8)
    assert_allclose([e.point, e.ci], [7.26, 3.0], atol=HALF_2DP)
    assert evalue(1.3, 0.9, 1.8).ci == 1.0
    # exact formula
    assert_allclose(evalue(2.0).point, 2 + np.sqrt(2), rtol=1e-12)


def test_evalue_conversions():
    # VanderWeele & Ding 2017 Table: common-outcome OR -> sqrt(OR); HR -> (1-0.5^sqrt(HR))/(1-0.5^sqrt(1/HR))
    rr_or = np.sqrt(4.0)
    assert_allclose(evalue(4.0, measure="or", rare=False).point, rr_or + np.sqrt(rr_or * (rr_or - 1)), rtol=1e-12)
    assert_allclose(evalue(4.0, measure="or", rare=True).point, 4 + np.sqrt(12), rtol=1e-12)
    hr = 2.0
    rr_hr = (1 - 0.5 ** np.sqrt(hr)) / (1 - 0.5 ** np.sqrt(1 / hr))
    assert_allclose(evalue(hr, measure="hr", rare=False).point, rr_hr + np.sqrt(rr_hr * (rr_hr - 1)), rtol=1e-12)
    # standardised mean difference d: RR = exp(0.91 d) (VanderWeele & Ding 2017, as EValue::evalues.MD)
    rr_d = np.exp(0.91 * 0.5)
    assert_allclose(evalue(0.5, measure="smd").point, rr_d + np.sqrt(rr_d * (rr_d - 1)), rtol=1e-12)


# ---------------------------------------------------------------------------
# statsmodels TreatmentEffect
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standardised(nhefs):
    """The book's design with standardised columns.

    statsmodels computes the GMM Jacobian by finite differences, which loses accuracy on
    the raw design (wt71**2 is ~5,000 times larger than the smallest columns): its SEs on
    the raw NHEFS columns are off by up to 40%. On standardised columns its numbers are
    accurate, and the propensity and outcome models (hence our estimates) are unchanged
    by the rescaling.
    """
    import patsy

    X = np.asarray(patsy.dmatrix(BOOK_FORMULA, nhefs))
    Xs = X.copy()
    Xs[:, 1:] = (X[:, 1:] - X[:, 1:].mean(axis=0)) / X[:, 1:].std(axis=0)
    cols = [f"x{j}" for j in range(1, X.shape[1])]
    df = pd.DataFrame(Xs[:, 1:], columns=cols, index=nhefs.index)
    df["qsmk"] = nhefs["qsmk"].to_numpy()
    df["y"] = nhefs["wt82_71"].to_numpy()
    return df, cols, Xs


@pytest.fixture(scope="module")
def statsmodels_te(standardised):
    import statsmodels.api as sm
    from statsmodels.treatment.treatment_effects import TreatmentEffect

    df, cols, Xs = standardised
    T = df["qsmk"].to_numpy().astype(int)
    sel = sm.Logit(T, Xs).fit(disp=0)
    return TreatmentEffect(sm.OLS(df["y"].to_numpy(), Xs), T, results_select=sel)


@pytest.mark.parametrize(
    "method, estimand, sm_call, kw",
    [
        ("ipw", "ATE", "ipw", {}),
        ("ipw", "ATT", "ipw", {"effect_group": 1}),
        # statsmodels' AIPW GMM runs Nelder-Mead over ~60 parameters: ~10 s
        pytest.param("aipw", "ATE", "aipw", {}, marks=pytest.mark.slow),
        ("gcomp", "ATE", "ra", {}),
        ("gcomp", "ATT", "ra", {"effect_group": 1}),
    ],
)
def test_matches_statsmodels_treatment_effect(standardised, statsmodels_te, method, estimand, sm_call, kw):
    # statsmodels: effect[0] = ATE (or ATT), effect[1] = the untreated potential-outcome mean,
    # sd = GMM (HC0) standard errors including the first-step models
    df, cols, _ = standardised
    ref = getattr(statsmodels_te, sm_call)(**kw)
    te = rs.treatment_effect(df, outcome="y", exposure="qsmk", adjust=cols, method=method, estimand=estimand)
    row = te.table.iloc[0]
    assert_allclose(row["estimate"], ref.effect[0], rtol=RTOL_IMPL)
    assert_allclose(row["std_error"], ref.sd[0], rtol=RTOL_IMPL)
    assert_allclose(row["mean_control"], ref.effect[1], rtol=RTOL_IMPL)
    assert_allclose(np.sqrt(te.vcov.loc["mean_control", "mean_control"]), ref.sd[1], rtol=RTOL_IMPL)


def test_raw_and_standardised_designs_agree(nhefs, standardised):
    # our estimates and SEs do not depend on the columns' scale
    df, cols, _ = standardised
    for method in ("ipw", "aipw", "gcomp"):
        a = rs.treatment_effect(nhefs, outcome="wt82_71", exposure="qsmk", formula=BOOK_FORMULA, method=method)
        b = rs.treatment_effect(df, outcome="y", exposure="qsmk", adjust=cols, method=method)
        assert_allclose(a.table[["estimate", "std_error"]].to_numpy(), b.table[["estimate", "std_error"]].to_numpy(),
                        rtol=1e-7)
