"""Loaders: every file format, the TOML mapping, provenance, and the bundled sample export."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError
from recoverystats.io.mapping import DEFAULT_NA_VALUES, load_mapping
from recoverystats.schema.spec import TABLE_NAMES, TABLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

PARTICIPANTS = pd.DataFrame(
    {
        "participant_id": ["007", "010", "123"],
        "enrollment_date": pd.to_datetime(["2025-01-10", "2025-02-01", "2025-03-15"]),
        "group": ["peer_mentoring", "comparison", "peer_mentoring"],
        "gender": ["male", "female", "male"],
    }
)
EVENTS_CSV = "participant_id,event_date,event_type\n007,2025-02-01,arrest\n010,2025-03-01,relapse\n"


def findings(prog, rule):
    v = prog.validation
    return v[v["rule"] == rule]


# ---------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------
def test_parquet_keeps_types_and_text_ids(tmp_path):
    PARTICIPANTS.to_parquet(tmp_path / "participants.parquet")
    ev = pd.DataFrame(
        {"participant_id": ["007"], "event_date": [dt.date(2025, 2, 1)], "event_type": ["Arrest"]}
    )
    ev.to_parquet(tmp_path / "events.parquet")
    prog = rs.read_program(tmp_path)
    assert prog.participants["participant_id"].tolist() == ["007", "010", "123"]
    assert prog.participants["enrollment_date"].tolist() == list(PARTICIPANTS["enrollment_date"])
    assert prog.events["event_type"].tolist() == ["arrest"]
    assert prog.events["event_date"].dtype == "datetime64[ns]"
    assert len(findings(prog, "id_numeric")) == 0
    src = prog.sources.set_index("table")
    assert src.loc["events", "path"].endswith("events.parquet")


def test_parquet_numeric_ids_are_text_and_reported(tmp_path):
    df = PARTICIPANTS.assign(participant_id=[7, 10, 123])
    df.to_parquet(tmp_path / "participants.parquet")
    prog = rs.read_program(tmp_path)
    assert prog.participants["participant_id"].tolist() == ["7", "10", "123"]
    f = findings(prog, "id_numeric").iloc[0]
    assert (f["column"], f["severity"]) == ("participant_id", "info")
    assert "leading zeros" in f["message"]


def _workbook(
    path: Path, rows: list[list], title: str | None = None, sheet: str = "Sheet1"
) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    if title:
        ws.append([title])
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_excel_title_row_is_detected(tmp_path):
    rows = [
        ["participant_id", "enrollment_date", "group"],
        ["007", dt.datetime(2025, 1, 10), "a"],
        [10, dt.datetime(2025, 2, 1), "b"],
        ["012", "2025-02-30", "b"],
    ]
    _workbook(tmp_path / "participants.xlsx", rows, title="Client roster - exported 10/01/2026")
    with pytest.raises(DataValidationError, match="1 error") as info:
        rs.read_program(tmp_path)
    v = info.value.validation
    hr = v[v["rule"] == "header_row"].iloc[0]
    assert "1 title row(s)" in hr["message"] and "row 2" in hr["message"]
    bad = v[v["rule"] == "date_impossible"].iloc[0]
    assert (bad["line"], bad["column"]) == (
        5,
        "enrollment_date",
    )  # Excel row 5 (title, header, 3 rows)
    assert "participants.xlsx row 5" in bad["message"]
    prog = rs.read_program(tmp_path, on_error="drop")
    assert prog.participants["participant_id"].tolist() == ["007", "10"]
    assert prog.participants["enrollment_date"].tolist() == [
        pd.Timestamp("2025-01-10"),
        pd.Timestamp("2025-02-01"),
    ]


def test_excel_sheet_and_header_row_from_mapping(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    wb.active.append(["nothing here"])
    ws = wb.create_sheet("Roster")
    ws.append(["Roster"])
    ws.append(
        ["as of 10/1/2026", "x"]
    )  # a wide second title row: only header_row can say which row is the header
    ws.append(["ID", "Start", "Arm"])
    ws.append(["0042", dt.datetime(2025, 5, 1), "a"])
    wb.save(tmp_path / "roster.xlsx")
    mapping = {
        "tables": {
            "participants": {
                "file": "roster.xlsx",
                "sheet": "Roster",
                "header_row": 3,
                "rename": {"ID": "participant_id", "Start": "enrollment_date", "Arm": "group"},
            }
        }
    }
    prog = rs.read_program(tmp_path, mapping=mapping)
    assert prog.participants["participant_id"].tolist() == ["0042"]
    mapping["tables"]["participants"]["sheet"] = "Missing"
    with pytest.raises(
        DataValidationError, match="sheet 'Missing' not found; sheets are \\['Notes', 'Roster'\\]"
    ):
        rs.read_program(tmp_path, mapping=mapping)


def test_spss_value_labels_are_applied(tmp_path):
    import pyreadstat

    df = pd.DataFrame(
        {
            "participant_id": ["007", "010"],
            "enrollment_date": pd.to_datetime(["2025-01-10", "2025-02-01"]),
            "group": ["a", "b"],
            "gender": [1.0, 2.0],
        }
    )
    pyreadstat.write_sav(
        df,
        str(tmp_path / "participants.sav"),
        variable_value_labels={"gender": {1: "Male", 2: "Female"}},
    )
    prog = rs.read_program(tmp_path)
    assert prog.participants["gender"].tolist() == ["male", "female"]
    assert prog.participants["participant_id"].tolist() == ["007", "010"]
    assert prog.participants["enrollment_date"].tolist() == list(df["enrollment_date"])
    # without labels the raw codes come through and are mapped by the TOML value map
    mapping = {
        "tables": {
            "participants": {
                "value_labels": False,
                "values": {"gender": {"1": "male", "2": "female"}},
            }
        }
    }
    prog = rs.read_program(tmp_path, mapping=mapping)
    assert prog.participants["gender"].tolist() == ["male", "female"]


def test_stata_dta(tmp_path):
    import pyreadstat

    df = pd.DataFrame(
        {
            "participant_id": ["007", "010"],
            "enrollment_date": pd.to_datetime(["2025-01-10", "2025-02-01"]),
            "group": ["a", "b"],
            "risk_level": [1, 3],
        }
    )
    pyreadstat.write_dta(
        df,
        str(tmp_path / "participants.dta"),
        variable_value_labels={"risk_level": {1: "Low", 2: "Moderate", 3: "High"}},
    )
    prog = rs.read_program(tmp_path)
    assert prog.participants["risk_level"].tolist() == ["low", "high"]
    assert prog.participants["enrollment_date"].dtype == "datetime64[ns]"
    assert prog.sources["path"].iloc[0].endswith("participants.dta")


def test_sqlite_query(tmp_path):
    db = tmp_path / "program.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE clients (client TEXT, intake TEXT, arm TEXT)")
    con.executemany(
        "INSERT INTO clients VALUES (?, ?, ?)",
        [("007", "2025-01-10", "a"), ("010", "2025-02-01", "b")],
    )
    con.execute("CREATE TABLE ev (client TEXT, d TEXT, t TEXT)")
    con.execute("INSERT INTO ev VALUES ('007', '2025-03-01', 'arrest')")
    con.commit()
    con.close()
    mapping = {
        "tables": {
            "participants": {
                "database": "program.sqlite",
                "query": 'SELECT client AS participant_id, intake AS enrollment_date, arm AS "group" FROM clients',
            },
            "events": {
                "database": "program.sqlite",
                "table": "ev",
                "rename": {"client": "participant_id", "d": "event_date", "t": "event_type"},
            },
        }
    }
    prog = rs.read_program(tmp_path, mapping=mapping)
    assert prog.participants["participant_id"].tolist() == ["007", "010"]
    assert prog.events["event_type"].tolist() == ["arrest"]
    assert set(prog.sources["table"]) >= {"participants", "events"}
    mapping["tables"]["events"] = {"database": "program.sqlite", "query": "SELECT * FROM nope"}
    with pytest.raises(DataValidationError, match="the query failed: no such table: nope") as info:
        rs.read_program(tmp_path, mapping=mapping)
    f = info.value.validation
    assert f[f["rule"] == "sql_error"]["table"].tolist() == ["events"]


def test_duckdb_query(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect(str(tmp_path / "program.duckdb"))
    con.execute("CREATE TABLE p (participant_id VARCHAR, enrollment_date DATE, grp VARCHAR)")
    con.execute(
        "INSERT INTO p VALUES ('007', DATE '2025-01-10', 'a'), ('010', DATE '2025-02-01', 'b')"
    )
    con.close()
    mapping = {
        "tables": {
            "participants": {
                "database": "program.duckdb",
                "query": 'SELECT participant_id, enrollment_date, grp AS "group" FROM p',
            }
        }
    }
    prog = rs.read_program(tmp_path, mapping=mapping)
    assert prog.participants["participant_id"].tolist() == ["007", "010"]
    assert prog.participants["enrollment_date"].tolist() == [
        pd.Timestamp("2025-01-10"),
        pd.Timestamp("2025-02-01"),
    ]


def test_tsv_file(tmp_path):
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tenrollment_date\tgroup\n007\t2025-01-10\ta\n"
    )
    prog = rs.read_program(tmp_path)
    assert prog.participants["participant_id"].tolist() == ["007"]


def test_unsupported_file_named_in_mapping(tmp_path):
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(DataValidationError, match="unsupported file type '.json'"):
        rs.read_program(tmp_path, mapping={"tables": {"participants": {"file": "p.json"}}})


# ---------------------------------------------------------------------------
# the TOML mapping
# ---------------------------------------------------------------------------
TOML = """
[program]
name = "Test site"
as_of = "2025-12-31"

[defaults]
date_format = "%m/%d/%Y"

[tables.participants]
file = "exports/clients.csv"
delimiter = ";"
header_row = 3
na_values = ["", "missing"]

[tables.participants.rename]
ClientID = "participant_id"
"Intake Date" = "enrollment_date"
Arm = "group"
Sex = "gender"

[tables.participants.values.gender]
M = "male"
F = "female"
1 = "male"

[tables.participants.types]
score = "float"

[tables.events]
file = "exports/events.csv"
encoding = "latin-1"
date_format = ["%d.%m.%Y"]

[tables.events.rename]
ClientID = "participant_id"
"Datum" = "event_date"
Typ = "event_type"
"""

CLIENTS = """Client export
generated 10/01/2026
ClientID;Intake Date;Arm;Sex;score;Note
007;01/10/2025;a;M;1.5;missing
010;02/01/2025;b;F;missing;ok
011;03/01/2025;b;1;2;ok
"""
EVENTS_LATIN1 = "ClientID,Datum,Typ,Ort\n007,01.02.2025,arrest,K\u00f6ln\n".encode("latin-1")


def _mapped(tmp_path: Path) -> Path:
    (tmp_path / "exports").mkdir()
    (tmp_path / "program.toml").write_text(TOML)
    (tmp_path / "exports" / "clients.csv").write_text(CLIENTS)
    (tmp_path / "exports" / "events.csv").write_bytes(EVENTS_LATIN1)
    return tmp_path


def test_toml_mapping_renames_codes_formats_na_header_delimiter_encoding(tmp_path):
    root = _mapped(tmp_path)
    for source in (root, root / "program.toml"):
        prog = rs.read_program(source)
        p = prog.participants
        assert p["participant_id"].tolist() == ["007", "010", "011"]
        assert p["enrollment_date"].tolist() == list(
            pd.to_datetime(["2025-01-10", "2025-02-01", "2025-03-01"])
        )
        assert p["gender"].tolist() == ["male", "female", "male"]
        assert p["score"].tolist()[0] == 1.5 and np.isnan(p["score"].iloc[1])
        assert pd.isna(p["Note"].iloc[0]) and p["Note"].iloc[1] == "ok"
        assert list(p.columns[-2:]) == ["score", "Note"]
        assert prog.events["Ort"].tolist() == ["K\u00f6ln"]
        assert prog.events["event_date"].tolist() == [pd.Timestamp("2025-02-01")]
        assert prog.as_of == pd.Timestamp("2025-12-31")  # from [program] as_of
        assert len(findings(prog, "encoding")) == 0  # encoding given explicitly: no fallback note
        assert "mapping" in set(prog.sources["table"])


def test_mapping_line_numbers_count_title_rows(tmp_path):
    root = _mapped(tmp_path)
    text = CLIENTS.replace("02/01/2025", "02/30/2025")
    (root / "exports" / "clients.csv").write_text(text)
    with pytest.raises(DataValidationError) as info:
        rs.read_program(root)
    v = info.value.validation
    f = v[v["rule"] == "date_impossible"].iloc[0]
    assert (f["file"], f["line"], f["column"]) == ("exports/clients.csv", 5, "enrollment_date")


def test_as_of_argument_overrides_mapping(tmp_path):
    prog = rs.read_program(_mapped(tmp_path), as_of="2025-06-30")
    assert prog.as_of == pd.Timestamp("2025-06-30")


def test_mapping_file_that_does_not_exist(tmp_path):
    root = _mapped(tmp_path)
    (root / "exports" / "events.csv").unlink()
    with pytest.raises(
        DataValidationError, match="file named in \\[tables.events\\] does not exist"
    ) as info:
        rs.read_program(root)
    v = info.value.validation
    f = v[v["rule"] == "file_missing"].iloc[0]
    assert (f["table"], f["file"]) == ("events", "exports/events.csv")


def test_mapping_names_unknown_column(tmp_path):
    root = _mapped(tmp_path)
    (root / "program.toml").write_text(
        TOML.replace('ClientID = "participant_id"\n"Intake', 'ClientId = "participant_id"\n"Intake')
    )
    with pytest.raises(
        DataValidationError, match="names column 'ClientId', which the file does not have"
    ) as info:
        rs.read_program(root)
    v = info.value.validation
    cols = v[v["rule"] == "mapping_column"]["column"].tolist()
    assert "ClientId" in cols
    assert "participant_id" in v[v["rule"] == "required_column"]["column"].tolist()


def test_mapping_value_map_for_absent_column(tmp_path):
    root = _mapped(tmp_path)
    (root / "program.toml").write_text(TOML + '\n[tables.events.values.result]\nPOS = "positive"\n')
    with pytest.raises(
        DataValidationError, match="maps codes of column 'result', which the table does not have"
    ):
        rs.read_program(root)


def test_mapping_unknown_keys_and_tables_are_all_reported(tmp_path):
    bad = {
        "tables": {"participant": {"file": "x.csv"}, "events": {"fil": "e.csv", "header_row": 0}},
        "extra": {},
    }
    with pytest.raises(DataValidationError, match="4 problem") as info:
        load_mapping(bad)
    text = str(info.value)
    assert {p.rule for p in info.value.problems} == {"mapping_invalid"}
    assert "unknown table 'participant'" in text
    assert "[tables.events] fil: unknown key" in text
    assert "header_row: must be a whole number >= 1" in text
    assert "key [extra]: unknown section" in text


def test_mapping_invalid_toml_and_missing_file(tmp_path):
    (tmp_path / "program.toml").write_text("[tables\n")
    with pytest.raises(DataValidationError, match="program.toml is not valid TOML"):
        rs.read_program(tmp_path)
    with pytest.raises(DataValidationError, match="mapping file '.*nope.toml' does not exist"):
        rs.read_program(tmp_path, mapping=tmp_path / "nope.toml")


def test_mapping_database_needs_query(tmp_path):
    with pytest.raises(DataValidationError, match="database needs a query"):
        load_mapping({"tables": {"contacts": {"database": "x.sqlite"}}})


def test_mapping_defaults():
    m = load_mapping({"tables": {"events": {}}})
    assert m.table("events").na_markers == DEFAULT_NA_VALUES
    assert m.table("events").date_formats[0] == "%Y-%m-%d"
    assert m.table("contacts").file is None


# ---------------------------------------------------------------------------
# provenance, display, dtypes
# ---------------------------------------------------------------------------
def test_sources_record_sha256(tmp_path):
    (tmp_path / "participants.csv").write_text(
        "participant_id,enrollment_date,group\n007,2025-01-10,a\n"
    )
    (tmp_path / "events.csv").write_text(EVENTS_CSV.replace("010", "007"))
    prog = rs.read_program(tmp_path)
    src = prog.sources.set_index("table")
    for name in ("participants", "events"):
        data = (tmp_path / f"{name}.csv").read_bytes()
        assert src.loc[name, "sha256"] == hashlib.sha256(data).hexdigest()
        assert src.loc[name, "bytes"] == len(data)


def test_every_table_present_with_canonical_dtypes(tmp_path):
    (tmp_path / "participants.csv").write_text(
        "participant_id,enrollment_date,group\n007,2025-01-10,a\n"
    )
    prog = rs.read_program(tmp_path)
    for name in TABLE_NAMES:
        df = prog.table(name)
        for col in TABLES[name].columns:
            assert col.name in df.columns
            if col.kind == "date":
                assert df[col.name].dtype == "datetime64[ns]", (name, col.name)
            else:
                assert str(df[col.name].dtype) == col.dtype, (name, col.name, df[col.name].dtype)


def test_html_summary(tmp_path):
    (tmp_path / "participants.csv").write_text(
        "participant_id,enrollment_date,group,site\n007,2025-01-10,a,x\n"
    )
    html = rs.read_program(tmp_path)._repr_html_()
    assert (
        "Rows read" in html and "Participants by group" in html and "Participants by site" in html
    )


# ---------------------------------------------------------------------------
# the bundled sample export
# ---------------------------------------------------------------------------
def test_sample_export_maps_back_to_the_simulator_tables():
    from recoverystats.datasets import simulate_program

    prog = rs.read_program(SAMPLE)
    sim = simulate_program()
    assert prog.as_of == sim.as_of
    assert (prog.validation["severity"] == "error").sum() == 0
    for name, expected in sim.tables.items():
        got = prog.table(name)[list(expected.columns)]
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)
    assert set(prog.sources["path"].map(lambda p: Path(p).name)) == {
        "program.toml",
        "clients.csv",
        "mentors.csv",
        "matches.csv",
        "contact_log.csv",
        "events.csv",
        "gpra_interviews.xlsx",
    }


def test_sample_is_what_the_generator_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "tools" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_sample(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        assert path.read_bytes() == (SAMPLE / path.name).read_bytes(), (
            f"data/sample/{path.name} is stale: run `python tools/make_sample.py`"
        )


def test_data_model_doc_is_current():
    from recoverystats.schema.docs import render

    text = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert render(text) == text, (
        "docs/data-model.md is stale: run `python -m recoverystats.schema.docs docs/data-model.md`"
    )
    assert "### `events`" in text and "`before_enrollment`" in text and "`date_impossible`" in text


def test_duckdb_missing_gives_install_hint(tmp_path, monkeypatch):
    (tmp_path / "program.duckdb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb -> ImportError
    mapping = {"tables": {"participants": {"database": "program.duckdb", "query": "SELECT 1"}}}
    with pytest.raises(
        DataValidationError, match="needs the duckdb package; install it with `pip install duckdb`"
    ) as info:
        rs.read_program(tmp_path, mapping=mapping)
    assert info.value.problems[0].rule == "sql_error"
