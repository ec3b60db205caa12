"""Figures of the quarterly report, drawn from *published* (already suppressed) tables.

Every function takes the suppressed table, so a suppressed value can never be drawn:
suppressed points and bars are left out and marked "*" where a reader would look for
them. matplotlib is imported lazily through :func:`recoverystats.plotting.style.new_axes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.plotting.style import LINESTYLES, MARKERS, new_axes, palette, style_axes

__all__ = ["plot_flow", "plot_enrollment", "plot_retention", "plot_pchart", "plot_forest", "plot_km",
           "plot_followup"]

SUPPRESSED = "*"


def _num(v: Any) -> float:
    try:
        if v is None or v is pd.NA:
            return float("nan")
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _count_text(v: Any) -> str:
    f = _num(v)
    return SUPPRESSED if np.isnan(f) else f"{int(round(f)):,}"


def plot_flow(flow: pd.DataFrame, reasons: pd.DataFrame | None = None, ax: Any = None, *,
              as_of: Any = None) -> Any:
    """Program flow diagram: one box per stage, arrows down, discharge reasons at the side.

    Parameters
    ----------
    flow
        Columns ``stage, n, of, pct`` (the report's ``flow`` table; ``<NA>`` = suppressed).
    reasons
        Columns ``reason, n`` with a ``Total`` row (discharges by reason), optional.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = new_axes(ax, figsize=(7.5, 5.2))
    ax.set_xlim(0, 10)
    k = len(flow)
    ax.set_ylim(-0.5, k * 1.3)
    ax.axis("off")
    box_w, box_h, x0 = 4.6, 0.8, 0.4
    tops = []
    for i, row in enumerate(flow.itertuples(index=False)):
        y = (k - 1 - i) * 1.3
        tops.append(y)
        pct = _num(getattr(row, "pct", np.nan))
        sub = "" if np.isnan(_num(row.of)) and i == 0 else (
            f"{_count_text(row.n)} of {_count_text(row.of)}" + ("" if np.isnan(pct) else f" ({pct:.0%})"))
        text = f"{row.stage}\n{_count_text(row.n) if i == 0 else sub}"
        ax.add_patch(FancyBboxPatch((x0, y), box_w, box_h, boxstyle="round,pad=0.05",
                                    facecolor="#e8f1f8", edgecolor=palette(0), linewidth=1.2))
        ax.text(x0 + box_w / 2, y + box_h / 2, text, ha="center", va="center", fontsize=9)
        if i > 0:
            ax.add_patch(FancyArrowPatch((x0 + box_w / 2, tops[i - 1]), (x0 + box_w / 2, y + box_h + 0.05),
                                         arrowstyle="-|>", mutation_scale=12, color="#555555"))
    if reasons is not None and len(reasons):
        body = reasons[reasons["reason"] != "Total"]
        lines = [f"{r.reason.replace('_', ' ')}: {_count_text(r.n)}" for r in body.itertuples(index=False)]
        y = tops[-1]
        ax.add_patch(FancyBboxPatch((5.6, y - 0.1 * max(len(lines) - 2, 0)), 4.0, box_h + 0.18 * max(len(lines) - 2, 0),
                                    boxstyle="round,pad=0.05", facecolor="#fbeee6", edgecolor=palette(1), linewidth=1.0))
        ax.text(5.75, y + box_h / 2, "Discharge reasons\n" + "\n".join(lines), ha="left", va="center", fontsize=8)
        ax.add_patch(FancyArrowPatch((x0 + box_w, y + box_h / 2), (5.6, y + box_h / 2), arrowstyle="-|>",
                                     mutation_scale=10, color="#555555"))
    n = _num(flow["n"].iloc[0]) if len(flow) else float("nan")
    style_axes(ax, title="Program flow", n=None if np.isnan(n) else int(n), as_of=as_of)
    ax.grid(False)
    return ax


def plot_enrollment(enrollment: pd.DataFrame, census: pd.DataFrame, groups: Sequence[str], ax: Any = None, *,
                    as_of: Any = None, n: int | None = None) -> Any:
    """New enrollments per quarter (bars, by group) and the active census (line)."""
    ax = new_axes(ax)
    e = enrollment[enrollment["period"] != "Total"].reset_index(drop=True)
    x = np.arange(len(e))
    width = 0.8 / max(len(groups), 1)
    for j, g in enumerate(groups):
        vals = np.array([_num(v) for v in e[f"new_{g}"]])
        xs = x - 0.4 + width * (j + 0.5)
        ok = ~np.isnan(vals)
        ax.bar(xs[ok], vals[ok], width=width * 0.95, color=palette(j), label=f"new: {g}")
        for xx in xs[~ok]:
            ax.text(xx, 0, SUPPRESSED, ha="center", va="bottom", fontsize=9)
    if census is not None and len(census):
        tot = np.array([_num(v) for v in census["active_total"]])
        ok = ~np.isnan(tot)
        ax.plot(x[ok], tot[ok], color="#333333", marker="o", linestyle="-", label="active at quarter end")
    ax.set_xticks(x, list(e["period"]), rotation=45, ha="right")
    ax.legend(frameon=False, loc="upper left")
    style_axes(ax, title="Enrollment and census", xlabel="Quarter", ylabel="Participants", n=n, as_of=as_of)
    return ax


def plot_retention(table: pd.DataFrame, ax: Any = None, *, as_of: Any = None, n: int | None = None) -> Any:
    """Retention at each horizon by group: points with CI whiskers (suppressed -> '*')."""
    ax = new_axes(ax)
    t = table[table["group"] != "Total"]
    days = sorted(t["days"].unique())
    groups = list(dict.fromkeys(t["group"]))
    x = np.arange(len(days))
    step = 0.6 / max(len(groups), 1)
    for j, g in enumerate(groups):
        s = t[t["group"] == g].set_index("days").reindex(days)
        est = s["estimate"].map(_num).to_numpy()
        lo = s["ci_lower"].map(_num).to_numpy()
        hi = s["ci_upper"].map(_num).to_numpy()
        xs = x - 0.3 + step * (j + 0.5)
        ok = ~np.isnan(est)
        ax.errorbar(xs[ok], est[ok], yerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt=MARKERS[j % len(MARKERS)],
                    color=palette(j), capsize=3, linestyle="none", label=str(g))
        for xx in xs[~ok]:
            ax.text(xx, 0.02, SUPPRESSED, ha="center", fontsize=10)
    ax.set_xticks(x, [f"{d} days" for d in days])
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="lower left")
    style_axes(ax, title="Retention by group", ylabel="Retained (95% CI)", n=n, as_of=as_of)
    return ax


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def plot_pchart(table: pd.DataFrame, ax: Any = None, *, title: str = "", as_of: Any = None) -> Any:
    """Quarterly p-chart from a published trend table (``period, n, events, estimate, centre, lcl, ucl``).

    Suppressed periods (estimate ``NaN``) are not drawn; their x position is marked '*'.
    """
    ax = new_axes(ax)
    t = table[table["period"] != "Total"].reset_index(drop=True)
    x = np.arange(len(t))
    est = t["estimate"].map(_num).to_numpy()
    lcl = t["lcl"].map(_num).to_numpy()
    ucl = t["ucl"].map(_num).to_numpy()
    centre = t["centre"].map(_num).to_numpy()
    ok = ~np.isnan(est)
    ax.plot(x[ok], est[ok], marker="o", color=palette(0), linestyle="-", label="quarterly proportion")
    sig = t["signal"].map(_num).to_numpy() if "signal" in t else np.zeros(len(t))
    flag = ok & (sig == 1)
    if flag.any():
        ax.plot(x[flag], est[flag], marker="o", color=palette(1), linestyle="none", markersize=9,
                label="special-cause signal")
    lim_ok = ~np.isnan(lcl)
    ax.step(x[lim_ok], ucl[lim_ok], where="mid", color="#777777", linestyle=LINESTYLES[1], label="3-sigma limits")
    ax.step(x[lim_ok], lcl[lim_ok], where="mid", color="#777777", linestyle=LINESTYLES[1])
    c = centre[~np.isnan(centre)]
    if c.size:
        ax.axhline(c[0], color="#333333", linewidth=1, label="centre")
    for xx in x[~ok]:
        ax.text(xx, 0.01, SUPPRESSED, ha="center", fontsize=10)
    ax.set_xticks(x, list(t["period"]), rotation=45, ha="right")
    ax.set_ylim(0, max(1.0 if not ok.any() else min(1.0, np.nanmax(np.r_[est[ok], ucl[lim_ok]]) * 1.15 + 0.02), 0.05))
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    n_total = _num(table.loc[table["period"] == "Total", "n"].iloc[0]) if (table["period"] == "Total").any() else np.nan
    style_axes(ax, title=f"{title}: p-chart", xlabel="Quarter the outcome window closed", ylabel="Proportion",
               n=None if np.isnan(n_total) else int(n_total), as_of=as_of)
    return ax


def plot_forest(table: pd.DataFrame, ax: Any = None, *, as_of: Any = None) -> Any:
    """Forest plot of adjusted odds ratios (``outcome, term, estimate, ci_lower, ci_upper``), log axis."""
    ax = new_axes(ax, figsize=(7.5, max(3.0, 0.32 * len(table) + 1.2)))
    t = table.reset_index(drop=True)
    k = len(t)
    y = np.arange(k)[::-1].astype(float)
    outcomes = list(dict.fromkeys(t["outcome"]))
    for j, o in enumerate(outcomes):
        m = (t["outcome"] == o).to_numpy()
        est = t.loc[m, "estimate"].map(_num).to_numpy()
        lo = np.clip(t.loc[m, "ci_lower"].map(_num).to_numpy(), 1e-3, 1e3)
        hi = np.clip(t.loc[m, "ci_upper"].map(_num).to_numpy(), 1e-3, 1e3)
        ax.hlines(y[m], lo, hi, color=palette(j), linewidth=1.5)
        ax.plot(est, y[m], marker=MARKERS[j % len(MARKERS)], color=palette(j), linestyle="none", label=o)
        for yy in y[m][np.isnan(est)]:  # suppressed: a small covariate level
            ax.text(1.0, yy, f" {SUPPRESSED} suppressed", va="center", ha="left", fontsize=8, color="#555555")
    ax.axvline(1.0, color="#333333", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [str(s) for s in t["term"]])
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    style_axes(ax, title="Adjusted odds ratios (95% CI)", xlabel="Odds ratio (log scale)", as_of=as_of)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax


def plot_km(table: pd.DataFrame, ax: Any = None, *, min_at_risk: int = 11, title: str = "", as_of: Any = None,
            n: int | None = None, group_col: str = "group") -> Any:
    """Kaplan-Meier step curves with CI bands, by group, from a SurvivalResult ``.table``.

    Each curve stops at the last time with at least ``min_at_risk`` participants at risk,
    so the figure cannot show a step that rests on a small count.
    """
    ax = new_axes(ax)
    groups = list(dict.fromkeys(table[group_col])) if group_col in table else [None]
    xmax = 0.0
    for j, g in enumerate(groups):
        s = table if g is None else table[table[group_col] == g]
        s = s.sort_values("time")
        keep = s["n_at_risk"].to_numpy(float) >= min_at_risk
        s = s[keep]
        if not len(s):
            continue
        t = np.r_[0.0, s["time"].to_numpy(float)]
        est = np.r_[1.0, s["estimate"].to_numpy(float)]
        lo = np.r_[1.0, s["ci_lower"].to_numpy(float)]
        hi = np.r_[1.0, s["ci_upper"].to_numpy(float)]
        ax.step(t, est, where="post", color=palette(j), linestyle=LINESTYLES[j % len(LINESTYLES)], label=str(g))
        ax.fill_between(t, np.nan_to_num(lo, nan=est[-1]), np.nan_to_num(hi, nan=est[-1]), step="post",
                        color=palette(j), alpha=0.15, linewidth=0)
        xmax = max(xmax, t[-1])
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(xmax, 1.0))
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="lower left")
    style_axes(ax, title=title, xlabel="Days", ylabel="Event-free (95% CI)", n=n, as_of=as_of)
    return ax


def plot_followup(table: pd.DataFrame, *, target: float, ax: Any = None, as_of: Any = None) -> Any:
    """Follow-up rate by group (bars with CI) against the target line."""
    ax = new_axes(ax)
    t = table.reset_index(drop=True)
    x = np.arange(len(t))
    est = t["estimate"].map(_num).to_numpy()
    lo = t["ci_lower"].map(_num).to_numpy()
    hi = t["ci_upper"].map(_num).to_numpy()
    ok = ~np.isnan(est)
    colors = [palette(i) if g != "Total" else "#555555" for i, g in enumerate(t["group"])]
    ax.bar(x[ok], est[ok], color=[c for c, o in zip(colors, ok, strict=False) if o], width=0.6)
    ax.errorbar(x[ok], est[ok], yerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="none", ecolor="#333333", capsize=4)
    for xx in x[~ok]:
        ax.text(xx, 0.02, SUPPRESSED, ha="center", fontsize=12)
    ax.axhline(target, color=palette(1), linestyle="--", linewidth=1.5, label=f"target {target:.0%}")
    ax.set_xticks(x, [str(g) for g in t["group"]])
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="lower right")
    n = _num(t.loc[t["group"] == "Total", "n"].iloc[0]) if (t["group"] == "Total").any() else np.nan
    style_axes(ax, title="Six-month follow-up rate", ylabel="Completed in window (95% CI)",
               n=None if np.isnan(n) else int(n), as_of=as_of)
    return ax
