"""Report section: methods and definitions, in prose, and the "Analysis settings" table.

The prose says what a reader needs (definitions, windows, methods, adjustment set,
software and versions) in words; parameter names, option values and function names
(``completion_counts``, ``due_rule``, ``regression.odds_ratios``) are in the appendix table
"Analysis settings" (a table of text: no counts), for whoever re-runs the analysis. See
:mod:`recoverystats.report.sections` for the two-step protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    _param_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def _days(v: Any) -> str:
    vals = [int(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
    text = ", ".join(str(x) for x in vals[:-1]) + (" and " if len(vals) > 1 else "") + str(vals[-1])
    return f"{text} days"


def _prose(key: str, p: dict[str, Any], ctx: ReportContext) -> str:
    """A measure's definition in words, from the parameters the report used."""
    if key == "retention":
        done = ("Finishing the program before that day counts as retained."
                if p.get("completion_counts", True) else "Finishing the program before that day does not count.")
        return (f"Retention at {_days(p.get('days', ctx.cfg.retention_days))}: the share of participants still "
                "enrolled that many days after enrolling, among those enrolled long enough for that day to have "
                f"passed by the cut-off. {done}")
    if key == "relapse":
        w = p.get("window_days", ctx.cfg.relapse_window)
        return (f"Relapse: a first relapse, reported substance use or positive drug screen after enrollment and "
                f"within {w} days of it. A participant counts once the whole {w}-day window has passed by the "
                "cut-off, or once they relapse within it.")
    if key in ("rearrest", "reconviction", "reincarceration", "recidivism"):
        w = p.get("window_days", ctx.cfg.recidivism_window)
        return (f"Recidivism: a first arrest, conviction or incarceration (rearrest), conviction or incarceration "
                f"(reconviction), or incarceration (reincarceration) within {w} days of release from custody, or "
                "of enrollment for participants with no release date. Parole and probation violations are "
                "reported separately and are not counted as recidivism.")
    if key == "followup":
        w = p.get("window", ctx.cfg.followup_window)
        w0, w1 = (int(w[0]), int(w[1])) if isinstance(w, (list, tuple)) and len(w) == 2 else ctx.cfg.followup_window
        tgt = p.get("target")
        return (f"Six-month follow-up: an interview completed {w0} to {w1} days after intake, among participants "
                "whose interview window had closed by the cut-off"
                + (f"; the target is {float(tgt):.0%}." if isinstance(tgt, (int, float)) else "."))
    if key == "noms":
        return ("Change in National Outcome Measures (NOMs): for participants interviewed both at intake and at "
                "the six-month follow-up, the share answering yes at each interview (abstinence, no arrest, "
                "employed or in school, stable housing, social support) and the change between them.")
    if key == "engagement":
        return (f"Engagement: at least {p.get('engaged_min_contacts', 3)} contacts with a mentor in the first "
                f"{p.get('first_days', 90)} days after enrollment.")
    return ""


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register the "Analysis settings" table with ``ctx.registry``; return the function that
    composes the section (see :mod:`recoverystats.report.sections`)."""
    from recoverystats.report.report import package_versions

    used = [("retention", "Retention"), ("relapse", "Relapse"),
            *[(lvl, lvl.capitalize()) for lvl in ctx.cfg.recidivism_levels],
            ("followup", "Follow-up"), ("noms", "NOMs change"), ("engagement", "Engagement")]
    # one entry per measure: the recidivism levels share one definition, their
    # parameters are listed together
    merged: dict[str, dict[str, Any]] = {}
    as_of = ctx.as_of.date().isoformat()
    for key, label in used:
        meta = ctx.definitions.get(key)
        if not meta:
            continue
        name = str(meta.get("name") or key)
        entry = merged.setdefault(name, {"key": key, "title": meta.get("title") or label,
                                          "definition": str(meta.get("definition", "")),
                                          "params": {}, "raw": {}, "as_of": set()})
        for k, v in (meta.get("parameters") or {}).items():
            vals = entry["params"].setdefault(k, [])
            entry["raw"].setdefault(k, v)
            text = _param_text(v)
            if text not in vals:
                vals.append(text)
        entry["as_of"].add(str(meta.get("as_of", as_of)))
    rows: list[dict[str, str]] = []
    for entry in merged.values():
        area = str(entry["title"])
        for k, v in entry["params"].items():
            rows.append({"area": area, "setting": str(k), "value": ", ".join(v)})
        if entry["as_of"] != {as_of}:
            rows.append({"area": area, "setting": "as_of", "value": ", ".join(sorted(entry["as_of"]))})
    for area, setting, value in (
        ("Statistical methods", "proportions", f"rates.proportion(method='wilson', conf_level={ctx.cfg.conf_level})"
                                               " (R binom.confint method='wilson')"),
        ("Statistical methods", "quarterly trends", "rates.trend (p-chart; Laney p' when over-dispersed; R qcc type='p')"),
        ("Statistical methods", "baseline table", "rates.table_one (SMD as R tableone)"),
        ("Statistical methods", "adjusted odds ratios", "regression.odds_ratios(cluster=first mentor, CR1; Firth when "
                                                        "events are few) (R glm/logistf + sandwich)"),
        ("Statistical methods", "adjusted risk differences", "OddsRatioResult.risk_difference (g-computation, "
                                                             "delta method; R stdReg / marginaleffects)"),
        ("Statistical methods", "time to event", "survival.survival_curve(conf_type='log-log') (R survfit)"),
        ("Statistical methods", "NOMs change", "statsmodels mcnemar(exact=True when discordant pairs < 25)"),
    ):
        rows.append({"area": area, "setting": setting, "value": value})
    # the comparison section registers its tables before this one (registry order); it is
    # left out of a randomised design even when switched on
    if any(k.startswith("comparison_") for k in ctx.registry.pending):
        rows.append({"area": "Statistical methods", "setting": "comparison group",
                     "value": "causal.balancing_weights(estimand='ATT'), causal.balance, "
                              "causal.treatment_effect(method='ipw', estimand='ATT'), causal.evalue "
                              "(R WeightIt/cobalt, EValue)"})
    from recoverystats.report.sections import enabled_sections as _enabled

    switched_on = {s.key for s in _enabled(ctx.cfg)}
    for key, setting, value in (
        ("sites", "effect by site", "regression.odds_ratios per site; synthesis.meta_analysis(method='REML') "
                                    "(R metafor::rma)"),
        ("subgroups", "effect by subgroup", "synthesis.effect_modification (R glm with an interaction; "
                                            "lmtest/anova LR test)"),
    ):
        if key in switched_on:  # only when the section is in the report
            rows.append({"area": "Statistical methods", "setting": setting, "value": value})
    shown = ctx.cfg.to_dict()
    if shown.get("reference") is None:
        shown["reference"] = f"{ctx.reference} (default)"
    if shown.get("mentored") is None:
        shown["mentored"] = f"{', '.join(ctx.mentored) or 'none'} (default: the groups with a mentor match)"
    for k, v in shown.items():
        if v not in ("", None):
            rows.append({"area": "Configuration", "setting": str(k), "value": _param_text(v)})
    for k, v in package_versions().items():
        rows.append({"area": "Software", "setting": str(k), "value": str(v)})
    settings = pd.DataFrame(rows, columns=["area", "setting", "value"]).astype("string")
    ctx.registry.add(PendingTable(
        key="analysis_settings", sheet="Analysis settings", title="Analysis settings", raw=settings,
        count_columns=(), labels={"area": "Area", "setting": "Setting", "value": "Value"},
        measure={"definition": "The parameters, functions and configuration this report used, for re-running "
                               "it; no counts.", "verbatim": True},
    ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        lab = ctx.labels
        versions = package_versions()
        out: list[Any] = [TextBlock(paragraphs=(
            f"Every number uses the data up to the cut-off date {as_of}, the last day of {ctx.quarter}. "
            "Each measure is defined once below. The settings behind each definition (parameter names and "
            "values, and the functions used) are listed in the appendix table Analysis settings.",))]
        if ctx.flow_definition:  # empty when the flow section is switched off
            out.append(TextBlock(heading="Program flow", paragraphs=(ctx.flow_definition,)))
        for entry in merged.values():
            text = _prose(str(entry["key"]), dict(entry["raw"]), ctx)
            if text:
                out.append(TextBlock(heading=str(entry["title"]), paragraphs=(text,)))
        conf = f"{ctx.cfg.conf_level:.0%}"
        adjust = ", ".join(lab.variable(a).split(" (")[0].lower() for a in ctx.cfg.adjust) or "nothing"
        ref = lab.code(ctx.reference, field="group")
        from recoverystats.report.sections import enabled_sections

        on = {s.key for s in enabled_sections(ctx.cfg)}
        msettings = ctx.cfg.missing_settings()
        if not any(k.startswith("comparison_") for k in blocks):
            on.discard("comparison")
        methods = (
            ("", f"Percentages come with {conf} confidence intervals (Wilson score intervals)."),
            ("outcomes", "Quarterly trends are shown on a p-chart: each quarter's proportion (by the quarter in which the "
            "participants' outcome windows closed) against the pooled proportion, with 3-sigma control limits "
            "(widened when quarters vary more than chance alone explains). A quarter whose count is suppressed "
            "is drawn with neither its point nor its limits (marked * on the chart)."),
            ("table_one", "Baseline characteristics are compared with standardized mean differences (SMD); an absolute SMD "
            "above 0.1 is the usual flag for imbalance."),
            ("adjusted", f"Adjusted comparisons of the groups (reference group: {ref}) use logistic regression adjusted for "
            f"{adjust}, with standard errors that allow for participants sharing a mentor, and a penalised "
            "(Firth) fit when events are few. The adjusted risk difference standardises the model's predicted "
            "risks over all participants. An observational comparison is adjusted only for these measured "
            "characteristics."),
            ("comparison", "Non-randomised comparison: a propensity score (logistic regression of group membership "
            f"on {adjust}) weights the {ref} group to resemble the program's participants (ATT weights: the "
            "odds of the score); balance is checked by standardized mean differences before and after "
            "weighting (SD of the program group), overlap by the score's distribution in each group, and the "
            "weighted risk difference (inverse probability weighting, robust standard errors that allow for "
            "the estimated score) is shown beside the regression-adjusted odds ratio. The E-value "
            "(VanderWeele & Ding 2017) says how strongly an unmeasured characteristic would have to be tied to "
            "both taking part and the outcome to explain the difference away."),
            ("survival", "Time to relapse and to re-arrest: Kaplan-Meier curves with their confidence bands."),
            ("sites", "Effect by site: the adjusted odds ratio of the headline outcome at each site, pooled by a "
            "random-effects meta-analysis (REML; I² and a prediction interval for a new site). Sites whose counts "
            "are suppressed are left out of the pool, so that the pool cannot give their estimate back."),
            ("subgroups", "Effect by subgroup: odds ratios within each level of the configured subgroup columns from one "
            "logistic model with a group-by-subgroup interaction, and the interaction test (likelihood ratio, or "
            "a robust Wald test with mentor clustering). Subgroup results are exploratory; p-values are not "
            "adjusted for multiple comparisons."),
            ("followup", "Change between intake and follow-up: McNemar's test on the same participants' two answers (an "
            "exact test when few participants changed their answer)."),
            ("missing_data", f"Missing data: participants followed up and not followed up are compared with SMDs. "
            f"Missing covariate values are multiply imputed by chained equations (m = {msettings['m']} data sets, "
            f"seed {msettings['seed']}; the outcome, the group and the covariates in the imputation model) and the "
            "adjusted odds ratios pooled by Rubin's rules (Barnard-Rubin degrees of freedom). The tipping-point "
            "analysis imputes the missing follow-up answers from the responders' logistic model with the log-odds "
            "shifted in each group (delta adjustment), and reports the shift at which the conclusion changes."),
            ("power", _power_methods(1.0 - ctx.cfg.conf_level)),
            ("", f"Software: recoverystats {versions.get('recoverystats', '')} on Python {versions.get('python', '')}, "
            f"with statsmodels {versions.get('statsmodels', '')}, SciPy {versions.get('scipy', '')} and pandas "
            f"{versions.get('pandas', '')}."),
        )
        # a method is described only when its section is in the report
        out.append(TextBlock(heading="Statistical methods",
                             bullets=tuple(text for key, text in methods if not key or key in on)))
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
        out.append(TextBlock(heading="Privacy", paragraphs=(priv,)))
        if "analysis_settings" in blocks:
            out.append(blocks["analysis_settings"])
        return Section("methods", "Methods and definitions", tuple(out))

    return section


def _power_methods(alpha: float) -> str:
    from recoverystats.report.sections.power import methods_text

    return methods_text(alpha)
