"""The report's building blocks: tables, figures, text, sections, and the privacy registry.

Every number in the report lives in a :class:`TableBlock`. Tables are registered raw
(with their additive structure and the semantic ids of cells that appear in more than one
table), suppressed together by :class:`TableRegistry` (so a number suppressed in one
table is suppressed everywhere it appears), and only then turned into figures and
rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.privacy.suppress import Margins, suppress

__all__ = ["TableBlock", "FigureBlock", "TextBlock", "Section", "TableRegistry", "PendingTable", "cell_id",
           "row_key_columns", "row_keys"]

#: characters escaped in the parts of a cell id (its separators and the escape itself)
_ID_ESCAPES = {"%": "%25", ":": "%3A", "/": "%2F"}


def _id_part(text: Any) -> str:
    out = str(text)
    for ch, rep in _ID_ESCAPES.items():
        out = out.replace(ch, rep)
    return out


def cell_id(table: str, row_key: str, column: str) -> str:
    """The stable id of one cell: ``"<table>:<row key>:<column>"`` (DESIGN section 14).

    The id does not depend on the row's position: the row key is made of the row's label
    values (:func:`row_keys`), so the same cell has the same id in the report of another
    quarter, or in a re-run of the same quarter, however many rows come before it. ``%``,
    ``:`` and ``/`` inside a part are escaped as ``%25``, ``%3A`` and ``%2F``.
    """
    return f"{_id_part(table)}:{row_key}:{_id_part(column)}"


def row_key_columns(frame: pd.DataFrame, count_columns: Sequence[str], derived: Sequence[str] = ()) -> list[str]:
    """The label columns of a table: neither counts nor derived values nor floats (statistics)."""
    out = []
    for c in frame.columns:
        if c in count_columns or c in derived:
            continue
        col = frame[c]
        if pd.api.types.is_float_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        out.append(str(c))
    return out


def row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """One key per row: its label values joined by ``/`` (``#2``, ``#3`` appended to repeats)."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for i in range(len(frame)):
        parts = []
        for c in columns:
            v = frame.iat[i, frame.columns.get_loc(c)]
            parts.append("" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else _id_part(v))
        key = "/".join(parts) if parts else str(i)
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


@dataclass(frozen=True, slots=True)
class TableBlock:
    """One published table.

    ``data`` is tidy and numeric (suppressed counts ``<NA>``, suppressed derived values
    ``NaN``); ``mask`` marks suppressed cells; ``display`` optionally maps the tidy table
    to the columns shown (formatted at render time); ``privacy`` is what ``scan``
    re-checks; ``measure`` says what the numbers mean (definition, numerator,
    denominator, as_of).
    """

    key: str
    title: str
    data: pd.DataFrame
    mask: pd.DataFrame
    columns: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    percent_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    privacy: Mapping[str, Any] = field(default_factory=dict)
    measure: Mapping[str, Any] = field(default_factory=dict)
    sheet: str = ""
    show_in_document: bool = True
    display_rows: Sequence[int] | None = None
    #: display-only columns: name -> source columns; each row shows its first source that
    #: has a value or is suppressed (e.g. one "count" column for count and rate rows)
    coalesce: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the stable key of each row (:func:`row_keys`); a cell's id is ``cell_id(key, row_keys[i], column)``
    row_keys: tuple[str, ...] = ()
    #: display labels of codes (:class:`~recoverystats.schema.labels.Labels`), applied at
    #: render time only: ``data``, ``row_keys`` and the ledger keep the raw codes
    code_labels: Any = None

    def display_code(self, row: int, column: str, value: Any) -> str:
        """The text shown for a label cell: a code in words, a model term with its reference."""
        from recoverystats.schema.labels import COLUMN_FIELDS, Labels

        lab = self.code_labels if self.code_labels is not None else Labels()
        text = str(value)
        if self.measure.get("verbatim"):  # e.g. the analysis settings: names as the code spells them
            return text
        if column == "term":
            refs = self.measure.get("references") or {}
            var = text.split("[", 1)[0]
            return lab.term(text, reference=refs.get(var))
        if column == "of_label":  # the flow's denominators: "in peer_mentoring", "matched in peer_mentoring"
            head, sep, group = text.rpartition("in ")
            if sep and (not head or head.endswith(" ")):
                return f"{head}in {lab.code(group, field='group')}"
            return text
        if column == "comparison" and " vs " in text:  # "peer_mentoring vs comparison"
            return " vs ".join(lab.code(part, field="group") for part in text.split(" vs "))
        if column in ("level", "value_level") and "variable" in self.data.columns:
            var = self.data.iat[row, self.data.columns.get_loc("variable")]
            return lab.code(text, field=str(var))
        return lab.code(text, field=COLUMN_FIELDS.get(column))

    def _coalesced(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        data = self.data.copy()
        mask = self.mask.copy()
        for name, sources in self.coalesce.items():
            vals, sup = [], []
            for i in range(len(data)):
                v, m = np.nan, False
                for src in sources:
                    sv = data.iat[i, data.columns.get_loc(src)]
                    sm = bool(mask.iat[i, mask.columns.get_loc(src)])
                    if sm or not (sv is None or sv is pd.NA or (isinstance(sv, float) and np.isnan(sv))):
                        v, m = sv, sm
                        break
                vals.append(v)
                sup.append(m)
            data[name] = pd.array(vals, dtype=data[sources[0]].dtype) if len(vals) else data[sources[0]]
            mask[name] = sup
        return data, mask

    @property
    def shown(self) -> pd.DataFrame:
        """The rows and columns shown in the HTML/DOCX (the XLSX/JSON hold every row)."""
        t = self._coalesced()[0] if self.coalesce else self.data
        if self.display_rows is not None:
            t = t.iloc[list(self.display_rows)]
        return t[list(self.columns)]

    @property
    def shown_mask(self) -> pd.DataFrame:
        m = self._coalesced()[1] if self.coalesce else self.mask
        if self.display_rows is not None:
            m = m.iloc[list(self.display_rows)]
        return m[list(self.columns)]

    @property
    def sheet_columns(self) -> tuple[str, ...]:
        """Columns written to the spreadsheet: the shown ones, with display-only merges expanded."""
        out: list[str] = []
        for c in self.columns:
            out.extend(self.coalesce.get(c, (c,)))
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class FigureBlock:
    """One figure, rendered once to PNG bytes and SVG text (deterministic)."""

    key: str
    title: str
    png: bytes
    svg: str
    caption: str = ""
    #: layout problems found when the figure was rendered (text outside the figure,
    #: overlapping tick labels); empty for a clean figure
    problems: tuple[str, ...] = ()
    #: width / height of the figure (the DOCX sizes the picture to fit the page)
    aspect: float = 0.0
    #: what the figure is drawn from, written to results.json: ``sources`` (published
    #: tables) and, for step curves, ``curves`` (the drawn steps and their counts)
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Plain paragraphs (escaped at render time) and an optional bullet list."""

    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    heading: str = ""


Block = TableBlock | FigureBlock | TextBlock


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...]
    intro: str = ""


# ---------------------------------------------------------------------------------------
@dataclass
class PendingTable:
    """A raw table waiting for joint suppression."""

    key: str
    title: str
    raw: pd.DataFrame
    count_columns: tuple[str, ...]
    margins: Mapping[str, Any] | None = None
    dependent: Mapping[str, Sequence[str]] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    percent_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    measure: Mapping[str, Any] = field(default_factory=dict)
    #: (row position, column) -> semantic id(s) shared with other cells holding the same number
    ids: dict[tuple[int, str], str | tuple[str, ...]] = field(default_factory=dict)
    sheet: str = ""
    show_in_document: bool = True
    display_rows: Sequence[int] | None = None
    exempt_rows: Sequence[int] = ()
    coalesce: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: statistics computed from count cells of other rows too (privacy.derived entries:
    #: row, column, statistic, inputs [[row, column], ...], digits, params); suppressed with
    #: any of their inputs and written to results.json for the scan's attacker
    derived: Sequence[Mapping[str, Any]] = ()
    #: (row position, column) count cells suppressed whatever their value (reason "linked")
    force: Sequence[tuple[int, str]] = ()
    #: count column -> (quarter, count column): the same number was published in the release
    #: of that quarter in the other column of the same row (e.g. last quarter's value shown
    #: as ``last_n`` is the ``this_n`` of last quarter's report)
    ledger_alias: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: rows about the quarter itself (new enrollments in the quarter): their row key carries
    #: the quarter (another quarter's value is another quantity, with another cell id)
    ledger_quarter_rows: Sequence[int] = ()


class TableRegistry:
    """Collects raw tables and suppresses them jointly (linked cells stay consistent).

    ``previous`` holds the earlier releases of the ledger
    (:class:`~recoverystats.report.ledger.PreviousRelease`); every count cell whose id was
    published there gets those values as constants in its table's suppression
    (``suppress(previous=...)``), so that no change since an earlier release is a small count.
    """

    def __init__(self, *, min_cell: int, enabled: bool, quarter: str = "", previous: Sequence[Any] = (),
                 protect_derived: bool = True, labels: Any = None) -> None:
        self.min_cell = int(min_cell)
        #: display labels handed to every block (render time only; never part of a cell id)
        self.labels = labels
        self.enabled = bool(enabled)
        self.quarter = str(quarter)
        self.previous = tuple(previous)
        #: suppress derived statistics with their inputs (False only to test the scan)
        self.protect_derived = bool(protect_derived)
        self.pending: dict[str, PendingTable] = {}
        self.blocks: dict[str, TableBlock] = {}
        #: cell id -> published value (None: suppressed) of every count cell, after suppress_all
        self.cells: dict[str, float | None] = {}
        #: cell id -> value before suppression (internal: to tell a re-run on changed data; never written)
        self.raw_cells: dict[str, float | None] = {}

    def row_keys(self, t: PendingTable, quarter: str | None = None) -> list[str]:
        """Stable row keys of a pending table (from its label columns).

        Rows about one quarter (``ledger_quarter_rows``) get ``@<quarter>`` appended, so
        that the same id means the same quantity in every release.
        """
        cols = row_key_columns(t.raw, t.count_columns, list(t.dependent))
        keys = row_keys(t.raw, cols)
        q = _id_part(self.quarter if quarter is None else quarter)
        for i in t.ledger_quarter_rows:
            keys[i] = f"{keys[i]}@{q}"
        return keys

    def earlier_values(self, t: PendingTable, keys: Sequence[str]) -> list[dict[tuple[int, str], float]]:
        """Per earlier release, the published values of this table's count cells (by row position)."""
        out = []
        for rel in self.previous:
            got: dict[tuple[int, str], float] = {}
            for c in t.count_columns:
                alias = t.ledger_alias.get(c)
                alias_keys = self.row_keys(t, alias[0]) if alias is not None else keys
                for i, k in enumerate(keys):
                    v = None
                    if alias is None or rel.quarter == self.quarter:
                        v = rel.cells.get(cell_id(t.key, k, c))
                    if v is None and alias is not None and rel.quarter == alias[0]:
                        v = rel.cells.get(cell_id(t.key, alias_keys[i], alias[1]))
                    if v is not None:
                        got[(i, c)] = float(v)
            if got:
                out.append(got)
        return out

    def add(self, table: PendingTable) -> PendingTable:
        if table.key in self.pending:
            raise ValueError(f"duplicate report table key {table.key!r}")  # pragma: no cover - programming error
        table.raw = table.raw.reset_index(drop=True)
        if not table.columns:
            table.columns = tuple(table.raw.columns)
        self.pending[table.key] = table
        return table

    def suppress_all(self, progress: Callable[[str], None] | None = None) -> dict[str, TableBlock]:
        """Suppress every table; repeat with linked cells forced until nothing changes."""
        forced: set[str] = set()
        results: dict[str, Any] = {}
        used_force: dict[str, frozenset] = {}
        keys = {key: self.row_keys(t) for key, t in self.pending.items()}
        earlier = {key: self.earlier_values(t, keys[key]) for key, t in self.pending.items()
                   if self.previous and t.count_columns}
        for _ in range(50):
            new: set[str] = set()
            for key, t in self.pending.items():
                if not self.enabled or not t.count_columns:
                    results[key] = None
                    continue
                force = [cell for cell, cid in t.ids.items() if not forced.isdisjoint(_as_ids(cid))]
                force += [(int(i), str(c)) for i, c in t.force if (int(i), str(c)) not in force]
                if key in results and used_force.get(key) == frozenset(force):
                    res = results[key]  # nothing new forced on this table: same answer
                else:
                    res = suppress(t.raw, count_columns=list(t.count_columns), min_cell=self.min_cell,
                                   margins=t.margins, dependent_columns=dict(t.dependent), force=force,
                                   exempt_rows=list(t.exempt_rows), previous=earlier.get(key) or None,
                                   derived_cells=_derived_cells(t.derived) if self.protect_derived else None)
                    used_force[key] = frozenset(force)
                results[key] = res
                for (i, c), cid in t.ids.items():
                    if bool(res.mask.iat[i, res.mask.columns.get_loc(c)]):
                        new.update(_as_ids(cid))
            if new <= forced:
                break
            forced |= new
        else:  # pragma: no cover - the forced set only grows, so this cannot loop forever
            raise RuntimeError("linked suppression did not converge")
        for key, t in self.pending.items():
            res = results[key]
            if res is None:
                data = t.raw.copy()
                for c in t.count_columns:
                    if pd.api.types.is_float_dtype(data[c]):
                        data[c] = data[c].round().astype("Int64")
                mask = pd.DataFrame(False, index=data.index, columns=data.columns)
            else:
                data, mask = res.table, res.mask
            privacy = {}
            if t.count_columns:
                privacy = {
                    "count_columns": list(t.count_columns),
                    "margins": Margins.coerce(t.margins).to_dict(),
                    "dependent_columns": {k: list(v) if not isinstance(v, str) else [v] for k, v in t.dependent.items()},
                    "suppressed_cells": int(mask.to_numpy().sum()),
                }
                if t.derived:
                    privacy["derived"] = [dict(d) for d in t.derived]
                    privacy["derived_protected"] = self.protect_derived and self.enabled
            self.blocks[key] = TableBlock(
                key=key, title=t.title, data=data, mask=mask, columns=t.columns, labels=dict(t.labels),
                percent_columns=t.percent_columns, notes=t.notes, privacy=privacy, measure=dict(t.measure),
                sheet=t.sheet or key, show_in_document=t.show_in_document, display_rows=t.display_rows,
                coalesce=dict(t.coalesce), row_keys=tuple(keys[key]), code_labels=self.labels,
            )
            for c in t.count_columns:
                col, m = data[c], mask[c].to_numpy()
                raw = pd.to_numeric(t.raw[c], errors="coerce").astype("float64").to_numpy()
                for i, k in enumerate(keys[key]):
                    self.raw_cells[cell_id(key, k, c)] = float(raw[i]) if np.isfinite(raw[i]) else None
                    v = col.iat[i]
                    missing = m[i] or v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                    self.cells[cell_id(key, k, c)] = None if missing else float(v)
        return self.blocks


def _derived_cells(derived: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], list[tuple[int, str]]]:
    return {(int(d["row"]), str(d["column"])): [(int(r), str(c)) for r, c in d["inputs"]] for d in derived}


def _as_ids(cid: str | tuple[str, ...]) -> tuple[str, ...]:
    return (cid,) if isinstance(cid, str) else tuple(cid)


def is_suppressed(block: TableBlock, row: int, column: str) -> bool:
    return bool(block.mask.iat[row, block.mask.columns.get_loc(column)])


def value_or_none(block: TableBlock, row: int, column: str) -> Any:
    v = block.data.iat[row, block.data.columns.get_loc(column)]
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v
