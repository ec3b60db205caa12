"""Report section (opt-in): follow-up and missing data.

The follow-up rate by group against the target, the characteristics of the participants
followed up and not followed up (SMDs), for each headline adjusted estimate the
complete-case and the multiple-imputation result side by side, and the tipping-point
analysis of the follow-up interview outcome in plain words. Switched on with
``[sections] missing_data = true``; its settings come from ``[missing]`` (``m``,
``seed``, ``outcome``) and go into results.json's provenance. See
:mod:`recoverystats.report.sections` for the two-step protocol (register raw tables,
then compose from the suppressed ones).
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
    _derived,
    _figure,
    _hide_small_numbers,
    _measure_meta,
    _table_one_derived,
    _table_one_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "TIPPING_DELTAS"]

#: log-odds shifts of the report's tipping-point grid (odds multipliers 0.14 to 7.4)
TIPPING_DELTAS: tuple[float, ...] = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
COMPLETERS, NON_COMPLETERS = "completers", "non_completers"
STATUS_LABELS = {COMPLETERS: "Followed up", NON_COMPLETERS: "Not followed up", "Overall": "All due"}
#: readable names of the follow-up interview items (the outcome of the tipping point)
ITEM_WORDS = {"any_use_30d": "any substance use in the past 30 days", "arrested_30d": "an arrest in the past 30 days",
              "employed_or_school": "employment or school", "stable_housing": "stable housing",
              "social_support": "social support"}


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables, or None when there is no follow-up."""
    fu = ctx.measures.get("followup")
    if fu is None or not fu["due"].astype(bool).any():
        return None
    cfg = ctx.cfg
    settings = cfg.missing_settings()
    m, seed = int(settings["m"]), int(settings["seed"])
    notes: list[str] = []
    ctx.provenance_extra["missing_data"] = {"m": m, "seed": seed, "outcome": settings["outcome"],
                                            "imputation": "recoverystats.missing.impute (chained equations; "
                                                          "methods automatic per column)",
                                            "tipping_deltas": list(TIPPING_DELTAS)}
    target = cfg.targets.get("followup_rate", 0.8)

    # -- 1. follow-up rate by group against the target (cells shared with the follow-up section)
    d = fu.copy()
    d["_done"] = (d["due"].astype(bool) & d["completed_in_window"].fillna(0).astype(bool)).astype(float)
    t, ids = ctx._rate_rows(d.assign(_due=d["due"].astype(bool)), "_done", "_due", "fu")
    t["target"] = target
    ctx.registry.add(PendingTable(
        key="missing_followup", sheet="Follow-up vs target", title="Six-month follow-up rate vs target, by group",
        raw=t, count_columns=("n", "events"),
        margins={"total_row": {"group": TOTAL}, "complements": [("n", "events")]},
        dependent=ctx._RATE_DEP, labels={"n": "Due", "events": "Followed up", "estimate": "Rate"},
        percent_columns=("estimate", "ci_lower", "ci_upper", "target"), ids=ids,
        measure=_measure_meta(ctx.definitions.get("followup", {}), "completed_in_window", "due"),
    ))

    # -- 2. completers vs non-completers ------------------------------------------------------
    due = d[d["due"].astype(bool)].copy()
    due["_status"] = pd.Categorical(np.where(due["_done"] == 1.0, COMPLETERS, NON_COMPLETERS),
                                    categories=[COMPLETERS, NON_COMPLETERS])
    gcol = cfg.group_column
    due[gcol] = due["_group"]
    variables = [gcol] + [v for v in cfg.table_one if v in due.columns and v != gcol and due[v].notna().any()]
    has_both = due["_status"].value_counts().min() > 0
    if has_both:
        _characteristics(ctx, due, variables, t)

    # -- 3. complete case vs multiple imputation for the headline adjusted estimates ---------
    comp_rows: list[dict[str, Any]] = []
    for key, col, label in (("relapse", "relapsed", f"relapse within {cfg.relapse_window} days"),
                            (cfg.recidivism_levels[0], "recidivated",
                             f"{cfg.recidivism_levels[0]} within {cfg.recidivism_window} days")):
        comp_rows += _cc_vs_mi(ctx, key, col, label, m, seed, notes)

    # -- 4. tipping point of the follow-up interview outcome -----------------------------------
    tip = _tipping(ctx, due, settings["outcome"], m, seed, notes)
    if tip is not None:
        res, words, exposed, reference = tip
        cc = res.complete_case.iloc[0]
        mar = res.mar.iloc[0]
        for name, r in (("complete case (responders)", cc), ("multiple imputation (MAR)", mar)):
            comp_rows.append({"outcome": f"{words} at follow-up", "analysis": name, "estimate": r["estimate"],
                              "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"], "p_value": r["p_value"],
                              "fmi": r["fmi"] if "fmi" in r else np.nan})
        grid = res.table[["scenario", "delta_exposed", "delta_reference", "odds_multiplier_exposed",
                          "odds_multiplier_reference", "estimate", "ci_lower", "ci_upper", "p_value",
                          "changes_conclusion"]].copy()
        grid["changes_conclusion"] = grid["changes_conclusion"].astype(float)
        ctx.registry.add(PendingTable(
            key="missing_tipping_grid", sheet="Tipping-point grid",
            title=f"Tipping-point analysis: odds ratio of {words} under shifted non-responder odds",
            raw=grid, count_columns=(), show_in_document=False,
            labels={"scenario": "Scenario", "delta_exposed": "Shift (log-odds), program",
                    "delta_reference": "Shift (log-odds), reference", "odds_multiplier_exposed": "Odds multiplier, program",
                    "odds_multiplier_reference": "Odds multiplier, reference", "estimate": "Odds ratio",
                    "changes_conclusion": "Conclusion changes (1 = yes)"},
            measure={"definition": "Delta-adjusted multiple imputation: missing follow-up answers imputed from the "
                                   "responders' logistic model with the log-odds shifted by delta in each group; "
                                   f"m = {res.m} imputations, seed {res.seed}, Rubin's rules. Bound rows: every "
                                   "non-responder with / without the outcome."},
        ))
        tp = res.tipping
        tp["group"] = [exposed if a == "exposed" else reference for a in tp["arm"]]
        tp = tp[["group", "direction", "delta", "odds_multiplier", "found"]].copy()
        tp["found"] = tp["found"].astype(float)
        ctx.registry.add(PendingTable(
            key="missing_tipping", sheet="Tipping points", title=f"Tipping points: {words}", raw=tp,
            count_columns=(),
            labels={"group": "Non-responders of", "direction": "Direction", "delta": "Shift (log-odds)",
                    "odds_multiplier": "Odds multiplier", "found": "Found in range (1 = yes)"},
            measure={"definition": "The shift of one group's non-responders (the other group as under MAR) at which "
                                   "the conclusion changes (significance lost or gained, or the sign changes), "
                                   "located to 0.01 on the log-odds scale."},
        ))
    if comp_rows:
        ctx.registry.add(PendingTable(
            key="missing_cc_mi", sheet="Complete case vs MI",
            title="Adjusted odds ratios: complete-case and multiple-imputation analyses",
            raw=pd.DataFrame(comp_rows), count_columns=(),
            labels={"outcome": "Outcome", "analysis": "Analysis", "estimate": "Odds ratio",
                    "fmi": "Fraction of missing information"},
            measure={"definition": f"Odds ratio of the program group vs {ctx.reference}, adjusted as in the adjusted "
                                   f"comparison. Multiple imputation: m = {m} data sets by chained equations (seed "
                                   f"{seed}) with the outcome in the imputation model, pooled by Rubin's rules."},
        ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.attrition import plot_tipping_grid
        from recoverystats.plotting.report import plot_followup

        out: list[Any] = [TextBlock(paragraphs=(
            "How complete the follow-up is, who was not followed up, and whether the conclusions depend on the "
            "missing answers. Participants not followed up are compared with those followed up (an absolute SMD "
            "above 0.1 flags a difference); the headline comparisons are repeated with the missing values "
            f"multiply imputed (m = {m}); and a tipping-point analysis asks how different the non-responders "
            "would have to be for the conclusion to change.",))]
        b = blocks["missing_followup"]
        out.append(_figure("missing_followup", "Follow-up rate vs target", lambda ax: plot_followup(
            b.data, target=target, ax=ax, as_of=ctx.as_of, labels=ctx.labels), sources=("missing_followup",)))
        out.append(b)
        for k in ("missing_attrition_continuous", "missing_attrition"):
            if k in blocks:
                out.append(blocks[k])
        if "missing_cc_mi" in blocks:
            out.append(blocks["missing_cc_mi"])
        if tip is not None and "missing_tipping" in blocks:
            res, words, exposed, reference = tip
            mb = blocks["missing_tipping"]
            gb = blocks["missing_tipping_grid"]
            if gb.data["estimate"].notna().any():
                out.append(TextBlock(heading="Tipping point", paragraphs=(_words(res, words, ctx),)))
                out.append(_figure("missing_tipping", "Tipping-point analysis", lambda ax: plot_tipping_grid(
                    gb.data[gb.data["scenario"] == "delta"], ax=ax, exposed=exposed, reference=reference,
                    title=f"Tipping point: {words}"), figsize=(6.6, 5.4), sources=("missing_tipping_grid",)))
                out.append(mb)
        if notes:  # model messages can quote counts: small ones are masked as in the adjusted section
            out.append(TextBlock(bullets=tuple(_hide_small_numbers(n, ctx.min_cell if ctx.suppress else 1)
                                               for n in notes)))
        return Section("missing_data", "Follow-up and missing data", tuple(out))

    return section


def _words(res: Any, words: str, ctx: ReportContext) -> str:
    from recoverystats.missing.sensitivity import _plain_words

    lab = ctx.labels
    return _plain_words(res.mar.iloc[0].to_dict(), res.complete_case, res.tipping, res.table, est_name="odds ratio",
                        outcome=words, exposed=lab.code(res.exposed, field="group"),
                        reference=lab.code(res.reference, field="group"), level=res.conf_level, scale="or",
                        state_mar=_state_of(res))


def _state_of(res: Any) -> int:
    from recoverystats.missing.sensitivity import _state

    return _state(res.mar.iloc[0].to_dict(), 1 - res.conf_level, res.scale)


def _small(ctx: ReportContext, *counts: float) -> bool:
    """Any count from 1 to min_cell - 1 (only when suppressing)."""
    return ctx.suppress and any(1 <= c < ctx.min_cell for c in counts)


def _cc_vs_mi(ctx: ReportContext, key: str, col: str, label: str, m: int, seed: int,
              notes: list[str]) -> list[dict[str, Any]]:
    from recoverystats.missing import impute
    from recoverystats.regression import odds_ratios

    cfg = ctx.cfg
    meas = ctx.measures.get(key)
    if meas is None:
        return []
    d = meas[meas["eligible"].astype(bool) & meas[col].notna()].copy()
    gcol = cfg.group_column
    d[gcol] = d["_group"]
    adjust = [a for a in cfg.adjust if a in d.columns and d[a].notna().any()]
    cluster = cfg.cluster if cfg.cluster and cfg.cluster in d.columns and d[cfg.cluster].notna().any() else None
    if cluster:
        # odds_ratios makes each participant without a mentor a cluster of their own; do it here
        # so the imputed data sets carry a complete cluster column
        own = pd.Series([f"_own_{i}" for i in range(len(d))], index=d.index, dtype="string")
        d[cluster] = d[cluster].astype("string").fillna(own)
    y = d[col].astype(float)
    complete = d[adjust].notna().all(axis=1) if adjust else pd.Series(True, index=d.index)
    small = False
    for sel in (complete, pd.Series(True, index=d.index)):
        for g in d["_group"].unique():
            at = (d["_group"] == g) & sel
            n, e = float(at.sum()), float(y[at].sum())
            small = small or _small(ctx, n, e, n - e)
    rows = []
    kw = dict(exposure=gcol, adjust=adjust, cluster=cluster, reference={gcol: ctx.reference},
              conf_level=cfg.conf_level)
    try:
        cc = odds_ratios(d, col, missing="drop", **kw).table.iloc[0]
        rows.append({"outcome": label, "analysis": "complete case", "estimate": cc["estimate"],
                     "ci_lower": cc["ci_lower"], "ci_upper": cc["ci_upper"], "p_value": cc["p_value"], "fmi": np.nan})
    except RecoveryStatsError as exc:
        notes.append(f"{label}: complete-case model not estimated ({exc}).")
        return []
    incomplete = [a for a in adjust if d[a].isna().any()]
    if not incomplete:
        notes.append(f"{label}: no missing covariate values; the complete-case analysis uses every eligible "
                     "participant (no imputation needed).")
    else:
        cols = [col, gcol, *adjust]
        try:
            imp = impute(d[cols + ([cluster] if cluster and cluster not in cols else [])], m=m, seed=seed,
                         columns=cols)
            mi = odds_ratios(imp, col, **kw).table.iloc[0]
            rows.append({"outcome": label, "analysis": f"multiple imputation (m = {m})", "estimate": mi["estimate"],
                         "ci_lower": mi["ci_lower"], "ci_upper": mi["ci_upper"], "p_value": mi["p_value"],
                         "fmi": mi["fmi"] if "fmi" in mi else np.nan})
        except RecoveryStatsError as exc:
            notes.append(f"{label}: multiple-imputation model not estimated ({exc}).")
    if small:
        for r in rows:
            for c in ("estimate", "ci_lower", "ci_upper", "p_value", "fmi"):
                r[c] = np.nan
        notes.append(f"{label}: odds ratios not shown (a group has fewer than {ctx.min_cell} participants, events "
                     "or non-events).")
    return rows


def _followup_item(ctx: ReportContext, due: pd.DataFrame, item: str) -> pd.Series | None:
    """The follow-up interview's answer to ``item`` (1/0) for those followed up in the window; NaN otherwise."""
    a = ctx.prog.assessments
    if not len(a) or item not in a.columns:
        return None
    fa = a[(a["timepoint"] == "followup_6m").fillna(False).to_numpy(dtype=bool)][
        ["participant_id", "assessment_date", item]].copy()
    fa["participant_id"] = fa["participant_id"].astype(str)
    fa = fa.drop_duplicates(["participant_id", "assessment_date"])
    key = pd.DataFrame({"participant_id": due["participant_id"].astype(str).to_numpy(),
                        "assessment_date": pd.to_datetime(due["followup_date"]).to_numpy()})
    merged = key.merge(fa, on=["participant_id", "assessment_date"], how="left")
    v = merged[item]
    if pd.api.types.is_bool_dtype(v.dtype) or v.dtype == object:
        v = v.map(lambda x: np.nan if pd.isna(x) else float(bool(x)))
    v = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
    done = (due["_done"] == 1.0).to_numpy()
    return pd.Series(np.where(done, v, np.nan), index=due.index)


def _tipping(ctx: ReportContext, due: pd.DataFrame, item: str, m: int, seed: int,
             notes: list[str]) -> tuple[Any, str, str, str] | None:
    from recoverystats.missing import tipping_point

    cfg = ctx.cfg
    words = ITEM_WORDS.get(item, item.replace("_", " "))
    y = _followup_item(ctx, due, item)
    if y is None or not y.notna().any():
        notes.append(f"Tipping point: no follow-up answers to {item!r} in the data.")
        return None
    gcol = cfg.group_column
    groups = [g for g in due["_group"].unique()]
    exposed = next((g for g in ctx.program_groups if g in groups), None)
    if exposed is None or ctx.reference not in groups:
        notes.append("Tipping point: needs the program group and the reference group among those due.")
        return None
    sel = due["_group"].isin([exposed, ctx.reference]).to_numpy()
    if len(groups) > 2:
        notes.append(f"Tipping point: {ctx.labels.code(exposed, field='group')} compared with "
                     f"{ctx.labels.code(ctx.reference, field='group')} only.")
    frame = due.loc[sel].copy()
    frame["_y"] = y[sel].to_numpy()
    frame[gcol] = frame["_group"]
    for g in (exposed, ctx.reference):
        at = frame[gcol] == g
        resp = frame.loc[at, "_y"].notna()
        n_resp = float(resp.sum())
        e = float(frame.loc[at, "_y"].sum())
        if _small(ctx, n_resp, e, n_resp - e, float((~resp).sum())) or n_resp == 0 or e in (0.0, n_resp):
            notes.append(f"Tipping point not shown: a group has fewer than {ctx.min_cell} responders, non-responders, "
                         "or responders with or without the outcome.")
            return None
    adjust = [a for a in cfg.adjust if a in frame.columns and frame[a].notna().any()]
    try:
        res = tipping_point(frame[["_y", gcol, *adjust]], outcome="_y", exposure=gcol, adjust=adjust,
                            reference=ctx.reference, m=m, seed=seed, deltas=list(TIPPING_DELTAS),
                            conf_level=cfg.conf_level)
    except RecoveryStatsError as exc:
        notes.append(f"Tipping point not estimated ({exc}).")
        return None
    lab = ctx.labels
    return res, words, lab.code(exposed, field="group"), lab.code(ctx.reference, field="group")


def _characteristics(ctx: ReportContext, due: pd.DataFrame, variables: list[str], rate: pd.DataFrame) -> None:
    """Register the completers vs non-completers tables (the layout and the privacy rules of
    the Table 1 section: every count protected, every percentage, mean, SD and SMD derived
    from its counts and suppressed with them)."""
    from recoverystats.rates import table_one

    t1 = table_one(due, group="_status", variables=variables, smd=True, overall=True)
    tab = t1.table
    gs = [COMPLETERS, NON_COMPLETERS]
    allg = ["Overall", *gs]
    gcol = ctx.cfg.group_column
    n_by_group = dict(zip(rate["group"], rate["n"], strict=True))
    total_ids = {"Overall": (f"fu|{TOTAL}|n", f"elig|{TOTAL}|{int(n_by_group.get(TOTAL, 0))}"),
                 COMPLETERS: f"fu|{TOTAL}|events"}
    nrow = tab[tab["kind"] == "count"].iloc[0]
    cat, cont_rows = _table_one_rows(tab, allg)
    heads = {g: STATUS_LABELS[g] for g in allg}
    if len(cat):
        ids: dict[tuple[int, str], Any] = {}
        for i, (var, lev) in enumerate(zip(cat["variable"], cat["level"], strict=True)):
            if lev == TOTAL:
                for g, cid in total_ids.items():
                    ids[(i, f"n|{g}")] = cid
            elif lev == "(with a value)":
                for g in allg:
                    ids[(i, f"n|{g}")] = f"att|{var}|with_value|{g}"
            elif var == gcol and lev in n_by_group:
                # the due and followed-up counts of a group are cells of the follow-up rate table
                ids[(i, "n|Overall")] = (f"fu|{lev}|n", f"elig|{lev}|{int(n_by_group[lev])}")
                ids[(i, f"n|{COMPLETERS}")] = f"fu|{lev}|events"
        total_rows = [i for i, lev in enumerate(cat["level"]) if lev == TOTAL]
        shown_rows = [i for i in range(len(cat)) if i not in total_rows]
        ctx.registry.add(PendingTable(
            key="missing_attrition", sheet="Followed up vs not", title="Participants due: followed up vs not, n (%)",
            raw=cat, count_columns=tuple(f"n|{g}" for g in allg),
            margins={"total_row": {"level": TOTAL}, "by": ["variable"],
                     "total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
            dependent={f"pct|{g}": [f"n|{g}"] for g in allg},
            columns=("variable", "level", *[c for g in allg for c in (f"n|{g}", f"pct|{g}")], "smd"),
            labels={"variable": "Characteristic", "level": "Level",
                    **{f"n|{g}": f"{heads[g]} n" for g in allg}, **{f"pct|{g}": f"{heads[g]} %" for g in allg},
                    "smd": "SMD"},
            percent_columns=tuple(f"pct|{g}" for g in allg), ids=ids, display_rows=shown_rows,
            derived=_table_one_derived(cat, allg, gs),
            measure={"definition": "Participants due for the 6-month follow-up by the cut-off, by whether the "
                                   "interview was completed in the window; % of those with a recorded value; SMD "
                                   "= standardized mean difference, followed up vs not (Yang & Dalton for "
                                   "categorical).", "as_of": ctx.as_of.date().isoformat()},
        ))
    cont = pd.DataFrame(cont_rows)
    if len(cont):
        if ctx.suppress:
            for g in allg:
                small = cont[f"n|{g}"].astype(float) < ctx.min_cell
                cont.loc[small, [f"mean|{g}", f"sd|{g}"]] = np.nan
        cont_ids: dict[tuple[int, str], Any] = {}
        n_all = {g: float(nrow[f"{g}|n"]) for g in allg}
        for i, r in cont.iterrows():
            for g in allg:
                full = float(r[f"n|{g}"]) == n_all[g]
                if full and g in total_ids:
                    cont_ids[(int(i), f"n|{g}")] = total_ids[g]
                elif not full:
                    cont_ids[(int(i), f"n|{g}")] = f"att|{r['variable']}|with_value|{g}"
        cont_derived: list[dict[str, Any]] = []
        for i, r in cont.iterrows():
            for g in allg:
                for stat in ("mean", "sd"):
                    if np.isfinite(float(r[f"{stat}|{g}"])):
                        cont_derived.append(_derived(int(i), f"{stat}|{g}", stat, [(int(i), f"n|{g}")]))
            if np.isfinite(float(r["smd"])):
                cont_derived.append(_derived(int(i), "smd", "smd_continuous", [(int(i), f"n|{g}") for g in gs]))
        ctx.registry.add(PendingTable(
            key="missing_attrition_continuous", sheet="Followed up vs not, means",
            title="Participants due: followed up vs not, mean (SD)",
            raw=cont, count_columns=tuple(f"n|{g}" for g in allg),
            margins={"total_columns": {"n|Overall": [f"n|{g}" for g in gs]}},
            ids=cont_ids, derived=cont_derived,
            columns=("variable", *[c for g in allg for c in (f"mean|{g}", f"sd|{g}")], "smd"),
            labels={"variable": "Characteristic", **{f"mean|{g}": f"{heads[g]} mean" for g in allg},
                    **{f"sd|{g}": f"{heads[g]} SD" for g in allg}, "smd": "SMD"},
            measure={"definition": "Mean and SD (ddof=1) among participants due with a value.",
                     "as_of": ctx.as_of.date().isoformat()},
        ))
