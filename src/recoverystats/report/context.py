"""The shared context of one quarterly report computation (see :mod:`recoverystats.report.build`).

Every section of :mod:`recoverystats.report.sections` is a function of this context.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.measures._common import first_mentor
from recoverystats.report.config import ReportConfig
from recoverystats.report.model import Section, TableBlock, TableRegistry
from recoverystats.report.sections._shared import TOTAL

__all__ = ["ReportContext", "label_quarter"]


def label_quarter(ts: pd.Timestamp) -> str:
    """The quarter of a date, e.g. ``2026Q3``."""
    return str(pd.Period(ts, freq="Q"))


class ReportContext:
    """State of one report computation, shared by the sections (internal).

    Holds the program, the config, the quarter and its dates, the suppression settings
    (``min_cell``, ``suppress``, ``protect_derived``, ``protect_figures``), the
    :class:`~recoverystats.report.model.TableRegistry` every section registers its tables
    with, the measures of this and the previous quarter and their definitions, and the
    helpers several sections use (rate rows, active participants, text summaries).
    """

    def __init__(self, *, prog: Any, cfg: ReportConfig, quarter: str, start: pd.Timestamp,
                 as_of: pd.Timestamp, prev_as_of: pd.Timestamp, min_cell: int, suppress: bool,
                 previous: Sequence[Any] = (), protect_derived: bool = True) -> None:
        self.prog = prog
        self.cfg = cfg
        self.quarter = quarter
        self.prev_quarter = label_quarter(prev_as_of)
        self.start = start
        self.as_of = as_of
        self.prev_as_of = prev_as_of
        self.min_cell = min_cell
        self.suppress = suppress
        self.protect_derived = protect_derived
        #: draw figures only from published data (the testing switch of quarterly() turns it off)
        self.protect_figures = True
        from recoverystats.schema.labels import Labels

        #: display labels of codes: the defaults, program.toml's [labels], the config's [labels]
        self.labels = Labels(dict(getattr(prog, "labels", None) or {})).merged(cfg.labels)
        self.registry = TableRegistry(min_cell=min_cell, enabled=suppress, quarter=quarter, previous=previous,
                                      protect_derived=protect_derived, labels=self.labels)
        self.measures: dict[str, pd.DataFrame] = {}
        self.prev: dict[str, pd.DataFrame] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.notes: dict[str, list[str]] = {}
        self.key_rows: list[dict[str, Any]] = []
        #: settings a section adds to results.json's provenance (e.g. the imputation settings)
        self.provenance_extra: dict[str, Any] = {}
        g = cfg.group_column
        p = prog.participants
        from recoverystats.engines.report import EngineBackedProgram

        #: DuckDB/Spark: the measures run on the engine and are held compactly (engines.report)
        self.on_engine = isinstance(prog, EngineBackedProgram)
        enrolled = p["enrollment_date"] <= as_of
        from recoverystats.engines.report import group_labels

        if self.on_engine and bool(enrolled.all()):
            # everyone enrolled by the cut-off: the collected table itself (no copy of its
            # columns; millions of rows on an engine) with the _group column beside it
            self.participants = pd.concat([p, group_labels(p[g]).rename("_group")], axis=1, copy=False)
        else:
            self.participants = p[enrolled].copy()
            self.participants["_group"] = group_labels(self.participants[g])
        self.groups = sorted(self.participants["_group"].unique().tolist())
        ref = cfg.reference
        if ref is not None and ref not in self.groups:
            raise InvalidParameterError(
                f"config [groups] reference: {ref!r} is not a level of {g!r}; levels are {', '.join(self.groups)}."
            )
        if ref is None:
            ref = "comparison" if "comparison" in self.groups else self.groups[0]
        self.reference = ref
        #: the groups the targets apply to ([groups] program; default: every group but the reference)
        prog_groups = cfg.program_groups or tuple(x for x in self.groups if x != ref)
        bad = [x for x in prog_groups if x not in self.groups]
        if bad:
            raise InvalidParameterError(
                f"config [groups] program: {', '.join(map(repr, bad))} not a level of {g!r}; levels are "
                f"{', '.join(self.groups)}."
            )
        self.program_groups: list[str] = list(prog_groups)
        #: progress callback (stage name), e.g. the CLI's stage lines; a no-op by default
        self.progress: Callable[[str], None] = lambda stage: None
        # on an engine the first mentors come with the measures (compute_measures), when asked
        self._mentor: pd.Series | None = None if self.on_engine else self._mentor_clusters()
        self.mentored: list[str] = []
        self.flow_definition = ""

    # -- helpers ------------------------------------------------------------------
    @property
    def mentor(self) -> pd.Series:
        """First mentor matched by as_of, indexed by participant (matched participants only)."""
        if self._mentor is None:
            if not hasattr(self.measures, "shared_column"):
                return pd.Series(dtype=object)  # engine: before the measures
            from recoverystats.engines.report import first_mentors

            self._mentor = first_mentors(self.measures, self.prog.participants["participant_id"])
        return self._mentor

    def matched_engaged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per participant enrolled by the cut-off (one order for the three): matched with a
        mentor by the cut-off, engaged (engagement measure; ``False`` without it), and
        ``_group``; the program flow counts them.

        ``_group`` is the participants' (the census's labels); on an engine matched and
        engaged come from the measure store, at each participant's row found by one Arrow
        hash lookup (no Python string per identifier); on pandas from the first mentors
        and the engagement measure, matched by identifier.
        """
        store = self.measures
        p = self.participants
        group = p["_group"].to_numpy(dtype=object)  # the participants' labels, as the census and Table 1 use
        if self.on_engine:
            pos = store.positions(p["participant_id"])  # each participant's row in the store
            matched = store.shared_column("mentor_id").notna().to_numpy()[pos]
            if "engagement" in store:
                engaged = store.own_column("engagement", "engaged").to_numpy(dtype=bool, na_value=False)[pos] & matched
            else:
                engaged = np.zeros(len(p), dtype=bool)
            return matched, engaged, group
        ids = p["participant_id"].astype(str)
        matched = ids.isin(set(self.mentor.index.astype(str))).to_numpy()
        if "engagement" in store:
            eng = self.measure_columns("engagement", ["participant_id", "engaged"])
            e_ok = pd.Series(eng["engaged"].to_numpy(), index=eng["participant_id"].astype(str).to_numpy()).reindex(ids)
            # engaged is float (1.0/0.0/NaN): missing counts as not engaged, without
            # fillna(False) on a float column (deprecated in pandas 3)
            engaged = e_ok.to_numpy(dtype=bool, na_value=False) & matched
        else:
            engaged = np.zeros(len(p), dtype=bool)
        return matched, engaged, group

    def _mentor_clusters(self) -> pd.Series:
        """First mentor matched by as_of, indexed by participant (matched participants only)."""
        first = first_mentor(self.prog, self.as_of)
        first.index = self.prog.participants["participant_id"].astype(str).to_numpy()
        return first.dropna()

    def _with_group(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        g = self.cfg.group_column
        from recoverystats.engines.report import group_labels

        out["_group"] = group_labels(out[g]) if g in out else "(missing)"
        return out

    def _define(self, key: str, df: pd.DataFrame) -> None:
        meta = df.attrs.get("measure")
        if isinstance(meta, dict):
            self.definitions[key] = meta

    # -- pass 1: measures -------------------------------------------------------------
    def compute_measures(self) -> None:
        from recoverystats import measures as M
        from recoverystats.engines.report import measure_source, table_rows

        src = measure_source(self.prog)
        if self.on_engine:
            self._compute_engine_measures(src)
            return

        cfg = self.cfg
        for when, store in ((self.as_of, self.measures), (self.prev_as_of, self.prev)):
            if when < self.participants["enrollment_date"].min():
                continue
            store["retention"] = M.retention(src, days=cfg.retention_days, as_of=when)
            store["relapse"] = M.relapse(src, window_days=cfg.relapse_window, as_of=when)
            for level in cfg.recidivism_levels:
                store[level] = M.recidivism(src, window_days=cfg.recidivism_window, level=level, as_of=when)
            if table_rows(self.prog, "assessments"):
                store["followup"] = M.followup(src, window=cfg.followup_window,
                                               target=cfg.targets.get("followup_rate", 0.8), as_of=when)
        if table_rows(self.prog, "contacts") or table_rows(self.prog, "matches"):
            self.measures["engagement"] = M.engagement(src, as_of=self.as_of)
        self.measures["relapse_tte"] = M.relapse(src, window_days=None, as_of=self.as_of)
        first_level = cfg.recidivism_levels[0]
        self.measures["recidivism_tte"] = M.recidivism(src, window_days=None, level=first_level,
                                                       as_of=self.as_of)
        if table_rows(self.prog, "assessments"):
            self.measures["noms"] = M.noms_change(src, by=cfg.group_column, window=cfg.followup_window,
                                                  as_of=self.as_of)
        for k, v in self.measures.items():
            self._define(k, v)
        for k in list(self.measures):
            if k in ("noms",):
                continue
            self.measures[k] = self._with_group(self.measures[k])
        for k in list(self.prev):
            self.prev[k] = self._with_group(self.prev[k])

    def _compute_engine_measures(self, src: Any) -> None:
        """The measures on DuckDB/Spark: the same frames, held compactly (engines.report).

        ``self.measures`` and ``self.prev`` become :class:`~recoverystats.engines.report.MeasureStore`
        mappings: a section asking for a measure gets the frame the pandas path holds; last
        quarter's measures keep only what the key numbers count.
        """
        from recoverystats.engines.report import engine_measures, release_engine_cache

        now, prev = engine_measures(self, src, say=self.progress)
        release_engine_cache(src)  # the sections do not query the engine
        for k in now:
            meta = now.attrs(k).get("measure")
            if isinstance(meta, dict):
                self.definitions[k] = meta
        self.measures, self.prev = now, prev  # type: ignore[assignment]

    # -- pass 2: analyses -> raw tables ----------------------------------------------------
    def analyse(self) -> list[Callable[[dict[str, TableBlock]], Section]]:
        """Pass 2: each switched-on section (in registry order) registers its raw tables
        and returns the function that composes it from the suppressed tables (pass 3);
        one progress stage per section."""
        from recoverystats.report.sections import enabled_sections

        specs = []
        for spec in enabled_sections(self.cfg):
            self.progress(f"section: {spec.key}")
            specs.append(spec.build(self))
            for store in (self.measures, self.prev):  # engine path: the frame a section asked for last
                release = getattr(store, "release", None)
                if release is not None:
                    release()
        return [s for s in specs if s is not None]

    def measure_columns(self, key: str, columns: Sequence[str], *, previous: bool = False) -> pd.DataFrame:
        """Only ``columns`` of measure ``key`` (those it has, in the order given).

        On an engine the frame is assembled from those columns alone (millions of rows:
        no whole measure frame is built for a section that reads three columns); on
        pandas it is ``measures[key][columns]``.
        """
        store = self.prev if previous else self.measures
        pick = getattr(store, "columns_of", None)
        if pick is not None:
            return pick(key, columns)
        df = store[key]
        return df[[c for c in dict.fromkeys(columns) if c in df]]

    # ---------------------------------------------------------------------------------
    def _rate_rows(self, df: pd.DataFrame, outcome: str, eligible: str, id_prefix: str
                   ) -> tuple[pd.DataFrame, dict[tuple[int, str], str]]:
        """n, events, Wilson estimate and CI by group plus a Total row (public rates API)."""
        from recoverystats.rates import proportion

        # the columns used, before filtering (no copy of the whole measure frame)
        df = df[[c for c in dict.fromkeys((outcome, eligible, "_group")) if c in df]]
        d = df[df[eligible].astype(bool)] if eligible in df else df
        d = d[d[outcome].notna()]
        rows = []
        if len(d):
            r = proportion(d, outcome, by="_group", conf_level=self.cfg.conf_level).table
            r = r.rename(columns={"_group": "group"})
            tot = proportion(d, outcome, conf_level=self.cfg.conf_level).table
            tot.insert(0, "group", TOTAL)
            full = pd.concat([r, tot], ignore_index=True)
        else:
            full = pd.DataFrame({"group": [*self.groups, TOTAL], "n": 0, "events": 0,
                                 "estimate": np.nan, "ci_lower": np.nan, "ci_upper": np.nan})
        full = full.set_index("group").reindex([*self.groups, TOTAL]).reset_index()
        full["n"] = full["n"].fillna(0)
        full["events"] = full["events"].fillna(0)
        rows.append(full)
        out = pd.concat(rows, ignore_index=True)[["group", "n", "events", "estimate", "ci_lower", "ci_upper"]]
        ids = {}
        for i, (g, n) in enumerate(zip(out["group"], out["n"], strict=True)):
            # the same eligible set can appear in several tables (e.g. retention at 180 days and
            # relapse within 180 days): cells of one group with equal n are linked too
            ids[(i, "n")] = (f"{id_prefix}|{g}|n", f"elig|{g}|{int(n)}")
            ids[(i, "events")] = f"{id_prefix}|{g}|events"
        return out, ids

    _RATE_DEP = {"estimate": ["n", "events"], "ci_lower": ["n", "events"], "ci_upper": ["n", "events"]}

    def key_numbers(self, blocks: dict[str, TableBlock]) -> list[dict[str, Any]]:
        from recoverystats.results.base import json_safe

        kb = blocks.get("key_numbers")
        if kb is None:
            return []
        return [json_safe(r) for r in kb.data.to_dict("records")]

    def _active(self, when: pd.Timestamp) -> pd.Series:
        p = self.participants
        enrolled = p["enrollment_date"] <= when
        left = p["discharge_date"].notna() & (p["discharge_date"] <= when)
        return enrolled & ~left












    # -- plain-language summaries (the full definitions are in the methods appendix, once) --
    def _summary(self, key: str) -> str:
        """A short description of a section's measure for the body of the report."""
        cfg = self.cfg
        see = " Full definitions and parameters: Methods and definitions."
        if key == "retention":
            params = self.definitions.get("retention", {}).get("parameters") or {}
            days = ", ".join(str(d) for d in cfg.retention_days)
            done = " (finishing the program counts as retained)" if params.get("completion_counts", True) else ""
            return (f"Retention at {days} days: the share of participants still enrolled that many days after "
                    f"enrollment{done}, among those enrolled long enough for that day to have passed by the "
                    "cut-off." + see)
        if key == "outcomes":
            levels = ", ".join(cfg.recidivism_levels)
            return (f"Relapse: a first relapse (a relapse or substance-use event, or a positive drug screen) within "
                    f"{cfg.relapse_window} days of enrollment. Recidivism ({levels}): a first qualifying justice "
                    f"event within {cfg.recidivism_window} days of release (of enrollment when there is no release "
                    "date); technical violations are reported separately and are not recidivism. Each rate counts "
                    "only participants observed for the whole window; a death before the event counts as no event."
                    + (" On the quarterly p-charts a quarter whose count is suppressed (*) shows neither its "
                       "proportion nor its control limits." if self.suppress else "")
                    + see)
        if key == "followup":
            params = self.definitions.get("followup", {}).get("parameters") or {}
            a, b = cfg.followup_window
            due = ("once the window has opened (open windows without an interview count as missed)"
                   if params.get("due_rule") == "window_opened" else "once the window has closed by the cut-off")
            return (f"The 6-month follow-up interview is due {a} to {b} days after intake; the rate is interviews "
                    f"completed in that window among participants due ({due}), against the target of "
                    f"{cfg.targets.get('followup_rate', 0.8):.0%}." + see)
        if key == "noms":
            return ("NOMs items at intake and at the 6-month follow-up, for participants with both interviews "
                    "(matched pairs): the share answering yes at each time, the change in percentage points, and "
                    "McNemar's test of the change." + see)
        return ""  # pragma: no cover - every caller passes a known key


    # -- provenance ----------------------------------------------------------------------------
    def _inputs(self) -> list[tuple[str, str]]:
        src = self.prog.sources
        return [(str(r.get("table")), str(r.get("sha256"))) for r in src.to_dict("records")] if len(src) else []

    def ledger(self, releases: Sequence[Any]) -> dict[str, Any]:
        """The ``ledger`` section of results.json: every count cell by id, earlier releases, re-releases."""
        from recoverystats.errors import RecoveryStatsWarning
        from recoverystats.report.ledger import LEDGER_FORMAT, rerelease_changes

        cells = dict(self.registry.cells)
        rereleases = []
        for rel in releases:
            if rel.quarter != self.quarter:
                continue
            change = rerelease_changes(rel, cells, self.registry.raw_cells, self._inputs())
            if change["inputs_changed"] or change["cells_changed"]:
                rereleases.append(change)
                msg = (f"re-release of {self.quarter} on changed data: an earlier release of this quarter "
                       f"({change['file']}, generated {rel.generated_at or 'at an unknown time'}) was given to the "
                       "ledger; cells whose value changed by less than the suppression threshold are suppressed "
                       "(with their complements), but anyone holding both releases can compare them, and other "
                       "copies of the earlier release stay in circulation. Recorded in results.json "
                       "(ledger.rereleases).")
                warnings.warn(msg, RecoveryStatsWarning, stacklevel=3)
                self.warnings.append(msg)
        return {"format": LEDGER_FORMAT, "quarter": self.quarter, "as_of": self.as_of.date().isoformat(),
                "group_column": self.cfg.group_column, "min_cell": self.min_cell,
                "previous": [r.summary() for r in releases], "rereleases": rereleases,
                "cells": cells}

    def provenance(self) -> dict[str, Any]:
        from recoverystats.report.report import package_versions
        from recoverystats.results.base import json_safe

        src = self.prog.sources
        inputs = []
        if len(src):
            for r in src.to_dict("records"):
                inputs.append({"table": r.get("table"), "path": str(r.get("path")), "sha256": r.get("sha256"),
                               "bytes": json_safe(r.get("bytes"))})
        return {
            "source": self.prog.source,
            "inputs": inputs,
            "as_of": self.as_of.date().isoformat(),
            "quarter": self.quarter,
            "previous_quarter": self.prev_quarter,
            "data_as_of": None if self.prog.as_of is None else self.prog.as_of.date().isoformat(),
            "seed": self.cfg.seed,
            "config": self.cfg.to_dict(),
            "min_cell": self.min_cell,
            "suppression": self.suppress,
            "versions": package_versions(),
            "warnings": list(self.warnings),
            **{k: json_safe(v) for k, v in self.provenance_extra.items()},
        }
