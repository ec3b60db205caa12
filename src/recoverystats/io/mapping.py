"""The TOML mapping (``program.toml``): how a site's export maps onto the canonical tables.

Format (documented in ``docs/data-model.md``)::

    [program]
    name = "Northside Reentry Mentoring"   # optional, for reports
    funder = "State Opioid Response"        # optional identity lines of the report
    grant_number = "SOR-2026-014"
    reporting_period = "2026-07-01 to 2026-09-30"
    prepared_by = "Evaluation team"
    as_of = "2026-09-30"                    # optional default data cut-off

    [design]                                # optional: how the comparison group was formed
    comparison = "waitlist"                 # randomised, waitlist, matched, other_agency, historical, other
    description = "Clients waiting for a mentor"

    [engine]                                # optional: where the data is validated and measured
    name = "duckdb"                         # pandas (default), duckdb or spark (docs/scale.md)
    memory_limit = "8GB"                    # DuckDB's memory limit
    database = "program.duckdb"             # DuckDB database file (default: in memory, spilling to disk)
    spark_master = "local[2]"               # Spark master URL (spark-submit: leave out)

    [defaults]                              # optional; any per-table reading option
    date_format = ["%m/%d/%Y"]
    na_values = ["NULL", "N/A", "NA", "-", ""]
    decimal = ","                           # European exports: 12,5 (default ".")
    thousands = "."                         # digit grouping: 1.234,5 (default none)

    [tables.participants]
    file = "clients.csv"                    # relative to this file's folder
    delimiter = ","
    encoding = "utf-8"
    header_row = 1                          # 1-based line/row holding the column names
    [tables.participants.rename]            # source column -> canonical column
    ClientID = "participant_id"
    "Intake Date" = "enrollment_date"
    [tables.participants.values.gender]     # canonical column -> {source value: code}
    M = "male"
    F = "female"
    [tables.participants.types]             # kinds of extra (non-canonical) columns
    housing_score = "float"

    [labels.group]                          # display labels of codes (report, figures)
    peer_mentoring = "Mentored"

    [tables.events]
    file = "events.xlsx"
    sheet = "Events"

    [tables.contacts]
    database = "program.sqlite"             # SQLite (.sqlite/.db) or DuckDB (.duckdb)
    query = "SELECT client AS participant_id, visit_dt AS contact_date FROM visits"

    [tables.assessments]
    file = "lake/assessments/"              # a directory (or glob) of Parquet files, Hive partitions too

    [tables.mentors]
    table = "crm.mentors"                   # without database: a Spark catalog table (engine spark)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.schema.labels import parse_labels
from recoverystats.schema.rules import RULES, Finding
from recoverystats.schema.spec import KIND_DTYPES, TABLE_NAMES

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: NA markers used when the mapping does not give ``na_values``.
DEFAULT_NA_VALUES: tuple[str, ...] = (
    "",
    "NULL",
    "null",
    "N/A",
    "n/a",
    "NA",
    "-",
    "NaN",
    "nan",
    "#N/A",
)
#: Date formats always tried (unambiguous ISO forms), after any configured ``date_format``.
ISO_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")

READ_OPTION_KEYS = (
    "delimiter",
    "encoding",
    "header_row",
    "date_format",
    "na_values",
    "sheet",
    "value_labels",
    "decimal",
    "thousands",
)
TABLE_KEYS = frozenset(
    READ_OPTION_KEYS + ("file", "database", "query", "table", "engine", "rename", "values", "types")
)
#: identity keys of ``[program]`` shown on the report (besides ``as_of`` and ``description``)
IDENTITY_KEYS = ("name", "funder", "grant_number", "reporting_period", "prepared_by")
PROGRAM_KEYS = frozenset((*IDENTITY_KEYS, "as_of", "description"))
#: ``[design] comparison``: how the comparison group was formed
COMPARISON_DESIGNS = ("randomised", "waitlist", "matched", "other_agency", "historical", "other")
DESIGN_KEYS = frozenset(("comparison", "description"))
TOP_KEYS = frozenset(("program", "design", "defaults", "tables", "labels", "engine"))
#: ``[engine]``: where ``read_program``/``report`` run (see ``docs/scale.md``)
ENGINE_KEYS = frozenset(("name", "memory_limit", "database", "spark_master"))
ENGINE_NAMES = ("pandas", "duckdb", "spark")
ENGINES = ("sqlite", "duckdb")
#: Allowed ``decimal`` marks and ``thousands`` separators (space, no-break space, narrow
#: no-break space and apostrophe are the grouping marks of French, Swiss, ... exports).
DECIMAL_MARKS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "\u00a0", "\u202f", "'")


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How one canonical table is read (all options optional)."""

    file: str | None = None
    sheet: str | int | None = None
    database: str | None = None
    query: str | None = None
    sql_table: str | None = None
    engine: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header_row: int | None = None
    date_format: tuple[str, ...] = ()
    na_values: tuple[str, ...] | None = None
    value_labels: bool = True
    decimal: str | None = None
    thousands: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def date_formats(self) -> tuple[str, ...]:
        """Configured formats first, then the ISO forms (never ambiguous)."""
        return tuple(dict.fromkeys(self.date_format + ISO_DATE_FORMATS))

    @property
    def na_markers(self) -> tuple[str, ...]:
        return DEFAULT_NA_VALUES if self.na_values is None else tuple(self.na_values)


@dataclass(frozen=True, slots=True)
class ProgramMapping:
    """A parsed ``program.toml``."""

    tables: dict[str, TableMapping]
    path: Path | None = None
    name: str = ""
    as_of: str | None = None
    #: the ``[program]`` identity fields given (name, funder, grant_number, reporting_period, prepared_by)
    identity: dict[str, str] = field(default_factory=dict)
    #: the ``[design]`` table (comparison, description), as given
    design: dict[str, str] = field(default_factory=dict)
    #: the ``[defaults]`` reading options, for tables read without a ``[tables.x]`` entry
    defaults: TableMapping = field(default_factory=TableMapping)
    #: ``[labels]``: field -> {code: display label} (see :mod:`recoverystats.schema.labels`)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    #: ``[engine]``: name (pandas, duckdb, spark), memory_limit, database, spark_master
    engine: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> TableMapping:
        return self.tables.get(name, self.defaults)


def _problem(where: str, msg: str, file: str) -> Finding:
    return Finding(
        "mapping_invalid",
        RULES["mapping_invalid"].severity,
        "",
        file,
        None,
        None,
        None,
        f"{file}: {where}: {msg}; fix: {RULES['mapping_invalid'].fix_text()} [mapping_invalid]",
    )


def _as_str_tuple(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def parse_mapping(raw: Mapping[str, Any], *, path: Path | None = None) -> ProgramMapping:
    """Check and parse a mapping dict (the content of ``program.toml``).

    Raises
    ------
    DataValidationError
        Listing every unknown key, unknown table, wrong type and unknown column kind.
    """
    file = path.name if path is not None else "mapping"
    problems: list[Finding] = []
    if not isinstance(raw, Mapping):
        raise DataValidationError(
            f"mapping must be a dict or a path to program.toml; got {type(raw).__name__}."
        )
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(
                _problem(
                    f"key [{key}]", f"unknown section; allowed: {', '.join(sorted(TOP_KEYS))}", file
                )
            )
    program = raw.get("program", {}) or {}
    if not isinstance(program, Mapping):
        problems.append(_problem("[program]", "must be a table", file))
        program = {}
    for key in program:
        if key not in PROGRAM_KEYS:
            problems.append(
                _problem(
                    f"[program] {key}",
                    f"unknown key; allowed: {', '.join(sorted(PROGRAM_KEYS))}",
                    file,
                )
            )
    identity = {k: program[k] for k in IDENTITY_KEYS if k in program}
    for key, v in identity.items():
        if not isinstance(v, str):
            problems.append(_problem(f"[program] {key}", f"must be text; got {v!r}", file))
    design = raw.get("design", {}) or {}
    if not isinstance(design, Mapping):
        problems.append(_problem("[design]", "must be a table", file))
        design = {}
    for key, v in design.items():
        if key not in DESIGN_KEYS:
            problems.append(_problem(f"[design] {key}", f"unknown key; allowed: {', '.join(sorted(DESIGN_KEYS))}",
                                     file))
        elif key == "comparison" and v not in COMPARISON_DESIGNS:
            problems.append(_problem("[design] comparison", f"got {v!r}; allowed: {', '.join(COMPARISON_DESIGNS)}",
                                     file))
        elif not isinstance(v, str):
            problems.append(_problem(f"[design] {key}", f"must be text; got {v!r}", file))
    engine = raw.get("engine", {}) or {}
    if not isinstance(engine, Mapping):
        problems.append(_problem("[engine]", "must be a table", file))
        engine = {}
    for key, v in engine.items():
        if key not in ENGINE_KEYS:
            problems.append(_problem(f"[engine] {key}", f"unknown key; allowed: {', '.join(sorted(ENGINE_KEYS))}",
                                     file))
        elif not isinstance(v, str):
            problems.append(_problem(f"[engine] {key}", f"must be text; got {v!r}", file))
        elif key == "name" and v not in ENGINE_NAMES:
            problems.append(_problem("[engine] name", f"got {v!r}; allowed: {', '.join(ENGINE_NAMES)}", file))
    defaults = raw.get("defaults", {}) or {}
    if not isinstance(defaults, Mapping):
        problems.append(_problem("[defaults]", "must be a table", file))
        defaults = {}
    for key in defaults:
        if key not in READ_OPTION_KEYS:
            problems.append(
                _problem(
                    f"[defaults] {key}",
                    f"unknown key; allowed: {', '.join(READ_OPTION_KEYS)}",
                    file,
                )
            )
    # [defaults] checked once: a bad default is reported there, not again for every table
    found: list[Finding] = []
    read_defaults = _table_mapping(
        {k: v for k, v in defaults.items() if k in READ_OPTION_KEYS}, "[defaults]", file, found
    )
    problems += found
    bad_defaults = {k for k in defaults if any(f": [defaults] {k}: " in p.message for p in found)}
    tables_raw = raw.get("tables", {}) or {}
    if not isinstance(tables_raw, Mapping):
        problems.append(_problem("[tables]", "must be a table of tables", file))
        tables_raw = {}
    tables: dict[str, TableMapping] = {}
    for tname, spec in tables_raw.items():
        where = f"[tables.{tname}]"
        if tname not in TABLE_NAMES:
            problems.append(
                _problem(
                    where, f"unknown table {tname!r}; tables are {', '.join(TABLE_NAMES)}", file
                )
            )
            continue
        if not isinstance(spec, Mapping):
            problems.append(_problem(where, "must be a table", file))
            continue
        merged = {k: v for k, v in defaults.items() if k in READ_OPTION_KEYS and k not in bad_defaults}
        merged.update(spec)
        for key in spec:
            if key not in TABLE_KEYS:
                problems.append(
                    _problem(
                        f"{where} {key}",
                        f"unknown key; allowed: {', '.join(sorted(TABLE_KEYS))}",
                        file,
                    )
                )
        tables[tname] = _table_mapping(merged, where, file, problems)
    labels: dict[str, dict[str, str]] = {}
    try:
        labels = parse_labels(raw.get("labels"))
    except InvalidParameterError as exc:
        problems.append(_problem("[labels]", str(exc).removeprefix("[labels]: ").rstrip("."), file))
    if problems:
        raise DataValidationError(f"{file}: the mapping has {len(problems)} problem(s).", problems)
    as_of = program.get("as_of")
    return ProgramMapping(
        tables=tables,
        path=path,
        name=str(program.get("name", "")),
        as_of=None if as_of is None else str(as_of),
        identity={k: str(v) for k, v in identity.items()},
        design={k: str(v) for k, v in design.items() if k in DESIGN_KEYS},
        defaults=read_defaults,
        labels=labels,
        engine={k: str(v) for k, v in engine.items() if k in ENGINE_KEYS},
    )


def _table_mapping(
    m: Mapping[str, Any], where: str, file: str, problems: list[Finding]
) -> TableMapping:
    kw: dict[str, Any] = {}
    for key in ("file", "database", "query", "delimiter", "encoding", "engine"):
        if key in m:
            if not isinstance(m[key], str) or not m[key]:
                problems.append(
                    _problem(f"{where} {key}", f"must be a non-empty string; got {m[key]!r}", file)
                )
            else:
                kw[key] = m[key]
    if "table" in m:
        if not isinstance(m["table"], str):
            problems.append(
                _problem(f"{where} table", f"must be a string; got {m['table']!r}", file)
            )
        else:
            kw["sql_table"] = m["table"]
    if "sheet" in m:
        if not isinstance(m["sheet"], (str, int)) or isinstance(m["sheet"], bool):
            problems.append(
                _problem(
                    f"{where} sheet",
                    f"must be a sheet name or 0-based index; got {m['sheet']!r}",
                    file,
                )
            )
        else:
            kw["sheet"] = m["sheet"]
    if "header_row" in m:
        h = m["header_row"]
        if not isinstance(h, int) or isinstance(h, bool) or h < 1:
            problems.append(
                _problem(
                    f"{where} header_row",
                    f"must be a whole number >= 1 (the 1-based row of the column names); got {h!r}",
                    file,
                )
            )
        else:
            kw["header_row"] = h
    if "delimiter" in kw and len(kw["delimiter"]) != 1:
        problems.append(
            _problem(
                f"{where} delimiter",
                f'must be one character (use "\\t" for tabs); got {kw["delimiter"]!r}',
                file,
            )
        )
    if "engine" in kw and kw["engine"] not in ENGINES:
        problems.append(
            _problem(
                f"{where} engine",
                f"must be one of {', '.join(ENGINES)}; got {kw['engine']!r}",
                file,
            )
        )
    for key, allowed in (("decimal", DECIMAL_MARKS), ("thousands", THOUSANDS_SEPARATORS)):
        if key in m:
            if m[key] not in allowed:
                shown = ", ".join(json.dumps(a) for a in allowed)
                problems.append(
                    _problem(f"{where} {key}", f"must be one of {shown}; got {m[key]!r}", file)
                )
            else:
                kw[key] = m[key]
    if kw.get("thousands") is not None and kw.get("thousands") == (kw.get("decimal") or "."):
        problems.append(
            _problem(
                f"{where} thousands",
                f"is the decimal mark too ({kw['thousands']!r}); a number cannot use one "
                'character for both (decimal = "," goes with thousands = "." or " ")',
                file,
            )
        )
    if "value_labels" in m:
        if not isinstance(m["value_labels"], bool):
            problems.append(
                _problem(
                    f"{where} value_labels",
                    f"must be true or false; got {m['value_labels']!r}",
                    file,
                )
            )
        else:
            kw["value_labels"] = m["value_labels"]
    for key in ("date_format", "na_values"):
        if key in m:
            t = _as_str_tuple(m[key])
            if t is None:
                problems.append(
                    _problem(
                        f"{where} {key}",
                        f"must be a string or a list of strings; got {m[key]!r}",
                        file,
                    )
                )
            else:
                kw[key] = t
    sources = [k for k in ("file", "database") if k in kw]
    if len(sources) > 1:
        problems.append(
            _problem(where, "give either file or database (with query/table), not both", file)
        )
    if "database" in kw and "query" not in kw and "sql_table" not in kw:
        problems.append(
            _problem(where, 'database needs a query = "SELECT ..." or table = "name"', file)
        )
    if "query" in kw and "database" not in kw:
        problems.append(_problem(where, 'query needs database = "path/to/file.sqlite"', file))
    if "sql_table" in kw and "file" in kw:
        problems.append(
            _problem(where, 'give either file or table (a database or Spark catalog table), not both', file)
        )
    rename = m.get("rename", {})
    if not isinstance(rename, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in rename.items()
    ):
        problems.append(
            _problem(
                f"{where}.rename", "must map source column names to canonical names (strings)", file
            )
        )
    else:
        kw["rename"] = dict(rename)
    values = m.get("values", {})
    vals: dict[str, dict[str, str]] = {}
    if not isinstance(values, Mapping):
        problems.append(
            _problem(f"{where}.values", "must be a table of per-column code maps", file)
        )
    else:
        for col, cmap in values.items():
            if not isinstance(cmap, Mapping):
                problems.append(
                    _problem(f"{where}.values.{col}", "must map source values to codes", file)
                )
                continue
            bad = [k for k, v in cmap.items() if not isinstance(v, (str, bool, int, float))]
            if bad:
                problems.append(
                    _problem(f"{where}.values.{col}", f"values for {bad!r} must be strings", file)
                )
                continue
            vals[col] = {
                str(k).strip(): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in cmap.items()
            }
    kw["values"] = vals
    types = m.get("types", {})
    if not isinstance(types, Mapping):
        problems.append(_problem(f"{where}.types", "must map extra column names to kinds", file))
    else:
        for col, kind in types.items():
            if kind not in KIND_DTYPES:
                problems.append(
                    _problem(
                        f"{where}.types.{col}",
                        f"kind must be one of {', '.join(KIND_DTYPES)}; got {kind!r}",
                        file,
                    )
                )
        kw["types"] = {k: v for k, v in types.items() if v in KIND_DTYPES}
    return TableMapping(**kw)


def load_mapping(mapping: str | Path | Mapping[str, Any] | ProgramMapping) -> ProgramMapping:
    """Read and check ``program.toml`` (a path), or check a mapping dict."""
    if isinstance(mapping, ProgramMapping):
        return mapping
    if isinstance(mapping, Mapping):
        return parse_mapping(mapping)
    path = Path(mapping)
    if not path.is_file():
        f = Finding(
            "file_missing",
            "error",
            "",
            str(path),
            None,
            None,
            None,
            f"{path}: mapping file not found; fix: {RULES['file_missing'].fix_text()} [file_missing]",
        )
        raise DataValidationError(f"mapping file {str(path)!r} does not exist.", [f])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        f = Finding(
            "mapping_invalid",
            "error",
            "",
            path.name,
            None,
            None,
            None,
            f"{path.name}: not valid TOML: {exc} [mapping_invalid]",
        )
        raise DataValidationError(f"{path.name} is not valid TOML: {exc}", [f]) from None
    return parse_mapping(raw, path=path)
