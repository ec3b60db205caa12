"""g-computation risk differences/ratios: crude equality, delta method, bootstrap."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import expit

from recoverystats.errors import InvalidParameterError
from recoverystats.regression import odds_ratios

REF_DIR = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: exact identities / independent implementation
RTOL = 1e-6
#: numerical-derivative delta method in this file (central differences, h = 1e-6)
NUMDIFF_RTOL = 1e-5
#: bootstrap SE vs delta-method SE (2,000 reps: Monte Carlo error ~ 1.6%; model error small)
BOOT_SE_RTOL = 0.10


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 500
    g = rng.integers(0, 2, n)
    age = rng.normal(35, 10, n)
    risk = rng.choice(["low", "moderate", "high"], n)
    mentor = rng.integers(0, 40, n)
    lp = -0.6 - 0.55 * g + 0.03 * (age - 35) + pd.Series(risk).map({"low": -0.4, "moderate": 0, "high": 0.5}).to_numpy()
    y = (rng.random(n) < expit(lp)).astype(int)
    return pd.DataFrame({"group": np.where(g == 1, "peer_mentoring", "comparison"), "age": age,
                         "risk_level": risk, "mentor_id": mentor, "relapse": y, "fin": g})


def test_exposure_only_rd_equals_crude(data):
    res = odds_ratios(data, "relapse", exposure="group", method="mle")
    rd = res.risk_difference().table.iloc[0]
    p1 = data.loc[data.group == "peer_mentoring", "relapse"].mean()
    p0 = data.loc[data.group == "comparison", "relapse"].mean()
    assert_allclose(rd["estimate"], p1 - p0, rtol=1e-10)
    assert_allclose([rd["risk_exposed"], rd["risk_reference"]], [p1, p0], rtol=1e-10)
    # the delta-method SE of the saturated model is the unpooled Wald SE of p1 - p0
    n1, n0 = (data.group == "peer_mentoring").sum(), (data.group == "comparison").sum()
    assert_allclose(rd["std_error"], np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0), rtol=RTOL)
    rr = res.risk_ratio().table.iloc[0]
    assert_allclose(rr["estimate"], p1 / p0, rtol=1e-10)
    assert rd["comparison"] == "peer_mentoring vs comparison"


def _numdiff_delta(data, measure):
    """Independent delta method: statsmodels Logit + central-difference gradient."""
    X = pd.DataFrame({"g": (data.group == "peer_mentoring").astype(float), "age": data.age,
                      "high": (data.risk_level == "high").astype(float),
                      "moderate": (data.risk_level == "moderate").astype(float), "const": 1.0})
    fit = sm.Logit(data.relapse.astype(float), X).fit(disp=0)
    X1, X0 = X.copy(), X.copy()
    X1["g"], X0["g"] = 1.0, 0.0

    def f(b):
        r1, r0 = expit(X1.to_numpy() @ b).mean(), expit(X0.to_numpy() @ b).mean()
        return r1 - r0 if measure == "rd" else np.log(r1 / r0)

    b = fit.params.to_numpy()
    h = 1e-6
    grad = np.array([(f(b + h * e) - f(b - h * e)) / (2 * h) for e in np.eye(len(b))])
    se = np.sqrt(grad @ fit.cov_params().to_numpy() @ grad)
    return f(b), se


def test_adjusted_rd_and_rr_delta_method_match_numerical(data):
    res = odds_ratios(data, "relapse", exposure="group", adjust=["age", "risk_level"], reference={"risk_level": "low"})
    z = stats.norm.ppf(0.975)
    rd = res.risk_difference().table.iloc[0]
    est, se = _numdiff_delta(data, "rd")
    assert_allclose(rd["estimate"], est, rtol=RTOL)
    assert_allclose(rd["std_error"], se, rtol=NUMDIFF_RTOL)
    assert_allclose([rd["ci_lower"], rd["ci_upper"]], [est - z * se, est + z * se], rtol=NUMDIFF_RTOL)
    assert_allclose(rd["p_value"], 2 * stats.norm.sf(abs(est / se)), rtol=1e-4)
    rr = res.risk_ratio().table.iloc[0]
    lest, lse = _numdiff_delta(data, "rr")
    assert_allclose(rr["estimate"], np.exp(lest), rtol=RTOL)
    assert_allclose([rr["ci_lower"], rr["ci_upper"]], np.exp([lest - z * lse, lest + z * lse]), rtol=NUMDIFF_RTOL)


def test_binary_numeric_exposure_and_levels(data):
    res = odds_ratios(data, "relapse", exposure="fin", adjust=["age"])
    rd = res.risk_difference().table.iloc[0]
    ref = odds_ratios(data, "relapse", exposure="group", adjust=["age"]).risk_difference().table.iloc[0]
    assert rd["comparison"] == "fin=1 vs fin=0"
    assert_allclose(rd["estimate"], ref["estimate"], rtol=RTOL)
    # a reference set inside the formula drives the g-computation contrast too
    viaf = odds_ratios(data, formula="relapse ~ C(group, Treatment('peer_mentoring')) + age", exposure="group")
    assert viaf.table["term"].iloc[0] == "group[comparison]"
    t2 = viaf.risk_difference().table.iloc[0]
    assert t2["comparison"] == "comparison vs peer_mentoring"
    assert_allclose(t2["estimate"], -ref["estimate"], rtol=RTOL)
    multi = odds_ratios(data, "relapse", exposure="risk_level", adjust=["age"], reference={"risk_level": "low"})
    t = multi.risk_difference().table
    assert t["comparison"].tolist() == ["moderate vs low", "high vs low"]  # data-model code order


def test_bootstrap_reproducible_and_close_to_delta(data):
    res = odds_ratios(data, "relapse", exposure="group", adjust=["age", "risk_level"])
    a = res.risk_difference(n_boot=2000, seed=7)
    b = res.risk_difference(n_boot=2000, seed=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    delta = res.risk_difference().table.iloc[0]
    boot = a.table.iloc[0]
    assert_allclose(boot["estimate"], delta["estimate"], rtol=1e-12)  # point estimate not bootstrapped
    assert_allclose(boot["std_error"], delta["std_error"], rtol=BOOT_SE_RTOL)
    assert boot["ci_lower"] < delta["estimate"] < boot["ci_upper"]
    assert_allclose([boot["ci_lower"], boot["ci_upper"]], [delta["ci_lower"], delta["ci_upper"]], atol=0.015)
    assert "percentile bootstrap CI (2000 resamples of rows, seed=7)" in a.method
    # the bootstrap replicates reproduce a direct (slow) per-replicate statsmodels refit
    rng = np.random.default_rng(7)
    n = len(data)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=3)
    X = res._model.design.X
    X1, X0 = res._model.design.counterfactual("peer_mentoring"), res._model.design.counterfactual("comparison")
    from recoverystats.regression._engine import batched_fit

    betas, ok = batched_fit(X, res._model.y, counts, res._model.beta)
    for i in range(3):
        idx = np.repeat(np.arange(n), counts[i])
        fit = sm.Logit(res._model.y[idx], X[idx]).fit(disp=0)
        assert_allclose(betas[i], fit.params, rtol=1e-7)
        r = expit(X1[idx] @ fit.params).mean() - expit(X0[idx] @ fit.params).mean()
        assert np.isfinite(r) and ok[i]


def test_cluster_bootstrap_and_cr2_delta(data):
    res = odds_ratios(data, "relapse", exposure="group", adjust=["age"], cluster="mentor_id",
                      cluster_correction="CR2")
    d = res.risk_difference().table.iloc[0]
    G = data.mentor_id.nunique()
    q = stats.t.ppf(0.975, G - 1)
    assert_allclose(d["ci_upper"] - d["estimate"], q * d["std_error"], rtol=1e-10)
    cb = res.risk_difference(n_boot=500, seed=3)
    assert "resamples of clusters" in cb.method
    assert cb.table["ci_lower"].iloc[0] < cb.table["estimate"].iloc[0] < cb.table["ci_upper"].iloc[0]


def test_firth_model_bootstrap_uses_firth():
    rng = np.random.default_rng(3)
    n = 80
    df = pd.DataFrame({"g": rng.integers(0, 2, n), "x": rng.normal(size=n)})
    df["y"] = (rng.random(n) < 0.15).astype(int)
    res = odds_ratios(df, "y", exposure="g", adjust=["x"], method="firth")
    out = res.risk_difference(n_boot=300, seed=1)
    assert "Firth" in " ".join(out.notes)
    assert np.isfinite(out.table[["ci_lower", "ci_upper"]].to_numpy()).all()


def test_gcomp_bad_inputs(data):
    res = odds_ratios(data, "relapse", exposure="age", adjust=["fin"])
    with pytest.raises(InvalidParameterError, match=r"exposure 'age' is continuous"):
        res.risk_difference()
    res2 = odds_ratios(data, "relapse", adjust=["fin", "age"])
    with pytest.raises(InvalidParameterError, match=r"risk_ratio\(\) needs a designated exposure"):
        res2.risk_ratio()
    res3 = odds_ratios(data, "relapse", exposure="fin")
    with pytest.raises(InvalidParameterError, match=r"n_boot must be a non-negative integer.*-5"):
        res3.risk_difference(n_boot=-5)


def test_gcomp_display_and_plot(data):
    import matplotlib

    matplotlib.use("Agg")
    res = odds_ratios(data, "relapse", exposure="group", adjust=["age"])
    rd = res.risk_difference()
    assert "<th>Risk exposed</th>" in rd._repr_html_()
    ax = rd.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["peer_mentoring vs comparison"]
    assert any(list(ln.get_xdata()) == [0.0, 0.0] for ln in ax.lines)
    ax2 = res.risk_ratio().plot()
    assert ax2.get_xscale() == "log"


def test_result_survives_pickle(data):
    import pickle

    res = odds_ratios(data, formula="relapse ~ group + age + C(risk_level)", exposure="group")
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(back.table, res.table)
    pd.testing.assert_frame_equal(back.risk_difference().table, res.risk_difference().table)
