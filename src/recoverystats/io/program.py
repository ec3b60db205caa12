"""``ProgramData``: the validated, typed tables of one program."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recoverystats.schema.spec import TABLE_NAMES, TABLES

VALIDATION_COLUMNS: tuple[str, ...] = (
    "rule", "severity", "table", "file", "line", "column", "value", "message",
)
FLOW_COLUMNS: tuple[str, ...] = ("table", "rows_read", "rows_kept", "rows_dropped")
SOURCE_COLUMNS: tuple[str, ...] = ("table", "path", "sha256", "bytes")


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row DataFrame with the canonical columns and dtypes of table ``name``."""
    spec = TABLES[name]
    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in spec.columns})


def empty_validation() -> pd.DataFrame:
    """A zero-row validation-findings frame."""
    return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "line" else "string") for c in VALIDATION_COLUMNS})


@dataclass(frozen=True, slots=True, repr=False)
class ProgramData:
    """The validated tables of one program, plus what loading found and read.

    Attributes
    ----------
    participants, mentors, matches, contacts, events, assessments
        The canonical tables as typed DataFrames (IDs as strings, dates as
        ``datetime64``); an empty typed frame when a table is absent. Extra columns
        from the source are kept after the canonical ones.
    validation
        Every finding: ``rule, severity, table, file, line, column, value, message``.
        ``severity`` is ``"error"``, ``"warning"`` or ``"info"``; every dropped row has
        an error finding here.
    flow
        One row per table: ``table, rows_read, rows_kept, rows_dropped``;
        ``rows_read == rows_kept + rows_dropped`` always.
    sources
        Each input file: ``table, path, sha256, bytes``.
    as_of
        The data cut-off used for date checks (``None`` when not given).
    """

    participants: pd.DataFrame
    mentors: pd.DataFrame
    matches: pd.DataFrame
    contacts: pd.DataFrame
    events: pd.DataFrame
    assessments: pd.DataFrame
    validation: pd.DataFrame = field(default_factory=empty_validation)
    flow: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FLOW_COLUMNS)))
    sources: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SOURCE_COLUMNS)))
    as_of: pd.Timestamp | None = None
    #: Name of the source (folder or mapping file), for messages and provenance.
    source: str = ""
    #: ``program.toml``'s ``[labels]``: field -> {code: display label} (applied at render time)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: ``program.toml``'s ``[program]`` identity (name, funder, grant_number,
    #: reporting_period, prepared_by) and ``[design]`` (comparison, description) tables, as
    #: given; the report shows them (a report-config value overrides)
    info: dict[str, dict[str, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------
    @classmethod
    def from_tables(
        cls,
        tables: Mapping[str, pd.DataFrame] | None = None,
        *,
        as_of: Any = None,
        on_error: str = "raise",
        **named: pd.DataFrame,
    ) -> ProgramData:
        """Validate in-memory tables (already in canonical column names) into ``ProgramData``.

        ``tables`` maps canonical table names to DataFrames; tables may also be passed
        as keyword arguments. Values are coerced to the canonical types and checked by
        the same rules as :func:`recoverystats.read_program`.
        """
        from recoverystats.io.build import build_program

        all_tables = dict(tables or {})
        all_tables.update(named)
        return build_program(all_tables, as_of=as_of, on_error=on_error, source="<in-memory>")

    def table(self, name: str) -> pd.DataFrame:
        """One canonical table by name."""
        if name not in TABLE_NAMES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLE_NAMES)}")
        return getattr(self, name)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """All six tables by name (the frames themselves, not copies)."""
        return {n: getattr(self, n) for n in TABLE_NAMES}

    @property
    def errors(self) -> pd.DataFrame:
        return self.validation[self.validation["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        return self.validation[self.validation["severity"] == "warning"]

    # ------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts a program reports first: rows per table, participants by group and site, date ranges."""
        p = self.participants
        out: dict[str, Any] = {
            "source": self.source,
            "as_of": None if self.as_of is None else self.as_of.date().isoformat(),
            "tables": {n: int(len(getattr(self, n))) for n in TABLE_NAMES},
            "participants": int(len(p)),
        }
        if len(p):
            out["by_group"] = {str(k): int(v) for k, v in p["group"].value_counts(dropna=False).sort_index().items()}
            if "site" in p and p["site"].notna().any():
                out["by_site"] = {str(k): int(v) for k, v in p["site"].value_counts(dropna=False).sort_index().items()}
        ranges = {}
        for name, col in (("participants", "enrollment_date"), ("events", "event_date"),
                          ("contacts", "contact_date"), ("assessments", "assessment_date"),
                          ("matches", "match_date")):
            df = getattr(self, name)
            if len(df) and col in df and df[col].notna().any():
                ranges[f"{name}.{col}"] = (df[col].min().date().isoformat(), df[col].max().date().isoformat())
        out["date_ranges"] = ranges
        sev = self.validation["severity"].value_counts() if len(self.validation) else pd.Series(dtype=int)
        out["findings"] = {s: int(sev.get(s, 0)) for s in ("error", "warning", "info")}
        return out

    def __repr__(self) -> str:
        s = self.summary()
        tables = ", ".join(f"{k}={v}" for k, v in s["tables"].items())
        f = s["findings"]
        return (f"ProgramData(source={self.source!r}, {tables}; findings: {f['error']} errors, "
                f"{f['warning']} warnings, {f['info']} info)")

    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        s = self.summary()
        parts = [f"<div class='rs-program'><h4>ProgramData — {html.escape(self.source or 'in-memory')}</h4>"]
        if s["as_of"]:
            parts.append(f"<p>Data cut-off (as_of): {s['as_of']}</p>")
        parts.append(render_html_table(self.flow, title="Rows read, kept and dropped"))
        if "by_group" in s:
            g = pd.DataFrame({"group": list(s["by_group"]), "n": list(s["by_group"].values())})
            parts.append(render_html_table(g, title="Participants by group"))
        if "by_site" in s:
            g = pd.DataFrame({"site": list(s["by_site"]), "n": list(s["by_site"].values())})
            parts.append(render_html_table(g, title="Participants by site"))
        if s["date_ranges"]:
            d = pd.DataFrame([(k, a, b) for k, (a, b) in s["date_ranges"].items()], columns=["column", "first", "last"])
            parts.append(render_html_table(d, title="Date ranges"))
        f = s["findings"]
        parts.append(f"<p>Validation: {f['error']} errors, {f['warning']} warnings, {f['info']} info.</p>")
        if len(self.validation):
            parts.append(render_html_table(self.validation, title="Validation findings", max_rows=25))
        parts.append("</div>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: :meth:`summary` plus the flow, validation findings and sources as records."""
        from recoverystats.results.base import json_safe

        out: dict[str, Any] = {"result": type(self).__name__}
        out.update(json_safe(self.summary()))
        out["flow"] = json_safe(self.flow)
        out["validation"] = json_safe(self.validation)
        out["sources"] = json_safe(self.sources)
        return out

    def to_markdown(self, digits: int = 3) -> str:
        """The flow table and the findings count as Markdown (the same renderer as results)."""
        from recoverystats.results.render import render_markdown_table

        f = self.summary()["findings"]
        return (render_markdown_table(self.flow, digits=digits)
                + f"\n\nValidation: {f['error']} errors, {f['warning']} warnings, {f['info']} info.")
