"""A wrong header_row (or a title line above the header) is reported as such: the line
read as the header looks like data (or a title) and another line looks like the header."""

from __future__ import annotations

import pytest

import recoverystats as rs
from recoverystats.cli import EXIT_DATA, main
from recoverystats.errors import DataValidationError

HEADER = "participant_id,enrollment_date,group,site,dual_diagnosis,veteran\n"
ROWS = "007,2025-01-10,a,north,No,No\n008,2025-02-01,b,south,Yes,No\n"


def _write(folder, text: str, toml: str | None = None):
    folder.mkdir(parents=True)
    (folder / "participants.csv").write_text(text)
    if toml is not None:
        (folder / "program.toml").write_text(toml)
    return folder


def _finding(folder):
    with pytest.raises(DataValidationError) as info:
        rs.read_program(folder)
    v = info.value.validation
    assert v["rule"].tolist() == ["header_looks_like_data"], v["message"].tolist()
    return v["message"].iloc[0]


def test_header_row_on_a_data_line_says_it_looks_like_data(tmp_path):
    # before: "column(s) 'No' appear more than once in the header"
    toml = '[tables.participants]\nfile = "participants.csv"\nheader_row = 2\n'
    msg = _finding(_write(tmp_path / "d", HEADER + ROWS, toml))
    assert msg.startswith(
        "participants.csv line 2 (header_row = 2) looks like data, not column names "
        "(4 of 6 fields are numbers, dates or yes/no values); line 1 looks like the header "
        "(5 known column names: participant_id, enrollment_date, group, site, ...)"
    )
    assert "set header_row in program.toml [tables.participants]" in msg
    assert "more than once" not in msg
    assert "007" not in msg and "2025-01-10" not in msg  # a data row's values are not quoted


def test_title_line_above_the_header(tmp_path):
    msg = _finding(_write(tmp_path / "t", "Northside client export, Q3 2025\n" + HEADER + ROWS))
    assert msg.startswith(
        "participants.csv line 1 (read as the header) does not look like the header "
        "(0 of 2 fields are known column names); line 2 looks like the header"
    )


def test_the_right_header_row_loads(tmp_path):
    toml = '[tables.participants]\nfile = "participants.csv"\nheader_row = 2\n'
    prog = rs.read_program(_write(tmp_path / "ok", "Northside client export\n" + HEADER + ROWS, toml))
    assert prog.participants["participant_id"].tolist() == ["007", "008"]


def test_renamed_site_columns_count_as_header_names(tmp_path):
    head = "ClientID,Intake Date,Arm,Site\n"
    rows = "7,01/10/2025,a,north\n8,02/01/2025,b,south\n"
    toml = (
        '[defaults]\ndate_format = "%m/%d/%Y"\n[tables.participants]\nfile = "participants.csv"\n'
        'header_row = 3\n[tables.participants.rename]\nClientID = "participant_id"\n'
        '"Intake Date" = "enrollment_date"\nArm = "group"\n'
    )
    msg = _finding(_write(tmp_path / "r", head + rows, toml))
    assert "line 3 (header_row = 3) looks like data" in msg
    assert "line 1 looks like the header (4 known column names: ClientID, Intake Date, Arm, Site)" in msg


def test_excel_header_row_on_a_data_row(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    import datetime as dt

    folder = tmp_path / "x"
    folder.mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Client export"])
    ws.append(["participant_id", "enrollment_date", "group", "site"])
    ws.append(["001", dt.datetime(2025, 1, 2), "a", "north"])
    ws.append(["002", dt.datetime(2025, 1, 3), "b", "north"])
    wb.save(folder / "participants.xlsx")
    (folder / "program.toml").write_text(
        '[tables.participants]\nfile = "participants.xlsx"\nheader_row = 3\n'
    )
    msg = _finding(folder)
    assert msg.startswith(
        "participants.xlsx row 3 (header_row = 3) looks like data, not column names "
        "(2 of 4 fields are numbers, dates or yes/no values); row 2 looks like the header"
    )


def test_cli_prints_the_header_message(tmp_path, capsys):
    toml = '[tables.participants]\nfile = "participants.csv"\nheader_row = 2\n'
    folder = _write(tmp_path / "c", HEADER + ROWS, toml)
    assert main(["validate", str(folder)]) == EXIT_DATA
    out = capsys.readouterr().out
    assert "line 2 (header_row = 2) looks like data" in out and "[header_looks_like_data]" in out
    assert "appear more than once" not in out
