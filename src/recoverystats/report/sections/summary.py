"""Report section: the plain-language summary, generated from the published tables.

Every sentence is written from the *suppressed* blocks (``key_numbers``,
``risk_differences``): a number in a sentence is a published cell, rounded as the tables
show it, and a suppressed cell turns its sentence into one that says nothing about the
hidden value ("not published", "too few participants to tell") rather than a bound.

Rules (docs/report.md, "The summary"):

- enrollment: participants enrolled to date, new in the quarter, active at its end;
- retention and the main outcomes for each program group against its target, the
  direction (lower or higher is better) taken from the target's definition;
- the comparison with the reference group from the adjusted risk difference: an interval
  that excludes 0 is "statistically clear", one that includes it "no clear difference", a
  suppressed or missing one "too few participants to tell";
- wording follows ``[design] comparison``: a randomised comparison may speak of the
  program's effect (with its interval); any other design speaks of an association,
  adjusted only for measured characteristics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.report.config import TARGET_DIRECTIONS
from recoverystats.report.model import Section, TableBlock, TextBlock, is_suppressed

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "compare_sentence", "clarity"]

#: observational designs (everything but a randomised comparison)
OBSERVATIONAL = ("waitlist", "matched", "other_agency", "historical", "other", "")


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _pct(v: float) -> str:
    return f"{100 * float(v):.1f}%"


def _pp(v: float) -> str:
    return f"{100 * float(v):.1f}"


def _count(v: Any) -> str:
    return f"{int(v):,}"


def _name(g: str) -> str:
    return str(g).replace("_", " ")


def clarity(lo: Any, hi: Any, null: float = 0.0) -> str:
    """``"clear"`` when the interval excludes ``null``, ``"unclear"`` when it includes it,
    ``"unknown"`` when a bound is missing (suppressed or not estimable)."""
    if _missing(lo) or _missing(hi):
        return "unknown"
    return "clear" if (lo > null or hi < null) else "unclear"


def compare_sentence(*, outcome: str, group: str, reference: str, est: Any, lo: Any, hi: Any, better: str,
                     design: str, conf: float) -> str:
    """One sentence comparing a program group with the reference group on one outcome.

    ``est``, ``lo``, ``hi`` are the published adjusted risk difference and its interval
    (proportions; missing when suppressed or not estimable).
    """
    g, ref = _name(group), _name(reference)
    level = f"{100 * conf:.0f}%"
    state = clarity(lo, hi) if not _missing(est) else "unknown"
    if state == "unknown":
        return (f"{outcome.capitalize()}, {g} compared with {ref}: too few participants to tell (the adjusted "
                "difference is not published).")
    ci = f"adjusted difference {_pp(est)} percentage points, {level} CI {_pp(lo)} to {_pp(hi)}"
    if state == "unclear":
        return (f"{outcome.capitalize()}: no clear difference between {g} and {ref} ({ci}); the interval "
                "includes no difference.")
    lower = float(est) < 0
    good = (lower and better == "lower") or (not lower and better == "higher")
    how = "lower" if lower else "higher"
    verdict = "better" if good else "worse"
    if design == "randomised":
        return (f"{outcome.capitalize()} was statistically clearly {how} in {g} than in {ref} ({ci}), a {verdict} "
                "result; with random assignment the difference can be attributed to the program, within the "
                "uncertainty the interval shows.")
    return (f"{outcome.capitalize()} was statistically clearly {how} in {g} than in {ref} ({ci}), a {verdict} "
            "result. Being in the program is associated with this difference; it is not proof that the program "
            "caused it, as the comparison is adjusted only for the measured characteristics listed under "
            "Limitations.")


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register nothing (the summary reads other sections' published tables); return the
    function that writes the summary from the suppressed tables (see
    :mod:`recoverystats.report.sections`)."""
    cfg = ctx.cfg
    design = cfg.comparison
    program = list(ctx.program_groups)
    reference = ctx.reference
    conf = cfg.conf_level

    def section(blocks: dict[str, TableBlock]) -> Section:
        paras: list[str] = []
        who = cfg.program or "This program"
        paras.append(f"{who}: summary of {ctx.quarter}, data to {ctx.as_of.date().isoformat()}. Every number "
                     "below is one of the published numbers of the report's tables; a number shown as * in the "
                     "tables is not published, and the summary does not describe it.")
        kb = blocks.get("key_numbers")
        if kb is not None:
            paras += _enrollment(kb)
            paras += _targets(kb, program, reference)
        rd = blocks.get("risk_differences")
        paras += _comparisons(ctx, rd, program, reference, design, conf)
        return Section("summary", "Summary", (TextBlock(paragraphs=tuple(paras)),))

    return section


def _row(kb: TableBlock, key: str, group: str | None = None) -> int | None:
    d = kb.data
    m = d["key"] == key
    if group is not None:
        m &= d["group"] == group
    idx = np.flatnonzero(m.to_numpy())
    return int(idx[0]) if len(idx) else None


def _value(kb: TableBlock, i: int, col: str) -> Any:
    if is_suppressed(kb, i, col):
        return None
    v = kb.data.iat[i, kb.data.columns.get_loc(col)]
    return None if _missing(v) else v


def _enrollment(kb: TableBlock) -> list[str]:
    parts = []
    for key, what in (("new_enrollments", "new participants enrolled this quarter"),
                      ("active", "participants active at the end of the quarter"),
                      ("enrolled_to_date", "participants enrolled to date")):
        i = _row(kb, key)
        if i is None:
            continue
        v = _value(kb, i, "this_count")
        parts.append(f"{_count(v)} {what}" if v is not None else f"the number of {what} is not published")
    if not parts:
        return []
    return ["Enrollment: " + "; ".join(parts) + "."]


def _targets(kb: TableBlock, program: list[str], reference: str) -> list[str]:
    out = []
    keys = list(dict.fromkeys(k for k in kb.data["key"] if k in TARGET_DIRECTIONS))
    for key in keys:
        better = TARGET_DIRECTIONS[key]
        for g in program:
            i = _row(kb, key, g)
            if i is None:
                continue
            label = str(kb.data.at[i, "measure"]).split(" (")[0]
            est, n = _value(kb, i, "this_estimate"), _value(kb, i, "this_n")
            tgt, meets = _value(kb, i, "target"), _value(kb, i, "meets_target")
            if est is None:
                s = f"{label}, {_name(g)}: too few participants to tell (not published)"
            else:
                of = f" of {_count(n)} participants whose window had closed" if n is not None else ""
                s = f"{label}, {_name(g)}: {_pct(est)}{of}"
                if tgt is not None and meets is not None:
                    s += (f"; target {_pct(tgt)} ({better} is better): "
                          + ("meets the target" if meets else "does not meet the target"))
            j = _row(kb, key, reference)
            if j is not None and reference not in program:
                rest = _value(kb, j, "this_estimate")
                s += (f"; {_name(reference)} group: {_pct(rest)}" if rest is not None
                      else f"; {_name(reference)} group: not published")
            out.append(s + ".")
    return out


def _comparisons(ctx: ReportContext, rd: TableBlock | None, program: list[str], reference: str, design: str,
                 conf: float) -> list[str]:
    keys = ["relapse", ctx.cfg.recidivism_levels[0]]
    out = []
    for key in keys:
        better = TARGET_DIRECTIONS.get(key, "lower")
        for g in program:
            if g == reference:
                continue
            est = lo = hi = None
            outcome = key
            if rd is not None:
                d = rd.data
                for i in range(len(d)):
                    name = str(d.at[i, "outcome"])
                    comp = str(d.at[i, "comparison"]) if "comparison" in d else ""
                    if name.casefold().startswith(key.casefold()) and comp.startswith(f"{g} vs"):
                        outcome = name
                        est, lo, hi = (_value(rd, i, c) for c in ("estimate", "ci_lower", "ci_upper"))
                        break
            out.append(compare_sentence(outcome=outcome, group=g, reference=reference, est=est, lo=lo, hi=hi,
                                        better=better, design=design, conf=conf))
    if design == "" and out:
        out.append("The report does not say how the comparison group was formed ([design] comparison), so the "
                   "differences are read as associations, adjusted only for the characteristics measured in the "
                   "data.")
    elif design != "randomised" and out:
        out.append("The groups were not randomly assigned: differences between them describe associations, "
                   "adjusted only for the characteristics measured in the data.")
    return out
