"""Argument checks shared by every public function (internal)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, get_args

import pandas as pd

from recoverystats.errors import InvalidParameterError


def literal_values(alias: Any) -> tuple[Any, ...]:
    """The allowed values of a ``Literal[...]`` type alias."""
    return tuple(get_args(alias))


def check_option(name: str, value: Any, allowed: Any) -> Any:
    """Validate ``value`` against a ``Literal`` alias or a sequence of allowed values.

    Raises ``InvalidParameterError`` naming the parameter, the allowed values and what
    was received.
    """
    options = literal_values(allowed) if not isinstance(allowed, (list, tuple, set)) else tuple(allowed)
    if value not in options:
        shown = ", ".join(repr(o) for o in options)
        raise InvalidParameterError(f"{name} must be one of {shown}; got {value!r}.")
    return value


def check_conf_level(conf_level: float) -> float:
    """``conf_level`` must be a number strictly between 0 and 1."""
    try:
        level = float(conf_level)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"conf_level must be a number between 0 and 1 (e.g. 0.95); got {conf_level!r}."
        ) from None
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(
            f"conf_level must be strictly between 0 and 1 (e.g. 0.95); got {conf_level!r}."
        )
    return level


def check_dataframe(df: Any, name: str = "df") -> pd.DataFrame:
    """The data argument must be a pandas DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidParameterError(
            f"{name} must be a pandas DataFrame; got {type(df).__name__}."
        )
    return df


def as_column_list(value: str | Iterable[str] | None) -> list[str]:
    """Normalise a column argument (None, one name or several) to a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def check_columns(df: pd.DataFrame, columns: Sequence[str], param: str) -> None:
    """Every name in ``columns`` must be a column of ``df``; the error names the missing ones."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        avail = ", ".join(map(str, list(df.columns)[:30]))
        more = " ..." if df.shape[1] > 30 else ""
        raise InvalidParameterError(
            f"{param}: column(s) {', '.join(repr(m) for m in missing)} not found in the data. "
            f"Available columns: {avail}{more}."
        )
