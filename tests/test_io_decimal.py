"""European exports: ``decimal``/``thousands`` per file and in [defaults] (program.toml);
a column of decimal commas read without the option is ONE finding naming the setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.cli import EXIT_DATA, main
from recoverystats.datasets import simulate_program
from recoverystats.errors import DataValidationError

#: float columns of the simulated tables, as written with a decimal comma
FLOATS = {
    "participants": ["age", "risk_score"],
    "mentors": ["years_in_recovery"],
    "contacts": ["minutes"],
    "assessments": ["satisfaction", "quality_of_life"],
}


@pytest.fixture(scope="module")
def sim():
    return simulate_program(300, seed=3)


def _european(folder, sim, toml: str, *, european=tuple(FLOATS) + ("matches", "events")):
    """The simulated tables as CSV: ';'-separated with decimal commas for ``european``."""
    folder.mkdir()
    for name, df in sim.tables.items():
        df = df.copy()
        for c in FLOATS.get(name, []):  # real fractions, not only '32,0'
            df[c] = _shift(df[c])
        if name in european:
            df.to_csv(folder / f"{name}.csv", sep=";", decimal=",", index=False)
        else:
            df.to_csv(folder / f"{name}.csv", index=False)
    (folder / "program.toml").write_text(toml, encoding="utf-8")
    return folder


def _shift(x: pd.Series) -> pd.Series:
    """A fraction added inside each column's plausible range (1-5 scales stay <= 5)."""
    return x + np.where(x > 4, -0.25, 0.25)


def _errors(folder):
    with pytest.raises(DataValidationError) as info:
        rs.read_program(folder)
    return info.value.validation


def test_decimal_comma_without_option_is_one_finding_per_column(tmp_path, sim):
    folder = _european(tmp_path / "eu", sim, '[defaults]\ndelimiter = ";"\n')
    v = _errors(folder)
    hits = v[v["rule"] == "number_decimal_comma"]
    expected = {(t, c) for t, cols in FLOATS.items() for c in cols}
    # once per column, not once per cell (thousands of cells)
    assert sorted(zip(hits["table"], hits["column"], strict=True)) == sorted(expected)
    assert (v["rule"] == "type_number").sum() == 0
    assert len(v) < 20
    minutes = hits[hits["column"] == "minutes"]["message"].iloc[0]
    n_minutes = int(sim.tables["contacts"]["minutes"].notna().sum())
    assert minutes.startswith("contacts.csv, column minutes: ")
    assert f"{n_minutes:,} value(s) are numbers written with a decimal comma" in minutes
    assert "on line 2" in minutes
    assert 'set decimal = "," for this file in program.toml ([tables.contacts]' in minutes
    assert (hits["severity"] == "error").all()


def test_decimal_comma_column_stops_the_load_even_with_drop(tmp_path, sim):
    # the setting is wrong, not the rows: dropping every row would hide that
    folder = _european(tmp_path / "eu", sim, '[defaults]\ndelimiter = ";"\n')
    with pytest.raises(DataValidationError, match="number_decimal_comma"):
        rs.read_program(folder, on_error="drop")


def test_defaults_decimal_reads_every_file(tmp_path, sim):
    folder = _european(tmp_path / "eu", sim, '[defaults]\ndelimiter = ";"\ndecimal = ","\n')
    prog = rs.read_program(folder)
    assert not (prog.validation["severity"] == "error").any()
    for table, cols in FLOATS.items():
        for c in cols:
            got = getattr(prog, table)[c].to_numpy(dtype=float)
            want = _shift(sim.tables[table][c]).to_numpy(dtype=float)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True)


def test_per_file_decimal(tmp_path, sim):
    toml = '[tables.contacts]\nfile = "contacts.csv"\ndelimiter = ";"\ndecimal = ","\n'
    folder = _european(tmp_path / "eu", sim, toml, european=("contacts",))
    prog = rs.read_program(folder)
    want = _shift(sim.tables["contacts"]["minutes"]).to_numpy(dtype=float)
    np.testing.assert_allclose(prog.contacts["minutes"].to_numpy(float), want, equal_nan=True)
    np.testing.assert_allclose(
        prog.participants["age"].to_numpy(float),
        _shift(sim.tables["participants"]["age"]).to_numpy(float),
        equal_nan=True,
    )


P = "participant_id;enrollment_date;group;site;age;risk_score\n"


def _one_file(tmp_path, rows: list[tuple[str, str]], toml: str):
    folder = tmp_path / "p"
    folder.mkdir(parents=True)
    body = "".join(
        f"{i:03d};2025-01-{i + 1:02d};a;north;{age};{risk}\n" for i, (age, risk) in enumerate(rows)
    )
    (folder / "participants.csv").write_text(P + body, encoding="utf-8")
    (folder / "program.toml").write_text('[defaults]\ndelimiter = ";"\n' + toml, encoding="utf-8")
    return folder


def test_thousands_separators(tmp_path):
    rows = [("34,5", "1.234,5"), ("40", "12.345.678"), ("41,25", "-2,5"), ("50", ",5")]
    prog = rs.read_program(_one_file(tmp_path, rows, 'decimal = ","\nthousands = "."\n'))
    np.testing.assert_array_equal(prog.participants["age"], [34.5, 40, 41.25, 50])
    np.testing.assert_array_equal(prog.participants["risk_score"], [1234.5, 12345678, -2.5, 0.5])


def test_space_thousands_and_bad_grouping(tmp_path):
    rows = [("34,5", "1 234,5"), ("40", "12 34,5")]  # '12 34,5' is not grouped by three
    folder = _one_file(tmp_path, rows, 'decimal = ","\nthousands = " "\n')
    v = _errors(folder)
    bad = v[v["rule"] == "type_number"]
    assert bad["value"].tolist() == ["12 34,5"]
    assert "is not a number written with decimal = \",\", thousands = \" \"" in bad["message"].iloc[0]
    prog = rs.read_program(folder, on_error="drop")
    assert prog.participants["risk_score"].tolist() == [1234.5]


def test_dot_in_a_decimal_comma_file_is_not_read_as_a_fraction(tmp_path):
    # decimal = "," without thousands: '1.234' is not silently 1.234
    folder = _one_file(tmp_path, [("34,5", "1.234"), ("40", "2,5")], 'decimal = ","\n')
    v = _errors(folder)
    bad = v[v["rule"] == "type_number"]
    assert bad["value"].tolist() == ["1.234"]
    assert 'if "." groups thousands here, set thousands = "." in program.toml' in bad["message"].iloc[0]


def test_comma_grouped_value_in_a_decimal_comma_column_is_not_read_as_thousands(tmp_path):
    # '1,234' alone reads as 1234 (US grouping); beside '2,5' it is a decimal comma too
    folder = _one_file(tmp_path, [("34", "1,234"), ("40", "2,5"), ("41", "3")], "")
    v = _errors(folder)
    hit = v[v["rule"] == "number_decimal_comma"]
    assert len(hit) == 1 and hit["column"].iloc[0] == "risk_score"
    assert "2 value(s) are numbers written with a decimal comma" in hit["message"].iloc[0]
    us = rs.read_program(_one_file(tmp_path / "us", [("34", "1,234"), ("40", "2.5")], ""))
    assert us.participants["risk_score"].tolist() == [1234.0, 2.5]


@pytest.mark.parametrize("toml", ['decimal = "."\n', 'thousands = " "\n'])
def test_decimal_commas_with_a_point_format_set_are_one_finding_too(tmp_path, toml):
    rows = [("34,5", "1"), ("40,5", "2"), ("41,5", "x")]
    v = _errors(_one_file(tmp_path, rows, toml))
    hit = v[v["rule"] == "number_decimal_comma"]
    assert hit["column"].tolist() == ["age"]
    assert "3 value(s) are numbers written with a decimal comma" in hit["message"].iloc[0]
    assert v.loc[v["rule"] == "type_number", "value"].tolist() == ["x"]


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('decimal = ";"\n', "[defaults] decimal: must be one of"),
        ('[tables.participants]\ndecimal = ","\nthousands = ","\n', "is the decimal mark too"),
        ('thousands = "."\n', "is the decimal mark too"),
    ],
)
def test_bad_number_options_are_mapping_errors(tmp_path, toml, words):
    folder = _one_file(tmp_path, [("34", "1")], toml)
    with pytest.raises(DataValidationError) as info:
        rs.read_program(folder)
    assert any(words in str(p) for p in info.value.problems), info.value.problems


def test_untyped_extra_column_is_read_in_the_files_format(tmp_path):
    folder = _one_file(tmp_path, [("34,5", "1")], 'decimal = ","\n')
    text = (folder / "participants.csv").read_text().splitlines()
    rows = [text[0] + ";housing_score", text[1] + ";12,5"]
    (folder / "participants.csv").write_text("\n".join(rows) + "\n")
    prog = rs.read_program(folder)
    assert prog.participants["housing_score"].tolist() == [12.5]


def test_xlsx_text_cells_with_decimal_comma(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    folder = tmp_path / "x"
    folder.mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["participant_id", "enrollment_date", "group", "site", "age", "risk_score"])
    ws.append(["001", "2025-01-02", "a", "north", "34,5", 12.75])  # text cell, number cell
    ws.append(["002", "2025-01-03", "a", "north", 40.5, "1.234,5"])
    wb.save(folder / "participants.xlsx")
    (folder / "program.toml").write_text('[defaults]\ndecimal = ","\nthousands = "."\n')
    prog = rs.read_program(folder)
    assert prog.participants["age"].tolist() == [34.5, 40.5]
    assert prog.participants["risk_score"].tolist() == [12.75, 1234.5]


def test_cli_prints_one_line_per_column(tmp_path, sim, capsys):
    folder = _european(tmp_path / "eu", sim, '[defaults]\ndelimiter = ";"\n')
    assert main(["validate", str(folder)]) == EXIT_DATA
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "[number_decimal_comma]" in ln]
    assert len(lines) == sum(len(c) for c in FLOATS.values())
    assert "type_number" not in out
    assert pd.notna(lines[0])


def test_a_bad_default_is_reported_once_not_per_table():
    from recoverystats.io.mapping import parse_mapping

    raw = {
        "defaults": {"decimal": ";", "date_format": 5},
        "tables": {"participants": {"file": "p.csv"}, "events": {"file": "e.csv"}},
    }
    with pytest.raises(DataValidationError) as info:
        parse_mapping(raw)
    shown = [str(p) for p in info.value.problems]
    assert len(shown) == 2, shown
    assert all(": [defaults] " in p for p in shown)
