"""Report section: data quality: validation findings and notes.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _hide_small_numbers,
    _severity_totals,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "finding_records"]

#: "<N> row(s)" in a table-level finding's message: the number of records it covers
_ROWS = re.compile(r"(?<![\w.])(\d[\d,]*) row\(s\)")


def finding_records(validation: pd.DataFrame) -> pd.Series:
    """Records covered by each finding: 1 for a row-level finding; for a table-level one
    (no ``line``, or a message that counts rows: "26 row(s) are dated before ...") the
    number of rows it names. A finding that names no row count counts as one record."""
    msg = validation["message"].astype("string").fillna("")
    got = msg.str.extract(_ROWS, expand=False).str.replace(",", "", regex=False)
    return pd.to_numeric(got, errors="coerce").fillna(1).clip(lower=1).astype("int64")


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    v = ctx.prog.validation
    if len(v):
        cols = ["rule", "severity", "table", "column"]
        vv = v[cols].astype("string").fillna("")
        # a finding is one record (a row-level rule) or a summary of many records (a
        # table-level rule: "26 row(s) are dated before ..."): the table counts records
        vv["n_records"] = finding_records(v).astype(float)
        vs = vv.groupby(cols, sort=True, dropna=False)["n_records"].sum().reset_index()
        # one Total row per severity: the section's "N errors, W warnings" are these sums,
        # so they are published (or suppressed) as cells of the table, never in free text
        # next to a suppressed part
        sev_order = {"error": 0, "warning": 1, "info": 2}
        tots = vs.groupby("severity", sort=False)["n_records"].sum().reset_index()
        tots["rule"], tots["table"], tots["column"] = TOTAL, "", ""
        vs = pd.concat([vs, tots[cols + ["n_records"]]], ignore_index=True)
        vs = vs.sort_values(["severity", "rule"], key=lambda c: c.map(sev_order).fillna(9) if c.name == "severity"
                            else c.eq(TOTAL), kind="stable").reset_index(drop=True)
    else:
        vs = pd.DataFrame({"rule": pd.Series(dtype="string"), "severity": pd.Series(dtype="string"),
                           "table": pd.Series(dtype="string"), "column": pd.Series(dtype="string"),
                           "n_records": pd.Series(dtype=float)})
    ctx.registry.add(PendingTable(
        key="validation", sheet="Validation findings", title="Validation findings by rule: records affected (records, not people)",
        raw=vs, count_columns=("n_records",) if len(vs) else (),
        margins={"total_row": {"rule": TOTAL}, "by": ["severity"]} if len(vs) else None,
        labels={"n_records": "Records affected", "rule": "Rule", "table": "Table", "column": "Column"},
        measure={"definition": "Records (rows of the input tables) affected by each of the loader's "
                               "validation rules, by rule, table and column, with a Total per severity. "
                               "A row-level finding is one record; a table-level finding counts the rows "
                               "it names (e.g. 26 events dated before enrollment are 26 records, reported in "
                               "one finding). Records, not people: one person's records can be few, so counts "
                               "from 1 to min_cell - 1 are suppressed like counts of people. Values and row "
                               "numbers are not reported (they could identify people)."},
    ))
    flow = ctx.prog.flow.copy()
    if len(flow):
        for c in ("rows_read", "rows_kept", "rows_dropped"):
            flow[c] = pd.to_numeric(flow[c], errors="coerce").astype(float)
        ctx.registry.add(PendingTable(
            key="load_flow", sheet="Rows loaded", title="Rows read, kept and dropped per table",
            raw=flow[["table", "rows_read", "rows_kept", "rows_dropped"]],
            count_columns=("rows_read", "rows_kept", "rows_dropped"),
            margins={"total_columns": {"rows_read": ["rows_kept", "rows_dropped"]}},
            measure={"definition": "ProgramData.flow: every input row is either kept or dropped with a finding."},
        ))
    ex_rows, ids = [], {}
    for key, label in (("retention", "Retention"), ("relapse", "Relapse"),
                       *[(lvl, lvl.capitalize()) for lvl in ctx.cfg.recidivism_levels],
                       ("followup", "Follow-up")):
        if key not in ctx.measures:
            continue
        m = ctx.measure_columns(key, ["exclusion_reason", "eligible"])  # the columns used
        reasons = m["exclusion_reason"].astype("string").fillna("")
        elig = m["eligible"].astype(bool) if "eligible" in m else reasons.eq("")
        start = len(ex_rows)
        ids[(len(ex_rows), "n")] = f"elig|{TOTAL}|{int(elig.sum())}"
        ex_rows.append({"measure": label, "status": "eligible", "n": float(elig.sum())})
        for r, n in reasons[~elig].replace("", "(unspecified)").value_counts().sort_index().items():
            ex_rows.append({"measure": label, "status": f"excluded: {r}", "n": float(n)})
        ex_rows.append({"measure": label, "status": TOTAL, "n": float(len(m))})
        if len(m) == len(ctx.participants):
            ids[(len(ex_rows) - 1, "n")] = "N|all"
        del start
    ex = pd.DataFrame(ex_rows)
    if len(ex):
        ctx.registry.add(PendingTable(
            key="exclusions", sheet="Exclusions", title="Participants eligible and excluded, by measure and reason",
            raw=ex, count_columns=("n",), margins={"total_row": {"status": TOTAL}, "by": ["measure"]},
            labels={"measure": "Measure", "status": "Status"}, ids=ids,
            measure={"definition": "exclusion_reason of each measure's output; eligible = the whole window "
                                   "is observed by the cut-off.", "as_of": ctx.as_of.date().isoformat()},
        ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        mc = ctx.min_cell if ctx.suppress else 1
        f = _severity_totals(blocks.get("validation"))
        out: list[Any] = [TextBlock(paragraphs=(_hide_small_numbers(
            f"Source: {ctx.prog.source or 'in-memory tables'}. Records affected by validation findings "
            f"(records, not people): {f['error']} with errors, {f['warning']} with warnings, {f['info']} with notes "
            f"(* = suppressed: counts of records from 1 to {ctx.min_cell - 1} are suppressed too).", mc),),
            bullets=tuple(ctx.warnings))]
        for k in ("validation", "load_flow", "exclusions"):
            if k in blocks and len(blocks[k].data):
                out.append(blocks[k])
        return Section("quality", "Data quality", tuple(out))

    return section
