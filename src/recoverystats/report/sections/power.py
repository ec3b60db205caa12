"""Report section (opt-in, ``[sections] power = true``): what this evaluation could detect.

For the headline comparisons (relapse and the first recidivism level within their
windows) the section says: with the participants in each group and the comparison
group's observed rate, the smallest difference the evaluation could detect with 80%
power (:func:`recoverystats.design.power_proportions`, solved for ``p2`` in both
directions, two-sided at ``1 - conf_level``).

Privacy: the group sizes and the comparison group's events are counts. They are
registered as the table ``power_counts`` with the same cell ids as the outcomes table
(the same numbers), so the joint suppression treats them alike, and the detectable
difference is computed in the compose step from the *published* cells only. If any of
the counts it needs is suppressed (a group below ``min_cell``), the sentence for that
outcome is not shown; it says why instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import TOTAL

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "POWER"]

#: the power the detectable difference is computed for
POWER = 0.8


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register the counts behind the power note; return the composer (see
    :mod:`recoverystats.report.sections`)."""
    cfg = ctx.cfg
    first = cfg.recidivism_levels[0]
    items = [("relapse", f"Relapse within {cfg.relapse_window} days", "relapsed"),
             (first, f"{first.capitalize()} within {cfg.recidivism_window} days", "recidivated")]
    parts, ids, offset = [], {}, 0
    for key, label, col in items:
        t, tid = ctx._rate_rows(ctx.measures[key], col, "eligible", f"out|{key}")
        t.insert(0, "measure", label)
        parts.append(t)
        ids.update({(i + offset, c): v for (i, c), v in tid.items()})
        offset += len(t)
    tab = pd.concat(parts, ignore_index=True)
    ctx.registry.add(PendingTable(
        key="power_counts", sheet="Power note counts", title="Participants and events behind the power note",
        raw=tab, count_columns=("n", "events"),
        margins={"total_row": {"group": TOTAL}, "by": ["measure"], "complements": [("n", "events")]},
        dependent=ctx._RATE_DEP, labels={"measure": "Outcome", "n": "Eligible", "events": "Events"},
        percent_columns=("estimate", "ci_lower", "ci_upper"), ids=ids, show_in_document=False,
        measure={"definition": "Eligible participants and events per group (as in the outcomes table), the "
                               "inputs of the minimum detectable difference.", "as_of": ctx.as_of.date().isoformat()},
    ))
    alpha = 1.0 - float(cfg.conf_level)

    def section(blocks: dict[str, TableBlock]) -> Section:
        b = blocks["power_counts"]
        paras = [
            f"How large a difference could this evaluation detect? For each outcome below: with the number of "
            f"participants in each group and the comparison group's observed rate, the smallest true difference "
            f"that a comparison of this size would find with {POWER:.0%} power (two-sided, {alpha:g} level). "
            "It is a planning figure: a smaller true difference may exist and go undetected; it is not evidence "
            "that there is none. It treats participants as independent; sharing mentors (clustering) makes the "
            "detectable difference somewhat larger."
        ]
        bullets = [_sentence(ctx, b, label, alpha) for _key, label, _col in items]
        return Section("power", "What this evaluation could detect",
                       (TextBlock(paragraphs=tuple(paras), bullets=tuple(s for s in bullets if s)),))

    return section


def _published(b: TableBlock, i: int, col: str) -> float | None:
    if bool(b.mask.iat[i, b.mask.columns.get_loc(col)]):
        return None
    v = b.data.iat[i, b.data.columns.get_loc(col)]
    return None if v is None or pd.isna(v) else float(v)


def _sentence(ctx: ReportContext, b: TableBlock, label: str, alpha: float) -> str:
    from recoverystats.design import power_proportions
    from recoverystats.errors import RecoveryStatsError

    d = b.data
    rows = {str(g): i for i, (m, g) in enumerate(zip(d["measure"], d["group"], strict=True)) if m == label}
    ref = ctx.reference
    lab = ctx.labels
    if ref not in rows:
        return f"{label}: no comparison group ({lab.code(ref, field='group')}) in the data."
    n1, e1 = _published(b, rows[ref], "n"), _published(b, rows[ref], "events")
    out = []
    for g, i in rows.items():
        if g in (ref, TOTAL):
            continue
        n2 = _published(b, i, "n")
        name, refname = lab.code(g, field="group"), lab.code(ref, field="group")
        if n1 is None or e1 is None or n2 is None:
            out.append(f"{label}, {name} vs {refname}: not shown, because a group size or event count it needs "
                       f"is suppressed (fewer than {ctx.min_cell}; small-cell rule).")
            continue
        if n1 < 2 or n2 < 2 or e1 <= 0 or e1 >= n1:
            out.append(f"{label}, {name} vs {refname}: not computed (the comparison group has "
                       + ("too few participants" if n1 < 2 or n2 < 2 else
                          "no events" if e1 <= 0 else "events for everyone") + ").")
            continue
        p1 = e1 / n1
        try:
            r = power_proportions(p1=p1, n=n1, ratio=n2 / n1, power=POWER, alpha=alpha)
        except RecoveryStatsError as exc:  # pragma: no cover - inputs checked above
            out.append(f"{label}, {name} vs {refname}: not computed ({exc}).")
            continue
        t = r.table.set_index("direction")
        words = []
        for direction, verb in (("decrease", "a fall"), ("increase", "a rise")):
            p2 = float(t.loc[direction, "p2"])
            if np.isfinite(p2):
                words.append(f"{verb} to {100 * p2:.1f}% ({100 * (p2 - p1):+.1f} percentage points)")
        out.append(f"{label}, {name} vs {refname}: with {int(n2):,} participants in the {name} group and "
                   f"{int(n1):,} in the {refname} group and the {refname} group's observed rate of "
                   f"{100 * p1:.1f}%, the smallest difference this evaluation could detect with {POWER:.0%} power "
                   f"is " + (" or ".join(words) if words else "beyond the possible range") + ".")
    return " ".join(out)


def methods_text(alpha: float) -> str:
    """The Methods bullet (shown only when the section is on)."""
    return (f"Power note: the minimum detectable difference in a proportion, for the published group sizes and "
            f"the comparison group's observed rate, at {POWER:.0%} power and a two-sided {alpha:g} level "
            "(normal approximation with the pooled variance; design.power_proportions, as R epiR "
            "epi.sscohortc), in both directions.")
