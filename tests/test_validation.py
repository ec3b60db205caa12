"""Broken inputs: every validation rule, each asserting the finding's rule, line and column.

Line numbers are 1-based lines of the file as a user sees it (the CSV header is line 1).
The base participants file below has its rows on lines 2, 3 and 4.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.io.program import FLOW_COLUMNS, VALIDATION_COLUMNS
from recoverystats.schema.rules import RULES

PARTICIPANTS = """\
participant_id,enrollment_date,group,site,birth_date,discharge_date
001,2025-01-10,peer_mentoring,north,1990-05-01,
002,2025-02-01,comparison,south,1985-03-02,2025-06-30
003,2025-03-15,peer_mentoring,north,1979-11-30,
"""
EVENTS = """\
participant_id,event_date,event_type,result
001,2025-02-01,drug_screen,negative
002,2025-03-01,arrest,
003,2025-04-01,relapse,
"""


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def load(tmp_path: Path, files: dict[str, str | bytes], **kw):
    return rs.read_program(write(tmp_path / "src", files), **kw)


def raised(
    tmp_path: Path, files: dict[str, str | bytes], match: str = "error", **kw
) -> pd.DataFrame:
    """Load expecting DataValidationError; return its findings frame."""
    with pytest.raises(DataValidationError, match=match) as info:
        load(tmp_path, files, **kw)
    return info.value.validation


def only(findings: pd.DataFrame, rule: str) -> pd.DataFrame:
    out = findings[findings["rule"] == rule]
    assert len(out), f"no {rule} finding in:\n{findings[['rule', 'line', 'column']]}"
    return out


def one(findings: pd.DataFrame, rule: str) -> pd.Series:
    out = only(findings, rule)
    assert len(out) == 1, out
    return out.iloc[0]


def balanced(prog) -> None:
    f = prog.flow
    assert list(f.columns) == list(FLOW_COLUMNS)
    assert (f["rows_read"] == f["rows_kept"] + f["rows_dropped"]).all()


# ---------------------------------------------------------------------------
# the clean baseline
# ---------------------------------------------------------------------------
def test_clean_files_load_without_errors(tmp_path):
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": EVENTS})
    assert list(prog.validation.columns[: len(VALIDATION_COLUMNS)]) == list(VALIDATION_COLUMNS)
    assert (prog.validation["severity"] != "error").all()
    assert prog.participants["participant_id"].tolist() == ["001", "002", "003"]
    assert len(prog.events) == 3
    balanced(prog)


# ---------------------------------------------------------------------------
# cells: dates, types, codes, ranges, missing
# ---------------------------------------------------------------------------
def test_unparseable_date(tmp_path):
    bad = PARTICIPANTS.replace("2025-02-01,comparison", "soon,comparison")
    f = one(raised(tmp_path, {"participants.csv": bad}), "date_parse")
    assert (f["line"], f["column"], f["value"]) == (3, "enrollment_date", "soon")
    assert "participants.csv line 3, column enrollment_date" in f["message"]
    assert "date_format" in f["message"]


def test_impossible_date(tmp_path):
    bad = PARTICIPANTS.replace("2025-03-15", "2025-02-30")
    f = one(raised(tmp_path, {"participants.csv": bad}), "date_impossible")
    assert (f["line"], f["column"], f["value"]) == (4, "enrollment_date", "2025-02-30")
    assert "not a real calendar date" in f["message"]


def test_month_13_is_impossible_not_parsed(tmp_path):
    bad = EVENTS.replace("2025-03-01", "2025-13-01")
    f = one(
        raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": bad}), "date_impossible"
    )
    assert (f["table"], f["line"], f["column"]) == ("events", 3, "event_date")


def test_wrong_types_number_integer_bool(tmp_path):
    text = (
        "participant_id,enrollment_date,group,age,prior_incarcerations,dual_diagnosis\n"
        "001,2025-01-10,a,abc,1,yes\n"
        "002,2025-01-10,a,30,2.5,no\n"
        "003,2025-01-10,a,31,0,maybe\n"
    )
    found = raised(tmp_path, {"participants.csv": text})
    f = one(found, "type_number")
    assert (f["line"], f["column"], f["value"]) == (2, "age", "abc")
    f = one(found, "type_integer")
    assert (f["line"], f["column"]) == (3, "prior_incarcerations")
    f = one(found, "type_bool")
    assert (f["line"], f["column"], f["value"]) == (4, "dual_diagnosis", "maybe")


def test_good_types_are_typed(tmp_path):
    text = (
        "participant_id,enrollment_date,group,age,prior_incarcerations,dual_diagnosis,risk_score\n"
        "001,2025-01-10,a,34,1,Yes,12.5\n002,2025-01-11,b,1e1,0,n,\n"
    )
    prog = load(tmp_path, {"participants.csv": text})
    p = prog.participants
    assert p["age"].tolist() == [34.0, 10.0]
    assert str(p["prior_incarcerations"].dtype) == "Int64" and p[
        "prior_incarcerations"
    ].tolist() == [1, 0]
    assert str(p["dual_diagnosis"].dtype) == "boolean" and p["dual_diagnosis"].tolist() == [
        True,
        False,
    ]
    assert np.isnan(p["risk_score"].iloc[1])


def test_unknown_code(tmp_path):
    bad = EVENTS.replace("arrest", "bogus")
    f = one(raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": bad}), "code_unknown")
    assert (f["table"], f["line"], f["column"], f["value"]) == ("events", 3, "event_type", "bogus")
    assert "allowed:" in f["message"] and "arrest" in f["message"]


def test_codes_are_normalised_for_case_and_spaces(tmp_path):
    text = PARTICIPANTS.replace("site,birth_date", "site,risk_level,birth_date")
    text = text.replace("north,1990", "north,Very High,1990").replace(
        "south,1985", "south, LOW ,1985"
    )
    text = text.replace("north,1979", "north,,1979")
    prog = load(tmp_path, {"participants.csv": text})
    assert prog.participants["risk_level"].tolist()[:2] == ["very_high", "low"]
    assert pd.isna(prog.participants["risk_level"].iloc[2])


def test_age_out_of_range(tmp_path):
    text = "participant_id,enrollment_date,group,age\n001,2025-01-10,a,34\n002,2025-01-10,a,150\n"
    f = one(raised(tmp_path, {"participants.csv": text}), "range")
    assert (f["line"], f["column"]) == (3, "age")
    assert "10-100" in f["message"]


def test_birth_date_giving_implausible_age(tmp_path):
    bad = PARTICIPANTS.replace("1985-03-02", "2020-03-02")
    f = one(raised(tmp_path, {"participants.csv": bad}), "range")
    assert (f["line"], f["column"]) == (3, "birth_date")


def test_minutes_out_of_range_uses_spec_range(tmp_path):
    contacts = "participant_id,contact_date,minutes\n001,2025-02-01,30\n001,2025-02-02,-5\n"
    f = one(raised(tmp_path, {"participants.csv": PARTICIPANTS, "contacts.csv": contacts}), "range")
    assert (f["table"], f["line"], f["column"]) == ("contacts", 3, "minutes")


def test_missing_required_value(tmp_path):
    bad = PARTICIPANTS.replace("002,2025-02-01,", "002,,")
    f = one(raised(tmp_path, {"participants.csv": bad}), "missing_value")
    assert (f["line"], f["column"]) == (3, "enrollment_date")


def test_na_markers_are_missing(tmp_path):
    text = (
        "participant_id,enrollment_date,group,site,discharge_date,age\n"
        "001,2025-01-10,a,NULL,N/A,-\n002,2025-01-10,a,NA,,NULL\n003,2025-01-10,a,x,-,40\n"
    )
    prog = load(tmp_path, {"participants.csv": text})
    p = prog.participants
    assert p["site"].isna().tolist() == [True, True, False]
    assert p["discharge_date"].isna().all()
    assert p["age"].isna().tolist() == [True, True, False]


# ---------------------------------------------------------------------------
# columns and keys
# ---------------------------------------------------------------------------
def test_missing_required_column_always_raises(tmp_path):
    text = "participant_id,enrollment_date,site\n001,2025-01-10,a\n"
    for on_error in ("raise", "drop"):
        found = raised(tmp_path / on_error, {"participants.csv": text}, on_error=on_error)
        f = one(found, "required_column")
        assert (f["table"], f["column"], f["severity"]) == ("participants", "group", "error")
        assert pd.isna(f["line"])
        assert "required column 'group' is missing" in f["message"]


def test_duplicate_ids(tmp_path):
    bad = PARTICIPANTS + "002,2025-05-01,comparison,east,1970-01-01,\n"
    found = only(raised(tmp_path, {"participants.csv": bad}), "duplicate_key")
    assert found["line"].tolist() == [3, 5]
    assert set(found["column"]) == {"participant_id"}
    assert "lines 3, 5" in found["message"].iloc[0]


def test_exact_duplicate_row_in_keyed_table_is_dropped_with_warning(tmp_path):
    bad = PARTICIPANTS + "003,2025-03-15,peer_mentoring,north,1979-11-30,\n"
    prog = load(tmp_path, {"participants.csv": bad})
    f = one(prog.validation, "duplicate_row")
    assert (f["line"], f["severity"], f["action"]) == (5, "warning", "dropped")
    assert "exact copy of line 4" in f["message"]
    assert prog.flow.set_index("table").loc[
        "participants", ["rows_read", "rows_kept", "rows_dropped"]
    ].tolist() == [4, 3, 1]


def test_repeated_rows_in_events_are_kept_and_reported(tmp_path):
    bad = EVENTS + "001,2025-02-01,drug_screen,negative\n"
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": bad})
    f = one(prog.validation, "repeated_row")
    assert (f["line"], f["severity"]) == (5, "info")
    assert len(prog.events) == 4


def test_composite_key_duplicates_in_assessments(tmp_path):
    a = "participant_id,assessment_date,timepoint\n001,2025-01-12,intake\n001,2025-01-20,intake\n"
    found = only(
        raised(tmp_path, {"participants.csv": PARTICIPANTS, "assessments.csv": a}), "duplicate_key"
    )
    assert found["line"].tolist() == [2, 3]
    assert found["value"].iloc[0] == "001/intake"


def test_header_spelling_is_matched_and_reported(tmp_path):
    text = PARTICIPANTS.replace("enrollment_date", "Enrollment Date")
    prog = load(tmp_path, {"participants.csv": text})
    f = one(prog.validation, "column_renamed")
    assert (f["column"], f["value"]) == ("enrollment_date", "Enrollment Date")
    assert prog.participants["enrollment_date"].notna().all()


def test_extra_columns_are_kept_after_canonical_ones(tmp_path):
    text = (
        "participant_id,enrollment_date,group,housing_score,case_worker\n"
        "001,2025-01-10,a,3,ann\n002,2025-01-11,b,4,bob\n003,2025-01-12,b,,cy\n"
    )
    prog = load(tmp_path, {"participants.csv": text})
    cols = list(prog.participants.columns)
    assert cols[-2:] == ["housing_score", "case_worker"]
    assert cols.index("housing_score") > cols.index("followup_end_date")
    assert prog.participants["housing_score"].tolist()[:2] == [3, 4]
    assert set(only(prog.validation, "extra_column")["column"]) == {"housing_score", "case_worker"}


# ---------------------------------------------------------------------------
# referential integrity and cascade
# ---------------------------------------------------------------------------
def test_orphan_events(tmp_path):
    bad = EVENTS + "999,2025-04-01,arrest,\n"
    f = one(raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": bad}), "orphan")
    assert (f["table"], f["line"], f["column"], f["value"]) == (
        "events",
        5,
        "participant_id",
        "999",
    )
    assert "not a participant in participants.csv" in f["message"]


def test_orphan_contacts_and_unknown_mentor(tmp_path):
    mentors = "mentor_id,site\nM1,north\n"
    contacts = "participant_id,contact_date,mentor_id\n001,2025-02-01,M1\n004,2025-02-01,M1\n002,2025-02-02,M9\n"
    found = only(
        raised(
            tmp_path,
            {"participants.csv": PARTICIPANTS, "mentors.csv": mentors, "contacts.csv": contacts},
        ),
        "orphan",
    )
    assert found[["line", "column", "value"]].values.tolist() == [
        [3, "participant_id", "004"],
        [4, "mentor_id", "M9"],
    ]


def test_orphan_matches(tmp_path):
    mentors = "mentor_id\nM1\nM2\n"
    matches = "participant_id,mentor_id,match_date\n001,M1,2025-01-15\n007,M2,2025-02-10\n002,M3,2025-02-10\n"
    found = only(
        raised(
            tmp_path,
            {"participants.csv": PARTICIPANTS, "mentors.csv": mentors, "matches.csv": matches},
        ),
        "orphan",
    )
    assert found[["table", "line", "column", "value"]].values.tolist() == [
        ["matches", 3, "participant_id", "007"],
        ["matches", 4, "mentor_id", "M3"],
    ]


def test_mentor_ids_not_checked_without_mentors_table(tmp_path):
    matches = "participant_id,mentor_id,match_date\n001,M1,2025-01-15\n"
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "matches.csv": matches})
    assert (prog.validation["rule"] != "orphan").all()
    assert prog.matches["mentor_id"].tolist() == ["M1"]


def test_drop_mode_drops_offenders_and_their_dependants(tmp_path):
    bad = PARTICIPANTS.replace("2025-02-01,comparison", "soon,comparison")
    events = EVENTS + "999,2025-04-01,arrest,\n"
    prog = load(tmp_path, {"participants.csv": bad, "events.csv": events}, on_error="drop")
    assert prog.participants["participant_id"].tolist() == ["001", "003"]
    assert prog.events["participant_id"].tolist() == ["001", "003"]
    pd_ = one(prog.validation, "parent_dropped")
    assert (pd_["table"], pd_["line"], pd_["value"], pd_["action"]) == (
        "events",
        3,
        "002",
        "dropped",
    )
    assert "participants.csv (line 3)" in pd_["message"]
    assert one(prog.validation, "orphan")["action"] == "dropped"
    assert one(prog.validation, "date_parse")["action"] == "dropped"
    flow = prog.flow.set_index("table")
    assert flow.loc["participants"].tolist() == [3, 2, 1]
    assert flow.loc["events"].tolist() == [4, 2, 2]
    balanced(prog)


# ---------------------------------------------------------------------------
# date logic
# ---------------------------------------------------------------------------
def test_discharge_before_enrollment(tmp_path):
    bad = PARTICIPANTS.replace("2025-06-30", "2025-01-15")
    f = one(raised(tmp_path, {"participants.csv": bad}), "discharge_before_enrollment")
    assert (f["line"], f["column"], f["value"]) == (3, "discharge_date", "2025-01-15")
    assert "before enrollment_date 2025-02-01" in f["message"]


def test_dates_after_as_of_are_warnings(tmp_path):
    events = EVENTS + "001,2026-01-05,relapse,\n"
    prog = load(
        tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": events}, as_of="2025-12-31"
    )
    f = one(prog.validation, "after_as_of")
    assert (f["table"], f["line"], f["column"], f["severity"]) == (
        "events",
        5,
        "event_date",
        "warning",
    )
    assert len(prog.events) == 4
    assert prog.as_of == pd.Timestamp("2025-12-31")


def test_events_before_enrollment_are_history(tmp_path):
    events = EVENTS + "002,2024-06-01,arrest,\n"
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": events})
    f = one(prog.validation, "before_enrollment")
    assert (f["severity"], f["line"], f["column"]) == ("info", 5, "event_date")
    assert prog.events["before_enrollment"].tolist() == [False, False, False, True]
    assert str(prog.events["before_enrollment"].dtype) == "boolean"


def test_events_before_birth(tmp_path):
    events = EVENTS + "001,1980-01-01,arrest,\n"
    f = one(
        raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": events}), "before_birth"
    )
    assert (f["table"], f["line"], f["column"]) == ("events", 5, "event_date")


def test_assessment_far_outside_window(tmp_path):
    a = (
        "participant_id,assessment_date,timepoint\n001,2025-01-12,intake\n001,2025-07-20,followup_6m\n"
        "002,2025-02-03,intake\n002,2026-09-01,followup_6m\n"
    )
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "assessments.csv": a})
    f = one(prog.validation, "assessment_window")
    assert (f["line"], f["column"], f["severity"]) == (5, "assessment_date", "warning")
    assert "followup_6m" in f["message"]


def test_match_end_before_start(tmp_path):
    m = "participant_id,mentor_id,match_date,end_date\n001,M1,2025-02-01,2025-01-01\n"
    f = one(
        raised(tmp_path, {"participants.csv": PARTICIPANTS, "matches.csv": m}), "end_before_start"
    )
    assert (f["line"], f["column"]) == (2, "end_date")


# ---------------------------------------------------------------------------
# file-level problems
# ---------------------------------------------------------------------------
def test_zero_byte_file(tmp_path):
    found = raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": b""})
    f = one(found, "file_empty")
    assert (f["table"], f["file"]) == ("events", "events.csv")
    assert "0 bytes" in f["message"]


def test_header_only_file(tmp_path):
    prog = load(
        tmp_path,
        {"participants.csv": PARTICIPANTS, "events.csv": "participant_id,event_date,event_type\n"},
    )
    f = one(prog.validation, "no_rows")
    assert (f["table"], f["severity"]) == ("events", "info")
    assert len(prog.events) == 0
    assert prog.flow.set_index("table").loc["events"].tolist() == [0, 0, 0]


def test_wrong_delimiter(tmp_path):
    f = one(raised(tmp_path, {"participants.csv": PARTICIPANTS.replace(",", ";")}), "delimiter")
    assert (f["table"], f["file"]) == ("participants", "participants.csv")
    assert "';'-delimited" in f["message"] and 'delimiter = ";"' in f["message"]


def test_ragged_row_is_a_field_count_error(tmp_path):
    bad = PARTICIPANTS.replace(
        "002,2025-02-01,comparison,south", "002,2025-02-01,comparison,south,extra"
    )
    f = one(raised(tmp_path, {"participants.csv": bad}), "field_count")
    assert f["line"] == 3
    prog = load(tmp_path / "drop", {"participants.csv": bad}, on_error="drop")
    assert prog.participants["participant_id"].tolist() == ["001", "003"]
    assert prog.flow.set_index("table").loc["participants"].tolist() == [3, 2, 1]


def test_latin1_bytes(tmp_path):
    text = PARTICIPANTS.replace("north,1990", "Jos\u00e9,1990")
    prog = load(tmp_path, {"participants.csv": text.encode("latin-1")})
    f = one(prog.validation, "encoding")
    assert f["severity"] == "info" and "latin-1" in f["message"]
    assert prog.participants["site"].iloc[0] == "Jos\u00e9"


def test_utf8_bom(tmp_path):
    prog = load(tmp_path, {"participants.csv": b"\xef\xbb\xbf" + PARTICIPANTS.encode("utf-8")})
    assert prog.participants.columns[0] == "participant_id"
    assert prog.participants["participant_id"].tolist() == ["001", "002", "003"]
    assert (prog.validation["rule"] != "column_renamed").all()


def test_trailing_blank_lines_are_ignored(tmp_path):
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS + "\n\n  \n"})
    assert len(prog.participants) == 3
    assert prog.flow.set_index("table").loc["participants"].tolist() == [3, 3, 0]


def test_blank_line_in_the_middle_keeps_line_numbers(tmp_path):
    bad = PARTICIPANTS.replace("002,2025-02-01", "\n002,2025-02-01").replace(
        "2025-03-15", "2025-02-30"
    )
    f = one(raised(tmp_path, {"participants.csv": bad}), "date_impossible")
    assert f["line"] == 5  # header 1, row 2, blank 3, row 4, bad row 5


def test_blank_lines_above_the_header_count_in_line_numbers(tmp_path):
    # found by the hypothesis property test: a blank first line plus a ragged row made
    # the rows after it numbered two lines too early (line 3 reported twice)
    bad = "\n \n" + PARTICIPANTS.replace(
        "002,2025-02-01,comparison,south", "002,2025-02-01,comparison,south,extra"
    ).replace("2025-03-15", "2025-02-30")
    found = raised(tmp_path, {"participants.csv": bad})
    assert one(found, "field_count")["line"] == 5  # blank 1, blank 2, header 3, row 4, ragged 5
    assert one(found, "date_impossible")["line"] == 6
    prog = load(tmp_path / "ok", {"participants.csv": "\r\n" + PARTICIPANTS})
    assert prog.participants["participant_id"].tolist() == ["001", "002", "003"]


def test_whitespace_around_ids_is_stripped(tmp_path):
    events = EVENTS.replace("001,", " 001 ,").replace("002,2025", "002\t,2025")
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": events})
    assert prog.events["participant_id"].tolist() == ["001", "002", "003"]
    assert (prog.validation["rule"] != "orphan").all()


def test_leading_zeros_survive(tmp_path):
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS})
    assert prog.participants["participant_id"].tolist() == ["001", "002", "003"]
    assert str(prog.participants["participant_id"].dtype) == "string"


def test_mixed_date_formats(tmp_path):
    mixed = PARTICIPANTS.replace("2025-02-01,comparison", "02/01/2025,comparison")
    f = one(raised(tmp_path, {"participants.csv": mixed}), "date_parse")
    assert (f["line"], f["column"], f["value"]) == (3, "enrollment_date", "02/01/2025")
    mapping = {"tables": {"participants": {"date_format": "%m/%d/%Y"}}}
    prog = rs.read_program(tmp_path / "src", mapping=mapping)
    assert prog.participants["enrollment_date"].tolist()[:2] == [
        pd.Timestamp("2025-01-10"),
        pd.Timestamp("2025-02-01"),
    ]


def test_ambiguous_files(tmp_path):
    found = raised(
        tmp_path,
        {"participants.csv": PARTICIPANTS, "participants.tsv": PARTICIPANTS.replace(",", "\t")},
    )
    f = one(found, "file_ambiguous")
    assert "participants.csv" in f["message"] and "participants.tsv" in f["message"]


def test_no_participants_table(tmp_path):
    f = one(raised(tmp_path, {"events.csv": EVENTS}), "table_missing")
    assert f["table"] == "participants"


def test_unrelated_files_are_reported_and_ignored(tmp_path):
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "notes.csv": "a,b\n1,2\n"})
    assert one(prog.validation, "file_ignored")["file"] == "notes.csv"


# ---------------------------------------------------------------------------
# the error object and parameters
# ---------------------------------------------------------------------------
def test_error_carries_every_problem(tmp_path):
    bad = PARTICIPANTS.replace("2025-01-10", "bad1").replace("2025-03-15", "bad2")
    events = EVENTS + "998,2025-01-01,arrest,\n999,2025-01-01,arrest,\n"
    with pytest.raises(DataValidationError, match=r"4 error\(s\) found") as info:
        load(tmp_path, {"participants.csv": bad, "events.csv": events})
    problems = info.value.problems
    assert [(p.rule, p.line) for p in problems if p.severity == "error"] == [
        ("date_parse", 2),
        ("date_parse", 4),
        ("orphan", 5),
        ("orphan", 6),
    ]
    assert "participants.csv line 2, column enrollment_date: 'bad1'" in str(info.value)


def test_invalid_parameters(tmp_path):
    write(tmp_path / "src", {"participants.csv": PARTICIPANTS})
    with pytest.raises(
        InvalidParameterError, match="on_error must be one of 'raise', 'drop'; got 'skip'"
    ):
        rs.read_program(tmp_path / "src", on_error="skip")
    with pytest.raises(
        InvalidParameterError, match="as_of must be a date such as '2026-09-30'.*'not a date'"
    ):
        rs.read_program(tmp_path / "src", as_of="not a date")
    with pytest.raises(InvalidParameterError, match="source: '.*nowhere' does not exist"):
        rs.read_program(tmp_path / "nowhere")
    with pytest.raises(InvalidParameterError, match="is a file; give the folder"):
        rs.read_program(tmp_path / "src" / "participants.csv")
    with pytest.raises(
        InvalidParameterError, match="mapping must be a path to program.toml or a dict; got int"
    ):
        rs.read_program(tmp_path / "src", mapping=3)


def test_as_of_accepts_dates_and_timestamps(tmp_path):
    write(tmp_path / "src", {"participants.csv": PARTICIPANTS})
    a = rs.read_program(tmp_path / "src", as_of=dt.date(2025, 12, 31))
    b = rs.read_program(tmp_path / "src", as_of=pd.Timestamp("2025-12-31 13:00"))
    assert a.as_of == b.as_of == pd.Timestamp("2025-12-31")


def test_every_rule_has_severity_scope_and_fix():
    for r in RULES.values():
        assert r.severity in ("error", "warning", "info")
        assert r.scope in ("file", "table", "row")
        assert r.fix and r.title


# ---------------------------------------------------------------------------
# in-memory frames go through the same pipeline
# ---------------------------------------------------------------------------
def test_from_tables_applies_the_same_rules():
    p = pd.DataFrame(
        {
            "participant_id": ["1", "2"],
            "enrollment_date": ["2025-01-01", "2025-02-30"],
            "group": ["a", "b"],
        }
    )
    with pytest.raises(DataValidationError, match="1 error") as info:
        rs.ProgramData.from_tables(participants=p)
    f = info.value.problems[0]
    assert (f.rule, f.line, f.column) == ("date_impossible", 2, "enrollment_date")
    prog = rs.ProgramData.from_tables(participants=p, on_error="drop")
    assert prog.participants["participant_id"].tolist() == ["1"]


def test_from_tables_numeric_ids_reported():
    p = pd.DataFrame(
        {
            "participant_id": [7, 8],
            "enrollment_date": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            "group": ["a", "b"],
            "score": [1.5, 2.5],
        }
    )
    prog = rs.ProgramData.from_tables(participants=p)
    assert prog.participants["participant_id"].tolist() == ["7", "8"]
    assert one(prog.validation, "id_numeric")["column"] == "participant_id"
    assert prog.participants["score"].tolist() == [1.5, 2.5]


def test_from_tables_unknown_table_name():
    with pytest.raises(InvalidParameterError, match="unknown table name\\(s\\) 'people'"):
        rs.ProgramData.from_tables({"people": pd.DataFrame()})


def test_duplicate_column_names(tmp_path):
    text = "participant_id,enrollment_date,group,group\n001,2025-01-10,a,b\n"
    found = raised(tmp_path, {"participants.csv": text})
    f = one(found, "duplicate_column")
    assert "'group' appear more than once" in f["message"]
    mapping = {"tables": {"participants": {"rename": {"arm": "group"}}}}
    write(
        tmp_path / "m",
        {"participants.csv": "participant_id,enrollment_date,group,arm\n001,2025-01-10,a,b\n"},
    )
    with pytest.raises(DataValidationError, match="more than one source column maps to 'group'"):
        rs.read_program(tmp_path / "m", mapping=mapping)


def test_corrupt_binary_files_are_unreadable(tmp_path):
    found = raised(
        tmp_path,
        {
            "participants.parquet": b"PAR1 this is not parquet",
            "events.xlsx": b"PK\x03\x04 not a workbook",
        },
    )
    rows = only(found, "file_unreadable")
    assert set(rows["table"]) == {"participants", "events"}
    assert rows["line"].isna().all()
    assert any("cannot read as Parquet" in m for m in rows["message"])
    assert any("cannot open as an Excel workbook" in m for m in rows["message"])


def test_every_rule_is_exercised_by_a_test():
    here = Path(__file__).parent
    text = "".join(
        (here / name).read_text()
        for name in (
            "test_validation.py",
            "test_io_read.py",
            "test_cli.py",
            "test_io_safety.py",
            "test_io_decimal.py",
            "test_io_header.py",
            "test_engine_sources.py",
        )
    )
    untested = [rule for rule in RULES if f'"{rule}"' not in text and f"[{rule}]" not in text]
    assert untested == []


@pytest.mark.parametrize("layout", ["sorted", "shuffled", "variable_width", "with_orphans"])
def test_lookup_fast_paths_agree_with_the_general_path(tmp_path, layout):
    """Sorted fixed-width IDs (binary search), unsorted (integer hash) and other IDs (Arrow) agree."""
    rng = np.random.default_rng(7)
    n, m = 60, 400
    ids = np.array([f"P{i:04d}" for i in range(n)])
    if layout == "variable_width":
        ids = np.array([f"P{i}" for i in range(n)])
    enr = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    owner = np.sort(rng.integers(0, n, m))
    day = pd.Timestamp("2024-12-01") + pd.to_timedelta(rng.integers(0, 400, m), unit="D")
    ev = pd.DataFrame(
        {
            "participant_id": ids[owner],
            "event_date": day.strftime("%Y-%m-%d"),
            "event_type": rng.choice(["arrest", "relapse"], m),
        }
    )
    ev = ev.sort_values(["participant_id", "event_date"], kind="stable").reset_index(drop=True)
    ev = pd.concat([ev, ev.iloc[[5, 9]]]).sort_values(
        ["participant_id", "event_date"], kind="stable"
    )
    if layout == "shuffled":
        ev = ev.sample(frac=1, random_state=1)
    if layout == "with_orphans":
        ev.iloc[[3, 30], 0] = ["Z0001", "A0000"]
    ev = ev.reset_index(drop=True)
    part = pd.DataFrame(
        {"participant_id": ids, "enrollment_date": enr.strftime("%Y-%m-%d"), "group": "a"}
    )
    part = part.sample(frac=1, random_state=2)  # participants in any order
    folder = tmp_path / layout
    folder.mkdir()
    part.to_csv(folder / "participants.csv", index=False)
    ev.to_csv(folder / "events.csv", index=False)
    prog = rs.read_program(folder, on_error="drop")
    # expected, computed directly with pandas
    e = ev.merge(
        part.assign(enrollment_date=pd.to_datetime(part["enrollment_date"])),
        on="participant_id",
        how="left",
    )
    known = e["enrollment_date"].notna().to_numpy()
    assert prog.flow.set_index("table").loc["events", "rows_kept"] == known.sum()
    kept = e[known].reset_index(drop=True)
    expected_before = (pd.to_datetime(kept["event_date"]) < kept["enrollment_date"]).tolist()
    assert prog.events["before_enrollment"].tolist() == expected_before
    orphans = (
        only(prog.validation, "orphan") if layout == "with_orphans" else prog.validation.iloc[0:0]
    )
    assert sorted(orphans["line"].tolist()) == sorted((np.flatnonzero(~known) + 2).tolist())
    rep = one(prog.validation, "repeated_row")
    n_rep = (
        int(ev[known].duplicated().sum())
        if layout != "with_orphans"
        else int(ev.duplicated().sum())
    )
    assert f"{n_rep} row(s) repeat" in rep["message"]


def test_quoted_newlines_in_values(tmp_path):
    text = 'participant_id,enrollment_date,group,race\n001,2025-01-10,a,"multi\nline"\n002,2025-01-11,b,x\n'
    prog = load(tmp_path, {"participants.csv": text})
    assert prog.participants["race"].tolist() == ["multi\nline", "x"]
    assert prog.flow.set_index("table").loc["participants"].tolist() == [2, 2, 0]


def test_stray_carriage_return_in_header_is_a_data_error(tmp_path):
    # found by the property test: a lone \r ends a line for pyarrow, so the header is split
    bad = "\r" + EVENTS.split(",", 1)[1]
    found = raised(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": bad})
    assert "required_column" in set(found["rule"]) or "field_count" in set(found["rule"])
    assert (found["table"] == "events").any()


def test_unterminated_quote_after_a_ragged_row_keeps_line_numbers(tmp_path):
    # found by the property test: a quote left open swallows the rest of the file as one
    # malformed record; the rows and the malformed records keep their own line numbers
    events = (
        "participant_id,event_date,event_type,result\n"
        ",,2025-02-01,drug_screen,negative\n"
        "002,2025-03-01,arrest,\n"
        '",2025-04-01,relapse,\n'
        "004,2025-05-01,drug_screen,positive\n"
    )
    prog = load(tmp_path, {"participants.csv": PARTICIPANTS, "events.csv": events}, on_error="drop")
    ev = prog.validation[prog.validation["table"] == "events"]
    assert sorted(ev[ev["rule"] == "field_count"]["line"].tolist()) == [2, 4]
    assert prog.flow.set_index("table").loc["events"].tolist() == [3, 1, 2]
    assert prog.events["participant_id"].tolist() == ["002"]
