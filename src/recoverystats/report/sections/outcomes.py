"""Report section: relapse and recidivism rates by group, with quarterly p-charts.

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
    _measure_meta,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    from recoverystats.rates import trend

    items = [("relapse", f"Relapse within {ctx.cfg.relapse_window} days", "relapsed")]
    for lvl in ctx.cfg.recidivism_levels:
        items.append((lvl, f"{lvl.capitalize()} within {ctx.cfg.recidivism_window} days", "recidivated"))
    parts, ids, offset = [], {}, 0
    for key, label, col in items:
        t, tid = ctx._rate_rows(ctx.measure_columns(key, (col, "eligible", "_group")), col, "eligible",
                                f"out|{key}")
        t.insert(0, "measure", label)
        parts.append(t)
        ids.update({(i + offset, c): v for (i, c), v in tid.items()})
        offset += len(t)
    first = ctx.cfg.recidivism_levels[0]
    rc = ctx.measure_columns(first, ("technical_violation", "eligible", "_group"))
    if "technical_violation" in rc:
        t, tid = ctx._rate_rows(rc, "technical_violation", "eligible", "out|technical")
        t.insert(0, "measure", f"Technical violation within {ctx.cfg.recidivism_window} days")
        parts.append(t)
        ids.update({(i + offset, c): v for (i, c), v in tid.items()})
    tab = pd.concat(parts, ignore_index=True)
    ctx.registry.add(PendingTable(
        key="outcomes", sheet="Relapse and recidivism", title="Relapse and recidivism by group (Wilson 95% CI)",
        raw=tab, count_columns=("n", "events"),
        margins={"total_row": {"group": TOTAL}, "by": ["measure"], "complements": [("n", "events")]},
        dependent=ctx._RATE_DEP, labels={"measure": "Outcome", "n": "Eligible", "events": "Events"},
        percent_columns=("estimate", "ci_lower", "ci_upper"), ids=ids,
        measure={"relapse": _measure_meta(ctx.definitions.get("relapse", {}), "relapsed", "eligible"),
                 first: _measure_meta(ctx.definitions.get(first, {}), "recidivated", "eligible")},
    ))
    charts = []
    windows = {"relapse": (ctx.cfg.relapse_window, "enrollment_date")}
    windows.update({lvl: (ctx.cfg.recidivism_window, "index_date") for lvl in ctx.cfg.recidivism_levels})
    for key, label, col in items[:2]:
        days, index_col = windows[key]
        # the columns used, before filtering (no copy of the whole measure frame)
        d = ctx.measure_columns(key, ("eligible", col, index_col, "enrollment_date"))
        d = d[d["eligible"].astype(bool) & d[col].notna()].copy()
        if len(d) < 2:
            continue
        # each participant counts in the quarter their outcome window closed: every such
        # group is complete (no partially observed enrollment cohorts), and the quarters
        # add up to the eligible total of the outcome table
        index = d[index_col] if index_col in d else d["enrollment_date"]
        d["_window_closed"] = index + pd.to_timedelta(days, unit="D")
        tr = trend(d, col, date="_window_closed", freq="Q", conf_level=ctx.cfg.conf_level).table
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
        ctx.registry.add(PendingTable(
            key=tkey, sheet=f"p-chart {key}"[:31], title=f"{label}: quarterly p-chart (by quarter the outcome window closed)",
            raw=tr, count_columns=("n", "events"),
            margins={"total_row": {"period": TOTAL}, "complements": [("n", "events")]},
            dependent={**ctx._RATE_DEP, "lcl": ["n"], "ucl": ["n"], "signal": ["n", "events"]},
            labels={"period": "Window closed", "centre": "Centre", "lcl": "LCL", "ucl": "UCL",
                    "signal": "Signal"},
            percent_columns=("estimate", "ci_lower", "ci_upper", "centre", "lcl", "ucl"), ids=tid,
            derived=[d for d in pderived if np.isfinite(float(tr.at[d["row"], d["column"]]))],
            measure={"definition": "Per quarter in which the outcome window closed (index date + window): "
                                   "proportion with the outcome among eligible participants; p-chart "
                                   "centre = pooled proportion, limits "
                                   "= centre +/- 3 sqrt(p(1-p)/n_i) (rates.trend).",
                     "as_of": ctx.as_of.date().isoformat()},
        ))
        charts.append((tkey, label))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_pchart

        out: list[Any] = [TextBlock(paragraphs=(ctx._summary("outcomes"),))]
        out.append(blocks["outcomes"])
        for tkey, label in charts:
            b = blocks[tkey]
            out.append(_figure(tkey, f"{label}: p-chart", lambda ax, b=b, label=label: plot_pchart(
                b.data, ax=ax, title=label, as_of=ctx.as_of), sources=(tkey,)))
            out.append(b)
        return Section("outcomes", "Relapse and recidivism", tuple(out))

    return section
