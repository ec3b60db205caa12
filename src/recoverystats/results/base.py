"""The shared behaviour of every result object (internal mixin)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.results.render import render_html_table, render_markdown_table


def json_safe(value: Any) -> Any:
    """Convert numpy/pandas scalars, NaN and timestamps into JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return table_records(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date)):
        if value is pd.NaT:
            return None
        return value.isoformat()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    return value


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as a list of JSON-safe row dicts."""
    cols = [str(c) for c in table.columns]
    return [
        {c: json_safe(v) for c, v in zip(cols, row, strict=True)}
        for row in table.itertuples(index=False, name=None)
    ]


class ResultMixin:
    """``__repr__``, ``_repr_html_``, ``to_dict`` and ``to_markdown`` for frozen result dataclasses.

    A subclass is a ``@dataclass(frozen=True, slots=True, repr=False)`` with a
    ``_table`` field (the tidy DataFrame) and the fields ``conf_level``, ``method``,
    ``n_used``, ``n_excluded`` and ``notes``. Extra dataclass fields that are JSON-safe
    (numbers, strings, tuples, dicts, DataFrames) are included in ``to_dict()``.
    """

    __slots__ = ()

    #: Short title used by the renderers; subclasses override.
    _title: str = ""

    @property
    def table(self) -> pd.DataFrame:
        """A copy of the tidy result table (unrounded, never stringified)."""
        return self._table.copy()  # type: ignore[attr-defined]

    # -- text -----------------------------------------------------------------
    def _meta_line(self) -> str:
        bits = []
        method = getattr(self, "method", None)
        if method:
            bits.append(f"method={method}")
        level = getattr(self, "conf_level", None)
        if level is not None:
            bits.append(f"conf_level={level:g}")
        n_used = getattr(self, "n_used", None)
        if n_used is not None:
            bits.append(f"n_used={n_used}")
        n_exc = getattr(self, "n_excluded", 0)
        if n_exc:
            bits.append(f"n_excluded={n_exc}")
        return ", ".join(bits)

    def __repr__(self) -> str:
        name = type(self).__name__
        table = self._table  # type: ignore[attr-defined]
        with pd.option_context("display.max_columns", 12, "display.width", 120, "display.precision", 4):
            body = table.head(20).to_string(index=False) if len(table) else "(empty table)"
        text = f"{name}({self._meta_line()})\n{body}"
        if len(table) > 20:
            text += f"\n... {len(table) - 20} more rows"
        for note in getattr(self, "notes", ()):
            text += f"\nNote: {note}"
        return text

    # -- rich display ---------------------------------------------------------
    def _display_table(self) -> pd.DataFrame:
        """The table as displayed; subclasses may reorder or drop helper columns."""
        return self._table  # type: ignore[attr-defined]

    def _repr_html_(self) -> str:
        title = self._title or type(self).__name__
        caption = f"{title} ({self._meta_line()})"
        return render_html_table(self._display_table(), title=caption, notes=tuple(getattr(self, "notes", ())))

    def to_markdown(self, digits: int = 3) -> str:
        """The table as Markdown, followed by notes."""
        text = render_markdown_table(self._display_table(), digits=digits)
        notes = getattr(self, "notes", ())
        if notes:
            text += "\n\n" + "\n".join(f"*Note:* {n}" for n in notes)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: result type, metadata, notes and the table as records."""
        out: dict[str, Any] = {"result": type(self).__name__}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            name = f.name
            if name.startswith("_") and name != "_table":
                continue
            value = getattr(self, name)
            key = "table" if name == "_table" else name
            if callable(value):
                continue
            out[key] = json_safe(value)
        return out
