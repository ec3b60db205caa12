"""cumulative_incidence: Aalen-Johansen against lifelines, CIF and Gray's test against R cmprsk::cuminc
output printed for the BMT data, cmprsk's Aalen variance (SEs and CIs as printed, a transliteration
of its Fortran, a closed form without competing events, a hand-worked example), Gray's test against a
scalar re-derivation and the log-rank score, competing events from recidivism(...), bad inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.survival import compare_survival, cumulative_incidence, survival_curve
from recoverystats.survival.cif import gray_test_arrays

#: Independent implementations (lifelines, a direct loop here).
RTOL_IMPL = 1e-6
EXACT = 1e-12
#: Published output printed to 7 decimals (knitr::kable, Gray's test): half a unit in the last digit.
HALF_UNIT_7DP = 5e-8
#: Published output printed to 4 decimals (CIF estimates): half a unit in the last digit.
HALF_UNIT_4DP = 5e-5

DATA = Path(__file__).resolve().parent / "data"


def _competing(n: int, seed: int, groups=("a", "b", "c"), tied: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.exponential(10, n)
    typ = rng.choice([1, 2], n, p=[0.6, 0.4])
    c = rng.exponential(15, n)
    time = np.minimum(t, c)
    if tied:
        time = np.ceil(time)
    return pd.DataFrame({"time": time, "status": np.where(t <= c, typ, 0), "grp": rng.choice(groups, n),
                         "site": rng.choice(["s1", "s2"], n)})


def test_matches_lifelines_aalen_johansen():
    # lifelines AalenJohansenFitter(calculate_variance=True).fit(T, E, event_of_interest=1); continuous
    # times so lifelines does not jitter. Its CI columns are labelled upper/lower the other way round.
    from lifelines import AalenJohansenFitter

    d = _competing(300, 1)
    res = cumulative_incidence(d, time="time", event="status", cause=1, by="grp")
    for g in ("a", "b", "c"):
        sub = d[d.grp == g]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aj = AalenJohansenFitter(calculate_variance=True).fit(sub.time, sub.status, event_of_interest=1)
        mine = res.table[res.table.grp == g]
        assert_allclose(mine["time"], aj.cumulative_density_.index[1:], rtol=EXACT)
        assert_allclose(mine["estimate"], aj.cumulative_density_.iloc[1:, 0], rtol=RTOL_IMPL, atol=1e-15)
        ref_var = aj.variance_.iloc[1:].to_numpy()
        ok = np.isfinite(ref_var)  # lifelines gives NaN once n_j = d_j (last time); we drop that 0/0 term
        assert ok[:-1].all()
        assert_allclose((mine["std_error"] ** 2).to_numpy()[ok], ref_var[ok], rtol=RTOL_IMPL, atol=1e-15)
        pos = (mine["estimate"].to_numpy() > 0) & ok
        ci = aj.confidence_interval_.iloc[1:]
        assert_allclose(mine["ci_lower"].to_numpy()[pos], ci.iloc[:, 0].to_numpy()[pos], rtol=RTOL_IMPL)
        assert_allclose(mine["ci_upper"].to_numpy()[pos], ci.iloc[:, 1].to_numpy()[pos], rtol=RTOL_IMPL)


def test_no_competing_events_equals_one_minus_km():
    d = _competing(200, 2).assign(status=lambda x: (x.status > 0).astype(int))
    res = cumulative_incidence(d, time="time", event="status", cause=1)
    km = survival_curve(d, time="time", event="status")
    assert_allclose(res.table["estimate"], 1 - km.table["estimate"], rtol=EXACT, atol=1e-15)
    assert any("no competing events" in n for n in res.notes)


def test_cif_plus_competing_cif_plus_survival_is_one():
    d = _competing(250, 3, tied=True)
    f1 = cumulative_incidence(d, time="time", event="status", cause=1).table
    f2 = cumulative_incidence(d, time="time", event="status", cause=2).table
    s = survival_curve(d.assign(any=(d.status > 0).astype(int)), time="time", event="any").table
    assert_allclose(f1["estimate"] + f2["estimate"] + s["estimate"], 1.0, rtol=EXACT)


# -- published reference: R cmprsk::cuminc on the BMT data --------------------------------

def _bmt() -> pd.DataFrame:
    """Klein & Moeschberger's bone marrow transplant data as CAMIS ships it (tests/data/README.md)."""
    d = pd.read_csv(DATA / "bmt_camis.tsv", sep="\t")
    assert d.shape == (137, 4)
    labels = {1: "ALL", 2: "AML-Low Risk", 3: "AML-High Risk"}
    return d.assign(group=d["Group"].map(labels), years=d["T"] / 365.25)


# Gray's test per cause, as printed: (statistic, p-value); df = 2 for both.
CMPRSK_BMT_GRAY = {1: (11.9228820, 0.0025762), 2: (0.1374108, 0.9336017)}
# Relapse CIF of the AML-Low Risk group at 0.5, 1, 1.5, 2, 3 years, as printed.
CMPRSK_BMT_CIF_TIMES = [0.5, 1.0, 1.5, 2.0, 3.0]
CMPRSK_BMT_CIF_AML_LOW = [0.0000, 0.0741, 0.1296, 0.1481, 0.1667]


def test_matches_r_cmprsk_cuminc_on_bmt():
    """CIF and Gray's test against R ``cmprsk::cuminc`` (Gray's own implementation) on published data.

    Source: CAMIS (PHUSE), https://github.com/PSIAIMS/CAMIS, page ``R/survival_cif`` (rendered
    output in ``_freeze/R/survival_cif/execute-results/html.json`` and ``R/survival_cif.html``;
    cmprsk 2.2-12 through tidycmprsk 1.1.0, R 4.4). The R call there::

        bmt <- mutate(bmt, Group = factor(Group, 1:3, c('ALL', 'AML-Low Risk', 'AML-High Risk')),
                      Status = factor(Status, 0:2, c('Censored', 'Relapse', 'Death')),
                      TYears = T / 365.25)
        cif.1 <- tidycmprsk::cuminc(Surv(TYears, Status) ~ Group, data = bmt)  # cmprsk::cuminc, rho = 0
        glance(cif.1)                                          # Gray's test per cause
        tidy(cif.1, times = c(0.5, 1, 1.5, 2, 3))              # CIF at the times

    Data: the same page's ``data/bmt.txt`` (tests/data/bmt_camis.tsv; KMsurv::bmt). Event times are
    tied across causes and groups (e.g. day 48: a relapse in one group and a death in another),
    so cmprsk's handling of ties is exercised. Gray's statistic and p-value are printed to 7
    decimals, the CIF to 4: tolerance half a unit in the last printed digit.

    The printed ``std.error`` and CI bounds are cmprsk's Aalen (1978) variance, compared with
    ``variance="aalen"`` in the next test; the default delta-method variance (SAS ``error=delta``,
    lifelines; 0.0356, 0.0457, 0.0483, 0.0507 here) is checked against lifelines above.
    """
    d = _bmt()
    for cause, (stat, p) in CMPRSK_BMT_GRAY.items():
        gt = cumulative_incidence(d, time="years", event="Status", cause=cause, by="group").gray_test
        assert_allclose(gt.statistic, stat, rtol=0, atol=HALF_UNIT_7DP)
        assert_allclose(gt.p_value, p, rtol=0, atol=HALF_UNIT_7DP)
        assert gt.table["df"].iloc[0] == 2
    res = cumulative_incidence(d, time="years", event="Status", cause=1, by="group")
    at = res.at(CMPRSK_BMT_CIF_TIMES)
    aml_low = at[at["group"] == "AML-Low Risk"]
    assert_allclose(aml_low["estimate"], CMPRSK_BMT_CIF_AML_LOW, rtol=0, atol=HALF_UNIT_4DP)
    # Nobody in that group is censored before day 847, so up to 2 years the CIF is the plain
    # proportion relapsed out of 54 (0, 4, 7, 8): an exact check of the printed values' source.
    assert_allclose(aml_low["estimate"].iloc[:4], np.array([0, 4, 7, 8]) / 54, rtol=EXACT, atol=1e-15)


# The same tidy() output, same page and call: std.error = sqrt(cmprsk's variance) and conf.low/conf.high
# (tidycmprsk add_conf.int(): F^exp(-/+ qnorm(0.975) SE / (F log F)), i.e. the log(-log F) interval),
# as printed to 4 decimals. At 0.5 years F = 0: std.error 0.0000 and both bounds NA (ours are 0).
CMPRSK_BMT_SE_AML_LOW = [0.0000, 0.0360, 0.0463, 0.0489, 0.0514]
CMPRSK_BMT_CI_AML_LOW = {1.0: (0.0234, 0.1646), 1.5: (0.0563, 0.2344), 2.0: (0.0685, 0.2565), 3.0: (0.0813, 0.2783)}


def test_aalen_variance_matches_r_cmprsk_se_and_ci_on_bmt():
    """``variance="aalen"`` reproduces the SEs and log-log CIs R ``tidycmprsk::tidy(cuminc(...))`` prints.

    Source and call as in ``test_matches_r_cmprsk_cuminc_on_bmt`` (CAMIS ``R/survival_cif``,
    ``_freeze/R/survival_cif/execute-results/html.json``; cmprsk 2.2-12, tidycmprsk 1.1.0): the
    ``std.error``, ``conf.low`` and ``conf.high`` columns of the relapse rows for AML-Low Risk.
    Tolerance: half a unit in the 4th decimal. The delta-method SEs miss them by 4e-4 to 7e-4.
    """
    d = _bmt()
    res = cumulative_incidence(d, time="years", event="Status", cause=1, by="group", variance="aalen")
    assert res.method == "aalen-johansen (log-log CI, Aalen variance as R cmprsk)"
    at = res.at(CMPRSK_BMT_CIF_TIMES)
    aml_low = at[at["group"] == "AML-Low Risk"].set_index("time")
    assert_allclose(aml_low["estimate"], CMPRSK_BMT_CIF_AML_LOW, rtol=0, atol=HALF_UNIT_4DP)
    assert_allclose(aml_low["std_error"], CMPRSK_BMT_SE_AML_LOW, rtol=0, atol=HALF_UNIT_4DP)
    times = list(CMPRSK_BMT_CI_AML_LOW)
    lower, upper = (np.array([CMPRSK_BMT_CI_AML_LOW[t][i] for t in times]) for i in (0, 1))
    assert_allclose(aml_low.loc[times, "ci_lower"], lower, rtol=0, atol=HALF_UNIT_4DP)
    assert_allclose(aml_low.loc[times, "ci_upper"], upper, rtol=0, atol=HALF_UNIT_4DP)
    assert aml_low.loc[0.5, "ci_lower"] == 0.0 and aml_low.loc[0.5, "ci_upper"] == 0.0
    # The check discriminates: the default (delta-method) SEs are outside the tolerance.
    delta = cumulative_incidence(d, time="years", event="Status", cause=1, by="group").at(CMPRSK_BMT_CIF_TIMES)
    miss = np.abs(delta[delta["group"] == "AML-Low Risk"]["std_error"].to_numpy() - CMPRSK_BMT_SE_AML_LOW)[1:]
    assert miss.min() > 5 * HALF_UNIT_4DP


def _cinc_loop(y, ic, icc):
    """R cmprsk's Fortran ``cinc`` (src/cincsub.f) transliterated line by line, scalar loops (independent).

    y sorted times; ic 1 for an event of any cause; icc 1 for the cause of interest. Returns the
    step-function corners x, f, v as cmprsk does (x[0] = 0; two corners per cause-event time;
    the last corner at the largest follow-up time).
    """
    n = len(y)
    x, f, v = [0.0], [0.0], [0.0]
    fk, v1, v2, v3 = 1.0, 0.0, 0.0, 0.0
    rs = float(n)
    ll = 0
    while ll < n:
        lend = ll
        while lend + 1 < n and y[lend + 1] == y[ll]:
            lend += 1
        nd1 = int(sum(icc[ll:lend + 1]))
        nd2 = int(sum(ic[ll:lend + 1])) - nd1
        nd = nd1 + nd2
        if nd > 0:
            fkn = fk * (rs - nd) / rs
            if nd1 > 0:
                f.append(f[-1])
                f.append(f[-1] + fk * nd1 / rs)
            if nd2 > 0 and fkn > 0:
                t5 = 1 - (nd2 - 1.0) / (rs - 1.0) if nd2 > 1 else 1.0
                t6 = fk * fk * t5 * nd2 / (rs * rs)
                t3 = 1.0 / fkn
                t4 = f[-1] / fkn
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if nd1 > 0:
                t5 = 1 - (nd1 - 1.0) / (rs - 1.0) if nd1 > 1 else 1.0
                t6 = fk * fk * t5 * nd1 / (rs * rs)
                t3 = 1.0 / fkn if fkn > 0 else 0.0
                t4 = 1 + t3 * f[-1]
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                t2 = f[-1]
                x += [y[lend], y[lend]]
                v += [v[-1], v1 + t2 * t2 * v3 - 2 * t2 * v2]
            fk = fkn
        rs = n - (lend + 1.0)
        ll = lend + 1
    x.append(y[-1])
    f.append(f[-1])
    v.append(v[-1])
    return np.array(x), np.array(f), np.array(v)


def _competing_edges() -> pd.DataFrame:
    """Small groups that end in cmprsk's special cases: a last cause event with one at risk (S -> 0,
    t3 = 0), everyone left failing from a competing cause (competing term skipped), two cause events
    among the last two at risk (tie factor 0), cross-cause ties."""
    rows = {"a": ([1, 1, 2, 3, 3, 4, 5], [1, 2, 0, 1, 1, 2, 1]),
            "b": ([1, 2, 2, 3, 4, 4], [2, 1, 2, 0, 2, 2]),
            "c": ([1, 2, 3, 3, 4, 4], [1, 0, 1, 2, 1, 1])}
    return pd.concat([pd.DataFrame({"time": np.array(t, float), "status": s, "grp": g})
                      for g, (t, s) in rows.items()], ignore_index=True)


@pytest.mark.parametrize("case", ["tied", "continuous", "edges"])
def test_aalen_variance_matches_cmprsk_fortran_loop(case):
    d = {"tied": lambda: _competing(400, 11, tied=True), "continuous": lambda: _competing(250, 12),
         "edges": _competing_edges}[case]()
    res = cumulative_incidence(d, time="time", event="status", cause=1, by="grp", variance="aalen")
    cross_ties = False
    for g in sorted(d.grp.unique()):
        sub = d[d.grp == g].sort_values("time", kind="stable")
        x, f, v = _cinc_loop(sub.time.to_numpy(), (sub.status > 0).astype(int).to_numpy(),
                             (sub.status == 1).astype(int).to_numpy())
        mine = res.table[res.table.grp == g]
        # cmprsk::timepoints (Fortran tpoi) reads the corner at or before t, the value after any jump at t.
        idx = np.searchsorted(x, mine["time"].to_numpy(), side="right") - 1
        assert_allclose(mine["estimate"], f[idx], rtol=RTOL_IMPL, atol=1e-15)
        assert_allclose(mine["std_error"] ** 2, v[idx], rtol=RTOL_IMPL, atol=1e-15)
        cross_ties |= bool(((mine["events"] > 0) & (mine["competing"] > 0)).any())
        # As cmprsk's step function: the SE changes only where F does (exactly, not to rounding).
        se = mine["std_error"].to_numpy()
        assert (np.diff(se)[mine["events"].to_numpy()[1:] == 0] == 0).all()
    assert cross_ties or case == "continuous"  # the tied cases exercise cmprsk's per-cause tie terms


def test_aalen_variance_without_competing_events_closed_form():
    # With one cause, F = 1 - S and a_j = S(t_j) - S(t), so 1 - a_j/S(t_j) = S(t)/S(t_j) and
    # S(t_{j-1})^2 / S(t_j)^2 = n_j^2 / (n_j - d_j)^2: each term w_j S(t)^2 / S(t_j)^2 is
    # S(t)^2 d_j / ((n_j - 1)(n_j - d_j)) (for d_j = 1 and d_j > 1 alike). So cmprsk's variance of
    # 1 - KM is Greenwood's S^2 sum d/(n(n - d)) with n replaced by n - 1 in the first factor,
    # here computed from the Kaplan-Meier table (a different code path), while S(t) > 0.
    d = _competing(300, 2, tied=True).assign(status=lambda x: (x.status > 0).astype(int))
    res = cumulative_incidence(d, time="time", event="status", cause=1, variance="aalen").table
    km = survival_curve(d, time="time", event="status").table
    n, dd = km["n_at_risk"].to_numpy(), km["events"].to_numpy()
    assert (dd > 1).any()  # tied events: the tie factor is exercised
    ok = np.cumprod((n > 1) & (n > dd)).astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = km["estimate"].to_numpy() ** 2 * np.cumsum(np.where(dd > 0, dd / ((n - 1) * (n - dd)), 0.0))
    assert_allclose((res["std_error"] ** 2).to_numpy()[ok], closed[ok], rtol=RTOL_IMPL, atol=1e-15)
    # ... and it is not the delta method (which is Greenwood here).
    greenwood = km["estimate"].to_numpy() ** 2 * np.cumsum(dd / (n * (n - dd)))
    delta = cumulative_incidence(d, time="time", event="status", cause=1).table["std_error"].to_numpy() ** 2
    assert_allclose(delta[ok], greenwood[ok], rtol=RTOL_IMPL, atol=1e-15)
    assert np.all(closed[ok][dd[ok].cumsum() > 0] > greenwood[ok][dd[ok].cumsum() > 0] * (1 + 1e-4))


def test_aalen_variance_hand_computed():
    # 7 people: t=1 one relapse (cause 1) and one death (competing); t=2 censored; t=3 two relapses;
    # t=4 one death; t=5 censored.
    #   t=1: n=7, S(0)=1, F(1) = 1/7, S(1) = 5/7
    #   t=3: n=4, F(3) = 1/7 + (5/7)(2/4) = 1/2, S(3) = 5/14;  t=4: n=2, S(4) = 5/28, F stays 1/2
    # Weights w = S(t_{j-1})^2 t5 d / n^2, t5 = 1 - (d - 1)/(n - 1) for d > 1:
    #   t=1: w_1 = 1/49 (relapse), w_2 = 1/49 (death);  t=3: w_1 = (25/49)(2/3)(2/16) = 25/588
    # Var F(1) = w_1 (1 - 0)^2 = 1/49 (the death at t=1 adds (a/S)^2 w_2 = 0).
    # Var F(3): a_1 = F(3) - F(1) = 5/14, a_1/S(1) = 1/2:
    #   t=1: (1/49)(1 - 1/2)^2 + (1/49)(1/2)^2 = 6/588;  t=3: a = 0, 25/588;  total 31/588.
    #   (Weighting a^2 by d/((n-1)(n-d)) without splitting the causes would give 30/588.)
    # Var F(4) = Var F(3): the death at t=4 has a = 0; Var F(5) too (censoring only).
    d = pd.DataFrame({"t": [1, 1, 2, 3, 3, 4, 5], "s": [1, 2, 0, 1, 1, 2, 0]})
    tab = cumulative_incidence(d, time="t", event="s", cause=1, variance="aalen").table
    assert_allclose(tab["estimate"], [1 / 7, 1 / 7, 1 / 2, 1 / 2, 1 / 2], rtol=EXACT)
    assert_allclose(tab["std_error"] ** 2, [1 / 49, 1 / 49, 31 / 588, 31 / 588, 31 / 588], rtol=EXACT)
    x, _, v = _cinc_loop(d.t.to_numpy(float), (d.s > 0).astype(int).to_numpy(), (d.s == 1).astype(int).to_numpy())
    assert_allclose(v[np.searchsorted(x, [1, 3, 5], side="right") - 1], [1 / 49, 31 / 588, 31 / 588], rtol=EXACT)


def _gray_loop(time, status, group, rho=0.0):
    """Gray (1988) k-sample score and variance, written with scalar loops over groups (independent)."""
    order = np.argsort(time, kind="stable")
    time, status, group = time[order], status[order], group[order]
    k = int(group.max()) + 1
    risk = [float(np.sum(group == j)) for j in range(k)]
    f1m = [0.0] * k
    skmm = [1.0] * k
    fm = 0.0
    s = [0.0] * k
    c = [[0.0] * k for _ in range(k)]
    v3 = [0.0] * k
    v2 = [[0.0] * k for _ in range(k)]
    v = [[0.0] * k for _ in range(k)]
    for tt in np.unique(time):
        at = time == tt
        d1 = [float(np.sum(at & (status == 1) & (group == j))) for j in range(k)]
        d2 = [float(np.sum(at & (status == 2) & (group == j))) for j in range(k)]
        out = [float(np.sum(at & (group == j))) for j in range(k)]
        nd1, nd2 = sum(d1), sum(d2)
        if nd1 + nd2 > 0:
            skm, f1 = list(skmm), list(f1m)
            tr = tq = 0.0
            for j in range(k):
                if risk[j] > 0:
                    skm[j] = skmm[j] * (risk[j] - d1[j] - d2[j]) / risk[j]
                    f1[j] = f1m[j] + skmm[j] * d1[j] / risk[j]
                    tr += risk[j] / skmm[j]
                    tq += risk[j] * (1 - f1m[j]) / skmm[j]
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            a = [[0.0] * k for _ in range(k)]
            for i in range(k):
                for j in range(k):
                    if risk[i] > 0 and risk[j] > 0:
                        hi, hj = risk[i] / skmm[i], risk[j] / skmm[j]
                        a[i][j] = fb * ((hi if i == j else 0.0) - hi * hj / tr)
                    c[i][j] += a[i][j] * nd1 / (tr * (1 - fm))
            for i in range(k):
                if risk[i] > 0:
                    s[i] += fb * (d1[i] - nd1 * risk[i] * (1 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for j in range(k):
                    if risk[j] <= 0:
                        continue
                    t4 = 1 - (1 - f) / skm[j] if skm[j] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[j] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[j] * nd1 / (tr * risk[j])
                    v3[j] += t4 * t4 * t3
                    for i in range(k):
                        ti = a[i][j] - t4 * c[i][j]
                        v2[i][j] += ti * t4 * t3
                        for m in range(k):
                            v[i][m] += ti * (a[m][j] - t4 * c[m][j]) * t3
            if nd2 > 0:
                for j in range(k):
                    if skm[j] <= 0 or d2[j] <= 0:
                        continue
                    t4 = (1 - f) / skm[j]
                    t5 = 1 - (d2[j] - 1) / (risk[j] - 1) if d2[j] > 1 else 1.0
                    t3 = t5 * skmm[j] ** 2 * d2[j] / risk[j] ** 2
                    v3[j] += t4 * t4 * t3
                    for i in range(k):
                        v2[i][j] -= t4 * c[i][j] * t4 * t3
                        for m in range(k):
                            v[i][m] += t4 * c[i][j] * t4 * c[m][j] * t3
            fm, f1m, skmm = f, f1, skm
        for j in range(k):
            risk[j] -= out[j]
    for i in range(k):
        for m in range(k):
            for j in range(k):
                v[i][m] += c[i][j] * c[m][j] * v3[j] + c[i][j] * v2[m][j] + c[m][j] * v2[i][j]
    s = np.array(s[:-1])
    v = np.array(v)[:-1, :-1]
    return float(s @ np.linalg.solve(v, s)), s, v


@pytest.mark.parametrize(("seed", "groups", "tied"), [(1, ("a", "b"), False), (2, ("a", "b", "c"), True),
                                                      (3, ("a", "b", "c", "d"), True)])
def test_gray_test_matches_scalar_loop(seed, groups, tied):
    d = _competing(180, seed, groups=groups, tied=tied)
    g = pd.factorize(d.grp, sort=True)[0]
    stat, s, v = _gray_loop(d.time.to_numpy(), d.status.to_numpy(), g)
    res = cumulative_incidence(d, time="time", event="status", cause=1, by="grp")
    gt = res.gray_test
    assert_allclose(gt.statistic, stat, rtol=1e-10)
    assert gt.table["df"].iloc[0] == len(groups) - 1
    st2, dof, s2, v2 = gray_test_arrays(d.time.to_numpy(), (d.status.to_numpy()), g, np.zeros(len(d)))
    assert_allclose(s2, s, rtol=1e-10)
    assert_allclose(v2, v, rtol=1e-10)


def test_gray_score_without_competing_events_is_logrank_o_minus_e():
    # With no competing events F = 1 - S and the Gray score (rho=0) reduces to the log-rank O - E;
    # the variances differ (Gray's is not hypergeometric) but are close.
    d = _competing(300, 4, groups=("a", "b")).assign(status=lambda x: (x.status > 0).astype(int))
    g = (d.grp == "b").astype(int).to_numpy()
    stat, dof, score, _ = gray_test_arrays(d.time.to_numpy(), d.status.to_numpy(), g, np.zeros(len(d)))
    lr = compare_survival(d, time="time", event="status", group="grp")
    assert_allclose(score[0], lr.by_group["o_minus_e_weighted"].iloc[0], rtol=1e-10)
    assert_allclose(stat, lr.statistic, rtol=0.05)


def test_stratified_gray_sums_strata():
    d = _competing(300, 5, groups=("a", "b"))
    g = (d.grp == "b").astype(int).to_numpy()
    parts = [gray_test_arrays(d.time.to_numpy()[m], d.status.to_numpy()[m], g[m], np.zeros(m.sum()))
             for m in ((d.site == "s1").to_numpy(), (d.site == "s2").to_numpy())]
    s = sum(p[2] for p in parts)
    v = sum(p[3] for p in parts)
    res = cumulative_incidence(d, time="time", event="status", cause=1, by="grp", strata="site")
    assert_allclose(res.gray_test.statistic, float(s @ np.linalg.solve(v, s)), rtol=1e-10)
    assert "stratified" in res.gray_test.table["test"].iloc[0]


def test_string_codes_and_at_and_risk_table():
    d = _competing(120, 6)
    d["kind"] = d.status.map({0: "censored", 1: "rearrest", 2: "death"})
    res = cumulative_incidence(d, time="time", event="kind", cause="rearrest", censored="censored")
    num = cumulative_incidence(d, time="time", event="status", cause=1)
    assert_allclose(res.table["estimate"], num.table["estimate"], rtol=EXACT)
    at = res.at([0, 5, 1e6])
    assert at["estimate"].iloc[0] == 0.0 and np.isnan(at["estimate"].iloc[2])
    rt = res.risk_table([0, 5])
    assert rt["n_at_risk"].iloc[0] == 120
    assert rt["events"].iloc[1] == ((d.time <= 5) & (d.kind == "rearrest")).sum()
    assert rt["competing"].iloc[1] == ((d.time <= 5) & (d.kind == "death")).sum()
    assert any("competing event code(s): death" in n for n in res.notes)


def test_works_on_recidivism_output_with_death_competing():
    import recoverystats as rs
    from recoverystats.datasets import simulate_program

    prog = simulate_program(800, seed=7, contacts=False, assessments=False).program()
    rec = rs.recidivism(prog, level="rearrest")
    res = cumulative_incidence(rec, time="time_days", event="event_type", cause=1, by="group")
    assert res.gray_test is not None and 0 <= res.gray_test.p_value <= 1
    tot = res.table.groupby("group")["events"].sum().sum()
    assert tot == (rec.event_type == 1).sum()
    json.dumps(res.to_dict())


# -- bad inputs -------------------------------------------------------------------------

def test_cause_that_never_occurs_is_an_error():
    d = _competing(50, 8)
    with pytest.raises(InvalidParameterError, match="cause: code 3 never occurs in column 'status' \\(codes present: 0, 1, 2\\)"):
        cumulative_incidence(d, time="time", event="status", cause=3)
    with pytest.raises(InvalidParameterError, match="cause=0 is the censoring code"):
        cumulative_incidence(d, time="time", event="status", cause=0)


def test_other_bad_inputs():
    d = _competing(50, 9)
    with pytest.raises(DataValidationError, match="time: column 'time' has 1 negative value"):
        cumulative_incidence(d.assign(time=np.r_[-1.0, d.time.to_numpy()[1:]]), time="time", event="status", cause=1)
    with pytest.raises(InvalidParameterError, match="conf_type must be one of 'log-log', 'plain'; got 'log'"):
        cumulative_incidence(d, time="time", event="status", cause=1, conf_type="log")
    with pytest.raises(InvalidParameterError, match="variance must be one of 'delta', 'aalen'; got 'greenwood'"):
        cumulative_incidence(d, time="time", event="status", cause=1, variance="greenwood")
    assert cumulative_incidence(d, time="time", event="status", cause=1).method == (
        "aalen-johansen (log-log CI, delta-method variance)")
    one = d.assign(grp="a")
    res = cumulative_incidence(one, time="time", event="status", cause=1, by="grp")
    assert res.gray_test is None and any("only one group" in n for n in res.notes)


def test_group_without_cause_events_noted():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "s": [1, 2, 0, 2, 0, 1], "g": ["a", "b", "a", "b", "b", "a"]})
    res = cumulative_incidence(d, time="t", event="s", cause=1, by="g")
    assert any("no 1 events in group g=b" in n for n in res.notes)
    assert (res.table[res.table.g == "b"]["estimate"] == 0).all()
