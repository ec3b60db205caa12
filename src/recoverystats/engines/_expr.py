"""Small Ibis expression helpers shared by the engine measures (internal).

Dates are handled as integer day numbers (days since 1970-01-01, NULL for a missing
date), as the pandas measures handle them as float day numbers: comparisons and
differences are then plain integer arithmetic that every engine evaluates identically.
NULL plays the part of NumPy's NaN; the helpers make the NaN rules explicit (a
comparison with NULL is false, ``nan_min`` ignores NULL).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

EPOCH = ibis.date(1970, 1, 1)
#: Larger than any day number (day numbers of real dates stay below 3 million).
_NO_DAY = 2**62


def day(col: ir.Value) -> ir.IntegerValue:
    """A date or timestamp column as its day number (NULL stays NULL)."""
    if col.type().is_timestamp():
        col = col.date()
    elif not col.type().is_date():
        col = col.cast("date")
    return col.epoch_days().cast("int64")


def date_of(days: ir.IntegerValue) -> ir.DateValue:
    """A day number back to a date (NULL stays NULL)."""
    return (EPOCH + days.cast("int64").as_interval("D")).cast("date")


def true(cond: ir.BooleanValue) -> ir.BooleanValue:
    """A condition with NULL read as false (NumPy: a comparison with NaN is False)."""
    return cond.fill_null(False)


def null_unless(cond: ir.BooleanValue, value: ir.Value) -> ir.Value:
    """``value`` where ``cond`` holds, NULL elsewhere."""
    return ibis.ifelse(true(cond), value, ibis.null(value.type()))


def nan_min(*values: ir.Value) -> ir.Value:
    """Element-wise minimum ignoring NULL (NULL only when every input is NULL).

    Each input appears once in the SQL (a NULL becomes a sentinel larger than any day
    number, and the sentinel becomes NULL again): nesting CASE expressions instead would
    repeat every input in every branch and grow the query exponentially with nesting.
    """
    sentinel = ibis.literal(_NO_DAY, "int64")
    return ibis.least(*(v.cast("int64").fill_null(sentinel) for v in values)).nullif(sentinel)


def greatest0(x: ir.NumericValue) -> ir.NumericValue:
    """``np.maximum(x, 0)`` (NULL stays NULL)."""
    return ibis.ifelse(x < 0, 0, x)


def as_float(cond: ir.BooleanValue) -> ir.FloatingValue:
    """A flag as 1.0 / 0.0 (NULL read as false)."""
    return true(cond).cast("float64")


def window_outcome(eligible: ir.BooleanValue, hit: ir.BooleanValue) -> ir.FloatingValue:
    """1.0 / 0.0 where eligible, NULL otherwise (the pandas ``window_outcome``)."""
    return null_unless(eligible, as_float(hit))


def label(*rules: tuple[ir.BooleanValue, str]) -> ir.StringValue:
    """The first label whose condition holds (NULL when none): ``rules`` in priority order."""
    return ibis.cases(*((true(c), ibis.literal(text, "string")) for c, text in rules),
                      else_=ibis.null("string"))
