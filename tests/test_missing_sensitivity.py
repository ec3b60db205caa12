"""tipping_point(): delta-adjusted multiple imputation of a binary outcome.

References: Rubin's rules against the printed mice pooling example; the deterministic bounds
and the delta mechanics against odds_ratios() on explicitly completed data; the tipping
points by re-evaluation at the reported shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoverystats import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.missing import tipping_point
from recoverystats.missing.sensitivity import _rubin
from recoverystats.regression import odds_ratios

#: published values printed to 7 significant digits: half a unit in the last digit
RTOL_PRINTED = 5e-7
#: independent implementations (odds_ratios on the completed data)
RTOL_INDEPENDENT = 1e-6


def frame(n: int = 700, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["comparison", "peer"], n)
    age = rng.normal(35, 9, n).round()
    risk = rng.choice(["low", "high"], n)
    eta = -0.5 - 0.7 * (g == "peer") + 0.8 * (risk == "high") + 0.02 * (age - 35)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    resp = rng.random(n) < 1 / (1 + np.exp(-(1.2 - 0.9 * (risk == "high"))))
    return pd.DataFrame({"group": g, "age": age, "risk": risk, "relapsed": np.where(resp, y, np.nan)})


@pytest.fixture(scope="module")
def result():
    return tipping_point(frame(), outcome="relapsed", exposure="group", adjust=["age", "risk"], m=8, seed=5,
                         deltas=np.arange(-2, 2.01, 0.5))


def test_rubin_matches_mice_nhanes_example():
    """mice tests: nhanes, lm(age ~ bmi), m = 5: ubar 0.001629126, b 0.0003996515, dfcom 23 ->
    t 0.002108708, df 13.53213, riv 0.2943799, fmi 0.3208922 (lambda 0.2274293)."""
    ubar, b = 0.001629126, 0.0003996515
    z = np.array([-1.2, -0.4, 0.1, 0.5, 1.0])
    z = (z - z.mean()) / z.std(ddof=1)  # sample variance exactly 1
    r = _rubin(0.3 + np.sqrt(b) * z, np.full(5, ubar), 23.0)
    np.testing.assert_allclose(r["variance"], 0.002108708, rtol=RTOL_PRINTED)
    np.testing.assert_allclose(r["df"], 13.53213, rtol=RTOL_PRINTED)
    np.testing.assert_allclose(r["riv"], 0.2943799, rtol=RTOL_PRINTED)
    np.testing.assert_allclose(r["fmi"], 0.3208922, rtol=RTOL_PRINTED)


def test_bounds_equal_odds_ratios_on_the_completed_data(result):
    d = frame()
    miss = d.relapsed.isna()
    for name, ve, vr in (("all_event", 1, 1), ("no_event", 0, 0), ("event_exposed_only", 1, 0),
                         ("event_reference_only", 0, 1)):
        c = d.copy()
        c.loc[miss & (c.group == "peer"), "relapsed"] = ve
        c.loc[miss & (c.group == "comparison"), "relapsed"] = vr
        ref = odds_ratios(c, "relapsed", exposure="group", adjust=["age", "risk"], method="mle").table.iloc[0]
        row = result.bounds.set_index("scenario").loc[name]
        np.testing.assert_allclose([row.estimate, row.ci_lower, row.ci_upper, row.std_error, row.p_value],
                                   [ref.estimate, ref.ci_lower, ref.ci_upper, ref.std_error, ref.p_value],
                                   rtol=RTOL_INDEPENDENT)


def test_extreme_shifts_reach_the_deterministic_bound():
    """delta = +15 in the exposed arm and -15 in the reference arm impute every exposed
    non-responder with the event and no reference one: the bound, with no between-imputation
    variance."""
    r = tipping_point(frame(), outcome="relapsed", exposure="group", adjust=["age", "risk"], m=4, seed=2,
                      deltas=([-15.0, 15.0], [-15.0, 15.0]))
    g = r.grid.set_index(["delta_exposed", "delta_reference"])
    b = r.bounds.set_index("scenario")
    np.testing.assert_allclose(g.loc[(15.0, -15.0), "estimate"], b.loc["event_exposed_only", "estimate"], rtol=1e-9)
    np.testing.assert_allclose(g.loc[(-15.0, 15.0), "estimate"], b.loc["event_reference_only", "estimate"],
                               rtol=1e-9)
    np.testing.assert_allclose(g.loc[(15.0, -15.0), "fmi"], 2 / (g.loc[(15.0, -15.0), "df"] + 3), rtol=1e-9)


def test_estimate_is_monotone_in_each_delta(result):
    g = result.grid
    piv = g.pivot(index="delta_reference", columns="delta_exposed", values="estimate").to_numpy()
    assert (np.diff(piv, axis=1) > 0).all()  # worse exposed non-responders: higher OR
    assert (np.diff(piv, axis=0) < 0).all()  # worse reference non-responders: lower OR


def test_mar_cell_agrees_with_complete_case_when_missingness_depends_on_model_covariates(result):
    """Response depends only on risk, which is in the model: complete-case is valid and the
    MAR imputation adds noise only (log ORs within 0.1)."""
    mar = result.mar.iloc[0]
    cc = result.complete_case.iloc[0]
    assert abs(np.log(mar.estimate) - np.log(cc.estimate)) < 0.1
    assert mar.std_error >= 0.95 * cc.std_error  # imputation does not invent information
    assert 0 < mar.fmi < 1
    g = result.grid.set_index(["delta_exposed", "delta_reference"])
    assert g.loc[(0.0, 0.0), "estimate"] == mar.estimate
    assert not g["changes_conclusion"].loc[(0.0, 0.0)]


def test_tipping_points_are_where_the_conclusion_changes(result):
    t = result.tipping.set_index(["arm", "direction"])
    assert result.mar.iloc[0].p_value < 0.05 and result.mar.iloc[0].estimate < 1  # a protective, significant effect
    tip = t.loc[("exposed", "higher"), "delta"]
    assert t.loc[("exposed", "higher"), "found"] and 0 < tip <= 2
    assert not t.loc[("exposed", "lower"), "found"]  # better exposed non-responders only strengthen it
    # re-evaluate just past and just before the tipping point with the same draws (same seed)
    r2 = tipping_point(frame(), outcome="relapsed", exposure="group", adjust=["age", "risk"], m=8, seed=5,
                       deltas=([tip - 0.011, tip], [0.0, 0.5]))
    g = r2.grid.set_index(["delta_exposed", "delta_reference"])
    assert g.loc[(tip, 0.0), "changes_conclusion"]
    assert not g.loc[(tip - 0.011, 0.0), "changes_conclusion"]
    assert g.loc[(tip, 0.0), "p_value"] >= 0.05 > g.loc[(tip - 0.011, 0.0), "p_value"]
    assert f"{np.exp(tip):.2f} times" in result.text
    assert "lose its significance" in result.text


def test_same_seed_same_result_and_seed_recorded():
    a = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, seed=9, deltas=[-1, 1])
    b = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, seed=9, deltas=[-1, 1])
    pd.testing.assert_frame_equal(a.table, b.table)
    c = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, deltas=[-1, 1])
    assert isinstance(c.seed, int)
    d = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, deltas=[-1, 1], seed=c.seed)
    pd.testing.assert_frame_equal(c.table, d.table)


def test_risk_difference_scale_matches_g_computation():
    r = tipping_point(frame(), outcome="relapsed", exposure="group", adjust=["age", "risk"], m=3, seed=1,
                      scale="rd", deltas=[-1, 1])
    d = frame()
    c = d.copy()
    c.loc[c.relapsed.isna(), "relapsed"] = 0
    ref = odds_ratios(c, "relapsed", exposure="group", adjust=["age", "risk"], method="mle").risk_difference()
    row = r.bounds.set_index("scenario").loc["no_event"]
    rt = ref.table.iloc[0]
    np.testing.assert_allclose([row.estimate, row.std_error, row.ci_lower, row.ci_upper],
                               [rt.estimate, rt.std_error, rt.ci_lower, rt.ci_upper], rtol=RTOL_INDEPENDENT)
    assert r.null_value == 0.0
    assert -1 < r.mar.iloc[0].estimate < 0


def test_plot_shows_grid_boundary_and_mar_point(result):
    ax = result.plot()
    assert len(ax.collections) >= 2  # the heat map and the boundary contour
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["conclusion changes", "MAR"]
    assert "peer non-responders" in ax.get_xlabel()
    mar = [ln for ln in ax.lines if ln.get_label() == "MAR"][0]
    assert tuple(mar.get_xydata()[0]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"m": 1}, InvalidParameterError, "m must be a whole number of imputations >= 2"),
        ({"scale": "hr"}, InvalidParameterError, "scale must be one of"),
        ({"deltas": [1]}, InvalidParameterError, "at least two finite"),
        ({"deltas": [0, np.inf]}, InvalidParameterError, "at least two finite"),
        ({"adjust": ["nope"]}, InvalidParameterError, "'nope' not found"),
        ({"adjust": ["relapsed"]}, InvalidParameterError, "cannot also be covariates"),
        ({"seed": -1}, InvalidParameterError, "seed must be None"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    args = {"outcome": "relapsed", "exposure": "group", **kwargs}
    with pytest.raises(error, match=match):
        tipping_point(frame(200), **args)


def test_bad_data():
    d = frame(200)
    with pytest.raises(DataValidationError, match="no missing values"):
        tipping_point(d.assign(relapsed=d.relapsed.fillna(0)), outcome="relapsed", exposure="group")
    with pytest.raises(DataValidationError, match="missing for every row"):
        tipping_point(d.assign(relapsed=np.nan), outcome="relapsed", exposure="group")
    with pytest.raises(InvalidParameterError, match="exactly two levels"):
        tipping_point(d.assign(group=np.resize(["a", "b", "c"], len(d))), outcome="relapsed", exposure="group")
    with pytest.raises(DataValidationError, match="exposure: column 'group' has 1 missing"):
        tipping_point(d.assign(group=d.group.where(d.index != 3)), outcome="relapsed", exposure="group")
    with pytest.raises(DataValidationError, match="must be 1/True \\(event\\)"):
        tipping_point(d.assign(relapsed=d.relapsed * 2), outcome="relapsed", exposure="group")
    with pytest.raises(InvalidParameterError, match="DataFrame or an ImputedData"):
        tipping_point(d.to_dict(), outcome="relapsed", exposure="group")
    e = d.copy()
    e.loc[e.group == "peer", "relapsed"] = e.loc[e.group == "peer", "relapsed"].where(lambda s: s.isna(), 0.0)
    with pytest.raises(EstimationError, match="every responder in the peer group has outcome 0"):
        tipping_point(e, outcome="relapsed", exposure="group")


def test_missing_covariates_are_imputed_and_imputed_data_is_accepted():
    from recoverystats.missing import impute

    d = frame(400)
    rng = np.random.default_rng(0)
    d.loc[rng.random(len(d)) < 0.2, "age"] = np.nan
    r = tipping_point(d, outcome="relapsed", exposure="group", adjust=["age", "risk"], m=4, seed=3,
                      deltas=[-1, 1])
    assert any("imputed by impute(m=4, seed=3)" in n for n in r.notes)
    imp = impute(d, m=4, seed=3, columns=["relapsed", "group", "age", "risk"])
    r2 = tipping_point(imp, outcome="relapsed", exposure="group", adjust=["age", "risk"], seed=3, deltas=[-1, 1])
    # the same imputed covariates and the same outcome draws: the same analysis
    pd.testing.assert_frame_equal(r.table, r2.table)
    assert r2.m == 4
    # bounds are pooled over the imputed covariates: between-imputation variance, finite df
    assert np.isfinite(r2.bounds["df"]).all()
    with pytest.raises(InvalidParameterError, match="differs from the ImputedData's m=4"):
        tipping_point(imp, outcome="relapsed", exposure="group", m=5)
    with pytest.raises(InvalidParameterError, match="'nope'.*not in the imputed data"):
        tipping_point(imp, outcome="relapsed", exposure="group", adjust=["nope"])
    imp2 = impute(d, m=2, seed=3, columns=["relapsed", "group", "risk"])
    with pytest.raises(DataValidationError, match="'age'.*still have missing values"):
        tipping_point(imp2, outcome="relapsed", exposure="group", adjust=["age"])


#: seeded data sets for the coverage check: within 3 Monte Carlo SEs of 95%, i.e.
#: +/- 3 * sqrt(0.95 * 0.05 / 600) = +/- 2.7 points (catches 90% or 99% coverage); 600 reps
#: keep the test under a minute on 2 cores (2000 reps took 137 s)
COVERAGE_REPS = 600


@pytest.mark.slow
def test_mar_interval_covers_the_true_log_odds_ratio():
    """Outcome missing at random given a covariate in the model: the pooled MAR interval
    (delta = 0) of the log odds ratio covers the true conditional log OR about 95% of the time."""
    true_log_or = -0.7
    hits = 0
    for rep in range(COVERAGE_REPS):
        rng = np.random.default_rng(10_000 + rep)
        n = 300
        g = rng.choice(["comparison", "peer"], n)
        x = rng.normal(size=n)
        eta = -0.3 + true_log_or * (g == "peer") + 0.8 * x
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        resp = rng.random(n) < 1 / (1 + np.exp(-(1.0 - 0.8 * x)))
        d = pd.DataFrame({"group": g, "x": x, "y": np.where(resp, y, np.nan)})
        r = tipping_point(d, outcome="y", exposure="group", adjust=["x"], m=5, seed=rep,
                          deltas=([0.0, 0.5], [0.0, 0.5]))
        mar = r.mar.iloc[0]
        hits += bool(mar.ci_lower <= np.exp(true_log_or) <= mar.ci_upper)
    cover = hits / COVERAGE_REPS
    mcse = np.sqrt(0.95 * 0.05 / COVERAGE_REPS)
    assert abs(cover - 0.95) < 3 * mcse, cover


def test_result_display_and_json(result):
    import json

    doc = result.to_dict()
    json.dumps(doc)
    assert doc["result"] == "TippingPointResult" and doc["m"] == 8 and doc["seed"] == 5
    assert {t["arm"] for t in doc["tipping"]} == {"exposed", "reference"}
    assert "<table" in result._repr_html_()
    assert result.summary() == result.text
    r = tipping_point(frame(200), outcome="relapsed", exposure="group", m=2, seed=1, deltas=[-1, 1],
                      label="relapse within 180 days")
    assert "odds ratio of relapse within 180 days for peer" in r.text and "relapsed" not in r.text
    with pytest.raises(InvalidParameterError, match="label must be None or non-empty text"):
        tipping_point(frame(200), outcome="relapsed", exposure="group", m=2, seed=1, label=" ")
    assert len(result.grid) == 81 and len(result.bounds) == 4


def test_reference_level_swaps_the_arms():
    a = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, seed=4, deltas=[-1, 1])
    b = tipping_point(frame(300), outcome="relapsed", exposure="group", m=3, seed=4, deltas=[-1, 1],
                      reference="peer")
    assert (a.exposed, a.reference) == ("peer", "comparison") and (b.exposed, b.reference) == ("comparison", "peer")
    # the MAR fits differ only by the arms' draw order; the bounds are deterministic: exact inverses
    ba, bb = a.bounds.set_index("scenario"), b.bounds.set_index("scenario")
    np.testing.assert_allclose(ba.loc["all_event", "estimate"], 1 / bb.loc["all_event", "estimate"], rtol=1e-8)
    np.testing.assert_allclose(ba.loc["event_exposed_only", "estimate"],
                               1 / bb.loc["event_reference_only", "estimate"], rtol=1e-8)
