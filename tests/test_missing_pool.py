"""Rubin's rules: pool_estimates (formulas, mice reference), D1, pool() and the dispatch of
every analysis function on an ImputedData."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import recoverystats as rs
from recoverystats.errors import InvalidParameterError
from recoverystats.missing.pooling import barnard_rubin_df, d1_test

#: Half a unit in the last printed digit of mice's output (7 significant digits).
PRINTED = 5e-7
#: Independent implementations of the same formula agree to rounding.
RTOL = 1e-10


# ---------------------------------------------------------------------------
# mice reference: nhanes, lm(age ~ bmi), m = 5 (the mice repository's pooling example):
# ubar 0.001629126, b 0.0003996515, dfcom 23 -> t 0.002108708, df 13.53213,
# riv 0.2943799, lambda 0.2274293, fmi 0.3208922.
# Only ubar, b and dfcom are printed, so the m = 5 inputs are constructed to have exactly
# that mean variance and between-imputation variance.
# ---------------------------------------------------------------------------
def _nhanes_inputs() -> tuple[np.ndarray, np.ndarray]:
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    z = z / z.std(ddof=1)  # sample variance exactly 1
    q = 0.07 + np.sqrt(0.0003996515) * z
    u = np.full(5, 0.001629126)
    return q, u


def test_mice_nhanes_reference() -> None:
    q, u = _nhanes_inputs()
    t = rs.pool_estimates(q, u, dfcom=23).table.iloc[0]
    assert_allclose(t["ubar"], 0.001629126, rtol=PRINTED)
    assert_allclose(t["b"], 0.0003996515, rtol=PRINTED)
    assert_allclose(t["total_variance"], 0.002108708, rtol=PRINTED)
    assert_allclose(t["df"], 13.53213, rtol=PRINTED)
    assert_allclose(t["riv"], 0.2943799, rtol=PRINTED)
    assert_allclose(t["lambda"], 0.2274293, rtol=PRINTED)
    assert_allclose(t["fmi"], 0.3208922, rtol=PRINTED)
    assert_allclose(t["estimate"], 0.07, rtol=RTOL)
    # the interval and test use t(df)
    crit = stats.t.ppf(0.975, t["df"])
    assert_allclose(t["ci_lower"], 0.07 - crit * np.sqrt(t["total_variance"]), rtol=RTOL)
    assert_allclose(t["p_value"], 2 * stats.t.sf(0.07 / np.sqrt(t["total_variance"]), t["df"]), rtol=1e-8)
    assert t["m"] == 5 and t["dfcom"] == 23


def test_barnard_rubin_matches_mice_tests() -> None:
    # mice tests/testthat/test-barnard.rubin.R: the new form equals the old one
    # (dfold * dfobs / (dfold + dfobs)) for lambda >= 1e-4, and (m - 1)/lambda^2 with dfcom = Inf
    m, t, dfcom = 10, 1.0, 100.0
    lam = np.linspace(1, 1e-4, 100)
    b = lam * t / (1 + 1 / m)
    dfold = (m - 1) / lam**2
    dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        old = np.where(lam >= 1, 0.0, dfold * dfobs / (dfold + dfobs))
    assert_allclose(barnard_rubin_df(m, b, np.full(100, t), dfcom), old, rtol=1e-9, atol=1e-12)
    assert_allclose(barnard_rubin_df(m, b, np.full(100, t), np.inf), dfold, rtol=RTOL)
    # the limit as lambda -> 0 is dfcom (dfcom + 1) / (dfcom + 3)
    assert_allclose(barnard_rubin_df(m, np.array([0.0]), np.array([1.0]), dfcom), dfcom * (dfcom + 1) / (dfcom + 3))


def test_covariance_input_gives_same_marginals_and_full_vcov() -> None:
    rng = np.random.default_rng(1)
    m, k = 6, 3
    q = rng.normal(size=(m, k))
    a = rng.normal(size=(m, k, k))
    covs = np.einsum("mij,mkj->mik", a, a) + np.eye(k)
    by_var = rs.pool_estimates(q, np.stack([np.diag(c) for c in covs]), dfcom=40)
    by_cov = rs.pool_estimates(q, covs, dfcom=40, terms=["a", "b", "c"])
    assert_allclose(by_cov.table["std_error"], by_var.table["std_error"], rtol=RTOL)
    expected = covs.mean(axis=0) + (1 + 1 / m) * np.cov(q, rowvar=False)
    assert_allclose(by_cov.vcov.to_numpy(), expected, rtol=RTOL)
    assert list(by_cov.vcov.columns) == ["a", "b", "c"]
    # a list of DataFrames (as .vcov) and a DataFrame of estimates name the terms
    frames = [pd.DataFrame(c, index=list("xyz"), columns=list("xyz")) for c in covs]
    r = rs.pool_estimates(pd.DataFrame(q, columns=list("xyz")), frames)
    assert list(r.table["term"]) == ["x", "y", "z"]
    assert np.isinf(r.dfcom)


def _d1_fimd(q: np.ndarray, u: np.ndarray) -> tuple[float, float, float]:
    """D1 and its Li et al. (1991) df written out from van Buuren (2018), FIMD §5.3.2
    (the D1 statistic and its df), with its own linear algebra."""
    m, k = q.shape
    qbar = q.sum(axis=0) / m
    ubar = u.sum(axis=0) / m
    dev = q - qbar
    bmat = dev.T @ dev / (m - 1)
    rm = (1 + 1 / m) * np.trace(np.linalg.solve(ubar, bmat)) / k
    dstat = float(qbar @ np.linalg.solve(ubar, qbar)) / (k * (1 + rm))
    tt = k * (m - 1)
    nu = 4 + (tt - 4) * (1 + (1 - 2 / tt) / rm) ** 2 if tt > 4 else tt * (1 + 1 / k) * (1 + 1 / rm) ** 2 / 2
    return dstat, nu, rm


def _reiter_df(q: np.ndarray, u: np.ndarray, dfcom: float) -> float:
    """Reiter (2007) small-sample denominator df, Eqs. 1-2 (as mitml's ``df.com``)."""
    m, k = q.shape
    rm = _d1_fimd(q, u)[2]
    t = k * (m - 1)
    a = rm * t / (t - 2)
    vstar = (dfcom + 1) / (dfcom + 3) * dfcom
    c0, c1, c2 = 1 / (t - 4), vstar - 2 * (1 + a), vstar - 4 * (1 + a)
    z = (1 / c2 + c0 * a**2 * c1 / ((1 + a) ** 2 * c2) + c0 * (8 * a**2 * c1 / ((1 + a) * c2**2)
         + 4 * a**2 / ((1 + a) * c2)) + c0 * (4 * a**2 / (c2 * c1) + 16 * a**2 * c1 / c2**3)
         + c0 * 8 * a**2 / c2**2)
    return 4 + 1 / z


@pytest.mark.parametrize("m,k", [(10, 3), (5, 2), (3, 1)])
def test_d1_against_independent_implementation(m: int, k: int) -> None:
    rng = np.random.default_rng(m * 10 + k)
    q = 0.3 + rng.normal(scale=0.2, size=(m, k))
    a = rng.normal(scale=0.2, size=(m, k, k))
    u = np.einsum("mij,mkj->mik", a, a) + 0.05 * np.eye(k)
    res = d1_test(q, u)
    stat, nu, rm = _d1_fimd(q, u)
    assert_allclose(res["statistic"], stat, rtol=RTOL)
    assert_allclose(res["df2"], nu, rtol=RTOL)
    assert_allclose(res["riv"], rm, rtol=RTOL)
    assert res["df1"] == k
    assert_allclose(res["p_value"], stats.f.sf(stat, k, nu), rtol=1e-9)
    if k * (m - 1) > 4:
        small = d1_test(q, u, dfcom=30)
        assert_allclose(small["df2"], _reiter_df(q, u, 30), rtol=RTOL)
        assert small["df2"] < res["df2"] or not np.isfinite(res["df2"])


def test_d1_one_parameter_is_the_squared_pooled_t() -> None:
    rng = np.random.default_rng(3)
    q = rng.normal(1.0, 0.3, size=(8, 1))
    u = rng.uniform(0.05, 0.1, size=(8, 1, 1))
    pooled = rs.pool_estimates(q, u)
    res = pooled.wald_test()
    assert_allclose(res["statistic"].iloc[0], pooled.table["statistic"].iloc[0] ** 2, rtol=RTOL)


def test_pool_estimates_bad_input() -> None:
    with pytest.raises(InvalidParameterError, match="at least 2 imputed"):
        rs.pool_estimates([1.0], [0.1])
    with pytest.raises(InvalidParameterError, match=r"variances must have shape \(m, k\) = \(3, 1\)"):
        rs.pool_estimates([1.0, 2.0, 3.0], [0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="finite"):
        rs.pool_estimates([1.0, np.inf], [0.1, 0.1])
    with pytest.raises(InvalidParameterError, match="dfcom must be positive"):
        rs.pool_estimates([1.0, 2.0], [0.1, 0.1], dfcom=0)
    with pytest.raises(InvalidParameterError, match="covariance matrices"):
        rs.pool_estimates([1.0, 2.0], [0.1, 0.1]).wald_test()
    with pytest.raises(InvalidParameterError, match="unknown terms"):
        rs.pool_estimates(np.ones((2, 2)) + np.eye(2), np.stack([np.eye(2)] * 2)).wald_test(["zz"])


def test_pooled_result_contract() -> None:
    q, u = _nhanes_inputs()
    r = rs.pool_estimates(q, u, dfcom=23, terms=["bmi"])
    assert list(r.table.columns[:5]) == ["term", "estimate", "ci_lower", "ci_upper", "p_value"]
    assert "FMI" in r._repr_html_() and "RIV" in r.to_markdown()  # display labels of the MI columns
    d = r.to_dict()
    assert d["m"] == 5 and d["table"][0]["term"] == "bmi"
    import matplotlib

    matplotlib.use("Agg")
    ax = r.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bmi"]


# ---------------------------------------------------------------------------
# pool() and the dispatch: pooled results equal pool_estimates of the per-data-set fits
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imputed() -> tuple[pd.DataFrame, rs.ImputedData]:
    rng = np.random.default_rng(11)
    n = 600
    group = rng.choice(["comparison", "peer_mentoring"], n)
    site = rng.choice(["a", "b", "c"], n)
    age = rng.normal(35, 10, n)
    risk = rng.choice(["low", "high", "very_high"], n, p=[0.4, 0.4, 0.2])
    lp = -1.0 - 0.5 * (group == "peer_mentoring") + 0.6 * (risk == "high") + 1.1 * (risk == "very_high") \
        - 0.02 * (age - 35)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(float)
    time = rng.exponential(365 * np.exp(-lp / 2))
    event = (time < 400).astype(int)
    time = np.minimum(time, 400)
    d = pd.DataFrame({"group": group, "site": site, "age": age, "risk_level": risk, "y": y,
                      "time": time, "event": event})
    d.loc[rng.random(n) < 0.2, "age"] = np.nan
    d.loc[rng.random(n) < np.where(d["risk_level"] == "very_high", 0.4, 0.15), "y"] = np.nan
    d.loc[rng.random(n) < 0.1, "risk_level"] = np.nan
    d["note"] = "x"  # a complete text column carried along
    return d, rs.impute(d, m=5, seed=7, max_iter=5)


def test_odds_ratios_pooled_equals_pool_estimates(imputed) -> None:
    _d, imp = imputed
    kw = dict(exposure="group", adjust=["age", "risk_level", "site"])
    pooled = rs.odds_ratios(imp, "y", **kw)
    fits = [rs.odds_ratios(d, "y", **kw) for d in imp]
    assert type(pooled) is type(fits[0])
    terms = list(fits[0].table["term"])
    q = np.stack([f.table["log_odds"].to_numpy() for f in fits])
    v = np.stack([f.vcov.loc[terms, terms].to_numpy() for f in fits])
    ref = rs.pool_estimates(q, v, dfcom=fits[0].n_used - len(terms), terms=terms).table
    t = pooled.table
    assert_allclose(t["log_odds"], ref["estimate"], rtol=RTOL)
    assert_allclose(t["std_error"], ref["std_error"], rtol=RTOL)
    assert_allclose(t["df"], ref["df"], rtol=RTOL)
    assert_allclose(t["fmi"], ref["fmi"], rtol=RTOL)
    assert_allclose(np.log(t["ci_lower"]), ref["ci_lower"], rtol=1e-9)
    assert_allclose(t["p_value"], ref["p_value"], rtol=1e-8)
    assert (t["b"] > 0).all()  # the imputations differ
    # pool() on the list gives the same numbers (the one pooling path)
    again = rs.pool(fits)
    assert_allclose(again.table["std_error"], t["std_error"], rtol=RTOL)
    # D1 for the multi-level terms, against the independent implementation
    idx = [terms.index(x) for x in terms if x.startswith("risk_level[")]
    stat, nu, _ = _d1_fimd(q[:, idx], v[:, idx][:, :, idx])
    row = pooled.term_tests.set_index("term").loc["risk_level"]
    assert_allclose(row["statistic"], stat, rtol=RTOL)
    assert_allclose(row["df_denominator"], _reiter_df(q[:, idx], v[:, idx][:, :, idx], fits[0].n_used - len(terms)),
                    rtol=RTOL)
    assert nu > 0
    assert any("multiple imputation: 5 data sets" in n for n in pooled.notes)
    assert pooled.vcov.shape == (len(terms), len(terms))


def test_risk_difference_pools_the_m_fits(imputed) -> None:
    _d, imp = imputed
    kw = dict(exposure="group", adjust=["age", "risk_level"])
    pooled = rs.odds_ratios(imp, "y", **kw).risk_difference()
    fits = [rs.odds_ratios(d, "y", **kw) for d in imp]
    each = [f.risk_difference() for f in fits]
    q = np.array([e.table["estimate"].iloc[0] for e in each])
    u = np.array([e.table["std_error"].iloc[0] ** 2 for e in each])
    # complete-data df of the logistic model (n - p), as for its coefficients
    ref = rs.pool_estimates(q, u, dfcom=fits[0].n_used - len(fits[0].table)).table.iloc[0]
    row = pooled.table.iloc[0]
    assert_allclose(row["estimate"], ref["estimate"], rtol=RTOL)
    assert_allclose(row["ci_upper"], ref["ci_upper"], rtol=1e-9)
    assert_allclose(row["fmi"], ref["fmi"], rtol=RTOL)
    rr = rs.odds_ratios(imp, "y", **kw).risk_ratio()
    each_rr = [rs.odds_ratios(d, "y", **kw).risk_ratio() for d in imp]
    assert_allclose(np.log(rr.table["estimate"].iloc[0]),
                    np.mean([np.log(e.table["estimate"].iloc[0]) for e in each_rr]), rtol=RTOL)
    with pytest.raises(InvalidParameterError, match="per data set"):
        rs.odds_ratios(imp, "y", **kw).diagnostics()


def test_proportion_pooled_on_logit_scale(imputed) -> None:
    _d, imp = imputed
    pooled = rs.proportion(imp, "y", by="group")
    each = [rs.proportion(d, "y", by="group") for d in imp]
    for i in range(2):
        p = np.array([e.table["estimate"].iloc[i] for e in each])
        n = np.array([e.table["n"].iloc[i] for e in each])
        q = np.log(p / (1 - p))
        u = 1 / (n * p * (1 - p))  # var of logit p = var(p) / (p(1-p))^2
        ref = rs.pool_estimates(q, u, dfcom=n.mean() - 1).table.iloc[0]
        row = pooled.table.iloc[i]
        assert_allclose(row["estimate"], 1 / (1 + np.exp(-ref["estimate"])), rtol=RTOL)
        assert_allclose(row["ci_lower"], 1 / (1 + np.exp(-ref["ci_lower"])), rtol=1e-9)
        assert_allclose(row["fmi"], ref["fmi"], rtol=1e-9)
    assert any("logit scale" in n for n in pooled.notes)


def test_compare_proportions_and_hazard_ratios_pooled(imputed) -> None:
    _d, imp = imputed
    rd = rs.compare_proportions(imp, "y", group="group", measure="rd")
    each = [rs.compare_proportions(d, "y", group="group", measure="rd") for d in imp]
    q = np.array([e.table["estimate"].iloc[0] for e in each])
    u = np.array([e.table["std_error"].iloc[0] ** 2 for e in each])
    assert_allclose(rd.table["estimate"].iloc[0], q.mean(), rtol=RTOL)
    n = np.mean([e.table["n"].iloc[0] + e.table["n_reference"].iloc[0] for e in each])
    assert_allclose(rd.table["ci_upper"].iloc[0],
                    rs.pool_estimates(q, u, dfcom=n - 2).table["ci_upper"].iloc[0], rtol=1e-9)
    hr = rs.hazard_ratios(imp, time="time", event="event", exposure="group", adjust=["age", "risk_level"])
    fits = [rs.hazard_ratios(d, time="time", event="event", exposure="group", adjust=["age", "risk_level"])
            for d in imp]
    terms = list(fits[0].table["term"])
    q = np.stack([f.table["log_hazard"].to_numpy() for f in fits])
    v = np.stack([f.vcov.loc[terms, terms].to_numpy() for f in fits])
    ref = rs.pool_estimates(q, v, dfcom=np.mean([f.n_events for f in fits]) - len(terms)).table
    assert_allclose(hr.table["std_error"], ref["std_error"], rtol=RTOL)
    assert_allclose(hr.table["df"], ref["df"], rtol=RTOL)


def test_survival_pooled_on_cloglog_scale(imputed) -> None:
    d0, _ = imputed
    # make the time partly missing so that S(t) differs between the data sets
    d = d0.copy()
    rng = np.random.default_rng(2)
    d.loc[rng.random(len(d)) < 0.15, "time"] = np.nan
    imp = rs.impute(d, m=4, seed=3, max_iter=3)
    res = rs.survival_curve(imp, time="time", event="event", by="group", times=[100, 200])
    each = [rs.survival_curve(x, time="time", event="event", by="group").at([100, 200]) for x in imp]
    s = np.stack([e["estimate"].to_numpy() for e in each])
    se = np.stack([e["std_error"].to_numpy() for e in each])
    q = np.log(-np.log(s))
    u = (se / (s * np.log(s))) ** 2
    t = res.table
    for j in range(4):
        ref = rs.pool_estimates(q[:, j], u[:, j], dfcom=None).table.iloc[0]
        assert_allclose(np.log(-np.log(t["estimate"].iloc[j])), ref["estimate"], rtol=RTOL)
        assert_allclose(t["riv"].iloc[j], ref["riv"], rtol=RTOL)
        # CI: upper bound of S from the lower bound of log(-log S)
        assert t["ci_lower"].iloc[j] < t["estimate"].iloc[j] < t["ci_upper"].iloc[j]
    assert t["n_at_risk"].isna().all()  # no pooled at-risk counts
    assert any("complementary log-log" in n for n in res.notes)
    assert_allclose(res.at([100])["estimate"].to_numpy(), t.loc[t["time"] == 100, "estimate"].to_numpy(), rtol=RTOL)
    import matplotlib

    matplotlib.use("Agg")
    ax = res.plot()
    assert len(ax.get_lines()) >= 2


def test_dispatch_errors(imputed) -> None:
    d, imp = imputed
    with pytest.raises(InvalidParameterError, match="'nope' is not in the imputed data"):
        rs.odds_ratios(imp, "y", exposure="group", adjust=["nope"])
    with pytest.raises(InvalidParameterError, match="needs times="):
        rs.survival_curve(imp, time="time", event="event")
    with pytest.raises(InvalidParameterError, match="times= is for an ImputedData"):
        rs.survival_curve(d.dropna(), time="time", event="event", times=[10])
    # a column with missing values that was left out of the imputation model
    d2 = d.copy()
    d2["extra"] = np.where(np.arange(len(d2)) % 7 == 0, np.nan, 1.0)
    imp2 = rs.impute(d2, m=2, seed=1, max_iter=1, columns=["group", "y", "age"])
    with pytest.raises(InvalidParameterError, match="'extra' has .* missing values and was left out"):
        rs.odds_ratios(imp2, "y", exposure="group", adjust=["extra"])
    with pytest.raises(InvalidParameterError, match="at least 2"):
        rs.pool([rs.proportion(imp.complete(0), "y")])
    with pytest.raises(InvalidParameterError, match="of one type"):
        rs.pool([rs.proportion(imp.complete(0), "y"), rs.compare_proportions(imp.complete(1), "y", group="group")])


def test_warnings_from_the_m_fits_are_shown_once_at_the_callers_line() -> None:
    import warnings

    rng = np.random.default_rng(0)
    n = 300
    d = pd.DataFrame({"g": rng.choice(["a", "b"], n), "x": rng.normal(size=n), "c": np.arange(n) % 5})
    d["y"] = (rng.random(n) < 0.3).astype(float)
    d.loc[rng.random(n) < 0.2, "x"] = np.nan
    imp = rs.impute(d, m=3, seed=1, max_iter=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rs.odds_ratios(imp, "y", exposure="g", adjust=["x"], cluster="c")
    small = [w for w in caught if issubclass(w.category, rs.SmallSampleWarning)]
    assert len(small) == 1 and "Only 5 clusters" in str(small[0].message)
    assert small[0].filename == __file__


def test_pool_any_result_with_coefficients_and_vcov() -> None:
    from dataclasses import dataclass

    @dataclass
    class Fit:  # e.g. a model fitted elsewhere, on the result contract
        table: pd.DataFrame
        vcov: pd.DataFrame

    rng = np.random.default_rng(4)
    fits = []
    for _ in range(4):
        b = rng.normal(size=2)
        v = np.diag(rng.uniform(0.01, 0.02, 2))
        fits.append(Fit(pd.DataFrame({"term": ["a", "b"], "coef": b, "estimate": np.exp(b)}),
                        pd.DataFrame(v, index=["a", "b"], columns=["a", "b"])))
    res = rs.pool(fits)
    q = np.stack([f.table["coef"] for f in fits])
    assert_allclose(res.table["estimate"], q.mean(axis=0), rtol=RTOL)  # the coefficient, not exp()
    assert list(res.table["term"]) == ["a", "b"]
    with pytest.raises(InvalidParameterError, match="cannot be pooled"):
        rs.pool([object(), object()])
