"""interrupted_time_series against hand-computed Newey-West and quasi-Poisson fits, planted effects,
and (when the data file is available) the published Sicily smoking-ban result."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from recoverystats import interrupted_time_series
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.synthesis.its import newey_west_auto_lags

#: Agreement with an independent computation of the same estimator.
RTOL = 1e-6
#: Half a unit in the 3rd decimal (the paper prints RR 0.885 (0.839-0.933)).
TOL3 = 5e-4


def _series(n: int = 48, *, seed: int = 1, level: float = math.log(0.8), slope: float = -0.01,
            at: int = 25, pop: float = 5000.0, dispersion: float = 1.0) -> pd.DataFrame:
    """Monthly counts with a planted level change (rate ratio) and slope change at ``at``."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1, dtype=float)
    post = (t >= at).astype(float)
    eta = math.log(0.04) + 0.004 * t + level * post + slope * (t - at) * post \
        + 0.08 * np.sin(2 * np.pi * t / 12) + 0.05 * np.cos(2 * np.pi * t / 12)
    popn = pop * (1 + 0.002 * t)
    mu = popn * np.exp(eta)
    if dispersion == 1.0:
        y = rng.poisson(mu)
    else:  # negative binomial with Var = dispersion * mu (approximately quasi-Poisson)
        r = mu / (dispersion - 1)
        y = rng.negative_binomial(r, r / (r + mu))
    return pd.DataFrame({"month": t, "admissions": y, "population": popn})


def test_quasipoisson_equals_hand_pearson_scaling():
    d = _series(dispersion=2.0)
    res = interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, offset="population",
                                  family="quasipoisson", season=(1, 12))
    t = d["month"].to_numpy()
    post = (t >= 25).astype(float)
    X = np.column_stack([np.ones_like(t), t, post, (t - 25) * post, np.sin(2 * np.pi * t / 12),
                         np.cos(2 * np.pi * t / 12)])
    fit = sm.GLM(d.admissions.to_numpy(), X, family=sm.families.Poisson(),
                 offset=np.log(d.population.to_numpy())).fit()
    mu = fit.mu
    phi = np.sum((d.admissions - mu) ** 2 / mu) / (len(d) - X.shape[1])
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ (mu[:, None] * X))) * phi)
    assert_allclose(res.table["coef"], fit.params, rtol=RTOL)
    assert_allclose(res.table["std_error"], se, rtol=RTOL)
    assert_allclose(res.scale_parameter, phi, rtol=RTOL)
    assert res.table["term"].tolist() == ["Intercept", "time", "level_change[1]", "slope_change[1]", "sin1", "cos1"]
    z = 1.959963984540054
    lv = res.effects.set_index("kind").loc["level_change"]
    assert_allclose([lv["estimate"], lv["ci_lower"], lv["ci_upper"]],
                    np.exp(fit.params[2] + np.array([0, -z, z]) * se[2]), rtol=RTOL)


def test_gaussian_newey_west_equals_hand_computation():
    rng = np.random.default_rng(4)
    n = 40
    t = np.arange(n, dtype=float)
    e = np.zeros(n)
    for i in range(1, n):  # AR(1) errors
        e[i] = 0.5 * e[i - 1] + rng.normal(0, 1)
    y = 60 + 0.3 * t - 5 * (t >= 20) - 0.2 * (t - 20) * (t >= 20) + e
    d = pd.DataFrame({"quarter": t, "retention_pct": y})
    res = interrupted_time_series(d, time="quarter", outcome="retention_pct", interruptions=20)
    L = newey_west_auto_lags(n)
    assert L == math.floor(4 * (n / 100) ** (2 / 9)) == 3
    assert res.newey_west_lags == L and "3 lag(s)" in res.method
    post = (t >= 20).astype(float)
    X = np.column_stack([np.ones(n), t, post, (t - 20) * post])
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ b
    S = (X * u[:, None]).T @ (X * u[:, None])
    for lag in range(1, L + 1):
        w = 1 - lag / (L + 1)
        G = (X[lag:] * u[lag:, None]).T @ (X[:-lag] * u[:-lag, None])
        S += w * (G + G.T)
    B = np.linalg.inv(X.T @ X)
    V = B @ S @ B * n / (n - X.shape[1])  # small-sample factor, as Stata newey
    assert_allclose(res.table["coef"], b, rtol=RTOL)
    assert_allclose(res.table["std_error"], np.sqrt(np.diag(V)), rtol=RTOL)
    # t(T - p) intervals
    from scipy import stats

    q = stats.t.ppf(0.975, n - 4)
    row = res.table.iloc[2]
    assert_allclose([row["ci_lower"], row["ci_upper"]], b[2] + np.array([-q, q]) * math.sqrt(V[2, 2]), rtol=RTOL)
    # lags=0: ordinary least squares
    ols = interrupted_time_series(d, time="quarter", outcome="retention_pct", interruptions=20, newey_west_lags=0)
    assert_allclose(ols.table["std_error"], sm.OLS(y, X).fit().bse, rtol=RTOL)
    assert ols.newey_west_lags is None


def test_multiple_interruptions_and_slope_after():
    d = _series(60, seed=3)
    res = interrupted_time_series(d, time="month", outcome="admissions", interruptions=[20, 40],
                                  offset="population", family="poisson")
    eff = res.effects
    assert eff["kind"].tolist() == ["level_change", "slope_change", "slope_after"] * 2
    coef = res.table.set_index("term")["coef"]
    V = res.vcov
    after2 = eff[(eff.interruption == 2) & (eff.kind == "slope_after")].iloc[0]
    terms = ["time", "slope_change[1]", "slope_change[2]"]
    assert_allclose(after2["coef"], coef[terms].sum(), rtol=1e-12)
    assert_allclose(after2["std_error"], math.sqrt(V.loc[terms, terms].to_numpy().sum()), rtol=1e-12)
    assert_allclose(after2["estimate"], math.exp(coef[terms].sum()), rtol=1e-12)
    assert res.fitted["segment"].tolist() == [0] * 19 + [1] * 20 + [2] * 21


def test_counterfactual_and_level_only_model():
    d = _series(seed=8)
    res = interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, offset="population",
                                  family="quasipoisson", impact="level", season=(2, 12))
    lv = res.table.set_index("term").loc["level_change[1]", "coef"]
    f = res.fitted
    post = f["position"] >= 25
    assert_allclose(f.loc[post, "fitted"] / f.loc[post, "counterfactual"], math.exp(lv), rtol=1e-12)
    assert_allclose(f.loc[~post, "fitted"], f.loc[~post, "counterfactual"], rtol=1e-12)
    assert "slope_change[1]" not in res.table["term"].tolist()
    assert_allclose(f["rate"], d["admissions"] / d["population"])


def test_quarterly_periods_from_the_simulator():
    import recoverystats as rs

    sim = rs.datasets.simulate_program(700, quarters=12, seed=2)
    m = rs.retention(sim.program())
    m = m[m["eligible_90"]]
    q = pd.PeriodIndex(pd.to_datetime(m["enrollment_date"]), freq="Q")
    series = (m.assign(quarter=q).groupby("quarter")
              .agg(retained=("retained_90", "sum"), enrolled=("retained_90", "size")).reset_index())
    res = interrupted_time_series(series, time="quarter", outcome="retained", offset="enrolled",
                                  interruptions=str(series["quarter"].iloc[6]), family="quasipoisson")
    assert res.interruptions == (6.0,)
    assert any("position 0, 1, 2" in n for n in res.notes)
    assert len(res.fitted) == len(series)
    # Poisson likelihood equations with an intercept: fitted counts add up to the observed
    assert_allclose(res.fitted["fitted"].sum(), series["retained"].sum(), rtol=1e-8)
    assert res.fitted["time"].tolist() == series["quarter"].tolist()
    assert (res.effects["kind"] == "level_change").sum() == 1


def test_plot_draws_observed_fitted_and_counterfactual():
    d = _series()
    res = interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, offset="population",
                                  family="quasipoisson", season=(1, 12))
    ax = res.plot(rate_per=1000)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["observed", "fitted", "counterfactual (no change)"]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_xdata()[0] == 24  # from the last pre-interruption point
    assert "per 1000" in ax.get_ylabel()


def test_errors():
    d = _series()
    with pytest.raises(InvalidParameterError, match="offset= is for count outcomes"):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, offset="population")
    with pytest.raises(InvalidParameterError, match="not inside the series"):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=99, family="poisson")
    with pytest.raises(InvalidParameterError, match="needs period="):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, family="poisson", season=2)
    with pytest.raises(InvalidParameterError, match="more than period/2"):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, family="poisson",
                                season=(4, 4))
    with pytest.raises(InvalidParameterError, match="family must be one of"):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, family="negbin")
    with pytest.raises(InvalidParameterError, match="newey_west_lags"):
        interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, newey_west_lags=-1)
    with pytest.raises(DataValidationError, match="repeated time points"):
        interrupted_time_series(pd.concat([d, d.iloc[:1]]), time="month", outcome="admissions", interruptions=25,
                                family="poisson")
    with pytest.raises(DataValidationError, match="whole non-negative counts"):
        interrupted_time_series(d.assign(admissions=d.admissions + 0.5), time="month", outcome="admissions",
                                interruptions=25, family="poisson")
    with pytest.raises(DataValidationError, match="must be > 0"):
        interrupted_time_series(d.assign(population=0.0), time="month", outcome="admissions", interruptions=25,
                                offset="population", family="poisson")
    with pytest.raises(InvalidParameterError, match="time points for"):
        interrupted_time_series(d.iloc[20:28], time="month", outcome="admissions", interruptions=25, family="poisson",
                                season=(2, 12))


SICILY = os.environ.get("RECOVERYSTATS_SICILY_CSV")


@pytest.mark.skipif(not SICILY or not Path(SICILY).exists(),
                    reason="set RECOVERYSTATS_SICILY_CSV to sicily.csv of Lopez Bernal et al. (2017) "
                           "(github.com/gasparrini/2017_lopezbernal_IJE_codedata; not redistributed here)")
def test_sicily_published_level_change():
    # Lopez Bernal, Cummins & Gasparrini (2017), model3: glm(aces ~ offset(log(stdpop)) + smokban + time +
    # harmonic(month, 2, 12), family = quasipoisson); ci.exp: smokban 0.885 (0.839-0.933)
    d = pd.read_csv(SICILY)
    res = interrupted_time_series(d, time="time", outcome="aces", interruptions=37, offset="stdpop",
                                  family="quasipoisson", impact="level", season=(2, 12))
    lv = res.effects.iloc[0]
    assert_allclose([lv["estimate"], lv["ci_lower"], lv["ci_upper"]], [0.885, 0.839, 0.933], atol=TOL3)


@pytest.mark.slow
def test_planted_level_change_recovered_with_coverage():
    """Quasi-Poisson CIs cover the planted rate ratio (2,000 overdispersed series)."""
    reps = 2000
    truth = math.log(0.8)
    hits, ests = 0, []
    for s in range(reps):
        d = _series(seed=1000 + s, dispersion=1.8)
        lv = interrupted_time_series(d, time="month", outcome="admissions", interruptions=25,
                                     offset="population", family="quasipoisson",
                                     season=(1, 12)).effects.iloc[0]
        hits += lv["ci_lower"] <= 0.8 <= lv["ci_upper"]
        ests.append(lv["coef"])
    cover = hits / reps
    assert abs(cover - 0.95) < 3 * math.sqrt(0.95 * 0.05 / reps) + 0.01  # Pearson dispersion, 42 df
    assert abs(np.mean(ests) - truth) < 3 * np.std(ests) / math.sqrt(reps)


def test_summary_and_to_dict():
    d = _series()
    res = interrupted_time_series(d, time="month", outcome="admissions", interruptions=25, offset="population",
                                  family="quasipoisson")
    text = res.summary()
    lv = res.effects.iloc[0]
    assert f"level change (ratio) {lv['estimate']:.4g}" in text and "quasi-Poisson" in text
    out = res.to_dict()
    assert out["family"] == "quasipoisson" and out["effects"][0]["kind"] == "level_change"
    assert "<table" in res._repr_html_()
