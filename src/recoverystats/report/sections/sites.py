"""Report section (opt-in): the group effect at each site, pooled by a random-effects meta-analysis.

For a program with three or more sites: the odds ratio of the headline outcome (the first
recidivism level) between the program group and the reference group, fitted separately at
each site, and their random-effects pool (REML) with its prediction interval, as a table
and a forest plot.

Privacy
-------
Per-site counts (participants, events, and the same in the program group; the reference
group's counts and every non-event count are hidden differences that are protected too)
go through the joint suppression with an "All sites" total row linked to the outcome
table's published totals, so that a site's counts cannot be recovered by subtraction. A
site's odds ratio, CI and weight are suppressed with any of its counts. The pooled
estimate is a weighted average of the site estimates: published together with the other
sites' estimates and weights (or SEs) it would give a hidden site's estimate back, so the
pool is computed **only over the sites shown individually** (found by running the same
suppression on this table first) and is itself registered as a statistic derived from
exactly those sites' counts (so is each pooled site's weight, which is relative to all of
them): if the joint suppression later hides one of them (a cell linked to another table),
the pooled row and the weights are suppressed too. The section says which sites are pooled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import RecoveryStatsError
from recoverystats.report.model import PendingTable, Section, TableBlock, TextBlock
from recoverystats.report.sections._shared import TOTAL, _figure

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext

__all__ = ["build", "effect_table", "MIN_SITES"]

#: A program needs at least this many sites for the section.
MIN_SITES = 3
#: Label of the total row and of the pooled row.
ALL_LABEL = "All sites"
COUNTS = ("n", "events", "n_exposed", "events_exposed")
#: the hidden counts a reader could compute from a row: reference group n and events, and
#: the non-events of the reference group (the complements cover the other non-events)
HIDDEN = {"n_reference": {"n": 1.0, "n_exposed": -1.0},
          "events_reference": {"events": 1.0, "events_exposed": -1.0},
          "nonevents_reference": {"n": 1.0, "events": -1.0, "n_exposed": -1.0, "events_exposed": 1.0}}
_EFFECT_COLS = ("estimate", "ci_lower", "ci_upper")


def headline(ctx: ReportContext) -> tuple[str, str, str, pd.DataFrame]:
    """The headline outcome: its measure key, column, label and eligible rows of the two compared groups."""
    key = ctx.cfg.recidivism_levels[0]
    col = "recidivated"
    label = f"{key} within {ctx.cfg.recidivism_window} days"
    d = ctx.measures[key]
    d = d[d["eligible"].astype(bool) & d[col].notna()].copy()
    d["_group"] = d[ctx.cfg.group_column].astype("string").fillna("(missing)")
    return key, col, label, d


def compared_groups(ctx: ReportContext) -> tuple[str, str]:
    """(reference, exposed): the report's reference group and its first program group."""
    return ctx.reference, ctx.program_groups[0]


def effect_table(ctx: ReportContext, d: pd.DataFrame, *, part_col: str, parts: Sequence[Any], col: str, key: str,
                 part_label: str) -> tuple[pd.DataFrame, dict[tuple[int, str], Any]]:
    """Counts per part (site or subgroup level) and the total row, with cell ids linking the total
    row to the outcome table when it counts the same participants."""
    ref, exposed = compared_groups(ctx)
    rows = []
    for p in parts:
        s = d[d[part_col] == p]
        x = s["_group"] == exposed
        rows.append({part_label: str(p), "n": float(len(s)), "events": float(s[col].astype(float).sum()),
                     "n_exposed": float(x.sum()), "events_exposed": float(s.loc[x, col].astype(float).sum())})
    x = d["_group"] == exposed
    rows.append({part_label: ALL_LABEL if part_label == "site" else TOTAL, "n": float(len(d)),
                 "events": float(d[col].astype(float).sum()), "n_exposed": float(x.sum()),
                 "events_exposed": float(d.loc[x, col].astype(float).sum())})
    t = pd.DataFrame(rows)
    ids: dict[tuple[int, str], Any] = {}
    full = ctx.measures[key]
    full = full[full["eligible"].astype(bool) & full[col].notna()]
    i = len(t) - 1
    if len(full) == len(d):  # the two compared groups are all groups, and no part is missing
        ids[(i, "n")] = (f"out|{key}|{TOTAL}|n", f"elig|{TOTAL}|{len(d)}")
        ids[(i, "events")] = f"out|{key}|{TOTAL}|events"
    g = full[full[ctx.cfg.group_column].astype("string") == exposed]
    if len(g) == int(x.sum()):
        ids[(i, "n_exposed")] = (f"out|{key}|{exposed}|n", f"elig|{exposed}|{len(g)}")
        ids[(i, "events_exposed")] = f"out|{key}|{exposed}|events"
    return t, ids


def shown_rows(raw: pd.DataFrame, margins: dict[str, Any], min_cell: int, n_rows: int) -> list[int]:
    """The part rows (not the total) whose counts this table's own suppression leaves visible."""
    from recoverystats.privacy.suppress import suppress

    res = suppress(raw[[c for c in raw.columns if c not in _EFFECT_COLS]], count_columns=list(COUNTS),
                   min_cell=min_cell, margins=margins)
    return [i for i in range(n_rows) if not bool(res.mask.iloc[i][list(COUNTS)].any())]


def build(ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
    """Register the per-site table; return the composer (None: fewer than 3 sites)."""
    from recoverystats.regression import odds_ratios
    from recoverystats.synthesis import meta_analysis

    cfg = ctx.cfg
    key, col, label, d = headline(ctx)
    if "site" not in d.columns:
        ctx.warnings.append("Effect by site: the data has no site column; the section is left out.")
        return None
    ref, exposed = compared_groups(ctx)
    d = d[d["_group"].isin([ref, exposed]) & d["site"].notna()].copy()
    sites = sorted(d["site"].astype(str).unique().tolist())
    if len(sites) < MIN_SITES:
        ctx.warnings.append(f"Effect by site: {len(sites)} site(s) with participants in both groups' outcome "
                            f"data; the section needs at least {MIN_SITES} and is left out.")
        return None
    d["site"] = d["site"].astype(str)
    adjust = [a for a in cfg.adjust if a in d.columns and d[a].notna().any()]
    gcol = cfg.group_column
    d[gcol] = d["_group"]
    t, ids = effect_table(ctx, d, part_col="site", parts=sites, col=col, key=key, part_label="site")
    fits: dict[str, Any] = {}
    notes: list[str] = []

    def fit_all(covariates: list[str]) -> list[str]:
        failed = []
        for s in sites:
            sub = d[d["site"] == s]
            try:
                fits[s] = odds_ratios(sub, col, exposure=gcol, adjust=covariates, reference={gcol: ref},
                                      conf_level=cfg.conf_level, missing="drop")
            except RecoveryStatsError:
                fits.pop(s, None)
                failed.append(s)
        return failed

    failed = fit_all(adjust)
    if failed and adjust:
        # one estimand for every site: when the adjusted model fails at a site (few events,
        # sparse covariate levels), every site is fitted without adjustment, and the text says so
        notes.append("The adjusted model could not be estimated at every site (too few events for the "
                     "covariates), so every site's odds ratio is unadjusted.")
        adjust = []
        failed = fit_all(adjust)
    if failed:
        notes.append("A site's model could not be estimated (e.g. no events, or one group only); "
                     "it is shown without an odds ratio and not pooled.")
    for c in (*_EFFECT_COLS, "weight"):
        t[c] = np.nan
    for i, s in enumerate(sites):
        if s in fits:
            r = fits[s].table.iloc[0]
            t.loc[i, list(_EFFECT_COLS)] = [r["estimate"], r["ci_lower"], r["ci_upper"]]
    margins = {"total_row": {"site": ALL_LABEL}, "complements": [("n", "events"), ("n_exposed", "events_exposed")],
               "hidden": HIDDEN}
    k = len(sites)
    visible = shown_rows(t, margins, ctx.min_cell, k) if ctx.suppress else list(range(k))
    pooled_sites = [sites[i] for i in visible if sites[i] in fits]
    pool = None
    if len(pooled_sites) >= 2:
        try:
            pool = meta_analysis({s: fits[s] for s in pooled_sites}, method="REML", conf_level=cfg.conf_level)
        except RecoveryStatsError:
            pool = None
    pooled_row = {"site": "Pooled (random effects)", "n": np.nan, "events": np.nan, "n_exposed": np.nan,
                  "events_exposed": np.nan, "estimate": np.nan, "ci_lower": np.nan, "ci_upper": np.nan,
                  "weight": np.nan, "pi_lower": np.nan, "pi_upper": np.nan, "i2": np.nan, "tau2": np.nan,
                  "k_pooled": np.nan}
    derived: list[dict[str, Any]] = []
    if pool is not None:
        w = pool.table.set_index("label")["weight"]
        for i, s in enumerate(sites):
            if s in pooled_sites:
                t.loc[i, "weight"] = float(w[s]) / 100.0  # a proportion, shown as a percentage
        pooled_row.update(estimate=pool.estimate, ci_lower=pool.ci_lower, ci_upper=pool.ci_upper, weight=1.0,
                          pi_lower=pool.pi_lower, pi_upper=pool.pi_upper, i2=pool.i2, tau2=pool.tau2,
                          k_pooled=float(pool.k))
        inputs = [[sites.index(s), c] for s in pooled_sites for c in COUNTS]
        for c in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper", "i2", "tau2", "k_pooled"):
            derived.append({"row": k + 1, "column": c, "statistic": "meta_analysis_reml", "inputs": inputs,
                            "digits": None, "params": {"sites": pooled_sites}})
        # a site's weight is relative to every pooled site (1/(v_i + tau^2) over their sum): with a
        # pooled site hidden later, the shown weights would tell its variance, so they go together
        for si in pooled_sites:
            derived.append({"row": sites.index(si), "column": "weight", "statistic": "meta_analysis_weight",
                            "inputs": inputs, "digits": None, "params": {"sites": pooled_sites}})
    for c in ("pi_lower", "pi_upper", "i2", "tau2", "k_pooled"):
        t[c] = np.nan
    t = pd.concat([t, pd.DataFrame([pooled_row])], ignore_index=True)
    t.insert(0, "part", ["site"] * (k + 1) + ["pooled"])
    margins["by"] = ("part",)
    dep = list(COUNTS)
    ctx.registry.add(PendingTable(
        key="site_effects", sheet="Effect by site", title=f"Odds ratio of {label} by site (program vs reference)",
        raw=t, count_columns=COUNTS, margins=margins,
        dependent={"estimate": dep, "ci_lower": dep, "ci_upper": dep, "weight": dep},
        derived=derived, ids=ids,
        columns=("site", "n", "events", "estimate", "ci_lower", "ci_upper", "weight"),
        labels={"site": "Site", "n": "Participants", "events": "Events", "estimate": "OR",
                "ci_lower": "CI lower", "ci_upper": "CI upper", "weight": "Weight in the pool"},
        percent_columns=("weight",),
        measure={"definition": f"Per-site odds ratio of {label}, {exposed} vs {ref} (regression.odds_ratios, "
                               f"adjusted for {', '.join(adjust) or 'nothing'}), and their random-effects pool "
                               "(synthesis.meta_analysis, REML) over the sites shown individually.",
                 "as_of": ctx.as_of.date().isoformat(), "numerator": col, "denominator": "eligible"},
    ))
    excluded = [s for s in sites if s not in pooled_sites]

    def section(blocks: dict[str, TableBlock]) -> Section:
        from recoverystats.plotting.synthesis import plot_site_forest

        b = blocks["site_effects"]
        data = b.data
        pooled = data[data["part"] == "pooled"].iloc[0]
        pct = f"{cfg.conf_level:.0%}"
        paras = [
            f"The odds of {label} in the {ctx.labels.code(exposed, field='group')} group relative to the "
            f"{ctx.labels.code(ref, field='group')} group, estimated separately at each of the {k} sites "
            f"({'adjusted for ' + ', '.join(adjust) if adjust else 'unadjusted'}), and pooled across sites by a "
            "random-effects "
            "meta-analysis (REML). The pooled odds ratio is the average effect across sites; the prediction "
            "interval is the range in which the effect at a new, similar site is expected to lie."]
        if pd.notna(pooled["estimate"]):
            paras.append(
                f"Pooled over {int(pooled['k_pooled'])} sites: OR {pooled['estimate']:.2f} ({pct} CI "
                f"{pooled['ci_lower']:.2f} to {pooled['ci_upper']:.2f}); {pct} prediction interval "
                f"{pooled['pi_lower']:.2f} to {pooled['pi_upper']:.2f}; I² = {pooled['i2']:.0f}% of the "
                "variation between sites is beyond chance.")
        else:
            paras.append("No pooled estimate: fewer than two sites can be shown individually.")
        bullets = []
        if excluded:
            bullets.append(f"{len(excluded)} site(s) are not pooled: a site whose counts are suppressed, or whose "
                           "model could not be estimated, is left out of the pool as well (with the other sites' "
                           "estimates the pool would give its estimate back).")
        bullets += list(dict.fromkeys(notes))
        bullets.append("Site models are not clustered by mentor (too few mentors per site for cluster-robust "
                       "errors); with few sites the between-site variance is imprecise.")
        out: list[Any] = [TextBlock(paragraphs=tuple(paras), bullets=tuple(bullets))]
        site_rows = data[data["part"] == "site"]
        site_rows = site_rows[site_rows["site"] != ALL_LABEL]
        fig_rows = pd.concat([site_rows, data[data["part"] == "pooled"]])
        labels = [ctx.labels.code(s, field="site") if s in sites else str(s) for s in fig_rows["site"]]
        out.append(_figure("site_forest", "Effect by site", lambda ax: plot_site_forest(
            fig_rows, ax=ax, labels=labels, as_of=ctx.as_of), figsize=(7.5, max(3.0, 0.4 * len(fig_rows) + 1.4)),
            sources=("site_effects",)))
        out.append(b)
        return Section("sites", "Effect by site", tuple(out))

    return section
