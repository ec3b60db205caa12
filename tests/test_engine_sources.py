"""Table sources beyond one file per table, on every engine (engines/sources.py).

- a directory of Parquet files, Hive-partitioned (``events/year=2024/part-0.parquet``)
  or not, and a glob: the same findings, flow and tables on pandas, DuckDB and Spark;
  a finding names the file and the row within it;
- tables of a DuckDB database file read in place by ``engine="duckdb"``;
- Spark catalog tables (``table = "db.events"``) and plain CSV files read by Spark.

Spark runs in local mode and is skipped with the reason printed when pyspark or Java is
missing (the session is shared with tests/test_engine_validation.py's fixture logic).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError

pytest.importorskip("ibis")
pytest.importorskip("duckdb")

from test_engine_validation import BAD, SPARK_SKIP, _load, _same  # noqa: E402


def _frame(name: str) -> pd.DataFrame:
    from io import StringIO

    return pd.read_csv(StringIO(BAD[name]), dtype=str, keep_default_na=False)


def _partitioned(tmp: Path, *, split_events: bool = True) -> Path:
    """The BAD fixture with events split by year into Hive partitions (and participants in two files)."""
    folder = tmp / "lake"
    folder.mkdir()
    for name in BAD:
        stem = name.removesuffix(".csv")
        df = _frame(name)
        if stem == "events" and split_events:
            year = df["event_date"].str[:4].replace("", "unknown")
            for y in sorted(set(year)):
                part = df[year == y].reset_index(drop=True)
                d = folder / "events" / f"year={y}"
                d.mkdir(parents=True)
                half = (len(part) + 1) // 2
                part.iloc[:half].to_parquet(d / "part-0.parquet", index=False)
                if len(part) > half:
                    part.iloc[half:].to_parquet(d / "part-1.parquet", index=False)
            (folder / "events" / "_SUCCESS").write_text("")
        elif stem == "participants":
            d = folder / "participants"
            d.mkdir()
            df.iloc[:4].to_parquet(d / "a.parquet", index=False)
            df.iloc[4:].to_parquet(d / "b.parquet", index=False)
        else:
            df.to_parquet(folder / f"{stem}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return _partitioned(tmp_path_factory.mktemp("sources"))


def test_partitioned_parquet_pandas_names_file_and_row(lake):
    a = _load(lake, "pandas", on_error="drop", as_of="2026-09-30")
    v = a.validation
    # participants b.parquet holds rows 5.. of the fixture: 2025-02-30 is its first row
    bad = v[(v["rule"] == "date_impossible") & (v["table"] == "participants")]
    assert bad["file"].tolist() == ["participants/b.parquet"]
    assert bad["line"].tolist() == [1]
    assert bad["message"].iloc[0].startswith("participants/b.parquet row 1, column enrollment_date")
    # events: rows named by partition file; the year key is not an events column
    ev = v[v["table"] == "events"]
    assert set(ev["file"]) - {"events/"} <= {
        str(p.relative_to(lake)) for p in (lake / "events").rglob("*.parquet")
    }
    party = ev[ev["rule"] == "code_unknown"]
    assert party["file"].tolist() == ["events/year=2027/part-0.parquet"]
    assert party["line"].tolist() == [1]
    note = v[v["rule"] == "partition_ignored"]
    assert note["column"].tolist() == ["year"] and note["file"].tolist() == ["events/"]
    # same rows as the single-file load (row order: files in path order)
    assert len(a.events) == len(rs.read_program(lake, on_error="drop", as_of="2026-09-30").events)


@pytest.mark.parametrize("on_error", ["drop", "raise"])
def test_partitioned_parquet_duckdb_equals_pandas(lake, on_error):
    a = _load(lake, "pandas", on_error=on_error, as_of="2026-09-30")
    b = _load(lake, "duckdb", on_error=on_error, as_of="2026-09-30")
    _same(a, b)


def test_references_to_a_partitioned_parent_name_its_file(lake):
    v = _load(lake, "pandas", on_error="drop", as_of="2026-09-30").validation
    pd_msgs = v[v["rule"] == "parent_dropped"]["message"].tolist()
    # participant 004 is the first row of participants/b.parquet (row 5 of the fixture)
    assert any("'004' was dropped from participants/b.parquet (row 1)" in m for m in pd_msgs), pd_msgs
    dup = v[(v["rule"] == "duplicate_key") & (v["table"] == "participants")]["message"].iloc[0]
    assert "(participants/a.parquet row 2, participants/a.parquet row 3)" in dup


def test_glob_and_mapped_directory(lake, tmp_path):
    toml = tmp_path / "program.toml"
    toml.write_text(
        "\n".join(
            f'[tables.{n}]\nfile = "{lake / n}.parquet"' for n in ("mentors", "matches", "contacts", "assessments")
        )
        + f'\n[tables.participants]\nfile = "{lake}/participants/"\n'
        + f'[tables.events]\nfile = "{lake}/events/year=202*/*.parquet"\n',
        encoding="utf-8",
    )
    a = _load(toml, "pandas", on_error="drop", as_of="2026-09-30")
    b = _load(toml, "duckdb", on_error="drop", as_of="2026-09-30")
    _same(a, b)
    ev = a.validation[a.validation["table"] == "events"]
    # the glob leaves out year=1980 and year=unknown (2024, 2025 and 2027 remain)
    assert a.flow.set_index("table").loc["events", "rows_read"] == 8
    assert {f for f in ev["file"] if "*" not in f} <= {
        str(p) for p in (lake / "events").glob("year=202*/*.parquet")
    }


def test_schema_partition_key_is_typed_like_a_column(tmp_path):
    """A partition key that is a canonical column (``event_type=arrest``) is read as that column."""
    folder = tmp_path / "p"
    folder.mkdir()
    _frame("participants.csv").iloc[[0, 1]].to_parquet(folder / "participants.parquet", index=False)
    ev = pd.DataFrame({"participant_id": ["001", "002", "001"], "event_date": ["2025-02-01", "2025-03-01", "2025-13-01"]})
    for t, rows in (("arrest", [0, 1]), ("relapse", [2])):
        d = folder / "events" / f"event_type={t}"
        d.mkdir(parents=True)
        ev.iloc[rows].to_parquet(d / "0.parquet", index=False)
    a = _load(folder, "pandas", on_error="drop")
    b = _load(folder, "duckdb", on_error="drop")
    _same(a, b)
    assert a.events["event_type"].tolist() == ["arrest", "arrest"]
    bad = a.validation[a.validation["rule"] == "date_impossible"]
    assert bad[["file", "line"]].values.tolist() == [["events/event_type=relapse/0.parquet", 1]]
    assert "partition_ignored" not in set(a.validation["rule"])


def test_empty_directory_and_unreadable_file(tmp_path):
    folder = tmp_path / "p"
    (folder / "participants").mkdir(parents=True)
    with pytest.raises(DataValidationError, match=r"participants/: no Parquet files"):
        rs.read_program(folder)
    (folder / "participants" / "x.parquet").write_text("not parquet")
    with pytest.raises(DataValidationError, match=r"participants/x.parquet: cannot read as Parquet"):
        rs.read_program(folder, engine="duckdb")
    (folder / "participants.csv").write_text("participant_id\n1\n")
    with pytest.raises(DataValidationError, match="file_ambiguous"):
        rs.read_program(folder)
