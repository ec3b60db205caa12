"""meta_analysis against R metafor's printed results (BCG trials) and statsmodels."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.meta_analysis import combine_effects

from recoverystats import meta_analysis
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.synthesis import effect_sizes

#: Half a unit in the 4th decimal (metafor prints 4 decimals).
TOL4 = 5e-5
#: Half a unit in the 2nd decimal (I^2 in %, H^2 and predict(digits=2) are printed with 2).
TOL2 = 5e-3
#: Agreement with an independent implementation (statsmodels) on the same numbers.
RTOL_INDEP = 1e-6
#: Half a unit in the 3rd decimal (p-values printed to 4 significant decimals in the issue).
TOL_P = 5e-5

DATA = Path(__file__).parent / "data" / "bcg_colditz1994.csv"
COUNTS = ["tpos", "n1", "cpos", "n2"]


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    """The BCG vaccine trials (Colditz et al. 1994), with group sizes."""
    d = pd.read_csv(DATA)
    d["n1"] = d["tpos"] + d["tneg"]
    d["n2"] = d["cpos"] + d["cneg"]
    return d


def _log_ci(res):
    return math.log(res.ci_lower), math.log(res.ci_upper)


# -- metafor: rma(yi, vi, data = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)) --
def test_reml_log_rr_matches_metafor(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", method="REML", label="author")
    assert_allclose(res.log_estimate, -0.7145, atol=TOL4)
    assert_allclose(res.std_error, 0.1798, atol=TOL4)
    assert_allclose(_log_ci(res), (-1.0669, -0.3622), atol=TOL4)
    assert_allclose(res.statistic, -3.9744, atol=TOL4)
    assert_allclose(res.tau2, 0.3132, atol=TOL4)
    assert_allclose(res.tau2_se, 0.1664, atol=TOL4)
    assert_allclose(res.tau, 0.5597, atol=TOL4)
    assert_allclose(res.i2, 92.22, atol=TOL2)
    assert_allclose(res.h2, 12.86, atol=TOL2)
    assert_allclose(res.q, 152.2330, atol=TOL4)
    assert res.q_df == 12 and res.k == 13
    # pooled row of the table = the attributes
    pooled = res.table.iloc[-1]
    assert pooled["kind"] == "pooled"
    assert_allclose(pooled["estimate"], math.exp(-0.7145), rtol=1e-4)
    assert_allclose(res.table.loc[res.table.kind == "study", "weight"].sum(), 100.0)


def test_reml_prediction_interval_matches_metafor_predict(bcg):
    # predict(res) -> pi.lb -1.87, pi.ub 0.44; predict(res, transf = exp) -> 0.15, 1.55 (2 decimals)
    res = meta_analysis(bcg, counts=COUNTS, measure="rr")
    assert_allclose((math.log(res.pi_lower), math.log(res.pi_upper)), (-1.87, 0.44), atol=TOL2)
    assert_allclose((res.pi_lower, res.pi_upper), (0.15, 1.55), atol=TOL2)
    assert_allclose((res.estimate, res.ci_lower, res.ci_upper), (0.49, 0.34, 0.70), atol=TOL2)


def test_egger_matches_metafor_regtest_lm(bcg):
    # regtest(res, model = "lm"): t = -1.4013, df = 11, p = 0.1887
    res = meta_analysis(bcg, counts=COUNTS, measure="rr")
    eg = res.egger.iloc[0]
    assert_allclose(eg["statistic"], -1.4013, atol=TOL4)
    assert eg["df"] == 11
    assert_allclose(eg["p_value"], 0.1887, atol=TOL_P)


def test_egger_equals_statsmodels_wls(bcg):
    import statsmodels.api as sm

    es = effect_sizes(bcg.tpos, bcg.n1, bcg.cpos, bcg.n2, measure="rr")
    sei = np.sqrt(es.vi.to_numpy())
    fit = sm.WLS(es.yi.to_numpy(), sm.add_constant(sei), weights=1 / es.vi.to_numpy()).fit()
    eg = meta_analysis(bcg, counts=COUNTS, measure="rr").egger.iloc[0]
    assert_allclose([eg["estimate"], eg["std_error"], eg["statistic"], eg["p_value"], eg["limit_estimate"]],
                    [fit.params[1], fit.bse[1], fit.tvalues[1], fit.pvalues[1], fit.params[0]], rtol=RTOL_INDEP)


def test_hksj_matches_metafor_knha(bcg):
    # rma(yi, vi, data = dat, test = "knha"): -0.7145 0.1808 -3.9522 12 0.0019 -1.1084 -0.3206
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", hksj=True)
    assert_allclose(res.log_estimate, -0.7145, atol=TOL4)
    assert_allclose(res.std_error, 0.1808, atol=TOL4)
    assert_allclose(res.statistic, -3.9522, atol=TOL4)
    assert res.df == 12
    assert_allclose(res.p_value, 0.0019, atol=TOL4)
    assert_allclose(_log_ci(res), (-1.1084, -0.3206), atol=TOL4)
    # predict(res, transf = exp, digits = 2): 0.49 0.33 0.73 0.14 1.76
    assert_allclose((res.estimate, res.ci_lower, res.ci_upper, res.pi_lower, res.pi_upper),
                    (0.49, 0.33, 0.73, 0.14, 1.76), atol=TOL2)


@pytest.mark.parametrize(
    ("measure", "method", "est", "lo", "hi", "z", "tau2", "i2", "q"),
    [
        # metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (Stata metan agrees)
        ("rr", "FE", -0.4303, -0.5097, -0.3509, -10.6247, 0.0, None, 152.2330),
        ("rr", "DL", -0.7141, -1.0644, -0.3638, -3.9952, 0.3088, 92.1173, 152.2330),
        ("or", "FE", -0.4361, -0.5190, -0.3533, -10.3190, 0.0, None, 163.1649),
        ("or", "DL", -0.7474, -1.1242, -0.3706, -3.8873, 0.3663, 92.6455, 163.1649),
        ("rd", "FE", -0.0009, -0.0014, -0.0005, -4.0448, 0.0, None, 276.4737),
        ("rd", "DL", -0.0071, -0.0101, -0.0040, -4.5128, 0.0000, 95.6596, 276.4737),
    ],
)
def test_fe_and_dl_match_metafor(bcg, measure, method, est, lo, hi, z, tau2, i2, q):
    res = meta_analysis(bcg, counts=COUNTS, measure=measure, method=method)
    assert_allclose(res.log_estimate, est, atol=TOL4)
    got_ci = _log_ci(res) if measure != "rd" else (res.ci_lower, res.ci_upper)
    assert_allclose(got_ci, (lo, hi), atol=TOL4)
    assert_allclose(res.statistic, z, atol=TOL4)
    assert_allclose(res.tau2, tau2, atol=TOL4)
    if i2 is not None:
        assert_allclose(res.i2, i2, atol=TOL4)
    assert_allclose(res.q, q, atol=TOL4)


def test_dl_exponentiated_matches_metafor_predict(bcg):
    # predict(rma(..., method = "DL"), transf = exp): 0.4896 (0.3449, 0.6950)
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", method="DL")
    assert_allclose((res.estimate, res.ci_lower, res.ci_upper), (0.4896, 0.3449, 0.6950), atol=TOL4)


@pytest.mark.parametrize(("method", "sm_method"), [("DL", "dl"), ("PM", "iterated")])
def test_dl_and_pm_equal_statsmodels(bcg, method, sm_method):
    es = effect_sizes(bcg.tpos, bcg.n1, bcg.cpos, bcg.n2, measure="or")
    ref = combine_effects(es.yi.to_numpy(), es.vi.to_numpy(), method_re=sm_method)
    res = meta_analysis(bcg, counts=COUNTS, measure="or", method=method)
    assert_allclose([res.tau2, res.log_estimate, res.std_error], [ref.tau2, ref.mean_effect_re, ref.sd_eff_w_re],
                    rtol=RTOL_INDEP)
    # HKSJ standard error = statsmodels' "random effect wls" (Knapp-Hartung scaled) row
    hk = meta_analysis(bcg, counts=COUNTS, measure="or", method=method, hksj=True)
    assert_allclose(hk.std_error, ref.summary_frame().loc["random effect wls", "sd_eff"], rtol=RTOL_INDEP)


def test_pm_solves_its_estimating_equation(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", method="PM")
    es = effect_sizes(bcg.tpos, bcg.n1, bcg.cpos, bcg.n2, measure="rr")
    w = 1 / (es.vi + res.tau2)
    mu = np.sum(w * es.yi) / np.sum(w)
    assert_allclose(np.sum(w * (es.yi - mu) ** 2), 12, rtol=1e-8)
    # metafor prints 0.3181 for the iterated DL / Sidik-Jonkman estimators, whose fixed point this is
    assert_allclose(res.tau2, 0.3181, atol=TOL4)


def test_reml_equals_direct_likelihood_maximisation(bcg):
    from scipy import optimize

    es = effect_sizes(bcg.tpos, bcg.n1, bcg.cpos, bcg.n2, measure="or")
    y, v = es.yi.to_numpy(), es.vi.to_numpy()

    def neg_reml(t2):
        w = 1 / (v + t2)
        mu = np.sum(w * y) / np.sum(w)
        return 0.5 * (np.sum(np.log(v + t2)) + np.log(np.sum(w)) + np.sum(w * (y - mu) ** 2))

    opt = optimize.minimize_scalar(neg_reml, bounds=(0, 5), method="bounded", options={"xatol": 1e-12})
    res = meta_analysis(bcg, counts=COUNTS, measure="or")
    assert_allclose(res.tau2, opt.x, rtol=1e-6)


def test_fixed_effect_heterogeneity_and_no_prediction_interval(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", method="FE")
    assert_allclose(res.i2, 100 * (152.2330080823734 - 12) / 152.2330080823734, rtol=1e-9)
    assert_allclose(res.h2, 152.2330080823734 / 12, rtol=1e-9)
    assert math.isnan(res.pi_lower) and math.isnan(res.tau2_se)
    assert any("fixed-effect model assumes one common effect" in n for n in res.notes)


def test_estimate_and_std_error_input_equals_counts_input(bcg):
    es = effect_sizes(bcg.tpos, bcg.n1, bcg.cpos, bcg.n2, measure="rr")
    d = pd.DataFrame({"trial": bcg.author, "log_rr": es.yi, "se": np.sqrt(es.vi)})
    a = meta_analysis(d, estimate="log_rr", std_error="se", measure="rr", label="trial")
    b = meta_analysis(bcg, counts=COUNTS, measure="rr", label="author")
    assert_allclose(a.log_estimate, b.log_estimate, rtol=1e-12)
    assert_allclose(a.tau2, b.tau2, rtol=1e-12)
    assert a.table["label"].tolist() == b.table["label"].tolist()
    assert a.table["n"].isna().all() and b.table["n"].iloc[0] == 262


def test_zero_cell_continuity_correction_as_escalc():
    # a = 0: 0.5 added to all four cells of that study only (escalc add = 1/2, to = "only0")
    d = pd.DataFrame({"a": [0, 10], "n1": [50, 100], "c": [5, 20], "n2": [50, 100]})
    es = effect_sizes(d.a, d.n1, d.c, d.n2, measure="or")
    assert_allclose(es.yi.iloc[0], math.log(0.5 * 45.5 / (50.5 * 5.5)))
    assert_allclose(es.vi.iloc[0], 1 / 0.5 + 1 / 50.5 + 1 / 5.5 + 1 / 45.5)
    assert_allclose(es.yi.iloc[1], math.log(10 * 80 / (90 * 20)))
    assert es.corrected.tolist() == [True, False]
    res = meta_analysis(d, counts=["a", "n1", "c", "n2"])
    assert any("zero cell" in n for n in res.notes)
    with pytest.raises(DataValidationError, match="continuity correction"):
        meta_analysis(d, counts=["a", "n1", "c", "n2"], cc=0)


def test_rr_and_rd_effect_sizes_by_hand():
    es = effect_sizes([4], [123], [11], [139], measure="rr")
    assert_allclose(es.yi[0], math.log((4 / 123) / (11 / 139)))
    assert_allclose(es.vi[0], 1 / 4 - 1 / 123 + 1 / 11 - 1 / 139)
    rd = effect_sizes([4], [123], [11], [139], measure="rd")
    p1, p2 = 4 / 123, 11 / 139
    assert_allclose(rd.vi[0], p1 * (1 - p1) / 123 + p2 * (1 - p2) / 139)


def test_from_odds_ratio_results_by_site():
    import recoverystats as rs

    sim = rs.datasets.simulate_program(1200, n_sites=4, seed=11)
    m = rs.recidivism(sim.program())
    fits = {s: rs.odds_ratios(g, "recidivated", exposure="group", adjust=["age"]) for s, g in m.groupby("site")}
    res = meta_analysis(fits)
    rows = []
    for s, f in fits.items():
        r = f.table.iloc[0]
        rows.append({"site": s, "b": r["log_odds"], "se": r["std_error"]})
    ref = meta_analysis(pd.DataFrame(rows), estimate="b", std_error="se", label="site")
    assert res.measure == "or"
    assert_allclose(res.log_estimate, ref.log_estimate, rtol=1e-12)
    assert res.table["label"].tolist()[:4] == sorted(fits)
    assert (res.table["n"].iloc[:4] > 0).all()
    # a list with labels gives the same
    res2 = meta_analysis(list(fits.values()), label=list(fits))
    assert_allclose(res2.log_estimate, res.log_estimate, rtol=1e-12)


def test_from_hazard_ratio_results():
    import recoverystats as rs

    sim = rs.datasets.simulate_program(900, n_sites=3, seed=5)
    m = rs.recidivism(sim.program())
    fits = [rs.hazard_ratios(g, time="time_days", event="event", exposure="group") for _, g in m.groupby("site")]
    res = meta_analysis(fits, method="DL")
    assert res.measure == "hr"
    assert_allclose(res.table["analysis_estimate"].iloc[:3].to_numpy(),
                    [f.table.iloc[0]["log_hazard"] for f in fits], rtol=1e-12)
    with pytest.raises(InvalidParameterError, match="hazard ratios"):
        meta_analysis(fits, measure="or")


def test_plot_draws_studies_diamond_and_prediction_interval(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr", label="author")
    ax = res.plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:13] == bcg["author"].tolist() and labels[-1] == "Pooled (REML)"
    assert ax.get_xscale() == "log"
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("0.49 (0.34, 0.70)") for t in texts)
    assert len(ax.patches) == 1  # the diamond
    assert "I² = 92%" in ax.get_title(loc="left")


def test_repr_html_and_to_dict(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr")
    assert "prediction interval" in repr(res)
    assert "<table" in res._repr_html_()
    d = res.to_dict()
    assert d["tau2"] == pytest.approx(0.31324, abs=1e-5) and d["egger"][0]["df"] == 11


# -- bad input ------------------------------------------------------------------------------------------
def test_errors(bcg):
    with pytest.raises(InvalidParameterError, match="either estimate= and std_error="):
        meta_analysis(bcg)
    with pytest.raises(InvalidParameterError, match="not both"):
        meta_analysis(bcg, counts=COUNTS, estimate="tpos", std_error="tneg")
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        meta_analysis(bcg, counts=COUNTS, method="ML")
    with pytest.raises(InvalidParameterError, match="four columns"):
        meta_analysis(bcg, counts=["tpos", "n1"])
    with pytest.raises(InvalidParameterError, match="not found"):
        meta_analysis(bcg, counts=["tpos", "n1", "cpos", "nope"])
    with pytest.raises(InvalidParameterError, match="at least 2 studies"):
        meta_analysis(bcg.iloc[:1], counts=COUNTS)
    with pytest.raises(InvalidParameterError, match="'or', 'rr' or 'rd'"):
        meta_analysis(bcg, counts=COUNTS, measure="hr")
    bad = pd.DataFrame({"b": [0.1, 0.2], "se": [0.1, 0.0]})
    with pytest.raises(DataValidationError, match="<= 0"):
        meta_analysis(bad, estimate="b", std_error="se")
    bad2 = bcg.copy()
    bad2.loc[0, "tpos"] = 500
    with pytest.raises(DataValidationError, match="0 <= events <= n"):
        meta_analysis(bad2, counts=COUNTS)
    with pytest.raises(InvalidParameterError, match="pass a DataFrame"):
        meta_analysis()
    with pytest.raises(InvalidParameterError, match="OddsRatioResult"):
        meta_analysis([1, 2])
    with pytest.raises(InvalidParameterError, match="conf_level"):
        meta_analysis(bcg, counts=COUNTS, conf_level=95)
    with pytest.raises(InvalidParameterError, match="hksj"):
        meta_analysis(bcg, counts=COUNTS, hksj="yes")


def test_reml_non_convergence_raises(monkeypatch, bcg):
    import recoverystats.synthesis.meta as M

    monkeypatch.setattr(M, "REML_MAX_ITER", 2)
    with pytest.raises(EstimationError, match="did not converge"):
        meta_analysis(bcg, counts=COUNTS, measure="rr")


def test_reml_near_zero_tau2_converges():
    # plain Fisher scoring cycles between two values on this data (tau^2 ~ 0.0084)
    rng = np.random.default_rng(2026)
    for _ in range(1740):
        v = rng.uniform(0.02, 0.2, 8)
        y = rng.normal(-0.3, np.sqrt(v + 0.1))
    res = meta_analysis(pd.DataFrame({"y": y, "s": np.sqrt(v)}), estimate="y", std_error="s", measure="generic")
    w = 1 / (v + res.tau2)
    p = np.diag(w) - np.outer(w, w) / w.sum()
    assert abs((p @ y) @ (p @ y) - np.trace(p)) < 1e-9
    assert 0.008 < res.tau2 < 0.009


@pytest.mark.slow
def test_hksj_interval_coverage():
    """HKSJ CIs cover the true mean at about the nominal rate (k = 8, tau^2 = 0.1)."""
    rng = np.random.default_rng(2026)
    reps, k, mu, tau2 = 2000, 8, -0.3, 0.1
    hits = 0
    for _ in range(reps):
        v = rng.uniform(0.02, 0.2, k)
        y = rng.normal(mu, np.sqrt(v + tau2))
        res = meta_analysis(pd.DataFrame({"y": y, "s": np.sqrt(v)}), estimate="y", std_error="s", measure="generic",
                            hksj=True)
        hits += res.ci_lower <= mu <= res.ci_upper
    cover = hits / reps
    mc_se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(cover - 0.95) < 3 * mc_se + 0.005  # HKSJ is close to exact under normality


def test_plot_risk_difference_on_a_linear_axis(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rd", method="DL", label="author")
    ax = res.plot(annotate=False, show_prediction=False)
    assert ax.get_xscale() == "linear"
    assert any(list(ln.get_xdata()) == [0.0, 0.0] for ln in ax.lines)  # the no-effect line at 0
    assert not ax.texts


def test_results_must_estimate_the_same_term():
    import recoverystats as rs

    sim = rs.datasets.simulate_program(900, n_sites=3, seed=5)
    m = rs.recidivism(sim.program())
    (_, a), (_, b) = list(m.groupby("site"))[:2]
    fa = rs.odds_ratios(a, "recidivated", exposure="group")
    fb = rs.odds_ratios(b, "recidivated", exposure="group", reference={"group": "peer_mentoring"})
    with pytest.raises(InvalidParameterError, match="do not estimate the same term"):
        meta_analysis([fa, fb], label=["a", "b"])
    res = meta_analysis([fa, fa], label=["a", "a2"])
    assert "Pooled term: group[peer_mentoring]" in res.notes[0]


def test_vcov_is_the_pooled_variance(bcg):
    res = meta_analysis(bcg, counts=COUNTS, measure="rr")
    assert res.vcov.loc["pooled", "pooled"] == pytest.approx(res.std_error**2, rel=1e-12)
