"""Report section: kaplan-Meier curves of time to relapse and to re-arrest, with at-risk tables.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

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
    from recoverystats.survival import survival_curve

    times = sorted(set(ctx.cfg.km_times) | {0})
    first = ctx.cfg.recidivism_levels[0]
    curves = []
    for key, mkey, label in (("relapse", "relapse_tte", "Relapse-free"),
                             ("recid", "recidivism_tte", f"{first.capitalize()}-free")):
        d = ctx.measure_columns(mkey, ("time_days", "event", "_group"))  # the columns used (no copy of the rest)
        d = d[d["time_days"].notna() & d["event"].notna()]
        if not len(d):
            continue
        km = survival_curve(d, time="time_days", event="event", by="_group", conf_level=ctx.cfg.conf_level)
        rt = km.risk_table(times)
        at = km.at(times)
        rows = []
        for g in ctx.groups:
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
        n_by_group = ctx.participants["_group"].value_counts()
        kid: dict[tuple[int, str], Any] = {}
        for i, g in enumerate(wide["group"]):
            n_g = len(ctx.participants) if g == TOTAL else int(n_by_group.get(g, 0))
            if float(wide.at[i, "at_risk_0"]) == n_g:
                kid[(i, "at_risk_0")] = "N|all" if g == TOTAL else f"N|{g}"
        hidden = {}
        for a, b in zip(times[:-1], times[1:], strict=False):
            hidden[f"events_{a}_{b}"] = {f"events_{b}": 1, f"events_{a}": -1}
        counts = tuple([f"at_risk_{t}" for t in times] + [f"events_{t}" for t in times])
        tkey = f"km_{key}"
        ctx.registry.add(PendingTable(
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
                     "as_of": ctx.as_of.date().isoformat()},
        ))
        curves.append((tkey, label, km, len(d)))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_km
        from recoverystats.privacy.figures import coarsen_km

        m = ctx.min_cell if ctx.suppress else 1
        out: list[Any] = [TextBlock(paragraphs=(
            "Kaplan-Meier curves by group (log-log 95% confidence bands). So that no small count can be read "
            f"off the figure, each curve is drawn from counts rounded to multiples of {m} (events are "
            f"shown once {m} of them have accrued; censorings and the group size are rounded up), so every "
            f"step is {m} or more events, and it stops where fewer than {m} participants of its group remain "
            "at risk; no censoring marks are drawn. The curve therefore lies somewhat above the exact "
            "estimate; S(t) in the table below is exact, and the table suppresses small counts."
            if ctx.suppress else "Kaplan-Meier curves by group (log-log 95% confidence bands).",))]
        for tkey, label, km, _n in curves:
            # n in the title comes from the published at-risk table (never a suppressed count)
            kb = blocks[tkey]
            tot = kb.data.index[kb.data["group"] == TOTAL][0]
            n = None if kb.mask.at[tot, "at_risk_0"] else int(kb.data.at[tot, "at_risk_0"])
            if ctx.protect_figures:
                steps = coarsen_km(km.table, min_cell=m, group_col="_group", conf_level=ctx.cfg.conf_level)
                data = {"sources": [tkey], "rule": (
                    f"Kaplan-Meier curve from cumulative events rounded down, cumulative censorings and group "
                    f"sizes rounded up, to multiples of {m} "
                    "(privacy.figures.coarsen_km); drawn to the last time with at least "
                    f"{m} participants at risk"),
                    "curves": [{"group": str(g), "steps": steps[steps["group"] == g].drop(columns="group")
                                .to_dict(orient="records")} for g in dict.fromkeys(steps["group"])]}
                out.append(_figure(tkey, f"{label} survival", lambda ax, st=steps, label=label, n=n: plot_km(
                    st, ax=ax, min_at_risk=m, title=f"{label} survival", as_of=ctx.as_of, n=n,
                    group_col="group", labels=ctx.labels), data=data))
            else:  # testing switch: the exact curve, as drawn before issue 11 (the scan must catch it)
                out.append(_figure(tkey, f"{label} survival", lambda ax, km=km, label=label, n=n: plot_km(
                    km.table, ax=ax, min_at_risk=m, title=f"{label} survival",
                    as_of=ctx.as_of, n=n, group_col="_group"), round_coordinates=False))
            out.append(blocks[tkey])
        return Section("survival", "Time to relapse and to re-arrest", tuple(out))

    return section
