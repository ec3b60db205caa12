"""Report section: the limitations, generated from the design and the published tables.

Written from ``[design]`` (how the comparison group was formed), the adjustment set of
the config and the *suppressed* tables (``key_numbers``, ``followup``, ``outcomes``,
``risk_differences``): follow-up completeness per group, small-sample and wide-interval
warnings, and measures whose outcome window had not closed for every participant.
Sentences about a suppressed cell never describe its value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from recoverystats.report.model import Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import TOTAL
from recoverystats.report.sections.summary import _count, _missing, _name, _pct, _row, _value

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "DESIGN_TEXT", "WIDE_INTERVAL"]

#: how each ``[design] comparison`` formed the comparison group, in words
DESIGN_TEXT = {
    "randomised": "Participants were assigned to the program or the comparison group at random.",
    "waitlist": "The comparison group is people waiting to join the program (a waitlist); they were not "
                "assigned at random.",
    "matched": "The comparison group was matched to program participants on selected characteristics; it was "
               "not assigned at random.",
    "other_agency": "The comparison group is clients of other agencies; they were not assigned at random.",
    "historical": "The comparison group is people served before the program started (a historical comparison); "
                  "outcomes may also differ because times changed.",
    "other": "The comparison group was formed in another way (see the description); it was not assigned at "
             "random.",
}
#: a confidence interval wider than this (in proportion points) is flagged as wide
WIDE_INTERVAL = 0.20


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register nothing; return the function that writes the limitations from the
    suppressed tables (see :mod:`recoverystats.report.sections`)."""
    cfg = ctx.cfg

    def section(blocks: dict[str, TableBlock]) -> Section:
        paras: list[str] = []
        design = cfg.comparison
        if design:
            paras.append(DESIGN_TEXT[design] + (f" {cfg.design_description}" if cfg.design_description else ""))
        else:
            paras.append("The report configuration does not say how the comparison group was formed ([design] "
                         "comparison); the comparison is treated as observational.")
        if design != "randomised":
            adjust = ", ".join(a.replace("_", " ") for a in cfg.adjust) or "no characteristics"
            paras.append("Because the comparison is observational, the adjusted comparisons account only for "
                         f"measured characteristics ({adjust}); differences in anything not measured (motivation, "
                         "family support, local services) can explain part or all of a difference between groups.")
        paras += _followup(blocks.get("followup"))
        paras += _windows(blocks.get("key_numbers"))
        paras += _small(blocks)
        paras += _wide(blocks.get("outcomes"), cfg.conf_level)
        return Section("limitations", "Limitations", (TextBlock(paragraphs=tuple(paras)),))

    return section


def _followup(fb: TableBlock | None) -> list[str]:
    if fb is None:
        return ["No follow-up interviews are in the data: outcomes that rely on them are not reported."]
    parts = []
    for i in range(len(fb.data)):
        g = str(fb.data.at[i, "group"])
        if g == TOTAL:
            continue
        est, n = _value(fb, i, "estimate"), _value(fb, i, "n")
        if est is None:
            parts.append(f"{_name(g)}: not published")
        else:
            parts.append(f"{_name(g)}: {_pct(est)}" + (f" of {_count(n)} due" if n is not None else ""))
    if not parts:
        return []
    return ["Follow-up completeness (6-month interviews completed in the window, among those due): "
            + "; ".join(parts) + ". Outcomes known only from interviews are missing for the others, and people "
            "who are hard to reach may fare differently."]


def _windows(kb: TableBlock | None) -> list[str]:
    if kb is None:
        return []
    i = _row(kb, "enrolled_to_date")
    total = _value(kb, i, "this_count") if i is not None else None
    out = []
    seen: set[str] = set()
    for j in range(len(kb.data)):
        if kb.data.at[j, "kind"] != "rate":
            continue
        key = str(kb.data.at[j, "key"])
        if key in seen:
            continue
        seen.add(key)
        label = str(kb.data.at[j, "measure"]).split(" (")[0]
        rows = [r for r in range(len(kb.data)) if kb.data.at[r, "key"] == key]
        ns = [_value(kb, r, "this_n") for r in rows]
        if any(n is None for n in ns):
            out.append(f"{label}: counts only participants whose window had closed by the cut-off; the number "
                       "of those participants is not published for every group.")
            continue
        n_all = sum(int(n) for n in ns)
        if total is not None and n_all < int(total):
            out.append(f"{label}: counts {_count(n_all)} of the {_count(total)} participants enrolled to date "
                       "(those whose window had closed by the cut-off and who were eligible); participants "
                       "enrolled more recently are not yet counted.")
    if out:
        out.insert(0, "Measures whose window was incomplete for some participants:")
    return out


def _small(blocks: dict[str, TableBlock]) -> list[str]:
    if not any(bool(b.mask.to_numpy().any()) for b in blocks.values()):
        return []
    return ["Small numbers: some numbers in the tables are not published (shown as *) to protect participants' "
            "privacy; where the summary says \"too few participants to tell\" the number or comparison could not "
            "be published. Estimates from few participants are uncertain even when published: read them with "
            "their confidence intervals."]


def _wide(ob: TableBlock | None, conf: float) -> list[str]:
    if ob is None:
        return []
    wide = []
    for i in range(len(ob.data)):
        g = str(ob.data.at[i, "group"])
        if g == TOTAL:
            continue
        lo, hi = _value(ob, i, "ci_lower"), _value(ob, i, "ci_upper")
        if lo is None or hi is None or _missing(lo) or _missing(hi):
            continue
        if hi - lo > WIDE_INTERVAL:
            what = str(ob.data.at[i, "measure"]) if "measure" in ob.data else "outcome"
            wide.append(f"{what}, {_name(g)}: {_pct(lo)} to {_pct(hi)}")
    if not wide:
        return []
    return [f"Wide intervals: these {100 * conf:.0f}% confidence intervals span more than "
            f"{100 * WIDE_INTERVAL:.0f} percentage points, so the estimates are rough: " + "; ".join(wide) + "."]
