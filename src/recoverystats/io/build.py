"""Coerce and validate canonical tables into ``ProgramData`` (the validation pipeline).

Used by both :func:`recoverystats.read_program` (tables read from files) and
:meth:`ProgramData.from_tables` (in-memory frames). Every rule lives in
:mod:`recoverystats.schema.rules`; this module applies them.

Design for speed (DESIGN section 10): columns stay Arrow arrays while they are
coerced; strict ISO dates and plain numbers are converted in one vectorised cast, and
only when that fails are the column's *distinct* values parsed one by one (dates, codes
and booleans have few distinct values, so even 10M rows need a few thousand Python
calls). Checks are numpy/Arrow comparisons over whole columns; Python builds a finding
only for an offending row. Each table is converted to pandas once. IDs are joined and
checked as packed integers where their bytes allow it (``_id_keys_tagged``); repeats
are pre-screened on integer codes, group by group when rows come grouped by
participant (``_grouped_repeats``); large working arrays come from Arrow's memory pool
(``_pool_empty``).
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recoverystats._checks import check_option
from recoverystats.errors import DataValidationError, InvalidParameterError, param
from recoverystats.io import checks
from recoverystats.io.mapping import DEFAULT_NA_VALUES, ISO_DATE_FORMATS, TableMapping
from recoverystats.io.program import (
    FLOW_COLUMNS,
    SOURCE_COLUMNS,
    VALIDATION_COLUMNS,
    ProgramData,
    empty_table,
)
from recoverystats.io.readers import RawTable, file_finding, frame_to_arrow
from recoverystats.schema.rules import ASSESSMENT_WINDOWS, RULES, Finding
from recoverystats.schema.spec import TABLE_NAMES, TABLES, ColumnSpec, TableSpec

OnError = Literal["raise", "drop"]
#: Rows per block where a full-length temporary is avoided by working block by block.
_BLOCK = 1 << 16
#: Tables with at least this many rows coerce their columns on two threads.
_PARALLEL_ROWS = 200_000
#: Extra columns of the validation frame, after the contract columns.
VALIDATION_EXTRA = ("action",)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# ---------------------------------------------------------------------------
# findings
# ---------------------------------------------------------------------------
@dataclass
class _Ctx:
    """Where a table's rows came from, for messages."""

    table: str
    file: str
    line_label: str
    lines: Any  # np.ndarray or readers.SequentialLines (same indexing)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def where(self, pos: int, column: str | None) -> str:
        w = f"{self.file} {self.line_label} {int(self.lines[pos])}"
        return w + (f", column {column}" if column else "")

    def date_rows(
        self,
        rule: str,
        mask: np.ndarray,
        column: str,
        dates: np.ndarray,
        detail: Callable[[Any, int], str],
    ) -> bool:
        """One finding per row where ``mask`` holds, the value being the row's date; True if any."""
        if not mask.any():
            return False
        pos = np.flatnonzero(mask)
        self.rows(rule, pos, column, [str(x)[:10] for x in dates[pos]], detail, action="")
        return True

    def rows(
        self,
        rule: str,
        positions: np.ndarray,
        column: str | None,
        values: list[Any],
        detail: Callable[[Any, int], str],
        action: str,
        by_value: bool = False,
    ) -> None:
        """One finding per offending row (Python runs only over the offenders).

        The findings are kept as one block (arrays of lines, values and messages), not
        a dict per row: a file with a million bad rows costs a million short strings,
        not a million dicts. ``by_value``: ``detail`` depends on the value only, so it
        is called once per distinct value and the messages are joined in Arrow.
        """
        if len(positions) == 0:
            return
        r = RULES[rule]
        fix = r.fix_text(table=self.table, column=column)
        lines = np.asarray(self.lines[positions], dtype=np.int64)
        head = f"{self.file} {self.line_label} "
        col = f", column {column}" if column else ""
        tail = f"; fix: {fix} [{rule}]"
        if by_value:
            index: dict[Any, int] = {}
            codes = pa.array(
                [index.setdefault(v, len(index)) for v in values], type=pa.int32()
            )
            shown = pa.array([None if v is None else str(v) for v in index], type=_TEXT)
            details = pa.array([detail(v, -1) for v in index], type=_TEXT)
            messages = pc.binary_join_element_wise(
                pa.scalar(head, _TEXT),
                pc.cast(pa.array(lines), _TEXT),
                pa.scalar(f"{col}: ", _TEXT),
                details.take(codes),
                pa.scalar(tail, _TEXT),
                pa.scalar("", _TEXT),
            )
            value_col = shown.take(codes)
        else:
            # held as Arrow text at once: the Python strings of one block live only here
            messages = pa.array(
                [
                    f"{head}{line}{col}: {detail(value, pos)}{tail}"
                    for pos, value, line in zip(
                        positions.tolist(), values, lines.tolist(), strict=False
                    )
                ],
                type=_TEXT,
            )
            value_col = pa.array([None if v is None else str(v) for v in values], type=_TEXT)
        self.findings.append(
            {
                "_block": True,
                "rule": rule,
                "severity": r.severity,
                "table": self.table,
                "file": self.file,
                "line": lines,
                "column": column,
                "value": value_col,
                "message": messages,
                "action": action,
                "_pos": np.asarray(positions, dtype=np.int64),
            }
        )

    def column_level(
        self, rule: str, mask: np.ndarray, original: Any, column: str, detail: Callable[[str, int], str]
    ) -> None:
        """One finding for a whole column (a setting is wrong, not its rows), with three examples."""
        pos = np.flatnonzero(mask)
        first = _chunked_take(original, pos[:3]).to_pylist()
        self.table_level(
            rule,
            detail(examples_text(first, self.lines[pos[:3]], self.line_label), len(pos)),
            column=column,
            value=first[0],
        )

    def table_level(
        self,
        rule: str,
        detail: str,
        *,
        column: str | None = None,
        value: Any = None,
        line: int | None = None,
        action: str = "",
    ) -> None:
        f = file_finding(
            rule,
            self.table,
            self.file,
            detail,
            column=column,
            value=value,
            line=line,
            action=action,
            label=self.line_label,
        )
        self.findings.append(f)


def examples_text(values: Sequence[Any], lines: Sequence[Any], label: str) -> str:
    """``'12,5' on line 3, ...``: the examples a column-level finding quotes."""
    return ", ".join(
        f"{_shown(v)} on {label} {int(ln)}" for v, ln in zip(values, lines, strict=True)
    )


def _shown(v: Any) -> str:
    """A value as quoted in a message (cut after 200 characters: a message stays a line)."""
    if isinstance(v, str) and len(v) > 200:
        return repr(v[:200]) + f"... ({len(v):,} characters)"
    return repr(v) if isinstance(v, str) else str(v)


# ---------------------------------------------------------------------------
# Arrow helpers
# ---------------------------------------------------------------------------
def _np_bool(arr: Any) -> np.ndarray:
    """Arrow boolean (nulls -> False) as a numpy bool array."""
    if isinstance(arr, np.ndarray):
        return arr
    arr = pc.fill_null(arr, False)
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=bool)
        arr = arr.combine_chunks() if arr.num_chunks > 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False)


#: The text type columns are coerced in: what pandas' ``string[pyarrow]`` holds, so the
#: loaded columns reach pandas without a copy (CSV files are read straight into it).
_TEXT = pa.large_string()


def _to_text(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Any Arrow column as ``large_string`` text (integral floats without '.0', dates as ISO)."""
    if pa.types.is_large_string(arr.type):
        return arr
    return _to_small_text(arr).cast(_TEXT)


def _to_small_text(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Any Arrow column as ``string`` text (integral floats without '.0', dates as ISO)."""
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return _to_small_text(
            arr.cast(pa.string() if pa.types.is_large_string(t) else t.value_type)
        )
    if pa.types.is_null(t):
        return arr.cast(pa.string())
    if pa.types.is_floating(t):
        vals = _arr(arr).to_numpy(zero_copy_only=False)
        finite = vals[~np.isnan(vals)]
        if finite.size == 0 or (np.all(np.mod(finite, 1) == 0) and np.all(np.abs(finite) < 2**53)):
            return pc.cast(pc.cast(arr, pa.int64(), safe=False), pa.string())
        return pc.cast(arr, pa.string())
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return pc.cast(pc.cast(arr, pa.date32()), pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    return pc.cast(arr, pa.string())


def _unique_map(
    text: Any, fn: Callable[[str], tuple[Any, int]], out_type: pa.DataType
) -> tuple[Any, np.ndarray]:
    """Apply ``fn`` to each distinct value; return the mapped column and a per-row problem code.

    ``fn(value) -> (converted, code)``; code 0 means fine. Nulls stay null with code 0.
    """
    uniq = pc.unique(text)
    if isinstance(uniq, pa.ChunkedArray):
        uniq = uniq.combine_chunks()
    py = uniq.to_pylist()
    conv, codes = [], []
    for v in py:
        if v is None:
            conv.append(None)
            codes.append(0)
            continue
        c, code = fn(v)
        conv.append(c)
        codes.append(code)
    idx = pc.index_in(text, value_set=uniq)
    values = pc.take(pa.array(conv, type=out_type), idx)
    code_arr = pc.take(pa.array(codes, type=pa.int8()), idx)
    return values, _np_int(code_arr)


def _np_int(arr: Any) -> np.ndarray:
    arr = pc.fill_null(arr, 0)
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=np.int8)
        arr = arr.combine_chunks() if arr.num_chunks > 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False)


#: Arrays at least this large are allocated from Arrow's memory pool (``_pool_empty``).
_POOL_BYTES = 1 << 20


def _pool_empty(n: int, dtype: Any) -> np.ndarray:
    """A writable, uninitialised numpy array whose memory comes from Arrow's memory pool.

    The CSV reader has just freed its parse buffers to that pool (mimalloc or jemalloc,
    which keep freed pages), so full-length results and temporaries reuse memory that
    is already mapped instead of faulting in fresh pages from the operating system --
    on virtual machines a fresh page costs far more than the work done on it. Small
    arrays come from numpy as usual.
    """
    dt = np.dtype(dtype)
    size = n * dt.itemsize
    if size < _POOL_BYTES:
        return np.empty(n, dtype=dt)
    return np.frombuffer(pa.allocate_buffer(size), dtype=dt, count=n)


def _pool_full(n: int, value: Any, dtype: Any) -> np.ndarray:
    """``np.full`` on memory from Arrow's pool (see ``_pool_empty``)."""
    out = _pool_empty(n, dtype)
    out.fill(value)
    return out


_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 32]] = True  # what Arrow's ascii_trim_whitespace strips
_SPACE_BYTES = (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c")


def _edge_space_free(arr: Any) -> bool:
    """True when no value starts or ends with ASCII whitespace (so trimming changes nothing).

    Works on the Arrow buffers without copying the column: a chunk whose text holds no
    whitespace byte at all (IDs, ISO dates, codes -- found with ``bytes.find``, i.e.
    memchr) is clean; otherwise only the first and last byte of each value are looked
    at. ``False`` means "maybe", and the caller trims for real.
    """
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return False
    otype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    width = np.dtype(otype).itemsize
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    for c in chunks:
        n = len(c)
        if n == 0:
            continue
        bufs = c.buffers()
        if bufs[2] is None:
            continue
        offs = np.frombuffer(bufs[1], dtype=otype, count=n + 1, offset=c.offset * width)
        lo, hi = int(offs[0]), int(offs[-1])
        text = memoryview(bufs[2])[lo:hi].tobytes()
        if not any(ch in text for ch in _SPACE_BYTES):
            continue
        data = np.frombuffer(text, dtype=np.uint8)
        start, end = offs[:-1] - lo, offs[1:] - lo
        nonempty = end > start
        if not nonempty.all():
            start, end = start[nonempty], end[nonempty]
        if _ASCII_SPACE[data[start]].any() or _ASCII_SPACE[data[end - 1]].any():
            return False
    return True


def _trim_text(arr: Any, na: tuple[str, ...], na_applied: bool) -> Any:
    """Strip surrounding whitespace and turn NA markers into nulls."""
    if _edge_space_free(arr):
        trimmed, unchanged = arr, True  # the usual case: nothing to trim, no copy made
    else:
        trimmed = pc.ascii_trim_whitespace(arr)
        unchanged = (
            pc.sum(pc.binary_length(trimmed)).as_py() == pc.sum(pc.binary_length(arr)).as_py()
        )
        if unchanged:
            trimmed = arr  # keep the original buffers; the trimmed copy is freed at once
    if not na_applied or not unchanged:
        if na:
            trimmed = pc.if_else(
                pc.is_in(trimmed, value_set=pa.array(list(na), trimmed.type)),
                pa.scalar(None, trimmed.type),
                trimmed,
            )
        else:
            trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)
    return trimmed


def _apply_value_map(text: Any, vmap: Mapping[str, str]) -> Any:
    keys = pa.array(list(vmap), text.type)
    vals = pa.array(list(vmap.values()), text.type)
    idx = pc.index_in(text, value_set=keys)
    return pc.if_else(pc.is_null(idx), text, pc.take(vals, idx))


# ---------------------------------------------------------------------------
# coercion per column kind
# ---------------------------------------------------------------------------
@dataclass
class _Coerced:
    values: Any  # Arrow array in the target type
    problems: list[tuple[str, np.ndarray, Callable[[Any, int], str]]] = field(default_factory=list)


def _fmt_hint(formats: tuple[str, ...]) -> str:
    def h(f: str) -> str:
        return (
            f.replace("%Y", "YYYY")
            .replace("%m", "MM")
            .replace("%d", "DD")
            .replace("%H", "hh")
            .replace("%M", "mm")
            .replace("%S", "ss")
            .replace("%y", "YY")
            .replace("%b", "Mon")
        )

    return " or ".join(h(f) for f in formats)


def _date_shape(fmt: str) -> re.Pattern[str]:
    pat = re.escape(fmt)
    for k, v in (
        ("%Y", r"\d{4}"),
        ("%m", r"\d{1,2}"),
        ("%d", r"\d{1,2}"),
        ("%y", r"\d{2}"),
        ("%H", r"\d{1,2}"),
        ("%M", r"\d{1,2}"),
        ("%S", r"\d{1,2}"),
        ("%b", r"[A-Za-z]{3}"),
    ):
        pat = pat.replace(re.escape(k), v)
    return re.compile(f"^{pat}$")


def _coerce_date(arr: Any, opts: TableMapping) -> _Coerced:
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            arr = arr.cast(pa.timestamp(t.unit))
        return _Coerced(
            pc.cast(
                pc.cast(arr, pa.timestamp("s"), safe=False)
                if pa.types.is_timestamp(arr.type)
                else arr,
                pa.date32(),
                safe=False,
            )
        )
    text = _to_text(arr)
    if not opts.date_format:
        try:  # fast path: strict ISO dates (rejects 2026-02-30) in one cast
            return _Coerced(pc.cast(text, pa.date32()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    formats = opts.date_formats
    shapes = [_date_shape(f) for f in formats]
    # per distinct value: the formats that read it, and the dates they give
    readings: dict[str, list[tuple[int, _dt.date]]] = {}

    def parse(v: str) -> tuple[Any, int]:
        got: list[tuple[int, _dt.date]] = []
        for i, f in enumerate(formats):
            try:
                got.append((i, _dt.datetime.strptime(v, f).date()))
            except ValueError:
                continue
            if len(formats) == 1:
                break
        if got:
            readings[v] = got
            return got[0][1], 0
        if any(s.match(v) for s in shapes):
            return None, 2
        return None, 1

    values, codes = _unique_map(text, parse, pa.date32())
    problems: list[tuple[str, np.ndarray, Callable[[Any, int], str]]] = []
    if len(formats) > 1 and readings:
        # formats the column is shown to use: those that alone read some value (or read
        # it to one date whichever applies). A value that two formats read to different
        # dates is ambiguous; when the column also holds values only another format
        # reads, its formats are mixed and the ambiguous value cannot be trusted.
        shown_fmt = {g[0][0] for g in readings.values() if len(g) == 1}
        ambiguous = {
            v: g
            for v, g in readings.items()
            if len({d for _, d in g}) > 1 and shown_fmt - {g[0][0]}
        }
        if ambiguous:
            hit = _np_bool(pc.is_in(text, value_set=pa.array(list(ambiguous), text.type)))
            values = pc.if_else(pa.array(hit), pa.scalar(None, pa.date32()), _arr(values))
            used = sorted(shown_fmt)

            def mixed(v: Any, _p: int) -> str:
                g = ambiguous.get(v) or ambiguous.get(str(v).strip(), [])
                reads = "; ".join(f"{d.isoformat()} as {_fmt_hint((formats[i],))}" for i, d in g)
                return (
                    f"{_shown(v)} is ambiguous ({reads}) in a column whose other values use "
                    f"{' and '.join(_fmt_hint((formats[i],)) for i in used)}; not read"
                )

            problems.append(("date_format_mixed", hit, mixed))
    hint = _fmt_hint(formats)
    return _Coerced(
        values,
        [
            (
                "date_parse",
                codes == 1,
                lambda v, _p: (
                    f"{_shown(v)} is not a date (expected {hint}; set date_format in program.toml)"
                ),
            ),
            (
                "date_impossible",
                codes == 2,
                lambda v, _p: f"{_shown(v)} is not a real calendar date",
            ),
            *problems,
        ],
    )


def _arr(x: Any) -> pa.Array:
    """A plain Arrow array (chunks combined)."""
    if isinstance(x, pa.ChunkedArray):
        if x.num_chunks == 1:
            return x.chunk(0)
        if x.num_chunks == 0:
            return pa.array([], type=x.type)
        return x.combine_chunks()
    return x


#: A number written with a decimal comma (``12,5``, ``1.234,5``, ``1 234,5``): read only
#: when ``decimal = ","`` is set; without it such a column is one ``number_decimal_comma``
#: finding (the setting is wrong, not the rows).
_DECIMAL_COMMA = "^[+-]?(?:\\d{1,3}(?:[. \u00a0\u202f']\\d{3})+|\\d+),\\d+$"  # real NBSPs (RE2 too)
_DECIMAL_COMMA_RE = re.compile(_DECIMAL_COMMA)
#: Commas grouping thousands (``1,234.5``): read as such when no option is set.
_COMMA_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def _number_pattern(decimal: str, thousands: str | None) -> str:
    """A number written with ``decimal`` and (optionally) ``thousands`` marks (RE2 syntax)."""
    d = f"[{decimal}]"
    whole = rf"\d{{1,3}}(?:[{thousands}]\d{{3}})+|\d+" if thousands else r"\d+"
    return rf"^[+-]?(?:(?:{whole})(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?$"


def _marks(opts: TableMapping) -> str:
    """The configured number format as program.toml writes it."""
    parts = [f"decimal = {json.dumps(opts.decimal or '.')}"]
    if opts.thousands:
        parts.append(f"thousands = {json.dumps(opts.thousands)}")
    return ", ".join(parts)


def _read_numbers(text: Any, opts: TableMapping) -> _Coerced:
    """Text numbers in the file's configured format (``decimal``/``thousands``), in Arrow.

    Every value must match the format exactly (digit groups of three when
    ``thousands`` is set); the separators are then removed/replaced and the column is
    cast once. Values that do not match are ``type_number`` errors.
    """
    decimal = opts.decimal or "."
    ok = pc.match_substring_regex(text, _number_pattern(decimal, opts.thousands))
    norm = text
    if opts.thousands:
        norm = pc.replace_substring(norm, opts.thousands, "")
    if decimal != ".":
        norm = pc.replace_substring(norm, decimal, ".")
    norm = pc.if_else(ok, norm, pa.scalar(None, norm.type))
    f = _arr(pc.cast(norm, pa.float64()))
    bad = ~_np_bool(pc.fill_null(ok, True))
    marks = _marks(opts)
    problems: list[tuple[str, np.ndarray, Callable[[Any, int], str]]] = []
    if decimal == "." and bad.any():
        # decimal commas in a file read with a decimal point: the setting, not each cell
        comma = bad & _np_bool(pc.match_substring_regex(text, _DECIMAL_COMMA))
        if comma.any():
            bad &= ~comma
            problems.append(("number_decimal_comma", comma, _decimal_comma_detail))

    def detail(v: Any, _p: int) -> str:
        hint = ""
        if decimal == "," and not opts.thousands and "." in str(v):
            hint = '; if "." groups thousands here, set thousands = "." in program.toml'
        return f"{_shown(v)} is not a number written with {marks}{hint}"

    if bad.any():
        problems.append(("type_number", bad, detail))
    return _Coerced(f, problems)


def _coerce_number(arr: Any, integer: bool, opts: TableMapping | None = None) -> _Coerced:
    t = arr.type
    problems: list[tuple[str, np.ndarray, Callable[[Any, int], str]]] = []
    if (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
    ):
        if integer and (pa.types.is_integer(t) or pa.types.is_boolean(t)):
            return _Coerced(pc.cast(arr, pa.int64()))
        f = _arr(pc.cast(arr, pa.float64()))
    elif opts is not None and (opts.decimal or opts.thousands):
        res = _read_numbers(_to_text(arr), opts)
        f, problems = res.values, list(res.problems)
    else:
        text = _to_text(arr)
        try:
            f = _arr(pc.cast(text, pa.float64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):

            def parse(v: str) -> tuple[Any, int]:
                # codes: 1 not a number, 2 a decimal comma, 3 commas grouping thousands
                if _COMMA_GROUPED_RE.match(v):
                    return float(v.replace(",", "")), 3
                if _NUMBER_RE.match(v):
                    return float(v), 0
                return None, 2 if _DECIMAL_COMMA_RE.match(v) else 1

            fv, codes = _unique_map(text, parse, pa.float64())
            f = _arr(fv)
            comma = codes == 2
            if comma.any():
                # a column written with decimal commas: '1,234' in it is 1.234, not 1234,
                # so it is not read either; one finding for the column names the setting
                comma |= codes == 3
                f = _arr(pc.if_else(pa.array(comma), pa.scalar(None, pa.float64()), f))
                problems.append(("number_decimal_comma", comma, _decimal_comma_detail))
            problems.append(
                ("type_number", codes == 1, lambda v, _p: f"{_shown(v)} is not a number")
            )
    if not integer:
        return _Coerced(f, problems)
    bad = _np_bool(pc.not_equal(pc.floor(f), f))
    if bad.any():
        f = pc.if_else(pa.array(bad), pa.scalar(None, pa.float64()), f)
        problems.append(("type_integer", bad, lambda v, _p: f"{_shown(v)} is not a whole number"))
    return _Coerced(pc.cast(f, pa.int64(), safe=False), problems)


def _decimal_comma_detail(examples: str, n: int) -> str:
    return (
        f"{n:,} value(s) are numbers written with a decimal comma (e.g. {examples}) in a "
        'file read with decimal = "."; none of them was read'
    )


def _coerce_bool(arr: Any) -> _Coerced:
    t = arr.type
    if pa.types.is_boolean(t):
        return _Coerced(arr)

    def parse(v: str) -> tuple[Any, int]:
        s = v.strip().lower()
        if s in _TRUE:
            return True, 0
        if s in _FALSE:
            return False, 0
        return None, 1

    values, codes = _unique_map(_to_text(arr), parse, pa.bool_())
    return _Coerced(
        values,
        [
            (
                "type_bool",
                codes == 1,
                lambda v, _p: (
                    f"{_shown(v)} is not yes/no (expected true/false, yes/no, y/n or 1/0)"
                ),
            )
        ],
    )


def _coerce_code(text: Any, col: ColumnSpec) -> _Coerced:
    allowed = set(col.codes or ())
    hits = (
        pc.sum(
            pc.is_in(text, value_set=pa.array(sorted(allowed), text.type), skip_nulls=True)
        ).as_py()
        or 0
    )
    if hits == len(text) - text.null_count:
        return _Coerced(text)  # fast path: every value already a canonical code

    def norm(v: str) -> tuple[Any, int]:
        s = re.sub(r"[\s\-/]+", "_", v.strip().lower())
        if s in allowed:
            return s, 0
        return v, 1

    values, codes = _unique_map(text, norm, text.type)
    shown = ", ".join(col.codes or ())
    return _Coerced(
        values,
        [
            (
                "code_unknown",
                codes == 1,
                lambda v, _p: f"{_shown(v)} is not an allowed {col.name} (allowed: {shown})",
            )
        ],
    )


# ---------------------------------------------------------------------------
# one table
# ---------------------------------------------------------------------------
def _norm_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


@dataclass
class _Built:
    name: str
    ctx: _Ctx
    frame: pd.DataFrame
    ids: dict[str, Any]  # id column -> Arrow array (for fast joins)
    error_rows: np.ndarray  # bool: row has an error finding
    drop_rows: np.ndarray  # bool: row dropped regardless of on_error (duplicate copies)
    rows_read: int
    bad_rows: int = 0
    fatal: bool = False
    #: rows dropped because the row they point at was dropped (set by the cross-table pass)
    cascade: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: id column -> packed integer keys (``_id_keys``), filled on first use
    keys: dict[str, Any] = field(default_factory=dict)
    #: date column -> Arrow date32 values (the frame's dates before conversion)
    dates: dict[str, Any] = field(default_factory=dict)


def _string_series(arr: Any) -> pd.Series:
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if arr.type != _TEXT:
        arr = arr.cast(_TEXT)  # pandas' string[pyarrow] holds large_string (CSV text already is)
    return pd.Series(pd.arrays.ArrowStringArray(arr), copy=False)


def _to_series(arr: Any, kind: str) -> pd.Series:
    if kind in ("id", "code", "string"):
        return _string_series(arr)
    if kind == "date":
        return pd.Series(_date_ns(arr), copy=False)
    if kind == "int":
        return pd.Series(_arrow_to_masked(arr, "Int64"), copy=False)
    if kind == "bool":
        return pd.Series(_arrow_to_masked(arr, "boolean"), copy=False)
    if kind == "float":
        a = _arr(pc.cast(arr, pa.float64()))
        return pd.Series(a.to_numpy(zero_copy_only=False), copy=False)
    raise AssertionError(kind)


_NS_PER_DAY = 86_400 * 10**9
_NAT = np.iinfo(np.int64).min


def _date_ns(arr: Any) -> np.ndarray:
    """An Arrow date32 column as ``datetime64[ns]`` (nulls -> NaT) in one numpy pass per chunk."""
    if not pa.types.is_date32(arr.type):
        a = _arr(pc.cast(arr, pa.timestamp("ns")))
        return a.to_numpy(zero_copy_only=False).astype("datetime64[ns]", copy=False)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = _pool_empty(len(arr), np.int64)
    at = 0
    for c in chunks:
        m = len(c)
        if m == 0:
            continue
        days = np.frombuffer(c.buffers()[1], dtype=np.int32, count=m, offset=c.offset * 4)
        seg = out[at : at + m]
        np.multiply(days, _NS_PER_DAY, out=seg, dtype=np.int64)
        if c.null_count:
            seg[_np_bool(pc.is_null(c))] = _NAT
        at += m
    return out.view("datetime64[ns]")


def _null_series(kind: str, n: int) -> pd.Series:
    """An all-missing column of the canonical dtype for ``kind``."""
    if kind in ("id", "code", "string"):
        # offsets and validity from calloc'd (untouched) zero pages, not written out:
        # tables such as events get several 10M-row missing columns
        offsets = pa.py_buffer(np.zeros(n + 1, dtype=np.int64))
        validity = pa.py_buffer(np.zeros((n + 7) // 8, dtype=np.uint8))
        empty = pa.LargeStringArray.from_buffers(n, offsets, pa.py_buffer(b""), validity, n)
        return _string_series(empty)
    if kind == "date":
        return pd.Series(_pool_full(n, _NAT, np.int64).view("datetime64[ns]"), copy=False)
    if kind == "float":
        return pd.Series(_pool_full(n, np.nan, np.float64), copy=False)
    if kind == "int":
        return pd.Series(
            pd.arrays.IntegerArray(np.zeros(n, np.int64), _pool_full(n, True, bool)), copy=False
        )
    return pd.Series(
        pd.arrays.BooleanArray(np.zeros(n, bool), _pool_full(n, True, bool)), copy=False
    )


def _arrow_to_masked(arr: Any, dtype: str) -> Any:
    a = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    mask = _np_bool(pc.is_null(a))
    filled = pc.fill_null(a, False if dtype == "boolean" else 0).to_numpy(zero_copy_only=False)
    if dtype == "boolean":
        return pd.arrays.BooleanArray(filled.astype(bool), mask)
    return pd.arrays.IntegerArray(filled.astype(np.int64), mask)


def _extra_series(
    arr: Any,
    kind: str | None,
    opts: TableMapping,
    na_applied: bool,
    ctx: _Ctx,
    column: str,
    errors: np.ndarray,
) -> pd.Series:
    """Extra (non-canonical) columns: typed by ``[tables.t.types]``, else numbers when every value is one."""
    t = arr.type
    if kind is not None:
        spec = ColumnSpec(column, kind)  # type: ignore[arg-type]
        values = _coerce_column(arr, spec, opts, na_applied, ctx, errors)
        return _to_series(values, kind)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = _trim_text(
            arr if pa.types.is_large_string(t) else arr.cast(_TEXT), opts.na_markers, na_applied
        )
        nonnull = pc.drop_null(text)
        marks = opts.decimal not in (None, ".") or opts.thousands is not None
        pattern = _number_pattern(opts.decimal or ".", opts.thousands) if marks else _NUMBER_RE.pattern
        if len(nonnull) and pc.all(pc.match_substring_regex(nonnull, pattern)).as_py():
            # every value a number in the file's format (program.toml decimal/thousands)
            f = _read_numbers(text, opts).values if marks else pc.cast(text, pa.float64())
            if (
                pc.all(pc.equal(pc.floor(pc.drop_null(f)), pc.drop_null(f))).as_py()
                and not pc.any(pc.match_substring_regex(nonnull, r"^[+-]?0\d")).as_py()
            ):
                return pd.Series(_arrow_to_masked(pc.cast(f, pa.int64()), "Int64"))
            return _to_series(f, "float")
        return _string_series(text)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        values = _check_date_range(_coerce_date(arr, opts).values, arr, ctx, column, errors)
        return _to_series(values, "date")
    if pa.types.is_boolean(t):
        return _to_series(arr, "bool")
    a = arr.to_pandas() if hasattr(arr, "to_pandas") else pd.Series(arr)
    return pd.Series(a).reset_index(drop=True)


def _coerce_column(
    arr: Any, col: ColumnSpec, opts: TableMapping, na_applied: bool, ctx: _Ctx, errors: np.ndarray
) -> Any:
    """Coerce one column to its kind, recording per-cell findings in ``ctx``."""
    name = col.name
    vmap = opts.values.get(name)
    is_text = (
        pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
        or pa.types.is_dictionary(arr.type)
    )
    original = arr
    if is_text and not vmap and not pa.types.is_dictionary(arr.type):
        # fast paths on the untrimmed column: strict ISO dates, or every value already a code
        if col.kind == "date" and not opts.date_format:
            try:
                fast = pc.cast(arr, pa.date32())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            else:
                return _check_date_range(fast, arr, ctx, name, errors)
        elif col.kind == "code" and na_applied:
            allowed = pa.array(sorted(col.codes or ()), arr.type)
            if (pc.sum(pc.is_in(arr, value_set=allowed, skip_nulls=True)).as_py() or 0) == len(
                arr
            ) - arr.null_count:
                return arr
    if is_text or vmap or col.kind in ("id", "code", "string"):
        if (
            not is_text
            and col.kind == "id"
            and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type))
        ):
            ctx.table_level(
                "id_numeric",
                f"{name} is stored as numbers ({arr.type}); IDs such as 007 would "
                "have lost their leading zeros before loading",
                column=name,
            )
        text = _trim_text(_to_text(arr), opts.na_markers, na_applied and is_text)
        if vmap:
            text = _apply_value_map(text, vmap)
        arr = text
        original = text if not is_text else original
    kind = col.kind
    if kind in ("id", "string"):
        return arr
    if kind == "code":
        res = _coerce_code(arr, col)
    elif kind == "date":
        res = _coerce_date(arr, opts)
    elif kind in ("int", "float"):
        res = _coerce_number(arr, kind == "int", opts)
    elif kind == "bool":
        res = _coerce_bool(arr)
    else:  # pragma: no cover - spec kinds are fixed
        raise AssertionError(kind)
    for rule, mask, detail in res.problems:
        if mask.any() and RULES[rule].scope != "row":
            ctx.column_level(rule, mask, original, name, detail)
            errors |= mask
        elif mask.any():
            pos = np.flatnonzero(mask)
            vals = _chunked_take(original, pos).to_pylist()
            ctx.rows(rule, pos, name, vals, detail, action="", by_value=True)
            errors |= mask
    if kind == "date":
        return _check_date_range(res.values, original, ctx, name, errors)
    return res.values


#: Placeholder dates that source systems write for "unknown" or "open-ended": SQL
#: Server's ``datetime`` minimum (1753-01-01), the 1900 epoch of Excel and SQL Server
#: (1900-01-01) and the OLE/Excel zero date (1899-12-30, 1899-12-31), the .NET/ISO
#: minimum (0001-01-01) and the "end of time" dates (9999-12-31, 9999-01-01,
#: 2999-12-31, 3000-01-01). Read as missing with a ``date_sentinel`` warning.
SENTINEL_DATES: tuple[str, ...] = (
    "0001-01-01",
    "1753-01-01",
    "1899-12-30",
    "1899-12-31",
    "1900-01-01",
    "2999-12-31",
    "3000-01-01",
    "9999-01-01",
    "9999-12-31",
)
#: The plausible window for any date in the data model (inclusive); dates outside it
#: are ``date_out_of_range`` errors. Every date inside it is representable as
#: ``datetime64[ns]`` (1677-09-21 .. 2262-04-11), so no date ever wraps around.
DATE_MIN, DATE_MAX = "1900-01-01", "2099-12-31"
_EPOCH = _dt.date(1970, 1, 1)
_SENTINEL_DAYS = np.array(
    [(_dt.date.fromisoformat(d) - _EPOCH).days for d in SENTINEL_DATES], dtype=np.int64
)
_MIN_DAY = (_dt.date.fromisoformat(DATE_MIN) - _EPOCH).days
_MAX_DAY = (_dt.date.fromisoformat(DATE_MAX) - _EPOCH).days


def _date_days(values: Any) -> np.ndarray:
    """Days since 1970-01-01 of an Arrow date32 column as int64 (nulls -> 0, never flagged)."""
    a = _arr(values)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    return _np_int(pc.cast(a, pa.int32())).astype(np.int64, copy=False)


def _check_date_range(
    values: Any, original: Any, ctx: _Ctx, column: str, errors: np.ndarray
) -> Any:
    """Placeholder and out-of-range dates: findings with the source text, values set to missing.

    Runs on the date32 values (day precision), before anything is converted to
    ``datetime64[ns]``; the check is two integer comparisons over the column, and the
    source text is looked up only for the offending rows.
    """
    if len(values) == 0 or values.null_count == len(values):
        return values
    # the usual case in one Arrow pass: every date inside (DATE_MIN, DATE_MAX], where
    # the only placeholder (1900-01-01 == DATE_MIN) cannot be either
    # on the day numbers (a date32 -> int32 cast is zero-copy): not .as_py() on the dates,
    # which raises OverflowError for days outside Python's years 1..9999 (e.g. DuckDB's
    # 'infinity'::DATE), dates this check must report, not crash on
    mm = pc.min_max(values.cast(pa.int32()) if pa.types.is_date32(values.type) else values)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if not isinstance(lo, int | None):  # other date types: compare as dates
        lo, hi = (None if v is None else (v - _EPOCH).days for v in (lo, hi))
    if lo is not None and hi is not None and lo > _MIN_DAY and hi <= _MAX_DAY:
        return values
    days = _date_days(values)
    valid = _np_bool(pc.is_valid(values)) if values.null_count else None
    sentinel = np.isin(days, _SENTINEL_DAYS)
    out = (days < _MIN_DAY) | (days > _MAX_DAY)
    if valid is not None:
        sentinel &= valid
        out &= valid
    out &= ~sentinel
    if not (sentinel.any() or out.any()):
        return values

    def source_text(pos: np.ndarray) -> list[Any]:
        taken = _chunked_take(original, pos)
        try:
            vals = taken.to_pylist()
        except OverflowError:  # typed dates beyond Python's years 1..9999: Arrow's ISO text
            return pc.cast(taken, pa.string()).to_pylist()
        return [v.isoformat() if isinstance(v, (_dt.date, _dt.datetime)) else v for v in vals]

    if sentinel.any():
        pos = np.flatnonzero(sentinel)
        ctx.rows(
            "date_sentinel",
            pos,
            column,
            source_text(pos),
            lambda v, _p: (
                f"{_shown(v)} is a placeholder date that source systems write for "
                "'unknown' or 'open-ended'; read as missing"
            ),
            action="set_missing",
        )
    if out.any():
        pos = np.flatnonzero(out)
        ctx.rows(
            "date_out_of_range",
            pos,
            column,
            source_text(pos),
            lambda v, _p: (
                f"{_shown(v)} is outside the plausible dates {DATE_MIN} to {DATE_MAX}"
            ),
            action="",
        )
        errors |= out
    return pc.if_else(pa.array(sentinel | out), pa.scalar(None, pa.date32()), _arr(values))


def resolve_columns(
    names: list[str], spec: TableSpec, opts: TableMapping, ctx: _Ctx
) -> tuple[list[str], bool]:
    """Source column names -> canonical names (mapping renames, then canonical spellings).

    Records ``mapping_column``, ``column_renamed``, ``duplicate_column`` and
    ``required_column`` findings in ``ctx``; returns the new names and whether a
    finding stops the table (shared by the pandas path and the engines).
    """
    rename = dict(opts.rename)
    missing_src = [s for s in rename if s not in names]
    fatal = False
    for s in missing_src:
        ctx.table_level(
            "mapping_column",
            f"program.toml [tables.{spec.name}.rename] names column {s!r}, which the "
            f"file does not have (its columns: {', '.join(names[:25])})",
            column=s,
        )
        fatal = True
    new_names = [rename.get(c, c) for c in names]
    canon = set(spec.column_names)
    for i, c in enumerate(new_names):
        if c not in canon and c not in rename.values():
            nc = _norm_name(c)
            if nc in canon and nc not in new_names:
                ctx.table_level("column_renamed", f"column {c!r} read as {nc}", column=nc, value=c)
                new_names[i] = nc
    dups = sorted({c for c in new_names if new_names.count(c) > 1})
    for c in dups:
        ctx.table_level("duplicate_column", f"more than one source column maps to {c!r}", column=c)
        fatal = True
    for col in opts.values:
        if col not in new_names:
            ctx.table_level(
                "mapping_column",
                f"program.toml [tables.{spec.name}.values.{col}] maps codes of column "
                f"{col!r}, which the table does not have",
                column=col,
            )
            fatal = True
    for req in spec.required:
        if req not in new_names:
            ctx.table_level(
                "required_column",
                f"required column {req!r} is missing (columns found: "
                f"{', '.join(new_names[:25]) or 'none'})",
                column=req,
            )
            fatal = True
    return new_names, fatal


def _build_table(raw: RawTable) -> _Built:
    name = raw.name
    spec: TableSpec = TABLES[name]
    lines = raw.line_numbers()
    ctx = _Ctx(name, raw.file, raw.line_label, lines, list(raw.findings))
    data = raw.data
    n = data.num_rows
    opts = raw.options
    rows_read = n + len(raw.bad_rows)
    for line, _text in raw.bad_rows:
        ctx.findings.append(
            {
                **file_finding(
                    "field_count",
                    name,
                    raw.file,
                    # the line's text is not quoted: an error never echoes file content
                    # beyond column names (the file may not be what the mapping meant)
                    f"the line does not have the header's {data.num_columns} fields",
                    line=line,
                    action="dropped",
                ),
                "_pos": -1,
            }
        )

    # -- column names: mapping renames, then canonical spellings -----------------
    names = [str(c).strip() for c in data.column_names]
    new_names, fatal = resolve_columns(names, spec, opts, ctx)
    canon = set(spec.column_names)
    if fatal:
        return _Built(
            name,
            ctx,
            empty_table(name),
            {},
            np.zeros(0, bool),
            np.zeros(0, bool),
            rows_read,
            len(raw.bad_rows),
            fatal=True,
        )
    if n == 0:
        ctx.table_level("no_rows", "the table has a header but no data rows")
    columns = dict(zip(new_names, data.columns, strict=False))

    # -- cells no column type can catch ------------------------------------------
    errors = np.zeros(n, dtype=bool)
    renamed = dict(zip(names, new_names, strict=False))
    _reader_cell_problems(raw, renamed, ctx, errors)
    for c, arr in columns.items():
        _text_cell_rules(arr, c, ctx, errors)

    # -- coerce ------------------------------------------------------------------
    out: dict[str, pd.Series] = {}
    ids: dict[str, Any] = {}
    dates: dict[str, Any] = {}  # date column -> Arrow date32 (as in the frame)
    keycache: dict[str, Any] = {}
    null_counts: dict[str, int] = {}  # canonical column -> missing values after coercion

    def coerce(col: ColumnSpec) -> tuple[Any, pd.Series, _Ctx, np.ndarray, Any]:
        # own findings list and error mask per column, merged below in column order, so
        # the result does not depend on which column finishes first
        local = _Ctx(ctx.table, ctx.file, ctx.line_label, ctx.lines)
        errs = np.zeros(n, dtype=bool)
        values = _coerce_column(columns[col.name], col, opts, raw.na_applied, local, errs)
        keys = _id_keys_tagged(values) if col.kind == "id" else None
        return values, _to_series(values, col.kind), local, errs, keys

    todo = [c for c in spec.columns if not c.derived and c.name in columns]
    if n >= _PARALLEL_ROWS and len(todo) > 1:
        # Arrow kernels and large numpy operations release the GIL: coerce columns on two
        # threads (the machine's reader threads are idle by now)
        with ThreadPoolExecutor(max_workers=2) as pool:
            # each task in a copy of this thread's context: messages keep the caller's
            # wording (recoverystats.errors.use_terms)
            futures = [pool.submit(contextvars.copy_context().run, coerce, c) for c in todo]
            done = {c.name: f.result() for c, f in zip(todo, futures, strict=True)}
    else:
        done = {c.name: coerce(c) for c in todo}
    for col in spec.columns:
        if col.derived:
            continue
        if col.name not in columns:
            out[col.name] = _null_series(col.kind, n)
            continue
        values, series, local, errs, keys = done.pop(col.name)
        null_counts[col.name] = values.null_count
        ctx.findings.extend(local.findings)
        if local.findings or errs.any():  # (an all-False mask is left untouched: no writes)
            errors |= errs
        if col.kind == "id":
            ids[col.name] = values
            keycache[col.name] = keys
        elif col.kind == "date":
            dates[col.name] = values
        out[col.name] = series
    extras = [c for c in new_names if c not in canon]
    for c in extras:
        ctx.table_level(
            "extra_column", f"column {c!r} is not canonical; kept as an extra column", column=c
        )
    for col in spec.columns:
        if col.derived:
            out[col.name] = _null_series(col.kind, n)
    for c in extras:
        out[c] = _extra_series(columns[c], opts.types.get(c), opts, raw.na_applied, ctx, c, errors)
    frame = pd.DataFrame(out, copy=False)
    frame.index = pd.RangeIndex(n)

    # -- row rules within the table ----------------------------------------------
    for req in spec.required:
        if null_counts.get(req) == 0:
            continue  # nothing missing (the usual case): no per-row pass
        miss = frame[req].isna().to_numpy()
        if miss.any():
            miss = miss & ~_cell_flagged(ctx, req, n)
        if miss.any():
            pos = np.flatnonzero(miss)
            ctx.rows(
                "missing_value",
                pos,
                req,
                [None] * len(pos),
                lambda _v, _p, req=req: checks.missing_detail(req),
                action="",
            )
            errors |= miss
    for col in spec.columns:
        if col.range is not None and col.name in columns:
            v = (
                frame[col.name].astype("float64").to_numpy(na_value=np.nan)
                if col.kind == "int"
                else frame[col.name].to_numpy(dtype="float64", na_value=np.nan)
            )
            lo, hi = col.range
            with np.errstate(invalid="ignore"):
                bad = (v < lo) | (v > hi)
            if bad.any():
                pos = np.flatnonzero(bad)
                ctx.rows(
                    "range",
                    pos,
                    col.name,
                    v[pos].tolist(),
                    lambda val, _p, lo=lo, hi=hi, c=col.name: checks.range_detail(c, val, lo, hi),
                    action="",
                )
                errors |= bad
    drop = np.zeros(n, dtype=bool)
    _table_date_rules(name, frame, ctx, errors)
    if spec.key:
        _duplicates(spec, frame, ctx, errors, drop, ids, keycache=keycache)
    return _Built(
        name,
        ctx,
        frame,
        ids,
        errors,
        drop,
        rows_read,
        len(raw.bad_rows),
        keys=keycache,
        dates=dates,
    )


#: Longest text accepted in one input cell (Excel's own cell limit). Longer values are
#: ``cell_too_long`` errors: no field of this data model is that long, and a huge label
#: would slow every output that shows it.
MAX_CELL_CHARS = 32_767
#: Control characters that are not text: C0 controls other than tab, line feed and
#: carriage return (none of them may appear in XML, so no report could show them).
_CONTROL_RE = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"
_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[*range(0, 9), 11, 12, *range(14, 32)]] = True


def _reader_cell_problems(
    raw: RawTable, renamed: Mapping[str, str], ctx: _Ctx, errors: np.ndarray
) -> None:
    """Findings for cells the reader flagged (formula without value, unlabelled code)."""
    groups: dict[tuple[str, str], list[tuple[int, Any, str]]] = {}
    for rule, pos, column, value, detail in raw.cell_problems:
        groups.setdefault((rule, renamed.get(column, column)), []).append((pos, value, detail))
    for (rule, column), items in groups.items():
        pos = np.array([p for p, _, _ in items], dtype=np.int64)
        details = {p: d for p, _, d in items}
        ctx.rows(rule, pos, column, [v for _, v, _ in items], lambda _v, p, details=details: details[p], action="")
        if RULES[rule].severity == "error":
            errors[pos] = True


def _text_cell_rules(
    arr: Any, column: str, ctx: _Ctx, errors: np.ndarray, *, max_chars: int = MAX_CELL_CHARS
) -> None:
    """Control characters and over-long values in a text column (``control_character``, ``cell_too_long``).

    One pass over the column's bytes finds whether any control byte is there at all
    (the usual answer is no, and nothing else runs); lengths come from the offsets.
    """
    t = arr.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    has_control = False
    too_long = False
    otype = np.int64 if pa.types.is_large_string(t) else np.int32
    width = np.dtype(otype).itemsize
    for c in chunks:
        if len(c) == 0 or c.buffers()[2] is None:
            continue
        bufs = c.buffers()
        offs = np.frombuffer(bufs[1], dtype=otype, count=len(c) + 1, offset=c.offset * width)
        lo, hi = int(offs[0]), int(offs[-1])
        if not has_control and hi > lo:
            data = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi]
            # one reduction (no temporary): text without any byte below 0x20 is clean;
            # only then are tabs and line breaks told apart from control characters
            if int(data.min()) < 0x20:
                has_control = bool(_CONTROL_BYTES[data].any())
        if not too_long and len(c) and int(np.diff(offs).max()) > max_chars:
            too_long = True  # bytes >= characters: checked in characters below
    if too_long:
        bad = _np_bool(pc.greater(pc.utf8_length(arr), max_chars))
        if bad.any():
            pos = np.flatnonzero(bad)
            lens = _np_int(pc.utf8_length(_chunked_take(arr, pos)))
            ctx.rows(
                "cell_too_long",
                pos,
                column,
                [f"{int(k):,} characters" for k in lens],
                lambda v, _p: f"the value is {v} long, over the limit of {max_chars:,}",
                action="",
            )
            errors |= bad
    if has_control:
        bad = _np_bool(pc.match_substring_regex(arr, _CONTROL_RE))
        if bad.any():
            pos = np.flatnonzero(bad)
            vals = _chunked_take(arr, pos).to_pylist()
            shown = [
                repr(v[:60] + ("..." if len(v) > 60 else "")) for v in vals
            ]  # repr shows the control characters as escapes
            ctx.rows(
                "control_character",
                pos,
                column,
                shown,
                lambda v, _p: f"{v} holds a control character (NUL or another non-text byte)",
                action="",
            )
            errors |= bad


def _cell_flagged(ctx: _Ctx, column: str, n: int) -> np.ndarray:
    """Rows that already have a cell finding for ``column`` (so 'missing' is not reported twice)."""
    m = np.zeros(n, dtype=bool)
    for f in ctx.findings:
        if f.get("column") != column or f["severity"] != "error":
            continue
        if f.get("_block"):
            m[f["_pos"]] = True
        elif f.get("_pos", -1) >= 0:
            m[f["_pos"]] = True
    return m


def _dates(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].to_numpy(dtype="datetime64[ns]")


def _table_date_rules(name: str, frame: pd.DataFrame, ctx: _Ctx, errors: np.ndarray) -> None:
    for table, rule, later_col, earlier_col in checks.DATE_ORDER_RULES:
        if table != name:
            continue
        later, earlier = _dates(frame, later_col), _dates(frame, earlier_col)
        bad = later < earlier
        if ctx.date_rows(
            rule,
            bad,
            later_col,
            later,
            lambda v, p, r=rule, lc=later_col, ec=earlier_col, e=earlier: checks.date_order_detail(
                r, lc, v, ec, str(e[p])[:10]
            ),
        ):
            errors |= bad
    if name == "participants":
        enr, birth = _dates(frame, "enrollment_date"), _dates(frame, "birth_date")
        age = (enr - birth).astype("timedelta64[D]").astype("float64") / 365.25
        lo, hi = checks.AGE_RANGE
        with np.errstate(invalid="ignore"):
            bad = ((age < lo) | (age > hi)) & ~np.isnat(birth) & ~np.isnat(enr) & ~(enr < birth)
        if ctx.date_rows(
            "range", bad, "birth_date", birth, lambda v, p: checks.age_detail(v, age[p])
        ):
            errors |= bad


def _duplicates(
    spec: TableSpec,
    frame: pd.DataFrame,
    ctx: _Ctx,
    errors: np.ndarray,
    drop: np.ndarray,
    ids: Mapping[str, Any],
    codes: _RowCodes | None = None,
    keycache: dict[str, Any] | None = None,
) -> None:
    """Exact duplicate rows and duplicate keys.

    Keyed tables: copies of a row are dropped (``duplicate_row`` warning); remaining rows
    sharing a key are errors (``duplicate_key``). Unkeyed tables (contacts, events):
    exact repeats are kept and reported once (``repeated_row`` info). Fast paths: a
    single-column key is checked with one Arrow ``count_distinct``; unkeyed tables are
    pre-screened on an integer code of (participant, date) passed in ``codes``.
    """
    n = len(frame)
    if n < 2:
        return
    canon = [c.name for c in spec.columns if not c.derived]
    keyed = list(spec.key)
    if len(keyed) == 1 and keyed[0] in ids:
        col = ids[keyed[0]]
        keys = _cached_keys(keycache, keyed[0], col)
        if keys is not None:
            k = keys[0]
            if bool((k[1:] > k[:-1]).all()) or pd.Index(k).is_unique:
                return
        elif (
            col.null_count <= 1
            and pc.count_distinct(col, mode="only_valid").as_py() == n - col.null_count
        ):
            return
    check_cols = canon + [c for c in frame.columns if c not in spec.column_names]
    if codes is not None:
        # rows sorted by participant then date (the usual export order): repeats are
        # neighbours; otherwise rows sharing a (participant, day) code
        cand = codes.sorted_candidates()
        if cand is None:
            cand = codes.grouped_candidates()
        if cand is None:
            cand = _shared_codes(codes.full())
    else:
        cand = _keyed_candidates(frame, keyed, ids, keycache) if len(keyed) > 1 else None
        if cand is None:
            cand = frame.duplicated(subset=keyed or canon[:3], keep=False).to_numpy()
    if not cand.any():
        return
    cand_rows = np.flatnonzero(cand)
    sub = pd.DataFrame(
        {c: _take_rows(frame[c].array, cand_rows) for c in check_cols},
        columns=check_cols,
        copy=False,
    )  # column by column: the candidates are few, and this skips pandas' block machinery
    exact = np.zeros(n, dtype=bool)
    exact[np.flatnonzero(cand)] = sub.duplicated(keep="first").to_numpy()
    if exact.any() and not keyed:
        # contacts/events have no key: two phone calls or two negative screens on one day
        # can be genuine, so repeats are kept and reported once for the table
        pos = np.flatnonzero(exact)
        ctx.table_level(
            "repeated_row",
            checks.repeated_row_detail(
                len(pos), ctx.line_label, [int(ctx.lines[p]) for p in pos[:10]]
            ),
            line=int(ctx.lines[pos[0]]),
            action="kept",
        )
        return
    if exact.any():
        gid = sub.groupby(check_cols, dropna=False, sort=False).ngroup().to_numpy()
        uniq, first_idx = np.unique(gid, return_index=True)
        cand_pos = np.flatnonzero(cand)
        first_of_group = dict(zip(uniq.tolist(), cand_pos[first_idx].tolist(), strict=True))
        pos = np.flatnonzero(exact)
        group_of = dict(zip(cand_pos.tolist(), gid.tolist(), strict=True))
        ctx.rows(
            "duplicate_row",
            pos,
            None,
            [None] * len(pos),
            lambda _v, p: checks.duplicate_row_detail(
                ctx.line_label, int(ctx.lines[first_of_group[group_of[p]]])
            ),
            action="dropped",
        )
        drop |= exact
    if keyed:
        dupkey = frame.loc[~drop].duplicated(subset=keyed, keep=False)
        dk = np.zeros(n, dtype=bool)
        dk[np.flatnonzero(~drop)] = dupkey.to_numpy()
        if dk.any():
            pos = np.flatnonzero(dk)
            keys = [
                tuple(map(str, k)) for k in frame.loc[pos, keyed].itertuples(index=False, name=None)
            ]
            groups: dict[tuple[str, ...], list[int]] = {}
            for p, k in zip(pos.tolist(), keys, strict=True):
                groups.setdefault(k, []).append(int(ctx.lines[p]))
            label = ", ".join(keyed)
            ctx.rows(
                "duplicate_key",
                pos,
                keyed[0],
                [checks.key_value_text(k)[0] for k in keys],
                lambda v, p, keys=keys, pos=pos: checks.duplicate_key_detail(
                    label, v, ctx.line_label, groups[keys[int(np.searchsorted(pos, p))]]
                ),
                action="",
            )
            errors |= dk


def _keyed_candidates(
    frame: pd.DataFrame,
    keyed: list[str],
    ids: Mapping[str, Any],
    keycache: dict[str, Any] | None,
) -> np.ndarray | None:
    """Rows whose multi-column key occurs more than once, on integer codes (``None``: cannot).

    The first key column is an ID whose values pack into integers (``_id_keys``) and
    whose rows are grouped (the usual export order: by participant); the other key
    columns become small integer codes (dates as days, IDs and codes by their distinct
    values) combined into one code per row, and repeats are found group by group
    (:func:`_grouped_repeats`). The same rows as ``frame.duplicated(keyed, keep=False)``
    (missing values equal to each other, as there).
    """
    first = keyed[0]
    if first not in ids:
        return None
    packed = _cached_keys(keycache, first, ids[first])
    if packed is None:
        return None
    n = len(frame)
    code = np.zeros(n, dtype=np.int64)
    span = 1
    for c in keyed[1:]:
        s = frame[c]
        if s.dtype.kind == "M":
            v = s.to_numpy(dtype="datetime64[ns]")
            part = v.view("int64") // (86_400 * 10**9)
            part = np.where(np.isnat(v), -(2**20), part) + 2**20  # [0, 2**21)
            k = 2**21
        elif c in ids and (other := _cached_keys(keycache, c, ids[c])) is not None:
            codes, uniq = pd.factorize(other[0])
            part, k = codes.astype(np.int64, copy=False), max(len(uniq), 1)
        else:
            col = ids.get(c)
            if col is None:
                col = getattr(s.array, "_pa_array", None)
                if col is None:
                    return None
            enc = pc.dictionary_encode(_arr(col), null_encoding="encode")
            part = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            k = max(len(enc.dictionary), 1)
        span *= k
        if span >= 2**40:
            return None
        code *= k
        code += part
    return _grouped_repeats(packed[0], code, _RowCodes.BLOCK)


def _chunked_take(arr: Any, pos: np.ndarray) -> Any:
    """``arr.take(pos)`` for ascending ``pos``, chunk by chunk.

    Arrow's take on a many-chunk column concatenates every chunk first (a copy of the
    whole column); a few rows out of a CSV-read column need only their own chunks.
    """
    if not isinstance(arr, pa.ChunkedArray) or arr.num_chunks <= 1:
        return pc.take(arr, pa.array(pos, pa.int64()))
    bounds = np.cumsum([len(c) for c in arr.chunks])
    which = np.searchsorted(bounds, pos, side="right")
    starts = np.concatenate(([0], bounds[:-1]))
    pieces = []
    cut = np.flatnonzero(np.diff(which)) + 1
    for seg in np.split(np.arange(len(pos)), cut) if len(pos) else []:
        k = int(which[seg[0]])
        local = pa.array(pos[seg] - starts[k], pa.int64())
        pieces.append(arr.chunk(k).take(local))
    return pa.chunked_array(pieces, type=arr.type)


def _take_rows(values: Any, pos: np.ndarray) -> Any:
    """Rows ``pos`` (ascending) of a pandas array; Arrow-backed text is taken chunk by chunk."""
    data = getattr(values, "_pa_array", None)  # pandas' Arrow-backed arrays
    if isinstance(values, pd.arrays.ArrowStringArray) and isinstance(data, pa.ChunkedArray):
        return pd.arrays.ArrowStringArray(_chunked_take(data, pos))
    return values.take(pos)


def _shared_codes(codes: np.ndarray) -> np.ndarray:
    """Rows whose ``_row_codes`` value occurs more than once (any order of rows).

    The (participant rank, day) pairs are renumbered densely and sorted with numpy's
    16-bit radix sort, one pass per 16 bits (LSD): about three times faster than a
    comparison sort or a hash table on millions of int64 codes.
    """
    n = len(codes)
    rank = codes >> 24
    rank += 1  # unknown participants (-1) first
    day = codes & (2**24 - 1)
    dmin = int(day.min())
    width = int(day.max()) - dmin + 1
    key = rank.astype(np.uint64)
    del rank
    key *= np.uint64(width)
    day -= dmin
    key += day.astype(np.uint64)
    del day
    top = int(key.max())
    if top < 2**32:
        key = key.astype(np.uint32)
    order = None
    shift = 0
    while shift == 0 or top >> shift:
        digit = (key >> shift) & 0xFFFF
        digit = digit.astype(np.uint16) if order is None else digit[order].astype(np.uint16)
        step = np.argsort(digit, kind="stable")  # radix sort for 16-bit integers
        order = step if order is None else order[step]
        shift += 16
    sk = key[order]
    eq = sk[1:] == sk[:-1]
    near = np.zeros(n, dtype=bool)
    near[1:] |= eq
    near[:-1] |= eq
    cand = np.zeros(n, dtype=bool)
    cand[order] = near
    return cand


def _row_codes(pidx: np.ndarray, dates: np.ndarray, days: np.ndarray | None = None) -> np.ndarray:
    """One int64 per row combining the participant index and the day (for duplicate pre-screening).

    ``days``: the same dates as days since 1970 (int32, missing as ``-(2**20)``) when
    the caller has them, which saves converting from nanoseconds.
    """
    if days is None:
        days = dates.view("int64") // (86_400 * 10**9)
        days = np.where(np.isnat(dates), -(2**20), days)
    codes = pidx.astype(np.int64)
    codes <<= 24
    codes += days
    codes += 2**23
    return codes


def _grouped_repeats(
    group: np.ndarray, code: np.ndarray, block: int, offset: int = 0
) -> np.ndarray | None:
    """Rows whose (group, code) pair occurs more than once, when each group's rows are contiguous.

    ``group``: any integer label per row (a participant's rank or packed ID); ``code``:
    an integer per row with ``code + offset`` in ``[0, 2**40)``. Equal pairs can only sit inside one
    run of equal labels, so the rows are cut into blocks of about ``block`` rows at run
    boundaries and each block's (run, code) pairs are sorted on their own (cache-sized
    sorts, no full-length one). ``None`` when a label has more than one run (the
    caller then checks the whole table another way).
    """
    n = len(group)
    if n < 2:
        return np.zeros(n, dtype=bool)
    starts = np.flatnonzero(group[1:] != group[:-1]) + 1
    heads = group[np.concatenate(([0], starts))]
    if len(heads) > 1 and not bool((heads[1:] > heads[:-1]).all()):
        if not pd.Index(heads).is_unique:
            return None  # a group's rows in more than one run
    cand = _pool_full(n, False, bool)
    s = 0
    while s < n:
        k = int(np.searchsorted(starts, s + block))
        e = int(starts[k]) if k < len(starts) else n
        if e - s > 1:
            key = np.empty(e - s, dtype=np.int64)
            key[0] = 0
            np.not_equal(group[s + 1 : e], group[s : e - 1], out=key[1:])
            np.cumsum(key, out=key)  # the run within the block
            key <<= 40
            key += code[s:e]
            if offset:
                key += offset
            order = np.argsort(key)
            srt = key[order]
            eq = srt[1:] == srt[:-1]
            if eq.any():
                near = np.zeros(e - s, dtype=bool)
                near[1:] |= eq
                near[:-1] |= eq
                cand[s + order] = near
        s = e
    return cand


class _DayCodes:
    """Days since 1970 of ``datetime64[ns]`` dates (missing: ``-(2**20)``), made per slice."""

    def __init__(self, dates: np.ndarray):
        self.dates = dates

    def __getitem__(self, rows: slice) -> np.ndarray:
        d = self.dates[rows]
        days = d.view("int64") // (86_400 * 10**9)
        days[np.isnat(d)] = -(2**20)
        return days


class _RowCodes:
    """``_row_codes`` of a table, built block by block when the rows turn out to be sorted."""

    BLOCK = 1 << 16

    def __init__(self, rank: np.ndarray, dates: np.ndarray, days: np.ndarray | None):
        self.rank, self.dates, self.days = rank, dates, days

    def full(self) -> np.ndarray:
        return _row_codes(self.rank, self.dates, self.days)

    def sorted_candidates(self) -> np.ndarray | None:
        """Rows equal to a neighbour's code when the codes never decrease, else ``None``.

        Works in cache-sized blocks (overlapping by one row), so no full-length code
        array is made on the usual, sorted path.
        """
        n = len(self.rank)
        cand = _pool_full(n, False, bool)
        for s in range(0, max(n - 1, 0), self.BLOCK):
            e = min(n, s + self.BLOCK + 1)
            days = None if self.days is None else self.days[s:e]
            c = _row_codes(self.rank[s:e], self.dates[s:e], days)
            step = c[1:] - c[:-1]
            if (step < 0).any():
                return None
            eq = step == 0
            cand[s + 1 : e] |= eq
            cand[s : e - 1] |= eq
        return cand

    def grouped_candidates(self) -> np.ndarray | None:
        """Rows sharing a (participant, day) code when each participant's rows are contiguous.

        The usual export order groups rows by participant without sorting their dates
        (``sorted_candidates`` then gives up). Repeats can only sit inside one group, so
        the rows are cut into cache-sized blocks at group boundaries and each block's
        (group, day) codes are sorted on their own: the same candidates as
        :func:`_shared_codes` over the whole table, without a full-length sort. ``None``
        when some participant's rows are split over several runs.
        """
        if self.days is not None:
            return _grouped_repeats(self.rank, self.days, self.BLOCK, offset=2**21)
        return _grouped_repeats(self.rank, _DayCodes(self.dates), self.BLOCK, offset=2**21)


# ---------------------------------------------------------------------------
# cross-table rules
# ---------------------------------------------------------------------------
#: What a packed key depends on besides its 8 packed bytes: the IDs' byte width and the
#: constant leading bytes that were left out (empty for widths up to 8). Keys of two
#: columns are comparable only when their tags are equal.
_KeyTag = tuple[int, bytes]


def _id_keys(arr: Any) -> np.ndarray | None:
    """Fixed-width IDs packed into uint64 keys (see :func:`_id_keys_tagged`), else None."""
    tagged = _id_keys_tagged(arr)
    return None if tagged is None else tagged[0]


def _id_keys_tagged(arr: Any) -> tuple[np.ndarray, _KeyTag] | None:
    """Fixed-width IDs packed into uint64 keys, with the tag saying how; None when they cannot be.

    Most exports use fixed-width codes (``P000123``, ``00042``, ``P000000123``); packing
    their bytes (big-endian, so numeric order is the text order) turns string hashing
    into integer work without parsing anything, so ``007`` and ``7`` stay different keys.
    IDs of up to 8 bytes are packed whole; longer IDs when every value starts with the
    same ``width - 8`` bytes (a constant prefix such as ``P0``), which are left out and
    kept in the tag. All values must have one byte width and none may be missing. Works
    chunk by chunk on the Arrow buffers (no combined copy of the text column).
    """
    n = len(arr)
    if n == 0 or arr.null_count or arr.type not in (pa.string(), pa.large_string()):
        return None
    otype = np.int64 if arr.type == pa.large_string() else np.int32
    owidth = np.dtype(otype).itemsize
    chunks = [c for c in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]) if len(c)]
    width = None
    prefix: bytes | None = None
    out = _pool_empty(n, np.uint64)
    at = 0
    for c in chunks:
        m = len(c)
        bufs = c.buffers()
        offs = np.frombuffer(bufs[1], dtype=otype, count=m + 1, offset=c.offset * owidth)
        w = int(offs[1] - offs[0])
        if width is None:
            width = w
        if (
            w != width
            or w < 1
            or int(offs[-1] - offs[0]) != w * m
            or not (np.diff(offs) == w).all()
        ):
            return None
        start = int(offs[0])
        skip = max(0, w - 8)
        if skip:
            if prefix is None:
                prefix = bytes(memoryview(bufs[2])[start : start + skip])
            for j, byte in enumerate(prefix):  # strided views: no copy of the text
                lead = np.ndarray((m,), np.uint8, buffer=bufs[2], offset=start + j, strides=(w,))
                if not (lead == byte).all():
                    return None
        if w - skip == 8:  # big-endian bytes straight into native integers, strided
            out[at : at + m] = np.ndarray(
                (m,), ">u8", buffer=bufs[2], offset=start + skip, strides=(w,)
            )
        else:
            rows = np.frombuffer(bufs[2], dtype=np.uint8, count=w * m, offset=start).reshape(m, w)
            packed = np.zeros((m, 8), dtype=np.uint8)
            packed[:, :w] = rows
            out[at : at + m] = packed.view(">u8").ravel()
        at += m
    assert width is not None
    return out, (width, prefix or b"")


def _cached_keys(
    cache: dict[str, Any] | None, name: str, arr: Any
) -> tuple[np.ndarray, _KeyTag] | None:
    """``_id_keys_tagged`` of a table's ID column, computed once per load."""
    if cache is None:
        return _id_keys_tagged(arr)
    if name not in cache:
        cache[name] = _id_keys_tagged(arr)
    return cache[name]


def _sorted_indexer(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of ``values`` in strictly increasing ``keys`` (-1 when absent)."""
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = np.searchsorted(keys, values)
    np.minimum(pos, len(keys) - 1, out=pos)
    pos[keys[pos] != values] = -1
    return pos.astype(np.int64, copy=False)


def _lookup(
    child: Any,
    parent: Any,
    ck: tuple[np.ndarray, _KeyTag] | None = None,
    pk: tuple[np.ndarray, _KeyTag] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Position of each child ID in ``parent`` (first occurrence; -1 when absent or null), and a rank.

    The rank orders rows by parent ID when the child IDs are sorted (the usual export
    order): it is the position in the sorted parent keys, so (rank, date) codes are
    monotonic and repeated rows are neighbours. Otherwise the rank is the position
    itself; it is only used to pre-screen repeated rows. Fixed-width IDs are joined as
    integers when both columns pack alike (``_id_keys_tagged``, equal tags): by binary
    search when the parent keys are sorted, else with pandas' hash index; anything else
    with Arrow's string ``index_in``.
    """
    if ck is None:
        ck = _id_keys_tagged(child)
    if pk is None:
        pk = _id_keys_tagged(parent)
    if ck is not None and pk is not None and ck[1] == pk[1]:
        ck, pk = ck[0], pk[0]  # type: ignore[assignment]
        increasing = len(pk) < 2 or bool((pk[1:] > pk[:-1]).all())
        index = None if increasing else pd.Index(pk)
        if increasing or index.is_unique:
            if len(ck) > 1 and bool((ck[1:] >= ck[:-1]).all()):
                # sorted children: look up each run of equal IDs once, then spread
                starts = np.flatnonzero(ck[1:] != ck[:-1]) + 1
                first = np.concatenate(([0], starts))
                u = ck[first]
                iu = _sorted_indexer(pk, u) if index is None else index.get_indexer(u).astype(np.int64)
                found = iu >= 0
                if increasing:
                    ru = iu.copy()  # parent keys sorted: the rank is the position
                    if not found.all():
                        ru[~found] = np.searchsorted(pk, u[~found])
                else:
                    order = np.argsort(pk, kind="stable")
                    rank_of = np.empty(len(pk), dtype=np.int64)
                    rank_of[order] = np.arange(len(pk), dtype=np.int64)
                    ru = rank_of[np.where(found, iu, 0)]
                    if not found.all():
                        ru[~found] = np.searchsorted(pk[order], u[~found])
                run = _pool_full(len(ck), 0, np.int64)  # the run of each row
                run[starts] = 1
                np.cumsum(run, out=run)
                # mode="clip": the run numbers are in range; "raise" would buffer a copy
                idx = np.take(iu, run, out=_pool_empty(len(ck), np.int64), mode="clip")
                if found.all() and np.array_equal(ru, iu):
                    return idx, idx  # one array for both (the rank is the position)
                rank = np.take(ru, run, out=_pool_empty(len(ck), np.int64), mode="clip")
                return idx, rank
            if index is None:
                index = pd.Index(pk)
            idx = index.get_indexer(ck).astype(np.int64)
            return idx, idx
    idx = pc.index_in(child, value_set=_arr(parent))
    out = _np_int(pc.fill_null(pc.cast(idx, pa.int64()), -1)).astype(np.int64)
    return out, out


def _cross_rules(
    b: _Built, built: dict[str, _Built], as_of: pd.Timestamp | None, drop_mode: bool
) -> np.ndarray:
    """References and date logic against the participants/mentors tables; returns rows to drop as orphans of drops."""
    n = len(b.frame)
    cascade = np.zeros(n, dtype=bool)
    if n == 0:
        return cascade
    spec = TABLES[b.name]
    ctx = b.ctx
    frame = b.frame
    pidx = prank = None
    for col, (ptable, pcol) in spec.references.items():
        parent = built.get(ptable)
        if parent is None or parent.fatal or col not in b.ids:
            continue
        # privacy.scan._held_by_collected relies on this rule: IDs that reference a collected
        # table are not searched again on an engine report (keep the two in step)
        if ptable == "mentors" and parent.rows_read == 0:
            continue
        child_ids = b.ids[col]
        pids = parent.ids[pcol]
        idx, rank = _lookup(
            child_ids,
            pids,
            _cached_keys(b.keys, col, child_ids),
            _cached_keys(parent.keys, pcol, pids),
        )
        orphan = np.less(idx, 0, out=_pool_empty(n, bool))
        if child_ids.null_count:
            orphan &= _np_bool(pc.is_valid(child_ids))
        if orphan.any():
            pos = np.flatnonzero(orphan)
            vals = _chunked_take(child_ids, pos).to_pylist()
            pfile = parent.ctx.file
            ctx.rows(
                "orphan",
                pos,
                col,
                vals,
                lambda v, _p, ptable=ptable, pfile=pfile: checks.orphan_detail(v, ptable, pfile),
                action="",
                by_value=True,
            )
            b.error_rows |= orphan
        if drop_mode:
            pdrop = parent.error_rows | parent.drop_rows | parent.cascade
            if pdrop.any():
                hit = (idx >= 0) & ~orphan
                lost = np.zeros(n, dtype=bool)
                lost[hit] = pdrop[idx[hit]] & ~parent.drop_rows[idx[hit]]
                lost &= ~b.error_rows
                if lost.any():
                    pos = np.flatnonzero(lost)
                    vals = _chunked_take(child_ids, pos).to_pylist()
                    plines = parent.ctx.lines
                    pfile = parent.ctx.file
                    ctx.rows(
                        "parent_dropped",
                        pos,
                        col,
                        vals,
                        lambda v, p, idx=idx, plines=plines, pfile=pfile, plabel=parent.ctx.line_label: (
                            checks.parent_dropped_detail(v, pfile, plabel, int(plines[idx[p]]))
                        ),
                        action="dropped",
                    )
                    cascade |= lost
        if ptable == "participants":
            pidx, prank = idx, rank

    date_col = checks.TABLE_DATE_COLUMN[b.name]
    d = _dates(frame, date_col)
    if as_of is not None:
        for c in checks.AS_OF_COLUMNS[b.name]:
            dc = _dates(frame, c)
            late = np.greater(
                dc, np.datetime64(as_of.to_datetime64(), "ns"), out=_pool_empty(len(dc), bool)
            )
            ctx.date_rows(
                "after_as_of",
                late,
                c,
                dc,
                lambda v, _p, c=c: checks.after_as_of_detail(c, v, as_of.date().isoformat()),
            )
    if pidx is not None:
        p = built["participants"].frame
        ok = pidx >= 0
        all_ok = bool(ok.all())
        safe = pidx if all_ok else np.where(ok, pidx, 0)
        nat = np.array([np.datetime64("NaT")], dtype="datetime64[ns]")
        enr_p = _dates(p, "enrollment_date") if len(p) else nat
        birth_p = _dates(p, "birth_date") if len(p) else nat

        def at(parent_dates: np.ndarray, rows: Any) -> Any:
            """The participant's date for child rows ``rows`` (NaT for unknown participants)."""
            v = parent_dates[safe[rows]]
            return v if all_ok else np.where(ok[rows], v, np.datetime64("NaT"))

        # block by block (cache-sized), so no full-length copies of the participants'
        # dates are made for millions of event rows
        bad = _pool_empty(n, bool)
        before = _pool_empty(n, bool)
        unknown = _pool_empty(n, bool) if b.name == "events" else None
        for s0 in range(0, n, _BLOCK):
            blk = slice(s0, min(n, s0 + _BLOCK))
            e_blk = at(enr_p, blk)
            np.less(d[blk], at(birth_p, blk), out=bad[blk])
            np.less(d[blk], e_blk, out=before[blk])
            if unknown is not None:
                np.logical_or(np.isnat(d[blk]), np.isnat(e_blk), out=unknown[blk])
        if ctx.date_rows(
            "before_birth",
            bad,
            date_col,
            d,
            lambda v, q: checks.before_birth_child_detail(date_col, v, str(at(birth_p, q))[:10]),
        ):
            b.error_rows |= bad
        if unknown is not None:
            frame["before_enrollment"] = pd.arrays.BooleanArray(before, unknown)
        if before.any() and b.name in ("events", "contacts"):
            first = int(np.flatnonzero(before)[0])
            ctx.table_level(
                "before_enrollment",
                checks.before_enrollment_detail(
                    b.name, int(before.sum()), ctx.line_label, int(ctx.lines[first])
                ),
                column=date_col,
                line=int(ctx.lines[first]),
                action="kept",
            )
        if b.name == "assessments":
            enr = at(enr_p, slice(None))
            dis = at(_dates(p, "discharge_date") if len(p) else nat, slice(None))
            tp_col = frame["timepoint"].array
            tp_arrow = getattr(tp_col, "_pa_array", None)
            for point, (lo, hi) in ASSESSMENT_WINDOWS.items():
                at_point = (
                    _np_bool(pc.equal(tp_arrow, point))  # compared in Arrow, no objects
                    if tp_arrow is not None
                    else np.asarray(tp_col.to_numpy(dtype=object, na_value=None) == point)
                )
                ref = dis if point == "discharge" else enr
                refname = "discharge_date" if point == "discharge" else "enrollment_date"
                # NaT - anything is NaT, whose int64 is -2**63: make it NaN so a missing
                # date never compares (nor prints as -9223372036854775808 days)
                gap = d - ref
                days = np.where(
                    np.isnat(gap), np.nan, gap.astype("timedelta64[D]").astype("float64")
                )
                with np.errstate(invalid="ignore"):
                    far = at_point & ((days < lo) | (days > hi))
                ctx.date_rows(
                    "assessment_window",
                    far,
                    "assessment_date",
                    d,
                    lambda v, q, days=days, point=point, lo=lo, hi=hi, refname=refname: (
                        checks.assessment_window_detail(point, v, days[q], lo, hi, refname)
                    ),
                )
    if not spec.key:
        codes = _RowCodes(prank, d, None) if prank is not None else None
        _duplicates(spec, frame, ctx, b.error_rows, b.drop_rows, b.ids, codes, b.keys)
    return cascade


# ---------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------
def parse_as_of(as_of: Any) -> pd.Timestamp | None:
    """``as_of`` as a midnight Timestamp (``None`` stays ``None``)."""
    if as_of is None:
        return None
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise InvalidParameterError(
            f"as_of must be a date such as '2026-09-30' (or a datetime.date); got {as_of!r}."
        ) from None
    if ts is pd.NaT:
        raise InvalidParameterError(f"as_of must be a date such as '2026-09-30'; got {as_of!r}.")
    return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()


def validate_tables(
    raws: Mapping[str, RawTable],
    *,
    as_of: Any = None,
    on_error: OnError = "raise",
    source: str = "",
    extra_findings: list[dict[str, Any]] | None = None,
    sources: list[tuple[str, str, str, int]]
    | Callable[[], list[tuple[str, str, str, int]]]
    | None = None,
) -> ProgramData:
    """Coerce, check and assemble tables read by the readers (internal; see ``read_program``).

    ``sources`` may be a function returning the list, called only once the tables are
    built (``read_program`` hashes the files meanwhile).
    """
    check_option("on_error", on_error, OnError)
    cutoff = parse_as_of(as_of)
    drop_mode = on_error == "drop"
    built: dict[str, _Built] = {}
    pre = list(extra_findings or [])
    for name in TABLE_NAMES:
        raw = raws.get(name)
        if raw is None:
            continue
        b = _build_table(raw)
        b.cascade = np.zeros(len(b.frame), dtype=bool)
        built[name] = b
    if "participants" not in built and not any(f["severity"] == "error" for f in pre):
        pre.append(
            file_finding(
                "table_missing",
                "participants",
                source or "<source>",
                "no participants table was found (participants.csv/.parquet/.xlsx/.sav/.dta "
                "or [tables.participants] in program.toml)",
            )
        )
    for name in TABLE_NAMES:
        b = built.get(name)
        if b is None or b.fatal:
            continue
        b.cascade = _cross_rules(b, built, cutoff, drop_mode)

    findings = pre + [f for b in built.values() for f in b.ctx.findings]
    fatal = any(b.fatal for b in built.values()) or any(
        f["severity"] == "error" and RULES[f["rule"]].scope != "row" and f.get("_pos") is None
        for f in findings
    )
    has_errors = fatal or any(b.error_rows.any() or b.bad_rows for b in built.values())
    validation = _validation_frame(findings, drop_mode and not fatal)
    del findings
    for b in built.values():
        b.ctx.findings.clear()  # the blocks now live in ``validation`` only
    raise_for_errors(validation, fatal=fatal, has_errors=has_errors, drop_mode=drop_mode, source=source)

    frames: dict[str, pd.DataFrame] = {}
    flow = []
    for name in TABLE_NAMES:
        b = built.get(name)
        if b is None:
            frames[name] = empty_table(name)
            flow.append((name, 0, 0, 0))
            continue
        frame = b.frame
        if b.drop_rows.any() or b.cascade.any() or (drop_mode and b.error_rows.any()):
            remove = b.drop_rows | b.cascade | (b.error_rows if drop_mode else False)
            frame = frame.loc[~remove].reset_index(drop=True)
        frames[name] = frame
        kept = len(frame)
        flow.append((name, b.rows_read, kept, b.rows_read - kept))
    if callable(sources):
        sources = sources()
    src = pd.DataFrame(sources or [], columns=list(SOURCE_COLUMNS))
    return ProgramData(
        **frames,
        validation=validation,
        flow=pd.DataFrame(flow, columns=list(FLOW_COLUMNS)),
        sources=src,
        as_of=cutoff,
        source=source,
    )


def raise_for_errors(
    validation: pd.DataFrame, *, fatal: bool, has_errors: bool, drop_mode: bool, source: str
) -> None:
    """Raise :class:`DataValidationError` listing every error and warning, when the load must stop."""
    if not (fatal or (has_errors and not drop_mode)):
        return
    sev = validation["severity"]
    sev_np = sev.to_numpy(dtype=object)
    problems = _FindingList(
        validation,
        np.concatenate(
            [np.flatnonzero(sev_np == "error"), np.flatnonzero(sev_np == "warning")]
        ),
    )
    n_err = int((sev == "error").sum())
    where = source or "the program data"
    hint = "" if fatal else f" (or pass {param('on_error', 'drop')} to drop the offending rows)"
    exc = DataValidationError(
        f"{where}: {n_err} error(s) found; fix them and load again{hint}.", problems
    )
    exc.validation = validation  # type: ignore[attr-defined]
    raise exc


def _validation_frame(findings: list[dict[str, Any]], drop_mode: bool) -> pd.DataFrame:
    """All findings as one frame, ordered by table, line and severity.

    Per-row findings arrive as blocks (``_Ctx.rows``). The frame is assembled in Arrow:
    the columns that are constant within a block (rule, severity, table, file, column,
    action) as dictionary codes, lines as one integer array, values and messages as one
    text array each; the text columns reach pandas as ``string[pyarrow]`` without a
    Python object per cell.
    """
    cols = list(VALIDATION_COLUMNS) + list(VALIDATION_EXTRA)
    if not findings:
        return pd.DataFrame(
            {c: pd.Series(dtype="Int64" if c == "line" else "string") for c in cols}
        )
    order = {"error": 0, "warning": 1, "info": 2}
    tab = {t: i for i, t in enumerate(TABLE_NAMES)}
    const_cols = ("rule", "severity", "table", "file", "column", "action")
    consts: dict[str, list[Any]] = {c: [] for c in const_cols}
    sizes: list[int] = []
    lines: list[np.ndarray] = []
    values: list[pa.Array] = []
    messages: list[pa.Array] = []
    single_values: list[Any] = []
    single_messages: list[Any] = []

    def flush() -> None:
        if single_messages:
            values.append(pa.array(single_values, type=_TEXT))
            messages.append(pa.array(single_messages, type=_TEXT))
            single_values.clear()
            single_messages.clear()

    for f in findings:
        action = f.get("action") or ""
        if not action:
            if f["severity"] == "error" and f.get("_pos") is not None:
                action = "dropped" if drop_mode else "rejected"
            elif f["severity"] == "error":
                action = "rejected"
            else:
                action = "kept" if f.get("_pos") is not None else ""
        for c in const_cols:
            v = action if c == "action" else f[c]
            consts[c].append(None if v is None else str(v))
        if f.get("_block"):
            flush()
            sizes.append(len(f["message"]))
            lines.append(np.asarray(f["line"], dtype=np.int64))
            # moved, not shared: once sorted into the frame the block's text is freed
            values.append(f.pop("value"))
            messages.append(f.pop("message"))
            f["value"] = f["message"] = None
        else:
            sizes.append(1)
            line = f["line"]
            lines.append(np.array([-1 if line is None or pd.isna(line) else int(line)], np.int64))
            single_values.append(None if f["value"] is None else str(f["value"]))
            single_messages.append(f["message"])
    flush()
    k = np.asarray(sizes, dtype=np.int64)
    line = np.concatenate(lines)

    sev_code = np.repeat(np.array([order[v] for v in consts["severity"]], np.int8), k)
    tab_code = np.repeat(np.array([tab.get(v, -1) for v in consts["table"]], np.int8), k)
    # table, then line (whole-table findings, line -1, first), then severity; stable
    idx = np.lexsort((sev_code, line, tab_code))
    in_order = bool((idx[1:] > idx[:-1]).all())

    def repeated(per_block: list[Any]) -> pa.Array:
        index: dict[Any, int] = {}
        codes = np.array([index.setdefault(v, len(index)) for v in per_block], dtype=np.int32)
        rows = np.repeat(codes, k)
        dictionary = pa.array(list(index), type=_TEXT)
        return pa.DictionaryArray.from_arrays(
            pa.array(rows if in_order else rows[idx]), dictionary
        ).cast(_TEXT)

    def text(parts: list[pa.Array]) -> pa.ChunkedArray:
        # one contiguous copy, the blocks released, then the sorted copy: at most two
        # copies of the text at once (a chunked take would hold three)
        arr = pa.concat_arrays([_arr(x) for x in parts]) if len(parts) > 1 else _arr(parts[0])
        parts.clear()
        return pa.chunked_array([arr if in_order else arr.take(pa.array(idx))])

    data: dict[str, Any] = {}
    for c in cols:
        if c == "line":
            ln = line if in_order else line[idx]
            data[c] = pd.arrays.IntegerArray(np.where(ln < 0, 0, ln), ln < 0)
        else:
            if c in consts:
                arr = pa.chunked_array([repeated(consts[c])])
            else:
                arr = text(values if c == "value" else messages)
            data[c] = pd.arrays.ArrowStringArray(arr)
    return pd.DataFrame(data)


class _FindingList(Sequence[Finding]):
    """The findings of a validation frame as :class:`Finding` objects, made on access.

    What ``DataValidationError.problems`` holds: a million-row error list stays one
    frame, and only the findings that are looked at become objects.
    """

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        self._frame = frame
        self._rows = rows  # positions in ``frame``, in the order of the list

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Finding: ...
    @overload
    def __getitem__(self, i: slice) -> list[Finding]: ...
    def __getitem__(self, i: int | slice) -> Finding | list[Finding]:
        if isinstance(i, slice):
            part = self._frame.iloc[self._rows[i]]
            return [_as_finding(r) for r in part.itertuples(index=False)]
        return _as_finding(next(self._frame.iloc[[self._rows[i]]].itertuples(index=False)))

    def __iter__(self) -> Iterator[Finding]:
        step = 4096
        for s0 in range(0, len(self), step):
            yield from self[s0 : s0 + step]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} findings>"


def _as_finding(r: Any) -> Finding:
    return Finding(
        r.rule,
        r.severity,
        r.table,
        r.file,
        None if pd.isna(r.line) else int(r.line),
        None if pd.isna(r.column) else r.column,
        None if pd.isna(r.value) else r.value,
        r.message,
    )


def build_program(
    tables: Mapping[str, pd.DataFrame],
    *,
    as_of: Any = None,
    on_error: str = "raise",
    source: str = "<in-memory>",
) -> ProgramData:
    """Validate in-memory tables (canonical column names) into ``ProgramData``.

    Parameters
    ----------
    tables
        Canonical table name -> DataFrame (``participants`` required). Columns may be
        text, numbers, datetimes or categoricals; they are coerced to the canonical
        kinds exactly as file columns are.
    as_of
        Data cut-off for the ``after_as_of`` check (``None``: no check).
    on_error
        ``"raise"`` or ``"drop"``, as in :func:`recoverystats.read_program`.
    source
        Name used in messages and ``ProgramData.source``.

    Returns
    -------
    ProgramData

    Raises
    ------
    DataValidationError
        Every error found (``on_error="raise"``), or table-level errors.
    InvalidParameterError
        Unknown table names, non-DataFrame values, bad ``on_error``/``as_of``.

    Notes
    -----
    The same coercion and rules as :func:`recoverystats.read_program`; ``line`` in
    findings is the 1-based row position in each frame. Hand-written (no maintained
    library implements this data model's rules); cf. R ``pointblank``/``validate``.
    """
    unknown = [k for k in tables if k not in TABLE_NAMES]
    if unknown:
        raise InvalidParameterError(
            f"tables: unknown table name(s) {', '.join(map(repr, unknown))}; "
            f"tables are {', '.join(TABLE_NAMES)}."
        )
    raws: dict[str, RawTable] = {}
    for name, df in tables.items():
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterError(
                f"tables[{name!r}] must be a pandas DataFrame; got {type(df).__name__}."
            )
        raws[name] = RawTable(
            name=name,
            data=frame_to_arrow(df.reset_index(drop=True)),
            file=f"{name} (in-memory)",
            first_line=1,
            line_label="row",
            options=TableMapping(na_values=DEFAULT_NA_VALUES),
        )
    return validate_tables(raws, as_of=as_of, on_error=on_error, source=source)  # type: ignore[arg-type]


__all__ = ["build_program", "validate_tables", "parse_as_of", "ISO_DATE_FORMATS"]
