"""The report and the command line on the DuckDB engine: the same output as on pandas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import recoverystats as rs
from recoverystats.cli import main
from recoverystats.errors import DataValidationError

pytest.importorskip("ibis")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sample(tmp_path):
    dest = tmp_path / "sample"
    shutil.copytree(ROOT / "data" / "sample", dest)
    return dest


def _results(folder: Path) -> dict:
    doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    doc.get("provenance", {}).pop("generated_at", None)
    return doc


def _strip_times(doc):
    if isinstance(doc, dict):
        return {k: _strip_times(v) for k, v in doc.items() if k != "generated_at"}
    if isinstance(doc, list):
        return [_strip_times(v) for v in doc]
    return doc


@pytest.mark.slow
def test_report_on_duckdb_equals_pandas(sample, tmp_path):
    assert main(["report", str(sample), "--quarter", "2026Q3", "--out", str(tmp_path / "pd"), "--quiet"]) == 0
    assert main(["report", str(sample), "--quarter", "2026Q3", "--out", str(tmp_path / "dd"), "--quiet",
                 "--engine", "duckdb", "--memory-limit", "2GB"]) == 0
    assert _strip_times(_results(tmp_path / "pd")) == _strip_times(_results(tmp_path / "dd"))


def test_validate_command_on_duckdb(sample, capsys):
    assert main(["validate", str(sample), "--engine", "duckdb"]) == 0
    out = capsys.readouterr().out
    assert "participants" in out and "group x site" in out
    assert main(["validate", str(sample)]) == 0
    assert capsys.readouterr().out == out


def test_engine_section_of_program_toml(sample):
    toml = sample / "program.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[engine]\nname = "duckdb"\nmemory_limit = "1GB"\n'
                    'database = "program.duckdb"\n', encoding="utf-8")
    prog = rs.read_program(sample)
    assert type(prog).__name__ == "EngineProgramData" and prog.engine == "duckdb"
    assert (sample / "program.duckdb").is_file()
    # an explicit engine wins over program.toml
    assert type(rs.read_program(sample, engine="pandas")).__name__ == "ProgramData"


@pytest.mark.parametrize(("section", "match"), [
    ('[engine]\nname = "polars"\n', "engine] name"),
    ('[engine]\nthreads = "4"\n', "unknown key"),
    ('[engine]\nmemory_limit = 8\n', "must be text"),
])
def test_bad_engine_section(sample, section, match):
    toml = sample / "program.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n" + section, encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        rs.read_program(sample)
    assert any(match in str(p) for p in info.value.problems)
