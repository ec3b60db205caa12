"""Report section: adjusted odds ratios and risk differences between groups.

Moved unchanged from ``report/build.py`` (a ``_Context`` method there; ``self`` is now
``ctx``); see :mod:`recoverystats.report.sections` for
the two-step protocol (register raw tables, then compose from the suppressed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import RecoveryStatsError
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import (
    TOTAL,
    _figure,
    _hide_small_numbers,
    _no_terms,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build"]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section]:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables (see :mod:`recoverystats.report.sections`)."""
    from recoverystats.regression import odds_ratios

    cfg = ctx.cfg
    results = []
    first = cfg.recidivism_levels[0]
    for key, col, label in (("relapse", "relapsed", f"relapse within {cfg.relapse_window} days"),
                            (first, "recidivated", f"{first} within {cfg.recidivism_window} days")):
        # the columns the model can use, before filtering (no copy of the whole measure frame)
        d = ctx.measure_columns(key, ("eligible", col, "_group", *cfg.adjust, cfg.cluster or "_group"))
        d = d[d["eligible"].astype(bool) & d[col].notna()].copy()
        adjust = [a for a in cfg.adjust if a in d.columns and d[a].notna().any()]
        cluster = None
        # measures carry mentor_id (first mentor matched); odds_ratios makes each
        # unmatched participant a cluster of their own
        if cfg.cluster and cfg.cluster in d.columns and d[cfg.cluster].notna().any():
            cluster = cfg.cluster
        gcol = cfg.group_column
        d[gcol] = d["_group"]
        try:
            r = odds_ratios(d, col, exposure=gcol, adjust=adjust, cluster=cluster,
                            reference={gcol: ctx.reference}, conf_level=cfg.conf_level, missing="drop")
            rd = r.risk_difference(seed=cfg.seed)
        except RecoveryStatsError as exc:
            ctx.notes.setdefault("adjusted", []).append(f"{label}: model not estimated ({exc}).")
            continue
        results.append((key, label, r, rd, adjust, cluster))
    or_parts, rd_parts, model_rows, model_ids, model_text = [], [], [], {}, []
    or_force: list[tuple[int, str]] = []
    offset = 0
    #: reference level of each categorical model variable, so a term reads "Gender: Female (vs Male)"
    references: dict[str, str] = {}
    for key, label, r, rd, adjust, cluster in results:
        t = r.table
        if "reference" in t and "variable" in t:
            for var, ref in zip(t["variable"], t["reference"], strict=False):
                if isinstance(var, str) and isinstance(ref, str) and ref:
                    references.setdefault(var, ref)
        t = t[t["term"] != "Intercept"].reset_index(drop=True)
        t.insert(0, "outcome", label)
        # every odds ratio of a categorical covariate is relative to its reference level:
        # with few people, events or non-events there, the ratios describe that small
        # group (and n_used minus the published level counts gives its size back), so
        # the whole covariate is suppressed
        small_ref = _small_reference_levels(ctx, key, r, adjust) if ctx.suppress and ctx.protect_derived else set()
        for i in np.flatnonzero(t["variable"].astype("string").isin(list(small_ref)).fillna(False).to_numpy()):
            or_force += [(offset + int(i), "n"), (offset + int(i), "events")]
        offset += len(t)
        # per-level n/events are not shown, but they decide suppression: the odds ratio of a
        # covariate level with few participants, events or non-events would tell readers
        # how a small group fared (e.g. "nobody in it was re-arrested")
        or_parts.append(t[["outcome", "term", "estimate", "ci_lower", "ci_upper", "p_value", "n", "events"]])
        dt = rd.table.copy()
        dt.insert(0, "outcome", label)
        if ctx.cfg.group_column in small_ref:  # the standardised risks describe the small group
            dt[["estimate", "ci_lower", "ci_upper", "p_value", "risk_exposed", "risk_reference"]] = np.nan
        rd_parts.append(dt[["outcome", "comparison", "estimate", "ci_lower", "ci_upper", "p_value",
                            "risk_exposed", "risk_reference"]])
        col = "relapsed" if key == "relapse" else "recidivated"
        d = ctx.measure_columns(key, ("eligible", col, *adjust))
        elig = d[d["eligible"].astype(bool) & d[col].notna()]
        complete = elig[elig[[col, *adjust]].notna().all(axis=1)] if adjust else elig
        i = len(model_rows)
        model_rows.append({"outcome": label, "n_eligible": float(len(elig)), "n_used": float(r.n_used),
                           "n_dropped": float(len(elig) - r.n_used),
                           "events_used": float(complete[col].astype(float).sum())})
        model_ids[(i, "n_eligible")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{len(elig)}")
        if r.n_used == len(elig):
            model_ids[(i, "n_used")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{len(elig)}")
            model_ids[(i, "events_used")] = f"out|{key}|{TOTAL}|events"
        model_text.append((label, r.method, adjust, cluster, tuple(r.notes)))
    if model_rows:
        mt = pd.DataFrame(model_rows)
        counts = ("n_eligible", "n_used", "n_dropped", "events_used")
        ctx.registry.add(PendingTable(
            key="model_counts", sheet="Model sample", title="Participants in the adjusted models", raw=mt,
            count_columns=counts, margins={"total_columns": {"n_eligible": ["n_used", "n_dropped"]},
                                           "complements": [("n_used", "events_used")]},
            labels={"outcome": "Outcome", "n_eligible": "Eligible", "n_used": "In the model",
                    "n_dropped": "Dropped (missing covariates)", "events_used": "Events in the model"},
            ids=model_ids,
            measure={"definition": "Eligible participants, those in the complete-case model and those dropped "
                                   "for missing covariates.", "as_of": ctx.as_of.date().isoformat()},
        ))
    if or_parts:
        ot = pd.concat(or_parts, ignore_index=True)
        ot["n"] = pd.to_numeric(ot["n"], errors="coerce").astype(float)
        ot["events"] = pd.to_numeric(ot["events"], errors="coerce").astype(float)
        dep = ["n", "events"]
        ctx.registry.add(PendingTable(
            key="odds_ratios", sheet="Adjusted odds ratios", title="Adjusted odds ratios (logistic regression)",
            raw=ot, count_columns=("n", "events"), margins={"complements": [("n", "events")]},
            dependent={"estimate": dep, "ci_lower": dep, "ci_upper": dep, "p_value": dep}, force=or_force,
            columns=("outcome", "term", "estimate", "ci_lower", "ci_upper", "p_value"),
            labels={"outcome": "Outcome", "estimate": "OR"},
            measure={"definition": "Odds ratios from logistic regression (regression.odds_ratios).",
                     "as_of": ctx.as_of.date().isoformat(), "references": references},
        ))
        rt = pd.concat(rd_parts, ignore_index=True)
        ctx.registry.add(PendingTable(
            key="risk_differences", sheet="Adjusted risk differences",
            title="Adjusted risk differences (g-computation)", raw=rt, count_columns=(),
            labels={"outcome": "Outcome", "estimate": "Risk difference", "risk_exposed": "Risk if all exposed",
                    "risk_reference": "Risk if all reference"},
            percent_columns=("estimate", "ci_lower", "ci_upper", "risk_exposed", "risk_reference"),
            measure={"definition": "Marginal (standardised) risk difference from the adjusted logistic model "
                                   "(OddsRatioResult.risk_difference).", "as_of": ctx.as_of.date().isoformat()},
        ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.report import plot_forest

        methods = []
        mc = blocks.get("model_counts")
        for i, (label, method, adjust, cluster, notes) in enumerate(model_text):
            hidden = mc is not None and bool(mc.mask.iloc[i].any())
            n_used = "*" if hidden else f"{int(mc.data.iloc[i]['n_used']):,}" if mc is not None else "—"
            method = _hide_small_numbers(method, ctx.min_cell if ctx.suppress else 1)
            text = (f"{label}: {method}; n in the model = {n_used}; adjusted for "
                    f"{', '.join(adjust) if adjust else 'nothing'}; "
                    + ("clusters = first mentor (unmatched participants are their own cluster). " if cluster
                       else "no clustering. "))
            if hidden:
                text += "Model notes withheld: they would reveal a suppressed count."
            else:
                text += " ".join(_hide_small_numbers(_no_terms(n) if ctx.suppress else n,
                                                     ctx.min_cell if ctx.suppress else 1) for n in notes)
            methods.append(text)
        methods += [_hide_small_numbers(n, ctx.min_cell if ctx.suppress else 1)
                    for n in ctx.notes.get("adjusted", [])]
        out: list[Any] = [TextBlock(paragraphs=(
            f"Exposure: {ctx.labels.variable(cfg.group_column).lower()} (reference: "
            f"{ctx.labels.code(ctx.reference, field='group')}). Adjusted for "
            f"{', '.join(ctx.labels.variable(a).split(' (')[0].lower() for a in cfg.adjust) or 'nothing'}.",), bullets=tuple(methods))]
        if mc is not None:
            out.append(mc)
        if "odds_ratios" in blocks:
            b = blocks["odds_ratios"]
            terms = [b.display_code(i, "term", t) for i, t in enumerate(b.data["term"])]
            out.append(_figure("forest", "Adjusted odds ratios", lambda ax: plot_forest(
                b.data, ax=ax, as_of=ctx.as_of, terms=terms), figsize=(7.5, max(3.0, 0.32 * len(b.data) + 1.2)),
                sources=("odds_ratios",)))
            out.append(b)
            out.append(blocks["risk_differences"])
        return Section("adjusted", "Adjusted comparison of groups", tuple(out))

    return section


def _small_reference_levels(ctx: ReportContext, key: str, r: Any, adjust: list[str]) -> set[str]:
    """Categorical model variables whose reference level has 1..min_cell-1 people, events or non-events.

    Counted on the model's complete cases (the participants the odds ratios are fitted on).
    """
    col = "relapsed" if key == "relapse" else "recidivated"
    d = ctx.measure_columns(key, ("eligible", col, "_group", *adjust))
    d = d[d["eligible"].astype(bool) & d[col].notna()]
    if adjust:
        d = d[d[adjust].notna().all(axis=1)]
    y = d[col].astype(float).to_numpy()
    tab = r.table
    out: set[str] = set()
    for var, ref in zip(tab["variable"], tab["reference"], strict=False):
        if var is None or ref is None or (isinstance(ref, float) and np.isnan(ref)) or var in out:
            continue
        src = "_group" if var == ctx.cfg.group_column else var
        if src not in d:
            continue
        # (d[src].astype("string") == str(ref)).fillna(False), on the distinct values
        if d[src].dtype == object:  # factorize would merge 1, 1.0 and True
            at_ref = (d[src].astype("string") == str(ref)).fillna(False).to_numpy(dtype=bool)
        else:
            codes, uniques = pd.factorize(d[src])
            is_ref = (pd.Series(uniques).astype("string") == str(ref)).fillna(False).to_numpy(dtype=bool)
            at_ref = np.isin(codes, np.flatnonzero(is_ref))
        n, e = int(at_ref.sum()), float(y[at_ref].sum())
        if any(1 <= v < ctx.min_cell for v in (n, e, n - e)):
            out.add(str(var))
    return out
