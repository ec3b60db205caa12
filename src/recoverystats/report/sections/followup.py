"""Report section: the follow-up interview rate and the NOMs change.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _figure,
    _measure_meta,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables, or None when there is nothing to show
    (see :mod:`recoverystats.report.sections`)."""
    if "followup" not in ctx.measures:
        return None
    # the columns used (on an engine: no whole measure frame of millions of rows)
    fu = ctx.measure_columns("followup", ["due", "completed_in_window", "_group"])
    due = fu["due"].astype(bool)
    d = pd.DataFrame({"_done": (due & fu["completed_in_window"].fillna(0).astype(bool)).astype(float),
                      "_due": due, "_group": fu["_group"]})
    del fu
    t, ids = ctx._rate_rows(d, "_done", "_due", "fu")
    target = ctx.cfg.targets.get("followup_rate", 0.8)
    t["target"] = target
    ctx.registry.add(PendingTable(
        key="followup", sheet="Follow-up rate", title="Six-month follow-up rate vs target", raw=t,
        count_columns=("n", "events"),
        margins={"total_row": {"group": TOTAL}, "complements": [("n", "events")]},
        dependent=ctx._RATE_DEP, labels={"n": "Due", "events": "Completed in window", "estimate": "Rate"},
        percent_columns=("estimate", "ci_lower", "ci_upper", "target"), ids=ids,
        measure=_measure_meta(ctx.definitions.get("followup", {}), "completed_in_window", "due"),
    ))
    noms = ctx.measures.get("noms")
    if noms is not None and len(noms):
        nt = noms.rename(columns={ctx.cfg.group_column: "group"}).copy()
        keep = ["item", "group", "n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes",
                "pct_intake", "pct_followup", "change_pp", "statistic", "p_value"]
        nt = nt[[c for c in keep if c in nt.columns]].copy()
        for c in ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes"):
            nt[c] = nt[c].astype(float)
        for c in ("pct_intake", "pct_followup", "change_pp"):
            nt[c] = nt[c] / 100.0
        ids = {(i, "n_pairs"): f"noms|{g}|pairs{int(v)}" for i, (g, v) in enumerate(zip(nt["group"], nt["n_pairs"], strict=False))}
        counts = ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes")
        ctx.registry.add(PendingTable(
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
            measure=_measure_meta(ctx.definitions.get("noms", {}), "item yes at each timepoint", "matched pairs"),
        ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_followup

        b = blocks["followup"]
        out: list[Any] = [TextBlock(paragraphs=(ctx._summary("followup"),))]
        out.append(_figure("followup", "Follow-up rate vs target", lambda ax: plot_followup(
            b.data, target=target, ax=ax, as_of=ctx.as_of, labels=ctx.labels), sources=("followup",)))
        out.append(b)
        if "noms" in blocks:
            out.append(TextBlock(paragraphs=(ctx._summary("noms"),)))
            out.append(blocks["noms"])
        return Section("followup", "Follow-up and NOMs change", tuple(out))

    return section
