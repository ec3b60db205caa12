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

from pathlib import Path

import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError

pytest.importorskip("ibis")
pytest.importorskip("duckdb")

from recoverystats.engines.load import spark_session as _start_spark  # noqa: E402
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
    (folder / "participants" / "notes.csv").write_text("x\n1\n")
    # a directory without Parquet files is not a table source (as before)
    with pytest.raises(DataValidationError, match="no participants table was found"):
        rs.read_program(folder)
    with pytest.raises(DataValidationError, match=r"participants/: no Parquet files"):
        rs.read_program(folder, mapping={"tables": {"participants": {"file": "participants/"}}})
    (folder / "participants" / "x.parquet").write_text("not parquet")
    with pytest.raises(DataValidationError, match=r"participants/x.parquet: cannot read as Parquet"):
        rs.read_program(folder, engine="duckdb")
    (folder / "participants.csv").write_text("participant_id\n1\n")
    with pytest.raises(DataValidationError, match="file_ambiguous"):
        rs.read_program(folder)


# ---------------------------------------------------------------------------
# DuckDB database files
# ---------------------------------------------------------------------------
def _warehouse(folder: Path) -> Path:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "w.duckdb"))
    con.execute(
        "CREATE TABLE clients AS SELECT * FROM (VALUES ('001', DATE '2025-01-10', 'peer_mentoring', 'north'), "
        "('002', DATE '2025-02-10', 'comparison', 'north'), ('003', NULL, 'comparison', 'x')) "
        't(participant_id, enrollment_date, "group", site)'
    )
    con.execute("CREATE TYPE kind AS ENUM ('arrest', 'relapse', 'party')")
    con.execute("CREATE TABLE ev (participant_id VARCHAR, event_date VARCHAR, event_type kind)")
    con.execute("INSERT INTO ev VALUES ('001','2025-02-01','arrest'), ('001','2025-13-01','arrest'), "
                "('009','2025-03-01','relapse')")
    # a deleted row leaves a gap in rowid: rows are still numbered 1..n in storage order
    con.execute("DELETE FROM ev WHERE event_date = '2025-02-01'")
    con.execute("INSERT INTO ev VALUES ('002','2025-05-01','party')")
    con.close()
    return folder


@pytest.mark.parametrize("events", ['table = "ev"', "query = \"SELECT * FROM ev WHERE participant_id <> 'x'\""])
@pytest.mark.parametrize("on_error", ["drop", "raise"])
def test_duckdb_database_tables_read_in_place_equal_pandas(tmp_path, events, on_error):
    d = _warehouse(tmp_path / "w")
    (d / "program.toml").write_text(
        f'[tables.participants]\ndatabase = "w.duckdb"\ntable = "clients"\n'
        f'[tables.events]\ndatabase = "w.duckdb"\n{events}\n', encoding="utf-8",
    )
    a = _load(d, "pandas", on_error=on_error)
    b = _load(d, "duckdb", on_error=on_error)
    _same(a, b)
    v = a.validation
    where = "w.duckdb table ev" if events.startswith("table") else "w.duckdb query"
    bad = v[v["rule"] == "date_impossible"]
    assert bad[["file", "line"]].values.tolist() == [[where, 1]]
    assert bad["message"].iloc[0].startswith(f"{where} row 1, column event_date")
    party = v[v["rule"] == "code_unknown"]
    assert party[["file", "line"]].values.tolist() == [[where, 3]]
    miss = v[v["rule"] == "missing_value"]
    assert miss[["file", "line"]].values.tolist() == [["w.duckdb table clients", 3]]


def test_duckdb_database_errors(tmp_path):
    d = _warehouse(tmp_path / "w")
    (d / "program.toml").write_text('[tables.participants]\ndatabase = "w.duckdb"\ntable = "nope"\n', encoding="utf-8")
    for engine in ("pandas", "duckdb"):
        with pytest.raises(DataValidationError, match=r"w.duckdb table nope \(query for table participants\): the query failed"):
            rs.read_program(d, engine=engine)
    # table without database: a Spark catalog table, which the other engines cannot read
    (d / "program.toml").write_text('[tables.participants]\ntable = "db.clients"\n', encoding="utf-8")
    for engine in ("pandas", "duckdb"):
        with pytest.raises(DataValidationError, match="names a Spark catalog table, which only engine='spark' reads"):
            rs.read_program(d, engine=engine)
    (d / "program.toml").write_text('[tables.participants]\ntable = "db.clients"\nfile = "x.csv"\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match="give either file or table"):
        rs.read_program(d)


# ---------------------------------------------------------------------------
# Spark: partitioned Parquet, plain CSV read by Spark, catalog tables
# ---------------------------------------------------------------------------
SMALL_PARTICIPANTS = (
    "participant_id,enrollment_date,group,site\n"
    "001,2025-01-10,peer_mentoring,north\n002,2025-02-30,comparison,NA\n"
    '003,2025-03-01,comparison, south\n003,2025-03-01,comparison,x\n"004","",comparison,north\n'
)


def _small(folder: Path) -> Path:
    """Participants as a plain CSV; events in two year partitions, a bad date in the second file."""
    folder.mkdir(parents=True)
    (folder / "participants.csv").write_text(SMALL_PARTICIPANTS, encoding="utf-8")
    ev = pd.DataFrame({"participant_id": ["001", "002", "001", "009"],
                       "event_date": ["2025-02-01", "2025-03-01", "2025-13-01", "2025-04-01"],
                       "event_type": ["arrest"] * 4})
    for y, rows in (("2024", [0, 1]), ("2025", [2, 3])):
        p = folder / "events" / f"year={y}"
        p.mkdir(parents=True)
        ev.iloc[rows].to_parquet(p / "part-0.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def spark(request):
    if SPARK_SKIP:
        pytest.skip(SPARK_SKIP)
    return _start_spark("local[2]")


@pytest.mark.slow
def test_spark_partitioned_parquet_and_csv_equal_pandas(tmp_path, spark):
    """~40 s on 2 cores: one Spark load of a 5-row CSV and a 2-file partitioned table."""
    folder = _small(tmp_path / "small")
    a = _load(folder, "pandas", on_error="drop")
    b = _load(folder, "spark", on_error="drop", spark=spark)
    _same(a, b)
    v = b.validation
    bad = v[v["rule"] == "date_impossible"]
    assert bad[["file", "line"]].values.tolist() == [
        ["participants.csv", 3], ["events/year=2025/part-0.parquet", 1]]


@pytest.mark.slow
def test_spark_reads_plain_csv_itself_with_exact_lines(tmp_path, spark):
    from recoverystats.engines import load, sources
    from recoverystats.io.read import resolve_source

    folder = tmp_path / "csv"
    folder.mkdir()
    # 2,000 rows over several splits (a small maxPartitionBytes): line numbers stay exact
    rows = "".join(f"{i:05d},2025-01-{1 + i % 28:02d},comparison,s{i % 7}\n" for i in range(2000))
    (folder / "participants.csv").write_text("participant_id,enrollment_date,group,site\n" + rows, encoding="utf-8")
    (folder / "events.csv").write_text("participant_id,event_date,event_type\n00001,2025-02-01\n", encoding="utf-8")
    res = resolve_source(folder)
    be = load.connect("spark", database=None, memory_limit=None, spark=spark)
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "8192")
    try:
        entry = next(e for e in res.entries if e.name == "participants")
        raw = sources.spark_csv(be, entry)
        assert raw is not None and raw.line_label == "line" and raw.rows == 2000
        got = raw.table.order_by("_rid").to_pyarrow().to_pandas()
        assert got["_line"].tolist() == list(range(2, 2002))
        assert got["participant_id"].tolist() == [f"{i:05d}" for i in range(2000)]
        assert spark.read.csv(str(entry.path)).rdd.getNumPartitions() > 1
        # a ragged row: not plain, read through the readers (which report it)
        ragged = next(e for e in res.entries if e.name == "events")
        assert sources.spark_csv(be, ragged) is None
        # a byte that is not UTF-8 far past the header: Spark would replace it silently
        (folder / "events.csv").write_bytes(
            b"participant_id,event_date,event_type\n" + b"00001,2025-02-01,arrest\n" * 5000
            + "00002,2025-02-01,arr\u00e9t\n".encode("latin-1"))
        assert sources._scan_text(folder / "events.csv") == (5002, False, False)
        assert sources.spark_csv(be, ragged) is None
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)


@pytest.mark.slow
def test_spark_catalog_tables(tmp_path, spark):
    """``table = "db.events"``: a Parquet-backed catalog table numbered by file and row; a view in scan order."""
    from recoverystats.engines import load, sources
    from recoverystats.io.read import resolve_source

    loc = tmp_path / "wh" / "ev"
    loc.mkdir(parents=True)
    ev = pd.DataFrame({"participant_id": ["001", "001", "002"], "event_date": ["2025-02-01", "2025-13-01", "2025-03-01"],
                       "event_type": ["arrest", "arrest", "party"]})
    ev.iloc[:2].to_parquet(loc / "part-0.parquet", index=False)
    ev.iloc[2:].to_parquet(loc / "part-1.parquet", index=False)
    spark.sql("CREATE DATABASE IF NOT EXISTS rs_test LOCATION '" + str(tmp_path / "wh") + "'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS rs_test.events USING parquet LOCATION '{loc}'")
    spark.createDataFrame(ev.iloc[::-1].reset_index(drop=True)).createOrReplaceTempView("rs_events_view")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "participants.csv").write_text(SMALL_PARTICIPANTS, encoding="utf-8")
    try:
        be = load.connect("spark", database=None, memory_limit=None, spark=spark)
        entry = next(e for e in resolve_source(folder, {"tables": {"events": {"table": "rs_test.events"}}}).entries
                     if e.name == "events")
        assert entry.kind == "catalog" and entry.display == "table rs_test.events"
        raw = sources.spark_catalog(be, entry)
        got = raw.table.order_by("_rid").to_pyarrow().to_pandas()
        assert got["_line"].tolist() == [1, 2, 3]
        assert got["event_date"].tolist() == ev["event_date"].tolist()  # files in path order
        view = next(e for e in resolve_source(folder, {"tables": {"events": {"table": "rs_events_view"}}}).entries
                    if e.name == "events")
        got = sources.spark_catalog(be, view).table.order_by("_rid").to_pyarrow().to_pandas()
        assert sorted(got["_rid"].tolist()) == [0, 1, 2] and set(got["event_date"]) == set(ev["event_date"])
        b = _load(folder, "spark", on_error="drop", spark=spark,
                  mapping={"tables": {"events": {"table": "rs_test.events"}}})
        v = b.validation
        assert v[v["rule"] == "date_impossible"][["file", "line"]].values.tolist() == [
            ["participants.csv", 3], ["table rs_test.events", 2]]
        assert v[v["rule"] == "code_unknown"][["file", "line"]].values.tolist() == [["table rs_test.events", 3]]
        with pytest.raises(DataValidationError, match="Spark has no table 'rs_test.nope'"):
            rs.read_program(folder, engine="spark", spark=spark, mapping={"tables": {"events": {"table": "rs_test.nope"}}})
    finally:
        spark.sql("DROP TABLE IF EXISTS rs_test.events")
        spark.sql("DROP DATABASE IF EXISTS rs_test CASCADE")


def test_partition_key_that_is_also_a_file_column_uses_the_file(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    _frame("participants.csv").iloc[[0, 1]].to_parquet(folder / "participants.parquet", index=False)
    d = folder / "events" / "event_type=arrest" / "site=a%20b"
    d.mkdir(parents=True)
    pd.DataFrame({"participant_id": ["001"], "event_date": ["2025-02-01"], "event_type": ["relapse"]}).to_parquet(
        d / "0.parquet", index=False)
    a = _load(folder, "pandas", on_error="drop")
    b = _load(folder, "duckdb", on_error="drop")
    _same(a, b)
    assert a.events["event_type"].tolist() == ["relapse"]
    notes = a.validation[a.validation["rule"] == "partition_ignored"]
    assert notes["column"].tolist() == ["event_type", "site"]
    assert "also a column inside the files" in notes["message"].iloc[0]
    assert "partition key 'site' is not a column of events" in notes["message"].iloc[1]  # %20 decoded: 'a b'
