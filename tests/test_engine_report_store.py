"""The report's compact measure store on an engine (engines/report.py): the frames a
section gets are exactly those the measures return, with a fraction of the memory."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ibis")
pa = pytest.importorskip("pyarrow")

import recoverystats as rs  # noqa: E402
from recoverystats.engines.report import MeasureStore, _compact, _to_pandas, for_report  # noqa: E402
from recoverystats.report.build import parse_quarter, with_program_info  # noqa: E402
from recoverystats.report.config import load_config  # noqa: E402
from recoverystats.report.context import ReportContext, label_quarter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_compact_round_trips_exactly_and_is_smaller():
    n = 1000
    rng = np.random.default_rng(1)
    codes = rng.choice(["a", "bb", None], n)
    whole = rng.integers(0, 400, n).astype(float)
    whole[::7] = np.nan
    frac = rng.normal(size=n)  # not representable in float32: kept float64
    big = rng.integers(0, 2**40, n)
    small = rng.integers(-3, 3, n)
    t = pa.table({"code": pa.array(codes, pa.string()), "whole": pa.array(whole, from_pandas=True),
                  "frac": pa.array(frac), "big": pa.array(big), "small": pa.array(small),
                  "flag": pa.array(rng.random(n) < 0.5),
                  "date": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in small], pa.date32())})
    store = MeasureStore(pd.DataFrame({"participant_id": [f"p{i}" for i in range(n)], "_group": "x"}))
    store.put("m", t, columns=["participant_id", *t.column_names])
    got = store["m"]
    want = _to_pandas(t)
    want.insert(0, "participant_id", [f"p{i}" for i in range(n)])
    want["_group"] = "x"
    pd.testing.assert_frame_equal(got, want)
    assert _compact(t.column("code")).type.index_type == pa.int8()
    assert _compact(t.column("whole")).type == pa.float32()
    assert _compact(t.column("frac")).type == pa.float64()
    assert _compact(t.column("big")).type == pa.int64()
    assert _compact(t.column("small")).type == pa.int8()
    assert store.nbytes(shared=False) < 0.7 * t.nbytes  # frac and big (40% of it) stay as they are


def test_store_put_rejects_misaligned_rows():
    store = MeasureStore(pd.DataFrame({"participant_id": ["a", "b"], "_group": "x"}))
    with pytest.raises(RuntimeError, match="rows"):
        store.put("m", pa.table({"x": [1, 2, 3]}), columns=["x"])


@pytest.fixture(scope="module")
def contexts(tmp_path_factory):
    src = tmp_path_factory.mktemp("s") / "sample"
    shutil.copytree(ROOT / "data" / "sample", src)
    eng = rs.read_program(src, engine="duckdb", memory_limit="1GB")
    start, as_of = parse_quarter("2026Q3")
    prev_as_of = start - pd.Timedelta(days=1)

    def ctx(prog):
        cfg = with_program_info(load_config(None), prog)
        c = ReportContext(prog=prog, cfg=cfg, quarter=label_quarter(as_of), start=start, as_of=as_of,
                          prev_as_of=prev_as_of, min_cell=11, suppress=True)
        c.compute_measures()
        return c

    return eng, ctx(for_report(eng)), as_of, prev_as_of, ctx


def test_store_frames_equal_the_collected_measures(contexts):
    """Every measure frame (columns, order, dtypes, values, attrs) equals run_measure's collected frame."""
    from recoverystats.engines.measures import run_measure

    eng, c, as_of, prev_as_of, _ = contexts
    cfg = c.cfg
    assert isinstance(c.measures, MeasureStore)
    want = {
        "retention": run_measure(eng, "retention", days=cfg.retention_days, as_of=as_of, completion_counts=True),
        "relapse": run_measure(eng, "relapse", window_days=cfg.relapse_window, as_of=as_of),
        "relapse_tte": run_measure(eng, "relapse", window_days=None, as_of=as_of),
        "followup": run_measure(eng, "followup", window=cfg.followup_window, as_of=as_of,
                                target=cfg.targets.get("followup_rate", 0.8), due_rule="window_closed"),
        "engagement": run_measure(eng, "engagement", first_days=90, as_of=as_of, engaged_min_contacts=3),
        **{lvl: run_measure(eng, "recidivism", window_days=cfg.recidivism_window, level=lvl, as_of=as_of,
                            missing_release="enrollment") for lvl in cfg.recidivism_levels},
    }
    for key, w in want.items():
        w = w.copy()
        w["_group"] = w[cfg.group_column].astype("string").fillna("(missing)")
        got = c.measures[key]
        pd.testing.assert_frame_equal(got, w, obj=key)
        assert got.attrs == w.attrs, key
        assert c.definitions[key] == w.attrs["measure"]
    # last quarter: the columns the key numbers count, equal to the full measure's
    prev = run_measure(eng, "relapse", window_days=cfg.relapse_window, as_of=prev_as_of)
    got = c.prev["relapse"]
    assert list(got.columns) == ["relapsed", "eligible", "_group"]
    pd.testing.assert_series_equal(got["relapsed"], prev["relapsed"])
    pd.testing.assert_series_equal(got["eligible"], prev["eligible"])
    # the first mentors equal the pandas context's
    mem = ReportContext.__new__(ReportContext)
    mem.prog, mem.as_of = eng.to_program(), as_of
    pd.testing.assert_series_equal(c.mentor, mem._mentor_clusters(), check_names=False)


def test_store_is_smaller_than_the_frames(contexts):
    from recoverystats.engines.report import frame_bytes, memory_per_participant

    _, c, *_ = contexts
    per = memory_per_participant(c.measures, c.prev)
    full = sum(frame_bytes(c.measures[k]) for k in c.measures if k != "noms") / len(
        c.measures.shared)
    assert per["total"] < full / 3
    # the shared columns held in memory: compact Arrow, a fraction of the same columns as pandas objects
    assert per["shared"] < frame_bytes(c.measures.shared) / c.measures.rows / 3


def test_group_labels_equal_astype_string():
    """_group built from one string per group equals the pandas rule value for value and dtype."""
    from recoverystats.engines.report import group_labels

    cases = [pd.Series(["a", "b", None, "a"], dtype="string[pyarrow]"), pd.Series(["a", None, "b"], dtype=object),
             pd.Series([1.0, np.nan, 2.0]), pd.Series([3, 1, 3]), pd.Series([], dtype=object),
             pd.Series([None, None], dtype=object), pd.Series(pd.Categorical(["x", None, "y"]))]
    for s in cases:
        pd.testing.assert_series_equal(group_labels(s), s.astype("string").fillna("(missing)"))


def test_store_keeps_measures_in_files_and_removes_them(tmp_path):
    """The own columns live in files of the store's folder (read back per column); the folder
    goes with the store."""
    import gc

    store = MeasureStore(pd.DataFrame({"participant_id": ["a", "b", "c"], "_group": "x"}), folder=tmp_path)
    store.put("m", pa.table({"flag": [True, False, None], "d": pa.array([1.5, 2.0, None])}),
              columns=["participant_id", "flag", "d"])
    files = list(tmp_path.rglob("*.arrow"))
    assert len(files) == 1
    pd.testing.assert_series_equal(store.own_column("m", "d"), pd.Series([1.5, 2.0, np.nan], name="d"))
    assert list(store.columns_of("m", ["d", "_group"]).columns) == ["d", "_group"]
    with pytest.raises(KeyError):
        store.own_column("m", "participant_id")  # a shared column, not the measure's own
    del store
    gc.collect()
    assert not files[0].exists()


def test_matched_engaged_equal_on_both_paths(contexts):
    """The flow's matched/engaged/group counts: by position on the engine, by identifier on pandas."""
    eng, c, as_of, prev_as_of, ctx = contexts
    mem = ctx(eng.to_program())
    got, want = c.matched_engaged(), mem.matched_engaged()
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and len(a) == len(b) == len(c.participants)

    def counts(flags):
        matched, engaged, group = flags
        return {g: (int((matched & (group == g)).sum()), int((engaged & (group == g)).sum())) for g in set(group)}

    assert counts(got) == counts(want)
    assert sum(m for m, _ in counts(want).values()) > 0 and sum(e for _, e in counts(want).values()) > 0


@pytest.mark.parametrize("limit", ["3GB", None])
def test_release_engine_cache_keeps_the_limit(tmp_path, limit):
    """The cache of a database file is released and the limit given (or DuckDB's default) is
    restored exactly, also after several releases (DuckDB shows it rounded: '2.7 GiB');
    an in-memory database (its cached blocks are the tables) is left alone."""
    from recoverystats.engines.report import release_engine_cache

    src = tmp_path / "sample"
    shutil.copytree(ROOT / "data" / "sample", src)
    eng = rs.read_program(src, engine="duckdb", memory_limit=limit, database=tmp_path / "p.duckdb")
    con = eng.backend.con

    def shown():
        return con.execute("SELECT current_setting('memory_limit')").fetchone()

    before = shown()
    for _ in range(3):
        assert release_engine_cache(eng) is True
        assert shown() == before
    mem = rs.read_program(src, engine="duckdb", memory_limit="1GB")
    assert release_engine_cache(mem) is False
    assert release_engine_cache(object()) is False


@pytest.mark.slow  # two whole reports (~90 s on the shared 2-core machine)
def test_flow_groups_of_a_numeric_group_column_with_gaps_equal_on_both_paths(tmp_path):
    """The flow counts matched/engaged by the participants' _group labels on both paths: a
    whole-number group column with blanks is Int64 in the participants ("1") but float in
    the measure frames ("1.0"), and a quarter that cuts enrolment leaves the store with more
    rows than the report's participants (found in review)."""
    from recoverystats.report.build import quarterly

    src = tmp_path / "sample"
    shutil.copytree(ROOT / "data" / "sample", src)
    clients = pd.read_csv(src / "clients.csv", dtype=str, keep_default_na=False)
    clients.loc[clients.index % 5 == 0, "Prior Incarcerations"] = ""
    clients.to_csv(src / "clients.csv", index=False)
    cfg = {"groups": {"column": "prior_incarcerations"}}
    flows = {}
    for engine in ("pandas", "duckdb"):
        rep = quarterly(rs.read_program(src, engine=engine), quarter="2026Q1", config=cfg)
        flows[engine] = rep.tables["flow"].data
    pd.testing.assert_frame_equal(flows["duckdb"], flows["pandas"])
    assert len(flows["pandas"]) > 5  # several mentored groups, labelled as the census labels them
