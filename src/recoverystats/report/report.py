"""The ``Report`` object and its writers: HTML, DOCX, XLSX, figures and results.json.

``Report.save(dir)`` writes everything into a temporary folder next to ``dir``, runs the
privacy scan on it (identifiers, birth dates, small counts; inside the .docx and .xlsx
too), and only when the scan is clean moves the folder into place with a rename. A
failure at any point removes the temporary folder, so a half-written or unscanned report
never appears at ``dir``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import html as _html
import io
import json
import math
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError, RecoveryStatsError
from recoverystats.report.config import ReportConfig
from recoverystats.report.model import FigureBlock, Section, TableBlock, TextBlock

__all__ = ["Report", "DisclosureError", "package_versions", "STAMP"]

#: Tables with this many columns get the compact print style (``rs-wide``) in the HTML.
WIDE_COLUMNS = 12
#: The stamp on every page and sheet of an unsuppressed report.
STAMP = "contains small cells — not for release"
_TEMPLATES = Path(__file__).with_name("templates")


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
        return f"{v * 100:+.1f} pp" if kind == "rate" else f"{v:+,.0f}"
    if column == "change_pp":
        return f"{float(value) * 100:+.1f} pp"
    if column in block.percent_columns:
        v = float(value)
        return f"{v * 100:.1f}%"
    if column in block.privacy.get("count_columns", ()) or column in block.coalesce:
        return f"{int(round(float(value))):,}"
    if isinstance(value, (float, np.floating)) and column in ("estimate", "ci_lower", "ci_upper", "smd", "statistic"):
        return format_value(float(value), column, 2 if column != "smd" else 3)
    return format_value(value, column, 3)


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

    def __repr__(self) -> str:
        return (f"Report({self.title!r}, quarter={self.quarter}, as_of={self.as_of.date()}, "
                f"sections={len(self.sections)}, tables={len(self.tables)}, "
                f"suppression={f'on (min_cell={self.min_cell})' if self.suppressed else 'OFF'})")

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
                                             css_class=f"rs-table rs-lead-{_lead_columns(b)}"
                                             + (" rs-wide" if len(disp.columns) >= WIDE_COLUMNS else ""))
                    blocks.append({"kind": "table", "html": html})
                elif isinstance(b, FigureBlock):
                    blocks.append({"kind": "figure", "key": b.key, "title": b.title, "svg": _svg_inline(b)})
            sections.append({"key": s.key, "title": s.title, "blocks": blocks})
        return tmpl.render(
            title=self.title, program=self.program, quarter=self.quarter, as_of=self.as_of.date().isoformat(),
            sections=sections, css=(_TEMPLATES / "report.css").read_text(encoding="utf-8"), stamp=self.stamp,
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
        figures = [{"key": f.key, "title": f.title, "png": f"figures/{f.key}.png", "svg": f"figures/{f.key}.svg"}
                   for f in self.figures]
        sections = [{"key": s.key, "title": s.title,
                     "tables": [b.key for b in s.blocks if isinstance(b, TableBlock)],
                     "figures": [b.key for b in s.blocks if isinstance(b, FigureBlock)]} for s in self.sections]
        return {
            "report": {"title": self.title, "program": self.program, "quarter": self.quarter,
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
        if self.stamp:
            hp = sec.header.paragraphs[0]
            run = hp.add_run(self.stamp.upper())
            run.bold = True
            run.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
        fp = sec.footer.paragraphs[0]
        fp.add_run(f"{self.title} · {self.quarter} · data to {self.as_of.date().isoformat()}").font.size = Pt(8)
        d.add_heading(self.title, level=0)
        if self.program:
            d.add_paragraph(self.program)
        d.add_paragraph(f"Quarter {self.quarter} · data to {self.as_of.date().isoformat()} · "
                        + (f"counts below {self.min_cell} suppressed (*)" if self.suppressed
                           else "SMALL CELLS NOT SUPPRESSED — NOT FOR RELEASE"))
        page = _Pages(d)
        for s in self.sections:
            page.orient(False)
            d.add_heading(s.title, level=1)
            for b in s.blocks:
                if isinstance(b, TextBlock):
                    page.orient(False)
                    if b.heading:
                        d.add_heading(b.heading, level=2)
                    for p in b.paragraphs:
                        if p:
                            d.add_paragraph(p)
                    for x in b.bullets:
                        d.add_paragraph(x, style="List Bullet")
                elif isinstance(b, TableBlock):
                    if not b.show_in_document:
                        continue
                    disp = display_frame(b)
                    headers = [_header(b, c) for c in disp.columns]
                    lead = _lead_columns(b)
                    layout = docx_table_layout(headers, [list(map(str, r)) for r in disp.itertuples(index=False)],
                                               lead=lead)
                    page.orient(layout.landscape)
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
                    page.orient(False)
                    # as wide as the text, but never taller than most of a page (tall forest plots)
                    width = min(6.2, 7.6 * b.aspect) if b.aspect > 0 else 6.2
                    d.add_picture(io.BytesIO(b.png), width=Inches(width))
                    d.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
                    d.add_paragraph(b.title).runs[0].italic = True
        page.orient(False)
        d.add_paragraph(f"* suppressed: a count below {self.min_cell}, or a cell suppressed so that a small count "
                        "cannot be worked out from totals; percentages and intervals resting on a suppressed count "
                        "are suppressed too. — = not available.")
        d.save(str(path))

    # -- XLSX --------------------------------------------------------------------------
    def to_xlsx(self, path: str | Path) -> None:
        """One sheet per table: numbers as numbers, suppressed cells as '*', stamp when unsuppressed."""
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font, PatternFill

        wb = Workbook()
        wb.remove(wb.active)
        names = _sheet_names(self.tables)
        info = wb.create_sheet("About")
        about = [[self.title], [self.program], [f"Quarter {self.quarter}, data to {self.as_of.date().isoformat()}"],
                 [f"Counts below {self.min_cell} suppressed and shown as *" if self.suppressed else STAMP.upper()],
                 [], ["Sheet", "Table"]]
        for key, b in self.tables.items():
            about.append([names[key], b.title])
        for r in about:
            info.append(r)
        info["A1"].font = Font(bold=True, size=13)
        if self.stamp:  # the About sheet is a sheet too: stamped like the others
            info.insert_rows(1)
            info.cell(row=1, column=1, value=self.stamp.upper()).font = Font(bold=True, color="FFFFFF")
            info.cell(row=1, column=1).fill = PatternFill("solid", fgColor="B3261E")
            info.oddHeader.center.text = self.stamp
        info.column_dimensions["A"].width = 28
        info.column_dimensions["B"].width = 80
        for key, b in self.tables.items():
            ws = wb.create_sheet(names[key])
            r0 = 1
            if self.stamp:
                ws.cell(row=1, column=1, value=self.stamp.upper()).font = Font(bold=True, color="FFFFFF")
                ws.cell(row=1, column=1).fill = PatternFill("solid", fgColor="B3261E")
                ws.oddHeader.center.text = self.stamp
                r0 = 2
            ws.cell(row=r0, column=1, value=b.title).font = Font(bold=True)
            cols = list(b.sheet_columns)
            for j, c in enumerate(cols, start=1):
                cell = ws.cell(row=r0 + 1, column=j, value=_header(b, c))
                cell.font = Font(bold=True)
                cell.alignment = Alignment(wrap_text=True, vertical="bottom")
                ws.column_dimensions[cell.column_letter].width = max(10, min(40, len(str(cell.value)) + 2))
            for i in range(len(b.data)):
                for j, c in enumerate(cols, start=1):
                    v = b.data.iat[i, b.data.columns.get_loc(c)]
                    cell = ws.cell(row=r0 + 2 + i, column=j)
                    if bool(b.mask.iat[i, b.mask.columns.get_loc(c)]):
                        cell.value = "*"
                        cell.alignment = Alignment(horizontal="right")
                    elif _is_missing(v):
                        cell.value = None
                    elif isinstance(v, (bool, np.bool_)):
                        cell.value = bool(v)
                    elif isinstance(v, (int, np.integer)):
                        cell.value = int(v)
                    elif isinstance(v, (float, np.floating)):
                        cell.value = float(v)
                        if c in b.percent_columns:
                            cell.number_format = "0.0%"
                        elif c in b.privacy.get("count_columns", ()):
                            cell.number_format = "#,##0"
                    elif isinstance(v, pd.Timestamp):
                        cell.value = v.date().isoformat()
                    else:
                        cell.value = str(v)
            ws.freeze_panes = ws.cell(row=r0 + 2, column=1)
        wb.properties.creator = "recoverystats"
        fixed = _dt.datetime(self.as_of.year, self.as_of.month, self.as_of.day)
        wb.properties.created = fixed
        wb.properties.modified = fixed
        wb.save(str(path))

    # -- save -------------------------------------------------------------------------
    def save(self, directory: str | Path, *, overwrite: bool = False,
             progress: Callable[[str], None] | None = None) -> Path:
        """Write the report into ``directory`` (scanned first; fails closed).

        Writes ``report.html``, ``report.docx``, ``tables.xlsx``, ``figures/<key>.png|svg``
        and ``results.json`` into a temporary sibling folder, runs
        :func:`recoverystats.privacy.scan` on it, and renames it to ``directory`` only
        when the scan is clean. On any error the temporary folder is removed and
        ``directory`` is left as it was.

        Parameters
        ----------
        directory
            The output folder. It must not exist or be empty, unless ``overwrite``.
        overwrite
            Replace an existing non-empty ``directory`` (atomically, after the scan).
        progress
            Optional callback receiving each stage name.

        Raises
        ------
        DisclosureError
            The scan found identifiers, birth dates or small counts in the output.
        """
        from recoverystats.privacy import scan

        say = progress or (lambda stage: None)
        dest = Path(directory)
        if dest.exists() and not dest.is_dir():
            raise InvalidParameterError(f"out dir: {str(dest)!r} is a file; pass a folder for the report.")
        if dest.exists() and any(dest.iterdir()) and not overwrite:
            raise InvalidParameterError(
                f"out dir: {str(dest)!r} already exists and is not empty; choose a new folder or pass "
                "overwrite=True (--overwrite on the command line)."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        # mkdir (not mkdtemp) so the folder gets the user's usual permissions (umask)
        tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            figs = tmp / "figures"
            figs.mkdir()
            say("write figures")
            for f in self.figures:
                (figs / f"{f.key}.png").write_bytes(f.png)
                (figs / f"{f.key}.svg").write_text(_svg_file(f), encoding="utf-8")
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
            say("privacy scan")
            if self.prog is not None:
                result = scan(tmp, self.prog, min_cell=self.min_cell if self.suppressed else None)
                if not result.ok:
                    lines = [f"{r.kind}: {r.file}{'!' + r.member if r.member else ''}: {r.detail}"
                             for r in result.findings.itertuples(index=False)]
                    raise DisclosureError(
                        f"the privacy scan of the report found {len(lines)} problem(s); nothing was written "
                        f"to {str(dest)!r}:\n  " + "\n  ".join(lines[:30]), result.findings)
            say("publish")
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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


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

    8 pt on a portrait page when it fits; else 7 pt; else a landscape page (8 pt, then 7 pt);
    as a last resort the label columns wrap harder and every column shrinks in proportion.
    """
    def natural(pt: float) -> tuple[list[float], list[float]]:
        need, least = [], []
        for j, h in enumerate(headers):
            cells = [r[j] for r in rows]
            word = max((_text_inches(w, pt, bold=True) for w in str(h).split()), default=0.0)
            widest = max((_text_inches(c, pt) for c in cells), default=0.0)
            if j < lead:  # labels wrap at spaces: at most ~2.2", at least their longest word
                bold = j == 0  # the table style sets the first column in bold
                widest = max((_text_inches(c, pt, bold) for c in cells), default=0.0)
                longest_word = max((_text_inches(w, pt, bold) for c in cells for w in c.split()), default=0.0)
                full = max(max(word, longest_word) + _CELL_PAD,
                           min(max(widest, _text_inches(str(h), pt, True)) + _CELL_PAD, 2.2))
                need.append(full)
                # wrapping harder is fine down to ~1.3" (two or three short lines), not below
                least.append(max(max(word, longest_word) + _CELL_PAD, min(full, 1.3)))
            else:
                w = max(word, widest) + _CELL_PAD
                need.append(w)
                least.append(w)
        return need, least

    for landscape, usable in ((False, PORTRAIT_WIDTH), (True, LANDSCAPE_WIDTH)):
        for pt in (8.0, 7.0):
            need, least = natural(pt)
            if sum(need) <= usable:
                return DocxTableLayout(_spread(need, usable, lead), pt, landscape)
            if sum(least) <= usable:  # labels wrap a little more
                extra = usable - sum(least)
                room = [n - m for n, m in zip(need, least, strict=True)]
                share = extra / sum(room) if sum(room) else 0.0
                return DocxTableLayout([m + r * share for m, r in zip(least, room, strict=True)], pt, landscape)
    need, _ = natural(7.0)
    scale = LANDSCAPE_WIDTH / sum(need)
    return DocxTableLayout([w * scale for w in need], 7.0, True)


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
    used = {"about"}
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
