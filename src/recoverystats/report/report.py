"""The ``Report`` object and its writers: HTML, DOCX, XLSX, figures and results.json.

``Report.save(dir)`` writes everything into a temporary folder next to ``dir``, runs the
privacy scan on it (identifiers, birth dates, small counts; inside the .docx and .xlsx
too), and only when the scan is clean moves the folder into place with a rename. A
failure at any point (SIGINT and SIGTERM included) removes the temporary folder, so a
half-written or unscanned report never appears at ``dir``; a temporary folder left by a
killed process (SIGKILL, power loss) is removed by the next save into the same parent.

Every saved report carries a marker file (:data:`MARKER`) listing the files it wrote;
``overwrite`` replaces only a folder with that marker and nothing else in it, and never a
folder that holds (or lies inside) the program's input files (:func:`check_out_dir`).

The writers are deterministic: the same report gives byte-identical files (zip members
of the .docx and .xlsx carry the cut-off date as their time, in a fixed order), apart
from ``generated_at`` in results.json.
"""

from __future__ import annotations

import datetime as _dt
import functools
import html as _html
import io
import json
import math
import os
import re
import shutil
import signal
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError, RecoveryStatsError, param
from recoverystats.report.config import ReportConfig
from recoverystats.report.model import FigureBlock, Section, TableBlock, TextBlock

__all__ = ["Report", "DisclosureError", "package_versions", "STAMP", "MARKER", "MAX_LABEL_CHARS", "check_out_dir",
           "check_label_lengths"]

#: Tables with this many columns get the compact print style (``rs-wide``) in the HTML.
WIDE_COLUMNS = 12
#: The stamp on every page and sheet of an unsuppressed report.
STAMP = "contains small cells — not for release"
_TEMPLATES = Path(__file__).with_name("templates")
#: The marker file in every saved report folder: JSON naming the tool, its version and the
#: files the report wrote. ``overwrite`` replaces only a folder carrying it.
MARKER = ".recoverystats-report"
#: Lock file inside a temporary ``.<name>.partial-*`` folder while a save is running
#: (flock held by the saving process; the next save removes the folder once the lock is free).
PARTIAL_LOCK = ".recoverystats-partial"
#: Longest label (site, group or level name, column header, table or report title) written
#: to an output, in characters. Longer labels are refused (not truncated: two truncated
#: labels could merge), so a runaway cell cannot bloat every output or the save time.
MAX_LABEL_CHARS = 200
#: Text cells starting with one of these would be read as a formula by a spreadsheet
#: (OWASP "CSV injection"); they are written as text cells with Excel's quote prefix.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


class DisclosureError(RecoveryStatsError):
    """The finished output failed the privacy scan; nothing was published.

    ``findings`` is the scan's findings table (identifiers are masked in it).
    """

    def __init__(self, message: str, findings: pd.DataFrame) -> None:
        self.findings = findings
        super().__init__(message)


def _policy_min_cell() -> int:
    from recoverystats.privacy.suppress import POLICY_MIN_CELL

    return POLICY_MIN_CELL


def package_versions() -> dict[str, str]:
    """Versions of recoverystats, Python and the libraries the report depends on."""
    import platform
    from importlib import metadata

    import recoverystats

    out = {"recoverystats": recoverystats.__version__, "python": platform.python_version()}
    for dist in ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "openpyxl", "python-docx", "jinja2",
                 "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - optional
            out[dist] = "not installed"
    return out


# ---------------------------------------------------------------------------------------
# cell formatting (display only; the tables themselves stay numeric)
# ---------------------------------------------------------------------------------------
def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and math.isnan(v))


def format_cell(block: TableBlock, row: int, column: str, value: Any, suppressed: bool) -> str:
    """Display text of one cell: '*' when suppressed, percentages, counts with separators."""
    from recoverystats.results.render import format_value

    if suppressed:
        return "*"
    if _is_missing(value):
        return "—"
    if column == "meets_target" or (column == "signal" and block.key.startswith("pchart_")):
        return "yes" if float(value) >= 0.5 else "no"
    if column == "change" and block.key == "key_numbers":
        kind = block.data.iat[row, block.data.columns.get_loc("kind")]
        v = float(value)
        return _points(v) if kind == "rate" else f"{v:+,.0f}"
    if column == "change_pp":
        return _points(float(value))
    if column in block.percent_columns:
        v = float(value)
        return f"{v * 100:.1f}%"
    if column in block.privacy.get("count_columns", ()) or column in block.coalesce:
        return f"{int(round(float(value))):,}"
    if isinstance(value, str):  # a code: its display label (the table keeps the code)
        return block.display_code(row, column, value)
    if column == "p_value" and isinstance(value, (float, np.floating)):
        return apa_p(float(value))
    if isinstance(value, (float, np.floating)) and column in ("estimate", "ci_lower", "ci_upper", "smd", "statistic"):
        return format_value(float(value), column, 2 if column != "smd" else 3)
    if isinstance(value, (float, np.floating)) and _one_decimal(column):
        return f"{float(value):,.1f}"
    return format_value(value, column, 3)


def apa_p(p: float) -> str:
    """A p-value as APA style prints it: ``<.001``, else 3 decimals with no leading zero
    (``.034``, ``.500``); ``>.999`` when it rounds to 1."""
    if p < 0.001:
        return "<.001"
    if p >= 0.9995:
        return ">.999"
    return f"{p:.3f}".removeprefix("0")


def _one_decimal(column: str) -> bool:
    """Columns of means, SDs and ages: shown to 1 decimal (the report's rounding)."""
    c = str(column)
    return c.startswith(("mean|", "sd|", "mean_", "sd_")) or c in ("mean", "sd", "age", "median_age", "mean_age")


def _points(v: float) -> str:
    """A change of a proportion in percentage points: ``+1.6 pp``; ``0.0 pp`` (not ``-0.0``)."""
    text = f"{v * 100:+.1f}"
    return ("0.0" if text in ("+0.0", "-0.0") else text) + " pp"


def display_frame(block: TableBlock) -> pd.DataFrame:
    """The shown rows/columns as display strings, with labelled headers."""
    shown = block.shown
    mask = block.shown_mask
    rows = list(shown.index)
    out = {}
    for c in shown.columns:
        out[c] = [format_cell(block, int(i), c, shown.at[i, c], bool(mask.at[i, c])) for i in rows]
    return pd.DataFrame(out, columns=list(shown.columns))


def _lead_columns(block: TableBlock) -> int:
    """How many leading columns are labels (left-aligned) rather than numbers."""
    shown = block.shown
    k = 0
    numbers = set(block.privacy.get("count_columns", ())) | set(block.percent_columns) | set(block.coalesce)
    for c in shown.columns:
        if c in numbers or pd.api.types.is_float_dtype(shown[c]):
            break
        k += 1
    return max(1, min(k, 3))


#: Fill of a suppressed (empty) cell in tables.xlsx, and its legend sample on the About sheet.
SUPPRESSED_FILL = "D9D9D9"
#: The sheet of tables.xlsx that lists every suppressed cell.
SUPPRESSED_SHEET = "Suppressed cells"
#: Number formats of tables.xlsx (the same rounding as the HTML and DOCX).
XLSX_FORMATS = {
    "percent": "0.0%",
    "count": "#,##0",
    "ratio": "0.00",
    "smd": "0.000",
    "p_value": '[<0.001]"<.001";[>=0.9995]">.999";.000',
    "one_decimal": "#,##0.0",
    "pp": '+0.0" pp";-0.0" pp";0.0" pp"',
    "signed_count": "+#,##0;-#,##0;0",
    "number": "0.000",
    "small": "0.00E+00",
    "date": "yyyy-mm-dd",
}


def xlsx_value(block: TableBlock, row: int, column: str, value: Any) -> tuple[Any, str | None]:
    """The value and number format of one unsuppressed cell of tables.xlsx.

    Mirrors :func:`format_cell`: numbers stay numbers (a format gives them the HTML's
    rounding); ``yes``/``no`` columns become text as in the HTML; a change in percentage
    points is stored in points (``+3.2 pp`` holds 3.2). Excel has no infinity, so an
    infinite value is the text ``∞``/``−∞`` as in the HTML. Missing values are empty.
    """
    from recoverystats.results.render import WHOLE_NUMBER_COLUMNS

    f = XLSX_FORMATS
    if _is_missing(value):
        return None, None
    if column == "meets_target" or (column == "signal" and block.key.startswith("pchart_")):
        return ("yes" if float(value) >= 0.5 else "no"), None
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None), f["date"]
    if isinstance(value, str):
        return block.display_code(row, column, value), None
    if isinstance(value, pd.Period):
        return str(value), None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value), None
    if math.isinf(v):
        return ("∞" if v > 0 else "−∞"), None
    if column == "change" and block.key == "key_numbers":
        kind = block.data.iat[row, block.data.columns.get_loc("kind")]
        return (round(v * 100, 10), f["pp"]) if kind == "rate" else (v, f["signed_count"])
    if column == "change_pp":
        return round(v * 100, 10), f["pp"]
    if column in block.percent_columns:
        return v, f["percent"]
    if column in block.privacy.get("count_columns", ()) or column in block.coalesce:
        return int(round(v)), f["count"]
    if isinstance(value, (int, np.integer)):
        return int(value), f["count"]
    if column == "p_value":
        return v, f["p_value"]
    if _one_decimal(column):
        return v, f["one_decimal"]
    if column == "smd":
        return v, f["smd"]
    if column in ("estimate", "ci_lower", "ci_upper", "statistic"):
        return v, f["ratio"]
    if v.is_integer() and column in WHOLE_NUMBER_COLUMNS:
        return int(v), f["count"]
    a = abs(v)
    return v, (f["small"] if a != 0 and a < 1e-3 else f["number"])


def _xlsx_legend(min_cell: int, suppressed: bool) -> list[tuple[str, str]]:
    """The About sheet's legend: (sample or term, meaning)."""
    rows = [("(grey, empty)",
             f"Suppressed: a count below {min_cell}, or a cell suppressed so that a small count cannot be "
             "worked out from totals; percentages and intervals resting on a suppressed count are suppressed "
             f"too. The cell is empty (never text), so numeric filters and sums still work; the sheet "
             f"'{SUPPRESSED_SHEET}' lists every one." if suppressed
             else "Suppression is OFF: no cell is suppressed and small counts are shown. " + STAMP),
            ("(empty, no fill)", "Not available (e.g. no one at risk, or a measure not defined for the row)."),
            ("Numbers", "Stored unrounded; the cell format rounds them as the report does: percentages to 0.1%, "
                        "ratios and intervals to 2 decimals, means and SDs to 1 decimal, p-values in APA style "
                        "(3 decimals with no leading zero, <.001 below 0.001), counts as whole numbers."),
            ("pp", "Changes marked pp are in percentage points and stored in points (+3.2 pp holds 3.2)."),
            ("yes / no", "Text columns (meets target, special-cause signal), as in the report."),
            ("∞", "An infinite interval bound (the text ∞; a spreadsheet has no infinity).")]
    return rows


def _label_columns(block: TableBlock, cols: list[str]) -> list[str]:
    """The leading label columns of a sheet (before the first count, percentage or decimal column)."""
    numbers = set(block.privacy.get("count_columns", ())) | set(block.percent_columns) | set(block.coalesce)
    out = []
    for c in cols:
        if c in numbers or (c in block.data and pd.api.types.is_float_dtype(block.data[c])):
            break
        out.append(c)
    return out


def _row_label(block: TableBlock, row: int, label_cols: list[str]) -> str:
    """A row's label for the suppressed-cells list: its label columns' values joined by ' · '."""
    from recoverystats.results.render import format_value

    parts = []
    for c in label_cols:
        if bool(block.mask.iat[row, block.mask.columns.get_loc(c)]):
            continue
        v = block.data.iat[row, block.data.columns.get_loc(c)]
        if not _is_missing(v):
            parts.append(block.display_code(row, c, v) if isinstance(v, str) else format_value(v, c))
    return " · ".join(parts) or f"row {row + 1}"


def _is_wide(block: TableBlock, disp: pd.DataFrame) -> bool:
    """Whether a table gets the compact print style (``rs-wide``): it has
    :data:`WIDE_COLUMNS` columns or more, or its printed width at 8 pt (as measured for the
    DOCX) does not fit a portrait page with the usual cell padding."""
    if len(disp.columns) >= WIDE_COLUMNS:
        return True
    layout = docx_table_layout([_header(block, c) for c in disp.columns],
                               [list(map(str, r)) for r in disp.itertuples(index=False)],
                               lead=_lead_columns(block))
    return layout.landscape or layout.tight or layout.font_pt < 8


def _caption_outside(html: str, key: str) -> str:
    """Move a table's ``<caption>`` above its scrolling box (``<p class="rs-caption">``), so
    the title stays in view when a wide table is scrolled sideways; the table keeps it as
    its accessible name (``aria-labelledby``)."""
    m = re.search(r"<caption>(.*?)</caption>", html, flags=re.S)
    if not m:
        return html
    cap_id = f"cap-{re.sub(r'[^A-Za-z0-9_-]', '-', key)}"
    html = html[:m.start()] + html[m.end():]
    html = re.sub(r'<table class="([^"]*)"', lambda t: f'{t.group(0)} aria-labelledby="{cap_id}"', html, count=1)
    return f'<p class="rs-caption" id="{cap_id}">{m.group(1)}</p>\n' + html


def _header(block: TableBlock, column: str) -> str:
    from recoverystats.results.render import label

    return label(column, block.labels)


# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class Report:
    """A finished quarterly report (numbers suppressed, figures drawn), ready to save.

    Attributes
    ----------
    title, program, quarter, as_of
        What the report is about.
    sections
        The sections in order (each with text, tables and figures).
    tables
        Every published table by key (the same objects the sections show).
    min_cell, suppressed
        The suppression settings used.
    provenance
        Input files with SHA-256, configuration, versions, seed, as_of.
    ledger
        The release ledger written to ``results.json``: every count cell by its stable
        cell id (``None`` when suppressed), the earlier releases protected against and
        any re-release of this quarter.
    key_numbers
        The key-numbers rows (JSON-safe).
    prog
        The program the report was made from, kept only so that :meth:`save` can scan the
        output for its identifiers; it is never written anywhere.
    """

    title: str
    program: str
    quarter: str
    as_of: pd.Timestamp
    config: ReportConfig
    sections: tuple[Section, ...]
    tables: Mapping[str, TableBlock]
    min_cell: int
    suppressed: bool
    provenance: Mapping[str, Any]
    key_numbers: list[dict[str, Any]] = field(default_factory=list)
    prog: Any = None
    #: the release ledger (``results.json`` ``ledger``): every count cell by stable cell id,
    #: the earlier releases it was protected against and any re-release of this quarter
    ledger: Mapping[str, Any] = field(default_factory=dict)
    #: the earlier releases (:class:`~recoverystats.report.ledger.PreviousRelease`) the report
    #: was protected against; :meth:`save`'s scan checks the output against them too
    previous: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return (f"Report({self.title!r}, quarter={self.quarter}, as_of={self.as_of.date()}, "
                f"sections={len(self.sections)}, tables={len(self.tables)}, "
                f"suppression={f'on (min_cell={self.min_cell})' if self.suppressed else 'OFF'})")

    @property
    def identity(self) -> dict[str, str]:
        """The program's identity fields that are set (name, funder, grant_number, ...)."""
        c = self.config
        out = {"name": self.program, "funder": c.funder, "grant_number": c.grant_number,
               "reporting_period": c.reporting_period, "prepared_by": c.prepared_by}
        return {k: v for k, v in out.items() if v}

    @property
    def identity_lines(self) -> list[str]:
        """The identity lines shown under the program name: "Funder: ...", "Grant number: ..."."""
        names = {"funder": "Funder", "grant_number": "Grant number", "reporting_period": "Reporting period",
                 "prepared_by": "Prepared by"}
        return [f"{label}: {self.identity[k]}" for k, label in names.items() if k in self.identity]

    @property
    def stamp(self) -> str:
        """The "not for release" stamp, or "" for a report that may be released.

        Stamped: suppression off, or ``min_cell`` below the policy threshold
        (:data:`~recoverystats.privacy.POLICY_MIN_CELL`, 11): both publish counts 1-10.
        """
        return "" if self.stamp_reason is None else STAMP

    @property
    def stamp_reason(self) -> str | None:
        """Why the report is stamped (``None`` when it is not)."""
        from recoverystats.privacy.suppress import POLICY_MIN_CELL

        if not self.suppressed:
            return "suppression turned off"
        if self.min_cell < POLICY_MIN_CELL:
            return f"min_cell {self.min_cell} is below the policy threshold {POLICY_MIN_CELL}"
        return None

    @property
    def figures(self) -> list[FigureBlock]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, FigureBlock)]

    # -- HTML -------------------------------------------------------------------------
    def to_html(self) -> str:
        """The whole report as one self-contained HTML document (figures inline as SVG)."""
        import jinja2

        import recoverystats
        from recoverystats.results.render import render_html_table

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=True,
                                 keep_trailing_newline=True)
        tmpl = env.get_template("report.html.j2")
        sections = []
        for s in self.sections:
            blocks = []
            for b in s.blocks:
                if isinstance(b, TextBlock):
                    if not (b.paragraphs or b.bullets or b.heading):
                        continue
                    blocks.append({"kind": "text", "heading": b.heading,
                                   "paragraphs": [p for p in b.paragraphs if p], "bullets": list(b.bullets)})
                elif isinstance(b, TableBlock):
                    if not b.show_in_document:
                        continue
                    disp = display_frame(b)
                    html = render_html_table(disp, title=b.title, notes=b.notes,
                                             labels={c: _header(b, c) for c in disp.columns}, max_rows=500,
                                             align_text=False,  # report.css aligns the columns
                                             css_class=f"rs-table rs-lead-{_lead_columns(b)}"
                                             + (" rs-wide" if _is_wide(b, disp) else ""))
                    blocks.append({"kind": "table", "html": _caption_outside(html, b.key)})
                elif isinstance(b, FigureBlock):
                    blocks.append({"kind": "figure", "key": b.key, "title": b.title, "svg": _svg_inline(b)})
            sections.append({"key": s.key, "title": s.title, "blocks": blocks})
        return tmpl.render(
            title=self.title, program=self.program, identity=self.identity_lines, quarter=self.quarter,
            as_of=self.as_of.date().isoformat(), sections=sections, css=(_TEMPLATES / "report.css").read_text(encoding="utf-8"), stamp=self.stamp,
            min_cell=self.min_cell, version=recoverystats.__version__,
            suppression_line=(f"counts below {self.min_cell} suppressed" if self.suppressed
                              else "SMALL CELLS NOT SUPPRESSED"),
        )

    def _repr_html_(self) -> str:
        body = self.to_html()
        # in a notebook, show the document in an isolated frame (its CSS must not leak)
        return f'<iframe srcdoc="{_html.escape(body)}" style="width:100%;height:720px;border:1px solid #ccc"></iframe>'

    # -- results.json -------------------------------------------------------------------
    def to_json_dict(self, generated_at: str | None = None) -> dict[str, Any]:
        """Every number of the report with its definition and the provenance (JSON-safe)."""
        from recoverystats.results.base import json_safe

        tables = {}
        for key, b in self.tables.items():
            data = b.data
            rows = []
            for i in range(len(data)):
                rec = {}
                for c in data.columns:
                    v = data.iat[i, data.columns.get_loc(c)]
                    rec[str(c)] = None if bool(b.mask.iat[i, b.mask.columns.get_loc(c)]) else json_safe(v)
                rows.append(rec)
            suppressed = [[int(i), str(c)] for c in b.mask.columns for i in np.flatnonzero(b.mask[c].to_numpy())]
            tables[key] = {
                "title": b.title, "sheet": _sheet_names(self.tables)[key], "columns": [str(c) for c in data.columns],
                "headers": {str(c): _header(b, c) for c in data.columns}, "rows": rows,
                "suppressed_cells": suppressed, "privacy": json_safe(dict(b.privacy)),
                "measure": json_safe(dict(b.measure)), "notes": list(b.notes), "row_keys": list(b.row_keys),
            }
        figures = [{"key": f.key, "title": f.title, "png": f"figures/{f.key}.png", "svg": f"figures/{f.key}.svg",
                    **({"data": json_safe(dict(f.data))} if f.data is not None else {})}
                   for f in self.figures]
        sections = [{"key": s.key, "title": s.title,
                     "tables": [b.key for b in s.blocks if isinstance(b, TableBlock)],
                     "figures": [b.key for b in s.blocks if isinstance(b, FigureBlock)]} for s in self.sections]
        return {
            "report": {"title": self.title, "program": self.program, "identity": self.identity,
                       "quarter": self.quarter,
                       "as_of": self.as_of.date().isoformat(), "min_cell": self.min_cell,
                       "suppression": self.suppressed, "stamp": self.stamp or None,
                       "stamp_reason": self.stamp_reason, "policy_min_cell": _policy_min_cell(),
                       "generated_at": generated_at},
            "provenance": json_safe(dict(self.provenance)),
            "key_numbers": json_safe(self.key_numbers),
            "sections": sections,
            "tables": tables,
            "figures": figures,
            "ledger": json_safe(dict(self.ledger)),
        }

    # -- DOCX --------------------------------------------------------------------------
    def to_docx(self, path: str | Path) -> None:
        """An editable Word document: real tables, PNG figures, the stamp in every page header."""
        import docx
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Inches, Pt, RGBColor

        d = docx.Document()
        core = d.core_properties
        core.title = f"{self.title} — {self.quarter}"
        core.author = "recoverystats"
        fixed = _dt.datetime(self.as_of.year, self.as_of.month, self.as_of.day)
        core.created = fixed
        core.modified = fixed
        core.last_modified_by = "recoverystats"
        style = d.styles["Normal"]
        style.font.name = "Calibri"
        style.font.size = Pt(10)
        sec = d.sections[0]
        sec.left_margin = sec.right_margin = Inches(0.8)
        hp = sec.header.paragraphs[0]
        if self.program:  # the program's identity on every page
            hp.add_run(" · ".join([self.program, *self.identity_lines])).font.size = Pt(8)
        if self.stamp:
            if self.program:
                hp = sec.header.add_paragraph()
            run = hp.add_run(self.stamp.upper())
            run.bold = True
            run.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
        fp = sec.footer.paragraphs[0]
        fp.add_run(f"{self.title} · {self.quarter} · data to {self.as_of.date().isoformat()}").font.size = Pt(8)
        d.add_heading(self.title, level=0)
        if self.program:
            d.add_paragraph(self.program)
        for line in self.identity_lines:
            d.add_paragraph(line)
        d.add_paragraph(f"Quarter {self.quarter} · data to {self.as_of.date().isoformat()} · "
                        + (f"counts below {self.min_cell} suppressed (*)" if self.suppressed
                           else "SMALL CELLS NOT SUPPRESSED — NOT FOR RELEASE"))
        items = self._docx_plan()
        page = _Pages(d)
        for it in items:
            page.orient(it.landscape)
            b = it.block
            if it.kind == "section":
                d.add_heading(b.title, level=1)
            elif isinstance(b, TextBlock):
                if b.heading:
                    d.add_heading(b.heading, level=2)
                for p in b.paragraphs:
                    if p:
                        d.add_paragraph(p)
                for x in b.bullets:
                    d.add_paragraph(x, style="List Bullet")
            elif isinstance(b, TableBlock):
                disp, layout = it.table
                headers = [_header(b, c) for c in disp.columns]
                lead = _lead_columns(b)
                cap = d.add_paragraph()
                cap.paragraph_format.keep_with_next = True
                cap.paragraph_format.space_before = Pt(10)
                cap.add_run(b.title).bold = True
                table = d.add_table(rows=1, cols=len(disp.columns))
                table.style = "Light Grid Accent 1"
                for j, h in enumerate(headers):
                    table.rows[0].cells[j].text = h
                for rec in disp.itertuples(index=False, name=None):
                    cells = table.add_row().cells
                    for j, v in enumerate(rec):
                        cells[j].text = str(v)
                table.autofit = False
                if layout.tight:
                    _cell_margins(table, TIGHT_MARGIN)
                widths = layout.widths
                for j, col in enumerate(table.columns):
                    col.width = Inches(widths[j])
                for row in table.rows:
                    for j, cell in enumerate(row.cells):
                        cell.width = Inches(widths[j])
                        for par in cell.paragraphs:
                            if j >= lead:
                                par.alignment = WD_ALIGN_PARAGRAPH.RIGHT
                            for run in par.runs:
                                run.font.size = Pt(layout.font_pt)
                _repeat_header_row(table)
                for note in b.notes:
                    d.add_paragraph(note).runs[0].font.size = Pt(8)
            elif isinstance(b, FigureBlock):
                # as wide as the text, but never taller than most of a page (tall forest plots)
                width = min(6.2, 7.6 * b.aspect) if b.aspect > 0 else 6.2
                d.add_picture(io.BytesIO(b.png), width=Inches(width))
                d.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
                d.add_paragraph(b.title).runs[0].italic = True
        # the closing note stays on the last page, whatever its orientation (no page of its own)
        d.add_paragraph(f"* suppressed: a count below {self.min_cell}, or a cell suppressed so that a small count "
                        "cannot be worked out from totals; percentages and intervals resting on a suppressed count "
                        "are suppressed too. — = not available.")
        d.save(str(path))
        _normalise_zip(path, fixed)

    def _docx_plan(self) -> list[_DocxItem]:
        """The document's items in order, each with its page orientation.

        A wide table needs a landscape page and a tall figure a portrait one; everything
        else (headings, text, tables and figures that fit either way) takes the orientation
        of its neighbours, so that a switch never leaves a page with a heading or a few
        lines on it: a section's heading and opening text go with the first block of the
        section that needs an orientation, and what follows a landscape table in the same
        section stays on its page.
        """
        items: list[_DocxItem] = []
        for s in self.sections:
            items.append(_DocxItem("section", s, None))
            for b in s.blocks:
                if isinstance(b, TextBlock):
                    if b.heading or any(b.paragraphs) or b.bullets:
                        items.append(_DocxItem("text", b, None))
                elif isinstance(b, TableBlock):
                    if not b.show_in_document:
                        continue
                    disp = display_frame(b)
                    layout = docx_table_layout([_header(b, c) for c in disp.columns],
                                               [list(map(str, r)) for r in disp.itertuples(index=False)],
                                               lead=_lead_columns(b))
                    items.append(_DocxItem("table", b, True if layout.landscape else None, (disp, layout)))
                elif isinstance(b, FigureBlock):
                    width = min(6.2, 7.6 * b.aspect) if b.aspect > 0 else 6.2
                    height = width / b.aspect if b.aspect > 0 else 6.2
                    items.append(_DocxItem("figure", b, None if height <= LANDSCAPE_FIGURE_HEIGHT else False))
        needs = [it.need for it in items]
        i = 0
        while i < len(items):
            if needs[i] is not None:
                items[i].landscape = bool(needs[i])
                i += 1
                continue
            j = i
            while j < len(items) and needs[j] is None:
                j += 1
            before = bool(needs[i - 1]) if i > 0 else False  # the title page is portrait
            after = bool(needs[j]) if j < len(items) else False
            # the rest of the current section finishes the current page; the last section
            # heading of the run and what follows open the next block's page; whole sections
            # in between (text only) are portrait
            heads = [k for k in range(i, j) if items[k].kind == "section"]
            first, last = (heads[0], heads[-1]) if heads else (j, j)
            for k in range(i, j):
                items[k].landscape = before if k < first else after if k >= last else False
            i = j
        return items

    # -- XLSX --------------------------------------------------------------------------
    def to_xlsx(self, path: str | Path) -> None:
        """One sheet per table, numbers as numbers with the report's display formats.

        Every numeric column carries a number format (percentages ``0.0%``, counts
        ``#,##0``, ratios ``0.00``, p-values ``0.000`` and ``<0.001``, changes in
        percentage points stored as points); ``yes``/``no`` columns are text, as in the
        HTML. A suppressed cell is an EMPTY cell with a grey fill (no ``*`` text in a
        numeric column, so numeric filters and sums still work); the sheet "Suppressed
        cells" lists each one (sheet, row label, column, cell) and the About sheet carries
        the legend. Column widths fit the longest shown value and header word. The stamp
        heads every sheet of an unsuppressed report.
        """
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font, PatternFill
        from openpyxl.utils import get_column_letter

        wb = Workbook()
        wb.remove(wb.active)
        names = _sheet_names(self.tables)
        grey = PatternFill("solid", fgColor=SUPPRESSED_FILL)
        info = wb.create_sheet("About")
        legend = _xlsx_legend(self.min_cell, self.suppressed)
        about: list[list[Any]] = [
            [self.title], [self.program, *self.identity_lines], [f"Quarter {self.quarter}, data to {self.as_of.date().isoformat()}"],
            [f"Counts below {self.min_cell} suppressed" if self.suppressed else STAMP.upper()], [],
            ["Legend"], *[[a, b] for a, b in legend], [], ["Sheet", "Table"]]
        legend_row = 6
        for key, b in self.tables.items():
            about.append([names[key], b.title])
        about.append([SUPPRESSED_SHEET, "Every suppressed cell: sheet, row label, column and cell"])
        for i, r in enumerate(about, start=1):
            for j, v in enumerate(r, start=1):
                _text_cell(info.cell(row=i, column=j), v)
        info["A1"].font = Font(bold=True, size=13)
        info.cell(row=legend_row, column=1).font = Font(bold=True)
        info.cell(row=legend_row + 1, column=1).fill = grey  # the legend's sample of a suppressed cell
        for r in (legend_row + len(legend) + 2,):
            info.cell(row=r, column=1).font = Font(bold=True)
            info.cell(row=r, column=2).font = Font(bold=True)
        for r in range(legend_row + 1, legend_row + 1 + len(legend)):
            info.cell(row=r, column=2).alignment = Alignment(wrap_text=True, vertical="top")
        if self.stamp:  # the About sheet is a sheet too: stamped like the others
            info.insert_rows(1)
            info.cell(row=1, column=1, value=self.stamp.upper()).font = Font(bold=True, color="FFFFFF")
            info.cell(row=1, column=1).fill = PatternFill("solid", fgColor="B3261E")
            info.oddHeader.center.text = self.stamp
        info.column_dimensions["A"].width = 28
        info.column_dimensions["B"].width = 90
        listed: list[tuple[str, str, str, str]] = []
        for key, b in self.tables.items():
            ws = wb.create_sheet(names[key])
            r0 = 1
            if self.stamp:
                _text_cell(ws.cell(row=1, column=1), self.stamp.upper()).font = Font(bold=True, color="FFFFFF")
                ws.cell(row=1, column=1).fill = PatternFill("solid", fgColor="B3261E")
                ws.oddHeader.center.text = self.stamp
                r0 = 2
            _text_cell(ws.cell(row=r0, column=1), b.title).font = Font(bold=True)
            cols = list(b.sheet_columns)
            label_cols = _label_columns(b, cols)
            widths: list[float] = []
            for j, c in enumerate(cols, start=1):
                head = _header(b, c)
                cell = _text_cell(ws.cell(row=r0 + 1, column=j), head)
                cell.font = Font(bold=True)
                cell.alignment = Alignment(wrap_text=True, vertical="bottom",
                                           horizontal="left" if c in label_cols else "right")
                widths.append(max([len(w) for w in head.split()] + [min(len(head), 24), 6]))
            for i in range(len(b.data)):
                for j, c in enumerate(cols, start=1):
                    v = b.data.iat[i, b.data.columns.get_loc(c)]
                    sup = bool(b.mask.iat[i, b.mask.columns.get_loc(c)])
                    cell = ws.cell(row=r0 + 2 + i, column=j)
                    if sup:
                        cell.value = None
                        cell.fill = grey
                        listed.append((names[key], _row_label(b, i, label_cols), _header(b, c),
                                       f"{get_column_letter(j)}{r0 + 2 + i}"))
                        continue
                    value, fmt = xlsx_value(b, i, c, v)
                    if isinstance(value, str):
                        _text_cell(cell, value)
                        if c not in label_cols:
                            cell.alignment = Alignment(horizontal="right")
                    else:
                        cell.value = value
                        if fmt:
                            cell.number_format = fmt
                    if value is not None:
                        widths[j - 1] = max(widths[j - 1], len(format_cell(b, i, c, v, False)))
            for j, w in enumerate(widths, start=1):
                ws.column_dimensions[get_column_letter(j)].width = min(60, w + 2)
            ws.freeze_panes = ws.cell(row=r0 + 2, column=min(len(label_cols), 3) + 1)
        ws = wb.create_sheet(SUPPRESSED_SHEET)
        r0 = 1
        if self.stamp:
            _text_cell(ws.cell(row=1, column=1), self.stamp.upper()).font = Font(bold=True, color="FFFFFF")
            ws.cell(row=1, column=1).fill = PatternFill("solid", fgColor="B3261E")
            ws.oddHeader.center.text = self.stamp
            r0 = 2
        head = ["Sheet", "Row", "Column", "Cell"]
        for j, h in enumerate(head, start=1):
            _text_cell(ws.cell(row=r0, column=j), h).font = Font(bold=True)
        if not listed:
            _text_cell(ws.cell(row=r0 + 1, column=1), "No cell is suppressed." if self.suppressed
                       else "Suppression is OFF: small counts are shown.")
        for i, rec in enumerate(listed, start=r0 + 1):
            for j, v in enumerate(rec, start=1):
                _text_cell(ws.cell(row=i, column=j), v)
        for j, h in enumerate(head, start=1):
            w = max([len(h)] + [len(r[j - 1]) for r in listed])
            ws.column_dimensions[get_column_letter(j)].width = min(60, w + 2)
        ws.freeze_panes = ws.cell(row=r0 + 1, column=1)
        wb.properties.creator = "recoverystats"
        fixed = _dt.datetime(self.as_of.year, self.as_of.month, self.as_of.day)
        wb.properties.created = fixed
        wb.properties.modified = fixed  # openpyxl overwrites it with the clock; _normalise_zip fixes it
        wb.save(str(path))
        _normalise_zip(path, fixed)

    # -- save -------------------------------------------------------------------------
    def save(self, directory: str | Path, *, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> Path:
        """Write the report into ``directory`` (scanned first; fails closed).

        Writes ``report.html``, ``report.docx``, ``tables.xlsx``, ``figures/<key>.png|svg``,
        ``results.json`` and the marker file ``.recoverystats-report`` into a temporary
        sibling folder, runs :func:`recoverystats.privacy.scan` on it, and renames it to
        ``directory`` only when the scan is clean. On any error, SIGINT or SIGTERM the
        temporary folder is removed and ``directory`` is left as it was. Temporary folders
        of earlier saves killed outright (SIGKILL) are removed first.

        Parameters
        ----------
        directory
            The output folder. It must not exist or be empty, unless ``overwrite``. It
            must not hold, equal or lie inside any input file or folder of the program.
        overwrite
            Replace an existing report folder (atomically, after the scan). Only a folder
            written by an earlier ``save`` (with its marker file and no other files) is
            replaced; anything else is refused (see :func:`check_out_dir`).
        progress
            Optional callback receiving each stage name.

        Raises
        ------
        DisclosureError
            The scan found identifiers, birth dates or small counts in the output.
        InvalidParameterError
            ``directory`` may not be written (see :func:`check_out_dir`), or a label is
            longer than :data:`MAX_LABEL_CHARS` (see :func:`check_label_lengths`).
        """
        from recoverystats.privacy import scan

        say = progress or (lambda stage: None)
        dest = check_out_dir(directory, overwrite=overwrite, sources=_program_sources(self.prog))
        check_label_lengths(self)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sweep_partial_folders(dest.parent)
        # mkdir (not mkdtemp) so the folder gets the user's usual permissions (umask)
        tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        lock = None
        try:
            with _terminate_cleanly():
                lock = _hold_partial_lock(tmp)
                written = self._write_files(tmp, say)
                _write_marker(tmp, written)
                say("privacy scan")
                if self.prog is not None:
                    result = scan(tmp, self.prog, min_cell=self.min_cell if self.suppressed else None,
                                  previous=self.previous)
                    if not result.ok:
                        lines = [f"{r.kind}: {r.file}{'!' + r.member if r.member else ''}: {r.detail}"
                                 for r in result.findings.itertuples(index=False)]
                        raise DisclosureError(
                            f"the privacy scan of the report found {len(lines)} problem(s); nothing was "
                            f"written to {str(dest)!r}:\n  " + "\n  ".join(lines[:30]), result.findings)
                say("publish")
                if dest.exists():
                    # re-checked: the folder may have changed while the report was written
                    check_out_dir(dest, overwrite=overwrite, sources=_program_sources(self.prog))
                if dest.exists() and not any(dest.iterdir()):
                    dest.rmdir()  # an empty folder: nothing to keep until the rename
                if dest.exists():
                    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
                    dest.rename(old)
                    try:
                        tmp.rename(dest)
                    except OSError:  # pragma: no cover - put the old folder back
                        old.rename(dest)
                        raise
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    tmp.rename(dest)
                (dest / PARTIAL_LOCK).unlink(missing_ok=True)  # kept until now: a killed save stays sweepable
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            if lock is not None:
                lock.close()
        return dest

    def _write_files(self, tmp: Path, say: Callable[[str], None]) -> list[str]:
        """Write every output into ``tmp``; the relative paths written, in order."""
        figs = tmp / "figures"
        figs.mkdir()
        written: list[str] = []
        say("write figures")
        for f in self.figures:
            (figs / f"{f.key}.png").write_bytes(f.png)
            (figs / f"{f.key}.svg").write_text(_svg_file(f), encoding="utf-8")
            written += [f"figures/{f.key}.png", f"figures/{f.key}.svg"]
        say("write html")
        (tmp / "report.html").write_text(self.to_html(), encoding="utf-8")
        say("write docx")
        self.to_docx(tmp / "report.docx")
        say("write xlsx")
        self.to_xlsx(tmp / "tables.xlsx")
        say("write results.json")
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        doc = self.to_json_dict(generated_at=now)
        (tmp / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                                          encoding="utf-8")
        return written + ["report.html", "report.docx", "tables.xlsx", "results.json"]


# ---------------------------------------------------------------------------------------
# the output folder: what may be replaced, stale temporary folders, signals
# ---------------------------------------------------------------------------------------
def _program_sources(prog: Any) -> list[Path]:
    """The input files of a loaded program (``prog.sources``), the mapping file included."""
    sources = getattr(prog, "sources", None)
    if sources is None or not len(sources) or "path" not in sources:
        return []
    return [Path(str(x)) for x in sources["path"].dropna()]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out_dir(directory: str | Path, *, overwrite: bool = False,
                  sources: Iterable[str | Path] = ()) -> Path:
    """Check that a report may be written to ``directory``, before any work is done.

    The rules (the command line applies them before loading the data, and
    :meth:`Report.save` again before and just before replacing anything):

    - ``directory`` must not be a file;
    - it must not equal, hold or lie inside any of ``sources`` (input files, the mapping
      file, and the folders holding them): a report never replaces or mixes with the data;
    - an existing non-empty folder is replaced only with ``overwrite`` and only when an
      earlier report wrote it: it carries the marker file :data:`MARKER` and holds no file
      the marker does not list (a note added to the folder is never deleted).

    Parameters
    ----------
    directory
        The output folder.
    overwrite
        Whether an existing report folder may be replaced.
    sources
        Input files and folders of the program (a folder given as the source, the mapping
        file, every data file); the folder of each file counts too.

    Returns
    -------
    Path
        ``directory`` as a ``Path``.

    Raises
    ------
    InvalidParameterError
        Any rule is broken; the message says which and how to fix it.
    """
    dest = Path(directory)
    shown = str(dest)
    if dest.exists() and not dest.is_dir():
        raise InvalidParameterError(f"out dir: {shown!r} is a file; pass a folder for the report.")
    target = dest.resolve()
    for src in sources:
        sp = Path(src).resolve()
        # a folder counts as itself; a file with the folder that holds it (a source that does not
        # exist yet is reported by the loader, not mistaken for a file here)
        folders = [sp] if sp.is_dir() or not sp.exists() else [sp.parent, sp]
        for f in folders:
            if _inside(f, target):
                raise InvalidParameterError(
                    f"out dir: {shown!r} {'is' if f == target else 'holds'} the program's input "
                    f"{'folder' if f.is_dir() else 'file'} {str(f)!r}; a report is never written over its data. "
                    "Choose a folder outside the program's exports (e.g. reports/2026Q3).")
            if _inside(target, f):
                raise InvalidParameterError(
                    f"out dir: {shown!r} lies inside the program's input folder {str(f)!r}; a report is never "
                    "written among its data. Choose a folder outside the program's exports (e.g. reports/2026Q3).")
    if not dest.exists() or not any(dest.iterdir()):
        return dest
    if not overwrite:
        raise InvalidParameterError(
            f"out dir: {shown!r} already exists and is not empty; choose a new folder or pass "
            f"{param('overwrite', True)} to replace an earlier report."
        )
    listed = _read_marker(dest)
    if listed is None:
        raise InvalidParameterError(
            f"out dir: {shown!r} was not written by recoverystats report (it has no valid {MARKER} marker "
            f"file), so {param('overwrite', True)} will not replace it. Choose a new folder, or empty it yourself."
        )
    allowed = set(listed) | {MARKER, PARTIAL_LOCK, "figures"}
    others = sorted(str(p.relative_to(dest)).replace(os.sep, "/") for p in dest.rglob("*"))
    others = [p for p in others if p not in allowed]
    if others:
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        raise InvalidParameterError(
            f"out dir: {shown!r} holds files an earlier report did not write ({', '.join(others[:5])}{more}), "
            f"so {param('overwrite', True)} will not replace it. Move them out, or choose a new folder."
        )
    return dest


def _write_marker(folder: Path, written: list[str]) -> None:
    import recoverystats

    doc = {"tool": "recoverystats report", "version": recoverystats.__version__, "files": sorted(written)}
    (folder / MARKER).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def _read_marker(folder: Path) -> list[str] | None:
    """The files listed by a report folder's marker; None when it has no valid marker."""
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != "recoverystats report":
        return None
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


class _Lock:
    """An open lock file holding an exclusive ``flock`` (POSIX); a plain open file elsewhere."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def close(self) -> None:
        self.fh.close()


def _hold_partial_lock(tmp: Path) -> _Lock:
    """Create ``tmp/.recoverystats-partial``, lock it, then write a line into it.

    The line is written after the lock is taken, so a sweeper that finds the file empty
    knows its owner is still starting and leaves it alone. (No pid: the file is scanned
    with the outputs, and a number could match an identifier.)
    """
    fh = open(tmp / PARTIAL_LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole save
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; see sweep_partial_folders
        pass
    else:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    fh.write("locked by a running recoverystats report save\n")
    fh.flush()
    return _Lock(fh)


#: Without flock (Windows), a temporary folder is taken as abandoned after this many seconds.
STALE_AFTER_SECONDS = 24 * 3600


def _is_abandoned(lock_file: Path) -> bool:
    try:
        if lock_file.stat().st_size == 0:
            return False  # its owner is between creating and locking it
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import time

        return time.time() - lock_file.stat().st_mtime > STALE_AFTER_SECONDS
    except OSError:
        return False
    try:
        with open(lock_file, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a running save holds it
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return True
    except OSError:
        return False


def sweep_partial_folders(parent: str | Path) -> list[Path]:
    """Remove temporary folders that killed saves left in ``parent``; the folders removed.

    A folder is removed only when it is this tool's: named ``.<name>.partial-<hex>``,
    holding the lock file ``.recoverystats-partial`` of the save that made it, and that lock is not held (POSIX ``flock``: the lock dies with its process, whatever
    killed it; without flock, when the lock file is older than
    :data:`STALE_AFTER_SECONDS`). ``.<name>.old-<hex>`` folders (an earlier report being
    replaced when the process died) are removed when they carry the report marker and the
    new ``<name>`` report is in place.
    """
    parent = Path(parent)
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = re.fullmatch(r"\.(.+)\.(partial-[0-9a-f]{12}|old-[0-9a-f]{8})", p.name)
        if not m or not p.is_dir() or p.is_symlink():
            continue
        if m.group(2).startswith("partial"):
            stale = (p / PARTIAL_LOCK).is_file() and _is_abandoned(p / PARTIAL_LOCK)
        else:
            stale = _read_marker(p) is not None and _read_marker(parent / m.group(1)) is not None
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class SaveInterrupted(SystemExit):
    """SIGTERM arrived during :meth:`Report.save`: the temporary folder was removed.

    A ``SystemExit`` with code 143 (128 + SIGTERM), so an uncaught one ends the program
    the way SIGTERM would have, after the clean-up.
    """


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into :class:`SaveInterrupted` while the block runs (main thread only,
    and only when SIGTERM has its default action), so the clean-up code runs as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SaveInterrupted(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ---------------------------------------------------------------------------------------
# text cells, deterministic zips, label lengths
# ---------------------------------------------------------------------------------------
def _text_cell(cell: Any, value: Any) -> Any:
    """Write ``value`` to an openpyxl cell as text, never as a formula.

    openpyxl stores any string starting with ``=`` as a live formula; here every string is
    a text cell (``t="inlineStr"``), and one that a spreadsheet would take for a formula
    when edited (``= + - @``, tab, CR, LF: OWASP CSV-injection guidance) also gets Excel's
    quote prefix, so re-entering the cell keeps it text. ``None`` leaves the cell empty.
    """
    if value is None:
        cell.value = None
        return cell
    text = str(value)
    cell.value = text
    cell.data_type = "s"
    if text.startswith(FORMULA_START):
        cell.quotePrefix = True
    return cell


def _normalise_zip(path: str | Path, when: _dt.datetime) -> None:
    """Rewrite an Office zip (.docx/.xlsx) byte-for-byte reproducibly.

    Every member gets the time ``when`` (the cut-off date, not the clock), the same
    permissions and deflate level, ``[Content_Types].xml`` first and the rest in name order;
    ``dcterms:created``/``dcterms:modified`` in ``docProps/core.xml`` are set to ``when``
    (openpyxl writes the clock there on save). Hand-written: neither python-docx nor openpyxl
    has an option for reproducible output.
    """
    path = Path(path)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    date_time = (max(1980, when.year), when.month, when.day, 0, 0, 0)
    with zipfile.ZipFile(path) as zin:
        members = [(i.filename, zin.read(i)) for i in zin.infolist()]
    members.sort(key=lambda m: (m[0] != "[Content_Types].xml", m[0]))
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zout:
        for name, data in members:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)",
                              lambda m: m.group(1) + stamp.encode() + m.group(3), data)
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    os.replace(tmp, path)


def check_label_lengths(report: Report, *, limit: int = MAX_LABEL_CHARS) -> None:
    """Refuse a report whose outputs would carry a label longer than ``limit`` characters.

    Checked: the report title and program name, section, table and figure titles, column
    headers and every text cell of every table (site, group and level names come through
    these). Refused rather than truncated: two long labels cut to the same prefix would be
    merged in the reader's eyes. The message names the table, column and row, and the
    length, but not the label itself (it may be any cell of the input).

    Raises
    ------
    InvalidParameterError
        A label is longer than ``limit``.
    """
    def refuse(where: str, n: int) -> None:
        raise InvalidParameterError(
            f"label too long: {where} is {n:,} characters; outputs allow at most {limit} "
            f"(MAX_LABEL_CHARS). Shorten or recode the value in the program's data or the report "
            "config (e.g. recode long site names to short ones when loading) and run again."
        )

    for where, text in (("the report title", report.title), ("the program name", report.program)):
        if len(text or "") > limit:
            refuse(where, len(text))
    for sec in report.sections:
        if len(sec.title) > limit:
            refuse(f"the title of section {sec.key!r}", len(sec.title))
        for b in sec.blocks:
            if isinstance(b, FigureBlock) and len(b.title) > limit:
                refuse(f"the title of figure {b.key!r}", len(b.title))
    for key, b in report.tables.items():
        if len(b.title) > limit:
            refuse(f"the title of table {key!r}", len(b.title))
        for c in b.data.columns:
            h = _header(b, c)
            if len(h) > limit:
                refuse(f"a column header of table {key!r}", len(h))
            col = b.data[c]
            if col.dtype.kind in "biufcmM":
                continue
            lengths = col.map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
            if len(lengths) and lengths.max() > limit:
                i = int(np.argmax(lengths))
                refuse(f"table {key!r}, column {str(c)!r}, row {i + 1}", int(lengths[i]))


# ---------------------------------------------------------------------------------------
# DOCX layout: tables that fit the page, landscape pages for wide ones
# ---------------------------------------------------------------------------------------
#: usable text width (inches) of a US-letter page with 0.8" side margins
PORTRAIT_WIDTH = 8.5 - 1.6
LANDSCAPE_WIDTH = 11.0 - 1.6
_CELL_PAD = 0.18  # cell margins left + right (Word: 0.08" each) and borders


@dataclass(frozen=True)
class DocxTableLayout:
    """Column widths (inches), font size (pt) and page orientation of one Word table."""

    widths: list[float]
    font_pt: float
    landscape: bool
    #: narrow cell margins (:data:`TIGHT_MARGIN`), so a wide table stays on a portrait page
    tight: bool = False

    @property
    def total(self) -> float:
        return float(sum(self.widths))


@functools.lru_cache(maxsize=20000)
def _text_inches(text: str, pt: float, bold: bool = False) -> float:
    """Printed width of ``text`` in DejaVu Sans (matplotlib's font, and the wide fallback a
    viewer without Calibri uses): a safe upper bound for Calibri, which is narrower."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if not text:
        return 0.0
    if "t2p" not in _TEXT_TO_PATH:
        _TEXT_TO_PATH["t2p"] = TextToPath()
    prop = FontProperties(family="DejaVu Sans", size=pt, weight="bold" if bold else "normal")
    w, _, _ = _TEXT_TO_PATH["t2p"].get_text_width_height_descent(text, prop, ismath=False)
    return float(w) / 72.0


_TEXT_TO_PATH: dict[str, Any] = {}


def docx_table_layout(headers: list[str], rows: list[list[str]], *, lead: int = 1) -> DocxTableLayout:
    """Widths that fit the page: every number column as wide as its widest value and the longest
    word of its header (so nothing breaks inside a word), label columns wrapping at spaces.

    8 pt on a portrait page when it fits; else 7 pt; else 7 pt with narrow cell margins
    (a short wide table on a page of its own would leave most of a landscape page empty);
    else a landscape page (8 pt, then 7 pt, then narrow margins); as a last resort the
    label columns wrap harder and every column shrinks in proportion.
    """
    def natural(pt: float, pad: float) -> tuple[list[float], list[float]]:
        need, least = [], []
        for j, h in enumerate(headers):
            cells = [r[j] for r in rows]
            word = max((_text_inches(w, pt, bold=True) for w in str(h).split()), default=0.0)
            widest = max((_text_inches(c, pt) for c in cells), default=0.0)
            if j < lead:  # labels wrap at spaces: at most ~2.2", at least their longest word
                bold = j == 0  # the table style sets the first column in bold
                widest = max((_text_inches(c, pt, bold) for c in cells), default=0.0)
                longest_word = max((_text_inches(w, pt, bold) for c in cells for w in c.split()), default=0.0)
                full = max(max(word, longest_word) + pad,
                           min(max(widest, _text_inches(str(h), pt, True)) + pad, 2.2))
                need.append(full)
                # wrapping harder is fine down to ~1.3" (two or three short lines), not below
                least.append(max(max(word, longest_word) + pad, min(full, 1.3)))
            else:
                w = max(word, widest) + pad
                need.append(w)
                least.append(w)
        return need, least

    tight_pad = 2 * TIGHT_MARGIN + 0.02  # narrow margins and the borders
    for landscape, usable in ((False, PORTRAIT_WIDTH), (True, LANDSCAPE_WIDTH)):
        for pt, tight in ((8.0, False), (7.0, False), (7.0, True)):
            need, least = natural(pt, tight_pad if tight else _CELL_PAD)
            if sum(need) <= usable:
                return DocxTableLayout(_spread(need, usable, lead), pt, landscape, tight)
            if sum(least) <= usable:  # labels wrap a little more
                extra = usable - sum(least)
                room = [n - m for n, m in zip(need, least, strict=True)]
                share = extra / sum(room) if sum(room) else 0.0
                return DocxTableLayout([m + r * share for m, r in zip(least, room, strict=True)], pt, landscape,
                                       tight)
    need, _ = natural(7.0, tight_pad)
    scale = LANDSCAPE_WIDTH / sum(need)
    return DocxTableLayout([w * scale for w in need], 7.0, True, True)


def _spread(need: list[float], usable: float, lead: int) -> list[float]:
    """Widen a table that fits to the text width (tables narrower than half the width stay compact)."""
    total = sum(need)
    target = usable if total > usable * 0.5 or len(need) > 3 else max(total, usable * 0.6)
    extra = target - total
    if extra <= 0:
        return need
    # the label columns take half the extra room, the number columns share the rest
    k = len(need) - lead
    out = list(need)
    for j in range(len(need)):
        if j < lead:
            out[j] += extra * (0.5 if k else 1.0) / lead
        else:
            out[j] += extra * 0.5 / k
    return out


#: A figure no taller than this (inches) may sit on a landscape page (8.5" less margins and caption).
LANDSCAPE_FIGURE_HEIGHT = 5.6
#: Cell margin (inches, each side) of a table set tight to stay on a portrait page.
TIGHT_MARGIN = 0.03


@dataclass
class _DocxItem:
    """One item of the Word document: a section heading, text, a table or a figure.

    ``need`` is True (landscape), False (portrait) or None (either); ``landscape`` is
    the orientation chosen; ``table`` holds a table's display frame and layout.
    """

    kind: str
    block: Any
    need: bool | None
    table: tuple[pd.DataFrame, DocxTableLayout] | None = None
    landscape: bool = False


def _cell_margins(table: Any, inches: float) -> None:
    """Set the left/right cell margins of a Word table (``w:tblCellMar``)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tbl_pr = table._tbl.tblPr
    mar = OxmlElement("w:tblCellMar")
    for side in ("left", "right"):
        el = OxmlElement(f"w:{side}")
        el.set(qn("w:w"), str(round(inches * 1440)))
        el.set(qn("w:type"), "dxa")
        mar.append(el)
    # schema order: tblCellMar comes before tblLook (Word refuses elements out of order)
    look = tbl_pr.find(qn("w:tblLook"))
    if look is not None:
        look.addprevious(mar)
    else:
        tbl_pr.append(mar)


def _repeat_header_row(table: Any) -> None:
    """Mark the first row as a header repeated on every page the table runs onto."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


class _Pages:
    """Switches the Word document between portrait and landscape sections as needed."""

    def __init__(self, document: Any) -> None:
        self.d = document
        self.landscape = False

    def orient(self, landscape: bool) -> None:
        from docx.enum.section import WD_ORIENT, WD_SECTION

        if landscape == self.landscape:
            return
        prev = self.d.sections[-1]
        sec = self.d.add_section(WD_SECTION.NEW_PAGE)
        sec.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
        long, short = max(prev.page_width, prev.page_height), min(prev.page_width, prev.page_height)
        sec.page_width, sec.page_height = (long, short) if landscape else (short, long)
        sec.left_margin = sec.right_margin = prev.left_margin
        sec.top_margin, sec.bottom_margin = prev.top_margin, prev.bottom_margin
        self.landscape = landscape


def _sheet_names(tables: Mapping[str, TableBlock]) -> dict[str, str]:
    out: dict[str, str] = {}
    used = {"about", SUPPRESSED_SHEET.lower()}
    for key, b in tables.items():
        base = re.sub(r"[\[\]:*?/\\]", " ", b.sheet or key).strip()[:31] or key[:31]
        name, k = base, 2
        while name.lower() in used:
            suffix = f" {k}"
            name = base[: 31 - len(suffix)] + suffix
            k += 1
        used.add(name.lower())
        out[key] = name
    return out


def _svg_inline(fig: FigureBlock) -> str:
    """SVG for inline HTML: unique ids per figure (several SVGs share one document)."""
    svg = fig.svg
    ids = set(re.findall(r'id="([^"]+)"', svg))
    for i in sorted(ids, key=len, reverse=True):
        svg = re.sub(rf'(id="|url\(#|href="#){re.escape(i)}(["\)])', rf"\g<1>{fig.key}-{i}\g<2>", svg)
    return svg


def _svg_file(fig: FigureBlock) -> str:
    return '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + fig.svg
