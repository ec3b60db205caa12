"""``read_program``: load a program's exports onto the canonical data model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from recoverystats._checks import check_option
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.io.mapping import ProgramMapping, TableMapping, load_mapping
from recoverystats.io.program import ProgramData
from recoverystats.io.readers import (
    SUFFIXES,
    RawTable,
    ReadFailure,
    read_file,
    read_sql,
    sha256_file,
)
from recoverystats.schema.rules import RULES
from recoverystats.schema.spec import TABLE_NAMES

if TYPE_CHECKING:
    from recoverystats.engines.program import EngineProgramData

MAPPING_NAME = "program.toml"


def _failure(exc: ReadFailure, table: str, file: str) -> dict[str, Any]:
    r = RULES[exc.rule]
    return {
        "rule": exc.rule,
        "severity": r.severity,
        "table": table,
        "file": file,
        "line": None,
        "column": exc.column,
        "value": exc.value,
        "message": f"{exc.message}; fix: {r.fix_text(table=table, column=exc.column)} [{exc.rule}]",
        "action": "rejected" if r.severity == "error" else "",
    }


def _mapped_path(given: str, root: Path, table: str, key: str) -> Path:
    """A ``file``/``database`` path of ``[tables.<table>]``, confined to the mapping's folder.

    A relative path is resolved against ``root`` (the folder holding ``program.toml``)
    and must stay inside it after ``..`` and symbolic links are resolved; reading a file
    elsewhere takes an absolute path, written out in the mapping. Hand-written: a few
    lines of :mod:`pathlib`.
    """
    path = Path(given)
    if path.is_absolute():
        return path
    full = root / path
    inside = root.resolve()
    target = full.resolve()
    if target != inside and inside not in target.parents:
        raise ReadFailure(
            "mapping_invalid",
            f"program.toml [tables.{table}] {key} = {given!r} points outside the mapping's "
            f"folder {str(root)!r}; relative paths must stay inside it (write an absolute path "
            "to read a file elsewhere on purpose)",
        )
    return full


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


@dataclasses.dataclass
class SourceEntry:
    """One table's source as the mapping and the folder name it (internal)."""

    name: str
    kind: Literal["database", "file", "failure", "dataset", "catalog"]
    path: Path | None
    display: str
    options: TableMapping
    failure: ReadFailure | None = None
    #: ``kind="dataset"``: the Parquet files (:class:`recoverystats.engines.sources.Dataset`)
    dataset: Any = None

    def read(self) -> RawTable:
        """Read with the pandas path's readers (raises :class:`ReadFailure`)."""
        if self.failure is not None:
            raise self.failure
        if self.kind == "dataset":
            from recoverystats.engines.sources import read_dataset

            return read_dataset(self.dataset, self.name, self.options)
        if self.kind == "catalog":
            raise ReadFailure(
                "mapping_invalid",
                f"{self.display}: [tables.{self.name}] table = {self.options.sql_table!r} without "
                "database names a Spark catalog table, which only engine='spark' reads; give "
                "database = \"<file>\" for a table of a SQLite or DuckDB file",
            )
        assert self.path is not None
        if self.kind == "database":
            return read_sql(self.path, self.name, self.options, self.display)
        return read_file(self.path, self.name, self.options, self.display, defer_hash=True)


@dataclasses.dataclass
class ResolvedSource:
    """What ``read_program`` reads: the mapping, each table's source and folder-level findings."""

    src: Path
    mapping: ProgramMapping
    mapping_path: Path | None
    root: Path
    entries: list[SourceEntry]
    findings: list[dict[str, Any]]
    sources: list[tuple[str, str, str | None, int]]


def _is_glob(given: str) -> bool:
    from recoverystats.engines.sources import is_glob

    return is_glob(given)


def _has_parquet(folder: Path) -> bool:
    from recoverystats.engines.sources import has_parquet

    return has_parquet(folder)


def _catalog_display(table: str) -> str:
    from recoverystats.engines.sources import catalog_display

    return catalog_display(table)


def _dataset_entry(
    name: str, path: Path, given: str, root: Path, display: str, opts: TableMapping
) -> SourceEntry:
    """A directory or glob of Parquet files as one table's source (raises :class:`ReadFailure`)."""
    from recoverystats.engines.sources import find_dataset

    ds = find_dataset(path, given, root, display)
    return SourceEntry(name, "dataset", path, display, opts, dataset=ds)


def failure_finding(exc: ReadFailure, table: str, file: str) -> dict[str, Any]:
    """A :class:`ReadFailure` as a validation finding."""
    return _failure(exc, table, file)


def resolve_source(
    source: str | Path, mapping: str | Path | Mapping[str, Any] | None = None
) -> ResolvedSource:
    """The folder / ``program.toml`` of ``read_program`` resolved to one source per table.

    Shared by the pandas path and the engines, so both read the same files under the
    same rules (``file_ignored``, ``file_missing``, ``file_ambiguous``, paths confined to
    the mapping's folder).
    """
    if not isinstance(source, (str, Path)):
        raise InvalidParameterError(
            f"source must be a folder or a program.toml path; got {type(source).__name__}."
        )
    src = Path(source)
    if not src.exists():
        raise InvalidParameterError(
            f"source: {str(src)!r} does not exist; give a folder of exports or a program.toml file."
        )
    if src.is_file() and src.suffix.lower() != ".toml":
        raise InvalidParameterError(
            f"source: {str(src)!r} is a file; give the folder that holds the table files, or a program.toml mapping."
        )
    mapping_path: Path | None = None
    if mapping is not None:
        if isinstance(mapping, (str, Path)):
            mapping_path = Path(mapping)
        elif not isinstance(mapping, Mapping):
            raise InvalidParameterError(
                f"mapping must be a path to program.toml or a dict; got {type(mapping).__name__}."
            )
        prog_map = load_mapping(mapping)
    elif src.is_file():
        mapping_path = src
        prog_map = load_mapping(src)
    elif (src / MAPPING_NAME).is_file():
        mapping_path = src / MAPPING_NAME
        prog_map = load_mapping(mapping_path)
    else:
        prog_map = ProgramMapping(tables={})
    base = src if src.is_dir() else src.parent
    # relative file/database paths in a mapping file are resolved against its own folder
    # (a dict mapping: against the source folder) and may not leave it
    root = mapping_path.parent if mapping_path is not None else base

    findings: list[dict[str, Any]] = []
    sources: list[tuple[str, str, str | None, int]] = []
    if mapping_path is not None:
        digest, size = sha256_file(mapping_path)
        sources.append(("mapping", str(mapping_path), digest, size))

    # canonical-stem files in the folder (used for tables the mapping does not name)
    found: dict[str, list[Path]] = {}
    mapped_files = {(root / t.file).resolve() for t in prog_map.tables.values() if t.file}
    mapped_files |= {(root / t.database).resolve() for t in prog_map.tables.values() if t.database}
    for p in sorted(base.iterdir()):
        if (p.is_dir() and p.name.lower() in TABLE_NAMES and p.resolve() not in mapped_files
                and _has_parquet(p)):
            # a directory of Parquet files named after a table (partitioned or not)
            found.setdefault(p.name.lower(), []).append(p)
            continue
        if not p.is_file() or p.suffix.lower() not in SUFFIXES or p.name.startswith((".", "~$")):
            continue
        stem = p.stem.lower()
        if stem in TABLE_NAMES:
            found.setdefault(stem, []).append(p)
        elif p.resolve() not in mapped_files:
            findings.append(
                {
                    "rule": "file_ignored",
                    "severity": "info",
                    "table": "",
                    "file": p.name,
                    "line": None,
                    "column": None,
                    "value": None,
                    "action": "",
                    "message": f"{p.name}: not a canonical table name; ignored; fix: {RULES['file_ignored'].fix_text()} "
                    "[file_ignored]",
                }
            )

    entries: list[SourceEntry] = []
    for name in TABLE_NAMES:
        opts: TableMapping = prog_map.table(name)
        display = f"[tables.{name}]"
        try:
            if opts.database:
                db = _mapped_path(opts.database, root, name, "database")
                # findings name the database file and its table (or the query)
                display = _display(db, root) + (
                    f" table {opts.sql_table}" if opts.query is None else " query"
                )
                if not db.is_file():
                    raise ReadFailure(
                        "file_missing",
                        f"{display}: database named in [tables.{name}] does not exist "
                        f"(looked for {db})",
                    )
                entries.append(SourceEntry(name, "database", db, display, opts))
            elif opts.sql_table is not None:
                display = _catalog_display(opts.sql_table)
                entries.append(SourceEntry(name, "catalog", None, display, opts))
            elif opts.file and (_is_glob(opts.file) or (root / opts.file).is_dir()):
                path = _mapped_path(opts.file, root, name, "file")
                display = opts.file if _is_glob(opts.file) else _display(path, root).rstrip("/\\") + "/"
                entries.append(_dataset_entry(name, path, opts.file, root, display, opts))
            elif opts.file:
                path = _mapped_path(opts.file, root, name, "file")
                display = _display(path, root)
                if not path.is_file():
                    raise ReadFailure(
                        "file_missing",
                        f"{display}: file named in [tables.{name}] does not exist "
                        f"(looked for {path})",
                    )
                entries.append(SourceEntry(name, "file", path, display, opts))
            elif name in found:
                paths = found[name]
                display = paths[0].name
                if len(paths) > 1:
                    raise ReadFailure(
                        "file_ambiguous",
                        f"{', '.join(p.name for p in paths)}: more than one file "
                        f"holds table {name}",
                    )
                if paths[0].is_dir():
                    display = paths[0].name + "/"
                    entries.append(_dataset_entry(name, paths[0], display, root, display, opts))
                else:
                    entries.append(SourceEntry(name, "file", paths[0], display, opts))
        except ReadFailure as exc:
            entries.append(SourceEntry(name, "failure", None, display, opts, failure=exc))
    return ResolvedSource(src, prog_map, mapping_path, root, entries, findings, sources)


def read_program(
    source: str | Path,
    *,
    as_of: Any = None,
    on_error: Literal["raise", "drop"] = "raise",
    mapping: str | Path | Mapping[str, Any] | None = None,
    engine: Literal["pandas", "duckdb", "spark"] | None = None,
    database: str | Path | None = None,
    memory_limit: str | None = None,
    spark: Any = None,
    progress: bool = False,
) -> ProgramData | EngineProgramData:
    """Load and validate a program's exports.

    Parameters
    ----------
    source
        A folder holding one file per table named by its canonical stem
        (``participants``, ``mentors``, ``matches``, ``contacts``, ``events``,
        ``assessments``) as ``.csv``/``.tsv``, ``.parquet``, ``.xlsx``, ``.sav`` or
        ``.dta``, or a directory of Parquet files named by the stem (``events/``,
        Hive-partitioned or not; a finding then names the file and the row within it);
        or a TOML mapping file (``program.toml``), whose ``[tables.<name>]`` may also
        name a directory or glob of Parquet files, a table or query of a SQLite/DuckDB
        file, or (``engine="spark"``) a Spark catalog table (``table = "db.events"``).
        A folder that contains a ``program.toml`` is read through it.
    as_of
        The data cut-off (e.g. the quarter's last day). Rows dated after it are
        reported (``after_as_of`` warnings). Defaults to ``[program] as_of`` in the
        mapping, else no cut-off.
    on_error
        ``"raise"`` (default): any error stops the load with
        :class:`~recoverystats.errors.DataValidationError` listing every problem.
        ``"drop"``: rows with errors are dropped (and rows that point at a dropped
        participant or mentor), each recorded in ``.validation`` with its reason and
        counted in ``.flow``. Problems with a whole file or table (a missing required
        column, an unreadable file) always raise.
    mapping
        A ``program.toml`` path or an equivalent dict, overriding any
        ``program.toml`` in the folder. Relative ``file``/``database`` paths in a
        mapping file are resolved against the mapping file's folder (in a dict, against
        the ``source`` folder) and must stay inside it (``..`` or a symbolic link leading
        out is a ``mapping_invalid`` error); an absolute path reads a file anywhere. The
        format is documented in ``docs/data-model.md``.
    engine
        ``"pandas"`` (default, unless ``program.toml`` has ``[engine] name``): the tables are read into memory as DataFrames.
        ``"duckdb"``: CSV and Parquet files and DuckDB database tables are read by
        DuckDB (other formats through the readers above, then handed to DuckDB),
        validated by queries and kept in a DuckDB database, out of core; ``"spark"``:
        the same on Apache Spark (Parquet, plain CSV and catalog tables read by
        Spark). Both return
        an :class:`~recoverystats.engines.program.EngineProgramData` with the same
        findings, flow and table contents as the pandas engine (see ``docs/scale.md``).
    database
        DuckDB only: a database file to keep the validated tables in (default: an
        in-memory database that spills to a temporary folder).
    memory_limit
        DuckDB only: DuckDB's ``memory_limit`` (e.g. ``"8GB"``); Spark: ignored (size the
        driver and executors instead).
    spark
        Spark only: a ``SparkSession`` or a master URL (e.g. ``"local[2]"``, the default).
    progress
        Engines only: show a progress bar per stage (``rich``).

    Returns
    -------
    ProgramData or EngineProgramData
        Typed tables (IDs as text, dates as ``datetime64[ns]``, extra columns kept
        after the canonical ones), ``validation`` (every finding), ``flow`` (rows read,
        kept and dropped per table; read = kept + dropped) and ``sources`` (each file
        read with its SHA-256).

    Raises
    ------
    DataValidationError
        Errors in the data or the mapping (all of them, with file, line, column,
        value, rule and fix).
    InvalidParameterError
        ``source`` does not exist, or an argument has a value that is not allowed.

    Notes
    -----
    Hand-written: no maintained library validates this data model. CSV files are read
    with ``pyarrow.csv`` with every column as text (so ``007`` stays ``007``), then
    coerced and checked column-wise (see :mod:`recoverystats.io.build`). The rules are
    listed in :data:`recoverystats.schema.rules.RULES`. Comparable in spirit to R's
    ``readr::read_csv`` + ``pointblank`` validation.

    Examples
    --------
    >>> import recoverystats as rs
    >>> prog = rs.read_program("data/sample")  # doctest: +SKIP
    >>> prog.flow  # doctest: +SKIP
    """
    check_option("on_error", on_error, Literal["raise", "drop"])
    if engine is not None:
        check_option("engine", engine, Literal["pandas", "duckdb", "spark"])
    res = resolve_source(source, mapping)
    if as_of is None and res.mapping.as_of is not None:
        as_of = res.mapping.as_of
    # program.toml [engine]: the defaults for what the call leaves out
    cfg = res.mapping.engine
    engine = engine or cfg.get("name", "pandas")  # type: ignore[assignment]
    if engine == "duckdb":
        memory_limit = memory_limit or cfg.get("memory_limit")
        if database is None and cfg.get("database"):
            database = _mapped_path(cfg["database"], res.root, "engine", "database")
    elif engine == "spark":
        spark = spark if spark is not None else cfg.get("spark_master")
    if engine != "pandas":
        from recoverystats.engines.load import read_program_engine

        return read_program_engine(
            res,
            engine=engine,
            as_of=as_of,
            on_error=on_error,
            database=database,
            memory_limit=memory_limit,
            spark=spark,
            progress=progress,
        )
    if any(v is not None for v in (database, memory_limit, spark)):
        raise InvalidParameterError(
            'database=, memory_limit= and spark= apply to engine="duckdb" or engine="spark" '
            f"only; got engine={engine!r}."
        )
    findings = res.findings
    sources = res.sources
    prog_map = res.mapping
    src = res.src
    raws: dict[str, RawTable] = {}
    for entry in res.entries:
        name = entry.name
        try:
            raws[name] = entry.read()
        except ReadFailure as exc:
            findings.append(_failure(exc, name, entry.display))
            continue
        sources.extend(raws[name].sources)
        sources.extend((name, str(p), None, 0) for p in raws[name].unhashed)

    from recoverystats.io.build import validate_tables

    # CSV files are hashed on one thread while the tables are validated (the reader used
    # every core; validation mostly uses one), in the order they appear in ``sources``
    pool = ThreadPoolExecutor(max_workers=1)
    digests = {
        i: pool.submit(sha256_file, Path(s[1])) for i, s in enumerate(sources) if s[2] is None
    }

    def hashed() -> list[tuple[str, str, str, int]]:
        out = list(sources)
        for i, fut in digests.items():
            out[i] = (out[i][0], out[i][1], *fut.result())
        return out

    # tables read from several Parquet files: findings name each row's file and row
    parts = {n: r.parts for n, r in raws.items() if r.parts is not None}
    try:
        try:
            prog = validate_tables(
                raws,
                as_of=as_of,
                on_error=on_error,
                source=str(src),
                extra_findings=findings,
                sources=hashed,
            )
        except DataValidationError as exc:
            if not parts or getattr(exc, "validation", None) is None:
                raise
            from recoverystats.engines.sources import relabel

            relabel(exc.validation, parts)  # type: ignore[attr-defined]
            # the message lists the first findings: made again from the renamed ones
            again = DataValidationError(exc.summary, exc.problems)
            again.validation = exc.validation  # type: ignore[attr-defined]
            raise again from None
        if parts:
            from recoverystats.engines.sources import relabel

            relabel(prog.validation, parts)
        # the mapping's identity, design and labels tables (frozen dataclass: a new instance)
        info = {"program": dict(prog_map.identity), "design": dict(prog_map.design)}
        return dataclasses.replace(prog, info=info, labels=prog_map.labels or {})
    finally:
        pool.shutdown(wait=True)


__all__ = ["read_program"]
