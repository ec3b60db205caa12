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

from recoverystats.errors import InvalidParameterError
from recoverystats.report.config import ReportConfig, load_config
from recoverystats.report.context import ReportContext
from recoverystats.report.context import label_quarter as _label_quarter
from recoverystats.report.sections._shared import TOTAL, _hide_small_numbers

# re-exported: tests and earlier code import these helpers from here
from recoverystats.report.sections._shared import _figure as _figure
from recoverystats.report.sections._shared import _table_one_derived as _table_one_derived
from recoverystats.report.sections._shared import layout_problems as layout_problems

#: the internal name of the report context before the sections were split out
_Context = ReportContext

__all__ = ["quarterly", "parse_quarter"]

Progress = Callable[[str], None]


def parse_quarter(quarter: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``"2026Q3"`` -> (first day, last day) of that quarter."""
    m = re.fullmatch(r"(\d{4})\s*-?Q([1-4])", str(quarter).strip(), flags=re.I)
    if not m:
        raise InvalidParameterError(
            f"quarter must look like 2026Q3 (year, 'Q', quarter 1-4); got {quarter!r}."
        )
    p = pd.Period(f"{m.group(1)}Q{m.group(2)}", freq="Q")
    return p.start_time.normalize(), p.end_time.normalize()


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
    if hasattr(prog, "backend") and hasattr(prog, "to_pandas"):
        from recoverystats.engines.report import for_report

        prog = for_report(prog)  # DuckDB/Spark: small tables collected, measures on the engine
    _check_program(prog, as_of, quarter, cfg)
    cfg = with_program_info(cfg, prog)
    data, cfg, renamed = _disambiguate_total(prog, cfg)
    if isinstance(previous, (str, Path)):
        previous = [previous]
    from recoverystats.report.ledger import read_previous

    releases = read_previous([*cfg.previous, *previous], program=cfg.program, group_column=cfg.group_column,
                             quarter=_label_quarter(as_of), as_of=as_of)
    ctx = ReportContext(prog=data, cfg=cfg, quarter=_label_quarter(as_of), start=start, as_of=as_of,
                        prev_as_of=prev_as_of, min_cell=cell, suppress=bool(suppress), previous=releases,
                        protect_derived=bool(_protect_derived))
    ctx.protect_figures = bool(_protect_figures)
    ctx.progress = say  # one stage per measure (engines) and per section
    say("measures")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx.compute_measures()
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
        provenance=ctx.provenance(), key_numbers=ctx.key_numbers(blocks), prog=prog, ledger=ledger, previous=tuple(releases),
    )


def with_program_info(cfg: ReportConfig, prog: Any) -> ReportConfig:
    """The config with program.toml's ``[program]`` identity and ``[design]`` filled in.

    A value given in the report config wins over program.toml's (DESIGN section 14);
    fields neither gives stay empty.
    """
    import dataclasses

    info = getattr(prog, "info", None) or {}
    ident = info.get("program") or {}
    design = info.get("design") or {}
    fill: dict[str, str] = {}
    for src, dst in (("name", "program"), ("funder", "funder"), ("grant_number", "grant_number"),
                     ("reporting_period", "reporting_period"), ("prepared_by", "prepared_by")):
        if not getattr(cfg, dst) and ident.get(src):
            fill[dst] = str(ident[src])
    if not cfg.comparison and design.get("comparison"):
        fill["comparison"] = str(design["comparison"])
    if not cfg.design_description and design.get("description"):
        fill["design_description"] = str(design["description"])
    return dataclasses.replace(cfg, **fill) if fill else cfg


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
