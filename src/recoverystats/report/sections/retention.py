"""Report section: retention at the configured days, by group.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _figure,
    _measure_meta,
    _published_total,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    days = ctx.cfg.retention_days
    df = ctx.measure_columns("retention", (*[f"retained_{k}" for k in days], *[f"eligible_{k}" for k in days],
                                           "_group"))
    parts, ids = [], {}
    offset = 0
    for k in ctx.cfg.retention_days:
        t, tid = ctx._rate_rows(df, f"retained_{k}", f"eligible_{k}", f"ret|{k}")
        t.insert(0, "days", k)
        parts.append(t)
        ids.update({(i + offset, c): v for (i, c), v in tid.items()})
        offset += len(t)
    tab = pd.concat(parts, ignore_index=True)
    meta = ctx.definitions.get("retention", {})
    ctx.registry.add(PendingTable(
        key="retention", sheet="Retention", title="Retention by group (Wilson 95% CI)", raw=tab,
        count_columns=("n", "events"),
        margins={"total_row": {"group": TOTAL}, "by": ["days"], "complements": [("n", "events")]},
        dependent=ctx._RATE_DEP, labels={"days": "Day", "n": "Eligible", "events": "Retained"},
        percent_columns=("estimate", "ci_lower", "ci_upper"), ids=ids,
        measure=_measure_meta(meta, "retained_<k>", "participants whose k-day window is complete"),
    ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_retention

        b = blocks["retention"]
        fig = _figure("retention", "Retention by group", lambda ax: plot_retention(
            b.data, ax=ax, as_of=ctx.as_of, n=_published_total(blocks), labels=ctx.labels), sources=("retention", "census_site"))
        return Section("retention", "Retention", (
            TextBlock(paragraphs=(ctx._summary("retention"),)), fig, b))

    return section
