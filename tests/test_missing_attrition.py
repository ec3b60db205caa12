"""attrition() and followup_weights(): completers vs non-completers, rates against the target,
the follow-up model, non-response weights (statsmodels Logit reference, MAR recovery)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import proportion_confint

from recoverystats import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.missing import attrition, followup_weights
from recoverystats.missing.weights import kish_ess
from recoverystats.rates.table_one import smd_categorical, smd_continuous

#: independent implementations (statsmodels, numpy, formulas here)
RTOL_INDEPENDENT = 1e-6
#: the weights against 1/p̂ of statsmodels' Logit (the brief's tolerance)
RTOL_WEIGHTS = 1e-8


def mar_frame(n: int = 1500, seed: int = 7) -> pd.DataFrame:
    """Follow-up depends on risk and site (missing at random); the outcome on risk and group."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["comparison", "peer_mentoring"], n)
    site = rng.choice(["site_a", "site_b", "site_c"], n)
    risk = rng.choice(["low", "moderate", "high"], n, p=[0.4, 0.35, 0.25])
    age = rng.normal(35, 9, n).round()
    eta = 1.6 - 0.9 * (risk == "moderate") - 1.7 * (risk == "high") + 0.5 * (site == "site_b") - 0.02 * (age - 35)
    fu = rng.random(n) < 1 / (1 + np.exp(-eta))
    y_eta = -1.2 + 1.0 * (risk == "moderate") + 2.0 * (risk == "high") - 0.5 * (group == "peer_mentoring")
    y = (rng.random(n) < 1 / (1 + np.exp(-y_eta))).astype(float)
    return pd.DataFrame({"group": group, "site": site, "risk_level": risk, "age": age,
                         "followed": fu.astype(int), "relapsed_full": y,
                         "relapsed": np.where(fu, y, np.nan)}, index=np.arange(100, 100 + n))


# -- attrition ---------------------------------------------------------------------------------
def test_attrition_rates_are_wilson_against_statsmodels():
    d = mar_frame()
    res = attrition(d, followed_up="followed", by="group", site="site", adjust=["age", "risk_level"])
    r = res.rates
    assert r["variable"].tolist() == ["overall", "group", "group", "site", "site", "site"]
    for _, row in r.iterrows():
        sel = d if row["variable"] == "overall" else d[d[row["variable"]] == row["level"]]
        k, n = int(sel["followed"].sum()), len(sel)
        assert (row["n"], row["events"]) == (n, k)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        np.testing.assert_allclose([row["estimate"], row["ci_lower"], row["ci_upper"]], [k / n, lo, hi],
                                   rtol=RTOL_INDEPENDENT)
        expected = "meets" if k / n >= 0.8 else ("below" if hi < 0.8 else "uncertain")
        assert row["vs_target"] == expected
    assert res.n_used == len(d) and res.n_followed_up == int(d["followed"].sum())
    np.testing.assert_allclose(res.followup_rate, d["followed"].mean())


def test_attrition_smds_match_formulas():
    d = mar_frame()
    res = attrition(d, followed_up="followed", adjust=["age", "risk_level"])
    t = res.table
    comp, non = d[d.followed == 1], d[d.followed == 0]
    smd_age = float(t.loc[t["variable"] == "age", "smd"].iloc[0])
    # |m1 - m2| / sqrt((s1^2 + s2^2)/2) written out
    m1, m0 = comp.age.mean(), non.age.mean()
    s1, s0 = comp.age.std(ddof=1), non.age.std(ddof=1)
    np.testing.assert_allclose(smd_age, abs(m1 - m0) / np.sqrt((s1**2 + s0**2) / 2), rtol=RTOL_INDEPENDENT)
    lv = ["high", "low", "moderate"]
    p1 = comp.risk_level.value_counts(normalize=True).reindex(lv).to_numpy()
    p0 = non.risk_level.value_counts(normalize=True).reindex(lv).to_numpy()
    smd_risk = float(t.loc[t["variable"] == "risk_level", "smd"].iloc[0])
    # the data-model code order puts low first; the multivariate SMD does not depend on which level is dropped
    np.testing.assert_allclose(smd_risk, smd_categorical(p1, p0), rtol=RTOL_INDEPENDENT)
    assert smd_risk > 0.2  # follow-up depends on risk: the table must show it
    assert abs(smd_continuous(comp.age, non.age) - smd_age) < 1e-12
    assert "risk_level" in res.summary()


def test_attrition_model_matches_statsmodels_logit():
    d = mar_frame()
    res = attrition(d, followed_up="followed", by="group", adjust=["age"])
    X = pd.DataFrame({"const": 1.0, "peer": (d.group == "peer_mentoring").astype(float), "age": d.age})
    ref = sm.Logit(d.followed.to_numpy(float), X).fit(disp=0)
    t = res.model.table.set_index("term")
    np.testing.assert_allclose(t.loc["group[peer_mentoring]", "log_odds"], ref.params["peer"], rtol=RTOL_INDEPENDENT)
    np.testing.assert_allclose(t.loc["age", "std_error"], ref.bse["age"], rtol=RTOL_INDEPENDENT)
    assert res.model.outcome == "followed"


def test_attrition_from_program_uses_the_followup_measure():
    from recoverystats import followup
    from recoverystats.datasets import simulate_program
    from recoverystats.measures.followup import followup_rate

    prog = simulate_program(500, seed=3).program()
    res = attrition(prog, adjust=["age", "risk_level"])
    fu = followup(prog)
    ref = followup_rate(fu, by="group")
    r = res.rates.set_index(["variable", "level"])
    assert res.n_used == int(fu["due"].sum())
    for _, row in ref.iterrows():
        assert r.loc[("group", row["group"]), "events"] == row["completed_in_window"]
        np.testing.assert_allclose(r.loc[("group", row["group"]), "estimate"], row["rate"])
    assert ("site", "site_a") in r.index
    assert res.by == "group" and res.site == "site" and res.followed_up == "completed_in_window"
    assert res.target == 0.8


def test_attrition_eligible_and_missing_rows_are_left_out_and_counted():
    d = mar_frame(400)
    d["eligible"] = True
    d.loc[d.index[:30], "eligible"] = False
    d["followed"] = d["followed"].astype("Float64")
    d.loc[d.index[30:40], "followed"] = pd.NA
    res = attrition(d, followed_up="followed", by="group")
    assert res.n_used == 360 and res.n_excluded == 40
    assert any("not eligible" in n for n in res.notes)


def test_attrition_plot_draws_rates_and_target():
    d = mar_frame(400)
    res = attrition(d, followed_up="followed", by="group", site="site", target=0.75)
    ax = res.plot()
    xs = [ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == "--"]
    assert xs == [0.75]
    assert len(ax.get_yticklabels()) == len(res.rates)
    assert ax.get_yticklabels()[0].get_text() == "All due"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, InvalidParameterError, "followed_up: name the 1/0 column"),
        ({"followed_up": "nope"}, InvalidParameterError, "'nope' not found"),
        ({"followed_up": "site"}, DataValidationError, "must be 1/True"),
        ({"followed_up": "followed", "adjust": ["followed"]}, InvalidParameterError, "already the followed_up"),
        ({"followed_up": "followed", "target": 1.5}, InvalidParameterError, "target must be a proportion"),
        ({"followed_up": "followed", "by": ["group"]}, InvalidParameterError, "by must be one column"),
    ],
)
def test_attrition_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        attrition(mar_frame(200), **kwargs)


def test_attrition_entirely_missing_covariate():
    with pytest.raises(DataValidationError, match=r"adjust: column\(s\) 'x' have no values at all"):
        attrition(mar_frame(200).assign(x=np.nan), followed_up="followed", adjust=["age", "x"])


def test_attrition_nobody_followed_up_and_wrong_type():
    d = mar_frame(200).assign(followed=0)
    with pytest.raises(DataValidationError, match="nobody in the 200 rows"):
        attrition(d, followed_up="followed")
    with pytest.raises(InvalidParameterError, match="ProgramData or a pandas DataFrame"):
        attrition([1, 2], followed_up="x")


# -- followup_weights ---------------------------------------------------------------------------
def test_weights_equal_inverse_statsmodels_probability():
    d = mar_frame()
    res = followup_weights(d, followed_up="followed", adjust=["age", "risk_level", "site"], stabilize=False)
    X = pd.get_dummies(d[["age", "risk_level", "site"]], columns=["risk_level", "site"], drop_first=False,
                       dtype=float)
    X = X.drop(columns=["risk_level_low", "site_site_a"])
    X.insert(0, "const", 1.0)
    p = sm.Logit(d.followed.to_numpy(float), X).fit(disp=0, tol=1e-12).predict()
    w = res.weights
    assert w.index.equals(d.index) and w.name == "followup_weight"
    done = d.followed.to_numpy() == 1
    np.testing.assert_allclose(w.to_numpy()[done], 1 / p[done], rtol=RTOL_WEIGHTS)
    assert (w.to_numpy()[~done] == 0).all()
    np.testing.assert_allclose(res.probability.to_numpy(), p, rtol=RTOL_WEIGHTS)


def test_weights_by_group_fit_separate_models_and_stabilise():
    d = mar_frame()
    res = followup_weights(d, followed_up="followed", adjust=["age", "risk_level"], by="group")
    for g in ("comparison", "peer_mentoring"):
        s = d[d.group == g]
        X = pd.get_dummies(s[["age", "risk_level"]], columns=["risk_level"], dtype=float).drop(
            columns="risk_level_low")
        X.insert(0, "const", 1.0)
        p = sm.Logit(s.followed.to_numpy(float), X).fit(disp=0, tol=1e-12).predict()
        done = s.followed.to_numpy() == 1
        np.testing.assert_allclose(res.weights[s.index].to_numpy()[done], s.followed.mean() / p[done],
                                   rtol=RTOL_WEIGHTS)
    t = res.table.set_index("stratum")
    assert list(t.index) == ["comparison", "peer_mentoring", "overall"]
    wc = res.weights[d.followed == 1].to_numpy()
    np.testing.assert_allclose(t.loc["overall", "ess"], wc.sum() ** 2 / (wc**2).sum(), rtol=1e-12)
    np.testing.assert_allclose(t.loc["overall", "max_weight"], wc.max())
    assert set(res.coefficients["stratum"]) == {"comparison", "peer_mentoring"}
    assert (res.strata[d.group == "comparison"] == "comparison").all()


def test_weights_recover_the_full_sample_mean_under_mar():
    """Completers over-represent low risk (who relapse less): the unweighted completer mean
    is biased; the weighted one estimates the full-sample mean (MAR given risk and site)."""
    d = mar_frame(n=20000, seed=11)
    res = followup_weights(d, followed_up="followed", adjust=["risk_level", "site", "age"])
    done = d.followed == 1
    full = d.relapsed_full.mean()
    naive = d.relapsed_full[done].mean()
    w = res.weights[done]
    weighted = np.average(d.relapsed_full[done], weights=w)
    se = np.sqrt(full * (1 - full) / done.sum())
    assert abs(naive - full) > 6 * se  # the bias the weights must remove
    assert abs(weighted - full) < 3 * se


def test_weights_trim_caps_at_the_quantile():
    d = mar_frame()
    res = followup_weights(d, followed_up="followed", adjust=["age", "risk_level"], trim=0.9)
    untrimmed = followup_weights(d, followed_up="followed", adjust=["age", "risk_level"])
    done = d.followed == 1
    cap = np.quantile(untrimmed.weights[done], 0.9)
    np.testing.assert_allclose(res.weights[done].max(), cap)
    assert res.table["n_trimmed"].iloc[0] == int((untrimmed.weights[done] > cap).sum()) > 0
    assert "truncated at the 0.9 quantile" in res.method


def test_kish_ess():
    assert kish_ess(np.ones(10)) == 10
    np.testing.assert_allclose(kish_ess(np.array([1.0, 3.0, 0.0])), 16 / 10)


def test_weights_bad_input():
    d = mar_frame(300)
    with pytest.raises(InvalidParameterError, match="'nope' not found"):
        followup_weights(d, followed_up="followed", adjust=["nope"])
    with pytest.raises(InvalidParameterError, match="is the by column"):
        followup_weights(d, followed_up="followed", adjust=["group"], by="group")
    with pytest.raises(InvalidParameterError, match="trim must be None or a quantile"):
        followup_weights(d, followed_up="followed", adjust=["age"], trim=2)
    with pytest.raises(DataValidationError, match="missing value"):
        followup_weights(d.assign(followed=d.followed.where(d.age > 20)), followed_up="followed", adjust=["age"])
    with pytest.raises(DataValidationError, match=r"column 'age': \d+ missing.*Impute them first"):
        followup_weights(d.assign(age=d.age.where(d.age > 25)), followed_up="followed", adjust=["age"])
    e = d.copy()
    e.loc[e.group == "comparison", "followed"] = 0
    with pytest.raises(DataValidationError, match="nobody in 'group' = 'comparison'"):
        followup_weights(e, followed_up="followed", adjust=["age"], by="group")
    sep = d.assign(followed=(d.risk_level != "high").astype(int))
    with pytest.raises(EstimationError, match="separation"):
        followup_weights(sep, followed_up="followed", adjust=["risk_level"])


def test_weights_everybody_followed_in_a_group_gives_ones():
    d = mar_frame(300)
    d.loc[d.group == "comparison", "followed"] = 1
    res = followup_weights(d, followed_up="followed", adjust=["age"], by="group")
    assert (res.weights[d.group == "comparison"] == 1).all()
    assert any("everybody followed up" in n for n in res.notes)


def test_weights_plot_histogram_per_stratum():
    d = mar_frame(400)
    res = followup_weights(d, followed_up="followed", adjust=["age", "risk_level"], by="group")
    ax = res.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["comparison", "peer_mentoring"]
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == int(d.followed.sum())


def test_weights_vcov_matches_statsmodels_and_results_display():
    import json

    d = mar_frame()
    res = followup_weights(d, followed_up="followed", adjust=["age"], by="group")
    s = d[d.group == "peer_mentoring"]
    ref = sm.Logit(s.followed.to_numpy(float), sm.add_constant(s[["age"]].to_numpy())).fit(disp=0, tol=1e-12)
    v = res.vcov.loc[["peer_mentoring:Intercept", "peer_mentoring:age"], ["peer_mentoring:Intercept",
                                                                            "peer_mentoring:age"]]
    np.testing.assert_allclose(v.to_numpy(), ref.cov_params(), rtol=RTOL_INDEPENDENT)
    assert res.vcov.loc["comparison:age", "peer_mentoring:age"] == 0  # separate models
    att = attrition(d, followed_up="followed", by="group", adjust=["age"])
    for r in (res, att):
        json.dumps(r.to_dict())
        assert "<table" in r._repr_html_()
        assert type(r).__name__ in repr(r)
    assert att.to_dict()["model"]["result"] == "OddsRatioResult"
