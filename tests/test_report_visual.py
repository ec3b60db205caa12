"""How the report looks: the HTML in a real browser and the DOCX laid out by a word processor.

Marked ``report_visual``. They need Debian's ``chromium`` (headless) and LibreOffice
(``soffice``) with ``pdftotext``/``pdftoppm`` (poppler-utils); without them the tests skip
with the reason, except in CI (``RECOVERYSTATS_REQUIRE_VISUAL`` or ``CI`` set to
``1``/``true``), where a missing binary is a failure (``.ci/run`` installs them with apt-get
and sets ``RECOVERYSTATS_REQUIRE_VISUAL=1``).

- ``report.html`` is opened in headless Chromium at 1280 px (a laptop) and at the printable
  width of an A4 page (the narrower of A4 and US letter, with the stylesheet's print rules
  applied, as printing does). A small page script measures, after layout, every table and
  its box against the content column and writes the numbers into the page; Chromium's
  ``--dump-dom`` hands them back. On screen a table must fit its column or scroll inside its
  own box (with a sticky first column), never widen the page; on paper nothing scrolls, so
  every table must fit the printable width.
- ``report.docx`` is converted to PDF by LibreOffice; every page but the title page must hold
  at least a few lines of content (text lines, or their height in figures).

Set ``RS_VISUAL_DIR`` to a folder to keep the screenshots and the PDF for a look.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recoverystats.datasets import simulate_program
from recoverystats.report import quarterly

pytestmark = pytest.mark.report_visual

QUARTER = "2026Q3"
#: Screen width of the first check (CSS px).
SCREEN_WIDTH = 1280
#: A narrow window (a tablet in portrait), where the widest tables must scroll in their box.
NARROW_WIDTH = 760
#: Printable width (CSS px, 96 per inch) of an A4 page with the stylesheet's @page margins
#: (14 mm a side): 182 mm. A4 is narrower than US letter (8.5" less 28 mm = 710 px).
PRINT_WIDTH = round((210 - 2 * 14) / 25.4 * 96)
#: A page of the DOCX (but the title page) must hold at least this many lines of content.
MIN_LINES = 5
#: One line of 10 pt body text, in points (line height), for measuring figures in lines.
LINE_PT = 12.0


def _in_ci() -> bool:
    """Whether a missing binary fails the test: ``RECOVERYSTATS_REQUIRE_VISUAL`` (set by
    ``.ci/run``) or ``CI`` (set by most CI services) is ``1``/``true``/``yes``."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes")
               for v in ("RECOVERYSTATS_REQUIRE_VISUAL", "CI"))


def _need(*names: str) -> dict[str, str]:
    """Paths of the binaries; skip (or fail in CI) with the reason when one is missing."""
    found = {n: shutil.which(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        why = (f"report_visual needs {', '.join(missing)} on PATH (Debian: apt-get install chromium "
               "libreoffice-writer-nogui poppler-utils)")
        if _in_ci():
            pytest.fail(why + "; RECOVERYSTATS_REQUIRE_VISUAL/CI is set, so a missing binary is a failure")
        pytest.skip(why)
    return {n: str(p) for n, p in found.items()}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    return _need("chromium")["chromium"]


@pytest.fixture(scope="module")
def browser():
    """The Chromium executable (checked before the report is built)."""
    return _chromium()


@pytest.fixture(scope="module")
def office():
    """LibreOffice and the poppler tools (checked before the report is built)."""
    return _need("soffice", "pdftotext", "pdftoppm", "pdfinfo")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved report of a 1,500-person program with a long site name and a tiny site."""
    sim = simulate_program(1500, seed=3)
    p = sim.tables["participants"]
    p["site"] = p["site"].astype("string")
    p.loc[p["site"] == "site_c", "site"] = "Northern County Community Reentry and Recovery Center"
    p.loc[p.index[:4], "site"] = "site_tiny"
    out = tmp_path_factory.mktemp("visual") / "q3"
    report = quarterly(sim.program(), quarter=QUARTER)
    report.save(out)
    return report, out


def _keep(path: Path) -> None:
    keep = os.environ.get("RS_VISUAL_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


# ---------------------------------------------------------------------------------------
# HTML in headless Chromium
# ---------------------------------------------------------------------------------------
#: Runs after layout (at the end of <body>); writes its measurements into <pre id="rs-measure">.
MEASURE_JS = """
<script>
(function () {
  var page = document.querySelector('.page');
  var cs = getComputedStyle(page);
  var left = page.getBoundingClientRect().left + parseFloat(cs.paddingLeft);
  var content = page.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  var out = {font: getComputedStyle(document.body).fontFamily, viewport: document.documentElement.clientWidth,
             page_scroll_width: document.documentElement.scrollWidth, content: content, tables: [], figures: []};
  document.querySelectorAll('table.rs-table').forEach(function (t, i) {
    var box = t.closest('.rs-result') || t.parentElement;
    var b = box.getBoundingClientRect(), r = t.getBoundingClientRect();
    var td = t.querySelector('tbody td'), th = t.querySelector('thead th');
    var cap = document.getElementById(t.getAttribute('aria-labelledby') || '');
    var capRect = cap ? cap.getBoundingClientRect() : null;
    out.tables.push({caption: cap ? cap.textContent : 'table ' + i,
                     caption_right: capRect ? capRect.right - left : 0,
                     table_left: r.left - left, table_width: r.width,
                     box_left: b.left - left, box_width: b.width,
                     box_scrolls: box.scrollWidth > box.clientWidth + 1,
                     box_overflow_x: getComputedStyle(box).overflowX,
                     first_td_position: td ? getComputedStyle(td).position : '',
                     first_th_position: th ? getComputedStyle(th).position : '',
                     first_td_background: td ? getComputedStyle(td).backgroundColor : ''});
  });
  document.querySelectorAll('figure').forEach(function (f) {
    var r = f.getBoundingClientRect();
    var s = f.querySelector('svg');
    var sr = s ? s.getBoundingClientRect() : r;
    out.figures.push({id: f.id, left: sr.left - left, width: sr.width});
  });
  var pre = document.createElement('pre');
  pre.id = 'rs-measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _page_for(html: str, *, printed: bool) -> str:
    """The report with the measuring script; ``printed`` applies the print rules on screen
    (``@media print`` becomes ``@media all``: the same rules printing applies)."""
    if printed:
        html = html.replace("@media print", "@media all")
    return html.replace("</body>", MEASURE_JS + "</body>")


def _chromium_run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
           "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _measure(html: str, width: int, tmp: Path, *, printed: bool) -> dict:
    page = tmp / f"measure-{width}{'-print' if printed else ''}.html"
    page.write_text(_page_for(html, printed=printed), encoding="utf-8")
    res = _chromium_run([f"--window-size={width},1000", "--dump-dom", page.as_uri()], tmp)
    m = re.search(r'<pre id="rs-measure">(.*?)</pre>', res.stdout, re.S)
    assert m, f"chromium did not run the page script (rc {res.returncode}): {res.stderr[-2000:]}"
    import html as _html

    return json.loads(_html.unescape(m.group(1)))


def _screenshot(html: str, width: int, height: int, tmp: Path, name: str, *, printed: bool) -> Path:
    page = tmp / f"{name}.html"
    page.write_text(_page_for(html, printed=printed), encoding="utf-8")
    png = tmp / f"{name}.png"
    res = _chromium_run([f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()], tmp)
    assert png.exists(), res.stderr[-2000:]
    _keep(png)
    return png


@pytest.mark.parametrize("width", [SCREEN_WIDTH, NARROW_WIDTH])
def test_html_tables_fit_the_content_column_on_screen(browser, saved, tmp_path, width):
    _, out = saved
    html = (out / "report.html").read_text(encoding="utf-8")
    m = _measure(html, width, tmp_path, printed=False)
    assert m["viewport"] == width
    assert "sans-serif" in m["font"], m["font"]  # the stylesheet's font rule was read (not escaped away)
    assert m["page_scroll_width"] <= m["viewport"], "the page itself scrolls sideways"
    assert len(m["tables"]) >= 15
    for t in m["tables"]:
        # the table's box never leaves the content column...
        assert t["box_left"] >= -0.5 and t["box_left"] + t["box_width"] <= m["content"] + 0.5, t
        if t["box_scrolls"]:  # ...and a wider table scrolls inside it with its labels in view
            assert t["box_overflow_x"] in ("auto", "scroll"), t
            assert t["first_td_position"] == "sticky" and t["first_th_position"] == "sticky", t
            assert t["first_td_background"] not in ("rgba(0, 0, 0, 0)", "transparent"), t
        else:
            assert t["table_left"] + t["table_width"] <= m["content"] + 1, t  # sub-pixel widths
    for f in m["figures"]:
        assert f["left"] >= -0.5 and f["left"] + f["width"] <= m["content"] + 0.5, f
    assert all(t["caption"] != "" and t["caption_right"] <= m["content"] + 0.5 for t in m["tables"])
    if width == NARROW_WIDTH:  # the scrolling path is exercised: the wide tables scroll in their box
        assert sum(t["box_scrolls"] for t in m["tables"]) >= 2
    else:  # at 1280 px every table fits the column without scrolling
        assert not [t["caption"] for t in m["tables"] if t["box_scrolls"]]
    _screenshot(html, width, 4000, tmp_path, f"report-{width}", printed=False)


def test_html_tables_fit_the_printed_page(browser, saved, tmp_path):
    _, out = saved
    html = (out / "report.html").read_text(encoding="utf-8")
    m = _measure(html, PRINT_WIDTH, tmp_path, printed=True)
    assert m["viewport"] == PRINT_WIDTH
    # on paper nothing scrolls: each table itself fits the printable width
    too_wide = [(t["caption"], round(t["table_width"])) for t in m["tables"]
                if t["table_left"] < -0.5 or t["table_left"] + t["table_width"] > m["content"] + 0.5]
    assert not too_wide, f"tables wider than the printed page ({m['content']:.0f} px): {too_wide}"
    assert m["page_scroll_width"] <= m["viewport"]
    for f in m["figures"]:
        assert f["left"] + f["width"] <= m["content"] + 0.5, f
    _screenshot(html, PRINT_WIDTH, 4000, tmp_path, "report-print", printed=True)
    pdf = tmp_path / "report-html.pdf"
    _chromium_run([f"--print-to-pdf={pdf}", "--no-pdf-header-footer", (out / "report.html").as_uri()], tmp_path)
    assert pdf.exists() and pdf.stat().st_size > 10_000
    _keep(pdf)


# ---------------------------------------------------------------------------------------
# DOCX through LibreOffice
# ---------------------------------------------------------------------------------------
def _pages(pdf: Path, tools: dict[str, str]) -> list[dict]:
    """Per page: orientation, text lines (pdftotext) and lines' worth of ink in the body."""
    info = subprocess.run([tools["pdfinfo"], "-f", "1", "-l", "9999", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = [(float(w), float(h)) for w, h in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info)]
    text = subprocess.run([tools["pdftotext"], "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout.split("\f")
    dpi = 36
    subprocess.run([tools["pdftoppm"], "-r", str(dpi), "-gray", str(pdf), str(pdf.with_suffix(""))], check=True)
    images = sorted(pdf.parent.glob(pdf.stem + "-*.pgm"))
    assert len(images) == len(sizes)
    pages = []
    for k, ((w, h), img) in enumerate(zip(sizes, images, strict=True)):
        px = _read_pgm(img)
        # the body: between the 1" top and bottom margins (the header and footer lie outside)
        top, bottom = round(dpi * 0.95), px.shape[0] - round(dpi * 0.95)
        inked = int((px[top:bottom] < 160).any(axis=1).sum())
        lines = [ln for ln in text[k].splitlines() if ln.strip()]
        pages.append({"page": k + 1, "landscape": w > h, "text_lines": len(lines),
                      "ink_lines": inked * 72 / dpi / LINE_PT, "first": lines[0].strip()[:60] if lines else ""})
    return pages


def _read_pgm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert m, path
    w, h = int(m.group(1)), int(m.group(2))
    return np.frombuffer(data[m.end():m.end() + w * h], dtype=np.uint8).reshape(h, w)


def test_docx_has_no_near_empty_pages(office, saved, tmp_path):
    tools = office
    _, out = saved
    res = subprocess.run([tools["soffice"], "--headless", f"-env:UserInstallation={(tmp_path / 'lo').as_uri()}",
                          "--convert-to", "pdf", "--outdir", str(tmp_path), str(out / "report.docx")],
                         capture_output=True, text=True, timeout=300, check=False)
    pdf = tmp_path / "report.pdf"
    assert pdf.exists(), f"LibreOffice did not convert the DOCX (rc {res.returncode}): {res.stderr[-2000:]}"
    _keep(pdf)
    pages = _pages(pdf, tools)
    assert len(pages) >= 5
    # one line of the footer is in every page's text; the body is measured from the ink
    thin = [p for p in pages[1:] if p["ink_lines"] < MIN_LINES]
    assert not thin, f"pages with less than {MIN_LINES} lines of content: {thin}"
    # a landscape page is there for a wide table, not for a heading or a few lines
    for p in pages:
        if p["landscape"]:
            assert p["ink_lines"] >= 2 * MIN_LINES, p
