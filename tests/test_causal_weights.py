"""propensity_score and balancing_weights: the fitted model against statsmodels, weight
formulas, entropy balancing's exact moments, ESS, truncation, overlap notes, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import recoverystats as rs

#: Independent implementation (statsmodels Logit, Newton to 1e-8): agreement to 1e-6 relative.
RTOL_IMPL = 1e-6
#: Entropy balancing: weighted means equal their targets to this (absolute, data units / SD).
ENTROPY_ATOL = 1e-8


def _data(n=800, seed=4):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, n).astype(float)
    risk = rng.choice(["low", "moderate", "high", "very_high"], n, p=[0.2, 0.35, 0.3, 0.15])
    female = rng.random(n) < 0.3
    lp = -1 + 0.03 * (age - 40) + np.select([risk == "moderate", risk == "high", risk == "very_high"], [0.4, 0.8, 1.2], 0)
    t = rng.random(n) < 1 / (1 + np.exp(-lp))
    return pd.DataFrame({"group": np.where(t, "peer_mentoring", "comparison"), "age": age, "risk_level": risk,
                         "female": female}, index=pd.RangeIndex(100, 100 + n))


def test_propensity_score_matches_statsmodels_logit():
    import statsmodels.api as sm

    df = _data()
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level", "female"])
    assert ps.treated == "peer_mentoring" and ps.control == "comparison"  # coded column: comparison is reference
    X = pd.get_dummies(df[["age", "risk_level", "female"]], columns=["risk_level"], drop_first=False).astype(float)
    X = X.drop(columns="risk_level_low")
    X.insert(0, "const", 1.0)
    ref = sm.Logit((df["group"] == "peer_mentoring").astype(float), X).fit(disp=0, tol=1e-12)
    assert_allclose(ps.scores.to_numpy(), ref.predict().to_numpy() if hasattr(ref.predict(), "to_numpy") else ref.predict(),
                    rtol=RTOL_IMPL)
    assert ps.scores.index.equals(df.index)
    m = ps.model.set_index("term")
    assert_allclose(m.loc["age", "log_odds"], ref.params["age"], rtol=RTOL_IMPL)
    assert_allclose(m.loc["age", "std_error"], ref.bse["age"], rtol=RTOL_IMPL)
    assert_allclose(np.sqrt(ps.vcov.loc["age", "age"]), ref.bse["age"], rtol=RTOL_IMPL)


def test_overlap_table_and_common_support():
    df = _data()
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level"])
    p, t = ps.scores, ps.exposed
    lo, hi = max(p[t].min(), p[~t].min()), min(p[t].max(), p[~t].max())
    assert_allclose(ps.common_support, (lo, hi), rtol=0)
    tab = ps.table.set_index("exposed")
    assert tab.loc[1, "n"] == t.sum() and tab.loc[0, "n"] == (~t).sum()
    assert_allclose(tab.loc[1, "p50"], p[t].median(), rtol=1e-12)
    out = ((p < lo) | (p > hi)).sum()
    assert tab["outside_support"].sum() == out
    assert_allclose(ps.share_outside, out / len(p), rtol=1e-12)


def test_ps_weight_formulas():
    df = _data()
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level"])
    e, t = ps.scores.to_numpy(), ps.exposed.to_numpy()
    share = t.mean()
    cases = {
        ("ATE", False): np.where(t, 1 / e, 1 / (1 - e)),
        ("ATE", True): np.where(t, share / e, (1 - share) / (1 - e)),
        ("ATT", True): np.where(t, 1.0, e / (1 - e)),
        ("ATO", True): np.where(t, 1 - e, e),
    }
    for (estimand, stab), expected in cases.items():
        bw = rs.balancing_weights(df, exposure="group", adjust=["age", "risk_level"], estimand=estimand, stabilize=stab)
        assert_allclose(bw.weights.to_numpy(), expected, rtol=1e-12, err_msg=estimand)
        assert bw.weights.index.equals(df.index)
        tab = bw.table.set_index("group")
        for g, mask in (("peer_mentoring", t), ("comparison", ~t)):
            wg = expected[mask]
            assert_allclose(tab.loc[g, "ess"], wg.sum() ** 2 / (wg ** 2).sum(), rtol=1e-12)
            k = int(np.ceil(0.01 * len(wg)))
            assert_allclose(tab.loc[g, "top1_share"], np.sort(wg)[-k:].sum() / wg.sum(), rtol=1e-12)
            assert_allclose(tab.loc[g, "sd"], wg.std(ddof=1), rtol=1e-12)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("moments", [1, 2])
def test_entropy_balancing_exact_moments(estimand, moments):
    df = _data()
    bw = rs.balancing_weights(df, exposure="group", adjust=["age", "risk_level", "female"], method="entropy",
                              estimand=estimand, moments=moments)
    assert bw.converged and bw.max_moment_difference < 1e-8
    w = bw.weights.to_numpy()
    t = bw.exposed.to_numpy()
    C = pd.get_dummies(df[["age", "risk_level", "female"]], columns=["risk_level"]).astype(float)
    if moments == 2:
        C["age2"] = C["age"] ** 2
    C = C.to_numpy()
    target = C[t].mean(axis=0) if estimand == "ATT" else C.mean(axis=0)
    groups = [False] if estimand == "ATT" else [True, False]
    for g in groups:
        mask = t == g
        wm = (w[mask, None] * C[mask]).sum(axis=0) / w[mask].sum()
        assert_allclose(wm, target, atol=ENTROPY_ATOL * C.std(axis=0).max(), rtol=0)
        # the solution has the exponential-family form: log w is linear in the moments
        A = np.column_stack([np.ones(mask.sum()), C[mask]])
        resid = np.log(w[mask]) - A @ np.linalg.lstsq(A, np.log(w[mask]), rcond=None)[0]
        assert np.max(np.abs(resid)) < 1e-7
    if estimand == "ATT":
        assert_allclose(w[t], 1.0)
        assert_allclose(w[~t].sum(), t.sum(), rtol=1e-12)
    else:
        assert_allclose([w[t].sum(), w[~t].sum()], [t.sum(), (~t).sum()], rtol=1e-12)


def test_entropy_balancing_unreachable_target_raises():
    df = _data(n=300)
    # the comparison group's ages never reach the exposed group's mean
    df.loc[df["group"] == "comparison", "age"] = np.minimum(df.loc[df["group"] == "comparison", "age"], 20)
    df.loc[df["group"] == "peer_mentoring", "age"] = np.maximum(df.loc[df["group"] == "peer_mentoring", "age"], 40)
    with pytest.raises(rs.EstimationError, match="entropy balancing did not converge.*'age'"):
        rs.balancing_weights(df, exposure="group", adjust=["age"], method="entropy", estimand="ATT")


def test_trim_truncates_at_group_quantile():
    df = _data()
    raw = rs.balancing_weights(df, exposure="group", adjust=["age", "risk_level"], stabilize=False)
    tr = rs.balancing_weights(df, exposure="group", adjust=["age", "risk_level"], stabilize=False, trim=0.95)
    t = raw.exposed
    for mask in (t, ~t):
        cap = np.quantile(raw.weights[mask], 0.95)
        assert_allclose(tr.weights[mask].to_numpy(), np.minimum(raw.weights[mask].to_numpy(), cap), rtol=1e-12)
    assert any("truncated" in n for n in tr.notes)


def test_poor_overlap_notes():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    t = rng.random(n) < 1 / (1 + np.exp(-4.5 * x))
    df = pd.DataFrame({"t": t, "x": x})
    bw = rs.balancing_weights(df, exposure="t", adjust=["x"])
    text = " ".join(bw.notes)
    assert "extreme" in text and "highly variable" in text


def test_small_group_uses_firth_with_note():
    df = _data(n=200)
    idx = df.index[df["group"] == "peer_mentoring"][12:]
    df = df.drop(idx)
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level"])
    assert ps.method.startswith("Firth") and any("Firth" in n for n in ps.notes)


def test_plots():
    import matplotlib

    matplotlib.use("Agg")
    df = _data()
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level"])
    ax = ps.plot(bins=20)
    heights = np.array([p.get_height() for p in ax.patches])
    assert heights[heights > 0].sum() == ps.exposed.sum()
    assert -heights[heights < 0].sum() == (~ps.exposed).sum()
    bw = rs.balancing_weights(df, exposure="group", adjust=["age", "risk_level"], estimand="ATT")
    ax2 = bw.plot()
    labels = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert any("ESS=" in lab for lab in labels)


def test_results_serialise_without_rows():
    df = _data()
    bw = rs.balancing_weights(df, exposure="group", adjust=["age"])
    d = bw.to_dict()
    assert "weights" not in d and "_weights" not in d and d["estimand"] == "ATE"
    assert len(d["table"]) == 3
    ps = rs.propensity_score(df, exposure="group", adjust=["age"])
    assert "scores" not in ps.to_dict()


def test_binned_counts_and_suppressed_plot():
    import matplotlib

    matplotlib.use("Agg")
    from recoverystats.plotting.causal import plot_overlap_counts

    df = _data()
    ps = rs.propensity_score(df, exposure="group", adjust=["age", "risk_level"])
    b = ps.binned(10)
    assert list(b.columns) == ["bin", "lower", "upper", "group", "exposed", "n"]
    assert b.groupby("exposed")["n"].sum().to_dict() == {0: int((~ps.exposed).sum()), 1: int(ps.exposed.sum())}
    p = ps.scores[ps.exposed]
    assert b[(b["exposed"] == 1) & (b["bin"] == 3)]["n"].iloc[0] == int(((p >= 0.3) & (p < 0.4)).sum())
    sup = b.assign(n=b["n"].where(b["n"] >= 11))  # small cells suppressed
    ax = plot_overlap_counts(sup)
    drawn = sorted(abs(r.get_height()) for r in ax.patches)
    assert drawn == sorted(sup["n"].dropna().astype(float))
    k = int(sup["n"].isna().sum())
    assert any(f"{k} small bin(s) suppressed" in t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(rs.InvalidParameterError, match="bins must be"):
        ps.binned(1)
