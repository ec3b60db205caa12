"""Measures against the simulator's ground truth and against a naive per-participant implementation.

The simulator (``recoverystats.datasets.simulate_program``) records each participant's latent
relapse and rearrest dates, so the time-to-event columns can be checked exactly; fixed-window
proportions are checked against the true risks within 3 binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from recoverystats.measures import engagement, followup, noms_change, recidivism, relapse, retention

datasets = pytest.importorskip("recoverystats.datasets")

#: Simulation check: |estimate - truth| <= 3 binomial SEs (a 0.27% false-alarm rate per check at a
#: fixed seed; the seed is fixed, so the check is deterministic).
N_SE = 3.0
#: Independent naive implementation: identical day arithmetic, so exact.
EXACT = 0.0


@pytest.fixture(scope="module")
def sim():
    return datasets.simulate_program(3000, seed=7, quarters=12)


@pytest.fixture(scope="module")
def prog(sim):
    return sim.program()


@pytest.fixture(scope="module")
def small():
    s = datasets.simulate_program(300, seed=11, quarters=8)
    return s, s.program()


def _within(est: float, truth: float, n: int) -> bool:
    se = math.sqrt(truth * (1 - truth) / n)
    return abs(est - truth) <= N_SE * se


def _end_of_observation(sim) -> tuple[pd.Series, pd.Series]:
    """min(followup_end, death, as_of) per participant, from the truth (not from the events table)."""
    p = sim.tables["participants"].set_index("participant_id")
    lat = sim.truth.latent.set_index("participant_id").loc[p.index]
    death = p["enrollment_date"] + pd.to_timedelta(np.ceil(np.minimum(lat["death_time"].to_numpy(), 3e4)), unit="D")
    end = pd.concat([p["followup_end_date"], death, pd.Series(sim.truth.as_of, index=p.index)], axis=1).min(axis=1)
    return end, lat


def test_relapse_times_equal_latent_relapse_dates(sim, prog):
    end, lat = _end_of_observation(sim)
    df = relapse(prog).set_index("participant_id").loc[end.index]
    observed = lat["relapse_day"] <= end
    assert 500 < observed.sum() < len(observed) - 500  # both relapses and censored times are checked
    assert_array_equal(df["event"].to_numpy(), observed.to_numpy().astype(int))
    enroll = df["enrollment_date"]
    want = np.where(observed, (lat["relapse_day"] - enroll).dt.days, (end - enroll).dt.days).astype(float)
    assert_allclose(df["time_days"].to_numpy(), want, atol=EXACT)


def test_rearrest_times_equal_latent_rearrest_dates(sim, prog):
    end, lat = _end_of_observation(sim)
    df = recidivism(prog, window_days=None).set_index("participant_id").loc[end.index]
    assert_array_equal(df["index_date"].to_numpy(), lat["index_date"].to_numpy())
    observed = lat["rearrest_day"] <= end
    assert 300 < observed.sum() < len(observed) - 300
    assert_array_equal(df["event"].to_numpy(), observed.to_numpy().astype(int))
    idx = df["index_date"]
    want = np.where(observed, (lat["rearrest_day"] - idx).dt.days, (end - idx).dt.days).astype(float)
    assert_allclose(df["time_days"].to_numpy(), want, atol=EXACT)


@pytest.mark.parametrize(("outcome", "days"), [("rearrest", 365), ("relapse", 180), ("relapse", 90)])
def test_fixed_window_proportions_recover_true_risk_by_group(sim, prog, outcome, days):
    # truth.marginal "sample": the average of each simulated participant's true P(T <= days)
    truth = sim.truth.marginal.query("outcome == @outcome and days == @days").set_index("group")["sample"]
    if outcome == "rearrest":
        df = recidivism(prog, window_days=days)
        col = "recidivated"
    else:
        df = relapse(prog, window_days=days)
        col = "relapsed"
    elig = df[df["eligible"]]
    assert len(elig) > 1000
    for group, t in truth.items():
        y = elig.loc[elig["group"] == group, col]
        assert _within(y.mean(), t, len(y)), (outcome, days, group, y.mean(), t, len(y))


def test_retention_recovers_true_dropout_risk(sim, prog):
    truth = sim.truth.marginal.query("outcome == 'dropout' and days == 90").set_index("group")["sample"]
    df = retention(prog, days=(90,))
    elig = df[df["eligible_90"]]
    for group, t in truth.items():
        y = 1.0 - elig.loc[elig["group"] == group, "retained_90"]
        assert _within(y.mean(), t, len(y)), (group, y.mean(), t)


def test_recidivism_levels_nested_on_simulated_program(prog):
    e = {lv: recidivism(prog, level=lv)["event"].to_numpy() for lv in ("rearrest", "reconviction", "reincarceration")}
    assert (e["rearrest"] >= e["reconviction"]).all() and (e["reconviction"] >= e["reincarceration"]).all()
    assert e["rearrest"].sum() > e["reconviction"].sum() > e["reincarceration"].sum() > 0


def test_followup_rate_recovers_simulator_completion(sim, prog):
    # the simulator records the intake with p_intake = 0.97, the follow-up with p_followup = 0.80 (only
    # when the intake was recorded), dated inside days 152..243 after intake with probability 0.9.
    par = sim.truth.parameters
    truth = par.p_intake * par.p_followup * (1 - par.p_followup_outside_window)
    df = followup(prog, window=(152, 243))
    s = df.attrs["measure"]["summary"]
    assert s["due"] > 1500
    assert _within(s["rate"], truth, s["due"]), (s, truth)


def test_noms_prevalences_recover_complete_data_truth(sim, prog):
    out = noms_change(prog, by="group").set_index(["group", "item"])
    t = sim.truth.noms.set_index(["group", "item"])
    for (group, item), r in out.iterrows():
        col, negate = {"abstinence": ("any_use_30d", True), "no_arrest": ("arrested_30d", True)}.get(item, (item, False))
        for when, pct in (("intake", r["pct_intake"]), ("followup", r["pct_followup"])):
            truth = t.loc[(group, col), when]
            truth = 1 - truth if negate else truth
            assert _within(pct / 100, truth, int(r["n_pairs"])), (group, item, when, pct, truth)


def test_measures_feed_rates_proportion(prog):
    rates = pytest.importorskip("recoverystats.rates")
    df = recidivism(prog, window_days=365)
    res = rates.proportion(df[df["eligible"]], "recidivated", by="group").table.set_index("group")
    counts = df[df["eligible"]].groupby("group")["recidivated"].agg(["count", "sum"])
    assert res["n"].tolist() == counts["count"].tolist()
    assert res["events"].tolist() == counts["sum"].astype(int).tolist()
    # NaN for ineligible rows: passing every row gives the same counts (ineligible excluded as missing)
    res_all = rates.proportion(df, "recidivated", by="group").table.set_index("group")
    assert res_all["n"].tolist() == counts["count"].tolist()


# ---------------------------------------------------------------------------
# naive per-participant implementation (independent of the vectorised code)
# ---------------------------------------------------------------------------

def _naive_recidivism(prog, as_of, W, level_types):
    p = prog.participants
    ev = prog.events
    out = {}
    by_pid = {k: g for k, g in ev.groupby("participant_id")}
    for _, r in p.iterrows():
        pid = r["participant_id"]
        s = r["release_date"] if pd.notna(r["release_date"]) else r["enrollment_date"]
        if r["enrollment_date"] > as_of or s > as_of:
            out[pid] = (np.nan, 0, np.nan)
            continue
        end = min(x for x in (r["followup_end_date"], as_of) if pd.notna(x))
        g = by_pid.get(pid, ev.iloc[:0])
        deaths = g.loc[(g.event_type == "death") & (g.event_date > s) & (g.event_date <= as_of), "event_date"]
        death = deaths.min() if len(deaths) else pd.NaT
        q = g.loc[g.event_type.isin(level_types) & (g.event_date > s) & (g.event_date <= end), "event_date"]
        first = q.min() if len(q) else pd.NaT
        if pd.notna(first) and pd.notna(death) and first > death:
            first = pd.NaT
        if pd.notna(first):
            et, t = 1, (first - s).days
        elif pd.notna(death) and death <= end:
            et, t = 2, (death - s).days
        else:
            et, t = 0, (end - s).days
        window_ok = s + pd.Timedelta(days=W) <= as_of and (
            pd.isna(r["followup_end_date"]) or r["followup_end_date"] >= s + pd.Timedelta(days=W)
            or (et == 2 and t <= W))
        rec = (1.0 if (et == 1 and t <= W) else 0.0) if window_ok else np.nan
        out[pid] = (rec, et, float(t))
    return out


def test_recidivism_equals_naive_implementation(small):
    sim, prog = small
    as_of = sim.truth.as_of
    for level, types in (("rearrest", ("arrest", "conviction", "incarceration")), ("reincarceration", ("incarceration",))):
        df = recidivism(prog, window_days=180, level=level).set_index("participant_id")
        naive = _naive_recidivism(prog, as_of, 180, types)
        got = df[["recidivated", "event_type", "time_days"]]
        want = pd.DataFrame.from_dict(naive, orient="index", columns=["recidivated", "event_type", "time_days"])
        assert_allclose(got["recidivated"].to_numpy(), want.loc[got.index, "recidivated"].to_numpy(), atol=EXACT)
        assert_array_equal(got["event_type"].to_numpy(), want.loc[got.index, "event_type"].to_numpy())
        assert_allclose(got["time_days"].to_numpy(), want.loc[got.index, "time_days"].to_numpy(), atol=EXACT)


def test_engagement_equals_naive_implementation(small):
    sim, prog = small
    as_of = sim.truth.as_of
    df = engagement(prog).set_index("participant_id")
    con = prog.contacts
    mt = prog.matches
    for _, r in prog.participants.iterrows():
        pid, e = r["participant_id"], r["enrollment_date"]
        c = con[(con.participant_id == pid) & (con.contact_date <= as_of)]
        rel = (c.contact_date - e).dt.days
        first = int(((rel >= 0) & (rel <= 89)).sum())
        total = int((rel >= 0).sum())
        m = mt.loc[(mt.participant_id == pid) & (mt.match_date <= as_of), "match_date"]
        got = df.loc[pid]
        assert got["contacts_total"] == total
        if e + pd.Timedelta(days=89) <= as_of:
            assert got["contacts_first"] == first and got["contacts_per_30d"] == first / 3
        else:
            assert np.isnan(got["contacts_first"])
        assert bool(got["matched"]) == (len(m) > 0)
        if len(m):
            assert got["time_days"] == max((m.min() - e).days, 0)


def test_retention_and_followup_equal_naive_implementation(small):
    sim, prog = small
    as_of = sim.truth.as_of
    ret = retention(prog, days=(90,)).set_index("participant_id")
    fu = followup(prog).set_index("participant_id")
    asm = prog.assessments
    for _, r in prog.participants.iterrows():
        pid, e = r["participant_id"], r["enrollment_date"]
        d = r["discharge_date"] if pd.notna(r["discharge_date"]) and r["discharge_date"] <= as_of else pd.NaT
        completed = pd.notna(d) and r["discharge_reason"] == "completed"
        los = ((d if pd.notna(d) else as_of) - e).days
        if e + pd.Timedelta(days=90) <= as_of:
            want = 1.0 if (los >= 90 or (completed and d <= e + pd.Timedelta(days=90))) else 0.0
            assert ret.loc[pid, "retained_90"] == want, pid
        else:
            assert np.isnan(ret.loc[pid, "retained_90"])
        a = asm[asm.participant_id == pid]
        intake = a.loc[(a.timepoint == "intake") & (a.assessment_date <= as_of), "assessment_date"]
        idx = intake.min() if len(intake) else e
        fdates = a.loc[(a.timepoint == "followup_6m") & (a.assessment_date <= as_of), "assessment_date"]
        in_win = any(150 <= (x - idx).days <= 240 for x in fdates)
        if bool(fu.loc[pid, "due"]):
            assert fu.loc[pid, "completed_in_window"] == float(in_win), pid
        assert fu.loc[pid, "index_date"] == idx


# ---------------------------------------------------------------------------
# invariants on the bundled sample data and the simulator
# ---------------------------------------------------------------------------

OUTCOME_COLUMNS = {
    "retention": ["retained_30", "retained_60", "retained_90", "retained_180"],
    "relapse": ["relapsed"],
    "recidivism": ["recidivated", "technical_violation"],
    "followup": ["completed_in_window", "completed_outside_window"],
    "engagement": ["contacts_per_30d", "engaged"],
}


def _check_invariants(prog):
    n = len(prog.participants)
    for func, kw in ((retention, {}), (relapse, {"window_days": 90}), (recidivism, {}), (followup, {}),
                     (engagement, {})):
        df = func(prog, **kw)
        name = func.__name__
        assert len(df) == n and df["participant_id"].is_unique, name
        assert (df["exclusion_reason"].isna() == df["eligible"]).all(), name
        assert set(np.unique(df["event"])) <= {0, 1}, name
        t = df["time_days"].dropna()
        assert (t >= 0).all(), name
        assert df.loc[df["time_days"].isna(), "exclusion_reason"].isin(
            ["enrolled after as_of", "released after as_of"]).all(), name
        for col in OUTCOME_COLUMNS[name]:
            elig = df[f"eligible_{col.split('_')[1]}"] if name == "retention" else df["eligible"]
            assert (df[col].notna() == elig).all(), (name, col)
            assert df.loc[elig, col].isin([0.0, 1.0]).all() or name == "engagement", (name, col)
        m = df.attrs["measure"]
        assert m["n"] == n and m["n_eligible"] == int(df["eligible"].sum())
        assert sum(m["exclusions"].values()) == n - m["n_eligible"]


def test_invariants_on_simulated_program(prog):
    _check_invariants(prog)


def test_measures_run_on_bundled_sample_data(sample_dir):
    rs = pytest.importorskip("recoverystats")
    toml = sample_dir / "program.toml"
    if not toml.exists():
        pytest.skip("data/sample not present")
    prog = rs.read_program(toml)
    _check_invariants(prog)
    out = noms_change(prog, by="group")
    assert len(out) == 10 and (out["n_pairs"] > 0).all()
