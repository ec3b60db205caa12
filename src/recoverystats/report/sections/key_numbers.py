"""Report section: the key numbers: this quarter, last quarter and the targets.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.report.build import parse_quarter
from recoverystats.report.config import TARGET_DIRECTIONS
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    # registered last-minute: needs the ids of the other tables, which are fixed strings
    rows: list[dict[str, Any]] = []
    ids: dict[tuple[int, str], str] = {}
    p = ctx.participants
    q_start, prev_start = ctx.start, parse_quarter(ctx.prev_quarter)[0]
    new_now = int(((p["enrollment_date"] >= q_start) & (p["enrollment_date"] <= ctx.as_of)).sum())
    new_prev = int(((p["enrollment_date"] >= prev_start) & (p["enrollment_date"] <= ctx.prev_as_of)).sum())
    rows.append(dict(key="enrolled_to_date", measure="Participants enrolled to date", kind="count",
                     this_count=len(p), last_count=np.nan))
    ids[(0, "this_count")] = "N|all"
    rows.append(dict(key="new_enrollments", measure="New enrollments in the quarter", kind="count",
                     this_count=new_now, last_count=new_prev))
    ids[(1, "this_count")] = f"enr|{ctx.quarter}|{TOTAL}"
    ids[(1, "last_count")] = f"enr|{ctx.prev_quarter}|{TOTAL}"
    act_now, act_prev = ctx._active(ctx.as_of), ctx._active(ctx.prev_as_of)
    rows.append(dict(key="active", measure="Active participants at quarter end", kind="count",
                     this_count=int(act_now.sum()), last_count=int(act_prev.sum())))
    ids[(2, "this_count")] = f"active|{ctx.quarter}|{TOTAL}"
    ids[(2, "last_count")] = f"active|{ctx.prev_quarter}|{TOTAL}"

    program = ctx.program_groups
    # the program group(s) first, the comparison group beside them; never a pooled rate
    shown_groups = [*program, *[g for g in ctx.groups if g not in program]]

    def rate_row(key: str, label: str, frame_key: str, outcome: str, eligible: str, id_prefix: str) -> None:
        if frame_key not in ctx.measures:
            return
        # the columns counted (on an engine, not whole measure frames of millions of rows)
        used = (outcome, eligible, "_group")
        now = ctx.measure_columns(frame_key, used)
        prev = ctx.measure_columns(frame_key, used, previous=True) if frame_key in ctx.prev else None
        better = TARGET_DIRECTIONS.get(key)
        if better:
            label = f"{label} ({better} is better)"

        def counts(df: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
            """(eligible with an outcome, events) by group, in one pass (0, 0 for a group without rows)."""
            if df is None:
                return {g: (np.nan, np.nan) for g in shown_groups}
            ok = df[outcome].notna().to_numpy()
            if eligible in df:
                ok = ok & df[eligible].astype(bool).to_numpy()  # not &=: read-only under copy-on-write
            codes, levels = pd.factorize(df["_group"].to_numpy(dtype=object)[ok])
            y = df[outcome].to_numpy(dtype=float, na_value=np.nan)[ok]
            n = np.bincount(codes, minlength=len(levels))
            e = np.bincount(codes, weights=y, minlength=len(levels))
            got = {str(g): (float(n[i]), float(e[i])) for i, g in enumerate(levels)}
            return {g: got.get(g, (0.0, 0.0)) for g in shown_groups}

        now_counts, prev_counts = counts(now), counts(prev)
        for g in shown_groups:
            tn, te = now_counts[g]
            ln, le = prev_counts[g]
            i = len(rows)
            rows.append(dict(key=key, measure=label, kind="rate", group=g, this_n=tn, this_events=te, last_n=ln,
                             last_events=le))
            ids[(i, "this_n")] = (f"{id_prefix}|{g}|n", f"elig|{g}|{int(tn)}")
            ids[(i, "this_events")] = f"{id_prefix}|{g}|events"

    days = ctx.cfg.retention_days
    k90 = 90 if 90 in days else days[len(days) // 2]
    rate_row(f"retention_{k90}", f"{k90}-day retention", "retention", f"retained_{k90}", f"eligible_{k90}",
             f"ret|{k90}")
    rate_row("relapse", f"Relapse within {ctx.cfg.relapse_window} days", "relapse", "relapsed", "eligible",
             "out|relapse")
    lvl = ctx.cfg.recidivism_levels[0]
    rate_row(lvl, f"{lvl.capitalize()} within {ctx.cfg.recidivism_window} days", lvl, "recidivated",
             "eligible", f"out|{lvl}")
    if "followup" in ctx.measures:
        rate_row("followup_rate", "Follow-up rate (6-month interview in window)", "followup",
                 "completed_in_window", "due", "fu")
    t = pd.DataFrame(rows)
    count_cols = ("this_count", "this_events", "this_n", "last_count", "last_events", "last_n")
    for c in count_cols:
        t[c] = t[c].astype(float) if c in t else np.nan
    t["group"] = t["group"].fillna(TOTAL) if "group" in t else TOTAL
    t = t[["key", "measure", "kind", "group", *count_cols]]
    rate = t["kind"] == "rate"
    t["this_estimate"] = np.where(rate, t["this_events"] / t["this_n"].where(t["this_n"] > 0), np.nan)
    t["last_estimate"] = np.where(rate, t["last_events"] / t["last_n"].where(t["last_n"] > 0), np.nan)
    t["change"] = np.where(rate, t["this_estimate"] - t["last_estimate"], t["this_count"] - t["last_count"])
    # targets apply to the program group(s) only
    t["target"] = [ctx.cfg.targets.get(k, np.nan) if g in program else np.nan
                   for k, g in zip(t["key"], t["group"], strict=True)]
    direction = [TARGET_DIRECTIONS.get(k, "") for k in t["key"]]
    meets = []
    for est, tgt, d in zip(t["this_estimate"], t["target"], direction, strict=False):
        if np.isnan(tgt) or np.isnan(est):
            meets.append(np.nan)
        else:
            meets.append(float(est >= tgt if d == "higher" else est <= tgt))
    t["meets_target"] = meets
    ctx.key_rows = rows
    ctx.registry.add(PendingTable(
        key="key_numbers", sheet="Key numbers", title=f"Key numbers, {ctx.quarter} vs {ctx.prev_quarter}",
        raw=t, count_columns=count_cols,
        margins={"complements": [("this_n", "this_events"), ("last_n", "last_events")],
                 # participants whose window closed during the quarter (cumulative cohorts
                 # are nested): this quarter minus last quarter is a count too
                 "hidden": {"new_n": {"this_n": 1, "last_n": -1},
                            "new_events": {"this_events": 1, "last_events": -1},
                            "new_nonevents": {"this_n": 1, "this_events": -1, "last_n": -1, "last_events": 1}}},
        dependent={"this_estimate": ["this_n", "this_events"], "last_estimate": ["last_n", "last_events"],
                   "change": list(count_cols), "meets_target": ["this_n", "this_events"]},
        columns=("measure", "group", "this_value", "this_n", "this_estimate", "last_value", "last_n", "last_estimate",
                 "change", "target", "meets_target"),
        coalesce={"this_value": ("this_count", "this_events"), "last_value": ("last_count", "last_events")},
        # last quarter's numbers are the "this" numbers of last quarter's report: the ledger
        # compares them with that release (a re-run on changed data would show the change)
        ledger_alias={"last_count": (ctx.prev_quarter, "this_count"), "last_n": (ctx.prev_quarter, "this_n"),
                      "last_events": (ctx.prev_quarter, "this_events")},
        ledger_quarter_rows=(1, 2),  # new enrollments in, active at the end of, the quarter
        labels={"this_value": f"{ctx.quarter}: count", "this_count": f"{ctx.quarter}: count",
                "this_events": f"{ctx.quarter}: events", "this_n": f"{ctx.quarter}: of",
                "this_estimate": f"{ctx.quarter}: %", "last_value": f"{ctx.prev_quarter}: count",
                "last_count": f"{ctx.prev_quarter}: count", "last_events": f"{ctx.prev_quarter}: events",
                "last_n": f"{ctx.prev_quarter}: of", "last_estimate": f"{ctx.prev_quarter}: %",
                "change": "Change", "target": "Target", "meets_target": "Meets target", "group": "Group"},
        percent_columns=("this_estimate", "last_estimate", "target"),
        measure={"as_of": ctx.as_of.date().isoformat(), "previous_as_of": ctx.prev_as_of.date().isoformat(),
                 "numerator": "this_events / last_events (rates); this_count / last_count (counts)",
                 "denominator": "this_n / last_n",
                 "definition": "Rates use every participant whose window is complete by the cut-off "
                               "(cumulative to the end of each quarter); counts are of participants."},
        ids=ids,
    ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        kb = blocks["key_numbers"]
        text = TextBlock(paragraphs=(
            f"Data to {ctx.as_of.date().isoformat()} (end of {ctx.quarter}), compared with the end of "
            f"{ctx.prev_quarter}. Rates are cumulative: every participant whose outcome window was complete "
            "by the cut-off. Rates are shown for each group, the program group first; targets come from the "
            f"report configuration and apply to the program group ({', '.join(program)}), not to the comparison "
            "group; each measure says whether a lower or a higher rate is better.",
        ))
        return Section("key_numbers", "Key numbers", (text, kb))

    return section
