"""The quarterly report on a program held by an engine.

The report code stays as it is (DESIGN 14: suppression and the privacy scan run in
Python, after collection). What it needs from the program is small: the participants
table (one row per person, with the covariates the tables are broken down by), the
mentors, the validation findings and the flow. Those are collected; the large tables
(events, contacts, assessments, matches) never leave the engine: the measures run there
(:mod:`recoverystats.engines.measures`) and only their per-participant results are
collected, compactly (:class:`MeasureStore`).

Why per-participant columns and not only sufficient statistics (issue 17 allows both:
"per-participant outcome tables are collected when they fit"): the report's adjusted
logistic regressions (covariates such as age are continuous, variances clustered by
mentor) and Table 1 (means and SDs) need the rows, and so do the p-charts (quarter of
each window). Collected once and compactly, the shared participant columns stay in
memory (about 40 bytes per participant as compact Arrow) and the measures' own columns
(about 0.34 KB per participant) go to Arrow files in a temporary folder, read back per
section (docs/scale.md), and every section then runs the same tested Python code as on
pandas, so the published numbers are identical across engines by construction (DESIGN 14
#14), with no second, count-based implementation of each section to keep in step. What
made the earlier design fail at 10M (killed at 14.4 GB) was not the rows but their
copies: about 20 frames of 10M rows, each repeating the participant's identifier and
covariates as Python objects, held for the whole report. Here:

- the participant columns every measure repeats (``participant_id, group, site,
  mentor_id``, covariates, ``enrollment_date``) are collected **once**, as the measures
  return them (:func:`engine_measures`), and kept as compact Arrow columns (codes as
  dictionaries); the report's ``_group`` as its distinct labels and a small code per row;
  a section gets them as pandas columns (Python objects) only while it runs;
- of each measure only its **own output columns** are collected, sorted by
  ``participant_id`` like the shared columns (the alignment is checked), in the smallest
  lossless Arrow type (flags as bits, codes and reasons as dictionaries with 8-bit
  indices, whole-number floats and small integers narrowed only when the round trip is
  exact, dates as 32-bit days), and written to an Arrow (Feather V2) file: nothing of
  them stays in memory between sections;
- a section asking ``ctx.measures[key]`` gets the frame the pandas path holds
  (the same columns, column order, dtypes and ``attrs``), assembled on demand from the
  shared columns and the measure's own columns cast back to their original types; one
  assembled frame is cached (sections ask for the same measure several times in a row)
  and dropped after each section; the sections read only the columns they use
  (``ReportContext.measure_columns`` -> :meth:`MeasureStore.columns_of`: only those
  columns are read from the file);
- the program flow finds each participant's row in the store with one Arrow hash lookup
  (``ReportContext.matched_engaged``, :meth:`MeasureStore.positions`), not with Python
  sets of millions of identifier strings;
- DuckDB's buffer cache (up to ``memory_limit``) is handed back after the measures
  (:func:`release_engine_cache`): the sections do not query the engine;
- the previous quarter's measures feed only the key-numbers table (counts by group of
  eligible participants and events): of them, only the ``_group`` column and the
  eligibility and outcome columns that table uses are kept, and the measures it does
  not use (recidivism levels but the first) are not run;
- the first mentor per participant (the cluster of the clustered variances) comes from
  the measures' ``mentor_id``; the matches table is not collected.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.io.program import ProgramData, empty_table

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from recoverystats.report.context import ReportContext

#: Tables collected for the report (one row per participant or mentor).
COLLECTED: tuple[str, ...] = ("participants", "mentors")


@dataclass(frozen=True, slots=True, repr=False)
class EngineBackedProgram(ProgramData):
    """A :class:`ProgramData` for the report: small tables collected, the rest on the engine.

    ``events``, ``contacts``, ``assessments`` and ``matches`` are empty frames here; the
    report asks :meth:`rows` for their sizes and computes the measures on
    :attr:`engine_program`.
    """

    engine_program: Any = None

    def rows(self, name: str) -> int:
        """Rows kept in table ``name`` (from the flow table; the engine holds the rows)."""
        f = self.flow
        hit = f[f["table"] == name]
        return int(hit["rows_kept"].iloc[0]) if len(hit) else 0


def for_report(prog: Any) -> EngineBackedProgram:
    """The program as the report takes it: participants and mentors collected."""
    from recoverystats.schema.spec import TABLE_NAMES

    frames = {n: prog.to_pandas(n) if n in COLLECTED else empty_table(n) for n in TABLE_NAMES}
    return EngineBackedProgram(
        **frames,
        validation=prog.validation,
        flow=prog.flow,
        sources=prog.sources,
        as_of=prog.as_of,
        source=prog.source,
        labels=prog.labels,
        info=prog.info,
        engine_program=prog,
    )


def table_rows(prog: Any, name: str) -> int:
    """Rows of table ``name`` whether the program is in memory or on an engine."""
    if isinstance(prog, EngineBackedProgram):
        return prog.rows(name)
    return len(getattr(prog, name))


def measure_source(prog: Any) -> Any:
    """What the measures run on: the engine program behind a report program, else the program."""
    return getattr(prog, "engine_program", None) or prog


# ---------------------------------------------------------------------------
# compact per-participant measures
# ---------------------------------------------------------------------------
def _compact(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """``arr`` in the smallest type it round-trips through exactly (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        d = pc.dictionary_encode(arr)
        n = len(d.dictionary)
        idx = pa.int8() if n < 2**7 else pa.int16() if n < 2**15 else None
        if idx is None:  # mostly distinct (identifiers): a dictionary would be larger
            return pa.chunked_array([arr])
        return pa.chunked_array([pa.DictionaryArray.from_arrays(d.indices.cast(idx), d.dictionary)])
    if pa.types.is_floating(t) and t.bit_width == 64:
        f32 = arr.cast(pa.float32(), safe=False)
        if f32.cast(t).equals(arr):
            return pa.chunked_array([f32])
    elif pa.types.is_integer(t) and t.bit_width > 8:
        for small in (pa.int8(), pa.int16(), pa.int32()):
            if small.bit_width >= t.bit_width:
                break
            try:
                return pa.chunked_array([arr.cast(small)])  # safe cast: fails when a value does not fit
            except (pa.ArrowInvalid, OverflowError):
                continue
    return pa.chunked_array([arr])


def _original(arr: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    """A :func:`_compact` column back in its original type."""
    return arr.cast(type_) if arr.type != type_ else arr


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as :func:`recoverystats.engines.measures.collect` converts it."""
    df = table.to_pandas(date_as_object=False)
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c].dtype) and df[c].dtype != "datetime64[ns]":
            df[c] = df[c].astype("datetime64[ns]")
    return df


@dataclass
class _Stored:
    columns: list[str]  # the frame's columns in order (shared and own, without _group)
    path: Path  # the own columns, compact, as an Arrow (Feather V2) file
    types: dict[str, Any]  # own column -> original Arrow type
    attrs: dict[str, Any]
    group: bool
    nbytes: int  # bytes of the compact own columns


def group_labels(values: pd.Series) -> pd.Series:
    """The report's ``_group`` of a group column: ``values.astype("string").fillna("(missing)")``.

    The same values and dtype, built from the distinct values: every row refers to one
    string object per group, where ``astype`` makes a new Python string per row (10M
    participants: 0.6 GB instead of 0.08 GB on pandas 2).
    """
    if values.dtype == object:  # factorize would merge 1, 1.0 and True (equal as values, not as text)
        return values.astype("string").fillna("(missing)")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = pd.Series(uniques).astype("string")  # the distinct values: never missing
    labels = pd.concat([labels, pd.Series(["(missing)"], dtype=labels.dtype)], ignore_index=True)
    out = labels.array.take(np.where(codes < 0, len(labels) - 1, codes))
    return pd.Series(out, index=values.index, name=values.name)


class MeasureStore(Mapping[str, pd.DataFrame]):
    """Per-participant measure frames held compactly, assembled when a section asks.

    A read-only mapping ``key -> DataFrame``, as ``ReportContext.measures`` is on the
    pandas path. The shared participant columns are held once, as compact Arrow columns
    sorted by ``participant_id`` (:meth:`shared_column`); each measure's own columns are
    written compactly, aligned with it, to an Arrow file in a temporary folder (removed
    with the store) and read back, only the columns asked for, when a section asks: the
    measures of a 10M-participant report (about 3 GB) then do not stay in memory for the
    whole report. ``store[key]`` returns the frame the pandas path would hold (same
    columns, order, dtypes and ``attrs``); the last frame assembled is cached.
    """

    def __init__(self, shared: pa.Table | pd.DataFrame, *, group: pd.Series | None = None,
                 folder: str | Path | None = None) -> None:
        import pyarrow as pa

        if isinstance(shared, pd.DataFrame):
            if "_group" in shared:
                group = shared["_group"]
            shared = pa.Table.from_pandas(shared.drop(columns=["_group"], errors="ignore"), preserve_index=False)
        self._types = {f.name: f.type for f in shared.schema}
        self._shared = {c: _compact(shared.column(c)) for c in shared.column_names}
        self._rows = shared.num_rows
        self._group: tuple[Any, np.ndarray] | None = None
        if group is not None:  # distinct labels (in the frame's dtype) and each row's position among them
            codes, uniques = pd.factorize(group, use_na_sentinel=False)
            small = np.int8 if len(uniques) < 2**7 else np.int16 if len(uniques) < 2**15 else np.int64
            self._group = (pd.array(np.asarray(uniques, dtype=object), dtype=group.dtype), codes.astype(small))
        self._items: dict[str, _Stored | pd.DataFrame] = {}
        self._cache: tuple[str | None, pd.DataFrame | None] = (None, None)
        self._written = 0
        self._folder = Path(tempfile.mkdtemp(prefix="recoverystats-measures-", dir=folder))
        weakref.finalize(self, shutil.rmtree, str(self._folder), True)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def rows(self) -> int:
        """Participants (rows of every measure frame)."""
        return self._rows

    @property
    def group_codes(self) -> tuple[Any, np.ndarray]:
        """``_group`` as its distinct labels and each row's position among them."""
        if self._group is None:
            raise KeyError("_group")
        return self._group

    def has_values(self, name: str) -> bool:
        """Whether shared column ``name`` exists and has a value that is not missing (``notna().any()``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        a = self._shared.get(name)
        if a is None or a.null_count == len(a):
            return False
        if pa.types.is_floating(a.type):
            return bool(pc.any(pc.invert(pc.is_nan(a.drop_null()))).as_py())
        return True

    def shared_table_column(self, name: str) -> pa.ChunkedArray:
        """One shared column as Arrow, in its original type."""
        return _original(self._shared[name], self._types[name])

    def positions(self, participant_ids: pd.Series) -> np.ndarray:
        """Row of each of ``participant_ids`` among the shared columns (Arrow hash lookup; no
        Python string per identifier). Raises when an identifier is not there."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = pa.array(participant_ids, from_pandas=True).cast(pa.large_string())
        pos = pc.index_in(ids, value_set=self.shared_table_column("participant_id").cast(pa.large_string()))
        if pos.null_count:
            raise RuntimeError(f"{pos.null_count} participants are not in the measures' rows.")
        return pos.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)

    def shared_column(self, name: str) -> pd.Series:
        """One shared column as the measure frames hold it."""
        import pyarrow as pa

        if name == "_group":
            labels, codes = self.group_codes
            return pd.Series(labels.take(codes), index=pd.RangeIndex(self._rows), name="_group")
        return _to_pandas(pa.table({name: self.shared_table_column(name)}))[name]

    def with_group_only(self, *, folder: str | Path | None = None) -> MeasureStore:
        """A store with the same ``_group`` and no other shared column (last quarter's)."""
        import pyarrow as pa

        out = MeasureStore(pa.table({}), folder=folder)
        out._rows, out._group = self._rows, self._group
        return out

    @property
    def shared(self) -> pd.DataFrame:
        """The shared columns as one DataFrame (for tests and sizing; sections ask per column)."""
        cols = [*self._shared, *(["_group"] if self._group is not None else [])]
        return pd.DataFrame({c: self.shared_column(c) for c in cols}, copy=False)

    def put(self, key: str, own: pa.Table, *, columns: Sequence[str], attrs: Mapping[str, Any] | None = None,
            group: bool = True) -> None:
        """Keep measure ``key``: its own columns (``own``, rows aligned with the shared
        columns) and the order of the frame's columns (``columns``: shared and own)."""
        import pyarrow as pa
        import pyarrow.feather as feather

        if own.num_rows != self._rows:
            raise RuntimeError(f"measure {key!r}: {own.num_rows} rows, the shared columns have {self._rows}.")
        compact = pa.table({c: _compact(own.column(c)) for c in own.column_names})
        self._written += 1
        path = self._folder / f"{self._written}.arrow"
        feather.write_feather(compact, str(path), compression="uncompressed")
        self._items[key] = _Stored(columns=list(columns), path=path,
                                   types={c: own.schema.field(c).type for c in own.column_names},
                                   attrs=dict(attrs or {}), group=group, nbytes=int(compact.nbytes))
        self.release()

    def put_frame(self, key: str, df: pd.DataFrame) -> None:
        """Keep a frame as it is (a small summary table such as the NOMs change)."""
        self._items[key] = df

    def columns_of(self, key: str, columns: Sequence[str]) -> pd.DataFrame:
        """Only ``columns`` of measure ``key`` (those it has, in the order given; ``_group``
        included when asked): assembled from the stored columns alone, not cached."""
        item = self._items[key]
        if isinstance(item, pd.DataFrame):
            return item[[c for c in dict.fromkeys(columns) if c in item]]
        has = set(item.columns) | ({"_group"} if item.group else set())
        wanted = [c for c in dict.fromkeys(columns) if c in has]
        df = self._assemble(item, columns=[c for c in wanted if c != "_group"])
        if "_group" in wanted:
            df["_group"] = self.shared_column("_group")
        return df[wanted]

    def own_column(self, key: str, column: str) -> pd.Series:
        """One of measure ``key``'s own columns, in the shared columns' row order."""
        item = self._items[key]
        if not isinstance(item, _Stored) or column not in item.types:
            raise KeyError(f"measure {key!r} has no own column {column!r}")
        return self._assemble(item, columns=[column])[column]

    def attrs(self, key: str) -> dict[str, Any]:
        """``attrs`` of a measure's frame, without assembling it."""
        item = self._items[key]
        return item.attrs if isinstance(item, _Stored) else dict(item.attrs)

    def release(self) -> None:
        """Drop the cached frame."""
        self._cache = (None, None)

    def __getitem__(self, key: str) -> pd.DataFrame:
        item = self._items[key]
        if isinstance(item, pd.DataFrame):
            return item
        if self._cache[0] == key and self._cache[1] is not None:
            return self._cache[1]
        self.release()
        df = self._assemble(item)
        self._cache = (key, df)
        return df

    def _assemble(self, item: _Stored, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The frame of ``item`` (only ``columns`` of it, and no ``_group``/``attrs``, when given).

        Every column is a new array (converted from Arrow), so the frame is built without
        a copy (no consolidation of millions of rows) and a section may change it freely.
        """
        import pyarrow as pa
        import pyarrow.feather as feather

        wanted = item.columns if columns is None else [c for c in item.columns if c in columns]
        mine = [c for c in wanted if c in item.types]
        own = pd.DataFrame()
        if mine:
            t = feather.read_table(str(item.path), columns=mine, memory_map=False)
            own = _to_pandas(pa.table({c: _original(t.column(c), item.types[c]) for c in mine}))
            del t
        cols = {c: (own[c] if c in item.types else self.shared_column(c)) for c in wanted}
        if columns is None and item.group:
            cols["_group"] = self.shared_column("_group")
        df = pd.DataFrame(cols, index=pd.RangeIndex(self._rows), copy=False)
        if columns is None:
            df.attrs = copy.deepcopy(item.attrs)
        return df

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def nbytes(self, *, shared: bool = True, measures: bool = True) -> int:
        """Bytes held: the measures' compact own columns (on disk) and the shared columns
        (in memory: the compact Arrow columns and ``_group``'s row codes)."""
        n = sum(it.nbytes for it in self._items.values() if isinstance(it, _Stored)) if measures else 0
        if shared:
            n += sum(a.nbytes for a in self._shared.values())
            n += int(self._group[1].nbytes) if self._group is not None else 0
        return n


def _group_source(table: pa.Table, g: str) -> pd.Series:
    """Column ``g`` of the shared columns as :func:`group_labels` takes it: text as pyarrow
    strings (the same labels as Python strings give, without one object per row), other
    types as the measure frames hold them."""
    import pyarrow as pa

    col = table.column(g)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pd.Series(pd.array(col.cast(pa.large_string()), dtype=pd.StringDtype("pyarrow")))
    return _to_pandas(table.select([g]))[g]


def _shared_columns(tables: Mapping[str, Any], as_of: pd.Timestamp) -> list[str]:
    """The participant columns every measure frame starts with (``_base`` of the measures)."""
    from recoverystats.engines.measures import _as_of_day, _base

    a, _ = _as_of_day(as_of, "report")
    return _base(tables, a, "report")[1]


def _group_column(df: pd.DataFrame, g: str) -> pd.Series:
    """The report's ``_group`` of a measure frame (as ``ReportContext._with_group``)."""
    return df[g].astype("string").fillna("(missing)") if g in df else pd.Series("(missing)", index=df.index,
                                                                                   dtype=object)


def _run(prog: Any, key: str, name: str, kwargs: dict[str, Any], shared: list[str], pid: pa.ChunkedArray | None,
         keep: Sequence[str] | None = None) -> tuple[Any, pa.Table, dict[str, Any]]:
    """Run one measure on the engine; return its expression, own columns (sorted by participant) and context."""
    from recoverystats.engines.measures import MEASURES, _check_target, _resolve

    kw = dict(kwargs)
    tables, ts, source, note = _resolve(prog, name, kw)
    target = _check_target(kw.pop("target", 0.8)) if name == "followup" else None
    expr = MEASURES[name](tables, as_of=ts, **kw)
    own = [c for c in expr.columns if c not in shared and (keep is None or c in keep)]
    got = expr.select("participant_id", *own).order_by("participant_id").to_pyarrow()
    if pid is not None and not got.column("participant_id").equals(pid):
        raise RuntimeError(f"measure {key!r}: rows not aligned with the participants (participant_id order differs).")
    info = {"tables": tables, "as_of": ts, "as_of_source": source, "note": note, "kwargs": kw, "target": target}
    return expr, got.drop_columns(["participant_id"]), info


def engine_measures(ctx: ReportContext, prog: Any, *, say: Callable[[str], None] | None = None
                    ) -> tuple[MeasureStore, MeasureStore]:
    """This and last quarter's measures of the report, computed on the engine, held compactly.

    Parameters
    ----------
    ctx
        The report context (config, cut-offs, participants).
    prog
        The engine program (``EngineProgramData``).
    say
        Progress callback: one stage per measure.

    Returns
    -------
    (MeasureStore, MeasureStore)
        ``ctx.measures`` and ``ctx.prev`` (see the module docstring for what the previous
        quarter keeps).
    """
    from recoverystats.engines.measures import _covariates, describe
    from recoverystats.measures import noms_change

    say = say or (lambda stage: None)
    cfg = ctx.cfg
    g = cfg.group_column
    tables = prog.tables
    shared_cols = _shared_columns(tables, ctx.as_of)
    # the shared columns, as the first measure returns them (mentor_id: first mentor by as_of)
    base_expr = _base_select(tables, ctx.as_of)
    arrow = base_expr.order_by("participant_id").to_pyarrow()
    grp = group_labels(_group_source(arrow, g)) if g in arrow.column_names else pd.Series(
        "(missing)", index=pd.RangeIndex(arrow.num_rows), dtype=object)  # as ReportContext._with_group
    now = MeasureStore(arrow, group=grp)
    prev = now.with_group_only()
    del arrow, grp
    pid = now.shared_table_column("participant_id")
    has_fu = table_rows(ctx.prog, "assessments") > 0
    first = cfg.recidivism_levels[0]
    k90 = 90 if 90 in cfg.retention_days else cfg.retention_days[len(cfg.retention_days) // 2]

    enrolled_from = ctx.participants["enrollment_date"].min()
    runs: list[tuple[str, str, dict[str, Any]]] = [] if ctx.as_of < enrolled_from else [
        ("retention", "retention", {"days": cfg.retention_days, "as_of": ctx.as_of, "completion_counts": True}),
        ("relapse", "relapse", {"window_days": cfg.relapse_window, "as_of": ctx.as_of}),
        *[(lvl, "recidivism", {"window_days": cfg.recidivism_window, "level": lvl, "as_of": ctx.as_of,
                               "missing_release": "enrollment"}) for lvl in cfg.recidivism_levels],
    ]
    if has_fu and runs:
        runs.append(("followup", "followup", {"window": cfg.followup_window, "as_of": ctx.as_of,
                                              "target": cfg.targets.get("followup_rate", 0.8),
                                              "due_rule": "window_closed"}))
    prev_runs: list[tuple[str, str, dict[str, Any], list[str]]] = []
    if not ctx.prev_as_of < enrolled_from:  # as the pandas path: no measures before the first enrollment
        prev_runs = [
            ("retention", "retention", {"days": cfg.retention_days, "as_of": ctx.prev_as_of,
                                        "completion_counts": True}, [f"retained_{k90}", f"eligible_{k90}"]),
            ("relapse", "relapse", {"window_days": cfg.relapse_window, "as_of": ctx.prev_as_of},
             ["relapsed", "eligible"]),
            # key numbers show the first level; the pandas path computes every level (same warnings)
            *[(lvl, "recidivism", {"window_days": cfg.recidivism_window, "level": lvl, "as_of": ctx.prev_as_of,
                                   "missing_release": "enrollment"}, ["recidivated", "eligible"])
              for lvl in cfg.recidivism_levels if lvl == first],
        ]
        if has_fu:
            prev_runs.append(("followup", "followup", {"window": cfg.followup_window, "as_of": ctx.prev_as_of,
                                                       "target": cfg.targets.get("followup_rate", 0.8),
                                                       "due_rule": "window_closed"},
                              ["completed_in_window", "due"]))
    if table_rows(ctx.prog, "contacts") or table_rows(ctx.prog, "matches"):
        runs.append(("engagement", "engagement", {"first_days": 90, "as_of": ctx.as_of,
                                                  "engaged_min_contacts": 3}))
    runs.append(("relapse_tte", "relapse", {"window_days": None, "as_of": ctx.as_of}))
    runs.append(("recidivism_tte", "recidivism", {"window_days": None, "level": first, "as_of": ctx.as_of,
                                                  "missing_release": "enrollment"}))

    for key, name, kw in runs:
        say(f"measures: {key}")
        expr, own, info = _run(prog, key, name, kw, shared_cols, pid)
        columns = list(expr.columns)
        now.put(key, own, columns=columns, group=True)
        # attrs counted as run_measure counts them, on the columns they use (not a copy of
        # the whole frame: at 10M participants that was the measures stage's peak)
        frame = now._assemble(now._items[key], columns=_DESCRIBED)  # type: ignore[arg-type]
        described = describe(name, frame, **info)
        meta = described.attrs.get("measure")
        if isinstance(meta, dict) and "covariates" in meta:  # attach's rule, on the shared columns
            meta["covariates"] = [c for c in _covariates(tables["participants"]) if now.has_values(c)]
        now._items[key].attrs = copy.deepcopy(described.attrs)  # type: ignore[union-attr]
        del frame, described, own
    if has_fu:
        say("measures: noms")
        now.put_frame("noms", noms_change(prog, by=g, window=cfg.followup_window, as_of=ctx.as_of))
    for key, name, kw, keep in prev_runs:
        say(f"measures: {key} (previous quarter)")
        _, own, _ = _run(prog, key, name, kw, shared_cols, pid, keep=keep)
        prev.put(key, own, columns=list(own.column_names), group=True)
        del own
    return now, prev


#: The columns ``describe`` (attach, the notes, the follow-up summary) reads; the covariates
#: it lists are checked on the shared columns.
_DESCRIBED: frozenset[str] = frozenset({
    "eligible", "exclusion_reason", "discharge_date", "discharge_reason", "release_date_missing", "event_type",
    "index_source", "matched", "match_date", "enrollment_date", "due", "completed_in_window", "completed"})


def _base_select(tables: Mapping[str, Any], as_of: pd.Timestamp) -> Any:
    """The shared columns as one engine query (the measures' ``_base`` selection)."""
    from recoverystats.engines.measures import _as_of_day, _base, _select

    a, _ = _as_of_day(as_of, "report")
    p, base, _cov = _base(tables, a, "report")
    return _select(p, base, {})


def release_engine_cache(prog: Any) -> bool:
    """Let DuckDB hand back the memory its buffer cache holds once the measures are done.

    DuckDB keeps table blocks it has read cached up to ``memory_limit`` (3 GB of a 10M
    program) while the report's sections, which do not query it, need the memory. Lowering
    the limit evicts the cache (DuckDB has no other call for it); the limit is then set
    back to the value given to ``read_program`` (``RESET`` when none was: DuckDB's own
    default), not to the rounded value DuckDB shows. Only for a database file: in an
    in-memory database the cached blocks are the tables themselves, and evicting them would
    write them to the temporary folder. Returns whether the cache was released (a no-op on
    Spark, on an in-memory database and on a connection ``read_program`` did not make).
    """
    if getattr(prog, "engine", None) != "duckdb":
        return False
    backend = getattr(prog, "backend", None)
    con = getattr(backend, "con", None)
    if con is None or not getattr(backend, "_rs_on_disk", False) or not hasattr(backend, "_rs_memory_limit"):
        return False
    limit = backend._rs_memory_limit
    try:
        con.execute("SET memory_limit = '32MB'")
    except Exception:  # noqa: BLE001 - an engine that refuses keeps its cache; nothing is lost
        return False
    con.execute("RESET memory_limit" if limit is None else f"SET memory_limit = '{limit}'")
    return True


def first_mentors(store: MeasureStore, participant_ids: pd.Series) -> pd.Series:
    """First mentor matched by as_of, indexed by participant, in ``participant_ids`` order
    (matched participants only; ``ReportContext.mentor``)."""
    m = pd.Series(store.shared_column("mentor_id").to_numpy(),
                  index=store.shared_column("participant_id").astype(str).to_numpy())
    ids = participant_ids.astype(str).to_numpy()
    return m.reindex(ids).dropna().astype("string")  # the dtype of measures.first_mentor


def frame_bytes(df: pd.DataFrame) -> int:
    """Bytes a frame holds, each Python object counted once (pandas' ``deep=True`` counts a
    string shared by many rows once per row, e.g. the deduplicated codes from Arrow)."""
    import sys

    total = 0
    for c in df.columns:
        s = df[c]
        if s.dtype == object:
            seen: dict[int, int] = {}
            for v in s.to_numpy():
                seen.setdefault(id(v), sys.getsizeof(v))
            total += 8 * len(s) + sum(seen.values())
        else:
            total += int(s.memory_usage(deep=True, index=False))
    return total


def memory_per_participant(store: MeasureStore, prev: MeasureStore | None = None) -> dict[str, float]:
    """Bytes per participant held by the measure stores (for sizing; docs/scale.md): the
    shared columns (in memory), this quarter's and last quarter's own columns (in files,
    read when a section asks)."""
    n = max(store.rows, 1)
    out = {"shared": store.nbytes(measures=False) / n, "measures": store.nbytes(shared=False) / n}
    if prev is not None:
        out["previous"] = prev.nbytes(shared=False) / n
    out["total"] = float(sum(out.values()))
    return {k: float(v) for k, v in out.items()}


__all__ = ["EngineBackedProgram", "MeasureStore", "for_report", "table_rows", "measure_source", "engine_measures",
           "first_mentors", "memory_per_participant", "frame_bytes", "group_labels", "release_engine_cache"]
