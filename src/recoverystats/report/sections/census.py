"""Report section: census and enrollment by site and quarter.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _figure,
    _published_total,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    p = ctx.participants
    gs = ctx.groups
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
    ctx.registry.add(PendingTable(
        key="census_site", sheet="Census by site", title="Participants enrolled to date, by site and group",
        raw=ct, count_columns=(*gcols, "n_total"),
        margins={"total_row": {"site": TOTAL}, "total_columns": {"n_total": list(gcols)}},
        labels={"site": "Site", **{f"n_{g}": ctx.labels.code(g, field="group") for g in gs}, "n_total": "Total"}, ids=ids,
        measure={"as_of": ctx.as_of.date().isoformat(), "definition": "Participants with enrollment_date on or before the cut-off."},
    ))
    # enrollment and active census by quarter
    q = p["enrollment_date"].dt.to_period("Q")
    periods = pd.period_range(q.min(), pd.Period(ctx.as_of, freq="Q"), freq="Q")
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
    ctx.registry.add(PendingTable(
        key="enrollment", sheet="Enrollment by quarter", title="New enrollments by quarter and group",
        raw=en, count_columns=(*ncols, "new_total"),
        margins={"total_row": {"period": TOTAL}, "total_columns": {"new_total": list(ncols)}},
        labels={"period": "Quarter", **{f"new_{g}": ctx.labels.code(g, field="group") for g in gs}, "new_total": "Total"}, ids=ids,
        measure={"as_of": ctx.as_of.date().isoformat(), "definition": "Participants by quarter of enrollment_date."},
    ))
    act = []
    in_group = {g: (p["_group"] == g).to_numpy(dtype=bool, na_value=False) for g in gs}  # once, not per quarter
    for per in periods:
        end = per.end_time.normalize()
        a = ctx._active(end)
        row = {"period": str(per)}
        a_np = a.to_numpy(dtype=bool)
        for g in gs:
            row[f"active_{g}"] = float((a_np & in_group[g]).sum())
        row["active_total"] = float(a.sum())
        act.append(row)
    at = pd.DataFrame(act)
    acols = tuple(f"active_{g}" for g in gs)
    ids = {(i, "active_total"): f"active|{per}|{TOTAL}" for i, per in enumerate(at["period"])}
    ctx.registry.add(PendingTable(
        key="census_quarter", sheet="Active census", title="Active participants at the end of each quarter",
        raw=at, count_columns=(*acols, "active_total"), margins={"total_columns": {"active_total": list(acols)}},
        labels={"period": "Quarter", **{f"active_{g}": ctx.labels.code(g, field="group") for g in gs}, "active_total": "Total"}, ids=ids,
        measure={"as_of": ctx.as_of.date().isoformat(),
                 "definition": "Enrolled on or before the quarter's last day and not discharged by then."},
    ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_enrollment

        fig = _figure("enrollment", "Enrollment and census by quarter", lambda ax: plot_enrollment(
            blocks["enrollment"].data, blocks["census_quarter"].data, gs, ax=ax, as_of=ctx.as_of,
            n=_published_total(blocks), labels=ctx.labels), sources=("enrollment", "census_quarter", "census_site"))
        return Section("census", "Census and enrollment", (
            fig, blocks["census_site"], blocks["enrollment"], blocks["census_quarter"]))

    return section
