"""The loader's fast paths give exactly what the general paths give.

``read_program`` takes shortcuts on the happy path (dates parsed while the CSV is read,
no trimming when no value has edge whitespace, IDs joined as packed integers, a radix
pre-screen for repeated rows, lazy line numbers). Each shortcut is checked here against
a plain reference implementation, including inputs large enough for pyarrow to read the
file in several blocks (so the Arrow columns have many chunks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError
from recoverystats.io import build
from recoverystats.io.readers import SequentialLines


def chunked(values: list, sizes: list[int]) -> pa.ChunkedArray:
    out, at = [], 0
    for s in sizes:
        out.append(pa.array(values[at : at + s], pa.string()))
        at += s
    out.append(pa.array(values[at:], pa.string()))
    return pa.chunked_array(out, pa.string())


@pytest.mark.parametrize("width", [3, 8, 10, 12])
@pytest.mark.parametrize("child_sorted", [True, False])
@pytest.mark.parametrize("parent_sorted", [True, False])
def test_lookup_matches_arrow_index_in(width, child_sorted, parent_sorted):
    rng = np.random.default_rng(width + 2 * child_sorted + 4 * parent_sorted)
    n = 300
    pool = [f"{i:0{width}d}" for i in range(2 * n)]
    parent = [pool[i] for i in rng.choice(2 * n, n, replace=False)]
    if parent_sorted:
        parent.sort()
    child = [pool[i] for i in rng.integers(0, 2 * n, 2000)]  # about half are unknown
    if child_sorted:
        child.sort()
    c, p = chunked(child, [1, 700, 0, 500]), chunked(parent, [50, 100])
    idx, rank = build._lookup(c, p)
    ref = pc.index_in(pa.array(child), value_set=pa.array(parent)).to_numpy(zero_copy_only=False)
    ref = np.where(np.isnan(ref.astype(float)), -1, ref).astype(np.int64)
    assert idx.tolist() == ref.tolist()
    if child_sorted:  # the rank orders rows by ID: its codes must be monotonic
        assert (np.diff(rank) >= 0).all()
        srt = sorted(parent)
        assert rank.tolist() == [int(np.searchsorted(srt, v)) for v in child]


def test_id_keys_are_the_same_for_any_chunking():
    values = [f"P{i:07d}" for i in range(1000)]
    one = build._id_keys(pa.chunked_array([pa.array(values)]))
    many = build._id_keys(chunked(values, [1, 0, 333, 400]))
    assert one is not None and many is not None
    assert one.tolist() == many.tolist()
    assert (one[1:] > one[:-1]).all()  # text order kept
    assert build._id_keys(chunked(values[:10] + ["P1"], [5])) is None  # mixed widths
    assert build._id_keys(pa.chunked_array([pa.array(["007", None])])) is None


def test_long_ids_pack_only_with_one_constant_prefix():
    values = [f"P0{i:08d}" for i in range(0, 3000, 3)]  # 10 bytes, prefix "P0"
    keys = build._id_keys_tagged(chunked(values, [1, 0, 400]))
    assert keys is not None
    assert keys[1] == (10, b"P0")
    assert (keys[0][1:] > keys[0][:-1]).all()  # text order kept
    # a different first byte anywhere in the prefix: not packable
    assert build._id_keys_tagged(chunked(values[:-1] + ["Q0" + values[-1][2:]], [5])) is None
    assert build._id_keys_tagged(chunked(values[:-1] + ["P1" + values[-1][2:]], [5])) is None


def test_keys_packed_with_other_prefixes_never_match():
    parent = [f"P0{i:08d}" for i in range(100)]
    child = [f"Q0{i:08d}" for i in range(50)] + parent[:50]
    for c in (child[:50], child):  # all unknown (a constant prefix of their own), or mixed
        idx, _ = build._lookup(chunked(c, [7]), chunked(parent, [30]))
        ref = [parent.index(v) if v in parent else -1 for v in c]
        assert idx.tolist() == ref


@pytest.mark.parametrize("block", [1, 5, 1 << 16])
def test_grouped_candidates_match_pandas_duplicated(monkeypatch, block):
    monkeypatch.setattr(build._RowCodes, "BLOCK", block)
    rng = np.random.default_rng(block + 7)
    for trial in range(40):
        n = int(rng.integers(1, 400))
        sizes = rng.integers(1, 12, n)
        groups = rng.permutation(n)[: int(rng.integers(1, n + 1))]  # any order of groups
        rank = np.repeat(groups, sizes[: len(groups)])[:n]
        if len(rank) < 2:
            continue
        dates = (np.datetime64("2024-01-01") + rng.integers(0, 15, len(rank))).astype(
            "datetime64[ns]"
        )
        dates[rng.random(len(rank)) < 0.1] = np.datetime64("NaT")
        codes = build._RowCodes(rank, dates, None)
        ref = pd.Series(codes.full()).duplicated(keep=False).to_numpy()
        got = codes.grouped_candidates()
        assert got is not None and got.tolist() == ref.tolist()
        if trial % 5 == 0 and len(np.unique(rank)) > 1:  # a group split in two runs
            split = np.concatenate([rank, rank[:1]])
            again = build._RowCodes(split, np.concatenate([dates, dates[:1]]), None)
            if not (split[-2] == split[-1]):
                assert again.grouped_candidates() is None


def test_keyed_candidates_match_pandas_duplicated():
    rng = np.random.default_rng(5)
    n = 3000
    pid = np.sort(rng.integers(0, 400, n))
    frame = pd.DataFrame(
        {
            "participant_id": pd.array([f"P0{i:08d}" for i in pid], dtype="string[pyarrow]"),
            "mentor_id": pd.array(
                [f"M{i:03d}" for i in rng.integers(0, 4, n)], dtype="string[pyarrow]"
            ),
            "match_date": (np.datetime64("2024-01-01") + rng.integers(0, 6, n)).astype(
                "datetime64[ns]"
            ),
            "timepoint": pd.array(
                [None if v == 3 else ["intake", "discharge", "other"][v] for v in rng.integers(0, 4, n)],
                dtype="string[pyarrow]",
            ),
        }
    )
    ids = {c: frame[c].array._pa_array for c in ("participant_id", "mentor_id")}
    for keyed in (
        ["participant_id", "mentor_id", "match_date"],
        ["participant_id", "timepoint"],
    ):
        got = build._keyed_candidates(frame, keyed, ids, {})
        ref = frame.duplicated(subset=keyed, keep=False).to_numpy()
        assert got is not None and got.tolist() == ref.tolist()
        assert 0 < ref.sum() < n


def test_pool_arrays_are_writable_numpy_arrays():
    for n in (0, 10, 1 << 18):
        a = build._pool_full(n, 7, np.int64)
        assert a.dtype == np.int64 and a.shape == (n,) and a.flags.writeable
        assert (a == 7).all()
        a[:] = 1
        assert int(a.sum()) == n


def test_chunked_take_matches_take():
    rng = np.random.default_rng(3)
    values = [None if rng.random() < 0.1 else f"v{i}" for i in range(500)]
    arr = chunked(values, [0, 7, 120, 1, 200])
    for size in (0, 1, 17, 500):
        pos = np.sort(rng.choice(500, size, replace=False))
        assert build._chunked_take(arr, pos).to_pylist() == [values[i] for i in pos]


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b c", "", None],
        [" a", "b"],
        ["a", "b\t"],
        ["x", "\x0by"],
        ["x", "y\r"],
        ["ok", "also ok", "\n"],
    ],
)
def test_edge_space_check_agrees_with_trimming(values):
    arr = chunked(values, [1])
    trimmed = pc.ascii_trim_whitespace(arr)
    same = trimmed.to_pylist() == arr.to_pylist()
    assert build._edge_space_free(arr) == same


def test_shared_codes_match_pandas_duplicated():
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = int(rng.integers(2, 3000))
        rank = rng.integers(-1, int(rng.integers(1, 10**6)), n)
        dates = np.datetime64("1950-01-01") + rng.integers(0, int(rng.integers(1, 40000)), n)
        dates = dates.astype("datetime64[ns]")
        dates[rng.random(n) < 0.05] = np.datetime64("NaT")
        codes = build._row_codes(rank, dates)
        ref = pd.Series(codes).duplicated(keep=False).to_numpy()
        assert (build._shared_codes(codes) == ref).all()


def test_sequential_lines_index_like_arange():
    lines = SequentialLines(2, 10)
    ref = np.arange(2, 12)
    assert len(lines) == 10
    assert int(lines[0]) == 2 and int(lines[9]) == 11 and int(lines[-1]) == 11
    pos = np.array([0, 3, 9])
    assert lines[pos].tolist() == ref[pos].tolist()
    mask = np.zeros(10, bool)
    mask[[1, 4]] = True
    assert lines[mask].tolist() == ref[mask].tolist()
    assert np.asarray(lines).tolist() == ref.tolist()
    with pytest.raises(IndexError):
        lines[10]


# ---------------------------------------------------------------------------
# end to end, files of several CSV blocks
# ---------------------------------------------------------------------------
def big_program(folder: Path, n: int = 3000, per: int = 40, shuffle: bool = False) -> pd.DataFrame:
    """participants.csv + an events.csv of ~3 MB (several pyarrow blocks); returns the events."""
    rng = np.random.default_rng(5)
    ids = np.array([f"P{i:06d}" for i in range(n)])
    enr = np.datetime64("2024-01-01") + rng.integers(0, 300, n)
    pd.DataFrame(
        {
            "participant_id": ids,
            "enrollment_date": pd.to_datetime(enr).strftime("%Y-%m-%d"),
            "group": "peer_mentoring",
        }
    ).to_csv(folder / "participants.csv", index=False)
    m = n * per
    owner = np.sort(rng.integers(0, n, m))
    day = enr[owner] + rng.integers(-20, 400, m)
    ev = pd.DataFrame(
        {
            "participant_id": ids[owner],
            "event_date": pd.to_datetime(day).strftime("%Y-%m-%d"),
            "event_type": rng.choice(["arrest", "relapse", "drug_screen"], m),
        }
    )
    if shuffle:
        ev = ev.sample(frac=1, random_state=3).reset_index(drop=True)
    return ev


def test_dates_parsed_while_reading_equal_the_text_path(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    ev = big_program(folder)
    ev.to_csv(folder / "events.csv", index=False)
    fast = rs.read_program(folder)
    # the same file with one date padded with spaces: ISO parsing while reading accepts it;
    # the text path trims it; either way the dates must be identical
    padded = ev.copy()
    padded.loc[len(ev) - 1, "event_date"] = " " + padded.loc[len(ev) - 1, "event_date"] + " "
    padded.to_csv(folder / "events.csv", index=False)
    slow = rs.read_program(folder)
    pd.testing.assert_frame_equal(fast.events, slow.events)
    assert fast.events["event_date"].dtype == "datetime64[ns]"
    assert (fast.events["event_date"] == pd.to_datetime(ev["event_date"]).to_numpy()).all()


@pytest.mark.parametrize(
    ("bad", "rule"), [("2025-02-30", "date_impossible"), ("03/04/2025x", "date_parse")]
)
def test_bad_date_deep_in_a_large_file_is_found_on_its_line(tmp_path, bad, rule):
    folder = tmp_path / "p"
    folder.mkdir()
    ev = big_program(folder)
    row = len(ev) - 7  # near the end: pyarrow fails on a late block, the text re-read finds it
    ev.loc[row, "event_date"] = bad
    ev.to_csv(folder / "events.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        rs.read_program(folder)
    found = info.value.validation
    hit = found[found["rule"] == rule]
    assert len(hit) == 1
    assert hit["line"].iloc[0] == row + 2
    assert hit["column"].iloc[0] == "event_date"
    assert hit["value"].iloc[0] == bad
    prog = rs.read_program(folder, on_error="drop")
    flow = prog.flow.set_index("table").loc["events"]
    assert (flow["rows_read"], flow["rows_kept"], flow["rows_dropped"]) == (len(ev), len(ev) - 1, 1)


def test_renamed_date_column_is_parsed_while_reading(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    ev = big_program(folder, n=200, per=5)
    ev.rename(columns={"event_date": "Date Of Event"}).to_csv(folder / "ev.csv", index=False)
    mapping = {"tables": {"events": {"file": "ev.csv", "rename": {"Date Of Event": "event_date"}}}}
    prog = rs.read_program(folder, mapping=mapping)
    assert (prog.events["event_date"] == pd.to_datetime(ev["event_date"]).to_numpy()).all()


@pytest.mark.parametrize("shuffle", [False, True])
def test_repeated_rows_counted_in_large_files(tmp_path, shuffle):
    folder = tmp_path / "p"
    folder.mkdir()
    ev = big_program(folder, shuffle=shuffle)
    rng = np.random.default_rng(9)
    copies = ev.iloc[rng.choice(len(ev), 25, replace=False)]
    ev = pd.concat([ev, copies])
    if shuffle:
        ev = ev.sample(frac=1, random_state=4)
    else:
        ev = ev.sort_values(["participant_id", "event_date"], kind="stable")
    ev = ev.reset_index(drop=True)
    ev.to_csv(folder / "events.csv", index=False)
    prog = rs.read_program(folder)
    rep = prog.validation[prog.validation["rule"] == "repeated_row"]
    assert len(rep) == 1
    n_rep = int(ev.duplicated().sum())
    assert n_rep >= 25
    assert f"{n_rep} row(s) repeat" in rep["message"].iloc[0]
    first = int(np.flatnonzero(ev.duplicated().to_numpy())[0]) + 2
    assert rep["line"].iloc[0] == first
    assert len(prog.events) == len(ev)  # repeats are kept


def test_date_hints_only_for_certain_canonical_date_columns():
    from recoverystats.io.mapping import TableMapping
    from recoverystats.io.readers import _date_hints

    names = ["participant_id", "Event Date", "event_type", "note_date"]
    assert set(_date_hints(names, "events", TableMapping())) == {"Event Date"}
    renamed = TableMapping(rename={"when": "event_date"})
    assert set(_date_hints(["participant_id", "when"], "events", renamed)) == {"when"}
    # a date format, a value map, or two columns landing on one name: no hint
    assert _date_hints(names, "events", TableMapping(date_format=("%m/%d/%Y",))) == {}
    mapped = TableMapping(values={"event_date": {"x": "y"}})
    assert _date_hints(["event_date"], "events", mapped) == {}
    assert _date_hints(["event_date", "Event Date"], "events", TableMapping()) == {}
    assert _date_hints(names, "not_a_table", TableMapping()) == {}


def test_columns_coerced_on_threads_give_the_same_findings(tmp_path, monkeypatch):
    folder = tmp_path / "p"
    folder.mkdir()
    ev = big_program(folder, n=300, per=10)
    ev.loc[[3, 50, 51], "event_date"] = ["2025-02-30", "soon", " 2024-05-01"]
    ev.loc[[7, 50], "event_type"] = ["Arrest", "teleportation"]
    ev.loc[[9], "participant_id"] = ["P999999"]
    ev.to_csv(folder / "events.csv", index=False)
    monkeypatch.setattr(build, "_PARALLEL_ROWS", 10**12)
    serial = rs.read_program(folder, on_error="drop")
    monkeypatch.setattr(build, "_PARALLEL_ROWS", 1)
    threaded = rs.read_program(folder, on_error="drop")
    pd.testing.assert_frame_equal(serial.validation, threaded.validation)
    pd.testing.assert_frame_equal(serial.events, threaded.events)
    pd.testing.assert_frame_equal(serial.flow, threaded.flow)
    assert {"date_impossible", "date_parse", "code_unknown", "orphan"} <= set(
        threaded.validation["rule"]
    )


@pytest.mark.parametrize("block", [1, 7, 1 << 16])
def test_sorted_candidates_in_blocks(monkeypatch, block):
    monkeypatch.setattr(build._RowCodes, "BLOCK", block)
    rng = np.random.default_rng(block)
    for _ in range(30):
        n = int(rng.integers(1, 500))
        rank = np.sort(rng.integers(0, 50, n))
        dates = (np.datetime64("2024-01-01") + rng.integers(0, 20, n)).astype("datetime64[ns]")
        order = np.lexsort((dates, rank))
        rank, dates = rank[order], dates[order]
        codes = build._RowCodes(rank, dates, None)
        full = codes.full()
        assert (np.diff(full) >= 0).all()
        ref = pd.Series(full).duplicated(keep=False).to_numpy()
        got = codes.sorted_candidates()
        assert got is not None and (got == ref).all()
        if n > 2 and len(np.unique(full)) > 1:  # out of order: no neighbour shortcut
            swapped = build._RowCodes(rank[::-1].copy(), dates[::-1].copy(), None)
            assert swapped.sorted_candidates() is None


def test_typed_dates_beyond_python_years_are_a_finding_not_a_crash(tmp_path):
    """A Parquet date32 beyond year 9999 (e.g. DuckDB's 'infinity'::DATE, day 2**31 - 1) is
    reported as out of range; the fast range check must not turn it into a Python date."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import recoverystats as rs

    days = pa.array([19000, 19001, 2**31 - 1], type=pa.int32()).cast(pa.date32())
    src = tmp_path / "p"
    src.mkdir()
    pq.write_table(pa.table({"participant_id": ["P001", "P002", "P003"], "enrollment_date": days,
                             "group": ["a", "b", "a"]}), src / "participants.parquet")
    prog = rs.read_program(src, on_error="drop")
    v = prog.validation
    assert v[["rule", "column"]].to_dict("records") == [{"rule": "date_out_of_range", "column": "enrollment_date"}]
    assert list(prog.participants["participant_id"]) == ["P001", "P002"]
