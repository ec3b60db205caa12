"""The DuckDB validation's short cuts give the pandas loader's findings.

``engines/validate.py`` skips work when a count shows there is nothing to find: a text
column with no edge space, control character, NA marker or over-long cell is used as
it is; a table whose key (or row) hashes never repeat has no duplicates; offending rows
are fetched only for rules that flagged any. These tests put one instance of each
thing a short cut must not miss next to clean columns, and compare the findings, flow
and tables with the pandas engine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError

pytest.importorskip("duckdb")
pytest.importorskip("ibis")


def _load(src: Path, engine: str, **kw):
    try:
        return rs.read_program(src, engine=engine, **kw)
    except DataValidationError as exc:
        return exc


def _same(src: Path, **kw) -> pd.DataFrame:
    a = _load(src, "pandas", **kw)
    b = _load(src, "duckdb", **kw)
    pd.testing.assert_frame_equal(a.validation.reset_index(drop=True), b.validation.reset_index(drop=True))
    if not isinstance(a, DataValidationError):
        pd.testing.assert_frame_equal(a.flow, b.flow)
        for name in ("participants", "events", "assessments"):
            pd.testing.assert_frame_equal(a.table(name), b.to_pandas(name), check_index_type=False)
    return a.validation


def _participants(n: int = 30) -> str:
    rows = [f"P{i:03d},2025-01-{1 + i % 28:02d},peer_mentoring,site_{i % 3},1990-01-01" for i in range(n)]
    return "participant_id,enrollment_date,group,site,birth_date\n" + "\n".join(rows) + "\n"


def test_clean_program_has_no_findings_on_either_engine(tmp_path):
    src = tmp_path / "clean"
    src.mkdir()
    (src / "participants.csv").write_text(_participants(), encoding="utf-8")
    (src / "events.csv").write_text(
        "participant_id,event_date,event_type\n"
        + "".join(f"P{i:03d},2025-03-01,arrest\n" for i in range(30)),
        encoding="utf-8",
    )
    v = _same(src)
    assert len(v) == 0


@pytest.mark.parametrize(
    ("cell", "rule"),
    [
        (" P007", None),  # an edge space: trimmed, not a finding, and it must be trimmed
        ("P0\x0107", "control_character"),
        ("NA", "missing_value"),  # an NA marker in a required ID
    ],
)
def test_one_dirty_id_among_clean_ones_is_found(tmp_path, cell, rule):
    text = _participants().replace("P007,", f"{cell},", 1)
    src = tmp_path / "dirty"
    src.mkdir()
    (src / "participants.csv").write_text(text, encoding="utf-8")
    v = _same(src, on_error="drop")
    if rule is None:
        assert len(v) == 0
    else:
        assert rule in set(v["rule"])


def test_duplicates_found_behind_the_hash_pre_filter(tmp_path):
    # keyed table: a shared key and an exact copy; keyless table: copies that differ only
    # in a NULL (not copies) and copies that agree on their NULLs (copies)
    text = _participants() + "P003,2025-02-01,comparison,site_0,1990-01-01\n" + _participants(2).split("\n", 1)[1]
    src = tmp_path / "dups"
    src.mkdir()
    (src / "participants.csv").write_text(text, encoding="utf-8")
    (src / "events.csv").write_text(
        "participant_id,event_date,event_type,result\n"
        "P001,2025-03-01,drug_screen,\n"
        "P001,2025-03-01,drug_screen,\n"
        "P001,2025-03-01,drug_screen,negative\n"
        "P002,2025-03-02,arrest,\n",
        encoding="utf-8",
    )
    v = _same(src, on_error="drop")
    got = [(r, t, int(ln)) for r, t, ln in v[["rule", "table", "line"]].itertuples(index=False)]
    assert got == [
        ("duplicate_key", "participants", 5),  # P003 with another enrollment date
        ("duplicate_key", "participants", 32),
        ("duplicate_row", "participants", 33),  # P000 and P001 repeated whole
        ("duplicate_row", "participants", 34),
        ("repeated_row", "events", 3),  # only line 3 copies line 2 (NULL result on both);
    ]  # line 4 differs from them in result alone
    assert "(lines 3)" in v["message"].iloc[-1]


def test_large_csv_rows_keep_their_file_lines(tmp_path):
    """DuckDB writes a large CSV read in parallel out of order unless the insertion order is
    preserved; the row numbers (_rid, _line) come from that table, so a finding near the end of
    a 700k-row file must name its own line, as on pandas (and the kept rows stay in file order)."""
    n = 700_000
    rows = [f"P{i:07d},2025-01-{1 + i % 28:02d},peer_mentoring" for i in range(n)]
    bad = n - 123
    rows[bad] = f"P{bad:07d},2025-02-31,peer_mentoring"  # no such day
    src = tmp_path / "big"
    src.mkdir()
    (src / "participants.csv").write_text("participant_id,enrollment_date,group\n" + "\n".join(rows) + "\n",
                                          encoding="utf-8")
    prog = rs.read_program(src, engine="duckdb", on_error="drop")
    v = prog.validation
    assert list(v["line"].dropna().astype(int).unique()) == [bad + 2]
    ids = prog.to_pandas("participants")["participant_id"].astype(str)
    assert ids.is_monotonic_increasing and len(ids) == n - 1
