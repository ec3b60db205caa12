"""Report section: the program flow: enrolled, matched with a mentor, engaged, followed up, discharged.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _derived,
    _figure,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    p = ctx.participants
    n_all = len(p)
    # matched, engaged and _group per enrolled participant (on an engine: by position in
    # the measure store, no identifiers compared)
    matched, engaged, group = ctx.matched_engaged()
    fu = ctx.measure_columns("followup", ["due", "completed_in_window"]) if "followup" in ctx.measures else None
    if fu is not None:
        due = int(fu["due"].astype(bool).sum())
        done = int((fu["due"].astype(bool) & fu["completed_in_window"].fillna(0).astype(bool)).sum())
    else:
        due, done = np.nan, np.nan
    discharged = p["discharge_date"].notna() & (p["discharge_date"] <= ctx.as_of)
    # only the arm(s) offered a mentor can be matched: matching and engagement are shown
    # against them (one row per mentored group, so every denominator is a published
    # group size), never against everyone enrolled
    mentored = _mentored_groups(ctx, group[matched])
    ctx.mentored = mentored
    rows: list[dict[str, Any]] = [{"stage": "Enrolled", "n": n_all, "of": np.nan, "of_label": ""}]
    ids: dict[tuple[int, str], Any] = {(0, "n"): "N|all"}
    in_group = {g: group == g for g in mentored}
    for g in mentored:
        i = len(rows)
        rows.append({"stage": "Matched with a mentor", "n": int((matched & in_group[g]).sum()),
                     "of": int(in_group[g].sum()), "of_label": f"in {g}"})
        ids[(i, "n")] = f"flow|matched|{g}"
        ids[(i, "of")] = f"N|{g}"
    for g in mentored:
        i = len(rows)
        rows.append({"stage": "Engaged (3+ contacts in 90 days)", "n": int((engaged & in_group[g]).sum()),
                     "of": int((matched & in_group[g]).sum()),
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
    mentored_text = " and ".join(ctx.labels.code(g, field="group") for g in mentored) or "none"
    how = ("the configuration's [groups] mentored" if ctx.cfg.mentored is not None
           else "the groups with at least one mentor match by the cut-off")
    ctx.flow_definition = (
        f"Enrolled = enrollment date on or before the cut-off. Matched = a mentor match dated by the "
        f"cut-off, as a share of the participants of the group(s) offered a mentor ({mentored_text}; "
        f"taken from {how}); the other group(s) are never matched and are not in this denominator. "
        "Engaged = matched and at least 3 mentor contacts in the first 90 days after enrollment "
        "(engagement measure), as a share of those matched. Followed up = 6-month interview completed in "
        "its window among those due. Discharged = discharge dated by the cut-off, of everyone enrolled.")
    ctx.registry.add(PendingTable(
        key="flow", sheet="Program flow", title="Program flow", raw=flow, count_columns=("n", "of"),
        margins={"complements": [("of", "n")]}, dependent={"pct": ["n", "of"]},
        columns=("stage", "of_label", "n", "of", "pct"),
        labels={"stage": "Stage", "n": "N", "of": "Of", "of_label": "Denominator (of whom)", "pct": "%"},
        percent_columns=("pct",), ids=ids,
        measure={"as_of": ctx.as_of.date().isoformat(), "mentored_groups": list(mentored),
                 "numerator": "n", "denominator": "of (who: of_label)",
                 "definition": ctx.flow_definition},
    ))
    reasons = p.loc[discharged, "discharge_reason"].astype("string").fillna("(not recorded)")
    from recoverystats.schema.spec import DISCHARGE_REASONS

    counts = reasons.value_counts()
    found = set(counts.index)
    levels = [r for r in DISCHARGE_REASONS if r in found] + sorted(found - set(DISCHARGE_REASONS))
    rt = pd.DataFrame({"reason": levels + [TOTAL],
                       "n": [int(counts[r]) for r in levels] + [int(len(reasons))]})
    rt["pct"] = rt["n"] / max(len(reasons), 1)
    ctx.registry.add(PendingTable(
        key="discharge_reasons", sheet="Discharge reasons", title="Discharges by reason", raw=rt,
        count_columns=("n",), margins={"total_row": {"reason": TOTAL}}, dependent={"pct": ["n"]},
        labels={"reason": "Reason", "pct": "% of discharges"}, percent_columns=("pct",),
        ids={(len(levels), "n"): "dis|Total"},
        # % of discharges = n / Total: a published share with a suppressed Total gives it back
        derived=[_derived(i, "pct", "ratio", [(i, "n"), (len(levels), "n")]) for i in range(len(levels))],
        measure={"as_of": ctx.as_of.date().isoformat(), "definition": "Discharges dated by the cut-off, by discharge_reason."},
    ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_flow

        # the figure's text in words (display copies; the published tables keep the codes)
        shown_flow, shown_reasons = _labelled(blocks["flow"], "of_label"), _labelled(blocks["discharge_reasons"], "reason")
        fig = _figure("flow", "Program flow", lambda ax: plot_flow(
            shown_flow, shown_reasons, ax=ax, as_of=ctx.as_of), figsize=(7.5, 5.2),
                      sources=("flow", "discharge_reasons"))
        return Section("flow", "Program flow", (
            TextBlock(paragraphs=(
                "From enrollment to discharge, drawn from the data. Each percentage is of the people named in "
                "the 'Denominator' column: matching is shown against the group(s) offered a mentor "
                f"({', '.join(ctx.labels.code(g, field='group') for g in mentored) or 'none'}), engagement against those matched. * = suppressed small "
                "cell.",)),
            fig, blocks["flow"], blocks["discharge_reasons"]))

    return section


def _mentored_groups(ctx: ReportContext, matched_groups: np.ndarray) -> list[str]:
    """Groups offered a mentor: the config's ``[groups] mentored`` or every group with a match
    (``matched_groups``: the ``_group`` of each participant matched)."""
    if ctx.cfg.mentored is not None:
        bad = [g for g in ctx.cfg.mentored if g not in ctx.groups]
        if bad:
            raise InvalidParameterError(
                f"config [groups] mentored: {', '.join(map(repr, bad))} not a level of "
                f"{ctx.cfg.group_column!r}; levels are {', '.join(ctx.groups)}."
            )
        return [g for g in ctx.groups if g in ctx.cfg.mentored]
    with_match = set(pd.unique(matched_groups))
    return [g for g in ctx.groups if g in with_match]


def _labelled(block: TableBlock, column: str) -> pd.DataFrame:
    """A copy of a published table with one label column in words (for a figure's text)."""
    data = block.data.copy()
    if column in data:
        data[column] = [v if not isinstance(v, str) or v == TOTAL else block.display_code(i, column, v)
                        for i, v in enumerate(data[column])]
    return data
