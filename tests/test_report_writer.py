"""The report writer's file safety: text never becomes a formula or markup, ``--overwrite``
replaces only an earlier report, interrupted saves leave nothing behind, outputs are
byte-identical across runs, and labels in outputs have a length limit.

One report is built from a simulated program written to disk (so ``prog.sources`` names
real files) whose labels are hostile: a site named like a spreadsheet formula, another
like an HTML script, a substance level starting with ``-`` and a title and program name
starting with ``=`` and ``@``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import recoverystats as rs
from recoverystats.cli import main as cli_main
from recoverystats.datasets import simulate_program
from recoverystats.errors import InvalidParameterError
from recoverystats.report import quarterly

QUARTER = "2026Q3"
FORMULA_SITE = '=HYPERLINK("http://example.invalid/?x="&A1,"click")'
SCRIPT_SITE = "<script>alert(1)</script>"
MINUS_LEVEL = "-2+3 opioids"
TITLE = "=1+2 quarterly report"
PROGRAM = "@SUM(A1:A9) program"
HOSTILE = (FORMULA_SITE, SCRIPT_SITE, MINUS_LEVEL, TITLE, PROGRAM)
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """(report, saved folder, data folder) of a 200-person program with hostile labels."""
    sim = simulate_program(200, seed=3)
    p = sim.tables["participants"]
    p["site"] = p["site"].replace({"site_a": FORMULA_SITE, "site_b": SCRIPT_SITE})
    p["primary_substance"] = p["primary_substance"].replace({"opioids": MINUS_LEVEL})
    base = tmp_path_factory.mktemp("writer")
    data = base / "program"
    sim.write(data)
    prog = rs.read_program(data)
    report = quarterly(prog, quarter=QUARTER, config={"title": TITLE, "program": PROGRAM})
    out = base / "reports" / "q3"
    report.save(out)
    return report, out, data


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


# ---------------------------------------------------------------------------------------
# injection
# ---------------------------------------------------------------------------------------
def test_xlsx_has_no_formula_and_hostile_labels_are_text_cells(hostile):
    from openpyxl import load_workbook

    _, out, _ = hostile
    members = _members(out / "tables.xlsx")
    sheets = {k: v for k, v in members.items() if k.startswith("xl/worksheets/") and k.endswith(".xml")}
    assert len(sheets) > 10
    for name, xml in sheets.items():
        assert b"<f>" not in xml and b"<f " not in xml, name  # no formula element at all
    wb = load_workbook(out / "tables.xlsx")
    seen = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value in HOSTILE:
                    seen.setdefault(cell.value, []).append(cell)
    assert set(seen) == set(HOSTILE)
    for value, cells in seen.items():
        for cell in cells:
            assert cell.data_type == "s", (value, cell.coordinate)
            # a cell a spreadsheet would take for a formula when re-entered keeps Excel's quote prefix
            assert cell.quotePrefix == (value[0] in "=+-@"), (value, cell.coordinate)


def test_html_docx_svg_and_json_escape_hostile_labels(hostile):
    import docx

    _, out, _ = hostile
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for svg in (out / "figures").glob("*.svg"):
        assert "<script" not in svg.read_text(encoding="utf-8").lower(), svg.name
    members = _members(out / "report.docx")
    assert b"<script" not in members["word/document.xml"]
    d = docx.Document(str(out / "report.docx"))
    texts = {c.text for t in d.tables for r in t.rows for c in r.cells} | {p.text for p in d.paragraphs}
    assert {FORMULA_SITE, SCRIPT_SITE, MINUS_LEVEL, TITLE, PROGRAM} <= texts
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["report"]["title"] == TITLE
    sites = {r["site"] for r in doc["tables"]["census_site"]["rows"]}
    assert {FORMULA_SITE, SCRIPT_SITE} <= sites


# ---------------------------------------------------------------------------------------
# --overwrite and the output folder
# ---------------------------------------------------------------------------------------
def test_overwrite_refuses_a_folder_this_tool_did_not_write(hostile, tmp_path):
    report, _, _ = hostile
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    with pytest.raises(InvalidParameterError, match=r"was not written by recoverystats report \(it has no valid "
                                                     r"\.recoverystats-report marker"):
        report.save(out, overwrite=True)
    assert (out / "thesis.docx").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left


def test_overwrite_refuses_a_report_folder_with_other_files_in_it(hostile, tmp_path):
    report, first, _ = hostile
    import shutil

    out = tmp_path / "q3"
    shutil.copytree(first, out)
    (out / "figures" / "my-notes.txt").write_text("notes")
    with pytest.raises(InvalidParameterError, match=r"holds files an earlier report did not write "
                                                     r"\(figures/my-notes.txt\)"):
        report.save(out, overwrite=True)
    assert (out / "figures" / "my-notes.txt").exists()
    (out / "figures" / "my-notes.txt").unlink()
    (out / "results.json").write_text("{}")
    assert report.save(out, overwrite=True) == out  # an earlier report, and nothing else: replaced
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["report"]["title"] == TITLE
    marker = json.loads((out / ".recoverystats-report").read_text(encoding="utf-8"))
    assert marker["tool"] == "recoverystats report"
    assert set(marker["files"]) == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {
        ".recoverystats-report"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q3"]


@pytest.mark.parametrize("where", ["equal", "inside", "holds"])
def test_save_refuses_an_out_dir_that_is_near_the_inputs(hostile, where):
    report, _, data = hostile
    before = {p: p.read_bytes() for p in data.iterdir()}
    out = {"equal": data, "inside": data / "report", "holds": data.parent}[where]
    words = {"equal": "is the program's input folder", "inside": "lies inside the program's input folder",
             "holds": "holds the program's input"}[where]
    with pytest.raises(InvalidParameterError, match=words):
        report.save(out, overwrite=True)
    assert {p: p.read_bytes() for p in data.iterdir()} == before
    assert not (data / "report").exists()


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_cli_refuses_out_near_the_source_before_loading(hostile, tmp_path, capsys, monkeypatch, where):
    import shutil

    import recoverystats.io.read as read

    _, _, data = hostile
    src = tmp_path / "exports"
    shutil.copytree(data, src)
    before = {p.name: p.read_bytes() for p in src.iterdir()}

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(read, "read_program", no_loading)
    out = src if where == "equal" else src / "q3"
    t0 = time.perf_counter()
    rc = cli_main(["report", str(src), "--quarter", QUARTER, "--out", str(out), "--overwrite", "--quiet"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "the program's input folder" in err and "never written" in err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert elapsed < 5


def test_cli_refuses_a_non_report_folder_before_loading(hostile, tmp_path, capsys, monkeypatch):
    import recoverystats.io.read as read

    _, _, data = hostile
    monkeypatch.setattr(read, "read_program", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc = cli_main(["report", str(data), "--quarter", QUARTER, "--out", str(out), "--overwrite", "--quiet"])
    assert rc == 2
    assert "was not written by recoverystats report" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


# ---------------------------------------------------------------------------------------
# interrupted saves
# ---------------------------------------------------------------------------------------
_SLOW_SAVE = """
import pickle, sys, time
from pathlib import Path
from recoverystats.report.report import Report

ready = Path(sys.argv[3])
def slow_xlsx(self, path):
    ready.write_text("writing")  # half the outputs are written: hold here until killed
    time.sleep(120)

Report.to_xlsx = slow_xlsx
report = pickle.loads(Path(sys.argv[1]).read_bytes())
report.save(sys.argv[2])
"""


def _kill_mid_save(report, tmp_path: Path, sig: int) -> tuple[int, Path]:
    blob = tmp_path / "report.pickle"
    blob.write_bytes(pickle.dumps(report))
    script = tmp_path / "slow_save.py"
    script.write_text(_SLOW_SAVE)
    parent = tmp_path / "reports"
    parent.mkdir()
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script), str(blob), str(parent / "q3"), str(ready)], env=env,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the save never started"
            time.sleep(0.05)
        assert [p.name for p in parent.iterdir() if ".partial-" in p.name]  # the save is under way
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when an assertion above failed
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return rc, parent


def test_sigterm_during_save_removes_the_partial_folder(hostile, tmp_path):
    report, _, _ = hostile
    rc, parent = _kill_mid_save(report, tmp_path, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM  # exits as SIGTERM asked, after cleaning up
    assert list(parent.iterdir()) == []


def test_sigkill_leftover_is_swept_by_the_next_save_but_a_live_one_is_not(hostile, tmp_path):
    report, _, _ = hostile
    rc, parent = _kill_mid_save(report, tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    stale = [p for p in parent.iterdir() if ".partial-" in p.name]
    assert len(stale) == 1 and (stale[0] / "report.html").exists()  # unscanned outputs
    report.save(parent / "q3b")  # the next save removes it
    assert sorted(p.name for p in parent.iterdir()) == ["q3b"]

    # a save running right now (its lock is held) and a look-alike folder that is not ours stay
    from recoverystats.report.report import _hold_partial_lock

    live = parent / ".other.partial-0123456789ab"
    live.mkdir()
    lock = _hold_partial_lock(live)
    foreign = parent / ".notes.partial-ba9876543210"
    foreign.mkdir()
    (foreign / "draft.txt").write_text("mine")
    try:
        report.save(parent / "q3c")
        assert sorted(p.name for p in parent.iterdir()) == sorted([live.name, foreign.name, "q3b", "q3c"])
    finally:
        lock.close()
    report.save(parent / "q3d")  # the lock died with its holder: swept now
    assert sorted(p.name for p in parent.iterdir()) == sorted([foreign.name, "q3b", "q3c", "q3d"])


# ---------------------------------------------------------------------------------------
# byte-identical outputs
# ---------------------------------------------------------------------------------------
def test_same_inputs_give_byte_identical_outputs(hostile, tmp_path, monkeypatch):
    report, first, data = hostile
    time.sleep(1.1)  # another second on the clock...
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3 * 86400)  # ...and other days for the zip times
    again = quarterly(rs.read_program(data), quarter=QUARTER, config={"title": TITLE, "program": PROGRAM})
    second = again.save(tmp_path / "elsewhere" / "q3")
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    assert {"report.html", "report.docx", "tables.xlsx", "results.json"} <= set(files)
    assert any(f.endswith(".svg") for f in files) and any(f.endswith(".png") for f in files)
    for f in files:
        a, b = (first / f).read_bytes(), (second / f).read_bytes()
        if f == "results.json":
            ja, jb = json.loads(a), json.loads(b)
            ja["report"].pop("generated_at")
            jb["report"].pop("generated_at")
            assert ja == jb
            a = re.sub(rb'"generated_at": "[^"]*"', b"", a)
            b = re.sub(rb'"generated_at": "[^"]*"', b"", b)
        assert a == b, f
    # the document dates are the cut-off date, in the zip and in docProps/core.xml
    for name in ("report.docx", "tables.xlsx"):
        with zipfile.ZipFile(first / name) as zf:
            assert {i.date_time for i in zf.infolist()} == {(2026, 9, 30, 0, 0, 0)}, name
            assert zf.infolist()[0].filename == "[Content_Types].xml"
            core = zf.read("docProps/core.xml").decode()
        assert re.findall(r"<dcterms:(?:created|modified)\b[^>]*>([^<]*)<", core) == ["2026-09-30T00:00:00Z"] * 2
    assert ".recoverystats-report" in files  # the marker is byte-identical too


# ---------------------------------------------------------------------------------------
# label length in outputs
# ---------------------------------------------------------------------------------------
def test_a_huge_label_is_refused_quickly_and_nothing_is_written(hostile, tmp_path):
    report, _, _ = hostile
    block = report.tables["census_site"]
    data = block.data.copy()
    data["site"] = data["site"].astype(object)
    data.iloc[1, data.columns.get_loc("site")] = "S" * 1_000_000
    tables = dict(report.tables)
    tables["census_site"] = dataclasses.replace(block, data=data)
    long_site = dataclasses.replace(report, tables=tables)
    out = tmp_path / "q3"
    t0 = time.perf_counter()
    with pytest.raises(InvalidParameterError, match=r"label too long: table 'census_site', column 'site', row 2 is "
                                                     r"1,000,000 characters; outputs allow at most 200"):
        long_site.save(out)
    assert time.perf_counter() - t0 < 5
    assert list(tmp_path.iterdir()) == []
    from recoverystats.report.report import MAX_LABEL_CHARS, check_label_lengths

    with pytest.raises(InvalidParameterError, match=r"label too long: the report title is 201 characters"):
        dataclasses.replace(report, title="T" * (MAX_LABEL_CHARS + 1)).save(out)
    check_label_lengths(dataclasses.replace(report, title="T" * MAX_LABEL_CHARS))  # at the limit: fine
    assert list(tmp_path.iterdir()) == []
