"""Measures on tiny hand-made programs: retention, relapse, recidivism, shared rules.

Every expected value below is computed by hand from the rows in the test (day numbers
are counted from the enrollment/index date, day 0).
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from recoverystats import ProgramData
from recoverystats.errors import InvalidParameterError, RecoveryStatsWarning
from recoverystats.measures import DEFINITIONS, recidivism, relapse, retention

#: Day counts and 0/1 outcomes are exact integers (stored as float): compare exactly.
EXACT = 0.0

D0 = pd.Timestamp("2025-01-01")
ROSSI_CSV = Path(str(resources.files("recoverystats.datasets").joinpath("data", "rossi.csv")))


def day(k: int) -> pd.Timestamp:
    return D0 + pd.Timedelta(days=k)


def program(participants: list[dict], events: list[dict] | None = None, **kw) -> ProgramData:
    p = pd.DataFrame([{"group": "pm", **r} for r in participants])
    tables = {"participants": p}
    if events:
        tables["events"] = pd.DataFrame(events)
    return ProgramData.from_tables(tables, **kw)


def row(df: pd.DataFrame, pid: str) -> pd.Series:
    return df.set_index("participant_id").loc[pid]


def label(value: object) -> object:
    """A text cell with its missing value as ``None``: pandas 2 stores ``None`` in object
    columns, pandas 3 ``NaN`` in ``str`` columns; both mean "no label"."""
    return None if pd.isna(value) else value


# ---------------------------------------------------------------------------
# shared output shape
# ---------------------------------------------------------------------------

def test_one_row_per_participant_with_contract_columns_and_attrs():
    prog = program([
        {"participant_id": "a", "group": "pm", "site": "north", "enrollment_date": day(0),
         "birth_date": "1990-06-15", "risk_level": "high", "prior_incarcerations": 2},
        {"participant_id": "b", "group": "cmp", "site": "south", "enrollment_date": day(10), "age": 41},
    ])
    for func in (retention, relapse, recidivism):
        df = func(prog, as_of=day(400))
        assert list(df["participant_id"]) == ["a", "b"]
        for col in ("participant_id", "group", "site", "event", "time_days", "eligible", "exclusion_reason",
                    "risk_level", "prior_incarcerations", "age"):
            assert col in df.columns, (func.__name__, col)
        # identifiers' dates never appear as covariates; birth_date never appears at all
        assert "birth_date" not in df.columns
        m = df.attrs["measure"]
        assert m["name"] == func.__name__
        assert m["definition"] == DEFINITIONS[func.__name__].definition
        assert m["as_of"] == "2026-02-05" and m["as_of_source"] == "argument"
        assert "risk_level" in m["covariates"] and "discharge_reason" not in m["covariates"]
        assert "enrollment_date" not in m["covariates"]
    # age derived from birth_date at enrollment (completed years: 2025-01-01 - 1990-06-15 = 34),
    # given age kept as is
    df = retention(prog, as_of=day(400))
    assert_allclose(df["age"], [34.0, 41.0], atol=EXACT)


def test_age_birthday_on_enrollment_day_counts_the_year():
    prog = program([
        {"participant_id": "a", "enrollment_date": "2025-06-15", "birth_date": "1990-06-15"},
        {"participant_id": "b", "enrollment_date": "2025-06-14", "birth_date": "1990-06-15"},
    ])
    assert_allclose(retention(prog, as_of="2026-01-01")["age"], [35.0, 34.0], atol=EXACT)


def test_as_of_defaults_program_then_latest_date():
    parts = [{"participant_id": "a", "enrollment_date": day(0), "discharge_date": day(40),
              "discharge_reason": "withdrew", "followup_end_date": day(900)}]
    ev = [{"participant_id": "a", "event_date": day(75), "event_type": "arrest"}]
    prog = program(parts, ev, as_of=day(200))
    m = retention(prog).attrs["measure"]
    assert (m["as_of"], m["as_of_source"]) == (day(200).date().isoformat(), "program")
    # no program as_of: the latest activity date (the arrest on day 75), not the planned follow-up end
    m = retention(program(parts, ev)).attrs["measure"]
    assert (m["as_of"], m["as_of_source"]) == (day(75).date().isoformat(), "latest date in data")


def test_as_of_before_every_enrollment_makes_everyone_ineligible_with_warning():
    prog = program([{"participant_id": "a", "enrollment_date": day(10)},
                    {"participant_id": "b", "enrollment_date": day(20)}])
    for func in (retention, relapse, recidivism):
        with pytest.warns(RecoveryStatsWarning, match=r"as_of=2025-01-01 is before every enrollment date"):
            df = func(prog, as_of=day(0))
        assert not df["eligible"].any()
        assert list(df["exclusion_reason"]) == ["enrolled after as_of"] * 2
        assert df["time_days"].isna().all() and (df["event"] == 0).all()


def test_as_of_after_the_data_cut_off_warns_and_notes():
    # The data stop at prog.as_of (day 60). Asking for as_of = day 120 would count a 90-day
    # window (days 1..90) as observed although nothing after day 60 is in the data: the
    # measure says so (warning + note) instead of silently reporting relapsed = 0.
    from recoverystats.measures import engagement, followup, noms_change

    prog = program([{"participant_id": "a", "enrollment_date": day(0)}], as_of=day(60))
    with pytest.warns(RecoveryStatsWarning, match=r"relapse: as_of=2025-05-01 is after the data cut-off 2025-03-02"):
        df = relapse(prog, window_days=90, as_of=day(120))
    assert any("after the data cut-off 2025-03-02" in n for n in df.attrs["measure"]["notes"])
    for func in (retention, recidivism, followup, engagement):
        with pytest.warns(RecoveryStatsWarning, match=rf"{func.__name__}: as_of=2025-05-01 is after the data cut-off"):
            out = func(prog, as_of=day(120))
        assert any("after the data cut-off" in n for n in out.attrs["measure"]["notes"]), func.__name__
    asm = pd.DataFrame({"participant_id": ["a"], "assessment_date": [day(0)], "timepoint": ["intake"],
                        "any_use_30d": [True]})
    prog2 = ProgramData.from_tables(participants=prog.participants[["participant_id", "group", "enrollment_date"]],
                                    assessments=asm, as_of=day(60))
    with pytest.warns(RecoveryStatsWarning, match=r"noms_change: as_of=2025-05-01 is after the data cut-off"):
        noms_change(prog2, items="abstinence", as_of=day(120))
    # on or before the cut-off (and without a program cut-off): no warning, no note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a in (day(60), day(30)):
            assert relapse(prog, window_days=30, as_of=a).attrs["measure"]["notes"] == []
        relapse(program([{"participant_id": "a", "enrollment_date": day(0)}]), as_of=day(500))


def test_bad_program_and_as_of_errors():
    with pytest.raises(InvalidParameterError, match=r"retention\(prog\): prog must be a recoverystats ProgramData.*got DataFrame"):
        retention(pd.DataFrame())
    prog = program([{"participant_id": "a", "enrollment_date": day(0)}])
    with pytest.raises(InvalidParameterError, match=r"relapse: as_of must be a date .*got 'not a date'"):
        relapse(prog, as_of="not a date")
    empty = ProgramData.from_tables(participants=pd.DataFrame({"participant_id": [], "group": [],
                                                               "enrollment_date": []}))
    with pytest.raises(InvalidParameterError, match=r"recidivism: as_of was not given.*pass as_of='YYYY-MM-DD'"):
        recidivism(empty)


# ---------------------------------------------------------------------------
# retention
# ---------------------------------------------------------------------------

def _retention_program() -> ProgramData:
    return program([
        # discharged (withdrew) exactly on day 30: length of stay 30 -> retained at 30, not 60
        {"participant_id": "on30", "enrollment_date": day(0), "discharge_date": day(30), "discharge_reason": "withdrew"},
        # withdrew on day 29
        {"participant_id": "d29", "enrollment_date": day(0), "discharge_date": day(29), "discharge_reason": "lost_contact"},
        # completed on day 45
        {"participant_id": "comp45", "enrollment_date": day(0), "discharge_date": day(45), "discharge_reason": "completed"},
        # still enrolled; as_of is day 73
        {"participant_id": "open", "enrollment_date": day(0)},
        # enrolled day 50: 30-day window complete (50 + 30 = 80 > 73? no -> incomplete)
        {"participant_id": "late", "enrollment_date": day(50)},
        # enrolled day 43: window 30 ends day 73 = as_of -> observed
        {"participant_id": "edge", "enrollment_date": day(43)},
        # enrolled after as_of
        {"participant_id": "future", "enrollment_date": day(80)},
        # discharge recorded after as_of: ignored, still enrolled at as_of
        {"participant_id": "disc_future", "enrollment_date": day(0), "discharge_date": day(100), "discharge_reason": "withdrew"},
    ])


def test_retention_hand_computed():
    df = retention(_retention_program(), days=(30, 60, 90), as_of=day(73))
    nan = np.nan
    expected = {
        #             r30  r60  r90  e30    e60    e90    event time
        "on30":       (1, 0, 0, True, True, False, 1, 30),
        "d29":        (0, 0, 0, True, True, False, 1, 29),
        "comp45":     (1, 1, 1, True, True, False, 0, 45),
        "open":       (1, 1, nan, True, True, False, 0, 73),
        "late":       (nan, nan, nan, False, False, False, 0, 23),
        "edge":       (1, nan, nan, True, False, False, 0, 30),
        "future":     (nan, nan, nan, False, False, False, 0, nan),
        "disc_future": (1, 1, nan, True, True, False, 0, 73),
    }
    for pid, (r30, r60, r90, e30, e60, e90, ev, t) in expected.items():
        r = row(df, pid)
        got = (r["retained_30"], r["retained_60"], r["retained_90"])
        # r90 for on30/d29/comp45: eligible_90 is False (as_of = day 73), so NaN
        want = (r30, r60, r90) if e90 else (r30 if e30 else nan, r60 if e60 else nan, nan)
        assert_allclose(got, want, atol=EXACT, err_msg=pid)
        assert (r["eligible_30"], r["eligible_60"], r["eligible_90"]) == (e30, e60, e90), pid
        assert r["event"] == ev, pid
        assert_allclose(r["time_days"], t, atol=EXACT, err_msg=pid)
    assert not df["eligible"].any()  # eligible = eligible_90 and nobody has 90 days by day 73
    assert row(df, "future")["exclusion_reason"] == "enrolled after as_of"
    assert row(df, "open")["exclusion_reason"] == "window not complete"
    assert any("1 discharge date(s) after as_of ignored" in n for n in df.attrs["measure"]["notes"])


def test_retention_completion_counts_false():
    df = retention(_retention_program(), days=(30, 60), as_of=day(200))
    r = row(df, "comp45")
    assert_allclose((r["retained_30"], r["retained_60"]), (1.0, 1.0), atol=EXACT)
    df = retention(_retention_program(), days=(30, 60), as_of=day(200), completion_counts=False)
    r = row(df, "comp45")
    # completed on day 45: still enrolled on day 30, not on day 60
    assert_allclose((r["retained_30"], r["retained_60"]), (1.0, 0.0), atol=EXACT)
    assert r["event"] == 0  # a completion is never a dropout
    assert df.attrs["measure"]["parameters"] == {"days": [30, 60], "completion_counts": False}
    # eligible is eligible_<max k>, all enrolled by day 80 have 60 days by day 200
    assert df.loc[df.participant_id != "future", "eligible"].all()


def test_retention_rates_match_hand_count():
    df = retention(_retention_program(), days=(30,), as_of=day(200))
    elig = df[df["eligible"]]
    # 30-day: on30 1, d29 0, comp45 1, open 1, late 1, edge 1, future 1 (enrolled day 80, 120 days), disc_future 0?
    # disc_future: discharged (withdrew) day 100 <= as_of 200 -> length of stay 100 -> retained
    assert len(elig) == 8
    assert elig["retained_30"].sum() == 7.0


def test_retention_discharge_without_reason_is_a_dropout_and_is_noted():
    prog = program([
        {"participant_id": "a", "enrollment_date": day(0), "discharge_date": day(40)},
        {"participant_id": "b", "enrollment_date": day(0), "discharge_date": day(40), "discharge_reason": "completed"},
    ])
    df = retention(prog, days=(30, 60), as_of=day(100))
    a, b = row(df, "a"), row(df, "b")
    # unknown reason: not a completion, so not retained at 60 and a dropout event on day 40
    assert (a["retained_30"], a["retained_60"], a["event"], a["time_days"]) == (1.0, 0.0, 1, 40.0)
    assert (b["retained_60"], b["event"]) == (1.0, 0)
    assert "1 discharge(s) without a discharge_reason counted as dropout" in " ".join(df.attrs["measure"]["notes"])


def test_retention_bad_parameters():
    prog = _retention_program()
    with pytest.raises(InvalidParameterError, match=r"days must be a positive whole number of days .*got 0"):
        retention(prog, days=(30, 0), as_of=day(73))
    with pytest.raises(InvalidParameterError, match=r"days must be a positive whole number of days .*got 'x'"):
        retention(prog, days=("x",), as_of=day(73))
    with pytest.raises(InvalidParameterError, match=r"days must contain at least one number of days; got \(\)"):
        retention(prog, days=(), as_of=day(73))
    with pytest.raises(InvalidParameterError, match=r"completion_counts must be True or False; got 'yes'"):
        retention(prog, completion_counts="yes", as_of=day(73))


# ---------------------------------------------------------------------------
# relapse
# ---------------------------------------------------------------------------

def _relapse_program(**kw) -> ProgramData:
    parts = [
        {"participant_id": "screen", "enrollment_date": day(0)},
        {"participant_id": "neg", "enrollment_date": day(0)},
        {"participant_id": "hist", "enrollment_date": day(0)},
        {"participant_id": "boundary", "enrollment_date": day(0)},
        {"participant_id": "after", "enrollment_date": day(0)},
        {"participant_id": "died", "enrollment_date": day(0)},
        {"participant_id": "disc", "enrollment_date": day(0), "discharge_date": day(20), "discharge_reason": "withdrew"},
        {"participant_id": "fu", "enrollment_date": day(0), "discharge_date": day(20), "discharge_reason": "withdrew",
         "followup_end_date": day(200)},
        {"participant_id": "recent", "enrollment_date": day(150)},
    ]
    ev = [
        # intake screen on the enrollment day is baseline; the day-12 positive screen is the relapse
        {"participant_id": "screen", "event_date": day(0), "event_type": "drug_screen", "result": "positive"},
        {"participant_id": "screen", "event_date": day(12), "event_type": "drug_screen", "result": "positive"},
        {"participant_id": "screen", "event_date": day(40), "event_type": "relapse"},
        # negative/dilute screens are not relapse; an arrest is not relapse
        {"participant_id": "neg", "event_date": day(5), "event_type": "drug_screen", "result": "negative"},
        {"participant_id": "neg", "event_date": day(6), "event_type": "drug_screen", "result": "dilute"},
        {"participant_id": "neg", "event_date": day(7), "event_type": "arrest"},
        # before enrollment: history, ignored
        {"participant_id": "hist", "event_date": day(-30), "event_type": "substance_use"},
        # on day 90 exactly (the window's last day) and day 91
        {"participant_id": "boundary", "event_date": day(90), "event_type": "substance_use"},
        {"participant_id": "after", "event_date": day(91), "event_type": "relapse"},
        # death on day 50 without relapse; a relapse 'after death' is impossible and ignored
        {"participant_id": "died", "event_date": day(50), "event_type": "death"},
        {"participant_id": "died", "event_date": day(60), "event_type": "substance_use"},
        # relapse after discharge (no follow-up end): not observed, ignored
        {"participant_id": "disc", "event_date": day(30), "event_type": "substance_use"},
        # relapse after discharge but within research follow-up: counts
        {"participant_id": "fu", "event_date": day(30), "event_type": "substance_use"},
        # after as_of: ignored
        {"participant_id": "recent", "event_date": day(400), "event_type": "relapse"},
    ]
    return program(parts, ev, **kw)


def test_relapse_time_to_event_hand_computed():
    df = relapse(_relapse_program(), as_of=day(200))
    expected = {
        # pid: (event, time_days, end_reason, relapse_type)
        "screen": (1, 12, "relapse", "drug_screen"),
        "neg": (0, 200, "as_of", None),
        "hist": (0, 200, "as_of", None),
        "boundary": (1, 90, "relapse", "substance_use"),
        "after": (1, 91, "relapse", "relapse"),
        "died": (0, 50, "death", None),
        "disc": (0, 20, "discharge", None),
        "fu": (1, 30, "relapse", "substance_use"),
        "recent": (0, 50, "as_of", None),
    }
    for pid, (ev, t, why, typ) in expected.items():
        r = row(df, pid)
        assert r["event"] == ev, pid
        assert_allclose(r["time_days"], t, atol=EXACT, err_msg=pid)
        assert r["end_reason"] == why, pid
        assert label(r["relapse_type"]) == typ, pid
    assert row(df, "screen")["relapse_date"] == day(12)
    assert row(df, "died")["end_date"] == day(50)
    assert df["eligible"].all()  # without a window everyone enrolled by as_of is usable
    assert "relapsed" not in df.columns


def test_relapse_fixed_window_boundary_and_eligibility():
    df = relapse(_relapse_program(), window_days=90, as_of=day(200))
    nan = np.nan
    expected = {
        "screen": (1.0, True, None),
        "neg": (0.0, True, None),
        "hist": (0.0, True, None),
        "boundary": (1.0, True, None),   # day 90 is inside a 90-day window
        "after": (0.0, True, None),      # day 91 is not
        "died": (0.0, True, None),       # death on day 50, no relapse: a known outcome
        "disc": (nan, False, "observation ended before window end"),
        "fu": (1.0, True, None),
        "recent": (nan, False, "window not complete"),  # 150 + 90 = 240 > 200
    }
    for pid, (rel, elig, why) in expected.items():
        r = row(df, pid)
        assert_allclose(r["relapsed"], rel, atol=EXACT, err_msg=pid)
        assert r["eligible"] == elig, pid
        assert label(r["exclusion_reason"]) == why, pid
    assert bool(row(df, "died")["died_in_window"]) and not bool(row(df, "neg")["died_in_window"])
    assert df.attrs["measure"]["parameters"] == {"window_days": 90}
    # the eligible proportion: relapses among the 7 eligible = screen, boundary, fu
    assert df.loc[df.eligible, "relapsed"].sum() == 3.0 and df["eligible"].sum() == 7


def test_relapse_window_ends_exactly_on_as_of_is_observed():
    prog = program([{"participant_id": "a", "enrollment_date": day(0)}])
    assert bool(relapse(prog, window_days=90, as_of=day(90))["eligible"].iloc[0])
    df = relapse(prog, window_days=90, as_of=day(89))
    assert not bool(df["eligible"].iloc[0]) and df["exclusion_reason"].iloc[0] == "window not complete"


def _with_history_flags(prog: ProgramData, flags: list[bool]) -> ProgramData:
    """The loader derives events.before_enrollment from the dates (a source column of that name is
    replaced), so set the flag directly on the frozen ProgramData to test that it is honoured."""
    import dataclasses

    ev = prog.events.copy()
    ev["before_enrollment"] = pd.array(flags, dtype="boolean")
    return dataclasses.replace(prog, events=ev)


def test_relapse_ignores_events_flagged_before_enrollment():
    parts = [{"participant_id": "a", "enrollment_date": day(0)}]
    ev = [
        {"participant_id": "a", "event_date": day(5), "event_type": "relapse"},
        {"participant_id": "a", "event_date": day(9), "event_type": "relapse"},
    ]
    prog = _with_history_flags(program(parts, ev), [True, False])
    df = relapse(prog, as_of=day(100))
    assert_allclose(df["time_days"], [9.0], atol=EXACT)
    # unflagged, the day-5 relapse is the first
    assert_allclose(relapse(_with_history_flags(prog, [False, False]), as_of=day(100))["time_days"], [5.0], atol=EXACT)


def test_relapse_death_from_discharge_reason():
    prog = program([{"participant_id": "a", "enrollment_date": day(0), "discharge_date": day(33),
                     "discharge_reason": "died", "followup_end_date": day(300)}])
    r = relapse(prog, window_days=60, as_of=day(300)).iloc[0]
    assert r["end_reason"] == "death" and r["time_days"] == 33.0
    assert bool(r["eligible"]) and r["relapsed"] == 0.0 and bool(r["died_in_window"])


def test_relapse_bad_window():
    prog = _relapse_program()
    with pytest.raises(InvalidParameterError, match=r"window_days must be a positive whole number of days .*got -5"):
        relapse(prog, window_days=-5, as_of=day(10))
    with pytest.raises(InvalidParameterError, match=r"window_days must be a positive whole number.*got 1.5"):
        relapse(prog, window_days=1.5, as_of=day(10))


# ---------------------------------------------------------------------------
# recidivism
# ---------------------------------------------------------------------------

def _recid_program() -> ProgramData:
    parts = [
        {"participant_id": "arr", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "conv", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "inc", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "viol", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "dead", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "norel", "enrollment_date": day(20)},
        {"participant_id": "w365", "enrollment_date": day(0), "release_date": day(0)},
        {"participant_id": "w366", "enrollment_date": day(0), "release_date": day(0)},
        {"participant_id": "pre", "enrollment_date": day(10), "release_date": day(0)},
        {"participant_id": "fuend", "enrollment_date": day(10), "release_date": day(0), "followup_end_date": day(200)},
        {"participant_id": "prerelease", "enrollment_date": day(10), "release_date": day(700)},
        {"participant_id": "recent", "enrollment_date": day(500), "release_date": day(500)},
    ]
    ev = [
        {"participant_id": "arr", "event_date": day(40), "event_type": "arrest"},
        {"participant_id": "arr", "event_date": day(100), "event_type": "conviction"},
        {"participant_id": "conv", "event_date": day(50), "event_type": "conviction"},
        {"participant_id": "inc", "event_date": day(60), "event_type": "incarceration"},
        {"participant_id": "viol", "event_date": day(30), "event_type": "parole_violation"},
        {"participant_id": "viol", "event_date": day(80), "event_type": "probation_violation"},
        {"participant_id": "dead", "event_date": day(70), "event_type": "death"},
        {"participant_id": "norel", "event_date": day(45), "event_type": "arrest"},
        {"participant_id": "w365", "event_date": day(365), "event_type": "arrest"},
        {"participant_id": "w366", "event_date": day(366), "event_type": "arrest"},
        # an arrest on the release day and before it do not count
        {"participant_id": "pre", "event_date": day(-20), "event_type": "arrest"},
        {"participant_id": "pre", "event_date": day(0), "event_type": "arrest"},
        {"participant_id": "fuend", "event_date": day(250), "event_type": "arrest"},
    ]
    return program(parts, ev)


def test_recidivism_levels_are_nested():
    prog = _recid_program()
    as_of = day(600)
    got = {}
    for level in ("rearrest", "reconviction", "reincarceration"):
        df = recidivism(prog, level=level, as_of=as_of).set_index("participant_id")
        got[level] = df
    # arr: arrest day 40 (rearrest), conviction day 100 (reconviction), no incarceration
    assert_allclose([got[lv].loc["arr", "time_days"] for lv in got], [40, 100, 600], atol=EXACT)
    assert [label(got[lv].loc["arr", "recidivism_type"]) for lv in got] == ["arrest", "conviction", None]
    assert [got[lv].loc["conv", "event"] for lv in got] == [1, 1, 0]
    assert [got[lv].loc["inc", "event"] for lv in got] == [1, 1, 1]
    # rearrest ⊇ reconviction ⊇ reincarceration for every participant
    e = {lv: got[lv]["event"] for lv in got}
    assert ((e["rearrest"] >= e["reconviction"]) & (e["reconviction"] >= e["reincarceration"])).all()
    r = {lv: got[lv]["recidivated"].fillna(0) for lv in got}
    assert ((r["rearrest"] >= r["reconviction"]) & (r["reconviction"] >= r["reincarceration"])).all()


def test_recidivism_window_boundary_violations_death_missing_release():
    df = recidivism(_recid_program(), window_days=365, as_of=day(600)).set_index("participant_id")
    nan = np.nan
    expected = {
        # pid: (recidivated, event, event_type, time_days, eligible, reason)
        "arr": (1.0, 1, 1, 40, True, None),
        "viol": (0.0, 0, 0, 600, True, None),          # violations are not recidivism
        "dead": (0.0, 0, 2, 70, True, None),           # competing death on day 70
        "norel": (1.0, 1, 1, 25, True, None),          # indexed on enrollment (day 20): arrest day 45 -> 25
        "w365": (1.0, 1, 1, 365, True, None),          # day 365 is inside a 365-day window
        "w366": (0.0, 1, 1, 366, True, None),          # day 366 is not (but is an event for time-to-event)
        "pre": (0.0, 0, 0, 600, True, None),           # arrests before/on the release day never count
        "fuend": (nan, 0, 0, 200, False, "follow-up ended before window end"),
        "prerelease": (nan, 0, 0, nan, False, "released after as_of"),
        "recent": (nan, 0, 0, 100, False, "window not complete"),  # released day 500, as_of day 600
    }
    for pid, (rec, ev, et, t, elig, why) in expected.items():
        r = df.loc[pid]
        assert_allclose(r["recidivated"], rec, atol=EXACT, err_msg=pid)
        assert (r["event"], r["event_type"]) == (ev, et), pid
        assert_allclose(r["time_days"], t, atol=EXACT, err_msg=pid)
        assert (r["eligible"], label(r["exclusion_reason"])) == (elig, why), pid
    # technical violations reported separately: first one on day 30 (parole)
    v = df.loc["viol"]
    assert (v["technical_violation"], v["technical_violation_type"], v["technical_violation_days"]) == \
        (1.0, "parole_violation", 30.0)
    assert df.loc["arr", "technical_violation"] == 0.0
    assert bool(df.loc["dead", "died_in_window"]) and df.loc["dead", "death_date"] == day(70)
    # missing release date: indexed on enrollment and counted in the notes
    assert (df.loc["norel", "index_source"], bool(df.loc["norel", "release_date_missing"])) == ("enrollment_date", True)
    assert df.loc["arr", "index_source"] == "release_date"
    notes = df.attrs["measure"]["notes"]
    assert any(n.startswith("1 participant(s) have no release_date and are indexed on enrollment_date") for n in notes)
    assert any(n.startswith("1 death(s) before any recidivism") for n in notes)


def test_recidivism_missing_release_exclude():
    df = recidivism(_recid_program(), as_of=day(600), missing_release="exclude").set_index("participant_id")
    r = df.loc["norel"]
    assert not r["eligible"] and r["exclusion_reason"] == "no release date" and np.isnan(r["recidivated"])
    # still usable for time-to-event, and flagged
    assert r["event"] == 1 and bool(r["release_date_missing"])


def test_recidivism_without_window_has_no_window_columns():
    df = recidivism(_recid_program(), window_days=None, as_of=day(600))
    assert "recidivated" not in df.columns and "technical_violation" not in df.columns
    assert row(df, "fuend")["eligible"]  # time-to-event: censored at follow-up end, still usable


def test_recidivism_bad_parameters():
    prog = _recid_program()
    with pytest.raises(InvalidParameterError, match=r"level must be one of 'rearrest', 'reconviction', 'reincarceration'; got 'arrest'"):
        recidivism(prog, level="arrest", as_of=day(600))
    with pytest.raises(InvalidParameterError, match=r"missing_release must be one of 'enrollment', 'exclude'; got 'drop'"):
        recidivism(prog, missing_release="drop", as_of=day(600))
    with pytest.raises(InvalidParameterError, match=r"window_days must be a positive whole number of days.*got '1y'"):
        recidivism(prog, window_days="1y", as_of=day(600))


# ---------------------------------------------------------------------------
# Rossi, Berk & Lenihan (1980): 114 of 432 re-arrested within one year
# ---------------------------------------------------------------------------

def rossi_program(*, followup_days: int = 365) -> ProgramData:
    """Rossi data as program tables: staggered releases over 1976, arrest on release + 7*week days."""
    r = pd.read_csv(ROSSI_CSV)
    ids = [f"R{i:03d}" for i in range(len(r))]
    release = pd.Timestamp("1976-01-01") + pd.to_timedelta(np.arange(len(r)) % 365, unit="D")
    parts = pd.DataFrame({
        "participant_id": ids, "group": np.where(r["fin"] == 1, "financial_aid", "control"),
        "enrollment_date": release, "release_date": release,
        "followup_end_date": release + pd.Timedelta(days=followup_days),
        "age": r["age"].astype(float), "prior_incarcerations": r["prio"],
    })
    arrested = r["arrest"] == 1
    events = pd.DataFrame({
        "participant_id": np.array(ids)[arrested],
        "event_date": (release + pd.to_timedelta(7 * r["week"], unit="D"))[arrested],
        "event_type": "arrest",
    })
    return ProgramData.from_tables(participants=parts, events=events, as_of="1977-12-31")


@pytest.mark.skipif(not ROSSI_CSV.exists(), reason="Rossi data not shipped with the package")
def test_rossi_one_year_rearrest_114_of_432():
    # Source: Rossi, Berk & Lenihan (1980); REFERENCE_VALUES.md: 432 released, 114 arrested in
    # one year; by fin: 66/216 (fin = 0: 150 of 216 not re-arrested) and 48/216 (fin = 1: 168).
    df = recidivism(rossi_program(), window_days=365, level="rearrest")
    elig = df[df["eligible"]]
    assert len(elig) == 432
    assert int(elig["recidivated"].sum()) == 114
    by = elig.groupby("group")["recidivated"].agg(["sum", "count"])
    assert by.loc["control"].tolist() == [66, 216] and by.loc["financial_aid"].tolist() == [48, 216]
    # time to event: arrest week * 7 days, everyone else censored at 365 days
    r = pd.read_csv(ROSSI_CSV)
    want = np.where(r["arrest"] == 1, 7 * r["week"], 365).astype(float)
    assert_array_equal(df["time_days"].to_numpy(), want)
    assert_array_equal(df["event"].to_numpy(), r["arrest"].to_numpy())


@pytest.mark.skipif(not ROSSI_CSV.exists(), reason="Rossi data not shipped with the package")
def test_rossi_52_week_followup_needs_a_52_week_window():
    # With research follow-up ending after 52 weeks (364 days), a 365-day window is not observed for
    # the non-arrested: they are excluded, not counted as successes (strict whole-window rule).
    prog = rossi_program(followup_days=364)
    df = recidivism(prog, window_days=365)
    assert df["eligible"].sum() == 0
    assert (df["exclusion_reason"] == "follow-up ended before window end").sum() == 432
    df = recidivism(prog, window_days=364)
    assert df["eligible"].sum() == 432 and int(df["recidivated"].sum()) == 114


def test_rossi_as_program_one_year_rearrest_114_of_432():
    # The bundled layout (recoverystats.datasets.rossi_as_program): everyone released 1971-07-01,
    # arrest mid-week (7 * week - 3 days), follow-up 365 days. Source as above: 114/432; 66/216, 48/216.
    datasets = pytest.importorskip("recoverystats.datasets")
    df = recidivism(datasets.rossi_as_program(), window_days=365, level="rearrest")
    assert df.attrs["measure"]["as_of_source"] == "program"
    assert df["eligible"].all() and len(df) == 432
    assert int(df["recidivated"].sum()) == 114
    by = df.groupby("group")["recidivated"].agg(["sum", "count"])
    assert by.loc["no_aid"].tolist() == [66, 216] and by.loc["financial_aid"].tolist() == [48, 216]
    assert_array_equal(df["time_days"].to_numpy(), np.where(df["arrest"] == 1, 7 * df["week"] - 3, 365).astype(float))
    # Rossi's covariates come through as covariates
    assert {"fin", "wexp", "mar", "paro", "prio"} <= set(df.attrs["measure"]["covariates"])


def test_measures_do_not_warn_on_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recidivism(_recid_program(), as_of=day(600))
        relapse(_relapse_program(), window_days=30, as_of=day(200))
        retention(_retention_program(), as_of=day(300))


def test_recidivism_counts_arrests_between_release_and_enrollment_even_if_flagged():
    # released day 0, enrolled day 30; the day-10 arrest is flagged before_enrollment (history for the
    # program) but recidivism is measured from release, so it counts; relapse ignores flagged events.
    parts = [{"participant_id": "a", "group": "pm", "enrollment_date": day(30), "release_date": day(0)}]
    ev = [
        {"participant_id": "a", "event_date": day(10), "event_type": "arrest"},
        {"participant_id": "a", "event_date": day(12), "event_type": "relapse"},
        {"participant_id": "a", "event_date": day(50), "event_type": "relapse"},
    ]
    prog = _with_history_flags(program(parts, ev), [True, True, False])
    r = recidivism(prog, as_of=day(400)).iloc[0]
    assert (r["event"], r["time_days"], r["recidivated"]) == (1, 10.0, 1.0)
    assert relapse(prog, as_of=day(400))["time_days"].iloc[0] == 20.0  # day 50 - enrollment day 30


def test_rossi_time_to_event_columns_give_published_km_estimates():
    # Kaplan-Meier on recidivism()'s time_days/event (lifelines KaplanMeierFitter, an independent
    # implementation): S(364) = 150/216 without aid, 168/216 with aid, 318/432 overall (REFERENCE_VALUES.md,
    # exact because nobody is censored before week 52).
    lifelines = pytest.importorskip("lifelines")
    datasets = pytest.importorskip("recoverystats.datasets")
    df = recidivism(datasets.rossi_as_program(), window_days=None)
    for group, want in (("no_aid", 150 / 216), ("financial_aid", 168 / 216), (None, 318 / 432)):
        d = df if group is None else df[df["group"] == group]
        km = lifelines.KaplanMeierFitter().fit(d["time_days"], d["event"])
        assert_allclose(km.survival_function_at_times(364).iloc[0], want, rtol=1e-12)
