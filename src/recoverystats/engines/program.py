"""``EngineProgramData``: a validated program whose tables live in DuckDB or Spark."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recoverystats.io.program import FLOW_COLUMNS, SOURCE_COLUMNS, ProgramData, empty_validation
from recoverystats.schema.spec import TABLE_NAMES, TABLES

#: Columns of :attr:`EngineProgramData.finding_counts`.
COUNT_COLUMNS: tuple[str, ...] = ("table", "rule", "column", "severity", "findings")


@dataclass(frozen=True, repr=False, eq=False)
class EngineProgramData:
    """The validated tables of one program, held by an engine (DuckDB or Spark).

    The counterpart of :class:`~recoverystats.io.program.ProgramData` for data beyond
    memory: the tables are lazy Ibis tables (``.tables``, ``.table(name)``) that the
    engine evaluates when asked; ``.to_pandas(name)`` collects one table with the
    pandas engine's dtypes and row order, and ``.to_program()`` all of them. The
    findings, flow and sources are small pandas frames, equal to the pandas engine's.

    Attributes
    ----------
    engine
        ``"duckdb"`` or ``"spark"``.
    backend
        The Ibis backend (``ibis.duckdb`` / ``ibis.pyspark`` connection).
    validation, flow, sources, as_of, source, labels, info
        As on :class:`~recoverystats.io.program.ProgramData`.
    finding_counts
        Findings per ``table, rule, column, severity``: the number of rows each rule
        flagged, also when the findings fetched were capped (``max_findings``).
    """

    engine: str
    backend: Any
    _tables: dict[str, Any]
    validation: pd.DataFrame = field(default_factory=empty_validation)
    flow: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FLOW_COLUMNS)))
    sources: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SOURCE_COLUMNS)))
    as_of: pd.Timestamp | None = None
    source: str = ""
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    info: dict[str, dict[str, str]] = field(default_factory=dict)
    finding_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    session: Any = None

    # ------------------------------------------------------------------
    def table(self, name: str) -> Any:
        """One canonical table as a lazy Ibis table (canonical columns, then extras)."""
        if name not in TABLE_NAMES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLE_NAMES)}")
        t = self._tables.get(name)
        if t is None:
            return self._empty(name)
        return t.drop("_rid")

    def _empty(self, name: str) -> Any:
        import ibis

        from recoverystats.engines.validate import IBIS_TYPES

        schema = {c.name: IBIS_TYPES[c.kind] for c in TABLES[name].columns}
        return ibis.memtable(pd.DataFrame({c: [] for c in schema}), schema=schema)

    @property
    def tables(self) -> dict[str, Any]:
        """All six tables by name, as lazy Ibis tables (the names and columns of ``ProgramData``)."""
        return {n: self.table(n) for n in TABLE_NAMES}

    def to_pandas(self, name: str) -> pd.DataFrame:
        """Collect one table as a DataFrame with the pandas engine's dtypes and row order.

        Collects the whole table to this process: use it for tables that fit in memory
        (and the engine's queries, or the measures, for the rest).
        """
        if name not in TABLE_NAMES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLE_NAMES)}")
        t = self._tables.get(name)
        if t is None:
            from recoverystats.io.program import empty_table

            return empty_table(name)
        arrow = t.order_by("_rid").to_pyarrow()
        return _typed_frame(name, arrow)

    def to_program(self) -> ProgramData:
        """Every table collected into an in-memory :class:`ProgramData` (when it fits)."""
        frames = {n: self.to_pandas(n) for n in TABLE_NAMES}
        return ProgramData(
            **frames,
            validation=self.validation,
            flow=self.flow,
            sources=self.sources,
            as_of=self.as_of,
            source=self.source,
            labels=self.labels,
            info=self.info,
        )

    @property
    def errors(self) -> pd.DataFrame:
        return self.validation[self.validation["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        return self.validation[self.validation["severity"] == "warning"]

    # ------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The counts of :meth:`ProgramData.summary`, computed by the engine."""
        out: dict[str, Any] = {
            "source": self.source,
            "as_of": None if self.as_of is None else self.as_of.date().isoformat(),
            "tables": {},
        }
        for n in TABLE_NAMES:
            row = self.flow[self.flow["table"] == n]
            out["tables"][n] = int(row["rows_kept"].iloc[0]) if len(row) else 0
        out["participants"] = out["tables"]["participants"]
        if out["participants"]:
            p = self.table("participants")
            out["by_group"] = _value_counts(p, "group")
            site = _value_counts(p, "site")
            if any(k != "<NA>" for k in site):
                out["by_site"] = site
        ranges = {}
        for name, col in (("participants", "enrollment_date"), ("events", "event_date"),
                          ("contacts", "contact_date"), ("assessments", "assessment_date"),
                          ("matches", "match_date")):
            if not out["tables"][name]:
                continue
            t = self.table(name)
            mm = t.aggregate(lo=t[col].min(), hi=t[col].max()).to_pyarrow().to_pylist()[0]
            if mm["lo"] is not None:
                ranges[f"{name}.{col}"] = (mm["lo"].isoformat(), mm["hi"].isoformat())
        out["date_ranges"] = ranges
        sev = self.validation["severity"].value_counts() if len(self.validation) else pd.Series(dtype=int)
        out["findings"] = {s: int(sev.get(s, 0)) for s in ("error", "warning", "info")}
        return out

    def __repr__(self) -> str:
        s = self.summary()
        tables = ", ".join(f"{k}={v}" for k, v in s["tables"].items())
        f = s["findings"]
        return (f"EngineProgramData(engine={self.engine!r}, source={self.source!r}, {tables}; "
                f"findings: {f['error']} errors, {f['warning']} warnings, {f['info']} info)")

    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        s = self.summary()
        parts = [f"<div class='rs-program'><h4>ProgramData on {html.escape(self.engine)} — "
                 f"{html.escape(self.source)}</h4>"]
        parts.append(render_html_table(self.flow, title="Rows read, kept and dropped"))
        f = s["findings"]
        parts.append(f"<p>Validation: {f['error']} errors, {f['warning']} warnings, {f['info']} info.</p>")
        if len(self.validation):
            parts.append(render_html_table(self.validation, title="Validation findings", max_rows=25))
        parts.append("</div>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: :meth:`summary` plus the flow, validation findings and sources as records."""
        from recoverystats.results.base import json_safe

        out: dict[str, Any] = {"result": type(self).__name__, "engine": self.engine}
        out.update(json_safe(self.summary()))
        out["flow"] = json_safe(self.flow)
        out["validation"] = json_safe(self.validation)
        out["sources"] = json_safe(self.sources)
        return out


def _value_counts(t: Any, col: str) -> dict[str, int]:
    """``value_counts(dropna=False).sort_index()`` of a column, keys as ``ProgramData.summary`` shows them."""
    df = t.group_by(col).aggregate(n=t.count()).to_pandas()
    df["_null"] = df[col].isna()
    df = df.sort_values(["_null", col], na_position="last")
    return {("<NA>" if pd.isna(k) else str(k)): int(v) for k, v in zip(df[col], df["n"], strict=True)}


def _typed_frame(name: str, arrow: Any) -> pd.DataFrame:
    """An Arrow table from the engine as the pandas engine's frame (dtypes of the data model)."""
    import pyarrow as pa

    from recoverystats.io import build

    spec = TABLES[name]
    kinds = {c.name: c.kind for c in spec.columns}
    out: dict[str, pd.Series] = {}
    for cname in arrow.column_names:
        if cname == "_rid":
            continue
        arr = arrow.column(cname)
        kind = kinds.get(cname)
        if kind is None:  # extras: integers as Int64, text as string, others as they are
            t = arr.type
            if pa.types.is_integer(t):
                kind = "int"
            elif pa.types.is_floating(t):
                kind = "float"
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                kind = "string"
            elif pa.types.is_boolean(t):
                kind = "bool"
            elif pa.types.is_date(t) or pa.types.is_timestamp(t):
                kind = "date"
            else:
                out[cname] = pd.Series(arr.to_pandas())
                continue
        if kind == "date" and not pa.types.is_date32(arr.type):
            arr = arr.cast(pa.date32())
        out[cname] = build._to_series(arr, kind)
    frame = pd.DataFrame(out, copy=False)
    frame.index = pd.RangeIndex(len(frame))
    return frame


__all__ = ["EngineProgramData", "COUNT_COLUMNS"]
