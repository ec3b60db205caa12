"""Shared machinery of the measures (internal).

Everything here is vectorised: participants are addressed by their row position in
``prog.participants`` and dates are handled as float day numbers (days since
1970-01-01, ``NaN`` for a missing date), so a measure over 100k participants and 2M
events is a handful of numpy operations (per-participant minima with ``ufunc.at``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError, RecoveryStatsWarning
from recoverystats.io.program import ProgramData
from recoverystats.measures.definitions import DEFINITIONS

#: Participant columns that are never covariates: the identifier, every date (birth
#: date is identifying; the others are outcome/index dates), and the discharge reason
#: (a post-baseline outcome).
NON_COVARIATES: frozenset[str] = frozenset(
    {
        "participant_id",
        "group",
        "site",
        "enrollment_date",
        "release_date",
        "discharge_date",
        "discharge_reason",
        "birth_date",
        "followup_end_date",
    }
)

#: Dates scanned for "the latest date in the data" when neither ``as_of`` nor
#: ``prog.as_of`` is given (planned dates such as follow-up end or release are not
#: evidence that the data reach that far, so they are not scanned).
_ACTIVITY_DATES: tuple[tuple[str, str], ...] = (
    ("participants", "enrollment_date"),
    ("participants", "discharge_date"),
    ("events", "event_date"),
    ("contacts", "contact_date"),
    ("assessments", "assessment_date"),
    ("matches", "match_date"),
)

REASON_ENROLLED_AFTER = "enrolled after as_of"
REASON_WINDOW = "window not complete"

_EPOCH = np.datetime64("1970-01-01", "D")


def check_program(prog: Any, func: str) -> ProgramData:
    """The first argument of every measure must be a ``ProgramData``."""
    if not isinstance(prog, ProgramData):
        raise InvalidParameterError(
            f"{func}(prog): prog must be a recoverystats ProgramData (from read_program(...) or "
            f"ProgramData.from_tables(...)); got {type(prog).__name__}."
        )
    return prog


def is_engine_program(prog: Any) -> bool:
    """A program whose tables an engine holds (``read_program(..., engine="duckdb"|"spark")``)."""
    return not isinstance(prog, ProgramData) and hasattr(prog, "backend") and hasattr(prog, "tables")


def check_collect(collect: Any, func: str) -> None:
    """``collect=False`` (the unexecuted engine expression) is for engine programs only."""
    if collect is not True:
        raise InvalidParameterError(
            f"{func}: collect={collect!r} applies to programs held by an engine (read_program(..., "
            "engine='duckdb' or 'spark')); an in-memory ProgramData always gives the DataFrame."
        )


def check_days(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """A whole, positive number of days."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok and isinstance(value, float) and float(value).is_integer():
        ok = True
    if not ok or (value < 0 or (value == 0 and not allow_zero)):
        lo = "non-negative" if allow_zero else "positive"
        raise InvalidParameterError(
            f"{name} must be a {lo} whole number of days (e.g. 365); got {value!r}."
        )
    return int(value)


def check_days_list(name: str, value: Any) -> tuple[int, ...]:
    """One or several positive whole numbers of days, returned sorted and unique."""
    items: Iterable[Any] = [value] if isinstance(value, (int, np.integer, float)) else value
    try:
        vals = [check_days(name, v) for v in items]
    except TypeError:
        raise InvalidParameterError(
            f"{name} must be a sequence of positive whole numbers of days, e.g. (30, 60, 90, 180); "
            f"got {value!r}."
        ) from None
    if not vals:
        raise InvalidParameterError(f"{name} must contain at least one number of days; got {value!r}.")
    return tuple(sorted(set(vals)))


def to_days(values: Any) -> np.ndarray:
    """Dates (Series/array of datetime64) as float day numbers; ``NaN`` for missing."""
    if isinstance(values, (pd.Series, pd.Index)) and pd.api.types.is_datetime64_any_dtype(values.dtype):
        arr = values.to_numpy(dtype="datetime64[ns]")
    else:
        arr = np.asarray(pd.to_datetime(values), dtype="datetime64[ns]")
    days = arr.astype("datetime64[D]")
    out = (days - _EPOCH).astype("float64")
    out[np.isnat(arr)] = np.nan
    return out


def to_dates(days: np.ndarray) -> pd.Series:
    """Float day numbers back to ``datetime64[ns]`` (``NaT`` for ``NaN``)."""
    days = np.asarray(days, dtype="float64")
    out = np.full(days.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = ~np.isnan(days)
    out[ok] = (_EPOCH + days[ok].astype("int64")).astype("datetime64[ns]")
    return pd.Series(out)


def day_number(ts: pd.Timestamp) -> float:
    return float((np.datetime64(ts.normalize().to_datetime64(), "D") - _EPOCH).astype("int64"))


def resolve_as_of(prog: ProgramData, as_of: Any, func: str) -> tuple[pd.Timestamp, str]:
    """The data cut-off and where it came from.

    ``as_of`` argument > ``prog.as_of`` > the latest activity date in the data
    (enrollment, discharge, event, contact, assessment and match dates).
    """
    if as_of is not None:
        try:
            ts = pd.Timestamp(as_of)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"{func}: as_of must be a date (e.g. '2026-09-30' or a datetime.date); got {as_of!r}."
            ) from None
        if ts is pd.NaT:
            raise InvalidParameterError(f"{func}: as_of must be a date (e.g. '2026-09-30'); got {as_of!r}.")
        ts = ts.normalize()
        note = beyond_cutoff_note(prog, ts)
        if note:
            warnings.warn(f"{func}: {note}", RecoveryStatsWarning, stacklevel=3)
        return ts, "argument"
    if prog.as_of is not None:
        return pd.Timestamp(prog.as_of).normalize(), "program"
    latest = None
    for table, col in _ACTIVITY_DATES:
        df = getattr(prog, table)
        if len(df) and col in df:
            m = df[col].max()
            if m is not pd.NaT and pd.notna(m) and (latest is None or m > latest):
                latest = m
    if latest is None:
        raise InvalidParameterError(
            f"{func}: as_of was not given, the program has no as_of, and the data contain no dates "
            "to take it from; pass as_of='YYYY-MM-DD'."
        )
    return pd.Timestamp(latest).normalize(), "latest date in data"


def beyond_cutoff_note(prog: ProgramData, as_of: pd.Timestamp) -> str | None:
    """A note when ``as_of`` is after the program's data cut-off ``prog.as_of``.

    The data stop at ``prog.as_of``: windows that end after it would be counted as
    observed although nothing after the cut-off is in the data (no events, discharges or
    interviews), which biases fixed-window rates (relapse and rearrest towards 0,
    retention towards 1). The measures still use the requested ``as_of`` and say so.
    """
    if prog.as_of is None:
        return None
    cutoff = pd.Timestamp(prog.as_of).normalize()
    if as_of <= cutoff:
        return None
    return (f"as_of={as_of.date()} is after the data cut-off {cutoff.date()} (prog.as_of): days after "
            f"{cutoff.date()} are treated as observed although the data stop there, so windows ending "
            f"after it are counted as complete. Pass as_of <= {cutoff.date()} (or load the data with a "
            "later as_of).")


def first_mentor(prog: ProgramData, as_of: pd.Timestamp | None) -> pd.Series:
    """The mentor of each participant's first match on or before ``as_of`` (missing when never matched).

    Ties on the first match date go to the smallest ``mentor_id`` so the choice is
    reproducible. This is the cluster for mentor-clustered analyses
    (``cluster="mentor_id"``); unmatched participants have no mentor.
    """
    p = prog.participants
    m = prog.matches
    ids = p["participant_id"]
    if len(m) == 0:
        return pd.Series(pd.array([pd.NA] * len(p), dtype="string"))
    if as_of is not None:
        m = m[m["match_date"] <= as_of]
    # Each matched participant's first match: sort on integer codes (participant, match
    # time with NaT last, mentor_id rank with missing last; np.lexsort is stable, so data
    # order breaks the remaining ties), not on the id strings themselves.
    who, matched_ids = pd.factorize(m["participant_id"], use_na_sentinel=False)
    when = m["match_date"].to_numpy(dtype="datetime64[ns]")
    when_key = np.where(np.isnat(when), np.iinfo(np.int64).max, when.view(np.int64))
    mentor_rank, mentors = pd.factorize(m["mentor_id"], sort=True)
    mentor_rank = np.where(mentor_rank < 0, len(mentors), mentor_rank)
    order = np.lexsort((mentor_rank, when_key, who))
    starts = np.r_[True, who[order][1:] != who[order][:-1]] if len(order) else np.array([], dtype=bool)
    first_row = order[starts]  # first_row[j]: the row of matched_ids[j]'s first match
    at = lookup(pd.Series(matched_ids), ids)
    rows = np.where(at >= 0, first_row[np.maximum(at, 0)], -1) if len(first_row) else np.full(len(ids), -1)
    return pd.Series(m["mentor_id"].array.take(rows, allow_fill=True), dtype="string")


def base_frame(prog: ProgramData, as_of: pd.Timestamp | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``participant_id, group, site, mentor_id``, the covariates and ``enrollment_date``, one row per participant.

    ``mentor_id`` is the first mentor matched on or before ``as_of`` (missing when
    never matched; see :func:`first_mentor`). Covariates are every participant column
    not in :data:`NON_COVARIATES` and not a date; ``age`` is filled from ``birth_date``
    (completed years at enrollment) where it is missing.
    """
    p = prog.participants
    out = pd.DataFrame(
        {
            "participant_id": as_column(p["participant_id"]),
            "group": as_column(p["group"]),
            "site": as_column(p["site"]) if "site" in p else pd.array([pd.NA] * len(p), dtype="string"),
            "mentor_id": as_column(first_mentor(prog, as_of)),
        }
    )
    covariates: list[str] = []
    for col in p.columns:
        if col in NON_COVARIATES or pd.api.types.is_datetime64_any_dtype(p[col]):
            continue
        covariates.append(col)
        out[col] = as_column(p[col]) if col != "age" else _age(p)
    if "age" not in covariates and "birth_date" in p:
        covariates.append("age")
        out["age"] = _age(p)
    out["enrollment_date"] = p["enrollment_date"].to_numpy()
    return out, covariates


def _age(p: pd.DataFrame) -> np.ndarray:
    """``age`` where given, else completed years between birth_date and enrollment_date."""
    given = pd.to_numeric(p["age"], errors="coerce").to_numpy(dtype="float64") if "age" in p else np.full(len(p), np.nan)
    if "birth_date" not in p or not p["birth_date"].notna().any():
        return given
    b = pd.to_datetime(p["birth_date"])
    e = pd.to_datetime(p["enrollment_date"])
    years = (e.dt.year - b.dt.year).astype("float64")
    before_birthday = (e.dt.month < b.dt.month) | ((e.dt.month == b.dt.month) & (e.dt.day < b.dt.day))
    years = years - before_birthday.astype("float64")
    derived = years.to_numpy(dtype="float64")
    return np.where(np.isnan(given), derived, given)


def positions(prog: ProgramData, ids: pd.Series) -> np.ndarray:
    """Row position in ``prog.participants`` of each id (``-1`` for an unknown id)."""
    return lookup(prog.participants["participant_id"], ids)


def lookup(keys: pd.Series, values: Any) -> np.ndarray:
    """Position in ``keys`` of each of ``values``, compared as strings (``-1`` when absent).

    ``Index(keys).get_indexer(values)``: a missing value matches a missing key, and
    duplicated keys raise ``InvalidIndexError``. When both sides are Arrow-backed
    strings (pandas 3's default) the lookup is pyarrow's ``index_in``, which hashes the
    Arrow buffers directly; ``get_indexer`` would first turn every id into a Python
    string object (3-6 times slower on 1M ids).
    """
    k = pd.Series(keys).astype("string").array
    v = pd.Series(values, dtype="string").array
    if isinstance(k, pd.arrays.ArrowStringArray) and isinstance(v, pd.arrays.ArrowStringArray):
        import pyarrow as pa
        import pyarrow.compute as pc

        key_set, probe = pa.array(k), pa.array(v)
        if len(pc.unique(key_set)) == len(key_set):  # else get_indexer raises
            found = pc.index_in(probe, value_set=key_set.cast(probe.type))
            return pc.fill_null(found, -1).to_numpy().astype(np.intp)
    return pd.Index(k).get_indexer(v)


@dataclass(frozen=True, slots=True)
class Events:
    """Usable events as parallel arrays: participant row position, day number, and the
    event's row position in ``prog.events`` (to look up its type or result)."""

    pos: np.ndarray
    day: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def subset(self, keep: np.ndarray) -> Events:
        return Events(self.pos[keep], self.day[keep], self.row[keep])


def usable_events(prog: ProgramData, types: Sequence[str], as_of_day: float, *,
                  honor_history_flag: bool = True) -> Events:
    """Events of the given types up to ``as_of``, as :class:`Events` (in data order).

    Drops events of unknown participants, without a date, after ``as_of``, and (with
    ``honor_history_flag``) those flagged as history (a true ``before_enrollment``
    column, when present). Measures indexed on a date other than enrollment (recidivism
    from release) pass ``honor_history_flag=False`` and filter on their own index date.
    Text columns are not copied: callers read them at ``row`` (see :func:`column_is`,
    :func:`text_take`).
    """
    ev = prog.events
    if not len(ev):
        return Events(np.array([], dtype=np.intp), np.array([], dtype="float64"), np.array([], dtype=np.intp))
    keep = is_in(ev["event_type"], types)
    if honor_history_flag and "before_enrollment" in ev:
        hist = ev["before_enrollment"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        keep = keep & ~hist
    rows = np.flatnonzero(keep)
    day = to_days(ev["event_date"].take(rows))
    pos = positions(prog, ev["participant_id"].take(rows))
    ok = (pos >= 0) & ~np.isnan(day) & (day <= as_of_day)
    return Events(pos[ok], day[ok], rows[ok])


def is_in(values: pd.Series, options: Sequence[str]) -> np.ndarray:
    """``values.isin(options)`` as a bool array (``False`` where missing).

    For a single option on Arrow-backed strings, ``==`` (one vectorised pass: 4.6 ms per
    2M rows) beats ``isin``'s hash probe (14 ms); with two or more options, or on NumPy
    object strings (pandas 2, where ``==`` is twice as slow as ``isin``), ``isin`` stays.
    """
    if len(options) == 1 and isinstance(values.array, pd.arrays.ArrowStringArray):
        return (values == options[0]).to_numpy(dtype=bool, na_value=False)
    return values.isin(list(options)).to_numpy(dtype=bool, na_value=False)


def column_is(table: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """``table[column] == value`` as a bool array (``False`` where missing or no such column)."""
    if column not in table:
        return np.zeros(len(table), dtype=bool)
    return is_in(table[column], (value,))


def earliest(pos: np.ndarray, day: np.ndarray, n: int) -> np.ndarray:
    """Index of each participant's earliest entry (``-1`` when none), ties to the first in order.

    ``pos`` are participant positions (``0 <= pos < n``) and ``day`` whole day numbers
    without ``NaN``. Each (day, index) pair is packed into one int64 (day offset in the
    high 32 bits, index in the low 32), so a single ``np.minimum.at`` finds the
    per-participant minimum without sorting.
    """
    best = np.full(n, np.iinfo(np.int64).max)
    if len(pos):
        key = ((day - day.min()).astype(np.int64) << 32) | np.arange(len(pos), dtype=np.int64)
        np.minimum.at(best, pos, key)
    hit = best != np.iinfo(np.int64).max
    out = np.full(n, -1, dtype=np.intp)
    out[hit] = best[hit] & 0xFFFFFFFF
    return out


def first_event(ev: Events, n: int, start: np.ndarray, end: np.ndarray,
                types: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First event strictly after ``start`` and on or before ``end`` for each participant.

    Returns ``(day, row)`` arrays of length ``n``: the day number of the first
    qualifying event (``NaN`` when none) and its row in ``prog.events`` (``-1``).
    Events on the same first day are ordered by ``types`` (the events table's
    ``event_type`` column, when given): the type first in alphabetical order wins, so
    the chosen type depends on the data's values, not on their row order (which an
    engine such as DuckDB or Spark does not keep; ``recoverystats.engines.measures``
    applies the same rule). Remaining ties (same day, same type) take the first row.
    """
    first_day = np.full(n, np.nan)
    first_row = np.full(n, -1, dtype=np.intp)
    if not len(ev):
        return first_day, first_row
    ok = (ev.day > start[ev.pos]) & (ev.day <= end[ev.pos])
    sub = ev.subset(ok)
    key = sub.day
    if types is not None and len(sub):
        rank, levels = pd.factorize(types.take(sub.row), sort=True, use_na_sentinel=True)
        rank = np.where(rank < 0, len(levels), rank)  # missing type last
        key = (sub.day - sub.day.min()) * (len(levels) + 1) + rank
    i = earliest(sub.pos, key, n)
    hit = i >= 0
    first_day[hit] = sub.day[i[hit]]
    first_row[hit] = sub.row[i[hit]]
    return first_day, first_row


def _inferred_str_dtype() -> Any:
    """The dtype pandas infers for a column made from an object array of strings when
    that is not ``object``: ``str`` under pandas 3 (``future.infer_string``), else ``None``."""
    dtype = pd.Series(np.array(["a"], dtype=object)).dtype
    return None if pd.api.types.is_object_dtype(dtype) else dtype


def _missing_column(values: np.ndarray) -> pd.Series:
    """An all-missing object array as an object Series (default index).

    pandas keeps such a column ``object`` either way, but handed a bare object array it
    first scans every value for a dtype to infer (7-10 ms per 100k rows).
    """
    return pd.Series(values, dtype=object, copy=False)


# The helpers below give a measure's text columns exactly as the plain code would
# (an object array assigned to the frame: ``object`` under pandas 2, inferred ``str``
# under pandas 3 unless every value is missing) without building Python strings for
# pandas 3 to convert back to Arrow. Series they return carry the default index: assign
# them to frames with one (base_frame's).


def as_column(values: pd.Series) -> Any:
    """``values.to_numpy()`` as a DataFrame column holds it once assigned."""
    target = _inferred_str_dtype()
    has_value = bool(values.notna().any())
    if target is not None and has_value and isinstance(values.dtype, pd.StringDtype):
        return values.array.astype(target)
    out = values.to_numpy()
    if not has_value and out.dtype == object and isinstance(values.dtype, (pd.StringDtype, pd.BooleanDtype)):
        return _missing_column(out)
    return out


def text_take(values: pd.Series, rows: np.ndarray) -> Any:
    """``values.to_numpy()[rows]`` with ``None`` where ``rows == -1``, as a DataFrame column holds it."""
    arr = values.array
    target = _inferred_str_dtype()
    if target is not None and isinstance(arr.dtype, pd.StringDtype):
        taken = arr.take(rows, allow_fill=True)
        if not taken.isna().all():
            return taken.astype(target)
    hit = rows >= 0
    out = np.full(len(rows), None, dtype=object)
    out[hit] = arr.take(rows[hit]).to_numpy()
    return out if hit.any() else _missing_column(out)


class LabelColumn:
    """A text column of a few labels, filled by masked assignment and kept as integer codes.

    ``col[mask] = "label"`` (or ``None``) as on an object array initialised to ``fill``;
    :meth:`values` gives the column.
    """

    def __init__(self, n: int, fill: str | None = None) -> None:
        self.labels: list[str] = []
        self.codes = np.full(n, -1, dtype=np.int16)
        if fill is not None:
            self[np.ones(n, dtype=bool)] = fill

    def __setitem__(self, mask: np.ndarray, label: str | None) -> None:
        if label is None:
            self.codes[mask] = -1
            return
        if label not in self.labels:
            self.labels.append(label)
        self.codes[mask] = self.labels.index(label)

    def values(self, *, unicode: bool = False) -> Any:
        """The column as an object array of the labels (``None`` unset) would be held;
        ``unicode=True``: as a NumPy unicode array would (``str`` under pandas 3 even when empty)."""
        target = _inferred_str_dtype()
        has_label = bool((self.codes >= 0).any())
        if target is not None and (has_label or unicode):
            return pd.array(self.labels, dtype=target).take(self.codes, allow_fill=True)
        out = np.array([*self.labels, None], dtype=object)[self.codes]
        return out if has_label else _missing_column(out)


def death_day(prog: ProgramData, as_of_day: float) -> np.ndarray:
    """Day of death per participant: the first ``death`` event, else the discharge date
    when ``discharge_reason == "died"``; ``NaN`` when alive (or dead after ``as_of``)."""
    p = prog.participants
    n = len(p)
    ev = usable_events(prog, ("death",), as_of_day)
    d = np.full(n, np.nan)
    if len(ev):
        np.fmin.at(d, ev.pos, ev.day)
    if "discharge_reason" in p:
        died = (p["discharge_reason"] == "died").fillna(False).to_numpy(dtype=bool)
        dis = to_days(p["discharge_date"])
        fill = died & np.isnan(d) & ~np.isnan(dis) & (dis <= as_of_day)
        d[fill] = dis[fill]
    return d


def nan_min(*arrays: np.ndarray) -> np.ndarray:
    """Element-wise minimum ignoring NaN (NaN only where every input is NaN)."""
    stacked = np.vstack([np.asarray(a, dtype="float64") for a in arrays])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(stacked, axis=0)


def window_outcome(eligible: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Fixed-window 0/1 outcome as float: ``1.0``/``0.0`` when eligible, ``NaN`` otherwise."""
    out = np.where(hit, 1.0, 0.0)
    out[~eligible] = np.nan
    return out


def warn_as_of_before_enrollment(enroll_day: np.ndarray, as_of_day: float, as_of: pd.Timestamp, func: str) -> None:
    if len(enroll_day) and np.all(np.isnan(enroll_day) | (enroll_day > as_of_day)):
        warnings.warn(
            f"{func}: as_of={as_of.date()} is before every enrollment date; every participant is "
            f"ineligible ({REASON_ENROLLED_AFTER!r}). Pass a later as_of (e.g. the quarter's last day).",
            RecoveryStatsWarning,
            stacklevel=3,
        )


def attach(df: pd.DataFrame, name: str, *, as_of: pd.Timestamp, as_of_source: str,
           parameters: dict[str, Any], covariates: list[str], notes: list[str]) -> pd.DataFrame:
    """Record the measure's definition, parameters and cut-off in ``df.attrs["measure"]``."""
    d = DEFINITIONS[name]
    n = len(df)
    n_eligible = int(df["eligible"].sum()) if n else 0
    reasons = df.loc[~df["eligible"], "exclusion_reason"].value_counts(dropna=False)
    df.attrs["measure"] = {
        "name": d.name,
        "title": d.title,
        "definition": d.definition,
        "parameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in parameters.items()},
        "as_of": as_of.date().isoformat(),
        "as_of_source": as_of_source,
        "outcome": list(d.outcome),
        # covariates with at least one value (canonical columns absent from the source are all-missing)
        "covariates": [c for c in covariates if c in df and df[c].notna().any()],
        "n": n,
        "n_eligible": n_eligible,
        "exclusions": {str(k): int(v) for k, v in reasons.items()},
        "notes": list(notes),
    }
    return df


def attach_summary_attrs(df: pd.DataFrame, name: str, *, as_of: pd.Timestamp, as_of_source: str,
                         parameters: dict[str, Any], notes: list[str], **extra: Any) -> pd.DataFrame:
    """``df.attrs["measure"]`` for a measure that returns a summary table (not one row per participant)."""
    d = DEFINITIONS[name]
    df.attrs["measure"] = {
        "name": d.name,
        "title": d.title,
        "definition": d.definition,
        "parameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in parameters.items()},
        "as_of": as_of.date().isoformat(),
        "as_of_source": as_of_source,
        "outcome": list(d.outcome),
        **extra,
        "notes": list(notes),
    }
    return df
