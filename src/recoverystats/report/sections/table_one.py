"""Report section: table 1: baseline characteristics by group, with SMDs.

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
    _table_one_derived,
    _table_one_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables, or None when there is nothing to show
    (see :mod:`recoverystats.report.sections`)."""
    from recoverystats.rates import table_one
    from recoverystats.report.sections import enabled_sections

    # level counts are linked (suppressed together) with the comparison section's balance
    # table only when that section is on: a link re-solves the table with its suppressed
    # cells forced, which can pick other complements and change a default report
    link_levels = any(s.key == "comparison" for s in enabled_sections(ctx.cfg))
    base = ctx.measure_columns("retention", [*ctx.cfg.table_one, "_group"])  # the columns used
    variables = [v for v in ctx.cfg.table_one if v in base.columns and base[v].notna().any()]
    if not variables:
        return None
    t1 = table_one(base, group="_group", variables=variables, smd=True, overall=True)
    tab = t1.table
    gs = list(t1.groups)
    allg = ["Overall", *gs]
    nrow = tab[tab["kind"] == "count"].iloc[0]
    cat, cont_rows = _table_one_rows(tab, allg)
    if len(cat):
        ids = {}
        for i, (var, lev) in enumerate(zip(cat["variable"], cat["level"], strict=True)):
            if lev == TOTAL:
                for g in allg:
                    ids[(i, f"n|{g}")] = "N|all" if g == "Overall" else f"N|{g}"
            elif lev == "(with a value)":
                for g in allg:  # the same count is the n of the mean (SD) row
                    ids[(i, f"n|{g}")] = f"t1|{var}|with_value|{g}"
            elif link_levels:  # the same count is in the comparison section's balance table
                for g in gs:
                    ids[(i, f"n|{g}")] = f"t1|{var}|level|{lev}|{g}"
        total_rows = [i for i, lev in enumerate(cat["level"]) if lev == TOTAL]
        shown_rows = [i for i in range(len(cat)) if i not in total_rows]
        derived = _table_one_derived(cat, allg, gs)
        counts = tuple(f"n|{g}" for g in allg)
        ctx.registry.add(PendingTable(
            key="table_one", sheet="Table 1", title="Baseline characteristics by group: n (%)",
            raw=cat, count_columns=counts,
            margins={"total_row": {"level": TOTAL}, "by": ["variable"],
                     "total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
            dependent={f"pct|{g}": [f"n|{g}"] for g in allg},
            columns=("variable", "level", *[c for g in allg for c in (f"n|{g}", f"pct|{g}")], "smd"),
            labels={"variable": "Characteristic", "level": "Level",
                    **{f"n|{g}": f"{ctx.labels.code(g, field='group')} n" for g in allg}, **{f"pct|{g}": f"{ctx.labels.code(g, field='group')} %" for g in allg},
                    "smd": "SMD"},
            percent_columns=tuple(f"pct|{g}" for g in allg), ids=ids, display_rows=shown_rows,
            derived=derived,
            measure={"definition": "Participants enrolled by the cut-off; % of those with a recorded value; "
                                   "SMD = standardized mean difference (Yang & Dalton for categorical).",
                     "as_of": ctx.as_of.date().isoformat()},
        ))
    cont = pd.DataFrame(cont_rows)
    if len(cont):
        # group sizes of the continuous rows (those with a value) are counts too
        cont_counts = tuple(f"n|{g}" for g in allg)
        if ctx.suppress:
            # a mean of fewer than min_cell people describes individuals: blank it (a
            # suppressed complement n does not make a mean of many people unsafe)
            for g in allg:
                small = cont[f"n|{g}"].astype(float) < ctx.min_cell
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
        ctx.registry.add(PendingTable(
            key="table_one_continuous", sheet="Table 1 continuous", title="Baseline characteristics: mean (SD)",
            raw=cont, count_columns=cont_counts,
            margins={"total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
            ids=cont_ids, derived=cont_derived,
            columns=("variable", *[c for g in allg for c in (f"mean|{g}", f"sd|{g}")], "smd"),
            labels={"variable": "Characteristic", **{f"mean|{g}": f"{ctx.labels.code(g, field='group')} mean" for g in allg},
                    **{f"sd|{g}": f"{ctx.labels.code(g, field='group')} SD" for g in allg}, "smd": "SMD"},
            measure={"definition": "Mean and SD (ddof=1) among participants with a value.",
                     "as_of": ctx.as_of.date().isoformat()},
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
