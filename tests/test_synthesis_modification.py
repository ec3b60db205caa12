"""effect_modification against stratified fits, statsmodels and hand-computed delta methods."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import expit

from recoverystats import effect_modification, odds_ratios
from recoverystats.errors import DataValidationError, InvalidParameterError

#: Agreement with an independent implementation of the same model (statsmodels / by hand).
RTOL = 1e-6
#: Absolute tolerance for quantities near 0 (risk differences, RERI near 0).
ATOL = 1e-8


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Planted effect modification: OR 0.45 for older participants, 1.0 for younger."""
    rng = np.random.default_rng(7)
    n = 3000
    group = rng.choice(["comparison", "peer_mentoring"], n)
    older = rng.choice(["<35", "35+"], n)
    risk = rng.choice(["low", "moderate", "high"], n, p=[0.4, 0.35, 0.25])
    age = rng.normal(35, 9, n)
    x = (group == "peer_mentoring").astype(float)
    m = (older == "35+").astype(float)
    lin = -1.0 + 0.3 * m + np.log(1.0) * x * (1 - m) + np.log(0.45) * x * m + 0.02 * (age - 35) \
        + 0.4 * (risk == "high")
    y = (rng.random(n) < expit(lin)).astype(int)
    time = rng.exponential(400 / np.exp(lin + 1), n).round() + 1
    event = (time < 365).astype(int)
    time = np.minimum(time, 365)
    mentor = np.where(x == 1, rng.integers(0, 40, n).astype(str), None)
    return pd.DataFrame({"y": y, "group": group, "older": older, "risk_level": risk, "age": age,
                         "time_days": time, "event": event, "mentor_id": mentor})


def _sm_design(d: pd.DataFrame, modifier: str, levels: list[str], adjust: list[str]) -> tuple[np.ndarray, list[str]]:
    x = (d["group"] == "peer_mentoring").to_numpy(float)
    cols = {"Intercept": np.ones(len(d))}
    for lv in levels:
        cols[f"x_{lv}"] = x * (d[modifier] == lv).to_numpy(float)
    for lv in levels[1:]:
        cols[f"m_{lv}"] = (d[modifier] == lv).to_numpy(float)
    for a in adjust:
        cols[a] = d[a].to_numpy(float)
    return np.column_stack(list(cols.values())), list(cols)


def test_saturated_model_equals_stratified_fits(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="risk_level")
    assert res.table["level"].tolist() == ["low", "moderate", "high"]  # the data model's code order
    for _, row in res.table.iterrows():
        sub = data[data.risk_level == row["level"]]
        ref = odds_ratios(sub, "y", exposure="group", method="mle").table.iloc[0]
        assert_allclose([row["estimate"], row["std_error"], row["ci_lower"], row["ci_upper"]],
                        [ref["estimate"], ref["std_error"], ref["ci_lower"], ref["ci_upper"]], rtol=RTOL)
        assert row["n"] == len(sub) and row["events"] == sub.y.sum()
        assert row["n_exposed"] == (sub.group == "peer_mentoring").sum()
    assert res.n_subgroups == 3
    assert any("3 subgroups" in n and "exploratory" in n for n in res.notes)


def test_adjusted_per_level_ors_and_lr_test_equal_statsmodels(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="risk_level", adjust=["age"],
                              method="mle")
    levels = ["low", "moderate", "high"]
    X, names = _sm_design(data, "risk_level", levels, ["age"])
    fit = sm.Logit(data.y.to_numpy(), X).fit(disp=0)
    assert_allclose(np.log(res.table["estimate"]), fit.params[1:4], rtol=RTOL)
    assert_allclose(res.table["std_error"], fit.bse[1:4], rtol=RTOL)
    # LR test against one common exposure effect
    x = (data["group"] == "peer_mentoring").to_numpy(float)
    Xr = np.column_stack([X[:, 0], x, X[:, 4:]])
    fit_r = sm.Logit(data.y.to_numpy(), Xr).fit(disp=0)
    lr = 2 * (fit.llf - fit_r.llf)
    inter = res.interaction.iloc[0]
    assert inter["test"] == "likelihood ratio" and inter["df"] == 2
    assert_allclose([inter["statistic"], inter["p_value"]], [lr, stats.chi2.sf(lr, 2)], rtol=RTOL)


def test_reri_equals_hand_delta_method_on_statsmodels_fit(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="older", adjust=["age"],
                              reference={"older": "<35"}, method="mle")
    # standard parametrisation: x, m, x*m (+ age), fitted by statsmodels
    x = (data["group"] == "peer_mentoring").to_numpy(float)
    m = (data["older"] == "35+").to_numpy(float)
    X = np.column_stack([np.ones(len(data)), x, m, x * m, data.age.to_numpy()])
    fit = sm.Logit(data.y.to_numpy(), X).fit(disp=0)
    b1, b2, b3 = fit.params[1:4]
    V = fit.cov_params()[1:4, 1:4]
    or10, or01, or11 = math.exp(b1), math.exp(b2), math.exp(b1 + b2 + b3)
    reri = or11 - or10 - or01 + 1
    g = np.array([or11 - or10, or11 - or01, or11])  # Hosmer & Lemeshow (1992)
    se = math.sqrt(g @ V @ g)
    row = res.reri.set_index("measure").loc["RERI"]
    assert_allclose([row["estimate"], row["std_error"]], [reri, se], rtol=RTOL)
    z = stats.norm.ppf(0.975)
    assert_allclose([row["ci_lower"], row["ci_upper"]], [reri - z * se, reri + z * se], rtol=RTOL, atol=ATOL)
    ap = res.reri.set_index("measure").loc["AP", "estimate"]
    assert_allclose(ap, reri / or11, rtol=RTOL)
    # per-level ORs: exp(b1) in <35, exp(b1 + b3) in 35+
    t = res.table.set_index("level")
    assert_allclose([t.loc["<35", "estimate"], t.loc["35+", "estimate"]], [or10, math.exp(b1 + b3)], rtol=RTOL)
    # the planted modification is found: OR ~ 0.45 in 35+, ~ 1 in <35
    assert t.loc["35+", "ci_upper"] < 0.75 and t.loc["<35", "ci_lower"] < 1 < t.loc["<35", "ci_upper"]
    assert res.interaction.iloc[0]["p_value"] < 0.01


def test_risk_differences_equal_hand_g_computation(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="older", adjust=["age"], scale="rd",
                              method="mle")
    levels = ["35+", "<35"]  # sorted: '3' < '<'
    assert res.table["level"].tolist() == levels
    X, names = _sm_design(data, "older", levels, ["age"])
    fit = sm.Logit(data.y.to_numpy(), X).fit(disp=0)
    b, V = fit.params, fit.cov_params()
    rd, G = [], []
    for j, lv in enumerate(levels):
        rows = (data.older == lv).to_numpy()
        X1 = X[rows].copy()
        X1[:, 1 + j] = 1.0
        X0 = X1.copy()
        X0[:, 1 + j] = 0.0
        p1, p0 = expit(X1 @ b), expit(X0 @ b)
        rd.append(p1.mean() - p0.mean())
        G.append((p1 * (1 - p1)) @ X1 / rows.sum() - (p0 * (1 - p0)) @ X0 / rows.sum())
    G = np.array(G)
    cov = G @ V @ G.T
    assert_allclose(res.table["estimate"], rd, rtol=RTOL, atol=ATOL)
    assert_allclose(res.table["std_error"], np.sqrt(np.diag(cov)), rtol=RTOL)
    c = np.array([-1.0, 1.0])
    w = (c @ rd) ** 2 / (c @ cov @ c)
    add = res.interaction.set_index("scale").loc["additive"]
    assert_allclose(add["statistic"], w, rtol=RTOL)
    assert res.vcov.shape == (2, 2)


def test_clustered_uses_robust_wald(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="older", cluster="mentor_id",
                              method="mle")
    inter = res.interaction.iloc[0]
    assert inter["test"] == "Wald (robust)"
    full = odds_ratios(data.assign(**{
        "a": ((data.group == "peer_mentoring") & (data.older == "35+")).astype(float),
        "b": ((data.group == "peer_mentoring") & (data.older == "<35")).astype(float)}),
        "y", adjust=["a", "b", "older"], cluster="mentor_id", method="mle")
    bb = full.table.set_index("term").loc[["a", "b"], "log_odds"].to_numpy()
    V = full.vcov.loc[["a", "b"], ["a", "b"]].to_numpy()
    c = np.array([-1.0, 1.0])
    assert_allclose(inter["statistic"], (c @ bb) ** 2 / (c @ V @ c), rtol=RTOL)


def test_hazard_ratios_equal_statsmodels_phreg(data):
    res = effect_modification(data, time="time_days", event="event", exposure="group", modifier="older",
                              adjust=["age"])
    assert res.scale == "hr"
    levels = ["35+", "<35"]
    X, _ = _sm_design(data, "older", levels, ["age"])
    fit = sm.PHReg(data.time_days.to_numpy(), X[:, 1:], status=data.event.to_numpy(), ties="efron").fit()
    assert_allclose(np.log(res.table["estimate"]), fit.params[:2], rtol=1e-5)
    assert_allclose(res.table["std_error"], fit.bse[:2], rtol=1e-5)
    assert len(res.reri) == 3


def test_plot_subgroup_forest(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="risk_level")
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["risk_level: low", "risk_level: moderate",
                                                             "risk_level: high"]
    assert "interaction p =" in ax.get_title(loc="left")
    assert ax.get_xscale() == "log"
    assert any(t.get_text().startswith("n = ") for t in ax.texts)


def test_errors(data):
    with pytest.raises(InvalidParameterError, match="exactly two levels"):
        effect_modification(data, outcome="y", exposure="risk_level", modifier="older")
    with pytest.raises(InvalidParameterError, match="at least two"):
        effect_modification(data.assign(k="a"), outcome="y", exposure="group", modifier="k")
    with pytest.raises(InvalidParameterError, match="more than 20"):
        effect_modification(data, outcome="y", exposure="group", modifier="age")
    with pytest.raises(InvalidParameterError, match="scale='rd' is for a binary outcome"):
        effect_modification(data, time="time_days", event="event", exposure="group", modifier="older", scale="rd")
    with pytest.raises(InvalidParameterError, match="not both"):
        effect_modification(data, outcome="y", time="time_days", event="event", exposure="group", modifier="older")
    with pytest.raises(InvalidParameterError, match="name the 0/1 outcome"):
        effect_modification(data, exposure="group", modifier="older")
    with pytest.raises(InvalidParameterError, match="must not be in adjust"):
        effect_modification(data, outcome="y", exposure="group", modifier="older", adjust=["older"])
    with pytest.raises(InvalidParameterError, match="not found"):
        effect_modification(data, outcome="y", exposure="group", modifier="nope")
    with pytest.raises(InvalidParameterError, match="scale must be one of"):
        effect_modification(data, outcome="y", exposure="group", modifier="older", scale="rr")
    one_sided = data.copy()
    one_sided.loc[one_sided.older == "<35", "group"] = "comparison"
    with pytest.raises(DataValidationError, match="cannot be estimated there"):
        effect_modification(one_sided, outcome="y", exposure="group", modifier="older")


@pytest.mark.slow
def test_per_level_interval_coverage():
    """Per-level Wald CIs of the interaction model cover the planted ORs (2,000 simulations)."""
    rng = np.random.default_rng(99)
    reps, n = 2000, 400
    true = {"a": math.log(0.5), "b": 0.0}
    hits = np.zeros(2)
    for _ in range(reps):
        g = rng.integers(0, 2, n)
        m = rng.choice(["a", "b"], n)
        lin = -0.8 + 0.3 * (m == "b") + np.where(m == "a", true["a"], true["b"]) * g
        y = (rng.random(n) < expit(lin)).astype(int)
        d = pd.DataFrame({"y": y, "g": g, "m": m})
        t = effect_modification(d, outcome="y", exposure="g", modifier="m", method="mle").table
        for i, lv in enumerate(["a", "b"]):
            hits[i] += t.loc[i, "ci_lower"] <= math.exp(true[lv]) <= t.loc[i, "ci_upper"]
    mc = 3 * math.sqrt(0.95 * 0.05 / reps)
    assert np.all(np.abs(hits / reps - 0.95) < mc)


def test_frequency_weights_equal_the_expanded_data(data):
    agg = data.groupby(["y", "group", "older"]).size().rename("w").reset_index()
    weighted = effect_modification(agg, outcome="y", exposure="group", modifier="older", weights="w", method="mle")
    expanded = effect_modification(data, outcome="y", exposure="group", modifier="older", method="mle")
    for col in ("estimate", "ci_lower", "ci_upper", "std_error"):
        assert_allclose(weighted.table[col], expanded.table[col], rtol=RTOL)
    assert_allclose(weighted.interaction["statistic"], expanded.interaction["statistic"], rtol=RTOL)
    assert_allclose(weighted.reri["estimate"], expanded.reri["estimate"], rtol=RTOL)
    assert any("count rows, not weights" in n for n in weighted.notes)


def test_summary_and_to_dict(data):
    res = effect_modification(data, outcome="y", exposure="group", modifier="older", method="mle")
    text = res.summary()
    assert "Odds ratio of group (peer_mentoring vs comparison) by older:" in text
    assert "Interaction (multiplicative, likelihood ratio)" in text and "exploratory" in text
    out = res.to_dict()
    assert out["n_subgroups"] == 2 and out["reri"][0]["measure"] == "RERI"
