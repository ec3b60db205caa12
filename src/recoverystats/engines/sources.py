"""Table sources beyond one file: partitioned Parquet, database and catalog tables, Spark CSV.

What ``read_program`` accepts as a table's source, besides one file per table
(``docs/scale.md``, "Sources"):

- **a directory or a glob of Parquet files** (``events/`` next to the other files, or
  ``[tables.events] file = "events/"`` / ``file = "lake/events/**/*.parquet"``),
  including Hive-partitioned directories (``events/year=2024/part-0.parquet``). The
  files are read in sorted path order on every engine (pandas: ``pyarrow.parquet``
  per file; DuckDB: ``read_parquet`` with ``file_index`` and ``file_row_number``;
  Spark: ``_metadata.file_path`` and ``_metadata.row_index``), so every engine
  numbers a row the same way: by its file and its row within that file. A finding
  names that file and row (``events/year=2024/part-1.parquet row 3``), as it names
  the row of a single Parquet file. A partition key that is a column of the table's
  schema (after ``rename``) becomes a text column typed like the others; other keys
  (``year``) are ignored with a ``partition_ignored`` note; a key that is also a
  column inside the files is the file's column;
- **a table of a DuckDB database file** (``database = "warehouse.duckdb"`` with
  ``table = "events"`` or ``query = "SELECT ..."``): ``engine="duckdb"`` attaches the
  file read-only and reads the table in place (the pandas engine reads it through
  DuckDB into memory). Rows are numbered in the table's storage order (``rowid``), or
  for a query in the order the query returns them;
- **a Spark catalog table** (``table = "db.events"`` without ``database``):
  ``engine="spark"`` reads ``spark.table("db.events")``. Catalog tables have no row
  order: a table stored as Parquet files is numbered by file (sorted path) and row
  within the file; any other table in the order Spark scans it (partition by
  partition), which is stable for unchanged files but is not a property of the data.
  Findings name ``table db.events row N``;
- **plain CSV files on Spark**: ``spark.read.csv`` with every column as text and each
  row's exact line number (see :func:`spark_csv`).

Hand-written: no library maps engine rows back to the files and rows they came from.
"""

from __future__ import annotations

import dataclasses
import glob as _glob
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from recoverystats.io.readers import (
    DUCKDB_SUFFIXES,
    RawTable,
    ReadFailure,
    _decode_dictionaries,
    file_finding,
    sha256_file,
)
from recoverystats.schema.spec import TABLES

if TYPE_CHECKING:
    from recoverystats.engines.load import Backend
    from recoverystats.engines.validate import EngineRaw
    from recoverystats.io.mapping import TableMapping
    from recoverystats.io.read import SourceEntry

#: Suffixes of the files a Parquet directory or glob is made of.
PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARS = frozenset("*?[")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def is_glob(given: str) -> bool:
    """Whether a ``file =`` value is a glob pattern (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in given)


# ---------------------------------------------------------------------------
# partitioned Parquet
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class Dataset:
    """A table stored as several Parquet files (internal).

    ``files`` in sorted path order; ``displays`` how findings name each file;
    ``partitions`` the Hive ``key=value`` pairs of each file's directories;
    ``offsets[i]`` the number of rows in the files before file ``i`` (``offsets[-1]``:
    all rows).
    """

    display: str
    files: list[Path]
    displays: list[str]
    partitions: list[dict[str, str | None]]
    keys: list[str]
    offsets: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.offsets[-1])

    def locate(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index, 1-based row within the file) of 1-based global rows."""
        g = np.asarray(row, dtype=np.int64)
        idx = np.searchsorted(self.offsets, g - 1, side="right") - 1
        idx = np.clip(idx, 0, len(self.files) - 1)
        return idx, g - self.offsets[idx]


def _hidden(rel: Path) -> bool:
    # Spark/Hive write _SUCCESS, _common_metadata, .crc files next to the data
    return any(part.startswith((".", "_")) for part in rel.parts)


def has_parquet(folder: Path) -> bool:
    """Whether a directory holds at least one Parquet file (at any depth)."""
    return any(p.suffix.lower() in PARQUET_SUFFIXES for p in folder.rglob("*"))


def find_dataset(target: Path, given: str, root: Path, display: str) -> Dataset:
    """The Parquet files of a directory or glob, with their partitions and row counts.

    ``target``: the directory, or the glob pattern as a path; ``root``: the folder
    displays are relative to. Raises :class:`ReadFailure` when no file matches or a
    file is not Parquet.
    """
    import pyarrow.parquet as pq

    if target.is_file():  # one file: the engine's numbering of a single Parquet file
        base = target.parent
        paths = [target]
    elif is_glob(given):
        pattern = str(target)
        base = Path(pattern[: min(pattern.index(c) for c in _GLOB_CHARS if c in pattern)])
        base = base if str(base).endswith(("/", "\\")) else base.parent
        paths = [Path(p) for p in _glob.glob(pattern, recursive=True)]
    else:
        base = target
        paths = [p for p in target.rglob("*")]
    files = sorted(
        (p for p in paths if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
         and not _hidden(p.relative_to(base) if p.is_relative_to(base) else Path(p.name))),
        key=lambda p: str(p),
    )
    if not files:
        raise ReadFailure(
            "file_missing",
            f"{display}: no Parquet files (.parquet, .pq) found (looked in {target})",
        )
    displays: list[str] = []
    partitions: list[dict[str, str | None]] = []
    keys: list[str] = []
    counts: list[int] = []
    for f in files:
        if target.is_file():
            displays.append(display)
        else:
            try:
                displays.append(str(f.relative_to(root)))
            except ValueError:
                displays.append(str(f))
        parts: dict[str, str | None] = {}
        rel = f.relative_to(base) if f.is_relative_to(base) else Path(f.name)
        for seg in rel.parts[:-1]:
            if "=" in seg:
                k, v = seg.split("=", 1)
                k = urllib.parse.unquote(k)
                v = urllib.parse.unquote(v)
                parts[k] = None if v == _HIVE_NULL else v
                if k not in keys:
                    keys.append(k)
        partitions.append(parts)
        try:
            counts.append(pq.read_metadata(f).num_rows)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadFailure(
                "file_unreadable", f"{displays[-1]}: cannot read as Parquet: {exc}"
            ) from None
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Dataset(display, files, displays, partitions, keys, offsets)


def _partition_columns(
    ds: Dataset, name: str, opts: TableMapping, file_columns: list[str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Partition keys kept as columns (schema columns, after ``rename``) and the notes on the others."""
    schema = {c.name for c in TABLES[name].columns}
    kept: list[str] = []
    notes: list[dict[str, Any]] = []
    for k in ds.keys:
        if k in file_columns:
            notes.append(file_finding(
                "partition_ignored", name, ds.display,
                f"partition key {k!r} is also a column inside the files; the files' column is used",
                column=k,
            ))
        elif opts.rename.get(k, k) in schema:
            kept.append(k)
        else:
            notes.append(file_finding(
                "partition_ignored", name, ds.display,
                f"partition key {k!r} is not a column of {name}; ignored",
                column=k,
            ))
    return kept, notes


def _file_columns(ds: Dataset) -> list[str]:
    """Column names across the files, in first-seen order (the union, as every engine reads them)."""
    import pyarrow.parquet as pq

    cols: list[str] = []
    for f in ds.files:
        for c in pq.read_schema(f).names:
            if c not in cols:
                cols.append(c)
    return cols


def read_dataset(ds: Dataset, name: str, opts: TableMapping) -> RawTable:
    """The pandas engine's reading of a Parquet directory/glob (rows numbered within the whole set)."""
    import pyarrow.parquet as pq

    file_cols = _file_columns(ds)
    keep, notes = _partition_columns(ds, name, opts, file_cols)
    tables = []
    sources = []
    for f, disp, parts in zip(ds.files, ds.displays, ds.partitions, strict=True):
        digest, size = sha256_file(f)
        sources.append((name, str(f), digest, size))
        try:
            t = _decode_dictionaries(pq.read_table(f))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadFailure("file_unreadable", f"{disp}: cannot read as Parquet: {exc}") from None
        for k in keep:
            t = t.append_column(k, pa.repeat(pa.scalar(parts.get(k), pa.string()), t.num_rows))
        tables.append(t)
    try:
        data = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ReadFailure(
            "file_unreadable", f"{ds.display}: the Parquet files do not share a schema: {exc}"
        ) from None
    data = data.select([*file_cols, *keep])
    return RawTable(
        name=name, data=data, file=ds.display, first_line=1, line_label="row",
        options=opts, findings=notes, sources=sources, parts=ds,
    )


def _dataset_sources(name: str, ds: Dataset) -> list[tuple[str, str, str | None, int]]:
    return [(name, str(f), *sha256_file(f)) for f in ds.files]


def engine_dataset(be: Backend, entry: SourceEntry) -> EngineRaw:
    """A Parquet directory/glob read by DuckDB or Spark, ``_rid`` = position in the whole set.

    Spark reads a single Parquet file this way too (``_metadata.row_index`` numbers its
    rows without the single-partition window a row number over the whole file needs).
    """
    from recoverystats.engines.validate import EngineRaw

    ds = entry.dataset
    if ds is None:  # one Parquet file
        assert entry.path is not None
        ds = find_dataset(entry.path, str(entry.path), entry.path.parent, entry.display)
    file_cols = _file_columns(ds)
    keep, notes = _partition_columns(ds, entry.name, entry.options, file_cols)
    try:
        if be.engine == "duckdb":
            # ``file_index`` (the file's position in the list) picks its offset and
            # partition values from constant lists: no join, no file name per row
            con = be.con.con
            flist = "[" + ", ".join(_sql_str(f) for f in ds.files) + "]"
            fi = "(CAST(p.file_index AS BIGINT) + 1)"
            off = "([" + ", ".join(str(int(o)) for o in ds.offsets[:-1]) + f"]::BIGINT[])[{fi}]"
            pk = "".join(
                ", ([" + ", ".join("NULL" if p.get(k) is None else _sql_str(p[k]) for p in ds.partitions)
                + f"]::VARCHAR[])[{fi}] AS {_q(k)}"
                for k in keep
            )
            view = be.name(f"rawv_{entry.name}")
            con.execute(
                f'CREATE TEMP VIEW "{view}" AS SELECT p.file_row_number + {off} AS _rid, '
                f"p.file_row_number + {off} + 1 AS _line, {', '.join('p.' + _q(c) for c in file_cols)}{pk} "
                f"FROM read_parquet({flist}, file_row_number = true, union_by_name = true, "
                "hive_partitioning = false) p"
            )
            t = be.con.table(view)
        else:
            from pyspark.sql import functions as F

            sess = be.session
            sdf = sess.read.option("mergeSchema", "true").parquet(*[str(f) for f in ds.files])
            sdf = sdf.select(
                *[F.col(_bq(c)) for c in file_cols],
                F.col("_metadata.file_path").alias("_fp"),
                F.col("_metadata.row_index").alias("_ri"),
            )
            paths = [r[0] for r in sdf.select("_fp").distinct().collect()]
            by_path = {str(Path(f).resolve()): i for i, f in enumerate(ds.files)}
            fmap = []
            for p in paths:
                local = str(Path(urllib.parse.unquote(urllib.parse.urlparse(p).path)).resolve())
                fmap.append((p, int(by_path[local])))
            frows = [
                (p, int(ds.offsets[i]), *[ds.partitions[i].get(k) for k in keep]) for p, i in fmap
            ]
            from pyspark.sql import types as T

            fschema = T.StructType(
                [T.StructField("_fp", T.StringType()), T.StructField("_off", T.LongType())]
                + [T.StructField(f"_pk_{i}", T.StringType()) for i in range(len(keep))]
            )
            fdf = sess.createDataFrame(frows, schema=fschema)
            sdf = sdf.join(F.broadcast(fdf), on="_fp")
            sdf = sdf.select(
                (F.col("_ri") + F.col("_off")).alias("_rid"),
                (F.col("_ri") + F.col("_off") + 1).alias("_line"),
                *[F.col(_bq(c)) for c in file_cols],
                *[F.col(f"_pk_{i}").alias(k) for i, k in enumerate(keep)],
            )
            view = be.name(f"raw_{entry.name}")
            sdf.createOrReplaceTempView(view)
            t = be.con.table(view)
    except ReadFailure:
        raise
    except Exception as exc:  # the engine's own error type
        raise ReadFailure("file_unreadable", f"{ds.display}: cannot read as Parquet: {exc}") from None
    cols = [*file_cols, *keep]
    t = t.select("_rid", "_line", *cols)
    return EngineRaw(
        entry.name, t, cols, ds.display, "row", entry.options, False, ds.rows,
        findings=notes, sources=_dataset_sources(entry.name, ds), parts=ds,
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bq(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_str(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# findings: global row -> file and row within it
# ---------------------------------------------------------------------------
_ROWS = re.compile(r"\b(rows?) (\d+(?:, \d+)*)\b")


def relabel(validation: pd.DataFrame, parts: dict[str, Dataset]) -> None:
    """Name the file and the row within it in the findings of multi-file tables (in place).

    The validation of a multi-file table numbers its rows 1..n across the files (in
    sorted path order); here each finding's ``file``, ``line`` and message are turned
    into the file and the row within it. Findings of other tables that point at such
    a row (``... dropped from events/ (row 12)``) are rewritten too. The frame's order
    (by table, then row) is unchanged: sorting by the global row is sorting by file,
    then row.
    """
    if not parts or validation.empty:
        return
    files = validation["file"].astype(object).to_numpy()
    lines = validation["line"]
    messages = validation["message"].astype(object).to_numpy().copy()
    tables = validation["table"].astype(object).to_numpy()
    # a parent_dropped message names a row of another table (the parent): only its head
    # is this table's row
    parent_ref = (validation["rule"] == "parent_dropped").to_numpy()
    new_file = files.copy()
    new_line = lines.copy()
    changed = False
    for table, ds in parts.items():
        if len(ds.files) <= 1 and ds.displays[0] == ds.display:
            continue
        mine = np.flatnonzero((tables == table) & (files == ds.display))
        if len(mine):
            changed = True
            has_line = lines.iloc[mine].notna().to_numpy()
            at = mine[has_line]
            g = lines.iloc[at].to_numpy(dtype=np.int64)
            idx, row = ds.locate(g)
            head_old = [f"{ds.display} row {x}" for x in g.tolist()]
            for j, p in enumerate(at.tolist()):
                m = messages[p]
                new_head = f"{ds.displays[idx[j]]} row {row[j]}"
                if m.startswith(head_old[j]):
                    rest = m[len(head_old[j]):]
                    messages[p] = new_head + (rest if parent_ref[p] else _body(rest, ds))
                elif not parent_ref[p]:
                    messages[p] = _body(m, ds)
                new_file[p] = ds.displays[idx[j]]
            new_line.iloc[at] = row
            for p in mine[~has_line].tolist():
                m = messages[p]
                if m.startswith(ds.display):
                    messages[p] = ds.display + _body(m[len(ds.display):], ds)
        # references to this table's rows from other tables: "<display> (row N)"
        ref = re.compile(re.escape(ds.display) + r" \(row (\d+)\)")
        for p in np.flatnonzero((tables != table) & parent_ref).tolist():
            m = messages[p]
            if ds.display in m:
                def sub(mt: re.Match[str], ds: Dataset = ds) -> str:
                    i, r = ds.locate(np.array([int(mt.group(1))]))
                    return f"{ds.displays[int(i[0])]} (row {int(r[0])})"

                new = ref.sub(sub, m)
                if new != m:
                    messages[p] = new
                    changed = True
    if not changed:
        return
    validation["file"] = pd.array(new_file, dtype=validation["file"].dtype)
    validation["line"] = new_line
    validation["message"] = pd.array(messages, dtype=validation["message"].dtype)


def _body(text: str, ds: Dataset) -> str:
    """``row 12`` / ``rows 3, 12`` in a message body as ``<file> row <n>``."""
    if "row" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        nums = np.array([int(x) for x in m.group(2).split(", ")])
        idx, row = ds.locate(nums)
        return ", ".join(f"{ds.displays[i]} row {r}" for i, r in zip(idx.tolist(), row.tolist(), strict=True))

    # the fix text (after "; fix: ") names no rows
    cut = text.find("; fix: ")
    head, tail = (text, "") if cut < 0 else (text[:cut], text[cut:])
    return _ROWS.sub(sub, head) + tail


# ---------------------------------------------------------------------------
# DuckDB database files and Spark catalog tables
# ---------------------------------------------------------------------------
def duckdb_database(be: Backend, entry: SourceEntry) -> EngineRaw | None:
    """A table (or query) of a DuckDB database file, read in place by ``engine="duckdb"``.

    The file is attached read-only. ``table =``: a view over the table when its
    ``rowid`` is dense (rows numbered by storage order, as ``SELECT *`` returns them),
    else a copy in that order; ``query =``: the query's result copied into a temporary
    table in the order it returns. None for a SQLite file (read through the readers).
    """
    from recoverystats.engines.validate import EngineRaw

    path = entry.path
    opts = entry.options
    assert path is not None
    kind = opts.engine or ("duckdb" if path.suffix.lower() in DUCKDB_SUFFIXES else "sqlite")
    if kind != "duckdb":
        return None
    import duckdb

    from recoverystats.engines.load import in_file_order

    con = be.con.con
    alias = be.name("src")
    where = f"{entry.display} (query for table {entry.name})"
    name = be.name(f"raw_{entry.name}")
    view = be.name(f"rawv_{entry.name}")
    try:
        con.execute(f"ATTACH {_sql_str(path)} AS {_q(alias)} (READ_ONLY)")
        if opts.query is None:
            src = f'{_q(alias)}.{_q(str(opts.sql_table))}'
            n, top = con.execute(f"SELECT count(*), max(rowid) FROM {src}").fetchone()
            if n == 0 or top == n - 1:
                con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT rowid AS _rid, rowid + 1 AS _line, * FROM {src}')
            else:
                with in_file_order(con):
                    con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM {src} ORDER BY rowid')
                con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT rowid AS _rid, rowid + 1 AS _line, * FROM "{name}"')
        else:
            current = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"USE {_q(alias)}")
            try:
                with in_file_order(con):  # the query's order, as the readers take it
                    con.execute(f'CREATE TEMP TABLE "{name}" AS {opts.query}')
            finally:
                con.execute(f"USE {_q(current)}")
            con.execute(f'CREATE TEMP VIEW "{view}" AS SELECT rowid AS _rid, rowid + 1 AS _line, * FROM "{name}"')
        t = be.con.table(view)
    except duckdb.Error as exc:
        raise ReadFailure("sql_error", f"{where}: the query failed: {exc}") from None
    cols = [c for c in t.columns if c not in ("_rid", "_line")]
    # ENUM and other dictionary-like types arrive as text (as the readers decode them)
    casts = {}
    for c, typ in t.schema().items():
        if c in cols and not (typ.is_numeric() or typ.is_temporal() or typ.is_boolean() or typ.is_string()):
            casts[c] = t[c].cast("string")
    if casts:
        t = t.mutate(**casts)
    t = t.select("_rid", "_line", *cols)
    rows = int(t.count().to_pyarrow().as_py())
    digest, size = sha256_file(path)
    return EngineRaw(
        entry.name, t, cols, entry.display, "row", opts, False, rows,
        sources=[(entry.name, str(path), digest, size)],
    )


def catalog_display(table: str) -> str:
    """How findings name a catalog table."""
    return f"table {table}"


def spark_catalog(be: Backend, entry: SourceEntry) -> EngineRaw:
    """A Spark catalog table (``table = "db.events"``), rows numbered as the module docstring says."""
    from pyspark.sql import functions as F

    from recoverystats.engines.validate import EngineRaw

    table = str(entry.options.sql_table)
    sess = be.session
    try:
        sdf = sess.table(table)
    except Exception as exc:  # AnalysisException: no such table
        raise ReadFailure("file_missing", f"{entry.display}: Spark has no table {table!r}: {exc}") from None
    cols = list(sdf.columns)
    try:
        meta = sdf.select(
            *[F.col(_bq(c)) for c in cols],
            F.col("_metadata.file_path").alias("_fp"),
            F.col("_metadata.row_index").alias("_ri"),
        )
        per = meta.groupBy("_fp").count().collect()
    except Exception:  # not a file-based Parquet table: number rows in scan order
        meta = None
    if meta is not None:
        per = sorted((r["_fp"], int(r["count"])) for r in per)
        off = np.concatenate([[0], np.cumsum([c for _, c in per])]).astype(np.int64)
        fdf = sess.createDataFrame([(p, int(o)) for (p, _), o in zip(per, off[:-1], strict=True)], "_fp string, _off long")
        sdf = meta.join(F.broadcast(fdf), on="_fp").select(
            (F.col("_ri") + F.col("_off")).alias("_rid"), *[F.col(_bq(c)) for c in cols]
        )
        rows = int(off[-1])
    else:
        sdf, rows, _ = _scan_order(sess, sdf, cols)
    sdf = sdf.withColumn("_line", F.col("_rid") + 1)
    view = be.name(f"raw_{entry.name}")
    sdf.createOrReplaceTempView(view)
    t = be.con.table(view).select("_rid", "_line", *cols)
    return EngineRaw(
        entry.name, t, cols, entry.display, "row", entry.options, False, rows,
        sources=[(entry.name, f"spark:{table}", None, 0)],
    )


def _scan_order(
    sess: Any, sdf: Any, cols: list[str], block: bool = False, checks: dict[str, Any] | None = None
) -> tuple[Any, int, dict[str, int]]:
    """``_rid`` = position in Spark's scan order (split by split); the row count; check sums.

    ``monotonically_increasing_id`` numbers rows consecutively within a partition; the
    splits (``input_file_block_start``, or the partition id) are ordered and offset by
    the rows before them. Exact and scalable: one small aggregate per split is collected
    (in the same pass, the sums of the 0/1 ``checks`` columns over all rows).
    """
    from pyspark.sql import functions as F

    checks = checks or {}
    mid = F.monotonically_increasing_id()
    key = F.input_file_block_start() if block else F.spark_partition_id()
    s = sdf.select(*[F.col(_bq(c)) for c in cols], mid.alias("_mid"), key.alias("_blk"))
    aggs = [F.count(F.lit(1)).alias("n"), F.min("_mid").alias("m")]
    if checks:
        extra = sdf.select(*[F.col(_bq(c)) for c in cols], *[e.cast("long").alias(k) for k, e in checks.items()],
                           mid.alias("_mid"), key.alias("_blk"))
        aggs += [F.sum(k).alias(k) for k in checks]
        per_rows = extra.groupBy("_blk").agg(*aggs).collect()
    else:
        per_rows = s.groupBy("_blk").agg(*aggs).collect()
    totals = {k: int(sum((r[k] or 0) for r in per_rows)) for k in checks}
    per = sorted((int(r["_blk"]), int(r["n"]), int(r["m"])) for r in per_rows)
    off = np.concatenate([[0], np.cumsum([n for _, n, _ in per])]).astype(np.int64)
    bdf = sess.createDataFrame(
        [(b, int(o) - m) for (b, _, m), o in zip(per, off[:-1], strict=True)], "_blk long, _shift long"
    )
    out = s.join(F.broadcast(bdf), on="_blk").select(
        (F.col("_mid") + F.col("_shift")).alias("_rid"), *[F.col(_bq(c)) for c in cols]
    )
    return out, int(off[-1]), totals


# ---------------------------------------------------------------------------
# plain CSV on Spark
# ---------------------------------------------------------------------------
def _scan_text(path: Path) -> tuple[int, bool, bool]:
    """(lines, whether a lone carriage return appears, whether the file is valid UTF-8).

    The line count of :func:`recoverystats.engines.load._count_lines`, plus a UTF-8
    check in the same pass (ASCII chunks, the usual case, need no decoding).
    """
    import codecs

    n = cr = 0
    last = b""
    dec = codecs.getincrementaldecoder("utf-8")()
    ok = True
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            cr += chunk.count(b"\r")
            last = chunk[-1:]
            if ok and not chunk.isascii():
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    ok = False
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        ok = False
    lines = n + (1 if last not in (b"\n", b"") else 0)
    return lines, cr not in (0, n), ok


def spark_csv(be: Backend, entry: SourceEntry) -> EngineRaw | None:
    """A plain CSV read by Spark itself (``spark.read.csv``), or None to use the readers.

    *Plain* is the DuckDB path's check (:func:`recoverystats.engines.load._plain_csv_header`
    and the line count: UTF-8 -- here checked over the whole file, as DuckDB's reader
    does --, header on line 1, one record per line, no blank lines) plus Spark's own: no malformed record (a row with too few or too many
    fields) and no all-empty row, with Spark's row count equal to the file's lines − 1.
    Then a row's line number is its position + 2; the position is exact because a
    single file's splits are read in order (``input_file_block_start``) and rows are
    numbered consecutively within a split (see :func:`_scan_order`). Every column is
    read as text; the NA markers are applied by the validation (as for Parquet text).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from recoverystats.engines.load import _plain_csv_header
    from recoverystats.engines.validate import EngineRaw

    path = entry.path
    assert path is not None
    opts = entry.options
    if "" not in opts.na_markers:
        return None  # Spark reads an empty unquoted field as null; the readers would keep ""
    header = _plain_csv_header(path, entry)
    if header is None:
        return None
    lines, lone_cr, utf8 = _scan_text(path)
    if lone_cr or not utf8:
        return None  # Spark would replace bytes that are not UTF-8; the readers report them
    delimiter = opts.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    corrupt = "_rs_corrupt_record"
    # Spark's column names: positional (the header may repeat names after stripping)
    names = [f"_c{i}" for i in range(len(header))]
    schema = T.StructType([T.StructField(n, T.StringType(), True) for n in names]
                          + [T.StructField(corrupt, T.StringType(), True)])
    sess = be.session
    sdf = sess.read.csv(
        str(path), schema=schema, header=True, sep=delimiter, quote='"', escape='"',
        encoding="UTF-8", mode="PERMISSIVE", columnNameOfCorruptRecord=corrupt, multiLine=False,
        ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False, enforceSchema=True,
    )
    all_null = F.lit(True)
    for n in names:
        all_null = all_null & F.col(n).isNull()
    # one pass: the rows of each split (for the numbering) and the plainness checks
    s, rows, bad = _scan_order(sess, sdf, names, block=True,
                               checks={"bad": F.col(corrupt).isNotNull(), "empty": all_null})
    if rows + 1 != lines or bad["bad"] or (len(names) > 1 and bad["empty"]):
        return None
    s = s.select(
        "_rid", (F.col("_rid") + 2).alias("_line"),
        *[F.col(n).alias(h) for n, h in zip(names, header, strict=True)],
    )
    view = be.name(f"raw_{entry.name}")
    s.createOrReplaceTempView(view)
    t = be.con.table(view)
    digest, size = sha256_file(path)
    return EngineRaw(
        entry.name, t, list(header), entry.display, "line", opts, False, rows,
        sources=[(entry.name, str(path), digest, size)],
    )


__all__ = [
    "Dataset",
    "find_dataset",
    "read_dataset",
    "engine_dataset",
    "relabel",
    "duckdb_database",
    "spark_catalog",
    "spark_csv",
    "is_glob",
]
