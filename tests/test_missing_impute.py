"""Multiple imputation by chained equations: impute() and ImputedData."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import recoverystats as rs
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.missing.imputation import _mlogit_fit, _norm_draw, _pmm_match


def _frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    d = pd.DataFrame({
        "id": [f"P{i:05d}" for i in range(n)],  # identifier: carried, not modelled
        "age": np.round(35 + 8 * z + rng.normal(scale=4, size=n)),
        "score": 20 + 4 * z + rng.normal(scale=2, size=n),
        "housed": rng.random(n) < 1 / (1 + np.exp(-z)),
        "risk": pd.Categorical(np.array(["low", "moderate", "high"])[np.clip((z + 1.3).astype(int), 0, 2)]),
        "site": rng.choice(["a", "b"], n),
        "y": (rng.random(n) < 1 / (1 + np.exp(-(z - 0.5)))).astype(int),
        "start": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
    })
    d["age"] = d["age"].astype("Int64")
    d.loc[rng.random(n) < 0.25, "age"] = pd.NA
    d.loc[rng.random(n) < 0.3, "score"] = np.nan
    housed = d["housed"].astype(object)
    housed[rng.random(n) < 0.2] = np.nan
    d["housed"] = housed
    d.loc[rng.random(n) < 0.2, "risk"] = np.nan
    return d


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def imp(frame: pd.DataFrame) -> rs.ImputedData:
    return rs.impute(frame, m=4, seed=42, max_iter=4)


def test_methods_and_metadata(frame: pd.DataFrame, imp: rs.ImputedData) -> None:
    assert imp.m == 4 and len(imp) == 4
    assert {k: v for k, v in imp.methods.items() if v} == {
        "age": "pmm", "score": "pmm", "housed": "logreg", "risk": "polyreg"}
    assert "id" not in imp.methods and "start" not in imp.methods  # not modellable: carried only
    assert imp.methods["y"] == "" and imp.methods["site"] == ""
    assert set(imp.predictors["score"]) == {"age", "housed", "risk", "site", "y"}  # outcome included
    assert_allclose(imp.fraction_missing["score"], frame["score"].isna().mean())
    assert imp.fraction_missing["y"] == 0
    assert imp.settings["m"] == 4 and imp.settings["seed"] == 42 and imp.settings["max_iter"] == 4
    assert imp.settings["methods"]["risk"] == "polyreg"
    assert set(imp.summary()["column"]) == set(imp.methods)


def test_completed_data_sets(frame: pd.DataFrame, imp: rs.ImputedData) -> None:
    for i, d in enumerate(imp):
        assert d.shape == frame.shape and list(d.columns) == list(frame.columns)
        assert not d[["age", "score", "housed", "risk"]].isna().any().any()
        obs = frame["score"].notna()
        assert_allclose(d.loc[obs, "score"], frame.loc[obs, "score"])  # observed values untouched
        assert d["id"].equals(frame["id"]) and d["start"].equals(frame["start"])
        assert str(d["age"].dtype) == "Int64"  # pmm imputes observed integers: dtype kept
        assert d["housed"].dtype == bool
        assert isinstance(d["risk"].dtype, pd.CategoricalDtype)
        assert list(d["risk"].cat.categories) == list(frame["risk"].cat.categories)
        assert d.equals(imp.complete(i))
    assert not imp.complete(0)["score"].equals(imp.complete(1)["score"])  # the data sets differ
    with pytest.raises(InvalidParameterError, match="from 0 to 3"):
        imp.complete(4)


def test_pmm_imputes_only_observed_values(frame: pd.DataFrame, imp: rs.ImputedData) -> None:
    for col in ("age", "score"):
        observed = set(frame[col].dropna().astype(float))
        for d in imp:
            imputed = d.loc[frame[col].isna(), col].astype(float)
            assert set(imputed) <= observed


def test_same_seed_same_data_sets(frame: pd.DataFrame, imp: rs.ImputedData) -> None:
    again = rs.impute(frame, m=4, seed=42, max_iter=4)
    for a, b in zip(imp, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(imp.traces, again.traces)
    other = rs.impute(frame, m=4, seed=43, max_iter=4)
    assert not other.complete(0).equals(imp.complete(0))
    auto = rs.impute(frame, m=2, max_iter=1)  # no seed: one is drawn and recorded
    again_auto = rs.impute(frame, m=2, max_iter=1, seed=auto.settings["seed"])
    pd.testing.assert_frame_equal(auto.complete(1), again_auto.complete(1))


def test_traces_and_plot(imp: rs.ImputedData) -> None:
    tr = imp.traces
    assert list(tr.columns) == ["column", "iteration", "chain", "mean", "sd"]
    assert len(tr) == 4 * 4 * 4  # columns x iterations x chains
    assert set(tr["iteration"]) == {1, 2, 3, 4} and set(tr["chain"]) == {0, 1, 2, 3}
    # the last iteration's trace is the mean of the imputed values in the data set
    last = tr[(tr["column"] == "score") & (tr["iteration"] == 4)].set_index("chain")["mean"]
    miss = imp._rows["score"]
    for i, d in enumerate(imp):
        assert_allclose(last[i], d["score"].to_numpy()[miss].mean(), rtol=1e-12)
    import matplotlib

    matplotlib.use("Agg")
    axes = imp.plot()
    assert axes.shape == (2, 4)
    assert len(axes[0, 0].get_lines()) == 4  # one line per chain
    assert_allclose(axes[0, 0].get_lines()[0].get_xdata(), [1, 2, 3, 4])
    ax = imp.plot("score", ax=axes[1, 1])
    assert ax is axes[1, 1]
    with pytest.raises(InvalidParameterError, match="were not imputed"):
        imp.plot("y")


def test_norm_draw_matches_mice_posterior() -> None:
    # beta_hat is least squares (ridge 1e-5 on the diagonal); sigma*^2 ~ RSS / chi2(n - p)
    rng = np.random.default_rng(5)
    n = 400
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 2.0] + rng.normal(scale=1.5, size=n)
    beta, _, _ = _norm_draw(X, y, np.random.default_rng(0))
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    assert_allclose(beta, ols, rtol=1e-4)
    draws = np.array([_norm_draw(X, y, np.random.default_rng(s))[1:] for s in range(2000)], dtype=object)
    b1 = np.array([d[1] for d in draws[:, 0]])
    sig = np.array(draws[:, 1], dtype=float)
    rss = float(np.sum((y - X @ ols) ** 2))
    se_b1 = np.sqrt(rss / (n - 2) * np.linalg.inv(X.T @ X)[1, 1])
    # posterior SD of the slope and the mean of sigma*^2 (RSS / (n - p - 2) for an inverse chi-square)
    assert_allclose(b1.std(), se_b1, rtol=0.06)
    assert_allclose(np.mean(sig**2), rss / (n - 2 - 2), rtol=0.02)


def test_pmm_match_picks_among_the_closest() -> None:
    rng = np.random.default_rng(1)
    yo = rng.normal(size=300)
    ym = np.array([-3.0, 0.0, 0.5, 5.0])
    picks = np.array([_pmm_match(yo, ym, 5, np.random.default_rng(s)) for s in range(200)])
    for j, target in enumerate(ym):
        closest = set(np.argsort(np.abs(yo - target))[:5])
        assert set(picks[:, j]) == closest  # every donor is one of the 5 closest, each is used


def test_mlogit_fit_matches_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 3000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    eta = np.column_stack([np.zeros(n), X @ [0.2, 0.5, -0.3], X @ [-0.5, 1.0, 0.4]])
    P = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    codes = (rng.random(n)[:, None] > np.cumsum(P, axis=1)[:, :-1]).sum(axis=1).astype(float)
    B, cov = _mlogit_fit(X, codes, 3, np.zeros((3, 2)))
    ref = sm.MNLogit(codes, X).fit(disp=0)
    # the ridge penalty (1e-4 per row) moves the estimates by far less than their SEs
    assert_allclose(B, ref.params, atol=0.02 * np.sqrt(np.diag(ref.cov_params())).max() + 0.01)
    assert_allclose(np.sqrt(np.diag(cov)), np.sqrt(np.diag(ref.cov_params())), rtol=0.02)


def test_mar_mean_recovered_where_complete_case_is_biased() -> None:
    # x missing more often when y is high (MAR given y): the complete-case mean of x is
    # too low; MI with y in the model recovers it (and norm and pmm agree)
    rng = np.random.default_rng(8)
    n = 4000
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    miss = rng.random(n) < 1 / (1 + np.exp(-(2 * y - 1)))
    d = pd.DataFrame({"x": np.where(miss, np.nan, x), "y": y})
    cc = d["x"].mean()
    truth = x.mean()
    for method in ("pmm", "norm"):
        imp = rs.impute(d, m=5, seed=1, max_iter=5, method=method)
        mi = np.mean([c["x"].mean() for c in imp])
        se = x.std() / np.sqrt(n)
        assert abs(mi - truth) < 4 * se, method
    assert cc < truth - 10 * x.std() / np.sqrt(n)


def test_categorical_imputation_follows_predictors() -> None:
    # the level of g depends strongly on x: the imputed levels must follow x
    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=n)
    g = np.where(x < -0.5, "a", np.where(x < 0.5, "b", "c"))
    flip = rng.random(n) < 0.1
    g[flip] = rng.choice(["a", "b", "c"], flip.sum())
    d = pd.DataFrame({"x": x, "g": g, "b": np.where(x > 0, 1.0, 0.0)})
    miss = rng.random(n) < 0.3
    d.loc[miss, "g"] = np.nan
    d.loc[rng.random(n) < 0.3, "b"] = np.nan
    imp = rs.impute(d, m=3, seed=2, max_iter=3)
    assert imp.methods["g"] == "polyreg" and imp.methods["b"] == "logreg"
    for c in imp:
        gi = c.loc[miss, "g"]
        assert set(gi) <= {"a", "b", "c"}
        agree = np.mean(gi.to_numpy() == g[miss])
        assert agree > 0.6  # far above the 1/3 of imputing without the predictor


def test_method_overrides_and_columns(frame: pd.DataFrame) -> None:
    imp = rs.impute(frame, m=2, seed=1, max_iter=1, method={"score": "norm"}, columns=["score", "y", "site"],
                    auxiliary=["risk"])
    assert imp.methods["score"] == "norm"
    assert imp.methods["risk"] == "polyreg"  # auxiliary columns are imputed too when incomplete
    assert "age" not in imp.methods  # outside the model: carried, still missing
    assert imp.complete(0)["age"].isna().any()
    assert imp.settings["auxiliary"] == ["risk"]
    obs = set(frame["score"].dropna())
    assert not set(imp.complete(0).loc[frame["score"].isna(), "score"]) <= obs  # norm draws new values


def test_bad_input(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="m must be an integer of at least 2"):
        rs.impute(frame, m=1)
    with pytest.raises(InvalidParameterError, match="max_iter"):
        rs.impute(frame, max_iter=0)
    d = frame.copy()
    d["empty"] = np.nan
    with pytest.raises(DataValidationError, match="column 'empty' is entirely missing"):
        rs.impute(d, m=2)
    d = frame.copy()
    d["risk"] = d["risk"].cat.add_categories(["unseen"])
    with pytest.raises(DataValidationError, match=r"column 'risk' has level\(s\) \['unseen'\] with no observed row"):
        rs.impute(d, m=2)
    with pytest.raises(InvalidParameterError, match="method 'logreg' needs a column with two values; 'score'"):
        rs.impute(frame, m=2, method={"score": "logreg"})
    with pytest.raises(InvalidParameterError, match="'polyreg' needs a categorical column; 'age'"):
        rs.impute(frame, m=2, method={"age": "polyreg"})
    with pytest.raises(InvalidParameterError, match="method 'pmm' needs a numeric column; 'risk'"):
        rs.impute(frame, m=2, method={"risk": "pmm"})
    with pytest.raises(InvalidParameterError, match="must be one of"):
        rs.impute(frame, m=2, method="mean")
    with pytest.raises(InvalidParameterError, match="not in the imputation model"):
        rs.impute(frame, m=2, method={"nope": "pmm"})
    with pytest.raises(InvalidParameterError, match="nope"):
        rs.impute(frame, m=2, columns=["score", "nope"])
    with pytest.raises(DataValidationError, match="column 'start'.*cannot be in an imputation model"):
        rs.impute(frame, m=2, columns=["score", "start"])
    with pytest.raises(InvalidParameterError, match="DataFrame"):
        rs.impute(frame.to_numpy(), m=2)


def test_repr(imp: rs.ImputedData) -> None:
    text = repr(imp)
    assert "m=4" in text and "score" in text and "polyreg" in text
    page = imp._repr_html_()
    assert "m = 4" in page and "polyreg" in page and "seed 42" in page


# ---------------------------------------------------------------------------
# simulation with the program simulator: MCAR / MAR / MNAR
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """Participants of a simulated program with their 1-year rearrest outcome (complete)."""
    from recoverystats.datasets import simulate_program

    sim = simulate_program(20000, seed=3, contacts=False, assessments=False)
    r = rs.recidivism(sim.program())
    cols = ["group", "site", "age", "gender", "risk_level", "prior_incarcerations", "recidivated"]
    return r.loc[r["eligible"], cols].reset_index(drop=True)


#: Missingness of the follow-up outcome by risk level (MAR given risk level and site).
P_MISS_RISK = {"low": 0.05, "moderate": 0.15, "high": 0.35, "very_high": 0.6}


@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
def test_followup_rate_complete_case_vs_mi(population: pd.DataFrame, mechanism: str) -> None:
    # the 1-year rearrest rate with follow-up missing: MCAR (both fine), MAR on risk level
    # and site (complete case biased, MI not), MNAR on the outcome itself (both biased: MI
    # assumes MAR, which is why the tipping-point analysis exists)
    d = population.copy()
    rng = np.random.default_rng(11)
    y = d["recidivated"].to_numpy(copy=True)
    if mechanism == "MCAR":
        p = np.full(len(d), 0.3)
    elif mechanism == "MAR":
        p = d["risk_level"].map(P_MISS_RISK).to_numpy() + np.where(d["site"] == "site_c", 0.15, 0.0)
    else:
        p = np.where(y == 1, 0.5, 0.15)
    d.loc[rng.random(len(d)) < p, "recidivated"] = np.nan
    full = y.mean()
    se = np.sqrt(full * (1 - full) / len(d))  # sampling SE of the full-data rate
    cc = rs.proportion(d, "recidivated").table["estimate"].iloc[0]
    imp = rs.impute(d, m=5, seed=5, max_iter=5)
    mi = rs.proportion(imp, "recidivated").table.iloc[0]
    if mechanism == "MCAR":
        assert abs(cc - full) < 3 * se and abs(mi["estimate"] - full) < 3 * se
    elif mechanism == "MAR":
        assert cc < full - 4 * se  # high-risk participants (more rearrests) are missing more often
        assert abs(mi["estimate"] - full) < 2 * se
        assert mi["ci_lower"] < full < mi["ci_upper"]
        assert mi["fmi"] > 0
    else:
        assert cc < full - 4 * se and mi["estimate"] < full - 4 * se


@pytest.mark.slow
def test_pooled_log_odds_ratio_coverage_under_mar(population: pd.DataFrame) -> None:
    # age missing more often among rearrested mentees (MAR given outcome, group and site):
    # the complete-case odds ratio of the group is biased, the pooled MI one is not, and its
    # 95% interval covers the population value within 3 Monte Carlo SEs of 95%.
    kw = dict(exposure="group", adjust=["risk_level", "age", "site"])
    term = "group[peer_mentoring]"
    truth = rs.odds_ratios(population, "recidivated", **kw).table.set_index("term").loc[term, "log_odds"]
    reps, n = 200, 1000
    rng = np.random.default_rng(2024)
    cover, mi_est, cc_est = [], [], []
    for rep in range(reps):
        d = population.sample(n, replace=True, random_state=int(rng.integers(2**31))).reset_index(drop=True)
        pm = (d["group"] == "peer_mentoring").to_numpy()
        y = d["recidivated"].to_numpy()
        p = np.where(y == 1, np.where(pm, 0.6, 0.15), 0.15) + np.where(d["site"] == "site_c", 0.1, 0.0)
        d.loc[rng.random(n) < p, "age"] = np.nan
        imp = rs.impute(d, m=5, seed=rep, max_iter=5)
        row = rs.odds_ratios(imp, "recidivated", **kw).table.set_index("term").loc[term]
        cc = rs.odds_ratios(d.dropna(), "recidivated", **kw).table.set_index("term").loc[term, "log_odds"]
        mi_est.append(row["log_odds"])
        cc_est.append(cc)
        cover.append(np.log(row["ci_lower"]) <= truth <= np.log(row["ci_upper"]))
    mc_se = np.sqrt(0.95 * 0.05 / reps)
    assert abs(np.mean(cover) - 0.95) < 3 * mc_se
    sd = np.std(mi_est, ddof=1)
    assert abs(np.mean(mi_est) - truth) < 3 * sd / np.sqrt(reps)  # unbiased
    assert np.mean(cc_est) - truth < -0.4  # complete case: selection on outcome x group


def test_predictor_level_seen_only_where_the_target_is_missing() -> None:
    # level "z" of c occurs only in rows where x is missing: its indicator is 0 in every row
    # of x's model fit (a singular X'X without the ridge floor); x must still be imputed
    rng = np.random.default_rng(6)
    n = 400
    d = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(["a", "b"], n),
                      "flag": (rng.random(n) < 0.5).astype(float)})
    d.loc[:19, "c"] = "z"
    d.loc[:39, "x"] = np.nan
    d.loc[rng.random(n) < 0.2, "flag"] = np.nan
    imp = rs.impute(d, m=2, seed=1, max_iter=2, method={"x": "norm"})
    assert np.isfinite(imp.complete(0)["x"]).all()
    pmm = rs.impute(d, m=2, seed=1, max_iter=2)
    assert not pmm.complete(1)["x"].isna().any()


def test_result_does_not_depend_on_the_number_of_threads(frame: pd.DataFrame, monkeypatch) -> None:
    from recoverystats.missing import imputation

    monkeypatch.setattr(imputation, "MAX_WORKERS", 1)
    one = rs.impute(frame, m=3, seed=9, max_iter=2)
    monkeypatch.setattr(imputation, "MAX_WORKERS", 3)
    monkeypatch.setattr(imputation.os, "cpu_count", lambda: 3)
    three = rs.impute(frame, m=3, seed=9, max_iter=2)
    for a, b in zip(one, three, strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(one.traces, three.traces)


def test_index_is_kept_and_values_go_to_their_rows() -> None:
    rng = np.random.default_rng(12)
    n = 200
    d = pd.DataFrame({"x": rng.normal(size=n), "g": pd.Categorical(rng.choice(["a", "b", "c"], n)),
                      "y": rng.normal(size=n)}, index=rng.permutation(np.arange(1000, 1000 + n)))
    d.iloc[:30, 0] = np.nan
    d.iloc[10:50, 1] = np.nan
    imp = rs.impute(d, m=2, seed=3, max_iter=2)
    c = imp.complete(0)
    assert c.index.equals(d.index)
    keep = d["x"].notna()
    assert_allclose(c.loc[keep, "x"], d.loc[keep, "x"])
    assert (c.loc[d["g"].notna(), "g"] == d.loc[d["g"].notna(), "g"]).all()
    assert not c.isna().any().any()


def test_logreg_under_complete_separation_stays_finite() -> None:
    # b is 1 exactly when x > 0 among the observed rows: the logistic MLE is infinite; the
    # ridge penalty keeps the imputation model finite and the imputations follow x
    rng = np.random.default_rng(7)
    n = 500
    x = rng.normal(size=n)
    d = pd.DataFrame({"x": x, "b": (x > 0).astype(float)})
    miss = rng.random(n) < 0.3
    d.loc[miss, "b"] = np.nan
    imp = rs.impute(d, m=3, seed=1, max_iter=3)
    for c in imp:
        agree = np.mean(c.loc[miss, "b"].to_numpy() == (x[miss] > 0))
        assert agree > 0.9


def test_unused_level_of_a_complete_predictor_is_harmless(frame: pd.DataFrame) -> None:
    d = frame.copy()
    d["site"] = pd.Categorical(d["site"], categories=["a", "b", "never"])
    imp = rs.impute(d, m=2, seed=1, max_iter=2)
    assert imp.methods["site"] == ""
    assert list(imp.complete(0)["site"].cat.categories) == ["a", "b", "never"]
