"""Input checks shared by the survival functions (internal).

Every public survival function takes a DataFrame and column names. This module turns
them into clean numpy arrays: complete cases on the columns used (the rest counted in
``n_excluded`` and named in a note), times non-negative, events coded 0/1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats.errors import DataValidationError, InvalidParameterError

__all__ = ["Prepared", "prepare", "as_time", "as_event", "group_labels"]

_MAX_LISTED = 10


@dataclass(frozen=True, slots=True)
class Prepared:
    """Complete-case data for one analysis (internal)."""

    frame: pd.DataFrame
    time: np.ndarray
    event: np.ndarray
    n_excluded: int
    notes: tuple[str, ...]
    #: column -> (sorted factor codes, levels) for text/categorical columns, computed once
    factors: dict = field(default_factory=dict)


def _row_labels(index: pd.Index, mask: np.ndarray) -> str:
    labels = list(index[mask][:_MAX_LISTED])
    more = int(mask.sum()) - len(labels)
    text = ", ".join(map(str, labels))
    return text + (f" and {more} more" if more > 0 else "")


def as_time(values: pd.Series, name: str) -> np.ndarray:
    """Convert a time column to float days; timedeltas become days."""
    if pd.api.types.is_timedelta64_dtype(values):
        return values.dt.total_seconds().to_numpy(dtype=float) / 86400.0
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raise DataValidationError(
            f"time: column {name!r} must be numeric (days, weeks, ...) or a timedelta; "
            f"got dtype {values.dtype}. Convert it, e.g. df[{name!r}] = pd.to_numeric(df[{name!r}]).",
        )
    return values.to_numpy(dtype=float)


def as_event(values: pd.Series, name: str) -> np.ndarray:
    """Convert an event column to 0/1 floats; anything else is a ``DataValidationError``."""
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(values):
        bad = pd.unique(values)[:5]
        raise DataValidationError(
            f"event: column {name!r} must be coded 0 (censored) / 1 (event) or boolean; "
            f"got dtype {values.dtype} with values such as {list(bad)!r}. "
            f"Recode it, e.g. df[{name!r}] = (df[{name!r}] == 'yes').astype(int).",
        )
    arr = values.to_numpy(dtype=float)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        shown = sorted(set(arr[bad].tolist()))[:5]
        raise DataValidationError(
            f"event: column {name!r} must be 0 (censored) or 1 (event); {int(bad.sum())} row(s) "
            f"have other values {shown} (rows {_row_labels(values.index, bad)}). "
            "For competing events use cumulative_incidence(); otherwise recode to 0/1.",
        )
    return arr


def prepare(
    df: pd.DataFrame,
    *,
    time: str,
    event: str | None,
    others: Sequence[str] = (),
    event_is_code: bool = False,
) -> Prepared:
    """Select the columns used, drop incomplete rows (noted), validate time and event."""
    check_dataframe(df)
    if not isinstance(time, str):
        raise InvalidParameterError(f"time must be a column name (str); got {time!r}.")
    if event is not None and not isinstance(event, str):
        raise InvalidParameterError(f"event must be a column name (str); got {event!r}.")
    cols = [time] + ([event] if event is not None else []) + [c for c in others if c is not None]
    seen: list[str] = []
    for c in cols:
        if c not in seen:
            seen.append(c)
    check_columns(df, [time], "time")
    if event is not None:
        check_columns(df, [event], "event")
    check_columns(df, [c for c in seen if c not in (time, event)], "columns")
    factor_cache: dict[str, tuple[np.ndarray, list]] = {}
    incomplete = np.zeros(len(df), dtype=bool)
    per_col: dict[str, int] = {}
    for c in seen:
        col = df[c]
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            continue  # numpy ints / bools cannot be missing
        if isinstance(dtype, np.dtype) and dtype.kind in "fc":
            miss = np.isnan(col.to_numpy())
        elif c not in (time, event) and (isinstance(dtype, np.dtype) and dtype.kind == "O" or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype))):
            # grouping columns: factorize once here (missing -> -1) and reuse the codes later
            codes, uniques = pd.factorize(col, sort=True)
            factor_cache[c] = (codes.astype(np.intp), list(uniques))
            miss = codes < 0
        else:
            miss = col.isna().to_numpy()
        k = int(miss.sum())
        if k:
            incomplete |= miss
            per_col[c] = k
    notes: list[str] = []
    if incomplete.any():
        detail = ", ".join(f"{c}: {k}" for c, k in per_col.items())
        notes.append(
            f"{int(incomplete.sum())} row(s) with missing values excluded (complete cases; {detail})."
        )
        sub = df.loc[~incomplete, seen]
        factor_cache = {c: (codes[~incomplete], u) for c, (codes, u) in factor_cache.items()}
    else:
        sub = df
    if len(sub) == 0:
        raise DataValidationError(
            f"no complete rows to analyse: all {len(df)} row(s) have a missing value in "
            f"{', '.join(repr(c) for c in seen)}. Check the column names and the data.",
        )
    t = as_time(sub[time], time)
    if not np.isfinite(t).all():
        bad = ~np.isfinite(t)
        raise DataValidationError(
            f"time: column {time!r} has {int(bad.sum())} infinite value(s) "
            f"(rows {_row_labels(sub.index, bad)}). Use the last follow-up time and event=0 instead.",
        )
    neg = t < 0
    if neg.any():
        raise DataValidationError(
            f"time: column {time!r} has {int(neg.sum())} negative value(s) "
            f"(rows {_row_labels(sub.index, neg)}; smallest {t[neg].min():g}). Times are measured "
            "from the start of follow-up and must be >= 0; check the dates the times came from.",
        )
    if event is None:
        e = np.ones(len(t))
    elif event_is_code:
        e = sub[event].to_numpy()
    else:
        e = as_event(sub[event], event)
    return Prepared(frame=sub, time=t, event=e, n_excluded=int(incomplete.sum()), notes=tuple(notes),
                    factors=factor_cache)


def group_labels(frame: pd.DataFrame, by: Sequence[str], factors: dict | None = None) -> tuple[np.ndarray, list[tuple]]:
    """Integer group codes (sorted by the group values) and the key tuple of each code.

    Levels that no longer occur (e.g. only in excluded rows) are dropped.
    """
    by = as_column_list(by)
    if not by:
        return np.zeros(len(frame), dtype=np.intp), [()]
    if len(by) == 1:
        if factors and by[0] in factors:
            codes, uniques = factors[by[0]]
            present = np.bincount(codes, minlength=len(uniques)) > 0
            if not present.all():
                remap = np.cumsum(present) - 1
                codes = remap[codes]
                uniques = [u for u, keep in zip(uniques, present, strict=False) if keep]
            return codes, [(u,) for u in uniques]
        codes, uniques = pd.factorize(frame[by[0]], sort=True)
        return codes.astype(np.intp), [(u,) for u in uniques]
    idx = pd.MultiIndex.from_frame(frame[list(by)])
    codes, uniques = pd.factorize(idx, sort=True)
    return codes.astype(np.intp), [tuple(u) for u in uniques]
