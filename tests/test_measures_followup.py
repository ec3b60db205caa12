"""Follow-up, NOMs change and engagement on tiny hand-made programs; McNemar against statsmodels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recoverystats import ProgramData
from recoverystats.errors import InvalidParameterError
from recoverystats.measures import (
    DEFINITIONS,
    definitions_markdown,
    engagement,
    followup,
    followup_rate,
    mcnemar_test,
    noms_change,
)

#: Counts, days and hand-computed fractions: exact up to float rounding of one division.
EXACT = 1e-12
#: statsmodels' McNemar (independent implementation): same formulas, so rtol 1e-10.
MCNEMAR_RTOL = 1e-10

D0 = pd.Timestamp("2025-01-01")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "measures.md"


def day(k: int) -> pd.Timestamp:
    return D0 + pd.Timedelta(days=k)


def row(df: pd.DataFrame, pid: str) -> pd.Series:
    return df.set_index("participant_id").loc[pid]


def label(value: object) -> object:
    """A text cell with its missing value as ``None``: pandas 2 stores ``None`` in object
    columns, pandas 3 ``NaN`` in ``str`` columns; both mean "no label"."""
    return None if pd.isna(value) else value


# ---------------------------------------------------------------------------
# follow-up
# ---------------------------------------------------------------------------

def _followup_program() -> ProgramData:
    parts = pd.DataFrame([
        ("in150", "pm", day(0)), ("in240", "pm", day(0)), ("early", "pm", day(0)), ("late", "cmp", day(0)),
        ("none", "cmp", day(0)), ("noint", "cmp", day(10)), ("intake_later", "cmp", day(0)),
        ("open", "pm", day(0)), ("died", "pm", day(0)), ("future", "pm", day(500)),
    ], columns=["participant_id", "group", "enrollment_date"])
    asm = [(pid, day(0), "intake") for pid in ("in150", "in240", "early", "late", "none", "open", "died")]
    asm[-2] = ("open", day(200), "intake")
    asm += [
        ("in150", day(150), "followup_6m"),        # first day of the window
        ("in240", day(240), "followup_6m"),        # last day of the window
        ("early", day(149), "followup_6m"),
        ("late", day(241), "followup_6m"),
        ("noint", day(200), "followup_6m"),        # no intake: day 190 from enrollment (day 10)
        ("intake_later", day(20), "intake"),
        ("intake_later", day(165), "followup_6m"),  # 145 days after intake: outside (165 after enrollment)
    ]
    asm = pd.DataFrame(asm, columns=["participant_id", "assessment_date", "timepoint"])
    ev = pd.DataFrame({"participant_id": ["died"], "event_date": [day(100)], "event_type": ["death"]})
    return ProgramData.from_tables(participants=parts, assessments=asm, events=ev)


def test_followup_hand_computed_window_closed():
    df = followup(_followup_program(), as_of=day(400))
    nan = np.nan
    expected = {
        # pid: (due, completed, in_window, outside, days_to_followup, index_source, reason)
        "in150": (True, True, 1.0, 0.0, 150, "intake_assessment", None),
        "in240": (True, True, 1.0, 0.0, 240, "intake_assessment", None),
        "early": (True, True, 0.0, 1.0, 149, "intake_assessment", None),
        "late": (True, True, 0.0, 1.0, 241, "intake_assessment", None),
        "none": (True, False, 0.0, 0.0, nan, "intake_assessment", None),
        "noint": (True, True, 1.0, 0.0, 190, "enrollment_date", None),
        "intake_later": (True, True, 0.0, 1.0, 145, "intake_assessment", None),
        "open": (False, False, nan, nan, nan, "intake_assessment", "window not complete"),
        "died": (False, False, nan, nan, nan, "intake_assessment", "died before follow-up window closed"),
        "future": (False, False, nan, nan, nan, "enrollment_date", "enrolled after as_of"),
    }
    for pid, (due, comp, inw, outw, dtf, src, why) in expected.items():
        r = row(df, pid)
        assert (r["due"], r["completed"], r["eligible"]) == (due, comp, due), pid
        assert_allclose([r["completed_in_window"], r["completed_outside_window"], r["days_to_followup"]],
                        [inw, outw, dtf], atol=EXACT, err_msg=pid)
        assert (r["index_source"], label(r["exclusion_reason"])) == (src, why), pid
    assert row(df, "open")["window_close"] == day(440)
    s = df.attrs["measure"]["summary"]
    # due 7; in window: in150, in240, noint -> 3/7
    assert (s["due"], s["completed_in_window"], s["completed_outside_window"], s["not_completed"]) == (7, 3, 3, 1)
    assert_allclose(s["rate"], 3 / 7, atol=EXACT)
    assert s["target"] == 0.8 and s["meets_target"] is False


def test_followup_time_days_censored_at_death_window_close_or_as_of():
    df = followup(_followup_program(), as_of=day(400))
    # interviews in the window: time to the interview (days from intake / enrollment)
    assert_allclose([row(df, p)["time_days"] for p in ("in150", "in240", "noint")], [150, 240, 190], atol=EXACT)
    # no interview in the window: censored at window close (day 240) ...
    assert_allclose([row(df, p)["time_days"] for p in ("none", "early", "late")], [240, 240, 240], atol=EXACT)
    # ... or at as_of while the window is open (intake day 200, as_of day 400) ...
    assert_allclose(row(df, "open")["time_days"], 200, atol=EXACT)
    # ... or at death (day 100): a participant is not at risk of an interview after dying
    assert_allclose(row(df, "died")["time_days"], 100, atol=EXACT)
    assert row(df, "died")["event"] == 0


def test_followup_window_opened_rule_counts_open_windows():
    df = followup(_followup_program(), as_of=day(400), due_rule="window_opened")
    assert bool(row(df, "open")["due"])  # window opened day 350 <= 400, closes day 440
    s = df.attrs["measure"]["summary"]
    assert (s["due"], s["completed_in_window"]) == (8, 3)


def test_followup_rate_by_group_and_target():
    df = followup(_followup_program(), as_of=day(400))
    t = followup_rate(df, by="group")
    assert list(t.columns) == ["group", "due", "completed_in_window", "completed_outside_window", "not_completed",
                               "rate", "target", "meets_target"]
    t = t.set_index("group")
    # pm due: in150, in240, early -> 2 in window; cmp due: late, none, noint, intake_later -> 1
    assert t.loc["pm", ["due", "completed_in_window", "completed_outside_window"]].tolist() == [3, 2, 1]
    assert t.loc["cmp", ["due", "completed_in_window", "not_completed"]].tolist() == [4, 1, 1]
    assert_allclose(t["rate"].to_numpy(), [1 / 4, 2 / 3], atol=EXACT)  # cmp, pm (sorted)
    t2 = followup_rate(df, target=0.25)
    assert t2["meets_target"].tolist() == [True] and t2["due"].tolist() == [7]
    with pytest.raises(InvalidParameterError, match=r"by: column\(s\) 'arm' not found"):
        followup_rate(df, by="arm")
    with pytest.raises(InvalidParameterError, match=r"df \(output of followup\(\)\): column\(s\) 'due'"):
        followup_rate(df.drop(columns="due"))


def test_followup_nothing_due_gives_nan_rate():
    df = followup(_followup_program(), as_of=day(100))
    assert df.attrs["measure"]["summary"]["due"] == 0
    assert np.isnan(df.attrs["measure"]["summary"]["rate"])
    assert np.isnan(followup_rate(df)["rate"].iloc[0])


def test_followup_bad_parameters():
    prog = _followup_program()
    with pytest.raises(InvalidParameterError, match=r"window must have start <= end, e.g. \(150, 240\); got \(240, 150\)"):
        followup(prog, window=(240, 150), as_of=day(400))
    with pytest.raises(InvalidParameterError, match=r"window must be a \(start, end\) pair .*got 180"):
        followup(prog, window=180, as_of=day(400))
    with pytest.raises(InvalidParameterError, match=r"target must be a proportion between 0 and 1 .*got 80"):
        followup(prog, target=80, as_of=day(400))
    with pytest.raises(InvalidParameterError, match=r"due_rule must be one of 'window_closed', 'window_opened'; got 'due'"):
        followup(prog, due_rule="due", as_of=day(400))


# ---------------------------------------------------------------------------
# NOMs change
# ---------------------------------------------------------------------------

def _pairs(counts: dict[tuple[bool, bool], int]) -> list[tuple[bool, bool]]:
    out = []
    for k, n in counts.items():
        out += [k] * n
    return out


def _noms_program() -> tuple[ProgramData, dict]:
    """40 participants. Abstinence (= not any_use_30d) table [[a, b], [c, d]] = [[5, 3], [20, 12]]
    (b + c = 23 < 25: exact); employed table [[2, 5], [25, 8]] (b + c = 30: chi-square)."""
    abst = _pairs({(True, True): 5, (True, False): 3, (False, True): 20, (False, False): 12})
    empl = _pairs({(True, True): 2, (True, False): 5, (False, True): 25, (False, False): 8})
    n = len(abst)
    ids = [f"p{i:02d}" for i in range(n)]
    parts = pd.DataFrame({"participant_id": ids + ["nofu", "late", "x1"],
                          "group": ["pm"] * 20 + ["cmp"] * 20 + ["pm", "pm", "pm"],
                          "enrollment_date": day(0)})
    rows = []
    for i, pid in enumerate(ids):
        rows.append((pid, day(0), "intake", not abst[i][0], empl[i][0], True))
        rows.append((pid, day(180), "followup_6m", not abst[i][1], empl[i][1], None))  # housing missing at follow-up
    rows.append(("nofu", day(0), "intake", True, True, True))               # no follow-up: no pair
    rows.append(("late", day(0), "intake", True, True, True))
    rows.append(("late", day(900), "followup_6m", False, True, True))       # after as_of: ignored
    rows.append(("x1", day(0), "intake", True, False, True))
    rows.append(("x1", day(300), "followup_6m", False, True, True))         # outside (150, 240): pair unless window
    asm = pd.DataFrame(rows, columns=["participant_id", "assessment_date", "timepoint", "any_use_30d",
                                      "employed_or_school", "stable_housing"])
    return ProgramData.from_tables(participants=parts, assessments=asm), {
        "abstinence": np.array([[5, 3], [20, 12]]), "employed_or_school": np.array([[2, 5], [25, 8]])}


def test_noms_change_matches_hand_counts_and_statsmodels_mcnemar():
    from statsmodels.stats.contingency_tables import mcnemar

    prog, tables = _noms_program()
    out = noms_change(prog, items=("abstinence", "employed_or_school", "stable_housing"), window=(150, 240),
                      as_of=day(400))
    assert list(out.columns) == ["item", "n_pairs", "intake_yes", "followup_yes", "pct_intake", "pct_followup",
                                 "change_pp", "yes_to_no", "no_to_yes", "test", "statistic", "p_value"]
    out = out.set_index("item")
    for item, tab in tables.items():
        r = out.loc[item]
        n = tab.sum()
        assert (r["n_pairs"], r["yes_to_no"], r["no_to_yes"]) == (n, tab[0, 1], tab[1, 0])
        assert_allclose([r["pct_intake"], r["pct_followup"], r["change_pp"]],
                        [100 * tab[0].sum() / n, 100 * tab[:, 0].sum() / n,
                         100 * (tab[1, 0] - tab[0, 1]) / n], rtol=EXACT)
        exact = tab[0, 1] + tab[1, 0] < 25
        ref = mcnemar(tab, exact=exact, correction=True)  # statsmodels 0.15
        assert r["test"] == ("exact binomial" if exact else "chi-square (continuity corrected)")
        assert_allclose([r["statistic"], r["p_value"]], [ref.statistic, ref.pvalue], rtol=MCNEMAR_RTOL)
    # abstinence: 8/40 = 20% at intake, 25/40 = 62.5% at follow-up, +42.5 points
    assert_allclose(out.loc["abstinence", ["pct_intake", "pct_followup", "change_pp"]].astype(float),
                    [20.0, 62.5, 42.5], rtol=EXACT)
    # stable housing is missing at every follow-up: no pairs -> NaN, with a note
    h = out.loc["stable_housing"]
    assert h["n_pairs"] == 0 and np.isnan(h["p_value"]) and np.isnan(h["pct_intake"]) and label(h["test"]) is None
    assert any("no matched pairs" in n for n in out.attrs["measure"]["notes"])
    # without the window, x1 (follow-up on day 300) also pairs
    assert noms_change(prog, items="abstinence", as_of=day(400))["n_pairs"].iloc[0] == 41


def test_noms_change_by_group_keeps_every_level():
    prog, _ = _noms_program()
    out = noms_change(prog, items=["abstinence"], by="group", window=(150, 240), as_of=day(400))
    assert out["group"].tolist() == ["cmp", "pm"]
    assert out["n_pairs"].sum() == 40
    assert out.attrs["measure"]["parameters"]["by"] == ["group"]


def test_mcnemar_vectorised_equals_statsmodels_over_a_grid():
    from statsmodels.stats.contingency_tables import mcnemar

    b, c = np.meshgrid(np.arange(0, 31), np.arange(0, 31))
    b, c = b.ravel(), c.ravel()
    keep = (b + c) > 0
    b, c = b[keep], c[keep]
    test, stat, p = mcnemar_test(b, c)
    for i in range(len(b)):
        ref = mcnemar([[7, b[i]], [c[i], 4]], exact=bool(b[i] + c[i] < 25), correction=True)
        assert_allclose([stat[i], p[i]], [ref.statistic, ref.pvalue], rtol=MCNEMAR_RTOL, err_msg=f"b={b[i]} c={c[i]}")


def test_mcnemar_without_discordant_pairs_is_p_one_even_when_chi_square_is_forced():
    # b = c = 0: nobody changed, so there is no evidence of change. The exact McNemar p is
    # min(1, 2 * P(X <= 0)), X ~ Bin(0, 1/2) = 1 (computed here with scipy); the chi-square
    # (|b - c| - 1)^2 / (b + c) is 1/0 and must not turn into "p = 0".
    from scipy.stats import binom

    want_p = min(1.0, 2 * binom.cdf(0, 0, 0.5))
    test, stat, p = mcnemar_test(np.array([0, 0]), np.array([0, 0]), exact_threshold=0)
    assert_allclose(p, [want_p, want_p], rtol=EXACT)
    assert_allclose(stat, [0.0, 0.0], atol=EXACT)
    assert list(test) == ["exact binomial"] * 2
    # through noms_change: every pair concordant on abstinence, chi-square forced
    parts = pd.DataFrame({"participant_id": ["a", "b"], "group": "pm", "enrollment_date": day(0)})
    asm = pd.DataFrame({"participant_id": ["a", "a", "b", "b"],
                        "assessment_date": [day(0), day(180), day(0), day(180)],
                        "timepoint": ["intake", "followup_6m"] * 2,
                        "any_use_30d": [True, True, False, False]})
    prog = ProgramData.from_tables(participants=parts, assessments=asm)
    out = noms_change(prog, items="abstinence", as_of=day(400), exact_threshold=0).iloc[0]
    assert (out["n_pairs"], out["yes_to_no"], out["no_to_yes"]) == (2, 0, 0)
    assert out["p_value"] == want_p and out["statistic"] == 0.0


def test_noms_change_bad_parameters():
    prog, _ = _noms_program()
    with pytest.raises(InvalidParameterError, match=r"items: unknown NOMs item\(s\) 'housing'; choose from abstinence"):
        noms_change(prog, items=("housing",))
    with pytest.raises(InvalidParameterError, match=r"by: column\(s\) 'arm' not found in participants"):
        noms_change(prog, by="arm")
    with pytest.raises(InvalidParameterError, match=r"exact_threshold must be a non-negative whole number .*got -1"):
        noms_change(prog, exact_threshold=-1)


# ---------------------------------------------------------------------------
# engagement
# ---------------------------------------------------------------------------

def _engagement_program() -> ProgramData:
    parts = pd.DataFrame([
        ("a", day(0), None), ("b", day(0), day(50)), ("c", day(320), None), ("d", day(311), None), ("e", day(401), None),
    ], columns=["participant_id", "enrollment_date", "discharge_date"]).assign(group="pm")
    con = pd.DataFrame([
        ("a", day(-5), 20.0),   # before enrollment: not counted
        ("a", day(0), 30.0),    # enrollment day counts
        ("a", day(45), np.nan),  # minutes missing: counts as a contact, 0 minutes
        ("a", day(89), 60.0),   # last day of the first 90 days
        ("a", day(90), 15.0),   # day 90: after the first 90 days
        ("d", day(311), 10.0),
        ("d", day(500), 10.0),  # after as_of: ignored
    ], columns=["participant_id", "contact_date", "minutes"])
    mt = pd.DataFrame([
        ("a", "m1", day(3)), ("a", "m2", day(60)), ("c", "m1", day(300)),
    ], columns=["participant_id", "mentor_id", "match_date"])
    return ProgramData.from_tables(participants=parts, contacts=con, matches=mt,
                                   mentors=pd.DataFrame({"mentor_id": ["m1", "m2"]}))


def test_engagement_hand_computed():
    df = engagement(_engagement_program(), as_of=day(400))
    nan = np.nan
    expected = {
        # pid: (first, minutes_first, per30, engaged, total, minutes_total, matched, time, eligible, reason)
        "a": (3, 90, 1.0, 1.0, 4, 105, True, 3, True, None),
        "b": (0, 0, 0.0, 0.0, 0, 0, False, 50, True, None),
        "c": (nan, nan, nan, nan, 0, 0, True, 0, False, "window not complete"),
        "d": (1, 10, 1 / 3, 0.0, 1, 10, False, 89, True, None),  # 311 + 89 = 400: observed
        "e": (nan, nan, nan, nan, nan, nan, False, nan, False, "enrolled after as_of"),
    }
    for pid, (f, mf, per, eng, tot, mtot, matched, t, elig, why) in expected.items():
        r = row(df, pid)
        assert_allclose([r["contacts_first"], r["minutes_first"], r["contacts_per_30d"], r["engaged"],
                         r["contacts_total"], r["minutes_total"], r["time_days"]],
                        [f, mf, per, eng, tot, mtot, t], atol=EXACT, err_msg=pid)
        assert (bool(r["matched"]), r["event"], r["eligible"], label(r["exclusion_reason"])) == (matched, int(matched), elig, why), pid
    assert row(df, "a")["match_date"] == day(3) and row(df, "a")["days_to_match"] == 3.0
    assert row(df, "c")["days_to_match"] == -20.0
    assert any("matched before enrollment" in n for n in df.attrs["measure"]["notes"])
    df2 = engagement(_engagement_program(), as_of=day(400), first_days=30, engaged_min_contacts=1)
    assert_allclose(row(df2, "a")[["contacts_first", "contacts_per_30d", "engaged"]].astype(float), [1, 1, 1], atol=EXACT)


def test_engagement_time_to_match_censored_at_death():
    # never matched, no discharge recorded, died on day 40: censored at death, not at as_of
    parts = pd.DataFrame({"participant_id": ["x", "y"], "group": "pm", "enrollment_date": day(0)})
    ev = pd.DataFrame({"participant_id": ["x"], "event_date": [day(40)], "event_type": ["death"]})
    df = engagement(ProgramData.from_tables(participants=parts, events=ev), as_of=day(300))
    assert_allclose([row(df, "x")["time_days"], row(df, "y")["time_days"]], [40, 300], atol=EXACT)
    assert (df["event"] == 0).all()


def test_engagement_bad_parameters():
    prog = _engagement_program()
    with pytest.raises(InvalidParameterError, match=r"first_days must be a positive whole number of days .*got 0"):
        engagement(prog, first_days=0)
    with pytest.raises(InvalidParameterError, match=r"engaged_min_contacts must be a non-negative whole number .*got -1"):
        engagement(prog, engaged_min_contacts=-1)


# ---------------------------------------------------------------------------
# definitions written once
# ---------------------------------------------------------------------------

def test_docs_carry_the_definitions_verbatim():
    text = DOCS.read_text(encoding="utf-8")
    assert definitions_markdown() in text, "regenerate the block in docs/measures.md with definitions_markdown()"
    for name, d in DEFINITIONS.items():
        assert f"`{name}`" in text and d.definition in text


def test_every_measure_stores_its_definition():
    prog = _engagement_program()
    assert engagement(prog, as_of=day(400)).attrs["measure"]["definition"] == DEFINITIONS["engagement"].definition
    fprog = _followup_program()
    assert followup(fprog, as_of=day(400)).attrs["measure"]["definition"] == DEFINITIONS["followup"].definition
    nprog, _ = _noms_program()
    assert noms_change(nprog, as_of=day(400)).attrs["measure"]["name"] == "noms_change"
