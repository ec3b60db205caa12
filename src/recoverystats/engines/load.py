"""``read_program(..., engine="duckdb"|"spark")``: read and validate a program on an engine.

How the files reach the engine
------------------------------
DuckDB reads Parquet files itself (``read_parquet`` with the row number within the
file, which findings name as ``row N``) and CSV/TSV files itself (``read_csv``, every
column as text, as the pandas path reads them) when a CSV is *plain*: UTF-8, the header
on line 1, one record per line and no blank lines between rows (checked: the file's
line count equals DuckDB's rows + 1, no all-empty row), so that ``line`` = header line
+ row position is exact. Anything else -- Excel, SPSS, Stata, SQL queries, CSV files
with title rows, blank lines, quoted line breaks, ragged rows or another encoding --
is read by the pandas path's readers (same findings, same line numbers) and handed to
the engine as an Arrow table. Spark reads Parquet and plain CSV itself; the other formats
come through the readers. Directories of Parquet files, DuckDB database tables and Spark
catalog tables: :mod:`recoverystats.engines.sources`.

Then :mod:`recoverystats.engines.validate` types and checks every table in the engine,
and the validated tables stay there (DuckDB: in the database, on disk when
``database=`` is given; Spark: cached DataFrames).

Cost: a Parquet file is read in place (a view; nothing is copied before the validated
table is written); a plain CSV is read once into a table by DuckDB's parallel reader
while a background thread computes the file's SHA-256 and line count in the same pass
over the bytes (the line count proves the row-to-line mapping). DuckDB runs with
``preserve_insertion_order = false``: rows carry ``_rid``, and every read that needs an
order sorts by it -- except the statements that *make* ``_rid`` (a CSV read into a table,
a database query copied), which run with the order preserved (:func:`in_file_order`):
``_rid`` is the table's ``rowid``, and without the setting DuckDB's parallel writer
stores the rows of a large file in the order its threads finish.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from recoverystats.engines import sources as sources_mod
from recoverystats.engines.program import EngineProgramData
from recoverystats.engines.validate import Built, EngineRaw, build_table, row_rules
from recoverystats.errors import InvalidParameterError
from recoverystats.io import build
from recoverystats.io.readers import (
    CSV_SUFFIXES,
    HEADER_SEARCH,
    ReadFailure,
    _header_fields,
    check_header,
    file_finding,
    sha256_file,
)
from recoverystats.schema.rules import RULES
from recoverystats.schema.spec import TABLE_NAMES

if TYPE_CHECKING:
    from recoverystats.io.read import ResolvedSource, SourceEntry

#: Findings fetched per rule and table (the rest are counted in ``finding_counts``).
MAX_FINDINGS = 1_000_000


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------
class Backend:
    """An Ibis connection plus how this engine registers and materialises tables (internal)."""

    def __init__(self, engine: str, con: Any, session: Any = None, prefix: str = "_rs") -> None:
        self.engine = engine
        self.con = con
        self.session = session
        self.prefix = f"{prefix}_{int(time.time() * 1000) % 10**9}"
        self._n = 0
        self.on_disk = False
        self.scratch: list[str] = []

    def drop_scratch(self) -> None:
        """Drop the intermediate tables made in a database file (the validated tables stay)."""
        for name in self.scratch:
            self.con.drop_table(name, force=True)
        self.scratch.clear()

    def name(self, key: str) -> str:
        self._n += 1
        return f"{self.prefix}_{self._n}_{key}"

    def cache(self, expr: ir.Table, key: str) -> ir.Table:
        """Materialise an intermediate table (queried several times)."""
        if self.engine == "duckdb":
            # in a database file: a compressed table (temporary tables spill uncompressed)
            name = self.name(key)
            table = self.con.create_table(name, expr, temp=not self.on_disk, overwrite=True)
            if self.on_disk:
                self.scratch.append(name)
            return table
        return expr.cache()

    def persist(self, expr: ir.Table, name: str) -> ir.Table:
        """Materialise a validated table under its canonical name (DuckDB: in the database)."""
        if self.engine == "duckdb":
            return self.con.create_table(name, expr, overwrite=True)
        return expr.cache()

    def register(self, data: pa.Table, key: str) -> ir.Table:
        if self.engine == "duckdb":
            return self.con.create_table(self.name(key), data, temp=True, overwrite=True)
        schema = _spark_schema(data.schema)
        cols = [data.column(i).to_pylist() for i in range(data.num_columns)]
        rows = list(zip(*cols, strict=True)) if cols else []
        sdf = self.session.createDataFrame(rows, schema=schema)
        view = self.name(key)
        sdf.createOrReplaceTempView(view)
        return self.con.table(view)


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql import types as T

    def conv(t: pa.DataType) -> Any:
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            return T.StringType()
        if pa.types.is_integer(t):
            return T.LongType()
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return T.DoubleType()
        if pa.types.is_boolean(t):
            return T.BooleanType()
        if pa.types.is_date(t):
            return T.DateType()
        if pa.types.is_timestamp(t):
            return T.TimestampType()
        return T.StringType()

    return T.StructType([T.StructField(f.name, conv(f.type), True) for f in schema])


def connect(
    engine: str, *, database: str | Path | None, memory_limit: str | None, spark: Any
) -> Backend:
    """An Ibis connection for ``engine`` with the settings of ``read_program``."""
    if engine == "duckdb":
        if spark is not None:
            raise InvalidParameterError('spark= applies to engine="spark" only.')
        con = ibis.duckdb.connect(str(database) if database is not None else ":memory:")
        raw = con.con
        if memory_limit is not None:
            try:
                raw.execute(f"SET memory_limit = '{memory_limit}'")
            except Exception as exc:  # duckdb.Error: the value is not a size
                raise InvalidParameterError(
                    f"memory_limit must be a size such as '8GB'; got {memory_limit!r} ({exc})."
                ) from None
        if database is None:
            spill = tempfile.mkdtemp(prefix="recoverystats-duckdb-")
            raw.execute(f"SET temp_directory = '{spill}'")
            # the spill folder goes with the connection (the program holds it)
            weakref.finalize(con, shutil.rmtree, spill, True)
        raw.execute("SET preserve_insertion_order = false")  # rows carry _rid; every read orders by it
        raw.execute("SET enable_progress_bar = false")  # the loader shows its own stages
        # what the report's release_engine_cache restores (DuckDB shows the limit rounded)
        con._rs_memory_limit = memory_limit
        con._rs_on_disk = database is not None
        be = Backend("duckdb", con)
        be.on_disk = database is not None
        return be
    if database is not None:
        raise InvalidParameterError('database= applies to engine="duckdb" only.')
    session = spark_session(spark)
    session.sparkContext.setLogLevel("ERROR")
    return Backend("spark", ibis.pyspark.connect(session), session)


def spark_session(spark: Any = None) -> Any:
    """A ``SparkSession``: the one given, or one started on master URL ``spark`` (default ``local[2]``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InvalidParameterError(
            "engine='spark' needs pyspark: pip install 'recoverystats[spark]' (and Java 17)."
        ) from None
    if isinstance(spark, SparkSession):
        return spark
    import os

    # the engine's own log and progress output would bury the loader's messages
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
    if spark is not None and not isinstance(spark, str):
        raise InvalidParameterError(
            f"spark must be a SparkSession or a master URL such as 'local[2]'; got {type(spark).__name__}."
        )
    return (
        SparkSession.builder.master(spark or "local[2]")
        .appName("recoverystats")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


# ---------------------------------------------------------------------------
# raw tables
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def in_file_order(con: Any) -> Iterator[None]:
    """Run the enclosed statements with ``preserve_insertion_order = true`` (DuckDB).

    The row numbers ``_rid``/``_line`` are the ``rowid`` of the table a CSV file or a query
    is read into; that is the file's (the query's) order only when DuckDB preserves the
    insertion order while writing it (measured: with the setting off every row of a
    700k-row CSV lands out of place on 4 threads).
    """
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = false")


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _plain_csv_header(path: Path, entry: SourceEntry) -> list[str] | None:
    """The header names when a CSV can be read by the engine with exact line numbers, else None."""
    opts = entry.options
    if opts.header_row is not None or (opts.encoding and opts.encoding.replace("-", "").lower() != "utf8"):
        return None
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:3] == b"\xef\xbb\xbf" or not head or head[:1] in (b"\n", b"\r", b" ", b"\t"):
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head[: head.rfind(b"\n")].decode("utf-8", errors="strict") if b"\n" in head else ""
    lines = text.splitlines()
    if not lines:
        return None
    delimiter = opts.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    header = _header_fields(lines[0], delimiter)
    if len(header) <= 1 or '"' in lines[0]:
        return None
    near = [_header_fields(ln, delimiter) for ln in lines[:HEADER_SEARCH]]
    try:
        check_header(near, 0, entry.name, opts, entry.display, "line")
    except ReadFailure:
        return None
    names = [h.strip() for h in header]
    if len(set(names)) != len(names):
        return None
    return header


def _scan_file(path: Path, count_lines: bool) -> tuple[str, int, int, bool]:
    """(SHA-256, size, number of lines, whether a lone carriage return appears), in one read.

    Runs on a background thread (hashlib and file reads release the GIL) while the
    engine reads the same file.
    """
    h = hashlib.sha256()
    size = n = cr = 0
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
            size += len(chunk)
            if count_lines:
                n += chunk.count(b"\n")
                cr += chunk.count(b"\r")
            last = chunk[-1:]
    lines = n + (1 if last not in (b"\n", b"") else 0)
    return h.hexdigest(), size, lines, cr not in (0, n)


_POOL: ThreadPoolExecutor | None = None


def _background(path: Path, count_lines: bool) -> Future:
    """:func:`_scan_file` on the loader's background thread."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recoverystats-scan")
    return _POOL.submit(_scan_file, path, count_lines)


def _resolve_sources(sources: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Source rows whose digest is still being computed (a Future) made whole."""
    out = []
    for row in sources:
        if len(row) == 4 and isinstance(row[2], Future):
            digest, size = row[2].result()[:2]
            row = (row[0], row[1], digest, size)
        out.append(row)
    return out


def _duckdb_csv(be: Backend, entry: SourceEntry) -> EngineRaw | None:
    import duckdb

    path = entry.path
    assert path is not None
    header = _plain_csv_header(path, entry)
    if header is None:
        return None
    opts = entry.options
    delimiter = opts.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    na = [m for m in opts.na_markers]
    scan = _background(path, True)  # hash and line count while DuckDB reads the file
    name = be.name(f"raw_{entry.name}")
    cols = "{" + ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}': 'VARCHAR'" for h in header) + "}"
    nullstr = "[" + ", ".join("'" + m.replace("'", "''") + "'" for m in na) + "]" if na else "['']"
    try:
        with in_file_order(be.con.con):
            be.con.con.execute(
                f"CREATE TEMP TABLE \"{name}\" AS SELECT * FROM read_csv({_sql_str(path)}, "
                f"header = true, columns = {cols}, delim = '{delimiter}', quote = '\"', escape = '\"', "
                f"strict_mode = true, null_padding = false, nullstr = {nullstr}, auto_detect = false, "
                f"encoding = 'utf-8')"
            )
    except duckdb.Error:
        return None
    con = be.con.con
    rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    digest, size, lines, lone_cr = scan.result()
    if lone_cr or lines != rows + 1:
        con.execute(f'DROP TABLE "{name}"')
        return None
    if rows and len(header) > 1:
        cond = " AND ".join('"' + h.replace('"', '""') + '" IS NULL' for h in header)
        if con.execute(f'SELECT count(*) FROM "{name}" WHERE {cond}').fetchone()[0]:
            con.execute(f'DROP TABLE "{name}"')
            return None
    view = be.name(f"rawv_{entry.name}")
    con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT rowid AS _rid, rowid + 2 AS _line, * FROM "{name}"')
    t = be.con.table(view)
    return EngineRaw(
        entry.name, t, list(header), entry.display, "line", opts, True, int(rows),
        sources=[(entry.name, str(path), digest, size)],
    )


def _parquet(be: Backend, entry: SourceEntry) -> EngineRaw:
    path = entry.path
    assert path is not None
    scan = _background(path, False)
    try:
        if be.engine == "duckdb":
            view = be.name(f"rawv_{entry.name}")
            be.con.con.execute(
                f'CREATE TEMP VIEW "{view}" AS SELECT * EXCLUDE (file_row_number), '
                "file_row_number AS _rid, file_row_number + 1 AS _line "
                f"FROM read_parquet({_sql_str(path)}, file_row_number = true)"
            )
            t = be.con.table(view)
        else:
            from pyspark.sql import Window
            from pyspark.sql import functions as F

            sdf = be.session.read.parquet(str(path))
            sdf = sdf.withColumn("_mid", F.monotonically_increasing_id())
            sdf = sdf.withColumn("_rid", F.row_number().over(Window.orderBy("_mid")) - 1).drop("_mid")
            sdf = sdf.withColumn("_line", F.col("_rid") + 1)
            view = be.name(f"raw_{entry.name}")
            sdf.createOrReplaceTempView(view)
            t = be.con.table(view)
    except Exception as exc:  # the engine's own error type
        raise ReadFailure("file_unreadable", f"{entry.display}: cannot read as Parquet: {exc}") from None
    cols = [c for c in t.columns if c not in ("_rid", "_line")]
    t = t.select("_rid", "_line", *cols)
    rows = int(t.count().to_pyarrow().as_py())
    return EngineRaw(
        entry.name, t, cols, entry.display, "row", entry.options, False, rows,
        sources=[(entry.name, str(path), scan, None)],  # digest resolved at the end
    )


def _via_reader(be: Backend, entry: SourceEntry) -> EngineRaw:
    """Read with the pandas path's reader, then hand the Arrow table to the engine."""
    raw = entry.read()
    data = raw.data
    n = data.num_rows
    lines = np.asarray(raw.line_numbers(), dtype=np.int64) if n else np.zeros(0, np.int64)
    cols = [str(c) for c in data.column_names]
    arrays = [build._arr(c) if not isinstance(c, pa.Array) else c for c in data.columns]
    arrays = [a.cast(pa.string()) if pa.types.is_large_string(a.type) else a for a in arrays]
    arrays = [a.cast(a.type.value_type) if pa.types.is_dictionary(a.type) else a for a in arrays]
    tbl = pa.table(
        [pa.array(np.arange(n, dtype=np.int64)), pa.array(lines), *arrays],
        names=["_rid", "_line", *cols],
    )
    t = be.register(tbl, f"raw_{entry.name}")
    sources = list(raw.sources) + [(entry.name, str(p), *sha256_file(p)) for p in raw.unhashed]
    return EngineRaw(
        entry.name, t, cols, raw.file, raw.line_label, raw.options, raw.na_applied, n,
        findings=list(raw.findings), bad_rows=list(raw.bad_rows),
        cell_problems=list(raw.cell_problems), lines=raw.line_numbers(), sources=sources,
    )


def load_raw(be: Backend, entry: SourceEntry) -> EngineRaw:
    """One table into the engine (raises :class:`ReadFailure` as the readers do)."""
    raw = _load_raw(be, entry)
    raw.engine = be.engine
    return raw


def _load_raw(be: Backend, entry: SourceEntry) -> EngineRaw:
    if entry.failure is not None:
        raise entry.failure
    # sources beyond one file per table (engines/sources.py)
    if entry.kind == "dataset" or (
        be.engine == "spark" and entry.kind == "file" and entry.path is not None
        and entry.path.suffix.lower() in (".parquet", ".pq")
    ):
        return sources_mod.engine_dataset(be, entry)
    if entry.kind == "catalog" and be.engine == "spark":
        return sources_mod.spark_catalog(be, entry)
    if entry.kind == "database" and be.engine == "duckdb":
        got_db = sources_mod.duckdb_database(be, entry)
        if got_db is not None:
            return got_db
    if (entry.kind == "file" and be.engine == "spark" and entry.path is not None
            and entry.path.suffix.lower() in CSV_SUFFIXES and entry.path.stat().st_size > 0):
        got_csv = sources_mod.spark_csv(be, entry)
        if got_csv is not None:
            return got_csv
    path = entry.path
    if entry.kind == "file" and path is not None:
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            return _parquet(be, entry)
        if suffix in CSV_SUFFIXES and be.engine == "duckdb" and path.stat().st_size > 0:
            got = _duckdb_csv(be, entry)
            if got is not None:
                return got
    return _via_reader(be, entry)


# ---------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def _stages(show: bool, total: int) -> Iterator[Any]:
    """A rich progress bar over the loader's stages (a no-op when ``show`` is false)."""
    if not show:
        yield lambda _text: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), transient=False,
    ) as bar:
        task = bar.add_task("loading", total=total)

        def step(text: str) -> None:
            bar.update(task, advance=1, description=text)

        yield step


def read_program_engine(
    res: ResolvedSource,
    *,
    engine: str,
    as_of: Any,
    on_error: str,
    database: str | Path | None,
    memory_limit: str | None,
    spark: Any,
    progress: bool = False,
    max_findings: int | None = MAX_FINDINGS,
) -> EngineProgramData:
    """Read, type and validate every table on ``engine`` (see :func:`recoverystats.read_program`)."""
    cutoff = build.parse_as_of(as_of)
    drop_mode = on_error == "drop"
    be = connect(engine, database=database, memory_limit=memory_limit, spark=spark)
    pre = list(res.findings)
    sources = list(res.sources)
    raws: dict[str, EngineRaw] = {}
    built: dict[str, Built] = {}
    n_entries = len(res.entries)
    with _stages(progress, 3 * n_entries + 1) as step:
        for entry in res.entries:
            step(f"read {entry.name}")
            try:
                raws[entry.name] = load_raw(be, entry)
            except ReadFailure as exc:
                from recoverystats.io.read import failure_finding

                pre.append(failure_finding(exc, entry.name, entry.display))
                continue
            sources.extend(raws[entry.name].sources)
        for name in TABLE_NAMES:
            if name in raws:
                step(f"type and check {name}")
                built[name] = build_table(raws[name], be, max_findings)
        if "participants" not in built and not any(f["severity"] == "error" for f in pre):
            pre.append(
                file_finding(
                    "table_missing",
                    "participants",
                    str(res.src) or "<source>",
                    "no participants table was found (participants.csv/.parquet/.xlsx/.sav/.dta "
                    "or [tables.participants] in program.toml)",
                )
            )
        for name in TABLE_NAMES:
            b = built.get(name)
            if b is None or b.fatal:
                continue
            step(f"row and cross-table rules {name}")
            row_rules(b, built, cutoff, drop_mode, be, max_findings)
        findings = pre + [f for b in built.values() for f in b.findings]
        fatal = any(b.fatal for b in built.values()) or any(
            f["severity"] == "error" and RULES[f["rule"]].scope != "row" and f.get("_pos") is None
            for f in findings
        )
        has_errors = fatal or any(b.error_count or b.raw.bad_rows for b in built.values())
        counts = _finding_counts(findings, built)
        validation = build._validation_frame(findings, drop_mode and not fatal)
        # tables read from several Parquet files: findings name each row's file and row
        sources_mod.relabel(validation, {n: r.parts for n, r in raws.items() if r.parts is not None})
        build.raise_for_errors(
            validation, fatal=fatal, has_errors=has_errors, drop_mode=drop_mode, source=str(res.src)
        )
        step("store the validated tables")
        tables: dict[str, ir.Table] = {}
        flow = []
        for name in TABLE_NAMES:
            b = built.get(name)
            if b is None:
                flow.append((name, 0, 0, 0))
                continue
            assert b.s2 is not None
            s2 = b.s2
            from recoverystats.schema.spec import TABLES

            keep = ["_rid", *[c.name for c in TABLES[name].columns], *b.extras]
            if be.engine == "duckdb" and b.removed is not None and b.final is not None:
                # the removed rows are known by row id (fetched with the findings)
                kept_rows = b.final
                if len(b.removed):
                    gone = be.register(pa.table({"_gone": pa.array(b.removed, pa.int64())}), f"gone_{name}")
                    kept_rows = kept_rows.anti_join(gone, kept_rows["_rid"] == gone["_gone"])
                final = be.persist(kept_rows.select(*keep), name)
            else:
                final = be.persist(s2.filter(~s2["_remove"]).select(*keep), name)
            tables[name] = final
            kept = int(final.count().to_pyarrow().as_py())
            flow.append((name, b.rows_read, kept, b.rows_read - kept))
        be.drop_scratch()
    import pandas as pd

    from recoverystats.io.program import FLOW_COLUMNS, SOURCE_COLUMNS

    return EngineProgramData(
        engine=engine,
        backend=be.con,
        _tables=tables,
        validation=validation,
        flow=pd.DataFrame(flow, columns=list(FLOW_COLUMNS)),
        sources=pd.DataFrame(_resolve_sources(sources), columns=list(SOURCE_COLUMNS)),
        as_of=cutoff,
        source=str(res.src),
        labels=res.mapping.labels or {},
        info={"program": dict(res.mapping.identity), "design": dict(res.mapping.design)},
        finding_counts=counts,
        session=be.session,
    )


def _finding_counts(findings: list[dict[str, Any]], built: dict[str, Built]) -> Any:
    """Rows flagged per (table, rule, column, severity): the full count even when fetching was capped."""
    import pandas as pd

    capped = {(t, r, c): n for b in built.values() for (t, r, c, _s, n) in b.counts}
    rows: dict[tuple[str, str, str, str], int] = {}
    for f in findings:
        key = (f["table"], f["rule"], f.get("column") or "", f["severity"])
        k = len(f["message"]) if f.get("_block") else 1
        rows[key] = rows.get(key, 0) + k
    for (t, r, c), n in capped.items():
        key = (t, r, c or "", RULES[r].severity)
        if key in rows and n > rows[key]:
            rows[key] = n
    return pd.DataFrame(
        [(*k, v) for k, v in rows.items()], columns=["table", "rule", "column", "severity", "findings"]
    )


__all__ = ["read_program_engine", "connect", "spark_session", "MAX_FINDINGS"]
