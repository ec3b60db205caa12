"""Messages name settings in the user's terms: CLI options on the command line, Python
keywords in the Python API (recoverystats.errors.param / use_terms)."""

from __future__ import annotations

import pytest

import recoverystats as rs
from recoverystats.cli import EXIT_DATA, EXIT_USAGE, build_parser, main
from recoverystats.errors import PYTHON_TERMS, DataValidationError, InvalidParameterError, param
from recoverystats.io import build as build_module

BAD = (
    "participant_id,enrollment_date,group,site\n"
    "007,2025-01-10,a,north\n"
    "008,,b,south\n"  # missing_value: its fix names on_error
    "009,2027-01-01,b,south\n"  # after_as_of: its fix names as_of
)


def _folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "participants.csv").write_text(BAD)
    return folder


def test_python_api_names_python_keywords(tmp_path):
    with pytest.raises(DataValidationError) as info:
        rs.read_program(_folder(tmp_path), as_of="2025-12-31")
    text = str(info.value)
    assert '(or pass on_error="drop" to drop the offending rows)' in text
    assert 'drop the row with on_error="drop" [missing_value]' in text
    assert "or use a later as_of [after_as_of]" in text
    assert "--on-error" not in text and "--as-of" not in text


def test_cli_validate_names_options(tmp_path, capsys):
    assert main(["validate", str(_folder(tmp_path)), "--as-of", "2025-12-31"]) == EXIT_DATA
    out, err = capsys.readouterr()
    assert "(or pass --on-error drop to drop the offending rows)" in err
    assert "drop the row with --on-error drop [missing_value]" in out
    assert "or use a later --as-of [after_as_of]" in out
    assert "on_error" not in out + err and "as_of [" not in out


def test_cli_json_findings_name_options(tmp_path, capsys):
    import json

    assert main(["validate", str(_folder(tmp_path)), "--format", "json"]) == EXIT_DATA
    doc = json.loads(capsys.readouterr().out)
    assert "--on-error drop" in doc["message"]
    fixes = [f["message"] for f in doc["findings"] if f["rule"] == "missing_value"]
    assert fixes and all("--on-error drop" in m and "on_error=" not in m for m in fixes)


def test_cli_terms_survive_the_column_thread_pool(tmp_path, capsys, monkeypatch):
    # columns are coerced on two threads for large tables: force that path, and give a
    # rule found there (date_parse) a fix that names a setting
    import dataclasses

    from recoverystats.schema.rules import RULES

    monkeypatch.setattr(build_module, "_PARALLEL_ROWS", 1)
    rule = dataclasses.replace(RULES["date_parse"], fix="write dates or use <param:on_error=drop>")
    monkeypatch.setitem(RULES, "date_parse", rule)
    folder = _folder(tmp_path)
    (folder / "participants.csv").write_text(BAD.replace("2025-01-10", "10 Jan 2025x"))
    assert main(["validate", str(folder)]) == EXIT_DATA
    out = capsys.readouterr().out
    assert "write dates or use --on-error drop [date_parse]" in out


def test_after_a_cli_run_the_python_api_names_keywords_again(tmp_path, capsys):
    folder = _folder(tmp_path)
    main(["validate", str(folder)])
    capsys.readouterr()
    with pytest.raises(DataValidationError, match='on_error="drop"'):
        rs.read_program(folder)


def test_overwrite_message_python_and_cli(tmp_path, capsys):
    from recoverystats.report.report import check_out_dir

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match=r"pass overwrite=True to replace"):
        check_out_dir(out)
    code = main(["report", str(rs_sample()), "--quarter", "2026Q3", "--out", str(out), "--quiet"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "pass --overwrite to replace an earlier report" in err
    assert "overwrite=True" not in err


def rs_sample():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "data" / "sample"


def test_terms_come_from_each_commands_own_options():
    validate = build_parser().parse_args(["validate", "x"])._terms
    report = build_parser().parse_args(["report", "x", "--quarter", "2026Q3", "--out", "o"])._terms
    assert validate.name("on_error", "drop") == "--on-error drop"
    assert validate.name("as_of", "2026-09-30") == "--as-of 2026-09-30"
    assert validate.name("max_per_rule", 0) == "--max-per-rule 0"
    assert report.name("overwrite", True) == "--overwrite"
    assert report.name("min_cell", 11) == "--min-cell 11"
    assert report.name("suppress", False) == "--no-suppress"
    assert report.name("suppress", True) == "without --no-suppress"
    # report has no --as-of: the setting is named as in program.toml
    assert report.name("as_of", "2026-09-30") == 'as_of = "2026-09-30"'
    assert PYTHON_TERMS.name("overwrite", True) == "overwrite=True"
    assert PYTHON_TERMS.name("min_cell", 11) == "min_cell=11"
    assert param("on_error", "drop") == 'on_error="drop"'
