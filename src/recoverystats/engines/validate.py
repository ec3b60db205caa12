"""Validation on DuckDB and Spark: the loader's rules as queries over Ibis tables.

Same findings as the pandas path, by construction rather than by a second copy of the
rules:

- **cell rules** (type coercion, codes, dates that do not parse, placeholder dates,
  dates out of range, control characters, over-long cells) depend on a cell's value
  only. Each column's *distinct* values are fetched from the engine (dates, codes and
  yes/no columns have a few thousand at most), the pandas path's own coercion
  (``build._coerce_column``, ``build._text_cell_rules``) runs on them, and the result
  -- the typed value and the finding of each distinct value -- is joined back in the
  engine. High-cardinality text (IDs, free text) is only trimmed there, and numbers
  with more than :data:`DISTINCT_MAX` distinct values are cast in the engine where they
  are plain numbers (the other values still go through the Python coercion);
- **row and cross-table rules** (missing values, ranges, date order, implausible age,
  duplicate rows and keys, orphans, rows of dropped participants, the data cut-off,
  dates before birth or enrollment, assessment windows) are one query each over the
  typed table, taking their columns, thresholds and wording from
  :mod:`recoverystats.io.checks`, which the pandas path uses too;
- messages are assembled by the pandas path's ``build._Ctx.rows`` and the findings
  frame by ``build._validation_frame``, so order, wording and counts agree.

Offending rows are fetched ordered by row, at most ``max_findings`` per rule (a
finding is one printed line; the loader's printing caps them further); the number of
rows each rule flagged is in ``EngineProgramData.finding_counts`` either way.

How the engine's work is kept to a few passes per table (a clean 10M-row table costs
about as many scans as it has stages below, not one per rule or column):

- **text columns** (IDs, free text) are checked by one aggregate over the raw table:
  per column, one regular expression for a space at either edge or a control
  character, NA markers and over-long cells. A column with none is used as it is --
  no per-row trimming and no text-cell query; only columns with candidates go through
  the exact expressions. Dates, codes and yes/no columns go through their distinct
  values as above (a few thousand at most); ``nunique`` is asked only of numbers;
- **the typed table** is materialised once, and only when typing does work (value maps
  joined, text trimmed, error flags). A clean table stays a projection of the raw table
  (a Parquet file, or the CSV table DuckDB read), so clean Parquet is never copied
  before the validated table is stored;
- **duplicates** are hash aggregates, never window functions: on DuckDB one aggregate
  over a 64-bit hash of each row (then of each key) finds the hashes seen more than
  once, and only rows with such a hash are grouped exactly; the few duplicated groups
  are materialised and joined back (NULL-safe) to mark rows. A parent table whose key
  has no duplicate is joined to its children as it is (no "first row per key" window);
- **the row and cross-table rules** are counted in one aggregate over the typed table
  joined to its parents (every rule's count plus table-level totals such as
  ``before_enrollment``), and the offending rows are fetched in a second scan only when
  some count is non-zero. The rows the validated table leaves out (copies, dropped rows)
  are among them, so the stored table is the typed table less those row ids -- the rules
  are not evaluated again when it is written.

The queries are Ibis expressions (one definition for DuckDB and Spark); the DuckDB-only
steps (row hashes, the database's settings) sit behind ``be.engine == "duckdb"``.
Hand-written: no library runs this data model's rules on SQL engines.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from recoverystats.io import build, checks
from recoverystats.io.mapping import TableMapping
from recoverystats.io.readers import file_finding
from recoverystats.schema.rules import ASSESSMENT_WINDOWS, RULES
from recoverystats.schema.spec import TABLES, ColumnSpec

#: Columns with at most this many distinct values are coerced in Python (the pandas
#: path's code) and joined back; numbers with more are cast in the engine.
DISTINCT_MAX = 1_000_000
#: Ibis type of each column kind (what the pandas dtypes hold).
IBIS_TYPES: dict[str, str] = {
    "id": "string",
    "code": "string",
    "string": "string",
    "date": "date",
    "int": "int64",
    "float": "float64",
    "bool": "boolean",
}
_NUMBER = build._NUMBER_RE.pattern


@dataclass
class EngineRaw:
    """One table as the engine holds it before coercion (internal).

    ``table`` has ``_rid`` (0-based row position in the source), ``_line`` (the line or
    record number a finding names) and the source columns.
    """

    name: str
    table: ir.Table
    columns: list[str]
    file: str
    line_label: str
    options: TableMapping
    na_applied: bool
    rows: int
    findings: list[dict[str, Any]] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    cell_problems: list[tuple[str, int, str, Any, str]] = field(default_factory=list)
    lines: Any = None
    sources: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    engine: str = "duckdb"
    #: several Parquet files (see :mod:`recoverystats.engines.sources`)
    parts: Any = None


class _ValueCtx(build._Ctx):
    """Records what the pandas coercion finds on a column's distinct values (internal).

    Positions are positions in the distinct-value array; the engine maps them back to
    the rows that hold each value.
    """

    def __init__(self, table: str, file: str, label: str) -> None:
        super().__init__(table, file, label, np.zeros(0, np.int64))
        self.events: list[tuple[Any, ...]] = []

    def rows(  # type: ignore[override]
        self,
        rule: str,
        positions: np.ndarray,
        column: str | None,
        values: list[Any],
        detail: Callable[[Any, int], str],
        action: str,
        by_value: bool = False,
    ) -> None:
        if len(positions) == 0:
            return
        pos = np.asarray(positions, dtype=np.int64)
        details = [detail(v, int(p)) for v, p in zip(values, pos.tolist(), strict=True)]
        self.events.append(("cell", rule, column, action, pos, list(values), details))

    def column_level(  # type: ignore[override]
        self, rule: str, mask: np.ndarray, original: Any, column: str, detail: Callable[[str, int], str]
    ) -> None:
        self.events.append(("column", rule, column, np.asarray(mask).copy(), detail))

    def table_level(self, rule: str, detail: str, **kw: Any) -> None:  # type: ignore[override]
        self.events.append(
            ("table", file_finding(rule, self.table, self.file, detail, label=self.line_label, **kw))
        )


@dataclass
class _Col:
    """How one column is typed in the engine, and what its coercion found."""

    name: str  # canonical (or extra) name
    src: str  # source column in the raw table
    expr: Callable[[ir.Table], ir.Value] | None = None  # typed value from the (joined) table
    keys: pa.Array | None = None  # distinct raw values with a mapped value
    mapped: pa.Array | None = None
    errs: np.ndarray | None = None
    events: list[tuple[Any, ...]] = field(default_factory=list)
    distinct: pa.Array | None = None
    join_id: int = -1
    fast: bool = False
    #: the typed value is the raw column itself or a plain cast of it (no join, no trimming)
    simple: bool = False


@dataclass
class Built:
    """One table after the within-table rules (internal)."""

    name: str
    raw: EngineRaw
    ctx: build._Ctx
    findings: list[dict[str, Any]]
    s1: ir.Table | None
    fatal: bool
    rows_read: int
    columns: list[str] = field(default_factory=list)  # canonical present in source
    extras: list[str] = field(default_factory=list)
    s2: ir.Table | None = None
    error_count: int = 0
    counts: list[tuple[str, str, str | None, str, int]] = field(default_factory=list)
    #: no copies of rows and no shared keys (set by the row rules): key values are unique
    unique_key: bool = False
    #: ``_rid`` of the rows the validated table leaves out (copies, dropped rows)
    removed: Any = None
    #: the validated table's columns over every row (DuckDB: the typed table plus derived
    #: columns, without the rules' joins); ``removed`` rows are taken out when it is stored
    final: ir.Table | None = None


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _fetch(expr: ir.Table, limit: int | None) -> pd.DataFrame:
    """Rows of ``expr`` ordered by ``_rid`` (at most ``limit``), as pandas (dates as date objects)."""
    q = expr.order_by("_rid")
    if limit is not None:
        q = q.limit(limit)
    return q.to_pyarrow().to_pandas(date_as_object=True, types_mapper=None)


def _iso(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return "NaT"
    if isinstance(v, (_dt.datetime, pd.Timestamp)):
        return v.date().isoformat()
    return v.isoformat() if isinstance(v, _dt.date) else str(v)[:10]


def _emit(
    out: list[dict[str, Any]],
    raw: EngineRaw,
    rule: str,
    rows: pd.DataFrame,
    column: str | None,
    values: list[Any],
    detail: Callable[[Any, int], str],
    action: str,
    by_value: bool = False,
) -> None:
    """One finding block for fetched offending rows (``_rid``, ``_line``), worded by ``_Ctx.rows``."""
    if len(rows) == 0:
        return
    c = build._Ctx(raw.name, raw.file, raw.line_label, rows["_line"].to_numpy(np.int64))
    c.rows(rule, np.arange(len(rows)), column, values, detail, action, by_value=by_value)
    for f in c.findings:
        f["_pos"] = rows["_rid"].to_numpy(np.int64)
    out.extend(c.findings)


#: The ASCII whitespace Arrow's ``ascii_trim_whitespace`` strips (the pandas path).
_EDGE_SPACE = r"^[ \t\n\r\x0B\f]+|[ \t\n\r\x0B\f]+$"  # regex escapes as text (Java and RE2)
#: A space at either edge or a control character: what a text column is scanned for.
_EDGE_OR_CONTROL = _EDGE_SPACE + "|" + build._CONTROL_RE


def na_trim(col: ir.StringValue, na: tuple[str, ...], engine: str = "duckdb") -> ir.StringValue:
    """Surrounding ASCII whitespace stripped and NA markers (or, without markers, "") as NULL.

    Spark: a regular expression, because Ibis writes the characters to strip as a Spark
    string literal in which ``\\v`` is the letter v (``'vital'`` lost its ``v``).
    """
    t = col.strip() if engine == "duckdb" else col.re_replace(_EDGE_SPACE, "")
    if na:
        markers = list(na)
        return ibis.ifelse(col.isin(markers) | t.isin(markers), ibis.null("string"), t)
    return ibis.ifelse(t == "", ibis.null("string"), t)


def _key_text(v: Any, kind: str) -> str:
    """A key part as ``str`` of the pandas value shows it (``<NA>``, ``NaT``, Timestamps)."""
    if kind == "date":
        return "NaT" if v is None or v is pd.NaT else str(pd.Timestamp(v))
    return "<NA>" if v is None else str(v)


# ---------------------------------------------------------------------------
# one table: coercion and within-table rules
# ---------------------------------------------------------------------------
def _column_scan(raw: EngineRaw, srcs: list[str]) -> dict[str, tuple[int, int]]:
    """One scan over the raw table: per text column, (cells that trimming or an NA marker
    may change, cells that may break a text-cell rule).

    The counts are of *candidates*: one regular expression finds a space at either edge
    or a control character, plus NA markers (or empty strings) and over-long cells. A
    column with no candidate is used as it is (no per-row trimming, no text-cell query);
    one with candidates goes through the exact expressions.
    """
    if not srcs:
        return {}
    t = raw.table
    na = raw.options.na_markers
    aggs: dict[str, ir.Scalar] = {}
    for i, src in enumerate(srcs):
        col = t[src]
        edge = col.re_search(_EDGE_OR_CONTROL).fill_null(False)
        marker = (col.isin(list(na)) if na else col == "").fill_null(False)
        long = (col.length() > build.MAX_CELL_CHARS).fill_null(False)
        aggs[f"e{i}"] = edge.cast("int64").sum()
        aggs[f"m{i}"] = marker.cast("int64").sum()
        aggs[f"l{i}"] = long.cast("int64").sum()
    got = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    out = {}
    for i, src in enumerate(srcs):
        e, m, ln = (int(got[f"{k}{i}"] or 0) for k in "eml")
        out[src] = (e + m, e + ln)
    return out


def _plan_column(
    raw: EngineRaw, src: str, col: ColumnSpec, *, extra_kind: str | None = None, extra: bool = False,
    scan: tuple[int, int] | None = None,
) -> _Col:
    """Decide how a column is typed, running the pandas coercion on its distinct values."""
    t = raw.table
    opts = raw.options
    c = _Col(col.name, src)
    dt = t[src].type()
    vmap = opts.values.get(col.name)
    if extra and extra_kind is None and not dt.is_string():
        c.expr = lambda s, src=src: s[src]
        c.simple = True
        return c
    if dt.is_string() and not vmap and not extra and col.kind in ("id", "string"):
        if scan is not None and scan[0] == 0:
            c.expr = lambda s, src=src: s[src]
            c.simple = True
        else:
            c.expr = lambda s, src=src: na_trim(s[src], opts.na_markers, raw.engine)
        return c
    n_distinct = (
        int(t[src].nunique().to_pyarrow().as_py()) + 1 if (extra_kind or col.kind) in ("int", "float") else 0
    )
    numeric_fast = (
        n_distinct > DISTINCT_MAX
        and col.kind in ("int", "float")
        and dt.is_string()
        and not (opts.decimal or opts.thousands)
        and not vmap
    )
    if numeric_fast:
        trimmed = na_trim(t[src], opts.na_markers, raw.engine)
        num = trimmed.cast("float64")
        simple = trimmed.re_search(_NUMBER)
        if col.kind == "int":
            simple = simple & (num == num.floor())
        odd = t.filter(trimmed.notnull() & ~simple).select(v=t[src]).distinct()
        distinct = odd.to_pyarrow().column("v")
    else:
        distinct = t.select(v=t[src]).distinct().to_pyarrow().column("v")
    distinct = build._arr(distinct)
    if pa.types.is_large_string(distinct.type):
        distinct = distinct.cast(pa.string())
    vctx = _ValueCtx(raw.name, raw.file, raw.line_label)
    errs = np.zeros(len(distinct), dtype=bool)
    if extra and extra_kind is None:
        series = build._extra_series(distinct, None, opts, raw.na_applied, vctx, col.name, errs)
        values = pa.array(series.astype(object).where(series.notna(), None).tolist())
        if series.dtype == "Int64":
            values = values.cast(pa.int64())
        elif series.dtype == "float64":
            values = pa.array(series.to_numpy(), pa.float64(), from_pandas=True)
        else:
            values = values.cast(pa.string())
    else:
        spec = col if extra_kind is None else ColumnSpec(col.name, extra_kind)  # type: ignore[arg-type]
        values = build._arr(
            build._coerce_column(distinct, spec, opts, raw.na_applied, vctx, errs)
        )
        if spec.kind in ("id", "code", "string"):
            values = values.cast(pa.string())
        elif spec.kind == "date":
            values = values.cast(pa.date32())
        elif spec.kind == "int":
            values = values.cast(pa.int64())
        elif spec.kind == "float":
            values = values.cast(pa.float64())
    c.events = vctx.events
    c.distinct = distinct
    c.errs = errs
    notnull = np.asarray(distinct.is_valid())
    if numeric_fast:
        c.fast = True
        c.keys, c.mapped = distinct.filter(pa.array(notnull)), values.filter(pa.array(notnull))
        c.errs = errs[notnull]
        ty = IBIS_TYPES[col.kind]

        def fast(s: ir.Table, src: str = src, ty: str = ty, c: _Col = c) -> ir.Value:
            trimmed = na_trim(s[src], opts.na_markers, raw.engine)
            num = trimmed.try_cast("float64")
            plain = num.cast(ty) if ty == "float64" else num.round().cast(ty)
            if c.join_id < 0:
                return plain
            return ibis.ifelse(s[f"_k{c.join_id}"].notnull(), s[f"_v{c.join_id}"], plain)

        c.expr = fast
        return c
    # identity conversions need no join: typed columns that stay as they are, and text
    # that only loses surrounding spaces / NA markers
    if not vctx.events:
        kind = extra_kind or col.kind
        if kind in ("date", "int", "float", "bool") and not dt.is_string():
            if _same_values(distinct, values):
                ty = IBIS_TYPES[kind]
                c.expr = lambda s, src=src, ty=ty: s[src].cast(ty)
                c.simple = True
                return c
        if (
            kind in ("date", "int", "float", "bool") and dt.is_string() and raw.engine == "duckdb"
            and not vmap and _same_values(distinct, values)
        ):
            # text that Arrow's strict cast turns into exactly the coerced values (ISO dates,
            # plain numbers, true/false): DuckDB's cast gives the same on these strings
            ty = IBIS_TYPES[kind]
            c.expr = lambda s, src=src, ty=ty: s[src].cast(ty)
            c.simple = True
            return c
        if dt.is_string() and pa.types.is_string(values.type):
            trimmed = build._trim_text(distinct, opts.na_markers, False)
            if trimmed.equals(values):
                if distinct.equals(values):
                    c.expr = lambda s, src=src: s[src]
                    c.simple = True
                else:
                    c.expr = lambda s, src=src: na_trim(s[src], opts.na_markers, raw.engine)
                return c
    c.keys = distinct.filter(pa.array(notnull))
    c.mapped = values.filter(pa.array(notnull))
    c.errs = errs[notnull]
    c.expr = lambda s: s[f"_v{c.join_id}"]
    return c


def _same_values(distinct: pa.Array, values: pa.Array) -> bool:
    """Whether casting the distinct raw values gives exactly the coerced values (nulls included)."""
    import pyarrow.compute as pc

    try:
        cast = distinct.cast(values.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    if cast.null_count != values.null_count:
        return False
    eq = pc.fill_null(pc.equal(cast, values), True)
    return bool(pc.all(eq).as_py() is not False) and pc.all(
        pc.equal(pc.is_null(cast), pc.is_null(values))
    ).as_py() is not False


def _text_cells(
    raw: EngineRaw, src: str, column: str, plan: _Col | None, scan: tuple[int, int] | None = None
) -> tuple[list[tuple[Any, ...]], pa.Array | None, np.ndarray | None]:
    """``control_character`` / ``cell_too_long`` on a raw text column: events over distinct offenders."""
    t = raw.table
    if not t[src].type().is_string():
        return [], None, None
    if scan is not None and scan[1] == 0:
        return [], None, None
    if plan is not None and plan.distinct is not None and not plan.fast:
        cand = plan.distinct
    else:
        col = t[src]
        bad = col.re_search(build._CONTROL_RE) | (col.length() > build.MAX_CELL_CHARS)
        cand = build._arr(t.filter(bad).select(v=col).distinct().to_pyarrow().column("v"))
        if pa.types.is_large_string(cand.type):
            cand = cand.cast(pa.string())
    cand = cand.filter(pa.array(np.asarray(cand.is_valid()))) if len(cand) else cand
    if len(cand) == 0:
        return [], None, None
    vctx = _ValueCtx(raw.name, raw.file, raw.line_label)
    errs = np.zeros(len(cand), dtype=bool)
    build._text_cell_rules(cand, column, vctx, errs)
    return vctx.events, cand, errs


def build_table(raw: EngineRaw, be: Any, limit: int | None) -> Built:
    """Coerce one table in the engine and run the within-table rules (pandas order)."""
    name = raw.name
    spec = TABLES[name]
    opts = raw.options
    ctx = build._Ctx(name, raw.file, raw.line_label, np.zeros(0, np.int64), list(raw.findings))
    out = ctx.findings
    n = raw.rows
    rows_read = n + len(raw.bad_rows)
    for line, _text in raw.bad_rows:
        out.append(
            {
                **file_finding(
                    "field_count",
                    name,
                    raw.file,
                    f"the line does not have the header's {len(raw.columns)} fields",
                    line=line,
                    action="dropped",
                ),
                "_pos": -1,
            }
        )
    names = [str(c).strip() for c in raw.columns]
    new_names, fatal = build.resolve_columns(names, spec, opts, ctx)
    canon = set(spec.column_names)
    if fatal:
        return Built(name, raw, ctx, out, None, True, rows_read)
    if n == 0:
        ctx.table_level("no_rows", "the table has a header but no data rows")
    src_of = dict(zip(new_names, raw.columns, strict=True))
    renamed = dict(zip(names, new_names, strict=True))
    t = raw.table

    # reader cell problems (formula without value, unlabelled code): positions are rows
    cp_err: dict[str, np.ndarray] = {}
    if raw.cell_problems:
        cctx = build._Ctx(name, raw.file, raw.line_label, raw.lines)
        errors = np.zeros(n, dtype=bool)
        before = len(cctx.findings)
        build._reader_cell_problems(raw, renamed, cctx, errors)  # type: ignore[arg-type]
        out.extend(cctx.findings[before:])
        for f in cctx.findings[before:]:
            if f["severity"] == "error":
                m = cp_err.setdefault(f["column"], np.zeros(n, dtype=bool))
                m[f["_pos"]] = True

    # plans: canonical columns (spec order), then extras
    present = [c for c in spec.columns if not c.derived and c.name in src_of]
    extras = [c for c in new_names if c not in canon]
    # text columns typed by trimming (IDs, free text) and any raw text column without a
    # canonical plan: one counting scan decides whether they need trimming / text-cell queries
    scanned = [
        src_of[c.name] for c in present
        if c.kind in ("id", "string") and not opts.values.get(c.name) and t[src_of[c.name]].type().is_string()
    ]
    scan = _column_scan(raw, scanned)
    plans: dict[str, _Col] = {}
    for col in present:
        plans[col.name] = _plan_column(raw, src_of[col.name], col, scan=scan.get(src_of[col.name]))
    for c in extras:
        plans[c] = _plan_column(
            raw, src_of[c], ColumnSpec(c, "string"), extra_kind=opts.types.get(c), extra=True
        )
    joins = [p for p in plans.values() if p.keys is not None and len(p.keys)]
    cur = t
    for i, p in enumerate(joins):
        p.join_id = i
        m = be.register(
            pa.table({f"_k{i}": p.keys, f"_v{i}": p.mapped, f"_e{i}": pa.array(p.errs, pa.bool_())}),
            f"map_{raw.name}",
        )
        cur = cur.left_join(m, cur[p.src] == m[f"_k{i}"])

    # text-cell rules, per source column in file order
    text_events: list[tuple[str, list[tuple[Any, ...]], pa.Array, np.ndarray]] = []
    for c in new_names:
        ev, cand, errs = _text_cells(raw, src_of[c], c, plans.get(c), scan.get(src_of[c]))
        if ev:
            text_events.append((c, ev, cand, errs))

    # the typed stage table
    sel: dict[str, Any] = {"_rid": cur["_rid"], "_line": cur["_line"]}
    bad_names: dict[str, list[str]] = {}
    for col in spec.columns:
        if col.derived:
            continue
        if col.name in plans:
            sel[col.name] = plans[col.name].expr(cur).cast(IBIS_TYPES[col.kind]).name(col.name)  # type: ignore[misc]
        else:
            sel[col.name] = ibis.null(IBIS_TYPES[col.kind]).name(col.name)
    for c in extras:
        sel[c] = plans[c].expr(cur).name(c)  # type: ignore[misc]
    # error flags per column: coercion (mapped values), text cells, reader cell problems
    for j, p in enumerate(joins):
        sel[f"_b{j}"] = cur[f"_e{p.join_id}"].fill_null(False)
        bad_names.setdefault(p.name, []).append(f"_b{j}")
    k = 0
    for c, _ev, cand, errs in text_events:
        if errs.any():
            keys = cand.filter(pa.array(errs)).to_pylist()
            sel[f"_t{k}"] = cur[src_of[c]].isin(keys).fill_null(False)
            bad_names.setdefault(c, []).append(f"_t{k}")
            k += 1
    for c, m in cp_err.items():
        sel[f"_c_{c}"] = cur["_rid"].isin(np.flatnonzero(m).tolist())
        bad_names.setdefault(c, []).append(f"_c_{c}")
    s1 = cur.select(**sel)
    flags = [n_ for ns in bad_names.values() for n_ in ns]
    err = ibis.literal(False)
    for f_ in flags:
        err = err | s1[f_]
    s1 = s1.mutate(
        _err=err,
        **{f"_bad_{c}": _any(s1, bad_names.get(c, [])) for c in spec.required},
    )
    if flags:
        s1 = s1.drop(*flags)
    # the typed table, materialised once when typing does work (value maps joined, text
    # trimmed, error flags): the duplicate counts, the rules' scan and the validated table
    # all read it. When every column is the raw column or a plain cast of it, it stays a
    # projection of the raw table (no copy of clean Parquet or of a CSV already read).
    if not (be.engine == "duckdb" and not joins and not flags and all(p.simple for p in plans.values())):
        s1 = be.cache(s1, f"s1_{name}")

    # findings, in the pandas path's order: text cells per column, coercion per column
    wanted: dict[str, list[Any]] = {}
    for c, ev, cand, _errs in text_events:
        wanted.setdefault(src_of[c], []).extend(_event_keys(ev, cand))
    for p in plans.values():
        wanted.setdefault(p.src, []).extend(_event_keys(p.events, p.distinct))
    rows_of = _prefetch(t, wanted)
    counts: list[tuple[str, str, str | None, str, int]] = []
    for c, ev, cand, _errs in text_events:
        _emit_value_events(out, raw, rows_of.get(src_of[c]), ev, cand, limit, counts)
    for cname, p in plans.items():
        if cname in extras:
            continue
        _emit_value_events(out, raw, rows_of.get(p.src), p.events, p.distinct, limit, counts)
    for c in extras:
        ctx.table_level(
            "extra_column", f"column {c!r} is not canonical; kept as an extra column", column=c
        )
    for c in extras:
        p = plans[c]
        _emit_value_events(out, raw, rows_of.get(p.src), p.events, p.distinct, limit, counts)
    return Built(
        name,
        raw,
        ctx,
        out,
        s1,
        False,
        rows_read,
        columns=[c.name for c in present],
        extras=extras,
        counts=counts,
    )


def _any(t: ir.Table, names: list[str]) -> ir.BooleanValue:
    e = ibis.literal(False)
    for n_ in names:
        e = e | t[n_]
    return e


def _event_keys(events: list[tuple[Any, ...]], distinct: pa.Array | None) -> list[Any]:
    """Every raw value a column's value-level events name."""
    keys: list[Any] = []
    for ev in events:
        if ev[0] == "column":
            keys += distinct.filter(pa.array(ev[3])).to_pylist()  # type: ignore[union-attr]
        elif ev[0] == "cell":
            keys += distinct.take(pa.array(ev[4])).to_pylist()  # type: ignore[union-attr]
    return keys


def _prefetch(t: ir.Table, wanted: dict[str, list[Any]]) -> dict[str, tuple[list[int], list[int], list[Any]]]:
    """In one query, the rows holding any flagged raw value: per source column (rids, lines, values)."""
    wanted = {k: v for k, v in wanted.items() if v}
    if not wanted:
        return {}
    cond = ibis.literal(False)
    for src, keys in wanted.items():
        uniq = list(dict.fromkeys(k for k in keys if k is not None))
        cond = cond | t[src].isin(uniq).fill_null(False)
    got = t.filter(cond).select("_rid", "_line", *wanted).order_by("_rid").to_pyarrow()
    rid, line = got.column("_rid").to_pylist(), got.column("_line").to_pylist()
    out = {}
    for src in wanted:
        out[src] = (rid, line, got.column(src).to_pylist())
    return out


def _emit_value_events(
    out: list[dict[str, Any]],
    raw: EngineRaw,
    rows_of: tuple[list[int], list[int], list[Any]] | None,
    events: list[tuple[Any, ...]],
    distinct: pa.Array | None,
    limit: int | None,
    counts: list[tuple[str, str, str | None, str, int]],
) -> None:
    """Findings of value-level events, on the rows holding each flagged value."""
    for ev in events:
        if ev[0] == "table":
            out.append(ev[1])
            continue
        assert rows_of is not None and distinct is not None
        rid, line, vals_all = rows_of
        if ev[0] == "column":
            _, rule, column, mask, detail = ev
            keys = set(distinct.filter(pa.array(mask)).to_pylist())
            hit = [i for i, v in enumerate(vals_all) if v in keys]
            first = hit[:3]
            ex = build.examples_text([vals_all[i] for i in first], [line[i] for i in first], raw.line_label)
            c = build._Ctx(raw.name, raw.file, raw.line_label, np.zeros(0))
            c.table_level(rule, detail(ex, len(hit)), column=column, value=vals_all[first[0]])
            out.extend(c.findings)
            continue
        _, rule, column, action, pos, shown_values, details = ev
        py_keys = distinct.take(pa.array(pos)).to_pylist()
        lookup = {k: (v, d) for k, v, d in zip(py_keys, shown_values, details, strict=True)}
        hit = [i for i, v in enumerate(vals_all) if v in lookup]
        counts.append((raw.name, rule, column, RULES[rule].severity, len(hit)))
        if limit is not None:
            hit = hit[:limit]
        rows = pd.DataFrame({"_rid": [rid[i] for i in hit], "_line": [line[i] for i in hit]})
        vals = [lookup[vals_all[i]][0] for i in hit]
        dets = [lookup[vals_all[i]][1] for i in hit]
        _emit(out, raw, rule, rows, column, vals, lambda _v, p, dets=dets: dets[p], action)


# ---------------------------------------------------------------------------
# row rules within a table and across tables
# ---------------------------------------------------------------------------
def row_rules(b: Built, built: dict[str, Built], as_of: pd.Timestamp | None, drop_mode: bool,
              be: Any, limit: int | None) -> None:
    """Missing values, ranges, date order, age, duplicates and the cross-table rules; sets ``b.s2``."""
    assert b.s1 is not None
    spec = TABLES[b.name]
    raw = b.raw
    out = b.findings
    s = b.s1
    label = raw.line_label
    kinds = {c.name: c.kind for c in spec.columns}

    # duplicates: copies of a whole row, then keys shared among the remaining rows. Hash
    # aggregates (GROUP BY every column, then GROUP BY the key) count them; only when a
    # count is non-zero are the few duplicated groups joined back (NULL-safe) to mark rows.
    check_cols = [c.name for c in spec.columns if not c.derived] + list(b.extras)
    if spec.key and _hash_candidates(s, list(spec.key), be) is None:
        # no two rows share a key, so no two rows are copies either: one aggregate over
        # the key's hash settles both (DuckDB; Spark takes the general path)
        s = s.mutate(_copy=ibis.literal(False), _first_line=ibis.null("int64"), _dupkey=ibis.literal(False))
        b.unique_key = True
        copies_expr = s["_copy"]
    elif spec.key:
        s, copies_expr = _mark_copies(s, check_cols, be)
        s, dupkey = _mark_dup_keys(s, list(spec.key), copies_expr, be)
        s = s.mutate(_dupkey=ibis.literal(False) if dupkey is False else dupkey)
        b.unique_key = copies_expr is False and dupkey is False
    else:
        s, copies_expr = _mark_copies(s, check_cols, be)
        s = s.mutate(_dupkey=ibis.literal(False))
    copies_expr = s["_copy"]

    # references: the participant's first row (its dates, whether it has an error)
    refs: list[tuple[str, str, str, Built]] = []
    for col, (ptable, pcol) in spec.references.items():
        parent = built.get(ptable)
        if parent is None or parent.fatal or col not in b.columns:
            continue
        # privacy.scan._held_by_collected relies on this rule: IDs that reference a collected
        # table are not searched again on an engine report (keep the two in step)
        if ptable == "mentors" and parent.rows_read == 0:
            continue
        assert parent.s2 is not None
        ps = parent.s2
        if parent.unique_key and TABLES[ptable].key == (pcol,):
            # no copies and no shared keys: every non-null key is its own first row
            first = ps.filter(ps[pcol].notnull())
        else:
            first = ps.mutate(_minrid=ps["_rid"].min().over(group_by=ps[pcol]))
            first = first.filter(first[pcol].notnull() & (first["_rid"] == first["_minrid"]))
        i = len(refs)
        cols = {f"_pk{i}": first[pcol], f"_prid{i}": first["_rid"], f"_pline{i}": first["_line"],
                f"_perr{i}": first["_error"]}
        if ptable == "participants":
            cols.update(_penr=first["enrollment_date"], _pbirth=first["birth_date"], _pdis=first["discharge_date"])
        first = first.select(**cols)
        s = s.left_join(first, s[col] == first[f"_pk{i}"])
        refs.append((col, ptable, parent.raw.file, parent))
    rr = _Rows(b, s, limit)

    # -- within the table ------------------------------------------------------
    errors: list[ir.BooleanValue] = [s["_err"]]
    for req in spec.required:
        cond = s[req].isnull() & ~s[f"_bad_{req}"]
        rr.add("missing_value", cond, req, lambda df: [None] * len(df),
                   lambda df, req=req: (lambda _v, _p: checks.missing_detail(req)), "", limit)
        errors.append(cond)
    for col in spec.columns:
        if col.range is not None and col.name in b.columns:
            lo, hi = col.range
            v = s[col.name].cast("float64")
            cond = ((v < lo) | (v > hi)).fill_null(False)
            rr.add("range", cond, col.name,
                       lambda df, c=col.name: [float(x) for x in df[c]],
                       lambda df, lo=lo, hi=hi, c=col.name: (lambda val, _p: checks.range_detail(c, val, lo, hi)),
                       "", limit, by_value=False)
            errors.append(cond)
    for table, rule, later_col, earlier_col in checks.DATE_ORDER_RULES:
        if table != b.name:
            continue
        cond = (s[later_col] < s[earlier_col]).fill_null(False)
        rr.add(rule, cond, later_col,
                   lambda df, lc=later_col: [_iso(x) for x in df[lc]],
                   lambda df, r=rule, lc=later_col, ec=earlier_col: (
                       lambda v, p: checks.date_order_detail(r, lc, v, ec, _iso(df[ec].iloc[p]))), "", limit)
        errors.append(cond)
    if b.name == "participants":
        enr, birth = s["enrollment_date"], s["birth_date"]
        days = (enr.epoch_days() - birth.epoch_days()).cast("float64")
        age = days / 365.25
        lo, hi = checks.AGE_RANGE
        cond = (((age < lo) | (age > hi)) & birth.notnull() & enr.notnull() & ~(enr < birth).fill_null(False)).fill_null(False)
        rr.extra["_age"] = age
        rr.add("range", cond, "birth_date",
                   lambda df: [_iso(x) for x in df["birth_date"]],
                   lambda df: (lambda v, p: checks.age_detail(v, float(df["_age"].iloc[p]))), "", limit)
        errors.append(cond)
    if spec.key:
        rr.add("duplicate_row", copies_expr, None, lambda df: [None] * len(df),
                   lambda df: (lambda _v, p: checks.duplicate_row_detail(label, int(df["_first_line"].iloc[p]))),
                   "dropped", limit)
        rr.flag("_fdk", s["_dupkey"])

        def dupkeys(df: pd.DataFrame) -> None:
            dk = df[df["_fdk"]].reset_index(drop=True)
            if not len(dk):
                return
            keyed = list(spec.key)
            keys = [tuple(_key_text(r[k], kinds[k]) for k in keyed) for _, r in dk.iterrows()]
            groups: dict[tuple[str, ...], list[int]] = {}
            for k, ln in zip(keys, dk["_line"].tolist(), strict=True):
                groups.setdefault(k, []).append(int(ln))
            key_label = ", ".join(keyed)
            shown_rows = dk if limit is None else dk.head(limit)
            _emit(
                out, raw, "duplicate_key", shown_rows, keyed[0],
                [checks.key_value_text(k)[0] for k in keys[: len(shown_rows)]],
                lambda v, p: checks.duplicate_key_detail(key_label, v, label, groups[keys[p]]), "",
            )
            b.counts.append((b.name, "duplicate_key", keyed[0], "error", len(dk)))

        rr.later(dupkeys)
        errors.append(s["_dupkey"])

    # -- across tables ---------------------------------------------------------
    lost_any: ir.BooleanValue = ibis.literal(False)
    for i, (col, ptable, pfile, parent) in enumerate(refs):
        orphan = s[col].notnull() & s[f"_pk{i}"].isnull()
        rr.add("orphan", orphan, col, lambda df, col=col: df[col].tolist(),
                   lambda df, ptable=ptable, pfile=pfile: (lambda v, _p: checks.orphan_detail(v, ptable, pfile)),
                   "", limit, by_value=True)
        errors.append(orphan)
        if drop_mode:
            so_far = _or(errors)
            lost = s[f"_pk{i}"].notnull() & s[f"_perr{i}"].fill_null(False) & ~so_far
            plabel = parent.raw.line_label
            rr.add("parent_dropped", lost, col, lambda df, col=col: df[col].tolist(),
                       lambda df, i=i, pfile=pfile, plabel=plabel: (
                           lambda v, p: checks.parent_dropped_detail(v, pfile, plabel, int(df[f"_pline{i}"].iloc[p]))),
                       "dropped", limit)
            lost_any = lost_any | lost
    date_col = checks.TABLE_DATE_COLUMN[b.name]
    if as_of is not None:
        cut = ibis.date(as_of.year, as_of.month, as_of.day)
        for c in checks.AS_OF_COLUMNS[b.name]:
            late = (s[c] > cut).fill_null(False)
            rr.add("after_as_of", late, c, lambda df, c=c: [_iso(x) for x in df[c]],
                       lambda df, c=c: (lambda v, _p: checks.after_as_of_detail(c, v, as_of.date().isoformat())),
                       "", limit)
    has_p = any(r[1] == "participants" for r in refs)
    before = None
    if has_p:
        d = s[date_col]
        bb = (d < s["_pbirth"]).fill_null(False)
        rr.add("before_birth", bb, date_col, lambda df: [_iso(x) for x in df[date_col]],
                   lambda df: (lambda v, q: checks.before_birth_child_detail(date_col, v, _iso(df["_pbirth"].iloc[q]))),
                   "", limit)
        errors.append(bb)
        before = d < s["_penr"]
        if b.name in ("events", "contacts"):

            hit = before.fill_null(False)
            rr.total("_be_n", hit.cast("int64").sum())
            rr.total("_be_first", s["_line"].min(where=hit))

            def before_enrollment(_df: pd.DataFrame) -> None:
                got = {"n": rr.totals["_be_n"], "first": rr.totals["_be_first"]}
                if got["n"]:
                    c = build._Ctx(raw.name, raw.file, label, np.zeros(0))
                    c.table_level(
                        "before_enrollment",
                        checks.before_enrollment_detail(b.name, int(got["n"]), label, int(got["first"])),
                        column=date_col,
                        line=int(got["first"]),
                        action="kept",
                    )
                    out.extend(c.findings)

            rr.later(before_enrollment)
        if b.name == "assessments":
            dd = s["assessment_date"].epoch_days()
            for point, (lo, hi) in ASSESSMENT_WINDOWS.items():
                ref = s["_pdis"] if point == "discharge" else s["_penr"]
                refname = "discharge_date" if point == "discharge" else "enrollment_date"
                gap = (dd - ref.epoch_days()).cast("float64")
                far = ((s["timepoint"] == point) & ((gap < lo) | (gap > hi))).fill_null(False)
                gname = f"_gap_{point}"
                rr.extra[gname] = gap
                rr.add("assessment_window", far, "assessment_date",
                           lambda df: [_iso(x) for x in df["assessment_date"]],
                           lambda df, point=point, lo=lo, hi=hi, refname=refname, gname=gname: (
                               lambda v, q: checks.assessment_window_detail(point, v, float(df[gname].iloc[q]), lo, hi, refname)),
                           "", limit)
    if not spec.key:

        def repeated(df: pd.DataFrame) -> None:
            reps = df[df["_frep"]]
            if len(reps):
                c = build._Ctx(raw.name, raw.file, label, np.zeros(0))
                c.table_level(
                    "repeated_row",
                    checks.repeated_row_detail(len(reps), label, [int(x) for x in reps["_line"][:10]]),
                    line=int(reps["_line"].iloc[0]),
                    action="kept",
                )
                out.extend(c.findings)

        rr.flag("_frep", copies_expr)
        rr.later(repeated)
    rr.flag("_ferr", _or(errors))
    error = _or(errors)
    copies = copies_expr if spec.key else ibis.literal(False)
    remove = copies | lost_any | (error if drop_mode else ibis.literal(False))
    rr.flag("_fremove", remove)
    rr.run()
    # every removed row is a flagged row, so the fetched rows name them all: the validated
    # table is the typed table less these rows (no second evaluation of the rules)
    b.removed = rr.df.loc[rr.df["_fremove"].to_numpy(bool), "_rid"].to_numpy(np.int64)
    mut: dict[str, Any] = {"_error": error, "_remove": remove}
    if b.name == "events":
        mut["before_enrollment"] = (
            ibis.ifelse(s[date_col].notnull() & s["_penr"].notnull(), before, ibis.null("boolean"))
            if before is not None
            else ibis.null("boolean")
        )
    s2 = s.mutate(**mut)
    b.final = _final_rows(b, built)
    # parents are queried by every child table: on Spark cached; DuckDB reads the typed
    # parent (a table or a projection of its file) in each child's join
    b.s2 = be.cache(s2, f"s2_{b.name}") if b.name in ("participants", "mentors") and be.engine != "duckdb" else s2
    b.error_count = rr.error_count


def _final_rows(b: Built, built: dict[str, Built]) -> ir.Table:
    """The typed table with the loader's derived columns (events: ``before_enrollment``).

    Built from the typed table and, for events, a join to the participants' first rows
    for their enrollment date -- not from the rules' table, whose duplicate and
    reference joins the stored table does not need.
    """
    assert b.s1 is not None
    s1 = b.s1
    keep = ["_rid", *[c.name for c in TABLES[b.name].columns if not c.derived], *b.extras]
    if b.name != "events":
        return s1.select(*keep)
    parent = built.get("participants")
    date_col = checks.TABLE_DATE_COLUMN["events"]
    if parent is None or parent.fatal or parent.s2 is None or "participant_id" not in b.columns:
        return s1.select(*keep, before_enrollment=ibis.null("boolean"))
    ps = parent.s2
    if parent.unique_key:
        first = ps.filter(ps["participant_id"].notnull())
    else:
        first = ps.mutate(_minrid=ps["_rid"].min().over(group_by=ps["participant_id"]))
        first = first.filter(first["participant_id"].notnull() & (first["_rid"] == first["_minrid"]))
    first = first.select(_fpk=first["participant_id"], _fenr=first["enrollment_date"])
    j = s1.left_join(first, s1["participant_id"] == first["_fpk"])
    d = j[date_col]
    enr = j["_fenr"]
    return j.select(
        *keep, before_enrollment=ibis.ifelse(d.notnull() & enr.notnull(), d < enr, ibis.null("boolean"))
    )


def _hash_candidates(s: ir.Table, cols: list[str], be: Any) -> ir.Table | None:
    """The rows that may share their values of ``cols`` with another row; None when none can.

    DuckDB: one aggregate over a 64-bit hash of the columns (a single integer per row,
    not the columns' text) finds the hashes seen more than once; equal rows have equal
    hashes, so only rows with such a hash are grouped exactly by the caller (a hash
    collision costs a few rows more, never a missed duplicate). Spark: the table itself.
    """
    if be.engine != "duckdb":
        return s
    sql = str(be.con.compile(s))
    hcols = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
    name = be.name("dup_hash")
    con = be.con.con
    con.execute(
        f'CREATE TEMP TABLE "{name}" AS SELECT _h FROM (SELECT hash({hcols}) AS _h FROM ({sql})) '
        "GROUP BY _h HAVING count(*) > 1"
    )
    if con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] == 0:
        con.execute(f'DROP TABLE "{name}"')
        return None
    return be.con.sql(f'SELECT * FROM ({sql}) WHERE hash({hcols}) IN (SELECT _h FROM "{name}")')


def _mark_copies(s: ir.Table, cols: list[str], be: Any) -> tuple[ir.Table, Any]:
    """Add ``_copy`` (a later copy of an earlier whole row) and ``_first_line`` (that row's line).

    A hash aggregate over every column finds the duplicated groups; the second element
    is ``False`` when there are none (then no join), else the boolean expression.
    """
    cand = _hash_candidates(s, cols, be)
    if cand is None:
        return s.mutate(_copy=ibis.literal(False), _first_line=ibis.null("int64")), False
    g = cand.group_by([cand[c] for c in cols]).aggregate(
        _gn=cand["_rid"].count(), _grid=cand["_rid"].min(), _first_line=cand["_line"].min()
    )
    g = be.cache(g.filter(g["_gn"] > 1), "dup_rows")  # the duplicated groups only: small
    if int(g.count().to_pyarrow().as_py()) == 0:
        return s.mutate(_copy=ibis.literal(False), _first_line=ibis.null("int64")), False
    if be.engine == "duckdb":
        # the candidates are few: mark their row ids, and join the table on one integer
        m = cand.inner_join(g, [cand[c].identical_to(g[c]) for c in cols]).select(
            _crid=cand["_rid"], _ccopy=cand["_rid"] != g["_grid"], _cfirst=g["_first_line"]
        )
        m = be.cache(m, "dup_row_ids")
        j = s.left_join(m, s["_rid"] == m["_crid"]).select(
            *s.columns, _copy=m["_ccopy"].fill_null(False), _first_line=m["_cfirst"]
        )
        return j, True
    j = s.left_join(g, [s[c].identical_to(g[c]) for c in cols]).select(
        *s.columns, _copy=(g["_grid"].notnull() & (s["_rid"] != g["_grid"])).fill_null(False),
        _first_line=g["_first_line"],
    )
    return j, True


def _mark_dup_keys(s: ir.Table, key: list[str], copies: Any, be: Any) -> tuple[ir.Table, Any]:
    """``_dupkey``: a first row (not a copy) whose key another first row shares (as the pandas path)."""
    firsts = s.filter(~s["_copy"]) if copies is not False else s
    cand = _hash_candidates(firsts, key, be)
    if cand is None:
        return s, False
    firsts = cand
    g = firsts.group_by([firsts[k] for k in key]).aggregate(_kn=firsts["_rid"].count())
    g = be.cache(g.filter(g["_kn"] > 1), "dup_keys")
    if int(g.count().to_pyarrow().as_py()) == 0:
        return s, False
    if be.engine == "duckdb":
        m = firsts.inner_join(g, [firsts[k].identical_to(g[k]) for k in key]).select(_krid=firsts["_rid"])
        m = be.cache(m, "dup_key_ids")
        j = s.left_join(m, s["_rid"] == m["_krid"]).select(*s.columns, _kn=m["_krid"])
        return j, (~j["_copy"] & j["_kn"].notnull())
    j = s.left_join(g, [s[k].identical_to(g[k]) for k in key])
    j = j.select(*s.columns, _kn=g["_kn"])
    return j, (~j["_copy"] & j["_kn"].notnull())


def _or(conds: list[ir.BooleanValue]) -> ir.BooleanValue:
    e = ibis.literal(False)
    for c in conds:
        e = e | c.fill_null(False)
    return e


class _Rows:
    """A table's row rules, fetched in one query and recorded in the pandas path's order."""

    def __init__(self, b: Built, s: ir.Table, limit: int | None) -> None:
        self.b, self.s, self.limit = b, s, limit
        self.steps: list[tuple[Any, ...]] = []
        self.flags: dict[str, ir.BooleanValue] = {}
        self.extra: dict[str, ir.Value] = {}
        self.error_count = 0
        self.aggs: dict[str, ir.Scalar] = {}
        self.totals: dict[str, Any] = {}
        self.df = pd.DataFrame()

    def total(self, name: str, expr: ir.Scalar) -> None:
        """A table-level aggregate computed in the same scan as the rules' counts (``totals``)."""
        self.aggs[name] = expr

    def add(
        self,
        rule: str,
        cond: ir.BooleanValue,
        column: str | None,
        values: Callable[[pd.DataFrame], list[Any]],
        detail: Callable[[pd.DataFrame], Callable[[Any, int], str]],
        action: str,
        limit: int | None = None,
        by_value: bool = False,
    ) -> None:
        name = f"_f{len(self.flags)}"
        self.flags[name] = cond.fill_null(False)
        self.steps.append(("rows", name, rule, column, values, detail, action, by_value))

    def flag(self, name: str, cond: ir.BooleanValue) -> None:
        self.flags[name] = cond.fill_null(False)

    def later(self, fn: Callable[[pd.DataFrame], None]) -> None:
        self.steps.append(("call", fn))

    def run(self) -> None:
        s = self.s.mutate(**self.extra, **self.flags)
        # one scan counts every rule (and the table-level totals); the offending rows are
        # fetched, in a second scan, only when some rule flagged any
        aggs = {n: s[n].cast("int64").sum() for n in self.flags}
        aggs.update(self.aggs)
        got = s.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        self.totals = got
        hit = [n for n in self.flags if got[n]]
        if hit:
            # only the conditions that flagged rows: a filter on the table's own columns
            # (copies, say) is then applied before the parents' joins
            df = _fetch(s.filter(_or([s[n] for n in hit])), None)
            for n in self.flags:
                if n not in hit:
                    df[n] = False
        else:
            df = pd.DataFrame({"_rid": np.zeros(0, np.int64), "_line": np.zeros(0, np.int64),
                               **{n: np.zeros(0, bool) for n in self.flags}})
        self.df = df
        self.error_count = int(got["_ferr"] or 0)
        out = self.b.findings
        for step in self.steps:
            if step[0] == "call":
                step[1](df)
                continue
            _, name, rule, column, values, detail, action, by_value = step
            rows = df[df[name]].reset_index(drop=True)
            if len(rows) == 0:
                continue
            self.b.counts.append((self.b.name, rule, column, RULES[rule].severity, len(rows)))
            if self.limit is not None and len(rows) > self.limit:
                rows = rows.head(self.limit)
            _emit(out, self.b.raw, rule, rows, column, values(rows), detail(rows), action, by_value=by_value)


__all__ = ["EngineRaw", "build_table", "row_rules", "na_trim", "DISTINCT_MAX"]
