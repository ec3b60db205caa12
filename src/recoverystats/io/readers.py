"""Format readers: one file (or SQL query) -> a ``RawTable`` of columns as stored (internal).

Every reader returns the columns exactly as the source stores them (CSV and Excel
cells as text, so IDs like ``007`` keep their zeros; Parquet/SPSS/Stata/SQL columns in
their native types), the source line number of every row, and findings about how the
file was read. Type coercion and validation happen afterwards, once, in
:mod:`recoverystats.io.build`, identically for every format.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recoverystats.errors import DataValidationError
from recoverystats.io.mapping import TableMapping
from recoverystats.schema.rules import RULES

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm", ".sav", ".zsav", ".dta")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
DUCKDB_SUFFIXES = (".duckdb", ".ddb")


@dataclass
class RawTable:
    """One table as read from its source, before coercion (internal)."""

    name: str
    data: pa.Table
    file: str
    #: Line (or record) number of each row; ``None`` means ``first_line + position``.
    lines: np.ndarray | None = None
    first_line: int = 1
    line_label: str = "row"
    options: TableMapping = field(default_factory=TableMapping)
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: ``(table, path, sha256, bytes)`` of every file read for this table.
    sources: list[tuple[str, str, str, int]] = field(default_factory=list)
    #: Rows the reader could not split into fields: (line, text); counted as read and dropped.
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    #: NA markers already applied by the reader (CSV) so coercion can skip that pass.
    na_applied: bool = False
    #: Files read but not hashed yet (``read_csv(defer_hash=True)``); see ``hash_later``.
    unhashed: list[Path] = field(default_factory=list)
    #: Cell problems the reader saw and the data cannot show (a formula without a saved
    #: value, an unlabelled SPSS code): ``(rule, position, source column, value, detail)``.
    cell_problems: list[tuple[str, int, str, Any, str]] = field(default_factory=list)
    #: A table read from several Parquet files (:class:`recoverystats.engines.sources.Dataset`):
    #: findings are renamed to each row's file and row within it.
    parts: Any = None

    def line_numbers(self) -> Any:
        """Line number of each row, indexable by a position or an array of positions."""
        if self.lines is not None:
            return self.lines
        return SequentialLines(self.first_line, self.data.num_rows)


class SequentialLines:
    """``first + position`` for every row, computed only for the positions asked for.

    Stands in for ``np.arange(first, first + n)`` (indexing by an int or an integer
    array gives the same values) without materialising millions of line numbers on the
    happy path, where no finding needs one.
    """

    __slots__ = ("first", "n")

    def __init__(self, first: int, n: int):
        self.first = first
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, pos: Any) -> Any:
        if isinstance(pos, (int, np.integer)):
            p = int(pos)
            if not -self.n <= p < self.n:
                raise IndexError(p)
            return np.int64(self.first + (p % self.n if p < 0 else p))
        if isinstance(pos, slice):
            return np.arange(self.first, self.first + self.n, dtype=np.int64)[pos]
        a = np.asarray(pos)
        if a.dtype == bool:
            if a.shape != (self.n,):
                raise IndexError("boolean index does not match the number of rows")
            return np.flatnonzero(a).astype(np.int64) + self.first
        a = a.astype(np.int64)
        if a.size and (a.min() < -self.n or a.max() >= self.n):
            raise IndexError("row position out of range")
        return np.where(a < 0, a + self.n, a) + self.first

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.arange(self.first, self.first + self.n, dtype=dtype or np.int64)


class ReadFailure(Exception):
    """A file- or table-level problem that stops this table from being read (internal)."""

    def __init__(
        self, rule: str, message: str, column: str | None = None, value: str | None = None
    ):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.column = column
        self.value = value


def file_finding(
    rule: str,
    table: str,
    file: str,
    detail: str,
    *,
    line: int | None = None,
    column: str | None = None,
    value: Any = None,
    action: str = "",
    label: str = "line",
) -> dict[str, Any]:
    """A table/file-scope finding as a row dict (message names file, rule and the fix)."""
    r = RULES[rule]
    fix = r.fix_text(table=table, column=column)
    where = (
        file
        + (f" {label} {line}" if line is not None else "")
        + (f", column {column}" if column else "")
    )
    return {
        "rule": rule,
        "severity": r.severity,
        "table": table,
        "file": file,
        "line": line,
        "column": column,
        "value": None if value is None else str(value),
        "message": f"{where}: {detail}; fix: {fix} [{rule}]",
        "action": action,
    }


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# ---------------------------------------------------------------------------
# column construction from Python objects (Excel, SQLite, object columns)
# ---------------------------------------------------------------------------
def _cell_text(v: Any, decimal: str | None = None) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        if v != v:  # NaN
            return None
        if v.is_integer():
            return str(int(v))
        return repr(v) if decimal in (None, ".") else repr(v).replace(".", decimal)
    if isinstance(v, _dt.datetime):
        return v.date().isoformat() if v.time() == _dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def column_from_objects(values: list[Any], *, decimal: str | None = None) -> pa.Array:
    """One homogeneous Arrow array from Python cell values.

    All-bool -> bool, all-int -> int64, all-number -> float64, all-date/datetime ->
    timestamp; anything mixed becomes text (numbers written without a spurious ``.0``,
    dates as ISO ``YYYY-MM-DD``), so one odd cell never makes the column unreadable.
    ``decimal``: the source's decimal mark (``program.toml`` ``decimal``), used when a
    number cell is written as text beside text cells such as ``'12,5'``, so the column
    reads with one convention.
    """
    kinds = set()
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            continue
        if isinstance(v, bool) or isinstance(v, np.bool_):
            kinds.add("bool")
        elif isinstance(v, (int, np.integer)):
            kinds.add("int")
        elif isinstance(v, (float, np.floating)):
            kinds.add("float")
        elif isinstance(v, (_dt.datetime, _dt.date)):
            kinds.add("date")
        else:
            kinds.add("str")
        if len(kinds) > 2:
            break
    clean = [None if (v is None or (isinstance(v, float) and v != v)) else v for v in values]
    if kinds == {"bool"}:
        return pa.array(clean, type=pa.bool_())
    if kinds == {"int"}:
        return pa.array([None if v is None else int(v) for v in clean], type=pa.int64())
    if kinds and kinds <= {"int", "float"}:
        return pa.array([None if v is None else float(v) for v in clean], type=pa.float64())
    if kinds == {"date"}:
        return pa.array(
            [
                None
                if v is None
                else (v if isinstance(v, _dt.datetime) else _dt.datetime(v.year, v.month, v.day))
                for v in clean
            ],
            type=pa.timestamp("us"),
        )
    if not kinds:
        return pa.nulls(len(values), type=pa.string())
    return pa.array([_cell_text(v, decimal) for v in clean], type=pa.string())


def frame_to_arrow(df: Any) -> pa.Table:
    """A pandas DataFrame as an Arrow table, tolerating mixed-type object columns."""
    import pandas as pd

    cols: dict[str, pa.Array] = {}
    for name in df.columns:
        s = df[name]
        key = str(name)
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).where(s.notna(), None)
        if s.dtype == object:
            try:  # homogeneous objects (all str, all date, ...) convert in C
                arr = pa.array(s, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                arr = None
            if arr is None or pa.types.is_null(arr.type) and s.notna().any():
                arr = column_from_objects(s.tolist())
            if pa.types.is_large_string(arr.type):
                arr = arr.cast(pa.string())
            cols[key] = arr
            continue
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            arr = column_from_objects(s.astype(object).tolist())
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = arr.cast(pa.timestamp(arr.type.unit))
        cols[key] = arr
    return pa.table(cols) if cols else pa.table({})


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------
_OTHER_DELIMITERS = (";", "\t", "|", ",")


def _no_content(message: str) -> str:
    """A parser message without the row text that pyarrow appends after ``got N: ``."""
    first = message.splitlines()[0] if message else ""
    return re.sub(r"(got \d+ columns?)\s*:.*$", r"\1", first)[:200]


def _header_fields(text: str, delimiter: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:  # e.g. a stray quote or control character: fall back to a plain split
        return text.split(delimiter)


def read_csv(
    path: Path, name: str, opts: TableMapping, display: str, *, defer_hash: bool = False
) -> RawTable:
    """Read a delimited text file with pyarrow, every column as text.

    UTF-8 (with or without BOM) is tried first; bytes that are not UTF-8 make it fall
    back to latin-1 with an ``encoding`` info finding (or use ``encoding`` from the
    mapping). Blank lines are ignored but line numbers still count them.

    ``defer_hash=True`` leaves the SHA-256 to the caller (``RawTable.unhashed``), so it
    can run while the tables are validated (pyarrow's reader already keeps every core
    busy; validation mostly uses one).
    """
    import pyarrow.csv as pcsv

    if defer_hash:
        table = _parse_csv(path, name, opts, display, pcsv)
        table.unhashed.append(path)
        return table
    with ThreadPoolExecutor(max_workers=1) as pool:
        # hash in a parallel thread while pyarrow streams the file (no copy of it in memory)
        digest = pool.submit(sha256_file, path)
        table = _parse_csv(path, name, opts, display, pcsv)
        sha, size = digest.result()
        table.sources.append((name, str(path), sha, size))
    return table


def _parse_csv(path: Path, name: str, opts: TableMapping, display: str, pcsv: Any) -> RawTable:
    findings: list[dict[str, Any]] = []
    size = path.stat().st_size
    if size == 0:
        raise ReadFailure(
            "file_empty", f"{display}: the file is empty (0 bytes); it has no header line"
        )
    whole: list[bytes] = []

    def data() -> bytes:
        """The whole file, read only on the careful path (blank lines, ragged rows, bad bytes)."""
        if not whole:
            whole.append(path.read_bytes())
        return whole[0]

    encoding = opts.encoding or "utf-8"
    header_row = opts.header_row or 1
    delimiter = opts.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
        start = 3 if head[:3] == b"\xef\xbb\xbf" else 0
        if opts.header_row is None:
            # blank lines above the header: the header is the first non-blank line, and
            # data line numbers count the blank lines (as a text editor shows them)
            header_row = 1 + _leading_blank_lines(head if _NONSPACE.search(head, start) else data(), start)
        while len(head.splitlines()) <= header_row and len(head) < size:
            more = fh.read(1 << 20)
            if not more:
                break
            head += more
    if _NONSPACE.search(head, start) is None and (
        len(head) >= size or _NONSPACE.search(data(), start) is None
    ):
        raise ReadFailure(
            "file_empty", f"{display}: the file holds only blank lines; it has no header line"
        )
    # the header line as the user sees it (\n, \r\n or a lone \r end a line, as for pyarrow)
    head_lines = head[start:].splitlines()
    if len(head_lines) < header_row:
        raise ReadFailure(
            "file_unreadable", f"{display}: header_row {header_row} is past the end of the file"
        )
    head_bytes = head_lines[header_row - 1]
    try:
        head_text = head_bytes.decode(encoding)
    except UnicodeDecodeError:
        if opts.encoding:
            raise ReadFailure(
                "file_unreadable", f"{display}: the header is not valid {encoding}"
            ) from None
        encoding = "latin-1"
        head_text = head_bytes.decode("latin-1")
    header = _header_fields(head_text, delimiter)
    near = [
        _header_fields(ln.decode(encoding, errors="replace"), delimiter)
        for ln in head_lines[: max(HEADER_SEARCH, header_row)]
    ]
    check_header(near, header_row - 1, name, opts, display, "line")
    if len(header) <= 1:
        for other in _OTHER_DELIMITERS:
            if other != delimiter and other in head_text:
                shown = "\\t" if other == "\t" else other
                raise ReadFailure(
                    "delimiter",
                    f"{display} line {header_row}: the header is one column when split on "
                    f'{delimiter!r}; the file looks {shown!r}-delimited (set delimiter = "{shown}" in program.toml '
                    f"[tables.{name}])",
                )
    names = [h.strip() for h in header]
    typed = _date_hints(names, name, opts)
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        if row.text.strip():  # whitespace-only lines count as blank lines
            invalid.append((row.number, row.text))
        return "skip"

    lost: list[Any] = []

    def attempt(enc: str, strict: bool) -> pa.Table:
        if not strict:  # a row pyarrow cannot hand to the handler must not vanish silently
            hook = sys.unraisablehook
            sys.unraisablehook = lambda u: lost.append(u.exc_value)
            try:
                return _read(enc, strict)
            finally:
                sys.unraisablehook = hook
        return _read(enc, strict)

    def _read(enc: str, strict: bool) -> pa.Table:
        # strict: blank lines are rows and no row handler, so any blank line or ragged row
        # raises and we re-read on the careful path; the happy path stays multi-threaded
        invalid.clear()
        return pcsv.read_csv(
            str(path),  # pyarrow streams the file and skips a UTF-8 BOM itself
            read_options=pcsv.ReadOptions(skip_rows=header_row, column_names=names, encoding=enc),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=not strict,
                ignore_empty_lines=not strict,
                invalid_row_handler=None if strict else on_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                # text as large_string: what pandas' string[pyarrow] holds (no copy later)
                column_types={n: typed.get(n, pa.large_string()) for n in names},
                null_values=list(opts.na_markers),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )

    def careful_encoding(enc: str) -> str:
        # pyarrow decodes a malformed row before calling the handler, so undecodable bytes
        # must be known before the careful (handler) path: fall back to latin-1 up front
        if enc.replace("-", "").lower() == "utf8" and not _is_utf8(data(), start):
            if opts.encoding:
                raise ReadFailure(
                    "file_unreadable",
                    f"{display}: the file is not valid {opts.encoding} although program.toml says "
                    f"encoding = {opts.encoding!r}",
                )
            return "latin-1"
        return enc

    strict = len(names) > 1
    if not strict:
        encoding = careful_encoding(encoding)
    for _ in range(5):
        try:
            tbl = attempt(encoding, strict)
            break
        except pa.ArrowInvalid as exc:
            text = str(exc)
            if typed and "conversion error" in text.lower():
                # a date that is not strict ISO: read every column as text, as below
                typed = {}
                continue
            if "UTF8" in text.upper() and not opts.encoding and encoding != "latin-1":
                encoding = "latin-1"
                continue
            if strict and "column" in text.lower():
                strict = False
                encoding = careful_encoding(encoding)
                continue
            raise ReadFailure(
                "file_unreadable", f"{display}: cannot parse as CSV: {_no_content(text)}"
            ) from None
    else:  # pragma: no cover - the loop always breaks or raises
        raise ReadFailure("file_unreadable", f"{display}: cannot parse as CSV")
    if strict and tbl.num_rows and tbl.column(0).null_count:
        # blank lines come back as all-null rows on the strict path: re-read skipping them
        import pyarrow.compute as pc

        all_null = pc.is_null(tbl.column(0))
        for col in tbl.columns[1:]:
            all_null = pc.and_(all_null, pc.is_null(col))
        if pc.any(all_null).as_py():
            strict = False
            encoding = careful_encoding(encoding)
            tbl = attempt(encoding, strict)
    if lost:
        raise ReadFailure(
            "file_unreadable",
            f"{display}: {len(lost)} malformed line(s) could not be read "
            f"({type(lost[0]).__name__}: {_no_content(str(lost[0]))}); "
            "check the encoding and the delimiter",
        )
    if encoding == "latin-1" and not opts.encoding:
        findings.append(
            file_finding(
                "encoding",
                name,
                display,
                "bytes that are not UTF-8 were found; the file was read as latin-1",
            )
        )
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise ReadFailure(
            "duplicate_column",
            f"{display} line {header_row}: column(s) {', '.join(map(repr, dups))} appear more than once in the header",
        )
    # line numbers: data starts right after the header unless blank lines sit between rows
    lines = None
    if not strict and (_has_inner_blank(data(), start) or invalid):
        lines = _line_numbers(data()[start:], header_row, delimiter, encoding)
    bad_rows: list[tuple[int, str]] = []
    if invalid:
        bad_rows = _locate_invalid(data()[start:], header_row, invalid, encoding)
        if lines is not None and len(lines) == tbl.num_rows + len(bad_rows):
            bad_set = {b[0] for b in bad_rows}
            lines = np.array([ln for ln in lines if ln not in bad_set], dtype=np.int64)
    if (lines is not None and len(lines) != tbl.num_rows) or any(b[0] == 0 for b in bad_rows):
        # quoted newlines, or a malformed row not found as one line: number the records
        # the way a CSV parser sees them (used only when the counts agree with pyarrow's)
        rec = _record_lines(data()[start:], header_row, delimiter, encoding, len(names))
        if rec is not None and len(rec[0]) == tbl.num_rows and len(rec[1]) == len(bad_rows):
            lines = np.asarray(rec[0], dtype=np.int64)
            bad_rows = [(ln, text) for ln, (_, text) in zip(rec[1], bad_rows, strict=True)]
        elif lines is not None and len(lines) != tbl.num_rows:
            lines = None  # fall back to sequential numbering
    return RawTable(
        name=name,
        data=tbl,
        file=display,
        lines=lines,
        first_line=header_row + 1,
        line_label="line",
        options=opts,
        findings=findings,
        bad_rows=bad_rows,
        na_applied=True,
    )


def _date_hints(names: list[str], name: str, opts: TableMapping) -> dict[str, pa.DataType]:
    """Columns to parse as ``date32`` while reading: canonical date columns, ISO dates expected.

    pyarrow then parses them on its reader threads (the values are exactly those the
    cast in :mod:`recoverystats.io.build` would give, after trimming spaces). The first
    value that is not a strict ISO date makes the read fail, and the file is read again
    with every column as text, so anything unusual takes the careful path unchanged.
    Only columns whose canonical name is certain (one source column per name, no value
    map, no ``date_format``) are hinted.
    """
    from recoverystats.schema.spec import TABLES

    spec = TABLES.get(name)
    if spec is None or opts.date_format:
        return {}
    dates = {c.name for c in spec.columns if c.kind == "date" and not c.derived}
    targets = []
    for h in names:
        t = opts.rename.get(h, h)
        if t not in dates and t not in opts.rename.values():
            t = re.sub(r"[^0-9a-z]+", "_", t.strip().lower()).strip("_")
        targets.append(t)
    hints: dict[str, pa.DataType] = {}
    for h, t in zip(names, targets, strict=True):
        if (
            t in dates
            and targets.count(t) == 1
            and names.count(h) == 1
            and t not in opts.values
            and h not in opts.values
        ):
            hints[h] = pa.date32()
    return hints


#: A header field that reads as a data value: a number, a date or a yes/no answer.
_DATA_VALUE = re.compile(
    r"^([+-]?[\d.,]*\d[\d.,]*%?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T][\d:.]+)?|"
    r"yes|no|y|n|true|false)$",
    re.IGNORECASE,
)
#: Lines (rows) searched for a better header than the one read.
HEADER_SEARCH = 20


def _name_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def check_header(
    rows: list[list[Any]], h: int, table: str, opts: TableMapping, display: str, label: str
) -> None:
    """Stop when the header (``rows[h]``) looks like data or a title and another row looks like the header.

    A row "looks like the header" when it holds more known column names — the table's
    canonical columns and the mapping's ``rename`` sources, compared case- and
    punctuation-blind — than the row read as the header, and at least two. Numbers,
    dates and booleans in the header row are counted to say it looks like data. The
    message quotes column names only, never the values of a data row. Hand-written:
    a heuristic over the first :data:`HEADER_SEARCH` rows.

    Raises
    ------
    ReadFailure
        ``header_looks_like_data``, naming the row read and the row that looks like the header.
    """
    from recoverystats.schema.spec import TABLES

    known = {_name_key(c) for c in TABLES[table].column_names} | {_name_key(k) for k in opts.rename}

    def names(row: list[Any]) -> list[str]:
        return [str(v).strip() for v in row if isinstance(v, str) and _name_key(v) in known]

    found = len(names(rows[h]))
    best, best_names = h, found
    for i, row in enumerate(rows[:HEADER_SEARCH]):
        n = len(names(row))
        if n > best_names:
            best, best_names = i, n
    if best == h or best_names < 2:
        return
    values = [v for v in rows[h] if v is not None and str(v).strip() != ""]
    data = sum(
        not isinstance(v, str) or bool(_DATA_VALUE.match(v.strip())) for v in values
    )
    given = f"header_row = {opts.header_row}" if opts.header_row else "read as the header"
    if values and 2 * data >= len(values):
        what = (
            f"looks like data, not column names ({data} of {len(values)} fields are numbers, "
            "dates or yes/no values)"
        )
    else:
        what = f"does not look like the header ({found} of {len(values)} fields are known column names)"
    shown = ", ".join(names(rows[best])[:4]) + (", ..." if best_names > 4 else "")
    raise ReadFailure(
        "header_looks_like_data",
        f"{display} {label} {h + 1} ({given}) {what}; {label} {best + 1} looks like the header "
        f"({best_names} known column names: {shown})",
    )


_NONSPACE = re.compile(rb"\S")
_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")


def _is_utf8(data: bytes, start: int) -> bool:
    try:
        memoryview(data)[start:].tobytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _leading_blank_lines(data: bytes, start: int) -> int:
    """How many blank or whitespace-only lines come before the first non-blank one."""
    m = _NONSPACE.search(data, start)
    if m is None:
        return 0
    prefix = data[start : m.start()]
    cut = max(prefix.rfind(b"\n"), prefix.rfind(b"\r"))
    return len(prefix[: cut + 1].splitlines()) if cut >= 0 else 0


def _has_inner_blank(data: bytes, start: int) -> bool:
    """A blank line with data after it (trailing blank lines do not shift line numbers)."""
    m = _BLANK_LINE.search(data, start)
    return m is not None and _NONSPACE.search(data, m.end()) is not None


def _line_numbers(raw: bytes, header_row: int, delimiter: str, encoding: str) -> np.ndarray:
    """1-based line numbers of the non-blank data lines (rare path: blank lines between rows)."""
    out = []
    for i, line in enumerate(raw.split(b"\n"), start=1):
        if i <= header_row:
            continue
        if line.strip(b"\r \t"):
            out.append(i)
    return np.asarray(out, dtype=np.int64)


def _record_lines(
    raw: bytes, header_row: int, delimiter: str, encoding: str, width: int
) -> tuple[list[int], list[int]] | None:
    """First physical line of each data record: (records with ``width`` fields, the others).

    Blank and whitespace-only lines are skipped, as pyarrow skips them. ``None`` when
    Python's csv module cannot split the text (the caller then keeps its numbering).
    Rare path: only for files with malformed rows or quoted line breaks.
    """
    import csv
    import io

    # the header line(s) are skipped as physical lines, as pyarrow's skip_rows does
    skip = sum(len(ln) for ln in raw.splitlines(keepends=True)[:header_row])
    try:
        reader = csv.reader(
            io.StringIO(raw[skip:].decode(encoding, errors="replace"), newline=""),
            delimiter=delimiter,
        )
        good: list[int] = []
        bad: list[int] = []
        prev = 0
        for fields in reader:
            first = header_row + prev + 1
            prev = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            (good if len(fields) == width else bad).append(first)
    except csv.Error:
        return None
    return good, bad


def _locate_invalid(
    raw: bytes, header_row: int, invalid: list[Any], encoding: str
) -> list[tuple[int, str]]:
    text_lines = raw.decode(encoding, errors="replace").split("\n")
    out = []
    used: set[int] = set()
    for number, text in invalid:
        line = None
        if number is not None:
            line = int(number)
        else:
            for i, tl in enumerate(text_lines[header_row:], start=header_row + 1):
                if i not in used and tl.rstrip("\r") == text:
                    line = i
                    break
        if line is None:
            line = 0
        used.add(line)
        out.append((line, text))
    return out


# ---------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------
#: Limits on what an ``.xlsx`` may inflate to (it is a zip archive): the members'
#: uncompressed size in all, and the compression ratio of any member larger than
#: ``XLSX_RATIO_FLOOR`` bytes. Sheet XML compresses about 5-30x; a zip bomb 1,000x.
#: A workbook of Excel's full 1,048,576 rows x 20 short columns is about 400 MB of XML.
XLSX_MAX_UNCOMPRESSED = 512 * 2**20
XLSX_MAX_RATIO = 200
XLSX_RATIO_FLOOR = 2**20


def check_zip_limits(
    path: Path,
    display: str,
    *,
    max_uncompressed: int = XLSX_MAX_UNCOMPRESSED,
    max_ratio: float = XLSX_MAX_RATIO,
) -> None:
    """Refuse a zip-based file (``.xlsx``) that would inflate past the limits (a zip bomb).

    Reads only the archive's directory (the sizes each member declares; Python's
    ``zipfile``, which openpyxl reads through, never inflates a member past its declared
    size). Hand-written: a few lines over :mod:`zipfile`.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReadFailure(
            "file_unreadable", f"{display}: cannot open as an Excel workbook: {exc}"
        ) from None
    total = sum(m.file_size for m in members)
    if total > max_uncompressed:
        raise ReadFailure(
            "file_too_large",
            f"{display}: the workbook inflates to {total:,} bytes, over the limit of "
            f"{max_uncompressed:,} bytes",
        )
    for m in members:
        if m.file_size > XLSX_RATIO_FLOOR:
            ratio = m.file_size / max(m.compress_size, 1)
            if ratio > max_ratio:
                raise ReadFailure(
                    "file_too_large",
                    f"{display}: member {m.filename!r} inflates {ratio:,.0f}-fold "
                    f"({m.compress_size:,} to {m.file_size:,} bytes), over the limit of "
                    f"{max_ratio:g}-fold",
                )


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet's XML holds a formula element (streamed, nothing kept)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            if not (n.startswith("xl/worksheets/") and n.endswith(".xml")):
                continue
            with zf.open(n) as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    if b"<f>" in tail + chunk or b"<f " in tail + chunk or b":f>" in tail + chunk:
                        return True
                    tail = chunk[-8:]
    return False


def read_excel(
    path: Path,
    name: str,
    opts: TableMapping,
    display: str,
    *,
    max_uncompressed: int = XLSX_MAX_UNCOMPRESSED,
    max_ratio: float = XLSX_MAX_RATIO,
) -> RawTable:
    """Read one sheet with openpyxl; title rows above the header are detected and skipped.

    The archive is checked against the size limits first (:func:`check_zip_limits`).
    Formula cells are read by their saved value; a formula without one (a workbook
    written by a program that does not calculate) is a ``formula_no_value`` finding.
    """
    import openpyxl

    check_zip_limits(path, display, max_uncompressed=max_uncompressed, max_ratio=max_ratio)
    digest, size = sha256_file(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise ReadFailure(
            "file_unreadable", f"{display}: cannot open as an Excel workbook: {exc}"
        ) from None
    formulas: list[list[Any]] | None = None
    try:
        sheets = wb.sheetnames
        sheet = opts.sheet
        if sheet is None:
            ws = wb[sheets[0]]
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise ReadFailure(
                    "file_unreadable",
                    f"{display}: sheet index {sheet} does not exist; sheets are {sheets}",
                )
            ws = wb[sheets[sheet]]
        else:
            if sheet not in sheets:
                raise ReadFailure(
                    "file_unreadable",
                    f"{display}: sheet {sheet!r} not found; sheets are {sheets} (set sheet in program.toml)",
                )
            ws = wb[sheet]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        if _has_formulas(path):
            fwb = openpyxl.load_workbook(path, read_only=True, data_only=False)
            try:
                formulas = [list(r) for r in fwb[ws.title].iter_rows(values_only=True)]
            finally:
                fwb.close()
    finally:
        wb.close()
    findings: list[dict[str, Any]] = []
    nonempty = [sum(v is not None and str(v).strip() != "" for v in r) for r in rows]
    if not any(nonempty):
        raise ReadFailure("file_empty", f"{display}: the sheet is empty; it has no header row")
    if opts.header_row is not None:
        h = opts.header_row - 1
        if h >= len(rows):
            raise ReadFailure(
                "file_unreadable",
                f"{display}: header_row {opts.header_row} is past the last row ({len(rows)})",
            )
    else:
        window = nonempty[:20]
        widest = max(window)
        h = next(i for i, c in enumerate(window) if c == widest)
        if h > 0:
            findings.append(
                file_finding(
                    "header_row",
                    name,
                    display,
                    f"{h} title row(s) above the header were skipped; column names read from row {h + 1}",
                )
            )
    check_header(rows, h, name, opts, display, "row")
    header = rows[h]
    width = max(len(r) for r in rows)
    names = []
    for j in range(width):
        v = header[j] if j < len(header) else None
        names.append(None if v is None or str(v).strip() == "" else str(v).strip())
    body = [(i + 1, r) for i, r in enumerate(rows) if i > h and nonempty[i] > 0]
    cols: dict[str, pa.Array] = {}
    for j, nm in enumerate(names):
        values = [r[j] if j < len(r) else None for _, r in body]
        if nm is None:
            if all(v is None for v in values):
                continue
            nm = f"column_{j + 1}"
        if nm in cols:
            raise ReadFailure(
                "duplicate_column",
                f"{display} row {h + 1}: column {nm!r} appears more than once in the header",
            )
        cols[nm] = column_from_objects(values, decimal=opts.decimal)
    tbl = pa.table(cols) if cols else pa.table({})
    lines = np.asarray([i for i, _ in body], dtype=np.int64)
    problems: list[tuple[str, int, str, Any, str]] = []
    if formulas is not None:
        for pos, (line, r) in enumerate(body):
            frow = formulas[line - 1] if line - 1 < len(formulas) else []
            for j, nm in enumerate(names):
                f = frow[j] if j < len(frow) else None
                v = r[j] if j < len(r) else None
                if v is None and isinstance(f, str) and f.startswith("="):
                    problems.append(
                        (
                            "formula_no_value",
                            pos,
                            nm or f"column_{j + 1}",
                            None,
                            "the cell holds a formula with no saved value (the workbook "
                            "was not calculated before saving); read as missing",
                        )
                    )
    return RawTable(
        name=name,
        data=tbl,
        file=display,
        lines=lines,
        line_label="row",
        options=opts,
        findings=findings,
        sources=[(name, str(path), digest, size)],
        cell_problems=problems,
    )


# ---------------------------------------------------------------------------
# Parquet, SPSS, Stata
# ---------------------------------------------------------------------------
def read_parquet(path: Path, name: str, opts: TableMapping, display: str) -> RawTable:
    import pyarrow.parquet as pq

    digest, size = sha256_file(path)
    try:
        tbl = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadFailure("file_unreadable", f"{display}: cannot read as Parquet: {exc}") from None
    tbl = _decode_dictionaries(tbl)
    return RawTable(
        name=name,
        data=tbl,
        file=display,
        first_line=1,
        line_label="row",
        options=opts,
        sources=[(name, str(path), digest, size)],
    )


def _decode_dictionaries(tbl: pa.Table) -> pa.Table:
    cols = []
    for col in tbl.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=[str(n) for n in tbl.column_names])


def _label_key(k: Any) -> str:
    return _cell_text(float(k) if isinstance(k, (int, float)) else k) or ""


def read_stat(path: Path, name: str, opts: TableMapping, display: str) -> RawTable:
    """SPSS ``.sav``/``.zsav`` and Stata ``.dta`` via pyreadstat, value labels applied."""
    import pyreadstat

    digest, size = sha256_file(path)
    reader = pyreadstat.read_dta if path.suffix.lower() == ".dta" else pyreadstat.read_sav
    kwargs: dict[str, Any] = {
        "apply_value_formats": opts.value_labels,
        "dates_as_pandas_datetime": True,
    }
    if opts.encoding:
        kwargs["encoding"] = opts.encoding
    try:
        df, meta = reader(str(path), **kwargs)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise ReadFailure("file_unreadable", f"{display}: cannot read: {exc}") from None
    problems: list[tuple[str, int, str, Any, str]] = []
    if opts.value_labels:
        # with labels applied, a labelled value became its label (text); a value left as
        # a number in a labelled variable has no label: say so instead of letting it
        # become a new category level unnoticed
        for var, labels in (getattr(meta, "variable_value_labels", None) or {}).items():
            if not labels or var not in df.columns:
                continue
            col = df[var].to_numpy(dtype=object)
            for pos in np.flatnonzero(
                [isinstance(v, (int, float, np.integer, np.floating)) and v == v for v in col]
            ).tolist():
                v = col[pos]
                shown = _cell_text(float(v))
                problems.append(
                    (
                        "code_unlabelled",
                        pos,
                        str(var),
                        shown,
                        f"{shown} has no value label (labelled values: "
                        f"{', '.join(_label_key(k) for k in list(labels)[:10])}); "
                        "kept as the code",
                    )
                )
    tbl = frame_to_arrow(df)
    return RawTable(
        name=name,
        data=tbl,
        file=display,
        first_line=1,
        line_label="row",
        options=opts,
        sources=[(name, str(path), digest, size)],
        cell_problems=problems,
    )


# ---------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------
def read_sql(path: Path, name: str, opts: TableMapping, display: str) -> RawTable:
    """Run ``query`` (or ``SELECT * FROM table``) against a SQLite or DuckDB file."""
    digest, size = sha256_file(path)
    query = opts.query or f'SELECT * FROM "{opts.sql_table}"'
    engine = opts.engine or ("duckdb" if path.suffix.lower() in DUCKDB_SUFFIXES else "sqlite")
    where = f"{display} (query for table {name})"
    if engine == "duckdb":
        try:
            import duckdb
        except ImportError:
            raise ReadFailure(
                "sql_error",
                f"{where}: reading a DuckDB file needs the duckdb package; "
                "install it with `pip install duckdb` (or recoverystats[sql])",
            ) from None
        try:
            con = duckdb.connect(str(path), read_only=True)
            try:
                rel = con.sql(query)
                fetch = (
                    getattr(rel, "to_arrow_table", None) or rel.arrow
                )  # duckdb >= 1.4 / older releases
                tbl = fetch()
                if isinstance(tbl, pa.RecordBatchReader):
                    tbl = tbl.read_all()
            finally:
                con.close()
        except Exception as exc:  # duckdb.Error subclasses
            raise ReadFailure("sql_error", f"{where}: the query failed: {exc}") from None
        tbl = _decode_dictionaries(tbl)
    else:
        import sqlite3

        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                cur = con.execute(query)
                names = [d[0] for d in cur.description or ()]
                rows = cur.fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise ReadFailure("sql_error", f"{where}: the query failed: {exc}") from None
        tbl = (
            pa.table({n: column_from_objects([r[j] for r in rows]) for j, n in enumerate(names)})
            if names
            else pa.table({})
        )
    return RawTable(
        name=name,
        data=tbl,
        file=display,
        first_line=1,
        line_label="row",
        options=opts,
        sources=[(name, str(path), digest, size)],
    )


def read_file(
    path: Path, name: str, opts: TableMapping, display: str, *, defer_hash: bool = False
) -> RawTable:
    """Dispatch on the file suffix (``defer_hash``: see :func:`read_csv`)."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return read_csv(path, name, opts, display, defer_hash=defer_hash)
    if suffix in (".xlsx", ".xlsm"):
        return read_excel(path, name, opts, display)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path, name, opts, display)
    if suffix in (".sav", ".zsav", ".dta"):
        return read_stat(path, name, opts, display)
    if suffix in SQLITE_SUFFIXES + DUCKDB_SUFFIXES:
        raise ReadFailure(
            "mapping_invalid",
            f"{display}: a database needs database = ... and query = ... in program.toml, not file = ...",
        )
    if suffix == ".xls":
        raise ReadFailure(
            "file_unreadable",
            f"{display}: legacy .xls is not supported; save the workbook as .xlsx",
        )
    raise ReadFailure(
        "file_unreadable",
        f"{display}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}",
    )


__all__ = [
    "RawTable",
    "ReadFailure",
    "read_file",
    "read_sql",
    "frame_to_arrow",
    "column_from_objects",
    "DataValidationError",
]
