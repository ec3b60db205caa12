"""Report section: the methods and definitions appendix.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from recoverystats.report.model import Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    _param_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    def section(blocks: dict[str, TableBlock]) -> Section:
        as_of = ctx.as_of.date().isoformat()
        out: list[Any] = [TextBlock(paragraphs=(
            f"Every number uses the data up to the cut-off (as_of) {as_of}, the last day of {ctx.quarter}. "
            "Each measure is defined once below, with the parameters this report used.",))]
        if ctx.flow_definition:  # empty when the flow section is switched off
            out.append(TextBlock(heading="Program flow", paragraphs=(ctx.flow_definition,)))
        used = [("retention", "Retention"), ("relapse", "Relapse"),
                *[(lvl, lvl.capitalize()) for lvl in ctx.cfg.recidivism_levels],
                ("followup", "Follow-up"), ("noms", "NOMs change"), ("engagement", "Engagement")]
        # one entry per measure: the recidivism levels share one definition, their
        # parameters are listed together
        merged: dict[str, dict[str, Any]] = {}
        for key, label in used:
            meta = ctx.definitions.get(key)
            if not meta:
                continue
            name = str(meta.get("name") or key)
            entry = merged.setdefault(name, {"title": meta.get("title") or label,
                                              "definition": str(meta.get("definition", "")),
                                              "params": {}, "as_of": set()})
            for k, v in (meta.get("parameters") or {}).items():
                vals = entry["params"].setdefault(k, [])
                text = _param_text(v)
                if text not in vals:
                    vals.append(text)
            entry["as_of"].add(str(meta.get("as_of", as_of)))
        for entry in merged.values():
            bullets = [f"{k}: {', '.join(v)}" for k, v in entry["params"].items()]
            if entry["as_of"] != {as_of}:
                bullets.append(f"data cut-off (as_of): {', '.join(sorted(entry['as_of']))}")
            out.append(TextBlock(heading=entry["title"], paragraphs=(
                entry["definition"], "Parameters used:" if bullets else "Parameters: the defaults."),
                bullets=tuple(bullets)))
        priv = (f"Small-cell suppression: counts from 1 to {ctx.min_cell - 1} are suppressed (shown as *); "
                "complementary cells are suppressed until no suppressed cell can be recovered exactly from "
                "totals, other cells or the difference between this and last quarter (every linear "
                "combination is checked), nor bounded by them to a range narrower than "
                f"{ctx.min_cell - 1} (checked by linear programming), and every statistic computed from a suppressed "
                "count is suppressed: percentages, rates, confidence limits, control limits, survival estimates, "
                "means and SDs, standardized mean differences (an SMD uses every level count of the compared "
                "groups), and every odds ratio of a covariate whose reference level has fewer than "
                f"{ctx.min_cell} participants, events or non-events. A number suppressed in "
                "one table is suppressed in every table that shows it. Zeros are shown. Kaplan-Meier curves "
                f"are drawn from counts rounded to multiples of {ctx.min_cell} (every step is {ctx.min_cell} "
                f"or more events) and stop where fewer than {ctx.min_cell} remain at risk; every figure is "
                "drawn from the published tables. No identifiers or dates of birth are "
                "reported; the finished output is scanned for them before it is released.") if ctx.suppress \
            else "SMALL-CELL SUPPRESSION WAS TURNED OFF (--no-suppress): this report contains small cells and is not for release."
        out.append(TextBlock(heading="Statistical methods", bullets=(
            f"Proportions: Wilson score intervals ({ctx.cfg.conf_level:.0%}), rates.proportion (R binom.confint method='wilson').",
            "Quarterly trends: p-chart by the quarter in which each participant's outcome window closed, "
            "centre = pooled proportion, limits "
            "centre ± 3·sqrt(p(1−p)/n_i) (Laney p′ when over-dispersed), rates.trend (R qcc type='p'). "
            "A quarter whose count is suppressed is drawn with neither its point nor its control limits "
            "(marked * on the chart).",
            "Baseline table: rates.table_one; SMD as R tableone (Yang & Dalton for categorical variables).",
            "Adjusted odds ratios: logistic regression with cluster-robust (CR1) standard errors by first "
            "mentor, Firth penalised likelihood when events are few (regression.odds_ratios; R glm/logistf + sandwich).",
            "Adjusted risk differences: g-computation (marginal standardisation) from the same model, "
            "delta-method CI (OddsRatioResult.risk_difference; R stdReg / marginaleffects avg_comparisons).",
            "Time to event: Kaplan-Meier with Greenwood variance and log-log CIs (survival.survival_curve; R survfit).",
            "NOMs change: McNemar test on matched intake / follow-up pairs (exact binomial for few discordant pairs).",
        )))
        out.append(TextBlock(heading="Privacy", paragraphs=(priv,)))
        shown = ctx.cfg.to_dict()
        if shown.get("reference") is None:
            shown["reference"] = f"{ctx.reference} (default)"
        if shown.get("mentored") is None:
            shown["mentored"] = f"{', '.join(ctx.mentored) or 'none'} (default: the groups with a mentor match)"
        cfg_lines = tuple(f"{k} = {_param_text(v)}" for k, v in shown.items() if v not in ("", None))
        out.append(TextBlock(heading="Configuration used", bullets=cfg_lines))
        return Section("methods", "Methods and definitions", tuple(out))

    return section
