"""Row and cross-table rules: one definition of what each rule checks and what it says.

The pandas loader (:mod:`recoverystats.io.build`, numpy over whole columns) and the
engines (:mod:`recoverystats.engines.validate`, one query per rule on DuckDB or Spark)
both take from here:

- which column pairs a date-order rule compares (:data:`DATE_ORDER_RULES`), the
  plausible-age window (:data:`AGE_RANGE`), which date column each table is checked on
  (:data:`TABLE_DATE_COLUMN`) and which dates ``after_as_of`` looks at
  (:data:`AS_OF_COLUMNS`);
- the wording of every per-row finding (the ``*_detail`` functions below; the message
  around them -- file, line, column, fix and rule id -- is assembled by
  ``build._Ctx.rows`` on both paths).

Cell-level rules (type coercion, codes, dates that do not parse, placeholders, dates
out of range, control characters, over-long cells) are functions of a cell's value
only; the engines run the pandas path's own coercion (``build._coerce_column``) on each
column's *distinct* values and join the result back, so those rules have a single
implementation. Hand-written: no library implements this data model's rules.
"""

from __future__ import annotations

from typing import Any

#: ``(table, rule, later column, earlier column)``: the later date must not be before the
#: earlier one (missing dates never compare).
DATE_ORDER_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("participants", "discharge_before_enrollment", "discharge_date", "enrollment_date"),
    ("participants", "before_birth", "enrollment_date", "birth_date"),
    ("participants", "before_birth", "release_date", "birth_date"),
    ("participants", "before_birth", "discharge_date", "birth_date"),
    ("matches", "end_before_start", "end_date", "match_date"),
)
#: Plausible age at enrollment computed from birth_date (years of 365.25 days), inclusive.
AGE_RANGE: tuple[float, float] = (10.0, 100.0)
#: The date column each table's cross-table date rules look at.
TABLE_DATE_COLUMN: dict[str, str] = {
    "events": "event_date",
    "contacts": "contact_date",
    "assessments": "assessment_date",
    "matches": "match_date",
    "participants": "enrollment_date",
    "mentors": "certified_date",
}
#: Dates checked against the data cut-off (``after_as_of``), per table.
AS_OF_COLUMNS: dict[str, tuple[str, ...]] = {
    t: (c, "release_date", "discharge_date") if t == "participants" else (c,)
    for t, c in TABLE_DATE_COLUMN.items()
}


def shown(v: Any) -> str:
    """A value as quoted in a message (cut after 200 characters: a message stays a line)."""
    if isinstance(v, str) and len(v) > 200:
        return repr(v[:200]) + f"... ({len(v):,} characters)"
    return repr(v) if isinstance(v, str) else str(v)


def missing_detail(column: str) -> str:
    return f"required value {column} is empty"


def range_detail(column: str, value: float, lo: float, hi: float) -> str:
    return f"{column} = {value:g} is outside the plausible range {lo:g}-{hi:g}"


def date_order_detail(rule: str, later_col: str, later: str, earlier_col: str, earlier: str) -> str:
    """``discharge_before_enrollment``, ``before_birth`` (participants) and ``end_before_start``."""
    return f"{later_col} {later} is before {earlier_col} {earlier}"


def age_detail(birth: str, age: float) -> str:
    lo, hi = AGE_RANGE
    return (
        f"birth_date {birth} gives age {age:.1f} at enrollment, outside the plausible "
        f"range {lo:g}-{hi:g}"
    )


def duplicate_row_detail(label: str, first_line: int) -> str:
    return f"exact copy of {label} {first_line}; the copy is dropped"


def duplicate_key_detail(key_label: str, value: str, label: str, lines: list[int]) -> str:
    return f"{key_label} {value!r} appears on more than one row ({label}s {', '.join(map(str, lines))})"


def key_value_text(key: tuple[Any, ...]) -> tuple[str, str]:
    """A duplicate key as its finding shows it: (value column text, text per part joined)."""
    parts = tuple(map(str, key))
    return (parts[0] if len(parts) == 1 else "/".join(parts)), "/".join(parts)


def repeated_row_detail(n: int, label: str, lines: list[int]) -> str:
    shown_lines = ", ".join(str(int(x)) for x in lines[:10]) + (" ..." if n > 10 else "")
    return (
        f"{n} row(s) repeat an earlier row exactly ({label}s {shown_lines}); kept, as "
        "same-day repeats can be genuine"
    )


def orphan_detail(value: Any, parent_table: str, parent_file: str) -> str:
    return f"{shown(value)} is not a {parent_table[:-1]} in {parent_file}"


def parent_dropped_detail(value: Any, parent_file: str, parent_label: str, parent_line: int) -> str:
    return f"dropped because {shown(value)} was dropped from {parent_file} ({parent_label} {parent_line})"


def after_as_of_detail(column: str, value: str, as_of: str) -> str:
    return f"{column} {value} is after the data cut-off as_of {as_of}"


def before_birth_child_detail(column: str, value: str, birth: str) -> str:
    return f"{column} {value} is before the participant's birth_date {birth}"


def before_enrollment_detail(table: str, n: int, label: str, first_line: int) -> str:
    what = (
        "kept as history and flagged in events.before_enrollment"
        if table == "events"
        else "kept (contacts before enrollment, e.g. in-reach before release)"
    )
    return (
        f"{n} row(s) are dated before the participant's enrollment_date; {what} "
        f"(first at {label} {first_line})"
    )


def assessment_window_detail(
    point: str, value: str, days: float, lo: int, hi: int, refname: str
) -> str:
    return (
        f"{point} assessment on {value} is {days:+.0f} days from {refname} "
        f"(expected {lo:+d} to {hi:+d} days)"
    )


__all__ = [
    "AGE_RANGE",
    "AS_OF_COLUMNS",
    "DATE_ORDER_RULES",
    "TABLE_DATE_COLUMN",
]
