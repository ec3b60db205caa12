"""``quarterly``: compute every section of the quarterly report from a ProgramData.

The work happens in three passes so that nothing unsuppressed can reach an output:

1. *analyse*: the measures and analyses (public APIs only) produce raw tables, each
   registered with its additive structure and the ids of cells shared with other tables;
2. *suppress*: :class:`~recoverystats.report.model.TableRegistry` suppresses all tables
   together (a number suppressed in one table is suppressed in every table showing it);
3. *compose*: figures are drawn from the suppressed tables only, and the sections are
   assembled with text written from the definitions actually used.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError, RecoveryStatsError
from recoverystats.measures._common import first_mentor
from recoverystats.report.config import TARGET_DIRECTIONS, ReportConfig, load_config
from recoverystats.report.model import (
    FigureBlock,
    PendingTable,
    Section,
    TableBlock,
    TableRegistry,
    TextBlock,
)

__all__ = ["quarterly", "parse_quarter"]

Progress = Callable[[str], None]
TOTAL = "Total"

_PCT = {"estimate", "ci_lower", "ci_upper", "rate", "target", "pct_intake", "pct_followup", "centre",
        "lcl", "ucl", "this_estimate", "last_estimate", "change"}


def parse_quarter(quarter: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``"2026Q3"`` -> (first day, last day) of that quarter."""
    m = re.fullmatch(r"(\d{4})\s*-?Q([1-4])", str(quarter).strip(), flags=re.I)
    if not m:
        raise InvalidParameterError(
            f"quarter must look like 2026Q3 (year, 'Q', quarter 1-4); got {quarter!r}."
        )
    p = pd.Period(f"{m.group(1)}Q{m.group(2)}", freq="Q")
    return p.start_time.normalize(), p.end_time.normalize()


def _label_quarter(ts: pd.Timestamp) -> str:
    return str(pd.Period(ts, freq="Q"))


# ---------------------------------------------------------------------------------------
def quarterly(
    prog: Any,
    *,
    quarter: str = "2026Q3",
    config: str | Mapping[str, Any] | ReportConfig | None = None,
    min_cell: int | None = None,
    suppress: bool = True,
    progress: Progress | None = None,
    previous: Sequence[str | Path] = (),
    _protect_derived: bool = True,
    _protect_figures: bool = True,
) -> Report:  # noqa: F821 - defined in report.report
    """Build the quarterly report of a program.

    Parameters
    ----------
    prog
        The program (:func:`recoverystats.read_program` or
        ``simulate_program(...).program()``).
    quarter
        The reporting quarter, e.g. ``"2026Q3"``; the data cut-off ``as_of`` is its last
        day. The previous quarter is the comparison for the key numbers.
    config
        A ``report.toml`` path, a mapping of the same layout, or a
        :class:`~recoverystats.report.config.ReportConfig` (default settings when None).
    min_cell
        Smallest count shown (default: the config's ``[privacy] min_cell``, 11). Below the
        policy threshold 11 the report is stamped "contains small cells — not for release"
        on every page and sheet, as with ``suppress=False``.
    suppress
        Small-cell suppression (default). ``False`` publishes every count and stamps every
        page and sheet "contains small cells — not for release".
    progress
        Optional callback receiving the name of each stage (the CLI shows it with rich).
    previous
        Earlier releases of the same program (report folders or their ``results.json``),
        added to the config's ``[privacy] previous``: the release ledger. No published count
        differs from the same cell (same stable cell id) of an earlier release by 1 to
        ``min_cell - 1``: such cells are suppressed, with complementary suppression
        (:func:`recoverystats.privacy.suppress`, ``previous=``). A release of the same
        quarter on changed data is a re-release: it warns and is recorded in
        ``results.json`` (``ledger.rereleases``).
    _protect_derived
        For tests of the privacy scan only: ``False`` publishes statistics computed from
        suppressed counts (SMDs, percentages, means, p-chart limits, survival estimates)
        and odds ratios of covariates whose reference level is small, as releases before
        issue 11 did. The scan then fails (``derived_statistic`` findings).
    _protect_figures
        Testing switch (private): ``False`` draws the Kaplan-Meier curves from the exact,
        unsuppressed curve as releases before issue 11 did, so that tests can check that
        :func:`recoverystats.privacy.scan` catches it. Never use it for a report.

    Returns
    -------
    Report
        ``.save(dir)`` writes report.html, report.docx, tables.xlsx, figures/ and
        results.json (after the identifier and small-cell scan); ``_repr_html_``
        previews it in Jupyter.

    Notes
    -----
    Sections: key numbers (this quarter vs last quarter vs targets), program flow,
    census and enrollment, retention, relapse and recidivism with quarterly p-charts,
    Table 1 with SMDs, adjusted odds ratios and risk differences, Kaplan-Meier curves
    with at-risk tables, follow-up rate and NOMs change, data quality, and the methods
    and definitions appendix (from ``df.attrs["measure"]`` of the measures used).
    Every count is suppressed as described in :func:`recoverystats.privacy.suppress`, and
    the same number is suppressed in every table that shows it.
    """
    from recoverystats.report.report import Report

    say = progress or (lambda stage: None)
    cfg = load_config(config)
    if min_cell is not None:
        if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)) or min_cell < 1:
            raise InvalidParameterError(f"min_cell must be a whole number >= 1 (11 suppresses 1-10); got {min_cell!r}.")
        cell = int(min_cell)
    else:
        cell = cfg.min_cell
    start, as_of = parse_quarter(quarter)
    prev_as_of = start - pd.Timedelta(days=1)
    _check_program(prog, as_of, quarter, cfg)
    data, cfg, renamed = _disambiguate_total(prog, cfg)
    if isinstance(previous, (str, Path)):
        previous = [previous]
    from recoverystats.report.ledger import read_previous

    releases = read_previous([*cfg.previous, *previous], program=cfg.program, group_column=cfg.group_column,
                             quarter=_label_quarter(as_of), as_of=as_of)
    ctx = _Context(prog=data, cfg=cfg, quarter=_label_quarter(as_of), start=start, as_of=as_of,
                   prev_as_of=prev_as_of, min_cell=cell, suppress=bool(suppress), previous=releases,
                   protect_derived=bool(_protect_derived))
    ctx.protect_figures = bool(_protect_figures)
    say("measures")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx.compute_measures()
        say("analyses")
        sections_spec = ctx.analyse()
    # warning texts can carry counts ("only 7 events"): small ones are hidden like any cell
    ctx.warnings.extend(sorted({_hide_small_numbers(f"{w.category.__name__}: {w.message}", cell if suppress else 1)
                                for w in caught}))
    ctx.warnings.extend(renamed)
    say("suppression")
    blocks = ctx.registry.suppress_all()
    ledger = ctx.ledger(releases)
    say("draw figures")
    sections = tuple(spec(blocks) for spec in sections_spec)
    return Report(
        title=cfg.title, program=cfg.program, quarter=ctx.quarter, as_of=as_of, config=cfg,
        sections=sections, tables=blocks, min_cell=cell, suppressed=bool(suppress),
        provenance=ctx.provenance(), key_numbers=ctx.key_numbers(blocks), prog=prog, ledger=ledger,
    )


def _is_total_label(value: Any) -> bool:
    """A level that a reader would take for the total row: ``Total`` in any case or spacing."""
    return isinstance(value, str) and " ".join(value.split()).casefold() == TOTAL.casefold()


def _disambiguate_total(prog: Any, cfg: ReportConfig) -> tuple[Any, ReportConfig, list[str]]:
    """Rename data levels that read as the margin label ``Total`` (site, group, Table 1 levels, ...).

    Every report table marks its margin row with the label ``Total``; a site, group or
    category level spelled the same way (any case or spacing) would be a second total row,
    both for the suppression structure and for a reader. Such a level is shown as
    ``"<level> (<column>)"`` (e.g. ``Total (site)``) in every table and figure; the
    config's group reference and mentored groups follow. Returns the (possibly copied)
    program, the config and one note per renamed level for the data-quality section.
    """
    import dataclasses

    p = prog.participants
    renames: dict[str, dict[Any, str]] = {}
    for col in p.columns:
        s = p[col]
        if col == "participant_id" or not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
                                           or isinstance(s.dtype, pd.CategoricalDtype)):
            continue
        levels = pd.unique(s.dropna().astype(object))
        hits = [v for v in levels if _is_total_label(v)]
        if hits:
            taken = {str(v) for v in levels}
            mapping = {}
            for v in hits:
                new = f"{' '.join(v.split())} ({col})"
                while new in taken:
                    new += "'"
                taken.add(new)
                mapping[v] = new
            renames[col] = mapping
    if not renames:
        return prog, cfg, []
    p = p.copy()
    notes = []
    for col, mapping in renames.items():
        s = p[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            p[col] = s.cat.rename_categories(lambda v, m=mapping: m.get(v, v))
        else:
            p[col] = s.astype(object).map(lambda v, m=mapping: m.get(v, v) if isinstance(v, str) else v).astype(s.dtype)
        notes.extend(f"{col} level {old!r} is shown as {new!r}: 'Total' marks the total rows of the tables."
                     for old, new in mapping.items())
    g = renames.get(cfg.group_column, {})
    if g:
        ref = g.get(cfg.reference, cfg.reference) if cfg.reference is not None else None
        mentored = tuple(g.get(x, x) for x in cfg.mentored) if cfg.mentored is not None else None
        cfg = dataclasses.replace(cfg, reference=ref, mentored=mentored)
    return dataclasses.replace(prog, participants=p), cfg, notes


def _check_program(prog: Any, as_of: pd.Timestamp, quarter: str, cfg: ReportConfig) -> None:
    from recoverystats.io.program import ProgramData

    if not isinstance(prog, ProgramData):
        raise InvalidParameterError(
            f"prog must be a ProgramData (from recoverystats.read_program(...)); got {type(prog).__name__}."
        )
    p = prog.participants
    if not len(p):
        raise InvalidParameterError("prog has no participants; the report needs the participants table.")
    if cfg.group_column not in p.columns:
        raise InvalidParameterError(
            f"config [groups] column: {cfg.group_column!r} is not a participants column; "
            f"columns are {', '.join(map(str, p.columns))}."
        )
    first = p["enrollment_date"].min()
    if pd.isna(first) or first > as_of:
        raise InvalidParameterError(
            f"quarter {quarter!r} ends {as_of.date()} before the first enrollment "
            f"({'none' if pd.isna(first) else first.date()}); choose a quarter the data covers."
        )
    last = max((df[c].max() for name, c in (("participants", "enrollment_date"), ("participants", "discharge_date"),
                                              ("events", "event_date"), ("contacts", "contact_date"),
                                              ("assessments", "assessment_date"), ("matches", "match_date"))
                for df in [getattr(prog, name)] if len(df) and c in df and df[c].notna().any()),
               default=first)
    start = pd.Period(as_of, freq="Q").start_time.normalize()
    if prog.as_of is None and last < start:
        raise InvalidParameterError(
            f"quarter {quarter!r} ({start.date()} to {as_of.date()}) has no data: the latest date in the data "
            f"is {last.date()}; choose {_label_quarter(last)} or earlier."
        )
    if prog.as_of is not None and prog.as_of < as_of:
        raise InvalidParameterError(
            f"quarter {quarter!r} ends {as_of.date()}, after the data cut-off {prog.as_of.date()} "
            f"(as_of); choose {_label_quarter(prog.as_of - pd.offsets.QuarterEnd(0) if prog.as_of.is_quarter_end else prog.as_of - pd.offsets.QuarterEnd(1))} or earlier, or load the data with a later as_of."
        )


# ---------------------------------------------------------------------------------------
class _Context:
    """State of one report computation (internal)."""

    def __init__(self, *, prog: Any, cfg: ReportConfig, quarter: str, start: pd.Timestamp,
                 as_of: pd.Timestamp, prev_as_of: pd.Timestamp, min_cell: int, suppress: bool,
                 previous: Sequence[Any] = (), protect_derived: bool = True) -> None:
        self.prog = prog
        self.cfg = cfg
        self.quarter = quarter
        self.prev_quarter = _label_quarter(prev_as_of)
        self.start = start
        self.as_of = as_of
        self.prev_as_of = prev_as_of
        self.min_cell = min_cell
        self.suppress = suppress
        self.protect_derived = protect_derived
        #: draw figures only from published data (the testing switch of quarterly() turns it off)
        self.protect_figures = True
        self.registry = TableRegistry(min_cell=min_cell, enabled=suppress, quarter=quarter, previous=previous,
                                      protect_derived=protect_derived)
        self.measures: dict[str, pd.DataFrame] = {}
        self.prev: dict[str, pd.DataFrame] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.notes: dict[str, list[str]] = {}
        self.key_rows: list[dict[str, Any]] = []
        g = cfg.group_column
        p = prog.participants
        self.participants = p[p["enrollment_date"] <= as_of].copy()
        self.participants["_group"] = self.participants[g].astype("string").fillna("(missing)")
        self.groups = sorted(self.participants["_group"].unique().tolist())
        ref = cfg.reference
        if ref is not None and ref not in self.groups:
            raise InvalidParameterError(
                f"config [groups] reference: {ref!r} is not a level of {g!r}; levels are {', '.join(self.groups)}."
            )
        if ref is None:
            ref = "comparison" if "comparison" in self.groups else self.groups[0]
        self.reference = ref
        self.mentor = self._mentor_clusters()
        self.mentored: list[str] = []
        self.flow_definition = ""

    # -- helpers ------------------------------------------------------------------
    def _mentor_clusters(self) -> pd.Series:
        """First mentor matched by as_of, indexed by participant (matched participants only)."""
        first = first_mentor(self.prog, self.as_of)
        first.index = self.prog.participants["participant_id"].astype(str).to_numpy()
        return first.dropna()

    def _with_group(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        g = self.cfg.group_column
        out["_group"] = out[g].astype("string").fillna("(missing)") if g in out else "(missing)"
        return out

    def _define(self, key: str, df: pd.DataFrame) -> None:
        meta = df.attrs.get("measure")
        if isinstance(meta, dict):
            self.definitions[key] = meta

    # -- pass 1: measures -------------------------------------------------------------
    def compute_measures(self) -> None:
        from recoverystats import measures as M

        cfg = self.cfg
        for when, store in ((self.as_of, self.measures), (self.prev_as_of, self.prev)):
            if when < self.participants["enrollment_date"].min():
                continue
            store["retention"] = M.retention(self.prog, days=cfg.retention_days, as_of=when)
            store["relapse"] = M.relapse(self.prog, window_days=cfg.relapse_window, as_of=when)
            for level in cfg.recidivism_levels:
                store[level] = M.recidivism(self.prog, window_days=cfg.recidivism_window, level=level, as_of=when)
            if len(self.prog.assessments):
                store["followup"] = M.followup(self.prog, window=cfg.followup_window,
                                               target=cfg.targets.get("followup_rate", 0.8), as_of=when)
        if len(self.prog.contacts) or len(self.prog.matches):
            self.measures["engagement"] = M.engagement(self.prog, as_of=self.as_of)
        self.measures["relapse_tte"] = M.relapse(self.prog, window_days=None, as_of=self.as_of)
        first_level = cfg.recidivism_levels[0]
        self.measures["recidivism_tte"] = M.recidivism(self.prog, window_days=None, level=first_level,
                                                       as_of=self.as_of)
        if len(self.prog.assessments):
            self.measures["noms"] = M.noms_change(self.prog, by=cfg.group_column, window=cfg.followup_window,
                                                  as_of=self.as_of)
        for k, v in self.measures.items():
            self._define(k, v)
        for k in list(self.measures):
            if k in ("noms",):
                continue
            self.measures[k] = self._with_group(self.measures[k])
        for k in list(self.prev):
            self.prev[k] = self._with_group(self.prev[k])

    # -- pass 2: analyses -> raw tables ----------------------------------------------------
    def analyse(self) -> list[Callable[[dict[str, TableBlock]], Section]]:
        specs = [
            self._key_numbers_spec(),
            self._flow(),
            self._census(),
            self._retention(),
            self._outcomes(),
            self._table_one(),
            self._adjusted(),
            self._survival(),
            self._followup(),
            self._quality(),
            self._methods(),
        ]
        return [s for s in specs if s is not None]

    # ---------------------------------------------------------------------------------
    def _rate_rows(self, df: pd.DataFrame, outcome: str, eligible: str, id_prefix: str
                   ) -> tuple[pd.DataFrame, dict[tuple[int, str], str]]:
        """n, events, Wilson estimate and CI by group plus a Total row (public rates API)."""
        from recoverystats.rates import proportion

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

    # -- key numbers ------------------------------------------------------------------------
    def _key_numbers_spec(self) -> Callable[[dict[str, TableBlock]], Section]:
        # registered last-minute: needs the ids of the other tables, which are fixed strings
        rows: list[dict[str, Any]] = []
        ids: dict[tuple[int, str], str] = {}
        p = self.participants
        q_start, prev_start = self.start, parse_quarter(self.prev_quarter)[0]
        new_now = int(((p["enrollment_date"] >= q_start) & (p["enrollment_date"] <= self.as_of)).sum())
        new_prev = int(((p["enrollment_date"] >= prev_start) & (p["enrollment_date"] <= self.prev_as_of)).sum())
        rows.append(dict(key="enrolled_to_date", measure="Participants enrolled to date", kind="count",
                         this_count=len(p), last_count=np.nan))
        ids[(0, "this_count")] = "N|all"
        rows.append(dict(key="new_enrollments", measure="New enrollments in the quarter", kind="count",
                         this_count=new_now, last_count=new_prev))
        ids[(1, "this_count")] = f"enr|{self.quarter}|{TOTAL}"
        ids[(1, "last_count")] = f"enr|{self.prev_quarter}|{TOTAL}"
        act_now, act_prev = self._active(self.as_of), self._active(self.prev_as_of)
        rows.append(dict(key="active", measure="Active participants at quarter end", kind="count",
                         this_count=int(act_now.sum()), last_count=int(act_prev.sum())))
        ids[(2, "this_count")] = f"active|{self.quarter}|{TOTAL}"
        ids[(2, "last_count")] = f"active|{self.prev_quarter}|{TOTAL}"

        def rate_row(key: str, label: str, frame_key: str, outcome: str, eligible: str, id_prefix: str) -> None:
            now = self.measures.get(frame_key)
            if now is None:
                return
            prev = self.prev.get(frame_key)

            def counts(df: pd.DataFrame | None) -> tuple[float, float]:
                if df is None:
                    return np.nan, np.nan
                d = df[df[eligible].astype(bool)] if eligible in df else df
                d = d[d[outcome].notna()]
                return float(len(d)), float(d[outcome].astype(float).sum())

            tn, te = counts(now)
            ln, le = counts(prev)
            i = len(rows)
            rows.append(dict(key=key, measure=label, kind="rate", this_n=tn, this_events=te, last_n=ln, last_events=le))
            ids[(i, "this_n")] = (f"{id_prefix}|{TOTAL}|n", f"elig|{TOTAL}|{int(tn)}")
            ids[(i, "this_events")] = f"{id_prefix}|{TOTAL}|events"

        days = self.cfg.retention_days
        k90 = 90 if 90 in days else days[len(days) // 2]
        rate_row(f"retention_{k90}", f"{k90}-day retention", "retention", f"retained_{k90}", f"eligible_{k90}",
                 f"ret|{k90}")
        rate_row("relapse", f"Relapse within {self.cfg.relapse_window} days", "relapse", "relapsed", "eligible",
                 "out|relapse")
        lvl = self.cfg.recidivism_levels[0]
        rate_row(lvl, f"{lvl.capitalize()} within {self.cfg.recidivism_window} days", lvl, "recidivated",
                 "eligible", f"out|{lvl}")
        if "followup" in self.measures:
            rate_row("followup_rate", "Follow-up rate (6-month interview in window)", "followup",
                     "completed_in_window", "due", "fu")
        t = pd.DataFrame(rows)
        count_cols = ("this_count", "this_events", "this_n", "last_count", "last_events", "last_n")
        for c in count_cols:
            t[c] = t[c].astype(float) if c in t else np.nan
        t = t[["key", "measure", "kind", *count_cols]]
        rate = t["kind"] == "rate"
        t["this_estimate"] = np.where(rate, t["this_events"] / t["this_n"].where(t["this_n"] > 0), np.nan)
        t["last_estimate"] = np.where(rate, t["last_events"] / t["last_n"].where(t["last_n"] > 0), np.nan)
        t["change"] = np.where(rate, t["this_estimate"] - t["last_estimate"], t["this_count"] - t["last_count"])
        t["target"] = [self.cfg.targets.get(k, np.nan) for k in t["key"]]
        direction = [TARGET_DIRECTIONS.get(k, "") for k in t["key"]]
        meets = []
        for est, tgt, d in zip(t["this_estimate"], t["target"], direction, strict=False):
            if np.isnan(tgt) or np.isnan(est):
                meets.append(np.nan)
            else:
                meets.append(float(est >= tgt if d == "higher" else est <= tgt))
        t["meets_target"] = meets
        self.key_rows = rows
        self.registry.add(PendingTable(
            key="key_numbers", sheet="Key numbers", title=f"Key numbers, {self.quarter} vs {self.prev_quarter}",
            raw=t, count_columns=count_cols,
            margins={"complements": [("this_n", "this_events"), ("last_n", "last_events")],
                     # participants whose window closed during the quarter (cumulative cohorts
                     # are nested): this quarter minus last quarter is a count too
                     "hidden": {"new_n": {"this_n": 1, "last_n": -1},
                                "new_events": {"this_events": 1, "last_events": -1},
                                "new_nonevents": {"this_n": 1, "this_events": -1, "last_n": -1, "last_events": 1}}},
            dependent={"this_estimate": ["this_n", "this_events"], "last_estimate": ["last_n", "last_events"],
                       "change": list(count_cols), "meets_target": ["this_n", "this_events"]},
            columns=("measure", "this_value", "this_n", "this_estimate", "last_value", "last_n", "last_estimate",
                     "change", "target", "meets_target"),
            coalesce={"this_value": ("this_count", "this_events"), "last_value": ("last_count", "last_events")},
            # last quarter's numbers are the "this" numbers of last quarter's report: the ledger
            # compares them with that release (a re-run on changed data would show the change)
            ledger_alias={"last_count": (self.prev_quarter, "this_count"), "last_n": (self.prev_quarter, "this_n"),
                          "last_events": (self.prev_quarter, "this_events")},
            ledger_quarter_rows=(1, 2),  # new enrollments in, active at the end of, the quarter
            labels={"this_value": f"{self.quarter}: count", "this_count": f"{self.quarter}: count",
                    "this_events": f"{self.quarter}: events", "this_n": f"{self.quarter}: of",
                    "this_estimate": f"{self.quarter}: %", "last_value": f"{self.prev_quarter}: count",
                    "last_count": f"{self.prev_quarter}: count", "last_events": f"{self.prev_quarter}: events",
                    "last_n": f"{self.prev_quarter}: of", "last_estimate": f"{self.prev_quarter}: %",
                    "change": "Change", "target": "Target", "meets_target": "Meets target"},
            percent_columns=("this_estimate", "last_estimate", "target"),
            measure={"as_of": self.as_of.date().isoformat(), "previous_as_of": self.prev_as_of.date().isoformat(),
                     "numerator": "this_events / last_events (rates); this_count / last_count (counts)",
                     "denominator": "this_n / last_n",
                     "definition": "Rates use every participant whose window is complete by the cut-off "
                                   "(cumulative to the end of each quarter); counts are of participants."},
            ids=ids,
        ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            kb = blocks["key_numbers"]
            text = TextBlock(paragraphs=(
                f"Data to {self.as_of.date().isoformat()} (end of {self.quarter}), compared with the end of "
                f"{self.prev_quarter}. Rates are cumulative: every participant whose outcome window was complete "
                "by the cut-off. Targets come from the report configuration.",
            ))
            return Section("summary", "Key numbers", (text, kb))

        return section

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

    # -- program flow ---------------------------------------------------------------------
    def _mentored_groups(self, matched: pd.Series) -> list[str]:
        """Groups offered a mentor: the config's ``[groups] mentored`` or every group with a match."""
        if self.cfg.mentored is not None:
            bad = [g for g in self.cfg.mentored if g not in self.groups]
            if bad:
                raise InvalidParameterError(
                    f"config [groups] mentored: {', '.join(map(repr, bad))} not a level of "
                    f"{self.cfg.group_column!r}; levels are {', '.join(self.groups)}."
                )
            return [g for g in self.groups if g in self.cfg.mentored]
        with_match = set(self.participants.loc[matched.to_numpy(), "_group"])
        return [g for g in self.groups if g in with_match]

    def _flow(self) -> Callable[[dict[str, TableBlock]], Section]:
        p = self.participants
        n_all = len(p)
        matched_ids = set(self.mentor.index.astype(str))
        matched = p["participant_id"].astype(str).isin(matched_ids)
        eng = self.measures.get("engagement")
        if eng is not None:
            e_ok = eng.set_index(eng["participant_id"].astype(str))["engaged"].reindex(p["participant_id"].astype(str))
            # engaged is float (1.0/0.0/NaN): missing counts as not engaged, without
            # fillna(False) on a float column (deprecated in pandas 3)
            engaged = e_ok.to_numpy(dtype=bool, na_value=False) & matched.to_numpy()
        else:
            engaged = np.zeros(n_all, dtype=bool)
        fu = self.measures.get("followup")
        if fu is not None:
            due = int(fu["due"].astype(bool).sum())
            done = int((fu["due"].astype(bool) & fu["completed_in_window"].fillna(0).astype(bool)).sum())
        else:
            due, done = np.nan, np.nan
        discharged = p["discharge_date"].notna() & (p["discharge_date"] <= self.as_of)
        # only the arm(s) offered a mentor can be matched: matching and engagement are shown
        # against them (one row per mentored group, so every denominator is a published
        # group size), never against everyone enrolled
        mentored = self._mentored_groups(matched)
        self.mentored = mentored
        rows: list[dict[str, Any]] = [{"stage": "Enrolled", "n": n_all, "of": np.nan, "of_label": ""}]
        ids: dict[tuple[int, str], Any] = {(0, "n"): "N|all"}
        in_group = {g: (p["_group"] == g).to_numpy() for g in mentored}
        for g in mentored:
            i = len(rows)
            rows.append({"stage": "Matched with a mentor", "n": int((matched.to_numpy() & in_group[g]).sum()),
                         "of": int(in_group[g].sum()), "of_label": f"in {g}"})
            ids[(i, "n")] = f"flow|matched|{g}"
            ids[(i, "of")] = f"N|{g}"
        for g in mentored:
            i = len(rows)
            rows.append({"stage": "Engaged (3+ contacts in 90 days)", "n": int((engaged & in_group[g]).sum()),
                         "of": int((matched.to_numpy() & in_group[g]).sum()),
                         "of_label": "matched" if len(mentored) == 1 else f"matched in {g}"})
            ids[(i, "n")] = f"flow|engaged|{g}"
            ids[(i, "of")] = f"flow|matched|{g}"
        i = len(rows)
        rows.append({"stage": "Followed up at 6 months", "n": done, "of": due, "of_label": "due"})
        ids[(i, "n")] = "fu|Total|events"
        ids[(i, "of")] = "fu|Total|n"
        i = len(rows)
        rows.append({"stage": "Discharged", "n": int(discharged.sum()), "of": n_all, "of_label": "enrolled"})
        ids[(i, "n")] = "dis|Total"
        ids[(i, "of")] = "N|all"
        flow = pd.DataFrame(rows)
        flow["n"] = flow["n"].astype(float)
        flow["of"] = flow["of"].astype(float)
        flow["pct"] = flow["n"] / flow["of"]
        mentored_text = " and ".join(mentored) or "none"
        how = ("the configuration's [groups] mentored" if self.cfg.mentored is not None
               else "the groups with at least one mentor match by the cut-off")
        self.flow_definition = (
            f"Enrolled = enrollment date on or before the cut-off. Matched = a mentor match dated by the "
            f"cut-off, as a share of the participants of the group(s) offered a mentor ({mentored_text}; "
            f"taken from {how}); the other group(s) are never matched and are not in this denominator. "
            "Engaged = matched and at least 3 mentor contacts in the first 90 days after enrollment "
            "(engagement measure), as a share of those matched. Followed up = 6-month interview completed in "
            "its window among those due. Discharged = discharge dated by the cut-off, of everyone enrolled.")
        self.registry.add(PendingTable(
            key="flow", sheet="Program flow", title="Program flow", raw=flow, count_columns=("n", "of"),
            margins={"complements": [("of", "n")]}, dependent={"pct": ["n", "of"]},
            columns=("stage", "of_label", "n", "of", "pct"),
            labels={"stage": "Stage", "n": "N", "of": "Of", "of_label": "Denominator (of whom)", "pct": "%"},
            percent_columns=("pct",), ids=ids,
            measure={"as_of": self.as_of.date().isoformat(), "mentored_groups": list(mentored),
                     "numerator": "n", "denominator": "of (who: of_label)",
                     "definition": self.flow_definition},
        ))
        reasons = p.loc[discharged, "discharge_reason"].astype("string").fillna("(not recorded)")
        from recoverystats.schema.spec import DISCHARGE_REASONS

        levels = [r for r in DISCHARGE_REASONS if r in set(reasons)] + sorted(set(reasons) - set(DISCHARGE_REASONS))
        rt = pd.DataFrame({"reason": levels + [TOTAL],
                           "n": [int((reasons == r).sum()) for r in levels] + [int(len(reasons))]})
        rt["pct"] = rt["n"] / max(len(reasons), 1)
        self.registry.add(PendingTable(
            key="discharge_reasons", sheet="Discharge reasons", title="Discharges by reason", raw=rt,
            count_columns=("n",), margins={"total_row": {"reason": TOTAL}}, dependent={"pct": ["n"]},
            labels={"reason": "Reason", "pct": "% of discharges"}, percent_columns=("pct",),
            ids={(len(levels), "n"): "dis|Total"},
            # % of discharges = n / Total: a published share with a suppressed Total gives it back
            derived=[_derived(i, "pct", "ratio", [(i, "n"), (len(levels), "n")]) for i in range(len(levels))],
            measure={"as_of": self.as_of.date().isoformat(), "definition": "Discharges dated by the cut-off, by discharge_reason."},
        ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_flow

            fig = _figure("flow", "Program flow", lambda ax: plot_flow(
                blocks["flow"].data, blocks["discharge_reasons"].data, ax=ax, as_of=self.as_of), figsize=(7.5, 5.2),
                          sources=("flow", "discharge_reasons"))
            return Section("flow", "Program flow", (
                TextBlock(paragraphs=(
                    "From enrollment to discharge, drawn from the data. Each percentage is of the people named in "
                    "the 'Denominator' column: matching is shown against the group(s) offered a mentor "
                    f"({', '.join(mentored) or 'none'}), engagement against those matched. * = suppressed small "
                    "cell.",)),
                fig, blocks["flow"], blocks["discharge_reasons"]))

        return section

    # -- census ---------------------------------------------------------------------------
    def _census(self) -> Callable[[dict[str, TableBlock]], Section]:
        p = self.participants
        gs = self.groups
        # census by site x group (the whole program to date)
        site = p["site"].astype("string").fillna("(no site)") if "site" in p else pd.Series("(all)", index=p.index)
        sites = sorted(site.unique().tolist())
        ct = pd.crosstab(site, p["_group"]).reindex(index=sites, columns=gs, fill_value=0)
        ct = ct.astype(float)
        ct.columns = [f"n_{g}" for g in gs]
        ct["n_total"] = ct.sum(axis=1)
        ct.loc[TOTAL] = ct.sum(axis=0)
        ct = ct.reset_index().rename(columns={"index": "site", "site": "site"})
        ct.columns = ["site", *ct.columns[1:]]
        ids = {(len(sites), f"n_{g}"): f"N|{g}" for g in gs}
        ids[(len(sites), "n_total")] = "N|all"
        gcols = tuple(f"n_{g}" for g in gs)
        self.registry.add(PendingTable(
            key="census_site", sheet="Census by site", title="Participants enrolled to date, by site and group",
            raw=ct, count_columns=(*gcols, "n_total"),
            margins={"total_row": {"site": TOTAL}, "total_columns": {"n_total": list(gcols)}},
            labels={"site": "Site", **{f"n_{g}": g for g in gs}, "n_total": "Total"}, ids=ids,
            measure={"as_of": self.as_of.date().isoformat(), "definition": "Participants with enrollment_date on or before the cut-off."},
        ))
        # enrollment and active census by quarter
        q = p["enrollment_date"].dt.to_period("Q")
        periods = pd.period_range(q.min(), pd.Period(self.as_of, freq="Q"), freq="Q")
        en = pd.crosstab(q, p["_group"]).reindex(index=periods, columns=gs, fill_value=0).astype(float)
        en.columns = [f"new_{g}" for g in gs]
        en["new_total"] = en.sum(axis=1)
        en.loc["Total"] = en.sum(axis=0)
        en.insert(0, "period", [str(x) for x in periods] + [TOTAL])
        en = en.reset_index(drop=True)
        ncols = tuple(f"new_{g}" for g in gs)
        ids = {}
        for i, per in enumerate(en["period"]):
            ids[(i, "new_total")] = f"enr|{per}|{TOTAL}"
        for g in gs:
            ids[(len(periods), f"new_{g}")] = f"N|{g}"
        ids[(len(periods), "new_total")] = "N|all"
        self.registry.add(PendingTable(
            key="enrollment", sheet="Enrollment by quarter", title="New enrollments by quarter and group",
            raw=en, count_columns=(*ncols, "new_total"),
            margins={"total_row": {"period": TOTAL}, "total_columns": {"new_total": list(ncols)}},
            labels={"period": "Quarter", **{f"new_{g}": g for g in gs}, "new_total": "Total"}, ids=ids,
            measure={"as_of": self.as_of.date().isoformat(), "definition": "Participants by quarter of enrollment_date."},
        ))
        act = []
        for per in periods:
            end = per.end_time.normalize()
            a = self._active(end)
            row = {"period": str(per)}
            for g in gs:
                row[f"active_{g}"] = float((a & (p["_group"] == g)).sum())
            row["active_total"] = float(a.sum())
            act.append(row)
        at = pd.DataFrame(act)
        acols = tuple(f"active_{g}" for g in gs)
        ids = {(i, "active_total"): f"active|{per}|{TOTAL}" for i, per in enumerate(at["period"])}
        self.registry.add(PendingTable(
            key="census_quarter", sheet="Active census", title="Active participants at the end of each quarter",
            raw=at, count_columns=(*acols, "active_total"), margins={"total_columns": {"active_total": list(acols)}},
            labels={"period": "Quarter", **{f"active_{g}": g for g in gs}, "active_total": "Total"}, ids=ids,
            measure={"as_of": self.as_of.date().isoformat(),
                     "definition": "Enrolled on or before the quarter's last day and not discharged by then."},
        ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_enrollment

            fig = _figure("enrollment", "Enrollment and census by quarter", lambda ax: plot_enrollment(
                blocks["enrollment"].data, blocks["census_quarter"].data, gs, ax=ax, as_of=self.as_of,
                n=_published_total(blocks)), sources=("enrollment", "census_quarter", "census_site"))
            return Section("census", "Census and enrollment", (
                fig, blocks["census_site"], blocks["enrollment"], blocks["census_quarter"]))

        return section

    # -- retention -------------------------------------------------------------------------
    def _retention(self) -> Callable[[dict[str, TableBlock]], Section]:
        df = self.measures["retention"]
        parts, ids = [], {}
        offset = 0
        for k in self.cfg.retention_days:
            t, tid = self._rate_rows(df, f"retained_{k}", f"eligible_{k}", f"ret|{k}")
            t.insert(0, "days", k)
            parts.append(t)
            ids.update({(i + offset, c): v for (i, c), v in tid.items()})
            offset += len(t)
        tab = pd.concat(parts, ignore_index=True)
        meta = self.definitions.get("retention", {})
        self.registry.add(PendingTable(
            key="retention", sheet="Retention", title="Retention by group (Wilson 95% CI)", raw=tab,
            count_columns=("n", "events"),
            margins={"total_row": {"group": TOTAL}, "by": ["days"], "complements": [("n", "events")]},
            dependent=self._RATE_DEP, labels={"days": "Day", "n": "Eligible", "events": "Retained"},
            percent_columns=("estimate", "ci_lower", "ci_upper"), ids=ids,
            measure=_measure_meta(meta, "retained_<k>", "participants whose k-day window is complete"),
        ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_retention

            b = blocks["retention"]
            fig = _figure("retention", "Retention by group", lambda ax: plot_retention(
                b.data, ax=ax, as_of=self.as_of, n=_published_total(blocks)), sources=("retention", "census_site"))
            return Section("retention", "Retention", (
                TextBlock(paragraphs=(self._summary("retention"),)), fig, b))

        return section

    # -- relapse and recidivism -------------------------------------------------------------
    def _outcomes(self) -> Callable[[dict[str, TableBlock]], Section]:
        from recoverystats.rates import trend

        items = [("relapse", f"Relapse within {self.cfg.relapse_window} days", "relapsed")]
        for lvl in self.cfg.recidivism_levels:
            items.append((lvl, f"{lvl.capitalize()} within {self.cfg.recidivism_window} days", "recidivated"))
        parts, ids, offset = [], {}, 0
        for key, label, col in items:
            t, tid = self._rate_rows(self.measures[key], col, "eligible", f"out|{key}")
            t.insert(0, "measure", label)
            parts.append(t)
            ids.update({(i + offset, c): v for (i, c), v in tid.items()})
            offset += len(t)
        first = self.cfg.recidivism_levels[0]
        rc = self.measures[first]
        if "technical_violation" in rc:
            t, tid = self._rate_rows(rc, "technical_violation", "eligible", "out|technical")
            t.insert(0, "measure", f"Technical violation within {self.cfg.recidivism_window} days")
            parts.append(t)
            ids.update({(i + offset, c): v for (i, c), v in tid.items()})
        tab = pd.concat(parts, ignore_index=True)
        self.registry.add(PendingTable(
            key="outcomes", sheet="Relapse and recidivism", title="Relapse and recidivism by group (Wilson 95% CI)",
            raw=tab, count_columns=("n", "events"),
            margins={"total_row": {"group": TOTAL}, "by": ["measure"], "complements": [("n", "events")]},
            dependent=self._RATE_DEP, labels={"measure": "Outcome", "n": "Eligible", "events": "Events"},
            percent_columns=("estimate", "ci_lower", "ci_upper"), ids=ids,
            measure={"relapse": _measure_meta(self.definitions.get("relapse", {}), "relapsed", "eligible"),
                     first: _measure_meta(self.definitions.get(first, {}), "recidivated", "eligible")},
        ))
        charts = []
        windows = {"relapse": (self.cfg.relapse_window, "enrollment_date")}
        windows.update({lvl: (self.cfg.recidivism_window, "index_date") for lvl in self.cfg.recidivism_levels})
        for key, label, col in items[:2]:
            d = self.measures[key]
            d = d[d["eligible"].astype(bool) & d[col].notna()].copy()
            if len(d) < 2:
                continue
            # each participant counts in the quarter their outcome window closed: every such
            # group is complete (no partially observed enrollment cohorts), and the quarters
            # add up to the eligible total of the outcome table
            days, index_col = windows[key]
            index = d[index_col] if index_col in d else d["enrollment_date"]
            d["_window_closed"] = index + pd.to_timedelta(days, unit="D")
            tr = trend(d, col, date="_window_closed", freq="Q", conf_level=self.cfg.conf_level).table
            keep = ["period", "n", "events", "estimate", "ci_lower", "ci_upper", "centre", "lcl", "ucl", "signal"]
            laney = "chart" in tr and bool((tr["chart"].astype("string") == "laney").any())
            tr = tr[keep].copy()
            tr["signal"] = tr["signal"].astype(float)
            tot = {"period": TOTAL, "n": tr["n"].sum(), "events": tr["events"].sum()}
            tr = pd.concat([tr, pd.DataFrame([tot])], ignore_index=True)
            tr["n"] = tr["n"].astype(float)
            tr["events"] = tr["events"].astype(float)
            tr.loc[tr.index[-1], "estimate"] = tot["events"] / tot["n"] if tot["n"] else np.nan
            tid: dict[tuple[int, str], Any] = {
                (len(tr) - 1, "n"): (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{int(tot['n'])}"),
                (len(tr) - 1, "events"): f"out|{key}|{TOTAL}|events"}
            tkey = f"pchart_{key}"
            tot_i = len(tr) - 1
            tot_cells = [(tot_i, "n"), (tot_i, "events")]
            all_cells = [(i, c) for i in range(tot_i) for c in ("n", "events")]
            pderived: list[dict[str, Any]] = []
            for i in range(tot_i):
                # centre = pooled proportion (Total events / Total n); the limits also use the
                # quarter's n and, on a Laney p' chart, sigma_z from every quarter; a run
                # signal compares neighbouring quarters with the centre
                pderived.append(_derived(i, "centre", "ratio", [(tot_i, "events"), (tot_i, "n")]))
                lim_in = all_cells + tot_cells if laney else [(i, "n"), *tot_cells]
                pderived.append(_derived(i, "lcl", "control_limit", lim_in))
                pderived.append(_derived(i, "ucl", "control_limit", lim_in))
                pderived.append(_derived(i, "signal", "control_signal", all_cells + tot_cells))
            self.registry.add(PendingTable(
                key=tkey, sheet=f"p-chart {key}"[:31], title=f"{label}: quarterly p-chart (by quarter the outcome window closed)",
                raw=tr, count_columns=("n", "events"),
                margins={"total_row": {"period": TOTAL}, "complements": [("n", "events")]},
                dependent={**self._RATE_DEP, "lcl": ["n"], "ucl": ["n"], "signal": ["n", "events"]},
                labels={"period": "Window closed", "centre": "Centre", "lcl": "LCL", "ucl": "UCL",
                        "signal": "Signal"},
                percent_columns=("estimate", "ci_lower", "ci_upper", "centre", "lcl", "ucl"), ids=tid,
                derived=[d for d in pderived if np.isfinite(float(tr.at[d["row"], d["column"]]))],
                measure={"definition": "Per quarter in which the outcome window closed (index date + window): "
                                       "proportion with the outcome among eligible participants; p-chart "
                                       "centre = pooled proportion, limits "
                                       "= centre +/- 3 sqrt(p(1-p)/n_i) (rates.trend).",
                         "as_of": self.as_of.date().isoformat()},
            ))
            charts.append((tkey, label))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_pchart

            out: list[Any] = [TextBlock(paragraphs=(self._summary("outcomes"),))]
            out.append(blocks["outcomes"])
            for tkey, label in charts:
                b = blocks[tkey]
                out.append(_figure(tkey, f"{label}: p-chart", lambda ax, b=b, label=label: plot_pchart(
                    b.data, ax=ax, title=label, as_of=self.as_of), sources=(tkey,)))
                out.append(b)
            return Section("outcomes", "Relapse and recidivism", tuple(out))

        return section

    # -- table 1 ------------------------------------------------------------------------
    def _table_one(self) -> Callable[[dict[str, TableBlock]], Section] | None:
        from recoverystats.rates import table_one

        base = self.measures["retention"]
        variables = [v for v in self.cfg.table_one if v in base.columns and base[v].notna().any()]
        if not variables:
            return None
        t1 = table_one(base, group="_group", variables=variables, smd=True, overall=True)
        tab = t1.table
        gs = list(t1.groups)
        allg = ["Overall", *gs]
        cat_rows, cont_rows = [], []
        nrow = tab[tab["kind"] == "count"].iloc[0]
        for var, block in tab[tab["kind"] != "count"].groupby("variable", sort=False):
            kinds = set(block["kind"])
            if "continuous" in kinds:
                r = block[block["kind"] == "continuous"].iloc[0]
                cont_rows.append({"variable": var, "smd": r["smd"],
                                  **{f"mean|{g}": r[f"{g}|mean"] for g in allg},
                                  **{f"sd|{g}": r[f"{g}|sd"] for g in allg},
                                  **{f"n|{g}": r[f"{g}|n"] for g in allg}})
                miss = block[block["kind"] == "missing"]
                if len(miss):
                    # missing values: publish "(with a value)" and "(missing)" counts so that
                    # N - n (the number missing) is protected like any other count
                    m0 = miss.iloc[0]
                    rows = [("(with a value)", {g: r[f"{g}|n"] for g in allg}),
                            ("(missing)", {g: m0[f"{g}|n"] for g in allg})]
                    for lev, vals in rows:
                        cat_rows.append({"variable": var, "level": lev, "smd": np.nan,
                                         **{f"n|{g}": float(vals[g]) for g in allg}})
                    cat_rows.append({"variable": var, "level": TOTAL, "smd": np.nan,
                                     **{f"n|{g}": float(nrow[f"{g}|n"]) for g in allg}})
                continue
            smd = block["smd"].iloc[0]
            levels = block.reset_index(drop=True)
            is_binary = len(levels[levels["kind"] == "categorical"]) == 1
            for r in levels.itertuples(index=False):
                rec = dict(zip(levels.columns, r, strict=False))
                cat_rows.append({"variable": var, "level": str(rec["level"]), "smd": smd,
                                 **{f"n|{g}": float(rec[f"{g}|n"]) for g in allg}})
            if is_binary:
                # the other level is implied (N - yes - missing): publish it so the structure is explicit
                yes = levels[levels["kind"] == "categorical"].iloc[0]
                miss = levels[levels["kind"] == "missing"]
                other = {g: float(nrow[f"{g}|n"]) - float(yes[f"{g}|n"]) - (float(miss.iloc[0][f"{g}|n"]) if len(miss) else 0.0)
                         for g in allg}
                lev = str(yes["level"])
                name = {"True": "False", "true": "false", "1": "0", "yes": "no", "1.0": "0.0"}.get(lev, f"not {lev}")
                cat_rows.append({"variable": var, "level": name, "smd": smd, **{f"n|{g}": other[g] for g in allg}})
            cat_rows.append({"variable": var, "level": TOTAL, "smd": np.nan,
                             **{f"n|{g}": float(nrow[f"{g}|n"]) for g in allg}})
        cat = pd.DataFrame(cat_rows)
        if len(cat):
            for g in allg:
                denom = cat.groupby("variable", sort=False)[f"n|{g}"].transform(
                    lambda s: s[cat.loc[s.index, "level"].eq(TOTAL).to_numpy()].iloc[0] - s[cat.loc[s.index, "level"].eq("(missing)").to_numpy()].sum())
                cat[f"pct|{g}"] = cat[f"n|{g}"] / denom.where(denom > 0)
                cat.loc[cat["level"].isin([TOTAL, "(missing)"]), f"pct|{g}"] = np.nan
            ids = {}
            for i, (var, lev) in enumerate(zip(cat["variable"], cat["level"], strict=True)):
                if lev == TOTAL:
                    for g in allg:
                        ids[(i, f"n|{g}")] = "N|all" if g == "Overall" else f"N|{g}"
                elif lev == "(with a value)":
                    for g in allg:  # the same count is the n of the mean (SD) row
                        ids[(i, f"n|{g}")] = f"t1|{var}|with_value|{g}"
            total_rows = [i for i, lev in enumerate(cat["level"]) if lev == TOTAL]
            shown_rows = [i for i in range(len(cat)) if i not in total_rows]
            derived = _table_one_derived(cat, allg, gs)
            counts = tuple(f"n|{g}" for g in allg)
            self.registry.add(PendingTable(
                key="table_one", sheet="Table 1", title="Baseline characteristics by group: n (%)",
                raw=cat, count_columns=counts,
                margins={"total_row": {"level": TOTAL}, "by": ["variable"],
                         "total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
                dependent={f"pct|{g}": [f"n|{g}"] for g in allg},
                columns=("variable", "level", *[c for g in allg for c in (f"n|{g}", f"pct|{g}")], "smd"),
                labels={"variable": "Characteristic", "level": "Level",
                        **{f"n|{g}": f"{g} n" for g in allg}, **{f"pct|{g}": f"{g} %" for g in allg},
                        "smd": "SMD"},
                percent_columns=tuple(f"pct|{g}" for g in allg), ids=ids, display_rows=shown_rows,
                derived=derived,
                measure={"definition": "Participants enrolled by the cut-off; % of those with a recorded value; "
                                       "SMD = standardized mean difference (Yang & Dalton for categorical).",
                         "as_of": self.as_of.date().isoformat()},
            ))
        cont = pd.DataFrame(cont_rows)
        if len(cont):
            # group sizes of the continuous rows (those with a value) are counts too
            cont_counts = tuple(f"n|{g}" for g in allg)
            if self.suppress:
                # a mean of fewer than min_cell people describes individuals: blank it (a
                # suppressed complement n does not make a mean of many people unsafe)
                for g in allg:
                    small = cont[f"n|{g}"].astype(float) < self.min_cell
                    cont.loc[small, [f"mean|{g}", f"sd|{g}"]] = np.nan
            cont_ids: dict[tuple[int, str], Any] = {}
            n_all = {g: float(nrow[f"{g}|n"]) for g in allg}
            for i, r in cont.iterrows():
                for g in allg:
                    full = float(r[f"n|{g}"]) == n_all[g]
                    cont_ids[(int(i), f"n|{g}")] = (("N|all" if g == "Overall" else f"N|{g}") if full
                                                    else f"t1|{r['variable']}|with_value|{g}")
            # a mean or SD of integer values at full precision gives its n back (the
            # denominator of the fraction), and the Overall mean is the n-weighted group
            # means: both are suppressed with their n; the SMD with the n of either group
            cont_derived: list[dict[str, Any]] = []
            for i, r in cont.iterrows():
                for g in allg:
                    for stat in ("mean", "sd"):
                        if np.isfinite(float(r[f"{stat}|{g}"])):
                            cont_derived.append(_derived(int(i), f"{stat}|{g}", stat, [(int(i), f"n|{g}")]))
                if np.isfinite(float(r["smd"])):
                    cont_derived.append(_derived(int(i), "smd", "smd_continuous", [(int(i), f"n|{g}") for g in gs]))
            self.registry.add(PendingTable(
                key="table_one_continuous", sheet="Table 1 continuous", title="Baseline characteristics: mean (SD)",
                raw=cont, count_columns=cont_counts,
                margins={"total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
                ids=cont_ids, derived=cont_derived,
                columns=("variable", *[c for g in allg for c in (f"mean|{g}", f"sd|{g}")], "smd"),
                labels={"variable": "Characteristic", **{f"mean|{g}": f"{g} mean" for g in allg},
                        **{f"sd|{g}": f"{g} SD" for g in allg}, "smd": "SMD"},
                measure={"definition": "Mean and SD (ddof=1) among participants with a value.",
                         "as_of": self.as_of.date().isoformat()},
            ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            out: list[Any] = [TextBlock(paragraphs=(
                "Characteristics at enrollment of everyone enrolled by the cut-off. An absolute SMD above 0.1 "
                "is the usual flag for imbalance between groups.",))]
            if "table_one_continuous" in blocks:
                out.append(blocks["table_one_continuous"])
            if "table_one" in blocks:
                out.append(blocks["table_one"])
            return Section("table1", "Baseline characteristics (Table 1)", tuple(out))

        return section

    # -- adjusted odds ratios ---------------------------------------------------------------
    def _adjusted(self) -> Callable[[dict[str, TableBlock]], Section]:
        from recoverystats.regression import odds_ratios

        cfg = self.cfg
        results = []
        first = cfg.recidivism_levels[0]
        for key, col, label in (("relapse", "relapsed", f"relapse within {cfg.relapse_window} days"),
                                (first, "recidivated", f"{first} within {cfg.recidivism_window} days")):
            d = self.measures[key]
            d = d[d["eligible"].astype(bool) & d[col].notna()].copy()
            adjust = [a for a in cfg.adjust if a in d.columns and d[a].notna().any()]
            cluster = None
            # measures carry mentor_id (first mentor matched); odds_ratios makes each
            # unmatched participant a cluster of their own
            if cfg.cluster and cfg.cluster in d.columns and d[cfg.cluster].notna().any():
                cluster = cfg.cluster
            gcol = cfg.group_column
            d[gcol] = d["_group"]
            try:
                r = odds_ratios(d, col, exposure=gcol, adjust=adjust, cluster=cluster,
                                reference={gcol: self.reference}, conf_level=cfg.conf_level, missing="drop")
                rd = r.risk_difference(seed=cfg.seed)
            except RecoveryStatsError as exc:
                self.notes.setdefault("adjusted", []).append(f"{label}: model not estimated ({exc}).")
                continue
            results.append((key, label, r, rd, adjust, cluster))
        or_parts, rd_parts, model_rows, model_ids, model_text = [], [], [], {}, []
        or_force: list[tuple[int, str]] = []
        offset = 0
        for key, label, r, rd, adjust, cluster in results:
            t = r.table
            t = t[t["term"] != "Intercept"].reset_index(drop=True)
            t.insert(0, "outcome", label)
            # every odds ratio of a categorical covariate is relative to its reference level:
            # with few people, events or non-events there, the ratios describe that small
            # group (and n_used minus the published level counts gives its size back), so
            # the whole covariate is suppressed
            small_ref = self._small_reference_levels(key, r, adjust) if self.suppress and self.protect_derived else set()
            for i in np.flatnonzero(t["variable"].astype("string").isin(list(small_ref)).fillna(False).to_numpy()):
                or_force += [(offset + int(i), "n"), (offset + int(i), "events")]
            offset += len(t)
            # per-level n/events are not shown, but they decide suppression: the odds ratio of a
            # covariate level with few participants, events or non-events would tell readers
            # how a small group fared (e.g. "nobody in it was re-arrested")
            or_parts.append(t[["outcome", "term", "estimate", "ci_lower", "ci_upper", "p_value", "n", "events"]])
            dt = rd.table.copy()
            dt.insert(0, "outcome", label)
            if self.cfg.group_column in small_ref:  # the standardised risks describe the small group
                dt[["estimate", "ci_lower", "ci_upper", "p_value", "risk_exposed", "risk_reference"]] = np.nan
            rd_parts.append(dt[["outcome", "comparison", "estimate", "ci_lower", "ci_upper", "p_value",
                                "risk_exposed", "risk_reference"]])
            d = self.measures[key]
            col = "relapsed" if key == "relapse" else "recidivated"
            elig = d[d["eligible"].astype(bool) & d[col].notna()]
            complete = elig[elig[[col, *adjust]].notna().all(axis=1)] if adjust else elig
            i = len(model_rows)
            model_rows.append({"outcome": label, "n_eligible": float(len(elig)), "n_used": float(r.n_used),
                               "n_dropped": float(len(elig) - r.n_used),
                               "events_used": float(complete[col].astype(float).sum())})
            model_ids[(i, "n_eligible")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{len(elig)}")
            if r.n_used == len(elig):
                model_ids[(i, "n_used")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{len(elig)}")
                model_ids[(i, "events_used")] = f"out|{key}|{TOTAL}|events"
            model_text.append((label, r.method, adjust, cluster, tuple(r.notes)))
        if model_rows:
            mt = pd.DataFrame(model_rows)
            counts = ("n_eligible", "n_used", "n_dropped", "events_used")
            self.registry.add(PendingTable(
                key="model_counts", sheet="Model sample", title="Participants in the adjusted models", raw=mt,
                count_columns=counts, margins={"total_columns": {"n_eligible": ["n_used", "n_dropped"]},
                                               "complements": [("n_used", "events_used")]},
                labels={"outcome": "Outcome", "n_eligible": "Eligible", "n_used": "In the model",
                        "n_dropped": "Dropped (missing covariates)", "events_used": "Events in the model"},
                ids=model_ids,
                measure={"definition": "Eligible participants, those in the complete-case model and those dropped "
                                       "for missing covariates.", "as_of": self.as_of.date().isoformat()},
            ))
        if or_parts:
            ot = pd.concat(or_parts, ignore_index=True)
            ot["n"] = pd.to_numeric(ot["n"], errors="coerce").astype(float)
            ot["events"] = pd.to_numeric(ot["events"], errors="coerce").astype(float)
            dep = ["n", "events"]
            self.registry.add(PendingTable(
                key="odds_ratios", sheet="Adjusted odds ratios", title="Adjusted odds ratios (logistic regression)",
                raw=ot, count_columns=("n", "events"), margins={"complements": [("n", "events")]},
                dependent={"estimate": dep, "ci_lower": dep, "ci_upper": dep, "p_value": dep}, force=or_force,
                columns=("outcome", "term", "estimate", "ci_lower", "ci_upper", "p_value"),
                labels={"outcome": "Outcome", "estimate": "OR"},
                measure={"definition": "Odds ratios from logistic regression (regression.odds_ratios).",
                         "as_of": self.as_of.date().isoformat()},
            ))
            rt = pd.concat(rd_parts, ignore_index=True)
            self.registry.add(PendingTable(
                key="risk_differences", sheet="Adjusted risk differences",
                title="Adjusted risk differences (g-computation)", raw=rt, count_columns=(),
                labels={"outcome": "Outcome", "estimate": "Risk difference", "risk_exposed": "Risk if all exposed",
                        "risk_reference": "Risk if all reference"},
                percent_columns=("estimate", "ci_lower", "ci_upper", "risk_exposed", "risk_reference"),
                measure={"definition": "Marginal (standardised) risk difference from the adjusted logistic model "
                                       "(OddsRatioResult.risk_difference).", "as_of": self.as_of.date().isoformat()},
            ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_forest

            methods = []
            mc = blocks.get("model_counts")
            for i, (label, method, adjust, cluster, notes) in enumerate(model_text):
                hidden = mc is not None and bool(mc.mask.iloc[i].any())
                n_used = "*" if hidden else f"{int(mc.data.iloc[i]['n_used']):,}" if mc is not None else "—"
                method = _hide_small_numbers(method, self.min_cell if self.suppress else 1)
                text = (f"{label}: {method}; n in the model = {n_used}; adjusted for "
                        f"{', '.join(adjust) if adjust else 'nothing'}; "
                        + ("clusters = first mentor (unmatched participants are their own cluster). " if cluster
                           else "no clustering. "))
                if hidden:
                    text += "Model notes withheld: they would reveal a suppressed count."
                else:
                    text += " ".join(_hide_small_numbers(_no_terms(n) if self.suppress else n,
                                                         self.min_cell if self.suppress else 1) for n in notes)
                methods.append(text)
            methods += [_hide_small_numbers(n, self.min_cell if self.suppress else 1)
                        for n in self.notes.get("adjusted", [])]
            out: list[Any] = [TextBlock(paragraphs=(
                f"Exposure: {cfg.group_column} (reference: {self.reference}). Adjustment set from the "
                f"configuration: {', '.join(cfg.adjust) or 'none'}.",), bullets=tuple(methods))]
            if mc is not None:
                out.append(mc)
            if "odds_ratios" in blocks:
                b = blocks["odds_ratios"]
                out.append(_figure("forest", "Adjusted odds ratios", lambda ax: plot_forest(
                    b.data, ax=ax, as_of=self.as_of), figsize=(7.5, max(3.0, 0.32 * len(b.data) + 1.2)),
                    sources=("odds_ratios",)))
                out.append(b)
                out.append(blocks["risk_differences"])
            return Section("adjusted", "Adjusted comparison of groups", tuple(out))

        return section

    def _small_reference_levels(self, key: str, r: Any, adjust: list[str]) -> set[str]:
        """Categorical model variables whose reference level has 1..min_cell-1 people, events or non-events.

        Counted on the model's complete cases (the participants the odds ratios are fitted on).
        """
        col = "relapsed" if key == "relapse" else "recidivated"
        d = self.measures[key]
        d = d[d["eligible"].astype(bool) & d[col].notna()]
        if adjust:
            d = d[d[adjust].notna().all(axis=1)]
        y = d[col].astype(float).to_numpy()
        tab = r.table
        out: set[str] = set()
        for var, ref in zip(tab["variable"], tab["reference"], strict=False):
            if var is None or ref is None or (isinstance(ref, float) and np.isnan(ref)) or var in out:
                continue
            src = "_group" if var == self.cfg.group_column else var
            if src not in d:
                continue
            at_ref = (d[src].astype("string") == str(ref)).fillna(False).to_numpy()
            n, e = int(at_ref.sum()), float(y[at_ref].sum())
            if any(1 <= v < self.min_cell for v in (n, e, n - e)):
                out.add(str(var))
        return out

    # -- survival -----------------------------------------------------------------------
    def _survival(self) -> Callable[[dict[str, TableBlock]], Section]:
        from recoverystats.survival import survival_curve

        times = sorted(set(self.cfg.km_times) | {0})
        first = self.cfg.recidivism_levels[0]
        curves = []
        for key, mkey, label in (("relapse", "relapse_tte", "Relapse-free"),
                                 ("recid", "recidivism_tte", f"{first.capitalize()}-free")):
            d = self.measures[mkey]
            d = d[d["time_days"].notna() & d["event"].notna()]
            if not len(d):
                continue
            km = survival_curve(d, time="time_days", event="event", by="_group", conf_level=self.cfg.conf_level)
            rt = km.risk_table(times)
            at = km.at(times)
            rows = []
            for g in self.groups:
                rg = rt[rt["_group"] == g].set_index("time")
                ag = at[at["_group"] == g].set_index("time")
                row: dict[str, Any] = {"group": g}
                for t in times:
                    row[f"at_risk_{t}"] = float(rg["n_at_risk"].get(float(t), np.nan)) if len(rg) else 0.0
                for t in times:
                    row[f"events_{t}"] = float(rg["events"].get(float(t), np.nan)) if len(rg) else 0.0
                for t in times:
                    row[f"surv_{t}"] = float(ag["estimate"].get(float(t), np.nan)) if len(ag) else np.nan
                rows.append(row)
            wide = pd.DataFrame(rows)
            tot = {"group": TOTAL}
            for t in times:
                tot[f"at_risk_{t}"] = wide[f"at_risk_{t}"].sum()
                tot[f"events_{t}"] = wide[f"events_{t}"].sum()
                tot[f"surv_{t}"] = np.nan
            wide = pd.concat([wide, pd.DataFrame([tot])], ignore_index=True)
            n_by_group = self.participants["_group"].value_counts()
            kid: dict[tuple[int, str], Any] = {}
            for i, g in enumerate(wide["group"]):
                n_g = len(self.participants) if g == TOTAL else int(n_by_group.get(g, 0))
                if float(wide.at[i, "at_risk_0"]) == n_g:
                    kid[(i, "at_risk_0")] = "N|all" if g == TOTAL else f"N|{g}"
            hidden = {}
            for a, b in zip(times[:-1], times[1:], strict=False):
                hidden[f"events_{a}_{b}"] = {f"events_{b}": 1, f"events_{a}": -1}
            counts = tuple([f"at_risk_{t}" for t in times] + [f"events_{t}" for t in times])
            tkey = f"km_{key}"
            self.registry.add(PendingTable(
                key=tkey, sheet=f"At risk {key}", title=f"{label} survival: number at risk, cumulative events and S(t)",
                raw=wide, count_columns=counts,
                margins={"total_row": {"group": TOTAL}, "hidden": hidden},
                dependent={f"surv_{t}": [f"at_risk_{t}", f"events_{t}"] for t in times},
                columns=("group", *[f"at_risk_{t}" for t in times], *[f"events_{t}" for t in times],
                         *[f"surv_{t}" for t in times if t > 0]),
                labels={"group": "Group", **{f"at_risk_{t}": f"At risk, day {t}" for t in times},
                        **{f"events_{t}": f"Events by day {t}" for t in times},
                        **{f"surv_{t}": f"S({t})" for t in times}},
                percent_columns=tuple(f"surv_{t}" for t in times), ids=kid,
                # S(t) is the product of the steps up to t: every earlier at-risk and event cell
                derived=[_derived(i, f"surv_{t}", "survival",
                                  [(i, f"{c}_{u}") for u in times if u <= t for c in ("at_risk", "events")])
                         for i in range(len(wide)) for t in times if np.isfinite(float(wide.at[i, f"surv_{t}"]))],
                measure={"definition": "Kaplan-Meier estimate by group (survival.survival_curve); at-risk and "
                                       "cumulative event counts at the listed days.",
                         "as_of": self.as_of.date().isoformat()},
            ))
            curves.append((tkey, label, km, len(d)))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_km
            from recoverystats.privacy.figures import coarsen_km

            m = self.min_cell if self.suppress else 1
            out: list[Any] = [TextBlock(paragraphs=(
                "Kaplan-Meier curves by group (log-log 95% confidence bands). So that no small count can be read "
                f"off the figure, each curve is drawn from counts rounded to multiples of {m} (events are "
                f"shown once {m} of them have accrued; censorings and the group size are rounded up), so every "
                f"step is {m} or more events, and it stops where fewer than {m} participants of its group remain "
                "at risk; no censoring marks are drawn. The curve therefore lies somewhat above the exact "
                "estimate; S(t) in the table below is exact, and the table suppresses small counts."
                if self.suppress else "Kaplan-Meier curves by group (log-log 95% confidence bands).",))]
            for tkey, label, km, _n in curves:
                # n in the title comes from the published at-risk table (never a suppressed count)
                kb = blocks[tkey]
                tot = kb.data.index[kb.data["group"] == TOTAL][0]
                n = None if kb.mask.at[tot, "at_risk_0"] else int(kb.data.at[tot, "at_risk_0"])
                if self.protect_figures:
                    steps = coarsen_km(km.table, min_cell=m, group_col="_group", conf_level=self.cfg.conf_level)
                    data = {"sources": [tkey], "rule": (
                        f"Kaplan-Meier curve from cumulative events rounded down, cumulative censorings and group "
                        f"sizes rounded up, to multiples of {m} "
                        "(privacy.figures.coarsen_km); drawn to the last time with at least "
                        f"{m} participants at risk"),
                        "curves": [{"group": str(g), "steps": steps[steps["group"] == g].drop(columns="group")
                                    .to_dict(orient="records")} for g in dict.fromkeys(steps["group"])]}
                    out.append(_figure(tkey, f"{label} survival", lambda ax, st=steps, label=label, n=n: plot_km(
                        st, ax=ax, min_at_risk=m, title=f"{label} survival", as_of=self.as_of, n=n,
                        group_col="group"), data=data))
                else:  # testing switch: the exact curve, as drawn before issue 11 (the scan must catch it)
                    out.append(_figure(tkey, f"{label} survival", lambda ax, km=km, label=label, n=n: plot_km(
                        km.table, ax=ax, min_at_risk=m, title=f"{label} survival",
                        as_of=self.as_of, n=n, group_col="_group"), round_coordinates=False))
                out.append(blocks[tkey])
            return Section("survival", "Time to relapse and to re-arrest", tuple(out))

        return section

    # -- follow-up and NOMs -----------------------------------------------------------------
    def _followup(self) -> Callable[[dict[str, TableBlock]], Section] | None:
        fu = self.measures.get("followup")
        if fu is None:
            return None
        d = fu.copy()
        d["_done"] = (d["due"].astype(bool) & d["completed_in_window"].fillna(0).astype(bool)).astype(float)
        t, ids = self._rate_rows(d.assign(_due=d["due"].astype(bool)), "_done", "_due", "fu")
        target = self.cfg.targets.get("followup_rate", 0.8)
        t["target"] = target
        self.registry.add(PendingTable(
            key="followup", sheet="Follow-up rate", title="Six-month follow-up rate vs target", raw=t,
            count_columns=("n", "events"),
            margins={"total_row": {"group": TOTAL}, "complements": [("n", "events")]},
            dependent=self._RATE_DEP, labels={"n": "Due", "events": "Completed in window", "estimate": "Rate"},
            percent_columns=("estimate", "ci_lower", "ci_upper", "target"), ids=ids,
            measure=_measure_meta(self.definitions.get("followup", {}), "completed_in_window", "due"),
        ))
        noms = self.measures.get("noms")
        if noms is not None and len(noms):
            nt = noms.rename(columns={self.cfg.group_column: "group"}).copy()
            keep = ["item", "group", "n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes",
                    "pct_intake", "pct_followup", "change_pp", "statistic", "p_value"]
            nt = nt[[c for c in keep if c in nt.columns]].copy()
            for c in ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes"):
                nt[c] = nt[c].astype(float)
            for c in ("pct_intake", "pct_followup", "change_pp"):
                nt[c] = nt[c] / 100.0
            ids = {(i, "n_pairs"): f"noms|{g}|pairs{int(v)}" for i, (g, v) in enumerate(zip(nt["group"], nt["n_pairs"], strict=False))}
            counts = ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes")
            self.registry.add(PendingTable(
                key="noms", sheet="NOMs change", title="NOMs change, intake to 6-month follow-up (matched pairs)",
                raw=nt, count_columns=counts,
                margins={"complements": [("n_pairs", "intake_yes"), ("n_pairs", "followup_yes")],
                         "hidden": {"yes_yes": {"intake_yes": 1, "yes_to_no": -1},
                                    "no_no": {"n_pairs": 1, "intake_yes": -1, "no_to_yes": -1}},
                         "total_columns": {"followup_yes": ["yes_yes", "no_to_yes"]}},
                dependent={"pct_intake": ["n_pairs", "intake_yes"], "pct_followup": ["n_pairs", "followup_yes"],
                           "change_pp": ["n_pairs", "intake_yes", "followup_yes"],
                           "statistic": ["yes_to_no", "no_to_yes"], "p_value": ["yes_to_no", "no_to_yes"]},
                labels={"item": "Item", "n_pairs": "Pairs", "intake_yes": "Yes at intake",
                        "followup_yes": "Yes at follow-up", "yes_to_no": "Yes to no", "no_to_yes": "No to yes",
                        "pct_intake": "% intake", "pct_followup": "% follow-up", "change_pp": "Change"},
                percent_columns=("pct_intake", "pct_followup", "change_pp"), ids=ids,
                measure=_measure_meta(self.definitions.get("noms", {}), "item yes at each timepoint", "matched pairs"),
            ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            from recoverystats.plotting.report import plot_followup

            b = blocks["followup"]
            out: list[Any] = [TextBlock(paragraphs=(self._summary("followup"),))]
            out.append(_figure("followup", "Follow-up rate vs target", lambda ax: plot_followup(
                b.data, target=target, ax=ax, as_of=self.as_of), sources=("followup",)))
            out.append(b)
            if "noms" in blocks:
                out.append(TextBlock(paragraphs=(self._summary("noms"),)))
                out.append(blocks["noms"])
            return Section("followup", "Follow-up and NOMs change", tuple(out))

        return section

    # -- data quality ---------------------------------------------------------------------
    def _quality(self) -> Callable[[dict[str, TableBlock]], Section]:
        v = self.prog.validation
        if len(v):
            cols = ["rule", "severity", "table", "column"]
            vv = v[cols].astype("string").fillna("")
            vs = vv.groupby(cols, sort=True, dropna=False).size().reset_index(name="n_findings")
            vs["n_findings"] = vs["n_findings"].astype(float)
            # one Total row per severity: the section's "N errors, W warnings" are these sums,
            # so they are published (or suppressed) as cells of the table, never in free text
            # next to a suppressed part
            sev_order = {"error": 0, "warning": 1, "info": 2}
            tots = vs.groupby("severity", sort=False)["n_findings"].sum().reset_index()
            tots["rule"], tots["table"], tots["column"] = TOTAL, "", ""
            vs = pd.concat([vs, tots[cols + ["n_findings"]]], ignore_index=True)
            vs = vs.sort_values(["severity", "rule"], key=lambda c: c.map(sev_order).fillna(9) if c.name == "severity"
                                else c.eq(TOTAL), kind="stable").reset_index(drop=True)
        else:
            vs = pd.DataFrame({"rule": pd.Series(dtype="string"), "severity": pd.Series(dtype="string"),
                               "table": pd.Series(dtype="string"), "column": pd.Series(dtype="string"),
                               "n_findings": pd.Series(dtype=float)})
        self.registry.add(PendingTable(
            key="validation", sheet="Validation findings", title="Validation findings by rule (records, not people)",
            raw=vs, count_columns=("n_findings",) if len(vs) else (),
            margins={"total_row": {"rule": TOTAL}, "by": ["severity"]} if len(vs) else None,
            labels={"n_findings": "Findings (records)"},
            measure={"definition": "Findings of the loader's validation rules, counted by rule, table and column, "
                                   "with a Total per severity. Each finding is one record (row) of an input "
                                   "table, not one person: one person's records can be few, so counts from 1 to "
                                   "min_cell - 1 are suppressed like counts of people. Values and row numbers are "
                                   "not reported (they could identify people)."},
        ))
        flow = self.prog.flow.copy()
        if len(flow):
            for c in ("rows_read", "rows_kept", "rows_dropped"):
                flow[c] = pd.to_numeric(flow[c], errors="coerce").astype(float)
            self.registry.add(PendingTable(
                key="load_flow", sheet="Rows loaded", title="Rows read, kept and dropped per table",
                raw=flow[["table", "rows_read", "rows_kept", "rows_dropped"]],
                count_columns=("rows_read", "rows_kept", "rows_dropped"),
                margins={"total_columns": {"rows_read": ["rows_kept", "rows_dropped"]}},
                measure={"definition": "ProgramData.flow: every input row is either kept or dropped with a finding."},
            ))
        ex_rows, ids = [], {}
        for key, label in (("retention", "Retention"), ("relapse", "Relapse"),
                           *[(lvl, lvl.capitalize()) for lvl in self.cfg.recidivism_levels],
                           ("followup", "Follow-up")):
            m = self.measures.get(key)
            if m is None:
                continue
            reasons = m["exclusion_reason"].astype("string").fillna("")
            elig = m["eligible"].astype(bool) if "eligible" in m else reasons.eq("")
            start = len(ex_rows)
            ids[(len(ex_rows), "n")] = f"elig|{TOTAL}|{int(elig.sum())}"
            ex_rows.append({"measure": label, "status": "eligible", "n": float(elig.sum())})
            for r, n in reasons[~elig].replace("", "(unspecified)").value_counts().sort_index().items():
                ex_rows.append({"measure": label, "status": f"excluded: {r}", "n": float(n)})
            ex_rows.append({"measure": label, "status": TOTAL, "n": float(len(m))})
            if len(m) == len(self.participants):
                ids[(len(ex_rows) - 1, "n")] = "N|all"
            del start
        ex = pd.DataFrame(ex_rows)
        if len(ex):
            self.registry.add(PendingTable(
                key="exclusions", sheet="Exclusions", title="Participants eligible and excluded, by measure and reason",
                raw=ex, count_columns=("n",), margins={"total_row": {"status": TOTAL}, "by": ["measure"]},
                labels={"measure": "Measure", "status": "Status"}, ids=ids,
                measure={"definition": "exclusion_reason of each measure's output; eligible = the whole window "
                                       "is observed by the cut-off.", "as_of": self.as_of.date().isoformat()},
            ))

        def section(blocks: dict[str, TableBlock]) -> Section:
            mc = self.min_cell if self.suppress else 1
            f = _severity_totals(blocks.get("validation"))
            out: list[Any] = [TextBlock(paragraphs=(_hide_small_numbers(
                f"Source: {self.prog.source or 'in-memory tables'}. Validation findings (records, not people): "
                f"{f['error']} errors, {f['warning']} warnings, {f['info']} notes "
                f"(* = suppressed: counts of records from 1 to {self.min_cell - 1} are suppressed too).", mc),),
                bullets=tuple(self.warnings))]
            for k in ("validation", "load_flow", "exclusions"):
                if k in blocks and len(blocks[k].data):
                    out.append(blocks[k])
            return Section("quality", "Data quality", tuple(out))

        return section

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

    # -- methods ---------------------------------------------------------------------------
    def _methods(self) -> Callable[[dict[str, TableBlock]], Section]:
        def section(blocks: dict[str, TableBlock]) -> Section:
            as_of = self.as_of.date().isoformat()
            out: list[Any] = [TextBlock(paragraphs=(
                f"Every number uses the data up to the cut-off (as_of) {as_of}, the last day of {self.quarter}. "
                "Each measure is defined once below, with the parameters this report used.",))]
            out.append(TextBlock(heading="Program flow", paragraphs=(self.flow_definition,)))
            used = [("retention", "Retention"), ("relapse", "Relapse"),
                    *[(lvl, lvl.capitalize()) for lvl in self.cfg.recidivism_levels],
                    ("followup", "Follow-up"), ("noms", "NOMs change"), ("engagement", "Engagement")]
            # one entry per measure: the recidivism levels share one definition, their
            # parameters are listed together
            merged: dict[str, dict[str, Any]] = {}
            for key, label in used:
                meta = self.definitions.get(key)
                if not meta:
                    continue
                name = str(meta.get("name") or key)
                entry = merged.setdefault(name, {"title": meta.get("title") or label,
                                                  "definition": str(meta.get("definition", "")),
                                                  "params": {}, "as_of": set()})
                for k, v in (meta.get("parameters") or {}).items():
                    vals = entry["params"].setdefault(k, [])
                    text = _param_text(v)
                    if text not in vals:
                        vals.append(text)
                entry["as_of"].add(str(meta.get("as_of", as_of)))
            for entry in merged.values():
                bullets = [f"{k}: {', '.join(v)}" for k, v in entry["params"].items()]
                if entry["as_of"] != {as_of}:
                    bullets.append(f"data cut-off (as_of): {', '.join(sorted(entry['as_of']))}")
                out.append(TextBlock(heading=entry["title"], paragraphs=(
                    entry["definition"], "Parameters used:" if bullets else "Parameters: the defaults."),
                    bullets=tuple(bullets)))
            priv = (f"Small-cell suppression: counts from 1 to {self.min_cell - 1} are suppressed (shown as *); "
                    "complementary cells are suppressed until no suppressed cell can be recovered exactly from "
                    "totals, other cells or the difference between this and last quarter (every linear "
                    "combination is checked), nor bounded by them to a range narrower than "
                    f"{self.min_cell - 1} (checked by linear programming), and every statistic computed from a suppressed "
                    "count is suppressed: percentages, rates, confidence limits, control limits, survival estimates, "
                    "means and SDs, standardized mean differences (an SMD uses every level count of the compared "
                    "groups), and every odds ratio of a covariate whose reference level has fewer than "
                    f"{self.min_cell} participants, events or non-events. A number suppressed in "
                    "one table is suppressed in every table that shows it. Zeros are shown. Kaplan-Meier curves "
                    f"are drawn from counts rounded to multiples of {self.min_cell} (every step is {self.min_cell} "
                    f"or more events) and stop where fewer than {self.min_cell} remain at risk; every figure is "
                    "drawn from the published tables. No identifiers or dates of birth are "
                    "reported; the finished output is scanned for them before it is released.") if self.suppress \
                else "SMALL-CELL SUPPRESSION WAS TURNED OFF (--no-suppress): this report contains small cells and is not for release."
            out.append(TextBlock(heading="Statistical methods", bullets=(
                f"Proportions: Wilson score intervals ({self.cfg.conf_level:.0%}), rates.proportion (R binom.confint method='wilson').",
                "Quarterly trends: p-chart by the quarter in which each participant's outcome window closed, "
                "centre = pooled proportion, limits "
                "centre ± 3·sqrt(p(1−p)/n_i) (Laney p′ when over-dispersed), rates.trend (R qcc type='p'). "
                "A quarter whose count is suppressed is drawn with neither its point nor its control limits "
                "(marked * on the chart).",
                "Baseline table: rates.table_one; SMD as R tableone (Yang & Dalton for categorical variables).",
                "Adjusted odds ratios: logistic regression with cluster-robust (CR1) standard errors by first "
                "mentor, Firth penalised likelihood when events are few (regression.odds_ratios; R glm/logistf + sandwich).",
                "Adjusted risk differences: g-computation (marginal standardisation) from the same model, "
                "delta-method CI (OddsRatioResult.risk_difference; R stdReg / marginaleffects avg_comparisons).",
                "Time to event: Kaplan-Meier with Greenwood variance and log-log CIs (survival.survival_curve; R survfit).",
                "NOMs change: McNemar test on matched intake / follow-up pairs (exact binomial for few discordant pairs).",
            )))
            out.append(TextBlock(heading="Privacy", paragraphs=(priv,)))
            shown = self.cfg.to_dict()
            if shown.get("reference") is None:
                shown["reference"] = f"{self.reference} (default)"
            if shown.get("mentored") is None:
                shown["mentored"] = f"{', '.join(self.mentored) or 'none'} (default: the groups with a mentor match)"
            cfg_lines = tuple(f"{k} = {_param_text(v)}" for k, v in shown.items() if v not in ("", None))
            out.append(TextBlock(heading="Configuration used", bullets=cfg_lines))
            return Section("methods", "Methods and definitions", tuple(out))

        return section

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
        }


def _severity_totals(block: TableBlock | None) -> dict[str, str]:
    """Published Total of each severity of the validation table ('*' when suppressed)."""
    out = {"error": "0", "warning": "0", "info": "0"}
    if block is None or not len(block.data) or "n_findings" not in block.data:
        return out
    d = block.data
    for i in np.flatnonzero((d["rule"].astype("string") == TOTAL).fillna(False).to_numpy()):
        sev = str(d.at[int(i), "severity"])
        if sev in out:
            hidden = bool(block.mask.at[int(i), "n_findings"])
            out[sev] = "*" if hidden else f"{int(d.at[int(i), 'n_findings']):,}"
    return out


def _derived(row: int, column: str, statistic: str, inputs: list[tuple[int, str]],
             params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One published statistic and the count cells it is computed from (privacy.derived).

    ``digits`` is the precision of the most precise published copy: ``None`` = full
    precision (results.json and tables.xlsx hold the unrounded value).
    """
    out: dict[str, Any] = {"row": int(row), "column": str(column), "statistic": statistic,
                           "inputs": [[int(r), str(c)] for r, c in inputs], "digits": None}
    if params:
        out["params"] = dict(params)
    return out


def _table_one_derived(cat: pd.DataFrame, allg: list[str], gs: list[str]) -> list[dict[str, Any]]:
    """Statistics of the categorical Table 1 and their count cells.

    ``pct|g`` of a level = n / (Total - missing) of its variable (a ``ratio``); the SMD of
    a variable is a function of every level count of the compared groups
    (``smd_categorical``, Yang & Dalton, inputs group-major: groups x levels).
    """
    out: list[dict[str, Any]] = []
    for _var, block in cat.groupby("variable", sort=False):
        idx = [int(i) for i in block.index]
        levels = [i for i in idx if cat.at[i, "level"] not in (TOTAL, "(missing)")]
        tot = [i for i in idx if cat.at[i, "level"] == TOTAL]
        miss = [i for i in idx if cat.at[i, "level"] == "(missing)"]
        if not tot:
            continue
        for i in levels:
            for g in allg:
                if np.isfinite(float(cat.at[i, f"pct|{g}"])):
                    ins = [(i, f"n|{g}"), (tot[0], f"n|{g}")] + [(m, f"n|{g}") for m in miss]
                    out.append(_derived(i, f"pct|{g}", "ratio", ins,
                                        {"denominator_weights": [1.0] + [-1.0] * len(miss)}))
        smd_levels = [i for i in levels if cat.at[i, "level"] != "(with a value)"]
        if len(gs) >= 2 and smd_levels:
            ins = [(i, f"n|{g}") for g in gs for i in smd_levels]
            for i in idx:
                if np.isfinite(float(cat.at[i, "smd"])):
                    out.append(_derived(i, "smd", "smd_categorical", ins,
                                        {"groups": len(gs), "levels": len(smd_levels)}))
    return out


def _param_text(v: Any) -> str:
    """A parameter value for reading: lists joined by commas, mappings as key = value."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k} = {_param_text(x)}" for k, x in v.items()) or "none"
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_text(x) for x in v) or "none"
    if v is None:
        return "none"
    return str(v)


def _published_total(blocks: Mapping[str, TableBlock]) -> int | None:
    """Participants enrolled to date as published (census Total row), or None when that
    number is suppressed: a figure title must not give back a suppressed count."""
    b = blocks.get("census_site")
    if b is None:
        return None
    rows = b.data.index[b.data["site"] == TOTAL]
    if not len(rows) or bool(b.mask.at[rows[0], "n_total"]):
        return None
    return int(b.data.at[rows[0], "n_total"])


def _legend_covers_data(ax: Any, renderer: Any) -> list[str]:
    """A legend inside the axes that lies over drawn data (sampled along every line)."""
    from matplotlib.collections import LineCollection

    leg = ax.get_legend()
    if leg is None or not leg.get_visible():
        return []
    lb = leg.get_window_extent(renderer).padded(-2)
    ab = ax.bbox
    if lb.x1 <= ab.x0 or lb.x0 >= ab.x1 or lb.y1 <= ab.y0 or lb.y0 >= ab.y1:
        return []  # outside the axes

    def hit(points: np.ndarray) -> bool:
        pts = points[np.isfinite(points).all(axis=1)]
        if len(pts) > 1:  # sample along the segments, not only at the vertices
            t = np.linspace(0, 1, 12)[:, None, None]
            pts = (pts[:-1][None] * (1 - t) + pts[1:][None] * t).reshape(-1, 2)
        return bool(((pts[:, 0] > lb.x0) & (pts[:, 0] < lb.x1) & (pts[:, 1] > lb.y0) & (pts[:, 1] < lb.y1)).any())

    out = []
    for line in ax.lines:
        xy = line.get_xydata()
        if line.get_visible() and len(xy) and hit(line.get_transform().transform(np.asarray(xy, float))):
            out.append(f"legend covers the line {line.get_label()!r}")
    for coll in ax.collections:
        if isinstance(coll, LineCollection) and coll.get_visible():
            tr = coll.get_transform()
            if any(hit(tr.transform(np.asarray(seg, float))) for seg in coll.get_segments() if len(seg)):
                out.append(f"legend covers {coll.get_label() or 'interval lines'!r}")
    for p in ax.patches:
        if p.get_visible():
            bb = p.get_window_extent(renderer)
            if bb.x0 < lb.x1 and lb.x0 < bb.x1 and bb.y0 < lb.y1 and lb.y0 < bb.y1:
                out.append(f"legend covers a {type(p).__name__}")
    for t in ax.texts:
        if t.get_visible() and t.get_text().strip():
            bb = t.get_window_extent(renderer)
            if bb.x0 < lb.x1 and lb.x0 < bb.x1 and bb.y0 < lb.y1 and lb.y0 < bb.y1:
                out.append(f"legend covers the text {t.get_text()[:30]!r}")
    return out


def _no_terms(text: str) -> str:
    """Drop the list of terms from a separation note (it names small groups whose outcome is all 0 or 1)."""
    return re.sub(r"\s*\(involves [^)]*\)", "", text)


def _hide_small_numbers(text: str, min_cell: int) -> str:
    """Replace whole numbers 1..min_cell-1 in free text (model notes) by '*'.

    Thresholds written as ``< 5`` are kept; decimals (``4.1``) are kept whole.
    """
    def repl(m: re.Match[str]) -> str:
        v = int(m.group(0))
        return "*" if 1 <= v < min_cell else m.group(0)

    return re.sub(r"(?<![<≤\d.,])(?<!< )(?<!<= )\b\d+\b(?![.,]\d)", repl, text)


def _measure_meta(meta: Mapping[str, Any], numerator: str, denominator: str) -> dict[str, Any]:
    return {
        "name": meta.get("name"), "title": meta.get("title"), "definition": meta.get("definition"),
        "parameters": meta.get("parameters"), "as_of": meta.get("as_of"),
        "numerator": numerator, "denominator": denominator,
    }


def _figure(key: str, title: str, draw: Callable[[Any], Any], figsize: tuple[float, float] | None = None, *,
            sources: Sequence[str] = (), data: Mapping[str, Any] | None = None, round_coordinates: bool = True,
            ) -> FigureBlock:
    """Draw a figure with the shared style and render it to PNG and SVG (deterministic).

    ``draw`` must draw only published data (suppressed tables, or a curve coarsened by
    :func:`recoverystats.privacy.figures.coarsen_km`); ``sources`` (the published tables it
    is drawn from) and ``data`` (the drawn steps of a step curve) go to results.json, where
    the privacy scan compares them with the SVG. SVG coordinates are rounded to 0.01 pt
    (matplotlib writes six decimals, which carry nothing a reader can see).
    """
    import io

    import matplotlib as mpl

    from recoverystats.plotting.style import FIGSIZE, RC, new_axes

    with mpl.rc_context(RC):
        ax = new_axes(None, figsize=figsize or FIGSIZE, pyplot=False)  # never pyplot: no inline copy in Jupyter
        draw(ax)
        fig = ax.figure
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
        problems = layout_problems(fig)
        fig.set_layout_engine("none")  # keep the laid-out positions: the SVG needs no second layout pass
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    text = svg.getvalue()
    text = text[text.find("<svg"):]  # drop the XML prolog and doctype for inline use
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate, no content
    if round_coordinates:
        from recoverystats.privacy.figures import round_svg_coordinates

        text = round_svg_coordinates(text, decimals=2)
    w, h = fig.get_size_inches()
    info = {"sources": list(sources), **(dict(data) if data else {})}
    return FigureBlock(key=key, title=title, png=png.getvalue(), svg=text, problems=problems, aspect=float(w / h),
                       data=info)


def layout_problems(fig: Any, tol: float = 1.0) -> tuple[str, ...]:
    """What a reader would stumble on in a drawn figure: any text (titles, labels, legend,
    annotations, tick labels) reaching outside the figure, tick labels of one axis
    overlapping each other, shapes (boxes, bars) cut off by the edge of their axes, and a
    legend drawn over the data (lines, points, bars, interval whiskers). ``tol`` is in pixels."""
    from matplotlib.text import Text

    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    out: list[str] = []
    tick_labels: set[int] = set()
    for ax in fig.axes:
        ab = ax.bbox
        for p in ax.patches:
            if not (p.get_visible() and p.get_clip_on()):
                continue
            bb = p.get_window_extent(renderer)
            if bb.x0 < ab.x0 - tol or bb.y0 < ab.y0 - tol or bb.x1 > ab.x1 + tol or bb.y1 > ab.y1 + tol:
                out.append(f"{type(p).__name__} cut off at the edge of the axes")
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not (ax.axison and axis.get_visible()):
                for tick in axis.get_major_ticks():
                    tick_labels.add(id(tick.label1))
                continue
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) or 1.0
            boxes = []
            for tick in axis.get_major_ticks():
                lab = tick.label1
                tick_labels.add(id(lab))
                if not (lab.get_visible() and lab.get_text()):
                    continue
                if not lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    continue  # not drawn
                bb = lab.get_window_extent(renderer)
                boxes.append((bb, lab.get_text()))
                if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > W + tol or bb.y1 > H + tol:
                    out.append(f"{name} tick label {lab.get_text()!r} outside the figure")
            key = (lambda b: b[0].x0) if name == "x" else (lambda b: b[0].y0)
            boxes.sort(key=key)
            for (a, ta), (b, tb) in zip(boxes, boxes[1:], strict=False):
                if a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol:
                    out.append(f"{name} tick labels {ta!r} and {tb!r} overlap")
    for ax in fig.axes:
        out.extend(_legend_covers_data(ax, renderer))
    for t in fig.findobj(Text):
        if id(t) in tick_labels or not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > W + tol or bb.y1 > H + tol:
            out.append(f"text {t.get_text()[:40]!r} outside the figure")
    return tuple(out)

