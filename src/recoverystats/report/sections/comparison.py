"""Report section (opt-in): the non-randomised comparison -- balance, overlap, weighted effects.

Shown when ``[sections] comparison = true`` and the design (``[design] comparison`` of
program.toml or the report config) is not ``"randomised"`` (a randomised comparison
needs no balancing; an unstated design is treated as non-randomised and said so).

What it does, on the participants enrolled by the cut-off in the program group and the
reference (comparison) group:

* fits a propensity score (logistic regression of group membership on the covariates of
  ``[analysis] adjust`` -- the same set as the adjusted odds ratios, so that the two
  adjusted estimates answer the same question) and turns it into ATT weights
  (:func:`recoverystats.causal.balancing_weights`, ``estimand="ATT"``: comparison
  participants are re-weighted to resemble the program's participants; the program's
  own participants keep weight 1);
* publishes the balance of every covariate level before and after weighting
  (:func:`recoverystats.causal.balance`; SMD with the program group's SD, as cobalt and
  MatchIt for the ATT), with a love plot;
* publishes the propensity-score distribution as binned counts per group (a table,
  suppressed like every count) and draws the overlap figure from that suppressed table
  (:func:`recoverystats.plotting.causal.plot_overlap_counts`);
* estimates the weighted (IPW, ATT) risk difference for each headline outcome
  (:func:`recoverystats.causal.treatment_effect`, robust standard errors that allow for
  the estimated propensity score) next to the regression-adjusted odds ratio
  (:func:`recoverystats.regression.odds_ratios`, as in the "adjusted" section), with the
  E-value (VanderWeele & Ding 2017) in plain words.

Privacy: every count goes through the registry (level counts per group, the binned
propensity counts, the outcome n/events); percentages, weighted percentages and SMDs are
suppressed with the counts of their row (``dependent``), before-weighting percentages
are declared as ratios of their counts (``derived``, checked by the scan's attacker),
and the level counts carry the ids of the same counts in Table 1 and the outcome table,
so a count suppressed there is suppressed here. Missing covariate values: a categorical
covariate's missing values are a level of their own ("(missing)", as in Table 1); a
numeric covariate's are filled with the mean and flagged by an indicator in the
propensity model, and its balance row is computed on the filled values (noted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import RecoveryStatsError
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import TOTAL, _derived, _figure, _hide_small_numbers

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "OVERLAP_BINS", "ESTIMAND"]

#: Width of the propensity-score bins of the overlap table and figure (10 bins on [0, 1]).
OVERLAP_BINS = 10
#: The estimand of the weighted effects: the effect of the program on the people it served.
ESTIMAND = "ATT"


def _is_continuous(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
        return False
    if not pd.api.types.is_numeric_dtype(s.dtype):
        return False
    v = s.dropna().to_numpy(dtype=float)
    return not bool(np.all((v == 0) | (v == 1)))


def _prepare(d: pd.DataFrame, covs: list[str]) -> tuple[pd.DataFrame, list[str], list[str], list[str]]:
    """Model frame: categorical covariates as text levels ("(missing)" a level), numeric
    ones filled with their mean plus a missing indicator. Returns (frame, model columns,
    balance columns, notes)."""
    pf = pd.DataFrame({"_group": d["_group"].to_numpy()}, index=d.index)
    model, bal, notes = [], [], []
    for c in covs:
        s = d[c]
        if _is_continuous(s):
            x = s.astype(float)
            if x.isna().any():
                pf[f"{c}__missing"] = x.isna().astype(float)
                model.append(f"{c}__missing")
                notes.append(c)
            pf[c] = x.fillna(x.mean())
        else:
            pf[c] = s.map(lambda v: "(missing)" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                          else str(v)).astype(object)
        model.append(c)
        bal.append(c)
    return pf, model, bal, notes


def _level_rows(d: pd.DataFrame, covs: list[str], gs: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Level counts per group exactly as the Table 1 section builds them (same levels,
    the implied level of a binary variable, "(missing)" rows, a Total row per variable),
    and the continuous rows (n with a value per group)."""
    from recoverystats.rates import table_one

    t1 = table_one(d, group="_group", variables=covs, smd=False, overall=False)
    tab = t1.table
    nrow = tab[tab["kind"] == "count"].iloc[0]
    cat_rows, cont_rows = [], []
    for var, block in tab[tab["kind"] != "count"].groupby("variable", sort=False):
        kinds = set(block["kind"])
        if "continuous" in kinds:
            r = block[block["kind"] == "continuous"].iloc[0]
            cont_rows.append({"variable": var, **{f"n|{g}": float(r[f"{g}|n"]) for g in gs}})
            continue
        levels = block.reset_index(drop=True)
        for rec in levels.to_dict("records"):
            cat_rows.append({"variable": var, "level": str(rec["level"]), **{f"n|{g}": float(rec[f"{g}|n"]) for g in gs}})
        if len(levels[levels["kind"] == "categorical"]) == 1:
            yes = levels[levels["kind"] == "categorical"].iloc[0]
            miss = levels[levels["kind"] == "missing"]
            lev = str(yes["level"])
            name = {"True": "False", "true": "false", "1": "0", "yes": "no", "1.0": "0.0"}.get(lev, f"not {lev}")
            cat_rows.append({"variable": var, "level": name, **{
                f"n|{g}": float(nrow[f"{g}|n"]) - float(yes[f"{g}|n"]) - (float(miss.iloc[0][f"{g}|n"]) if len(miss)
                                                                          else 0.0) for g in gs}})
        cat_rows.append({"variable": var, "level": TOTAL, **{f"n|{g}": float(nrow[f"{g}|n"]) for g in gs}})
    return pd.DataFrame(cat_rows), pd.DataFrame(cont_rows)


def _long_counts(block: TableBlock, prog: Any, ref: Any) -> pd.DataFrame:
    """The published band counts in the long layout of
    :meth:`~recoverystats.results.causal.PropensityScoreResult.binned` (suppressed: NaN)."""
    rows = block.display_rows if block.display_rows is not None else range(len(block.data))
    out = []
    for g, exposed in ((prog, 1), (ref, 0)):
        col = f"n|{g}"
        for i in rows:
            lower = float(block.data.iat[i, block.data.columns.get_loc("lower")])
            hidden = bool(block.mask.iat[i, block.mask.columns.get_loc(col)])
            v = block.data.iat[i, block.data.columns.get_loc(col)]
            n = np.nan if hidden or v is None or v is pd.NA else float(v)
            out.append({"lower": lower, "upper": lower + 1.0 / OVERLAP_BINS, "group": str(g), "exposed": exposed,
                        "n": n})
    return pd.DataFrame(out)


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register this section's raw tables with ``ctx.registry``; return the function that
    composes the section from the suppressed tables, or None (randomised design, a single
    group, or no covariates). See :mod:`recoverystats.report.sections`."""
    from recoverystats.causal import balance, balancing_weights, treatment_effect
    from recoverystats.regression import odds_ratios

    cfg = ctx.cfg
    design = cfg.comparison
    if design == "randomised":
        return None
    ref = ctx.reference
    others = [g for g in ctx.program_groups if g != ref and g in ctx.groups] or [g for g in ctx.groups if g != ref]
    if not others:
        return None
    prog = others[0]
    gs = [prog, ref]
    base = ctx.measures["retention"]
    d = base[base["_group"].isin(gs)].copy()
    covs = [a for a in cfg.adjust if a in d.columns and a != cfg.group_column and d[a].notna().any()]
    notes: list[str] = []
    if len(others) > 1:
        notes.append(f"{len(others)} program groups: this section compares the first, "
                     f"{ctx.labels.code(prog, field='group')}, with {ctx.labels.code(ref, field='group')}.")
    if not covs:
        return None
    as_of = ctx.as_of.date().isoformat()
    glab = {g: ctx.labels.code(g, field="group") for g in gs}

    # -- propensity score and ATT weights -----------------------------------------------
    pf, model_cols, bal_cols, filled = _prepare(d, covs)
    if filled:
        notes.append("Missing values of " + ", ".join(filled) + " were filled with the mean (with a missing-value "
                     "indicator in the propensity model); their balance rows use the filled values.")
    try:
        bw = balancing_weights(pf, exposure="_group", adjust=model_cols, estimand=ESTIMAND, treated=prog)
        bal = balance(pf, exposure="_group", adjust=bal_cols, weights=bw.weights, estimand=ESTIMAND,
                      treated=prog).table
        scores = bw.scores
    except RecoveryStatsError as exc:
        ctx.notes.setdefault("comparison", []).append(f"Propensity score not estimated: {exc}")
        bw, bal, scores = None, None, None

    # -- balance tables (level counts as Table 1; statistics from causal.balance) --------
    cat, cont = _level_rows(d, covs, gs)
    # a group of 1..min_cell-1 people (any group: Table 1's totals add up over all of them)
    # has its size suppressed, and so may another group's size (complementary); an SMD
    # or weighted % computed with a suppressed group size could give it back, so with such
    # a group the balance statistics are withheld (the counts stay, suppressed as usual)
    sizes = base["_group"].value_counts()
    if ctx.suppress and any(1 <= int(sizes.get(g, 0)) < ctx.min_cell for g in ctx.groups) and bal is not None:
        notes.append(f"A group has fewer than {ctx.min_cell} participants: the balance statistics are withheld "
                     "(they would reveal suppressed group sizes).")
        bal = None
    if bal is not None:
        def stat(var: str, level: Any, sample: str, col: str) -> float:
            b = bal[(bal["variable"] == var) & (bal["sample"] == sample)]
            if level is not None:
                b = b[b["level"].astype(str) == str(level)]
            return float(b[col].iloc[0]) if len(b) else float("nan")
    if len(cat):
        for g in gs:
            cat[f"pct|{g}"] = np.nan
            cat[f"wpct|{g}"] = np.nan
        cat["smd_before"] = np.nan
        cat["smd_after"] = np.nan
        derived: list[dict[str, Any]] = []
        ids: dict[tuple[int, str], Any] = {}
        tot_row = {}
        for i, (var, lev) in enumerate(zip(cat["variable"], cat["level"], strict=True)):
            if lev == TOTAL:
                tot_row[var] = i
        for i, (var, lev) in enumerate(zip(cat["variable"], cat["level"], strict=True)):
            if lev == TOTAL:
                for g in gs:
                    ids[(i, f"n|{g}")] = f"N|{g}"
                continue
            for g in gs:
                ids[(i, f"n|{g}")] = f"t1|{var}|level|{lev}|{g}"
                tot = float(cat.at[tot_row[var], f"n|{g}"])
                if tot > 0:
                    cat.at[i, f"pct|{g}"] = float(cat.at[i, f"n|{g}"]) / tot
                    derived.append(_derived(i, f"pct|{g}", "ratio", [(i, f"n|{g}"), (tot_row[var], f"n|{g}")]))
            if bal is not None:
                cat.at[i, "smd_before"] = stat(var, lev, "unadjusted", "smd")
                cat.at[i, "smd_after"] = stat(var, lev, "weighted", "smd")
                cat.at[i, f"wpct|{prog}"] = stat(var, lev, "weighted", "mean_treated")
                cat.at[i, f"wpct|{ref}"] = stat(var, lev, "weighted", "mean_control")
        counts = tuple(f"n|{g}" for g in gs)
        both = list(counts)
        ctx.registry.add(PendingTable(
            key="comparison_balance", sheet="Balance", title="Balance of the compared groups before and after weighting",
            raw=cat, count_columns=counts,
            margins={"total_row": {"level": TOTAL}, "by": ["variable"]},
            dependent={**{f"pct|{g}": [f"n|{g}"] for g in gs}, **{f"wpct|{g}": both for g in gs},
                       "smd_before": both, "smd_after": both},
            columns=("variable", "level", *[f"n|{g}" for g in gs], *[f"pct|{g}" for g in gs],
                     *[f"wpct|{g}" for g in gs], "smd_before", "smd_after"),
            labels={"variable": "Characteristic", "level": "Level",
                    **{f"n|{g}": f"{glab[g]} n" for g in gs}, **{f"pct|{g}": f"{glab[g]} %" for g in gs},
                    **{f"wpct|{g}": f"{glab[g]} % weighted" for g in gs},
                    "smd_before": "SMD before", "smd_after": "SMD after"},
            percent_columns=(*[f"pct|{g}" for g in gs], *[f"wpct|{g}" for g in gs]), ids=ids,
            display_rows=[i for i, lev in enumerate(cat["level"]) if lev != TOTAL], derived=derived,
            measure={"definition": "Participants enrolled by the cut-off in the compared groups; % of the group; "
                                   "weighted % with ATT propensity-score weights; SMD = difference in proportions "
                                   f"over the {glab[prog]} group's SD, before and after weighting (cobalt/MatchIt "
                                   "for the ATT).", "as_of": as_of, "estimand": ESTIMAND},
        ))
    if len(cont):
        for g in gs:
            cont[f"mean|{g}"] = np.nan
            cont[f"mean_w|{g}"] = np.nan
        cont["smd_before"] = np.nan
        cont["smd_after"] = np.nan
        n_all = {g: float(cat[cat["level"] == TOTAL][f"n|{g}"].iloc[0]) if len(cat) else float((d["_group"] == g).sum())
                 for g in gs}
        cids: dict[tuple[int, str], Any] = {}
        for i, var in enumerate(cont["variable"]):
            for g in gs:
                full = float(cont.at[i, f"n|{g}"]) == n_all[g]
                cids[(i, f"n|{g}")] = f"N|{g}" if full else f"t1|{var}|with_value|{g}"
            if bal is not None:
                cont.at[i, f"mean|{prog}"] = stat(var, None, "unadjusted", "mean_treated")
                cont.at[i, f"mean|{ref}"] = stat(var, None, "unadjusted", "mean_control")
                cont.at[i, f"mean_w|{prog}"] = stat(var, None, "weighted", "mean_treated")
                cont.at[i, f"mean_w|{ref}"] = stat(var, None, "weighted", "mean_control")
                cont.at[i, "smd_before"] = stat(var, None, "unadjusted", "smd")
                cont.at[i, "smd_after"] = stat(var, None, "weighted", "smd")
        if ctx.suppress:  # a mean of fewer than min_cell people describes individuals
            for g in gs:
                small = cont[f"n|{g}"].astype(float) < ctx.min_cell
                cont.loc[small, [f"mean|{g}", f"mean_w|{g}", "smd_before", "smd_after"]] = np.nan
        counts = tuple(f"n|{g}" for g in gs)
        both = list(counts)
        ctx.registry.add(PendingTable(
            key="comparison_balance_continuous", sheet="Balance continuous",
            title="Balance of numeric characteristics before and after weighting: means", raw=cont,
            count_columns=counts,
            dependent={**{f"mean|{g}": [f"n|{g}"] for g in gs}, **{f"mean_w|{g}": both for g in gs},
                       "smd_before": both, "smd_after": both},
            columns=("variable", *[f"mean|{g}" for g in gs], *[f"mean_w|{g}" for g in gs], "smd_before", "smd_after"),
            labels={"variable": "Characteristic", **{f"mean|{g}": f"{glab[g]} mean" for g in gs},
                    **{f"mean_w|{g}": f"{glab[g]} mean weighted" for g in gs},
                    "smd_before": "SMD before", "smd_after": "SMD after"},
            ids=cids,
            measure={"definition": "Means before and after ATT weighting; SMD = difference in means over the "
                                   f"{glab[prog]} group's SD (unweighted).", "as_of": as_of, "estimand": ESTIMAND},
        ))

    # -- overlap: binned propensity-score counts (a table, suppressed like every count) -----
    if scores is not None:
        s = scores.to_numpy(dtype=float)
        edges = np.linspace(0.0, 1.0, OVERLAP_BINS + 1)
        idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, OVERLAP_BINS - 1)
        grp = pf["_group"].to_numpy()
        rows = []
        for b in range(OVERLAP_BINS):
            rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "lower": float(edges[b]),
                         **{f"n|{g}": float(((idx == b) & (grp == g)).sum()) for g in gs}})
        rows.append({"bin": TOTAL, "lower": np.nan, **{f"n|{g}": float((grp == g).sum()) for g in gs}})
        ov = pd.DataFrame(rows)
        ov_ids = {(len(ov) - 1, f"n|{g}"): f"N|{g}" for g in gs}
        ctx.registry.add(PendingTable(
            key="comparison_overlap", sheet="Propensity overlap",
            title="Propensity score by group: participants per score band", raw=ov,
            count_columns=tuple(f"n|{g}" for g in gs), margins={"total_row": {"bin": TOTAL}},
            columns=("bin", *[f"n|{g}" for g in gs]),
            labels={"bin": "Propensity score", **{f"n|{g}": f"{glab[g]} n" for g in gs}}, ids=ov_ids,
            display_rows=list(range(OVERLAP_BINS)),
            measure={"definition": "Participants per band of the estimated propensity score (probability of "
                                   f"being in the {glab[prog]} group given the covariates).", "as_of": as_of},
        ))

    # -- weighted effects beside the adjusted odds ratios ------------------------------------
    first = cfg.recidivism_levels[0]
    eff_rows, eff_ids, eff_notes = [], {}, []
    if bw is not None:
        for key, col, label in (("relapse", "relapsed", f"relapse within {cfg.relapse_window} days"),
                                (first, "recidivated", f"{first} within {cfg.recidivism_window} days")):
            m = ctx.measures[key]
            m = m[m["eligible"].astype(bool) & m[col].notna() & m["_group"].isin(gs)]
            if not len(m) or m["_group"].nunique() < 2:
                continue
            mf, mcols, _, _ = _prepare(m, covs)
            mf[col] = m[col].astype(float).to_numpy()
            rec: dict[str, Any] = {"outcome": label}
            i = len(eff_rows)
            for g in gs:
                rec[f"n|{g}"] = float((m["_group"] == g).sum())
                rec[f"events|{g}"] = float(m.loc[m["_group"] == g, col].astype(float).sum())
                eff_ids[(i, f"n|{g}")] = (f"out|{key}|{g}|n", f"elig|{g}|{int(rec[f'n|{g}'])}")
                eff_ids[(i, f"events|{g}")] = f"out|{key}|{g}|events"
            try:
                te = treatment_effect(mf, outcome=col, exposure="_group", adjust=mcols, estimand=ESTIMAND,
                                      method="ipw", treated=prog, conf_level=cfg.conf_level)
                tt = te.table.set_index("measure")
                rd = tt.loc["risk_difference"]
                rr = tt.loc["risk_ratio"]
                rec.update(risk_T=float(rd["mean_treated"]), risk_C=float(rd["mean_control"]),
                           rd=float(rd["estimate"]), rd_lower=float(rd["ci_lower"]), rd_upper=float(rd["ci_upper"]),
                           rr=float(rr["estimate"]), evalue=float(rr["evalue"]), evalue_ci=float(rr["evalue_ci"]))
            except RecoveryStatsError as exc:
                eff_notes.append(f"{label}: weighted effect not estimated ({exc}).")
            try:
                d2 = m.copy()
                d2[cfg.group_column] = d2["_group"]
                adj = [a for a in cfg.adjust if a in d2.columns and d2[a].notna().any()]
                cl = cfg.cluster if cfg.cluster and cfg.cluster in d2.columns and d2[cfg.cluster].notna().any() \
                    else None
                r = odds_ratios(d2, col, exposure=cfg.group_column, adjust=adj, cluster=cl,
                                reference={cfg.group_column: ref}, conf_level=cfg.conf_level, missing="drop")
                t = r.table
                row = t[(t["variable"] == cfg.group_column)]
                if len(row):
                    rec.update(or_=float(row["estimate"].iloc[0]), or_lower=float(row["ci_lower"].iloc[0]),
                               or_upper=float(row["ci_upper"].iloc[0]))
            except RecoveryStatsError as exc:
                eff_notes.append(f"{label}: adjusted odds ratio not estimated ({exc}).")
            eff_rows.append(rec)
    stat_cols = ["risk_T", "risk_C", "rd", "rd_lower", "rd_upper", "rr", "or_", "or_lower", "or_upper", "evalue",
                 "evalue_ci"]
    if eff_rows:
        et = pd.DataFrame(eff_rows)
        for c in stat_cols:
            if c not in et:
                et[c] = np.nan
            et[c] = et[c].astype(float)
        counts = tuple(c for g in gs for c in (f"n|{g}", f"events|{g}"))
        dep = list(counts)
        ctx.registry.add(PendingTable(
            key="comparison_effects", sheet="Weighted effects",
            title=f"Weighted effect on the {glab[prog]} group (ATT) beside the adjusted odds ratio",
            raw=et[["outcome", *counts, *stat_cols]], count_columns=counts,
            margins={"complements": [(f"n|{g}", f"events|{g}") for g in gs]},
            dependent={c: dep for c in stat_cols}, ids=eff_ids,
            columns=("outcome", "risk_T", "risk_C", "rd", "rd_lower", "rd_upper", "or_", "or_lower", "or_upper",
                     "evalue", "evalue_ci"),
            labels={"outcome": "Outcome", "risk_T": f"Risk, {glab[prog]}", "risk_C": "Risk had they not taken part",
                    "rd": "Weighted risk difference", "rd_lower": "RD lower", "rd_upper": "RD upper", "rr": "Risk ratio",
                    "or_": "Adjusted OR", "or_lower": "OR lower", "or_upper": "OR upper",
                    "evalue": "E-value", "evalue_ci": "E-value (CI)"},
            percent_columns=("risk_T", "risk_C", "rd", "rd_lower", "rd_upper"),
            measure={"definition": "Inverse-probability-weighted (ATT) risks and risk difference "
                                   "(causal.treatment_effect, method='ipw', robust SEs allowing for the estimated "
                                   "propensity score); adjusted odds ratio from logistic regression "
                                   "(regression.odds_ratios); E-value of the risk ratio (VanderWeele & Ding 2017).",
                     "as_of": as_of, "estimand": ESTIMAND},
        ))

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.causal import plot_overlap_counts
        from recoverystats.plotting.matching import plot_love_table

        prog_l, ref_l = glab[prog], glab[ref]
        adjust_text = ", ".join(ctx.labels.variable(a).split(" (")[0].lower() for a in covs)
        intro = (f"The {ref_l} group was not formed by random assignment"
                 + (f" ({design.replace('_', ' ')} comparison)" if design else
                    " (the report configuration does not state the design; [design] comparison)")
                 + f", so its members may differ from the {prog_l} group in ways that also affect outcomes. "
                 f"To compare like with like on measured characteristics ({adjust_text}), each {ref_l} participant "
                 f"is weighted by the odds of being in the {prog_l} group given their characteristics (propensity-"
                 f"score weights for the effect on the {prog_l} group's participants, the ATT). The weighting works "
                 "when the groups overlap (both have people with similar scores) and the standardized mean "
                 "differences (SMD) after weighting are small (below 0.1 is the usual mark).")
        hide = ctx.min_cell if ctx.suppress else 1
        bullets = tuple(_hide_small_numbers(n, hide) for n in [*notes, *ctx.notes.get("comparison", [])])
        out: list[Any] = [TextBlock(paragraphs=(intro,), bullets=bullets)]
        if "comparison_balance" in blocks or "comparison_balance_continuous" in blocks:
            srcs = tuple(k for k in ("comparison_balance_continuous", "comparison_balance") if k in blocks)
            parts = [blocks[k] for k in srcs]
            nrows = sum(len(b.display_rows if b.display_rows is not None else b.data) for b in parts)
            out.append(_figure("love", "Balance before and after weighting (SMD)", lambda ax: plot_love_table(
                parts, ax=ax, labels=ctx.labels), figsize=(7.5, max(3.0, 0.28 * nrows + 1.4)), sources=srcs))
            out.extend(parts)
        if "comparison_overlap" in blocks:
            ob = blocks["comparison_overlap"]
            out.append(_figure("overlap", "Overlap of the propensity scores", lambda ax: plot_overlap_counts(
                _long_counts(ob, prog, ref), ax=ax, labels=(prog_l, ref_l),
                title="Propensity score by group (published counts)"), sources=("comparison_overlap",)))
            out.append(ob)
        if "comparison_effects" in blocks:
            eb = blocks["comparison_effects"]
            out.append(eb)
            paras = []
            for i in range(len(eb.data)):
                label = str(eb.data.iloc[i]["outcome"])
                if bool(eb.mask.iloc[i].any()) or not np.isfinite(float(eb.data.iloc[i]["rd"])):
                    paras.append(f"{label.capitalize()}: withheld (it would reveal a suppressed count) or not "
                                 "estimated.")
                    continue
                r = eb.data.iloc[i]
                conf = f"{cfg.conf_level:.0%}"
                text = (f"{label.capitalize()}: among the {prog_l} group, the weighted risk was {r['risk_T']:.1%} "
                        f"against {r['risk_C']:.1%} estimated had they not taken part, a difference of "
                        f"{100 * r['rd']:+.1f} percentage points ({conf} CI {100 * r['rd_lower']:+.1f} to "
                        f"{100 * r['rd_upper']:+.1f})")
                if np.isfinite(float(r["or_"])):
                    text += (f"; the regression-adjusted odds ratio is {r['or_']:.2f} ({conf} CI "
                             f"{r['or_lower']:.2f} to {r['or_upper']:.2f})")
                text += ". "
                ev, evc = float(r["evalue"]), float(r["evalue_ci"])
                if np.isfinite(ev):
                    text += (f"An unmeasured characteristic would have to be associated with both taking part and "
                             f"{label.split(' within')[0]} by a risk ratio of {ev:.2f} each, beyond the measured "
                             "characteristics, to explain the estimate away (E-value)")
                    text += ("; the interval already includes no difference, so no unmeasured confounding is "
                             "needed to make it compatible with no effect." if np.isfinite(evc) and evc <= 1.0
                             else f"; one of {evc:.2f} would move the {conf} interval to include no difference."
                             if np.isfinite(evc) else ".")
                paras.append(text)
            paras += [_hide_small_numbers(n, hide) for n in eff_notes]
            out.append(TextBlock(heading="What the weighted comparison shows", paragraphs=tuple(paras)))
        return Section("comparison", "Comparison-group balance and weighted effects", tuple(out))

    return section
