"""treatment_effect: estimating equations checked by a direct implementation, binary and
survival outcomes, bootstrap, clustering, the E-value note, and CI coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit

import recoverystats as rs

#: A direct implementation of the same formulas (numerical Jacobian by central differences
#: on standardised data: accurate to ~1e-8 relative).
RTOL_DIRECT = 1e-6
#: Equal by construction (same estimator, different code path).
RTOL_SAME = 1e-9


def _data(n=600, seed=11, binary=True):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x3 = (rng.random(n) < 0.4).astype(float)
    e = expit(-0.3 + 0.8 * x1 - 0.5 * x2 + 0.6 * x3)
    t = (rng.random(n) < e).astype(int)
    lin = -0.5 + 0.7 * t + 0.6 * x1 + 0.4 * x2 - 0.5 * x3 + 0.3 * t * x1
    y = (rng.random(n) < expit(lin)).astype(int) if binary else lin + rng.normal(size=n)
    return pd.DataFrame({"t": t, "x1": x1, "x2": x2, "x3": x3, "y": y})


def _direct(df, method, estimand, binary):
    """Point estimates and sandwich SE of mu1 - mu0 from the documented estimating equations,
    with statsmodels fitting the models and a numerical Jacobian."""
    import statsmodels.api as sm

    X = np.column_stack([np.ones(len(df)), df[["x1", "x2", "x3"]].to_numpy()])
    T = df["t"].to_numpy().astype(float)
    Y = df["y"].to_numpy().astype(float)
    k = X.shape[1]
    need_ps = method != "gcomp" or estimand == "ATO"
    need_out = method != "ipw"
    beta = sm.Logit(T, X).fit(disp=0).params if need_ps else np.zeros(0)
    g0 = g1 = np.zeros(0)
    if need_out:
        fam = sm.families.Binomial() if binary else sm.families.Gaussian()
        g0 = sm.GLM(Y[T == 0], X[T == 0], family=fam).fit().params
        g1 = sm.GLM(Y[T == 1], X[T == 1], family=fam).fit().params
    link = expit if binary else (lambda v: v)

    def psi(theta):
        mu1, mu0 = theta[0], theta[1]
        pos = 2
        if need_ps:
            b = theta[pos:pos + k]
            pos += k
            e = expit(X @ b)
        else:
            e = None
        if need_out:
            c0, c1 = theta[pos:pos + k], theta[pos + k:pos + 2 * k]
            m0, m1 = link(X @ c0), link(X @ c1)
        if estimand == "ATE":
            h = np.ones(len(T))
        elif estimand == "ATT":
            h = T if method == "gcomp" else e
        else:
            h = e * (1 - e)
        cols = []
        if method == "ipw":
            a1, a0 = h / e, h / (1 - e)
            cols += [T * a1 * (Y - mu1), (1 - T) * a0 * (Y - mu0)]
        elif method == "aipw":
            a1, a0 = h / e, h / (1 - e)
            cols += [h * m1 + T * a1 * (Y - m1) - h * mu1, h * m0 + (1 - T) * a0 * (Y - m0) - h * mu0]
        else:
            cols += [h * (m1 - mu1), h * (m0 - mu0)]
        out = [np.column_stack(cols)]
        if need_ps:
            out.append(X * (T - e)[:, None])
        if need_out:
            out.append(X * ((1 - T) * (Y - m0))[:, None])
            out.append(X * (T * (Y - m1))[:, None])
        return np.column_stack(out)

    # solve the two mean equations given the nuisance parameters (they are linear in mu)
    theta = np.concatenate([[0.0, 0.0], beta, g0, g1])
    p0 = psi(theta)
    t1 = theta.copy()
    t1[:2] = 1.0
    slope = psi(t1)[:, :2].sum(axis=0) - p0[:, :2].sum(axis=0)
    theta[:2] = -p0[:, :2].sum(axis=0) / slope
    Psi = psi(theta)
    d = len(theta)
    A = np.zeros((d, d))
    for j in range(d):
        step = 1e-5 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += step
        tm[j] -= step
        A[:, j] = (psi(tp).sum(axis=0) - psi(tm).sum(axis=0)) / (2 * step)
    Ainv = np.linalg.inv(A)
    V = Ainv @ (Psi.T @ Psi) @ Ainv.T
    g = np.zeros(d)
    g[0], g[1] = 1, -1
    return theta[0], theta[1], float(np.sqrt(g @ V @ g))


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("method", ["ipw", "aipw", "gcomp"])
@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATO"])
def test_estimating_equations_match_direct_implementation(binary, method, estimand):
    df = _data(binary=binary)
    mu1, mu0, se = _direct(df, method, estimand, binary)
    te = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method=method,
                             estimand=estimand)
    row = te.table.iloc[0]
    assert row["measure"] == ("risk_difference" if binary else "mean_difference")
    assert_allclose([row["mean_treated"], row["mean_control"]], [mu1, mu0], rtol=RTOL_DIRECT)
    assert_allclose(row["estimate"], mu1 - mu0, rtol=RTOL_DIRECT)
    assert_allclose(row["std_error"], se, rtol=RTOL_DIRECT)


def test_risk_ratio_delta_method_on_log_scale():
    df = _data()
    te = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method="aipw")
    rd, rr = te.table.iloc[0], te.table.iloc[1]
    V = te.vcov.to_numpy()
    mu1, mu0 = rd["mean_treated"], rd["mean_control"]
    g = np.array([1 / mu1, -1 / mu0])
    se = np.sqrt(g @ V @ g)
    assert_allclose(rr["estimate"], mu1 / mu0, rtol=RTOL_SAME)
    assert_allclose(rr["std_error"], se, rtol=RTOL_SAME)
    assert_allclose([rr["ci_lower"], rr["ci_upper"]], np.exp(np.log(mu1 / mu0) + np.array([-1, 1]) * 1.959963984540054 * se),
                    rtol=RTOL_SAME)


def test_gcomp_equals_fully_interacted_logistic_standardisation():
    # g-computation with an outcome model per group == the interacted logistic model's
    # standardised risk difference (odds_ratios(...).risk_difference())
    df = _data()
    te = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method="gcomp")
    orr = rs.odds_ratios(df, formula="y ~ t * (x1 + x2 + x3)", exposure="t", method="mle")
    rd = orr.risk_difference()
    assert_allclose(te.table.iloc[0]["estimate"], rd.table["estimate"].iloc[0], rtol=1e-7)


def test_case_weights_frequency_equal_expanded_data():
    df = _data(n=300)
    rng = np.random.default_rng(3)
    df["fw"] = rng.integers(1, 4, len(df))
    expanded = df.loc[df.index.repeat(df["fw"])].reset_index(drop=True)
    for method in ("ipw", "aipw", "gcomp"):
        a = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2"], method=method, weights="fw")
        b = rs.treatment_effect(expanded, outcome="y", exposure="t", adjust=["x1", "x2"], method=method)
        assert_allclose(a.table[["estimate", "std_error"]].to_numpy(), b.table[["estimate", "std_error"]].to_numpy(),
                        rtol=1e-7)


def test_cluster_robust_with_singletons_equals_hc0_times_factor():
    # every row its own cluster: the cluster sandwich is HC0 times G/(G-1)
    df = _data(n=400)
    df["cl"] = np.arange(len(df))
    a = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1"], method="ipw")
    b = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1"], method="ipw", cluster="cl")
    G = len(df)
    assert_allclose(b.table["std_error"].iloc[0], a.table["std_error"].iloc[0] * np.sqrt(G / (G - 1)), rtol=1e-10)
    assert any("cluster-robust" in n for n in b.notes)


def test_bootstrap_is_seeded_and_close_to_robust():
    df = _data(n=500)
    kw = dict(outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method="aipw", bootstrap=300)
    a = rs.treatment_effect(df, seed=1, **kw)
    b = rs.treatment_effect(df, seed=1, **kw)
    r = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method="aipw")
    assert a.ci_method == "bootstrap" and a.n_boot == 300
    num = a.table.columns.drop("measure")
    assert_allclose(a.table[num].to_numpy(dtype=float), b.table[num].to_numpy(dtype=float), equal_nan=True)
    assert_allclose(a.table["estimate"], r.table["estimate"], rtol=RTOL_SAME)  # bootstrap does not move the point
    # 300 replicates: the SD of an SD estimate is ~4%; allow 20%
    assert_allclose(a.table["std_error"].iloc[0], r.table["std_error"].iloc[0], rtol=0.2)
    assert a.table["ci_lower"].iloc[0] < a.table["estimate"].iloc[0] < a.table["ci_upper"].iloc[0]


def test_evalue_note_in_every_result():
    df = _data()
    te = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"])
    rr = te.table.iloc[1]
    e = rs.evalue(rr["estimate"], rr["ci_lower"], rr["ci_upper"])
    assert_allclose([rr["evalue"], rr["evalue_ci"]], [e.point, e.ci], rtol=1e-12)
    assert te.notes[0] == te.evalue_note
    assert f"{e.point:.2f}" in te.evalue_note and "unmeasured confounder" in te.evalue_note
    assert "'t'" not in te.evalue_note and "both t and y" in te.evalue_note


def test_survival_difference_equals_weighted_kaplan_meier():
    rng = np.random.default_rng(5)
    df = _data(n=500)
    df["time"] = np.round(rng.exponential(300, len(df)) * np.where(df["t"] == 1, 1.3, 1.0)) + 1
    df["event"] = (df["time"] < 400).astype(int)
    df.loc[df["event"] == 0, "time"] = 400
    te = rs.treatment_effect(df, time="time", event="event", times=[100, 200], exposure="t", adjust=["x1", "x2"])
    bw = rs.balancing_weights(df, exposure="t", adjust=["x1", "x2"], stabilize=False)
    df["w"] = bw.weights
    km = rs.survival_curve(df, time="time", event="event", by="t", weights="w", weight_type="sampling").table
    for j, tt in enumerate([100, 200]):
        s = {g: km[(km["t"] == g) & (km["time"] <= tt)]["estimate"].iloc[-1] for g in (0, 1)}
        row = te.table[(te.table["measure"] == "survival_difference")].iloc[j]
        assert_allclose([row["mean_treated"], row["mean_control"]], [s[1], s[0]], rtol=1e-12)
        assert_allclose(row["estimate"], s[1] - s[0], rtol=1e-12)
    assert te.table["ci_lower"].isna().all()
    assert any("bootstrap=" in n for n in te.notes)
    tb = rs.treatment_effect(df, time="time", event="event", times=[200], exposure="t", adjust=["x1", "x2"],
                             bootstrap=200, seed=3)
    r = tb.table.iloc[0]
    assert r["ci_lower"] < r["estimate"] < r["ci_upper"]
    assert np.isfinite(tb.table.iloc[1]["evalue_ci"])


def test_plot_effect_draws_intervals():
    import matplotlib

    matplotlib.use("Agg")
    te = rs.treatment_effect(_data(), outcome="y", exposure="t", adjust=["x1"])
    ax = te.plot()
    xs = [line.get_xdata() for line in ax.get_lines()]
    row = te.table.iloc[0]
    assert any(len(x) == 2 and np.allclose(x, [row["ci_lower"], row["ci_upper"]]) for x in xs)


def test_result_contract_serialises():
    te = rs.treatment_effect(_data(), outcome="y", exposure="t", adjust=["x1"])
    d = te.to_dict()
    assert d["result"] == "TreatmentEffectResult" and d["estimand"] == "ATE"
    assert "unmeasured confounder" in te._repr_html_()
    assert "risk_ratio" in te.to_markdown()


# ---------------------------------------------------------------------------
# coverage with the program simulator: confounding by risk level
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_coverage_with_confounding_by_risk_level():
    """Group assignment depends on risk level (simulate_program(mentoring_risk_confounding=1.0):
    18% of low-risk and 81% of very-high-risk people in the program). The truth is the
    simulator's population risk difference of relapse by day 180 (its ``contrasts``,
    population-standardised: the ATE). The unadjusted difference is biased towards harm;
    the AIPW 95% interval covers the truth within 3 Monte Carlo SEs of 95% (100 replicates:
    +-6.5 points)."""
    reps, n, day = 100, 1000, 180
    hits = 0
    naive_bias = []
    est_bias = []
    for r in range(reps):
        sim = rs.datasets.simulate_program(n, seed=1000 + r, mentoring_risk_confounding=1.0, contacts=False,
                                           assessments=False)
        lat = sim.truth.latent
        d = lat.assign(relapsed=(lat["relapse_time"] <= day).astype(int))
        c = sim.truth.contrasts
        truth = c[(c["outcome"] == "relapse") & (c["days"] == day) & (c["measure"] == "rd")]["population"].iloc[0]
        te = rs.treatment_effect(d, outcome="relapsed", exposure="group", adjust=["risk_level", "age"],
                                 method="aipw")
        row = te.table.iloc[0]
        hits += row["ci_lower"] <= truth <= row["ci_upper"]
        est_bias.append(row["estimate"] - truth)
        m = d.groupby("group")["relapsed"].mean()
        naive_bias.append(m["peer_mentoring"] - m["comparison"] - truth)
    cover = hits / reps
    mc = 3 * np.sqrt(0.95 * 0.05 / reps)
    assert abs(cover - 0.95) <= mc, cover
    assert abs(np.mean(est_bias)) < 0.01
    assert np.mean(naive_bias) > 0.02  # the unadjusted comparison is biased towards harm


def test_simulator_confounding_option_changes_assignment_only():
    a = rs.datasets.simulate_program(4000, seed=9, contacts=False, assessments=False)
    b = rs.datasets.simulate_program(4000, seed=9, contacts=False, assessments=False, mentoring_risk_confounding=1.0)
    la, lb = a.truth.latent, b.truth.latent
    pd.testing.assert_frame_equal(la[["risk_level", "age", "gender"]], lb[["risk_level", "age", "gender"]])
    share = lb.groupby("risk_level")["group"].apply(lambda s: (s == "peer_mentoring").mean())
    expected = expit(1.0 * (np.arange(4) - 1.5))  # logit(0.5) = 0
    # binomial SE at n ~ 600-1400 per level is <= 0.02: 4 SEs
    assert_allclose(share.loc[["low", "moderate", "high", "very_high"]].to_numpy(), expected, atol=0.08)
    assert (la["group"] == "peer_mentoring").groupby(la["risk_level"]).mean().std() < 0.05  # randomised
    # the population (causal) truth is unchanged; the per-group "sample" averages are now confounded
    pd.testing.assert_series_equal(a.truth.contrasts["population"], b.truth.contrasts["population"])


@pytest.mark.slow
def test_coverage_all_methods_ate_att():
    """Robust 95% intervals of every method cover the true ATE and ATT (binary outcome, a
    correctly specified propensity model; the per-group outcome models carry the t:x1
    interaction as group-specific slopes): 300
    replicates, within 3 Monte Carlo SEs (+-3.8 points) of 95%. The truths are computed from
    the data-generating model on 2 million draws (Monte Carlo error ~3e-4)."""
    rng = np.random.default_rng(123)
    big = _data(n=2_000_000, seed=999)
    x1, x2, x3 = big["x1"].to_numpy(), big["x2"].to_numpy(), big["x3"].to_numpy()
    base = -0.5 + 0.6 * x1 + 0.4 * x2 - 0.5 * x3
    p1, p0 = expit(base + 0.7 + 0.3 * x1), expit(base)
    e = expit(-0.3 + 0.8 * x1 - 0.5 * x2 + 0.6 * x3)
    truth = {"ATE": float(np.mean(p1 - p0)), "ATT": float(np.sum(e * (p1 - p0)) / np.sum(e))}
    reps = 300
    hits = {(m, est): 0 for m in ("ipw", "aipw", "gcomp") for est in ("ATE", "ATT")}
    for _ in range(reps):
        df = _data(n=800, seed=int(rng.integers(1 << 31)))
        for (m, est) in hits:
            row = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "x2", "x3"], method=m,
                                      estimand=est).table.iloc[0]
            hits[(m, est)] += row["ci_lower"] <= truth[est] <= row["ci_upper"]
    mc = 3 * np.sqrt(0.95 * 0.05 / reps)
    for key, h in hits.items():
        assert abs(h / reps - 0.95) <= mc, (key, h / reps)


def test_separated_outcome_model_uses_firth_with_note_also_in_bootstrap():
    df = _data(n=400)
    df["rare"] = 0
    df.loc[df.index[(df["t"] == 0)][:6], "rare"] = 1  # a level seen in a few comparison people ...
    df.loc[df["rare"] == 1, "y"] = 0  # ... none of whom has the outcome: separation in that arm
    df.loc[df.index[(df["t"] == 1)][:6], "rare"] = 1
    te = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "rare"], method="gcomp")
    assert any("Firth" in n and "comparison group" in n for n in te.notes)
    assert np.isfinite(te.table["std_error"]).all()
    tb = rs.treatment_effect(df, outcome="y", exposure="t", adjust=["x1", "rare"], method="gcomp", bootstrap=100,
                             seed=2)
    # (more than 5% failed replicates would raise; a resample without any 'rare' person in an
    # arm cannot estimate that level and is dropped with a note)
    failed = [n for n in tb.notes if "replicates failed" in n]
    assert not failed or int(failed[0].split()[0]) <= 5
    assert_allclose(tb.table["estimate"], te.table["estimate"], rtol=1e-12)
    assert tb.table["ci_lower"].iloc[0] < te.table["estimate"].iloc[0] < tb.table["ci_upper"].iloc[0]
