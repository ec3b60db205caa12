"""The quarterly report: sections, outputs, privacy (small cells, identifiers), determinism, CLI.

The report is built on simulated programs (``simulate_program``) and on ``data/sample``.
The privacy checks here are independent of ``recoverystats.privacy``: they rebuild the
linear structure of each published table from ``results.json`` and try every linear
recovery (rank test), and they search every byte of every output file (zip members of the
.docx and .xlsx included) for the input identifiers.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recoverystats.cli import main as cli_main
from recoverystats.datasets import simulate_program
from recoverystats.errors import InvalidParameterError
from recoverystats.io.program import ProgramData
from recoverystats.report import STAMP, DisclosureError, load_config, quarterly

MIN_CELL = 11
RANK_TOL = 1e-8  # numerical rank tolerance of the independent recovery checker
VALUE_TOL = 1e-6  # a recovered hidden value is compared after rounding at this tolerance
SECTIONS = ("summary", "key_numbers", "flow", "census", "retention", "outcomes", "table1", "adjusted", "survival",
            "followup", "limitations", "quality", "methods")
QUARTER = "2026Q3"  # the simulator's default cut-off (2026-09-30) ends this quarter


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim300():
    return simulate_program(300, seed=11)


@pytest.fixture(scope="module")
def prog300(sim300):
    return sim300.program()


@pytest.fixture(scope="module")
def saved300(prog300, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "q3"
    report = quarterly(prog300, quarter=QUARTER)
    report.save(out)
    return report, out


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory, program_with_small_site):
    """A program with a site of 5 participants (3 peer mentoring, 2 comparison)."""

    def missing_values(tables):
        # a few missing values: Table 1 then publishes "(with a value)"/"(missing)" counts
        p = tables["participants"]
        p["prior_incarcerations"] = p["prior_incarcerations"].astype("Float64")
        p.loc[p.index[10:14], "prior_incarcerations"] = pd.NA
        p.loc[p.index[20:23], "dual_diagnosis"] = pd.NA

    prog = program_with_small_site(360, 5, missing_values)
    out = tmp_path_factory.mktemp("tiny") / "report"
    quarterly(prog, quarter=QUARTER).save(out)
    return prog, out


# ---------------------------------------------------------------------------------------
# an independent small-cell checker working only from results.json
# ---------------------------------------------------------------------------------------
def _equations(rows: list[dict], priv: dict) -> tuple[np.ndarray, list, dict, np.ndarray]:
    """Linear relations of one published table, rebuilt from its privacy metadata.

    Returns (A, cells, index, visible_values): cells are ('pub', i, c) or ('hid', i, name).
    """
    counts = priv["count_columns"]
    m = priv.get("margins") or {}
    cells: list = []
    index: dict = {}

    def cell(key):
        if key not in index:
            index[key] = len(cells)
            cells.append(key)
        return index[key]

    eqs: list[dict[int, float]] = []
    for i in range(len(rows)):
        for c in counts:
            cell(("pub", i, c))
    total_row = m.get("total_row") or {}
    if total_row:
        col, lab = next(iter(total_row.items()))
        by = m.get("by") or []
        blocks: dict = {}
        for i, r in enumerate(rows):
            blocks.setdefault(tuple(r.get(b) for b in by), []).append(i)
        for members in blocks.values():
            tot = [i for i in members if str(rows[i].get(col)) == str(lab)]
            if not tot:
                continue
            parts = [i for i in members if i not in tot]
            for c in counts:
                eq = {index[("pub", i, c)]: 1.0 for i in parts}
                eq[index[("pub", tot[0], c)]] = -1.0
                eqs.append(eq)
    hidden = {f"{a}-{b}": {a: 1.0, b: -1.0} for a, b in (m.get("complements") or [])}
    hidden.update({k: dict(v) for k, v in (m.get("hidden") or {}).items()})
    for i in range(len(rows)):
        for name, combo in hidden.items():
            h = cell(("hid", i, name))
            eq = {h: 1.0}
            for c, coef in combo.items():
                j = index[("pub", i, c)]
                eq[j] = eq.get(j, 0.0) - float(coef)
            eqs.append(eq)
        for tcol, parts in (m.get("total_columns") or {}).items():
            eq = {}
            for p in parts:
                j = index[("pub", i, p)] if ("pub", i, p) in index else index[("hid", i, p)]
                eq[j] = eq.get(j, 0.0) + 1.0
            eq[index[("pub", i, tcol)]] = -1.0
            eqs.append(eq)
    A = np.zeros((len(eqs), len(cells)))
    for r, eq in enumerate(eqs):
        for j, v in eq.items():
            A[r, j] = v
    vals = np.full(len(cells), np.nan)
    for (kind, i, c), j in index.items():
        if kind == "pub" and rows[i].get(c) is not None:
            vals[j] = float(rows[i][c])
    return A, cells, index, vals


def leaks(doc: dict) -> list[str]:
    """Every small count a reader of results.json could see or work out (empty = safe)."""
    problems = []
    for key, t in doc["tables"].items():
        priv = t.get("privacy") or {}
        if not priv.get("count_columns"):
            continue
        rows = t["rows"]
        A, cells, index, vals = _equations(rows, priv)
        for (kind, i, c), j in index.items():
            if kind == "pub" and np.isfinite(vals[j]) and 1 <= vals[j] < MIN_CELL:
                problems.append(f"{key}: visible small count row {i} {c} = {vals[j]:g}")
        unknown = ~np.isfinite(vals)
        idx = list(np.flatnonzero(unknown))
        if not idx or not len(A):
            continue
        full = np.linalg.matrix_rank(A[:, idx], tol=RANK_TOL)
        known = ~unknown
        rhs = -A[:, known] @ vals[known]
        sol, *_ = np.linalg.lstsq(A[:, idx], rhs, rcond=None)
        suppressed = {(i, c) for i, c in t["suppressed_cells"]}
        for k, s in enumerate(idx):
            rest = idx[:k] + idx[k + 1:]
            r = np.linalg.matrix_rank(A[:, rest], tol=RANK_TOL) if rest else 0
            if r == full:
                continue  # not determined by any linear combination
            kind, i, c = cells[s]
            value = float(np.round(sol[k] / VALUE_TOL) * VALUE_TOL)
            if kind == "pub" and (i, c) in suppressed:
                problems.append(f"{key}: suppressed row {i} {c} recoverable (= {value:g})")
            elif kind == "hid" and 1 <= value < MIN_CELL:
                problems.append(f"{key}: hidden {c} of row {i} recoverable (= {value:g})")
        # dependent values of a suppressed count are suppressed too
        for dcol, srcs in priv.get("dependent_columns", {}).items():
            for i, row in enumerate(rows):
                if any((i, s) in suppressed for s in srcs) and row.get(dcol) is not None:
                    problems.append(f"{key}: {dcol} of row {i} shown although its count is suppressed")
    return problems


def _png_metadata(data: bytes) -> bytes:
    """Everything in a PNG except its compressed pixel data (IDAT), which is random bytes:
    a 4-character ID like 'M011' turns up in ~70 kB of deflate output by chance."""
    import struct

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind != b"IDAT":
            out.append(kind + data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return b"\n".join(out)


def _all_bytes(folder: Path):
    """(name, bytes) of every file and of every member of every zip (.docx/.xlsx); PNG
    images contribute every chunk but the pixel data."""
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        yield str(p.relative_to(folder)), _png_metadata(data) if p.suffix == ".png" else data
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                for info in zf.infolist():
                    member = zf.read(info)
                    if info.filename.endswith(".png"):
                        member = _png_metadata(member)
                    yield f"{p.name}!{info.filename}", member


# ---------------------------------------------------------------------------------------
# structure of the outputs
# ---------------------------------------------------------------------------------------
def test_outputs_written(saved300):
    report, out = saved300
    names = {p.name for p in out.iterdir()}
    assert names == {"report.html", "report.docx", "tables.xlsx", "figures", "results.json", ".recoverystats-report"}
    figs = {p.name for p in (out / "figures").iterdir()}
    for f in report.figures:
        assert {f"{f.key}.png", f"{f.key}.svg"} <= figs
        assert (out / "figures" / f"{f.key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report.figures) >= 9  # flow, enrollment, retention, 2 p-charts, forest, 2 KM, follow-up
    assert not list(out.parent.glob(".*partial*"))  # no temporary folder left behind


def test_html_has_every_section_table_and_figure(saved300):
    report, out = saved300
    html = (out / "report.html").read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f'<section class="rs-section" id="{key}">' in html
    for f in report.figures:
        assert f'id="fig-{f.key}"' in html
    assert html.count("<svg") == len(report.figures)  # figures inline: one self-contained file
    for external in ('src="http', 'href="http', "<link", "@import", "url(http"):
        assert external not in html  # nothing loaded from elsewhere
    assert html.count('<table class="rs-table') == sum(
        1 for s in report.sections for b in s.blocks if hasattr(b, "mask") and b.show_in_document)
    assert "@media print" in html
    assert STAMP not in html


def test_docx_has_every_section_real_tables_and_figures(saved300):
    import docx

    report, out = saved300
    d = docx.Document(str(out / "report.docx"))
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings == [s.title for s in report.sections]
    n_tables = sum(1 for s in report.sections for b in s.blocks if hasattr(b, "mask") and b.show_in_document)
    assert len(d.tables) == n_tables
    assert len(d.inline_shapes) == len(report.figures)
    # real Word tables: the key-numbers table has a header row and one row per measure
    key = report.tables["key_numbers"]
    t = d.tables[0]
    assert len(t.rows) == len(key.data) + 1
    assert t.rows[0].cells[0].text == "Measure"


def _docx_tables_by_page(path):
    """(table, usable text width in inches, landscape) of every table of a .docx, from the
    section (page setup) each table is in."""
    import docx
    from docx.oxml.ns import qn

    d = docx.Document(str(path))
    body = d.element.body
    out, pending = [], []
    by_el = {t._tbl: t for t in d.tables}

    def close(sect):
        w = int(sect.find(qn("w:pgSz")).get(qn("w:w")))
        h = int(sect.find(qn("w:pgSz")).get(qn("w:h")))
        mar = sect.find(qn("w:pgMar"))
        usable = (w - int(mar.get(qn("w:left"))) - int(mar.get(qn("w:right")))) / 1440
        out.extend((t, usable, w > h) for t in pending)
        pending.clear()

    for el in body.iterchildren():
        if el.tag == qn("w:tbl"):
            pending.append(by_el[el])
        elif el.tag == qn("w:p"):
            sect = el.find(f"{qn('w:pPr')}/{qn('w:sectPr')}")
            if sect is not None:
                close(sect)
        elif el.tag == qn("w:sectPr"):
            close(el)
    return d, out


def test_docx_tables_fit_the_page_and_wide_ones_are_landscape(saved300):
    from recoverystats.report.report import _text_inches

    report, out = saved300
    d, tables = _docx_tables_by_page(out / "report.docx")
    assert len(tables) == len(d.tables)
    from docx.oxml.ns import qn

    for t, usable, _landscape in tables:
        widths = [c.width.inches for c in t.columns]
        assert sum(widths) <= usable + 0.01, (t.rows[0].cells[0].text, sum(widths), usable)
        size = t.rows[1].cells[0].paragraphs[0].runs[0].font.size.pt
        assert size >= 7
        mar = t._tbl.tblPr.find(qn("w:tblCellMar"))  # narrow cell margins: 0.03" a side
        pad = 0.1 if mar is None else 2 * int(mar.find(qn("w:left")).get(qn("w:w"))) / 1440 + 0.01
        for j, cell in enumerate(t.rows[0].cells):  # no header word is cut in the middle
            for word in cell.text.split():
                assert _text_inches(word, size, bold=True) <= widths[j] - pad, (cell.text, widths[j])
        for row in t.rows[1:]:  # nor a word of a label (the first column is set in bold)
            for j, cell in enumerate(row.cells[:2]):
                for word in cell.text.split():
                    assert _text_inches(word, size, bold=j == 0) <= widths[j] - pad, (cell.text, widths[j])
        assert t.rows[0]._tr.trPr is not None  # the header row repeats on every page
    # the at-risk tables (15 columns, 3 rows) stay on a portrait page with narrow cell margins
    # instead of a landscape page of their own that would be mostly empty
    at_risk = [(t, landscape) for t, _, landscape in tables if t.rows[0].cells[1].text.startswith("At risk")]
    assert at_risk and not any(landscape for _, landscape in at_risk)
    assert all(t._tbl.tblPr.find(qn("w:tblCellMar")) is not None for t, _ in at_risk)
    assert not tables[0][2]  # the key numbers stay on the first (portrait) page
    usable_h = 11 - 2  # letter, 1" top and bottom margins
    for shape in d.inline_shapes:  # figures fit the page (the tall forest plot too)
        assert shape.width.inches <= 8.5 - 1.6 + 1e-6 and shape.height.inches <= usable_h - 1


def test_html_wide_tables_fit_the_printed_page(saved300):
    from recoverystats.report.report import WIDE_COLUMNS

    report, out = saved300
    html = (out / "report.html").read_text(encoding="utf-8")
    css = html[html.index("@media print"):]
    assert ".rs-result { overflow: visible; }" in css and "table.rs-wide" in css
    wide = [b for s in report.sections for b in s.blocks
            if hasattr(b, "mask") and b.show_in_document and len(b.columns) >= WIDE_COLUMNS]
    assert {b.key for b in wide} >= {"km_relapse", "km_recid"}  # the at-risk tables (15 columns)
    # also narrower tables whose printed width would not fit a portrait page (Table 1's labels)
    assert wide and html.count(" rs-wide\"") > len(wide)
    # the stylesheet is inlined as is: an escaped quote would drop the font rule
    style = html[html.index("<style>"):html.index("</style>")]
    assert "&#34;" not in style and "&quot;" not in style and '"Segoe UI"' in style


def test_pchart_signal_reads_yes_or_no(saved300):
    from recoverystats.report.report import display_frame, format_cell

    report, _ = saved300
    for key in ("pchart_relapse", "pchart_rearrest"):
        b = report.tables[key]
        assert set(display_frame(b)["signal"]) <= {"yes", "no", "*", "—"}
        assert format_cell(b, 0, "signal", 0.0, False) == "no" and format_cell(b, 0, "signal", 1.0, False) == "yes"


def test_xlsx_one_sheet_per_table(saved300):
    from openpyxl import load_workbook

    report, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    wb = load_workbook(out / "tables.xlsx", read_only=True)
    assert wb.sheetnames == ["About", *[t["sheet"] for t in doc["tables"].values()], "Suppressed cells"]
    ws = wb[doc["tables"]["census_site"]["sheet"]]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == report.tables["census_site"].title
    assert rows[-1][0] == "Total" and rows[-1][-1] == 300  # numbers stay numbers
    wb.close()


def test_results_json_numbers_and_provenance(saved300, prog300):
    report, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["report"]["quarter"] == QUARTER and doc["report"]["as_of"] == "2026-09-30"
    assert doc["report"]["generated_at"].endswith("+00:00")
    prov = doc["provenance"]
    assert {"inputs", "config", "versions", "seed", "as_of", "min_cell"} <= set(prov)
    assert {"recoverystats", "numpy", "pandas", "statsmodels", "matplotlib"} <= set(prov["versions"])
    assert prov["config"]["retention_days"] == [30, 60, 90, 180]
    for key, t in doc["tables"].items():
        assert t["rows"], key
        assert t["measure"], key  # every table says what its numbers mean
    ret = doc["tables"]["retention"]
    assert ret["measure"]["numerator"] == "retained_<k>" and ret["measure"]["as_of"] == "2026-09-30"
    assert "still enrolled k days after enrollment" in ret["measure"]["definition"]
    # the published numbers are the analysis numbers (Total row = all enrolled by the cut-off)
    census = pd.DataFrame(doc["tables"]["census_site"]["rows"])
    assert census.loc[census["site"] == "Total", "n_total"].item() == len(prog300.participants)
    kn = {r["key"]: r for r in doc["key_numbers"]}
    assert kn["enrolled_to_date"]["this_count"] == len(prog300.participants)


RTOL = 1e-6  # independent implementations (statsmodels, lifelines) vs the report's numbers


def test_retention_numbers_match_an_independent_computation(saved300, prog300):
    from statsmodels.stats.proportion import proportion_confint

    import recoverystats as rs

    report, _ = saved300
    df = rs.retention(prog300, as_of="2026-09-30")
    d = df[df["eligible_90"].astype(bool)]
    n, x = len(d), int(d["retained_90"].sum())
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")  # R: binom.confint(x, n, methods="wilson")
    t = report.tables["retention"].data
    row = t[(t["days"] == 90) & (t["group"] == "Total")].iloc[0]
    assert row["n"] == n
    if not pd.isna(row["events"]):
        assert row["events"] == x
        np.testing.assert_allclose([row["estimate"], row["ci_lower"], row["ci_upper"]], [x / n, lo, hi], rtol=RTOL)


def test_survival_estimates_match_lifelines(saved300, prog300):
    from lifelines import KaplanMeierFitter

    import recoverystats as rs

    report, _ = saved300
    d = rs.relapse(prog300, window_days=None, as_of="2026-09-30")
    d = d[d["time_days"].notna()]
    t = report.tables["km_relapse"].data.set_index("group")
    checked = 0
    for g, sub in d.groupby("group"):
        kmf = KaplanMeierFitter().fit(sub["time_days"], sub["event"])
        for day in (90, 180):
            ours = t.loc[g, f"surv_{day}"]
            if pd.isna(ours):
                continue  # suppressed
            np.testing.assert_allclose(ours, kmf.survival_function_at_times(day).iloc[0], rtol=RTOL)
            checked += 1
        assert t.loc[g, "at_risk_0"] == len(sub)
    assert checked >= 2


def test_methods_appendix_uses_the_definitions_actually_used(saved300, prog300):
    import recoverystats as rs

    report, out = saved300
    html = (out / "report.html").read_text(encoding="utf-8")
    from markupsafe import escape

    # the prose states the windows in words; the settings table lists each parameter used
    assert "within 180 days of it" in html and "Retention at 30, 60, 90 and 180 days" in html
    settings = report.tables["analysis_settings"].data
    for meta in (rs.relapse(prog300, window_days=180).attrs["measure"],
                 rs.retention(prog300).attrs["measure"]):
        for k in meta["parameters"]:
            assert k in set(settings["setting"]), k
        assert str(escape(meta["title"])) in html


def test_no_input_identifier_or_birth_date_in_any_byte(saved300, prog300):
    _, out = saved300
    ids = set(prog300.participants["participant_id"]) | set(prog300.mentors["mentor_id"])
    births = prog300.participants["birth_date"].dropna()
    needles = {i.encode() for i in ids}
    needles |= {d.strftime(f).encode() for d in births for f in ("%Y-%m-%d", "%m/%d/%Y")}
    assert len(needles) > 300
    for name, data in _all_bytes(out):
        hits = [n for n in needles if n in data]
        assert not hits, f"{name} contains {hits[:3]}"


def test_scan_of_the_finished_report_is_clean(saved300, prog300):
    from recoverystats.privacy import scan

    _, out = saved300
    res = scan(out, prog300, min_cell=MIN_CELL)
    assert res.ok, res.findings
    assert any(f.startswith("report.docx!word/document.xml") for f in res.files_scanned)
    assert any(f.startswith("tables.xlsx!xl/worksheets/") for f in res.files_scanned)


def test_no_small_count_visible_or_recoverable(saved300):
    _, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert leaks(doc) == []
    assert sum(len(t["suppressed_cells"]) for t in doc["tables"].values()) > 0  # the checks had work to do


def test_leak_checker_can_fail(saved300):
    # un-suppress one suppressed cell in a copy: the checker must notice
    _, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    key = next(k for k, t in doc["tables"].items() if t["suppressed_cells"] and t["privacy"].get("margins", {}).get("total_row"))
    i, c = doc["tables"][key]["suppressed_cells"][0]
    doc["tables"][key]["rows"][i][c] = 5
    assert leaks(doc)


def test_site_of_five_leaves_no_small_count_recoverable(tiny_site):
    prog, out = tiny_site
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert leaks(doc) == []
    census = pd.DataFrame(doc["tables"]["census_site"]["rows"])
    tiny = census[census["site"] == "site_tiny"].iloc[0]
    assert tiny[["n_comparison", "n_peer_mentoring", "n_total"]].isna().all()
    # a complement was suppressed in the same column, so totals cannot give the 5 back
    assert census["n_total"].isna().sum() >= 2
    t1 = pd.DataFrame(doc["tables"]["table_one"]["rows"])
    miss = t1[(t1["variable"] == "prior_incarcerations") & (t1["level"] == "(missing)")]
    assert miss["n|Overall"].isna().all()  # 4 missing: suppressed
    # the spreadsheet leaves the row's cells empty (grey, see test_xlsx_*); the HTML shows stars
    from openpyxl import load_workbook

    wb = load_workbook(out / "tables.xlsx", read_only=True)
    ws = wb[doc["tables"]["census_site"]["sheet"]]
    row = next(r for r in ws.iter_rows(values_only=True) if r[0] == "Site tiny")  # the site's display label
    assert row[1:] == (None, None, None)
    wb.close()
    html = (out / "report.html").read_text(encoding="utf-8")
    seg = html[html.index("<td>Site tiny</td>"):]
    seg = seg[: seg.index("</tr>")]
    assert seg.count(">*<") == 3


def test_unsuppressed_report_is_stamped_everywhere(tmp_path):
    import docx
    from openpyxl import load_workbook

    out = tmp_path / "raw"
    prog = simulate_program(150, seed=2).program()
    report = quarterly(prog, quarter=QUARTER, suppress=False)
    report.save(out)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f'<div class="stamp" role="alert">{STAMP}</div>' in html
    d = docx.Document(str(out / "report.docx"))
    assert all(STAMP.upper() in s.header.paragraphs[0].text for s in d.sections)
    wb = load_workbook(out / "tables.xlsx", read_only=True)
    for ws in wb.worksheets:
        first = next(ws.iter_rows(values_only=True))
        assert STAMP.upper() in str(first[0]) or ws.title == "About"
    assert STAMP.upper() in [r[0] for r in wb["About"].iter_rows(values_only=True)]
    wb.close()
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["report"]["suppression"] is False and doc["report"]["stamp"] == STAMP
    assert all(not t["suppressed_cells"] for t in doc["tables"].values())
    assert leaks(doc)  # small cells are visible: that is what the stamp warns about
    # the scan (had it been asked to check small cells) reads the real report's sheets too
    from recoverystats.privacy import scan

    found = scan(out, prog, min_cell=MIN_CELL).findings
    assert {"results.json", "tables.xlsx"} <= set(found.loc[found["kind"] == "small_count", "file"])
    assert scan(out, prog, min_cell=None).ok


def test_determinism_same_inputs_same_numbers(saved300, prog300, tmp_path):
    from openpyxl import load_workbook

    _, out1 = saved300
    out2 = tmp_path / "again"
    quarterly(prog300, quarter=QUARTER).save(out2)
    a = json.loads((out1 / "results.json").read_text(encoding="utf-8"))
    b = json.loads((out2 / "results.json").read_text(encoding="utf-8"))
    assert a["report"].pop("generated_at") != "" and b["report"].pop("generated_at") != ""
    assert a == b

    def values(path):
        wb = load_workbook(path, read_only=True)
        v = {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
        wb.close()
        return v

    assert values(out1 / "tables.xlsx") == values(out2 / "tables.xlsx")
    for f in (out1 / "figures").glob("*.svg"):
        assert f.read_text(encoding="utf-8") == (out2 / "figures" / f.name).read_text(encoding="utf-8")


def test_fail_closed_when_the_scan_finds_an_identifier(saved300, prog300, tmp_path):
    import dataclasses

    pid = prog300.participants["participant_id"].iloc[7]
    report = dataclasses.replace(saved300[0], title=f"Report on {pid}")  # as if a config title leaked an id
    out = tmp_path / "leaky"
    with pytest.raises(DisclosureError, match=r"privacy scan of the report found \d+ problem\(s\); nothing was written") as ei:
        report.save(out)
    assert set(ei.value.findings["kind"]) == {"identifier"}
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too


def test_save_refuses_a_non_empty_folder_unless_overwrite(saved300, tmp_path):
    report, _ = saved300
    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="already exists and is not empty"):
        report.save(out)
    # overwrite replaces only an earlier report (tests/test_report_writer.py has the details)
    with pytest.raises(InvalidParameterError, match="was not written by recoverystats report"):
        report.save(out, overwrite=True)
    (out / "old.txt").unlink()
    report.save(out)
    report.save(out, overwrite=True)
    assert (out / "report.html").exists() and (out / ".recoverystats-report").exists()


def test_repr_html_previews_the_report(saved300):
    report, _ = saved300
    h = report._repr_html_()
    assert h.startswith("<iframe srcdoc=") and "Key numbers" in h
    assert "quarter=2026Q3" in repr(report)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quarter": "2026-3"}, r"quarter must look like 2026Q3 .*got '2026-3'"),
        ({"quarter": "2019Q1"}, r"quarter '2019Q1' ends 2019-03-31 before the first enrollment"),
        ({"quarter": "2026Q4"}, r"quarter '2026Q4' ends 2026-12-31, after the data cut-off 2026-09-30"),
        ({"min_cell": 0}, r"min_cell must be a whole number >= 1 .*got 0"),
        ({"config": {"groups": {"reference": "nobody"}}}, r"reference: 'nobody' is not a level of 'group'"),
        ({"config": {"groups": {"column": "arm"}}}, r"'arm' is not a participants column"),
    ],
)
def test_quarterly_parameter_errors(prog300, kwargs, match):
    args = {"quarter": QUARTER, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        quarterly(prog300, **args)


def test_quarterly_needs_program_data():
    with pytest.raises(InvalidParameterError, match="prog must be a ProgramData .*got dict"):
        quarterly({}, quarter=QUARTER)
    empty = ProgramData.from_tables(participants=pd.DataFrame(
        {"participant_id": pd.Series(dtype="string"), "enrollment_date": pd.Series(dtype="datetime64[ns]"),
         "group": pd.Series(dtype="string")}))
    with pytest.raises(InvalidParameterError, match="prog has no participants"):
        quarterly(empty, quarter=QUARTER)


def test_save_to_a_file_path_is_an_error(saved300, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InvalidParameterError, match=r"out dir: '.*file.txt' is a file; pass a folder"):
        saved300[0].save(f)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"titel": "x"}, r"config: unknown key 'titel'; top-level keys are"),
        ({"analysis": {"retention_day": [30]}}, r"unknown key 'retention_day' in \[analysis\]"),
        ({"analysis": {"retention_days": [0]}}, r"\[retention_days\] must be a non-empty list of whole numbers >= 1; got \[0\]"),
        ({"targets": {"retention_90": 75}}, r"\[targets.retention_90\] must be a proportion between 0 and 1 .*got 75"),
        ({"targets": {"happiness": 0.5}}, r"unknown target 'happiness' in \[targets\]"),
        ({"privacy": {"min_cell": 0}}, r"\[privacy.min_cell\] must be a whole number >= 1"),
        ({"analysis": {"recidivism_levels": ["rearest"]}}, r"recidivism_levels\] must list levels among rearrest"),
        ({"analysis": {"followup_window": [240, 150]}}, r"followup_window\] must be \[first_day, last_day\]"),
        ({"nonsense": {"a": 1}}, r"unknown section \[nonsense\]"),
        ({"groups": {"mentored": []}}, r"\[groups.mentored\] must be a group level or a list of group levels"),
        ({"groups": {"mentored": 3}}, r"\[groups.mentored\] must be a group level or a list"),
    ],
)
def test_config_errors(config, match):
    with pytest.raises(InvalidParameterError, match=match):
        load_config(config)


def test_config_from_toml_file(tmp_path):
    f = tmp_path / "report.toml"
    f.write_text('title = "T"\n[analysis]\nadjust = ["age"]\nkm_times = [0, 180]\n[targets]\nrelapse = 0.3\n',
                 encoding="utf-8")
    cfg = load_config(f)
    assert cfg.title == "T" and cfg.adjust == ("age",) and cfg.km_times == (0, 180)
    assert cfg.targets["relapse"] == 0.3 and cfg.targets["followup_rate"] == 0.8
    f.write_text("title = \n", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match=r"report.toml: not valid TOML"):
        load_config(f)
    with pytest.raises(InvalidParameterError, match=r"config: '.*nope.toml' is not a file"):
        load_config(tmp_path / "nope.toml")


def test_flow_matched_denominator_is_the_mentored_arm(saved300, prog300):
    report, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    flow = pd.DataFrame(doc["tables"]["flow"]["rows"])
    p = prog300.participants
    matched_ids = set(prog300.matches["participant_id"])
    # the comparison arm is never offered a mentor: it is not in the denominator
    assert not p.loc[p["group"] == "comparison", "participant_id"].isin(matched_ids).any()
    assert doc["tables"]["flow"]["measure"]["mentored_groups"] == ["peer_mentoring"]
    m = flow[flow["stage"] == "Matched with a mentor"].iloc[0]
    arm = p[p["group"] == "peer_mentoring"]
    assert m["of"] == len(arm) and m["of_label"] == "in peer_mentoring"
    census = pd.DataFrame(doc["tables"]["census_site"]["rows"])
    assert m["of"] == census.loc[census["site"] == "Total", "n_peer_mentoring"].item()  # the arm's published n
    assert m["n"] == arm["participant_id"].isin(matched_ids).sum()
    assert m["pct"] == pytest.approx(m["n"] / m["of"])
    e = flow[flow["stage"].str.startswith("Engaged")].iloc[0]
    assert e["of"] == m["n"] and e["of_label"] == "matched"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "as a share of the participants of the group(s) offered a mentor (Peer mentoring" in html
    assert f"of {int(m['of'])} in Peer mentoring" in report.figures[0].svg.replace(",", "")


def test_flow_mentored_group_from_the_config_and_small_arms_suppressed(prog300):
    # naming the comparison arm as mentored: 0 of its members were matched (zero is shown)
    r = quarterly(prog300, quarter=QUARTER, config={"groups": {"mentored": ["comparison", "peer_mentoring"]}})
    flow = r.tables["flow"].data
    m = flow[flow["stage"] == "Matched with a mentor"]
    assert list(m["of_label"]) == ["in comparison", "in peer_mentoring"]
    assert m["n"].iloc[0] == 0
    n_cmp = (prog300.participants["group"] == "comparison").sum()
    assert m["of"].iloc[0] == n_cmp
    with pytest.raises(InvalidParameterError, match=r"\[groups\] mentored: 'mentoring' not a level of 'group'"):
        quarterly(prog300, quarter=QUARTER, config={"groups": {"mentored": "mentoring"}})


def test_flow_small_mentored_arm_is_suppressed_everywhere(tmp_path):
    sim = simulate_program(300, seed=11)
    tables = {k: v.copy() for k, v in sim.tables.items()}
    p = tables["participants"]
    # keep only 8 participants of the mentored arm: the arm's n (flow denominator) is small
    keep = p.index[p["group"] == "peer_mentoring"][:8]
    drop_ids = set(p.loc[(p["group"] == "peer_mentoring") & ~p.index.isin(keep), "participant_id"])
    tables = {k: (v[~v["participant_id"].isin(drop_ids)] if "participant_id" in v else v) for k, v in tables.items()}
    prog = ProgramData.from_tables(tables, as_of=sim.as_of)
    r = quarterly(prog, quarter=QUARTER)
    out = tmp_path / "rep"
    r.save(out)
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert leaks(doc) == []
    flow = pd.DataFrame(doc["tables"]["flow"]["rows"])
    m = flow[flow["stage"] == "Matched with a mentor"].iloc[0]
    assert m["of"] is None or pd.isna(m["of"])  # 8 people: suppressed, as in the census
    assert pd.isna(m["pct"])


def test_small_program_figures_clean_and_titles_hide_a_suppressed_total():
    # 80 participants: the enrolled total is suppressed (a small site needs a complement)
    prog = simulate_program(80, seed=4).program()
    r = quarterly(prog, quarter=QUARTER)
    census = r.tables["census_site"]
    tot = census.data.index[census.data["site"] == "Total"][0]
    assert census.mask.at[tot, "n_total"]
    for f in r.figures:
        assert f.problems == (), (f.key, f.problems)
        # no figure title gives the suppressed total back
        assert f"n = {len(prog.participants)}," not in f.svg, f.key
    enr = next(f for f in r.figures if f.key == "enrollment")
    assert "(all suppressed)" in enr.svg


def test_every_report_figure_is_laid_out_cleanly(saved300):
    report, _ = saved300
    for f in report.figures:
        assert f.problems == (), (f.key, f.problems)
        assert f.aspect > 0


# ---------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("simdata") / "program"
    simulate_program(200, seed=3).write(d)
    return d


def test_cli_quarter_after_the_last_date_without_as_of(sim_folder, tmp_path, capsys):
    """Without a program.toml (no as_of), a quarter after the latest date has no data."""
    bare = tmp_path / "bare"
    shutil.copytree(sim_folder, bare)
    (bare / "program.toml").unlink()
    rc = cli_main(["report", str(bare), "--out", str(tmp_path / "x"), "--quiet", "--quarter", "2027Q1"])
    assert rc == 2
    assert re.search(r"quarter '2027Q1' \(2027-01-01 to 2027-03-31\) has no data: the latest date in the data "
                     r"is 2026-09-30; choose 2026Q3 or earlier", capsys.readouterr().err)


def test_cli_broken_input_clear_error_and_no_output(sim_folder, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(sim_folder, broken)
    import csv

    with open(broken / "events.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows[1][rows[0].index("event_date")] = "2026-13-45"
    with open(broken / "events.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp_path / "never"
    rc = cli_main(["report", str(broken), "--quarter", QUARTER, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "events.csv" in err and "event_date" in err and "2026-13-45" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["broken"]  # no half-written folder anywhere


@pytest.mark.parametrize(
    ("extra", "code", "match"),
    [
        (["--quarter", "Q3-2026"], 2, "quarter must look like 2026Q3"),
        # the folder's program.toml (written by simulate) sets as_of = 2026-09-30
        (["--quarter", "2027Q1"], 2, r"quarter '2027Q1' ends 2027-03-31, after the data cut-off 2026-09-30 \(as_of\); choose 2026Q3 or earlier"),
        (["--quarter", QUARTER, "--min-cell", "0"], 2, "min_cell must be a whole number"),
    ],
)
def test_cli_usage_errors(sim_folder, tmp_path, capsys, extra, code, match):
    import re

    out = tmp_path / "x"
    rc = cli_main(["report", str(sim_folder), "--out", str(out), "--quiet", *extra])
    assert rc == code
    assert re.search(match, capsys.readouterr().err)
    assert not out.exists()


def test_cli_progress_goes_to_stderr(sim_folder, tmp_path, capsys):
    out = tmp_path / "p"
    rc = cli_main(["report", str(sim_folder), "--quarter", QUARTER, "--out", str(out), "--min-cell", "5"])
    assert rc == 0
    cap = capsys.readouterr()
    for stage in ("load and validate", "measures", "suppression", "privacy scan"):
        assert stage in cap.err
    assert cap.out.strip() == str(out)
    assert {p.name for p in out.iterdir()} == {"report.html", "report.docx", "tables.xlsx", "figures", "results.json",
                                               ".recoverystats-report"}
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["report"]["min_cell"] == 5


# ---------------------------------------------------------------------------------------
# bigger programs and the bundled sample (slow)
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("n", [1200, 3000])
def test_report_on_larger_simulated_programs(n, tmp_path):
    sim = simulate_program(n, seed=n)
    prog = sim.program()
    out = tmp_path / f"r{n}"
    report = quarterly(prog, quarter=QUARTER)
    report.save(out)
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert leaks(doc) == []
    assert [s["key"] for s in doc["sections"]] == list(SECTIONS)
    census = pd.DataFrame(doc["tables"]["census_site"]["rows"])
    assert census.loc[census["site"] == "Total", "n_total"].item() == n
    assert all(f.problems == () for f in report.figures), [(f.key, f.problems) for f in report.figures]


@pytest.mark.slow
def test_report_on_the_bundled_sample(sample_dir, tmp_path):
    if not (sample_dir / "program.toml").exists():
        pytest.skip("data/sample not present")
    import recoverystats as rs

    prog = rs.read_program(sample_dir)
    out = tmp_path / "sample"
    rc = cli_main(["report", str(sample_dir), "--quarter", QUARTER, "--out", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [s["key"] for s in doc["sections"]] == list(SECTIONS)
    assert leaks(doc) == []
    assert {i["sha256"] for i in doc["provenance"]["inputs"]} == set(prog.sources["sha256"])
    ids = set(prog.participants["participant_id"]) | set(prog.mentors["mentor_id"])
    for name, data in _all_bytes(out):
        assert not [i for i in ids if i.encode() in data], name
    # the figures a funder sees are laid out cleanly; matching is shown against the mentored arm
    report = quarterly(prog, quarter=QUARTER)
    assert all(f.problems == () for f in report.figures), [(f.key, f.problems) for f in report.figures]
    flow = pd.DataFrame(doc["tables"]["flow"]["rows"])
    m = flow[flow["stage"] == "Matched with a mentor"].iloc[0]
    arm = prog.participants["group"] == "peer_mentoring"
    assert m["of"] == arm.sum() and m["n"] == prog.participants.loc[arm, "participant_id"].isin(
        prog.matches["participant_id"]).sum()


def test_cli_internal_error_is_a_message_not_a_traceback(sim_folder, tmp_path, capsys, monkeypatch):
    import recoverystats.report.build as build

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(build, "quarterly", boom)
    out = tmp_path / "x"
    rc = cli_main(["report", str(sim_folder), "--quarter", QUARTER, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 4
    assert "internal error (RuntimeError: simulated bug); no report was written" in err
    assert "Traceback" not in err and not out.exists()


def test_output_folder_gets_ordinary_permissions(saved300):
    import os
    import stat

    _, out = saved300
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask


# ---------------------------------------------------------------------------------------
# tables.xlsx layout (issue 12): formats, empty grey suppressed cells, the legend and list
# ---------------------------------------------------------------------------------------
def _sheet_cells(path, sheet):
    from openpyxl import load_workbook

    wb = load_workbook(path)
    return wb, wb[sheet]


def test_xlsx_suppressed_cells_are_empty_grey_and_listed(tiny_site):
    _, out = tiny_site
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    wb, ws = _sheet_cells(out / "tables.xlsx", doc["tables"]["census_site"]["sheet"])
    row = next(r for r in ws.iter_rows() if r[0].value == "Site tiny")  # the site's display label
    for cell in row[1:]:
        assert cell.value is None and cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith("D9D9D9")
    # no text in any numeric column of any table sheet: every suppressed cell is empty and grey
    listed = set()
    for key, t in doc["tables"].items():
        sheet = wb[t["sheet"]]
        heads = {c.value for c in sheet[2]}
        n_grey = 0
        for r in sheet.iter_rows(min_row=3):
            for cell in r:
                if cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith("D9D9D9"):
                    assert cell.value is None, (key, cell.coordinate)
                    n_grey += 1
                assert cell.value != "*", (key, cell.coordinate)
        on_sheet = [(i, c) for i, c in t["suppressed_cells"] if t["headers"][c] in heads]
        assert n_grey == len(on_sheet), key
        listed |= {(t["sheet"], t["headers"][c]) for _, c in on_sheet}
    assert listed
    rows = list(wb["Suppressed cells"].iter_rows(values_only=True))
    assert rows[0] == ("Sheet", "Row", "Column", "Cell")
    assert {(r[0], r[2]) for r in rows[1:]} == listed
    census = doc["tables"]["census_site"]
    assert {r[2] for r in rows[1:] if r[0] == census["sheet"] and r[1] == "Site tiny"} == {
        census["headers"][c] for c in ("n_comparison", "n_peer_mentoring", "n_total")}
    for r in rows[1:]:  # each listed cell is empty and grey where the list says
        c = wb[r[0]][r[3]]
        assert c.value is None and c.fill.fgColor.rgb.endswith("D9D9D9")
    about = list(wb["About"].iter_rows(values_only=True))
    legend = next(r[1] for r in about if r[0] == "(grey, empty)")
    assert "Suppressed" in legend and "below 11" in legend and "Suppressed cells" in legend


def test_xlsx_number_formats_follow_the_report(saved300):
    report, out = saved300
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    wb, _ = _sheet_cells(out / "tables.xlsx", "About")

    def column(key, col):
        t = doc["tables"][key]
        ws = wb[t["sheet"]]
        heads = [c.value for c in ws[2]]
        j = heads.index(t["headers"][col])
        return [r[j] for r in ws.iter_rows(min_row=3) if r[j].value is not None]

    fmts = lambda key, col: {c.number_format for c in column(key, col)}  # noqa: E731
    assert fmts("outcomes", "estimate") == {"0.0%"}
    assert fmts("outcomes", "n") == {"#,##0"}
    assert fmts("odds_ratios", "estimate") == {"0.00"} == fmts("odds_ratios", "ci_upper")
    assert fmts("odds_ratios", "p_value") == {'[<0.001]"<.001";[>=0.9995]">.999";.000'}  # APA
    assert fmts("table_one", "smd") == {"0.000"}
    assert {c.value for c in column("key_numbers", "meets_target")} <= {"yes", "no"}
    assert {c.value for c in column("pchart_relapse", "signal")} <= {"yes", "no"}
    assert all(isinstance(c.value, (int, float)) for c in column("key_numbers", "change"))
    # every non-empty cell below the header of a numeric column is a number with a format
    for key, t in doc["tables"].items():
        b = report.tables[key]
        ws = wb[t["sheet"]]
        heads = [c.value for c in ws[2]]
        for c in b.sheet_columns:
            if c in ("meets_target", "signal") or c not in b.data or not pd.api.types.is_numeric_dtype(b.data[c]):
                continue
            j = heads.index(t["headers"][c])
            for r in ws.iter_rows(min_row=3):
                v = r[j].value
                if v is not None and v not in ("∞", "−∞"):
                    assert isinstance(v, (int, float)) and r[j].number_format != "General", (key, c, r[j].coordinate)
    # widths fit: no column narrower than its widest shown value
    ws = wb[doc["tables"]["outcomes"]["sheet"]]
    longest = max(len(str(r[0].value)) for r in ws.iter_rows(min_row=3))
    assert ws.column_dimensions["A"].width >= longest


def test_scan_reads_a_small_count_typed_into_an_empty_suppressed_cell(tiny_site, tmp_path):
    from openpyxl import load_workbook

    from recoverystats.privacy import scan

    prog300, out = tiny_site
    copy = tmp_path / "q3"
    shutil.copytree(out, copy)
    assert scan(copy, prog300, min_cell=MIN_CELL).ok
    doc = json.loads((copy / "results.json").read_text(encoding="utf-8"))
    wb = load_workbook(copy / "tables.xlsx")
    ws = wb[doc["tables"]["census_site"]["sheet"]]
    row = next(r for r in ws.iter_rows() if r[0].value == "Site tiny")  # the site's display label
    row[1].value = 4  # the grey, empty cell now shows a small count
    wb.save(copy / "tables.xlsx")
    found = scan(copy, prog300, min_cell=MIN_CELL).findings
    assert (found["kind"] == "small_count").any()
    assert "tables.xlsx" in set(found.loc[found["kind"] == "small_count", "file"])
