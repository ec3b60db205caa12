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


def _group_text(labels: Any, g: Any) -> str:
    """A group code in words (``labels``: a :class:`~recoverystats.schema.labels.Labels`, or None)."""
    if labels is None or not isinstance(g, str):
        return str(g)
    return labels.code(g, field="group")


def _count_text(v: Any) -> str:
    f = _num(v)
    return SUPPRESSED if np.isnan(f) else f"{int(round(f)):,}"


def _flow_sub(row: Any) -> str:
    """'n of N <who> (pct)' for one flow row (suppressed numbers shown as '*')."""
    pct = _num(getattr(row, "pct", np.nan))
    who = str(getattr(row, "of_label", "") or "")
    of = _count_text(row.of) + (f" {who}" if who else "")
    return f"{_count_text(row.n)} of {of}" + ("" if np.isnan(pct) else f" ({pct:.0%})")


def plot_flow(flow: pd.DataFrame, reasons: pd.DataFrame | None = None, ax: Any = None, *,
              as_of: Any = None) -> Any:
    """Program flow diagram: one box per stage, arrows down, discharge reasons at the side.

    Parameters
    ----------
    flow
        Columns ``stage, n, of, pct`` and optionally ``of_label`` (who the denominator is,
        e.g. ``"in peer_mentoring"``); ``<NA>`` = suppressed. Consecutive rows with the same
        stage (one per mentored group) share one box.
    reasons
        Columns ``reason, n`` with a ``Total`` row (discharges by reason), optional.

    Every text lies inside its box and inside the figure: the boxes are sized from the
    drawn text, and the axes grow to hold the discharge-reasons box.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = new_axes(ax, figsize=(7.5, 5.2))
    # one box per stage (rows of a stage split by mentored group are listed in one box)
    stages: list[tuple[str, list[str]]] = []
    for i, row in enumerate(flow.itertuples(index=False)):
        line = _count_text(row.n) if i == 0 and np.isnan(_num(row.of)) else _flow_sub(row)
        if stages and stages[-1][0] == row.stage:
            stages[-1][1].append(line)
        else:
            stages.append((str(row.stage), [line]))
    step = 1.3
    heights = [0.8 + 0.3 * (len(lines) - 1) for _, lines in stages]
    box_w, x0 = 5.0, 0.3
    ax.set_xlim(0, 10)
    ys: list[float] = []
    y = 0.0
    for h in reversed(heights):  # bottom-up positions
        ys.insert(0, y)
        y += h + (step - 0.8)
    top = y - (step - 0.8)
    ax.set_ylim(-0.3, top + 0.3)
    ax.axis("off")
    for i, ((stage, lines), y, h) in enumerate(zip(stages, ys, heights, strict=True)):
        ax.add_patch(FancyBboxPatch((x0, y), box_w, h, boxstyle="round,pad=0.05",
                                    facecolor="#e8f1f8", edgecolor=palette(0), linewidth=1.2))
        ax.text(x0 + box_w / 2, y + h / 2, stage + "\n" + "\n".join(lines), ha="center", va="center", fontsize=9)
        if i > 0:
            ax.add_patch(FancyArrowPatch((x0 + box_w / 2, ys[i - 1]), (x0 + box_w / 2, y + h + 0.05),
                                         arrowstyle="-|>", mutation_scale=12, color="#555555"))
    if reasons is not None and len(reasons):
        body = reasons[reasons["reason"] != "Total"]
        lines = [f"{str(r.reason).replace('_', ' ')}: {_count_text(r.n)}" for r in body.itertuples(index=False)]
        rx = 5.9
        mid = ys[-1] + heights[-1] / 2
        box = FancyBboxPatch((rx, mid), 3.8, 0.1, boxstyle="round,pad=0.05", facecolor="#fbeee6",
                             edgecolor=palette(1), linewidth=1.0)
        ax.add_patch(box)
        txt = ax.text(rx + 0.15, mid, "Discharge reasons\n" + "\n".join(lines), ha="left", va="center", fontsize=8)
        ax.add_patch(FancyArrowPatch((x0 + box_w, mid), (rx, mid), arrowstyle="-|>",
                                     mutation_scale=10, color="#555555"))
        _fit_box_to_text(ax, box, txt, pad=0.12)
    n = _num(flow["n"].iloc[0]) if len(flow) else float("nan")
    style_axes(ax, title="Program flow", n=None if np.isnan(n) else int(n), as_of=as_of)
    ax.grid(False)
    return ax


def _fit_box_to_text(ax: Any, box: Any, txt: Any, *, pad: float) -> None:
    """Size ``box`` around the drawn extent of ``txt`` (data units) and fit the axes limits
    around it (the y-limits grow to hold it; the x-limit ends just right of it). New
    limits rescale the text's extent in data units, so this repeats until it is stable."""
    fig = ax.figure

    def measure() -> tuple[float, float, float, float]:
        fig.draw_without_rendering()
        bb = txt.get_window_extent(fig._get_renderer()).transformed(ax.transData.inverted())
        x0, y0, x1, y1 = bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad
        box.set_bounds(x0, y0, max(x1 - x0, 0.1), y1 - y0)
        return x0, y0, x1, y1

    ylo0, yhi0 = ax.get_ylim()
    for _ in range(8):
        _, y0, x1, y1 = measure()
        want_x = (ax.get_xlim()[0], x1 + 0.25)
        want_y = (min(ylo0, y0 - 0.15), max(yhi0, y1 + 0.15))
        if np.allclose([*want_x, *want_y], [*ax.get_xlim(), *ax.get_ylim()], atol=1e-3):
            return
        ax.set_xlim(*want_x)
        ax.set_ylim(*want_y)
    measure()


def plot_enrollment(enrollment: pd.DataFrame, census: pd.DataFrame, groups: Sequence[str], ax: Any = None, *,
                    as_of: Any = None, n: int | None = None, labels: Any = None) -> Any:
    """New enrollments per quarter (bars, by group) and the active census (line)."""
    ax = new_axes(ax)
    e = enrollment[enrollment["period"] != "Total"].reset_index(drop=True)
    x = np.arange(len(e))
    width = 0.8 / max(len(groups), 1)
    from matplotlib.transforms import blended_transform_factory

    bottom = blended_transform_factory(ax.transData, ax.transAxes)  # '*' at the foot of the axes
    proxies: list[Any] = []
    for j, g in enumerate(groups):
        vals = np.array([_num(v) for v in e[f"new_{g}"]])
        xs = x - 0.4 + width * (j + 0.5)
        ok = ~np.isnan(vals)
        if ok.any():
            ax.bar(xs[ok], vals[ok], width=width * 0.95, color=palette(j), label=f"new: {_group_text(labels, g)}")
        else:  # nothing to draw: a legend entry in the group's colour still says so
            from matplotlib.patches import Patch

            proxies.append(Patch(color=palette(j), label=f"new: {_group_text(labels, g)} (all suppressed)"))
        for xx in xs[~ok]:
            ax.text(xx, 0.01, SUPPRESSED, ha="center", va="bottom", fontsize=9, transform=bottom)
    if census is not None and len(census):
        tot = np.array([_num(v) for v in census["active_total"]])
        ok = ~np.isnan(tot)
        ax.plot(x[ok], tot[ok], color="#333333", marker="o", linestyle="-", label="active at quarter end")
    ax.set_xticks(x, list(e["period"]), rotation=45, ha="right")
    ax.set_xlim(-0.6, len(e) - 0.4)
    ax.set_ylim(bottom=0)  # bars start at zero (and the census line is read against it)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.25)  # headroom for the legend above the census line
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + proxies, frameon=False, loc="upper left")
    style_axes(ax, title="Enrollment and census", xlabel="Quarter", ylabel="Participants", n=n, as_of=as_of)
    return ax


def plot_retention(table: pd.DataFrame, ax: Any = None, *, as_of: Any = None, n: int | None = None,
                   labels: Any = None) -> Any:
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
                    color=palette(j), capsize=3, linestyle="none", label=_group_text(labels, g))
        for xx in xs[~ok]:
            ax.text(xx, 0.02, SUPPRESSED, ha="center", fontsize=10)
    ax.set_xticks(x, [f"{d} days" for d in days])
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="best")  # never over a point, a whisker or a '*'
    style_axes(ax, title="Retention by group", ylabel="Retained (95% CI)", n=n, as_of=as_of)
    return ax


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def plot_pchart(table: pd.DataFrame, ax: Any = None, *, title: str = "", as_of: Any = None) -> Any:
    """Quarterly p-chart from a published trend table (``period, n, events, estimate, centre, lcl, ucl``).

    Suppressed periods (estimate ``NaN``) are not drawn: no point and no control limits
    (a period of a few people has limits so wide they would dwarf the chart, and its point
    is hidden anyway); their x position is marked '*', and the line is broken there rather
    than drawn across the gap. Limits are drawn per period as short horizontal segments.
    """
    ax = new_axes(ax)
    t = table[table["period"] != "Total"].reset_index(drop=True)
    x = np.arange(len(t))
    est = t["estimate"].map(_num).to_numpy()
    lcl = t["lcl"].map(_num).to_numpy()
    ucl = t["ucl"].map(_num).to_numpy()
    centre = t["centre"].map(_num).to_numpy()
    ok = ~np.isnan(est)
    ax.plot(x[ok], est[ok], marker="o", color=palette(0), linestyle="none", label="quarterly proportion",
            zorder=3)
    # join consecutive shown periods only (a suppressed period breaks the line)
    run: list[int] = []
    for i in [*range(len(t)), len(t)]:
        if i < len(t) and ok[i]:
            run.append(i)
            continue
        if len(run) > 1:
            ax.plot(x[run], est[run], color=palette(0), linestyle="-", zorder=2)
        run = []
    sig = t["signal"].map(_num).to_numpy() if "signal" in t else np.zeros(len(t))
    flag = ok & (sig == 1)
    if flag.any():
        ax.plot(x[flag], est[flag], marker="o", color=palette(1), linestyle="none", markersize=9,
                label="special-cause signal", zorder=4)
    lim_ok = ok & ~np.isnan(lcl) & ~np.isnan(ucl)
    if lim_ok.any():
        half = 0.35
        ax.hlines(ucl[lim_ok], x[lim_ok] - half, x[lim_ok] + half, color="#777777", linestyle=LINESTYLES[1],
                  linewidth=1.2, label="3-sigma limits")
        ax.hlines(lcl[lim_ok], x[lim_ok] - half, x[lim_ok] + half, color="#777777", linestyle=LINESTYLES[1],
                  linewidth=1.2)
    c = centre[~np.isnan(centre)]
    if c.size:
        ax.axhline(c[0], color="#333333", linewidth=1, label="centre")
    for xx in x[~ok]:
        ax.text(xx, 0.01, SUPPRESSED, ha="center", fontsize=10)
    if len(t) and not ok.any():
        ax.text(0.5, 0.55, "Every quarter is suppressed (small counts):\nno proportion can be shown.",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")
    if (~ok).any():
        # a legend entry says what the '*' means (no point, no limits)
        ax.plot([], [], linestyle="none", marker="$*$", color="#333333",
                label="suppressed period (no point or limits)")
    ax.set_xticks(x, list(t["period"]), rotation=45, ha="right")
    ax.set_xlim(-0.6, len(t) - 0.4)
    top = np.nanmax(np.r_[est[ok], ucl[lim_ok]]) if ok.any() else 1.0
    # headroom above the highest point or limit for the legend (two columns, top right)
    want = top * 1.3 + 0.03 if ok.any() else 1.0
    ax.set_ylim(0, max(min(1.0, want), 0.05))
    ax.yaxis.set_major_formatter(_percent_formatter())
    if want <= 1.0:
        ax.legend(frameon=False, fontsize=8, loc="upper right", ncol=2)
    else:  # no room above the limits (tiny quarters, unsuppressed): the legend goes beside the chart
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    n_total = _num(table.loc[table["period"] == "Total", "n"].iloc[0]) if (table["period"] == "Total").any() else np.nan
    style_axes(ax, title=f"{title}: p-chart", xlabel="Quarter the outcome window closed", ylabel="Proportion",
               n=None if np.isnan(n_total) else int(n_total), as_of=as_of)
    return ax


def _or_ticks(lo: float, hi: float) -> list[float]:
    """Readable odds-ratio ticks (0.25, 0.5, 1, 2, 4 ...) covering [lo, hi] on a log axis."""
    wide = np.log10(hi) - np.log10(lo) > 1.6
    base = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0] if wide else \
        [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    return [v for v in base if lo <= v <= hi] or [1.0]


def plot_forest(table: pd.DataFrame, ax: Any = None, *, as_of: Any = None,
                terms: Sequence[str] | None = None) -> Any:
    """Forest plot of adjusted odds ratios (``outcome, term, estimate, ci_lower, ci_upper``), log axis.

    ``terms`` gives the y-axis labels (the report passes the terms in words, e.g.
    "Gender: Female (vs Male)"); by default the ``term`` column as it is.

    Terms of each outcome form one block (coloured and headed by the outcome when there
    are several); the x axis has plain odds-ratio ticks (0.25, 0.5, 1, 2, 4 ...).
    """
    ax = new_axes(ax, figsize=(7.5, max(3.0, 0.28 * len(table) + 1.4)))
    t = table.reset_index(drop=True)
    k = len(t)
    outcomes = list(dict.fromkeys(t["outcome"]))
    several = len(outcomes) > 1
    # a gap row before each block after the first, so blocks read as groups
    y = np.empty(k, dtype=float)
    pos, prev = 0.0, None
    for i, o in enumerate(t["outcome"]):
        if several and prev is not None and o != prev:
            pos += 1.0
        y[i] = -pos
        pos += 1.0
        prev = o
    y = y - y.min()
    lo_all, hi_all = [], []
    for j, o in enumerate(outcomes):
        m = (t["outcome"] == o).to_numpy()
        est = t.loc[m, "estimate"].map(_num).to_numpy()
        lo = np.clip(t.loc[m, "ci_lower"].map(_num).to_numpy(), 1e-3, 1e3)
        hi = np.clip(t.loc[m, "ci_upper"].map(_num).to_numpy(), 1e-3, 1e3)
        lo_all.extend(lo[~np.isnan(lo)])
        hi_all.extend(hi[~np.isnan(hi)])
        ax.hlines(y[m], lo, hi, color=palette(j), linewidth=1.5)
        ax.plot(est, y[m], marker=MARKERS[j % len(MARKERS)], color=palette(j), linestyle="none", label=o)
        for yy in y[m][np.isnan(est)]:  # suppressed: a small covariate level
            ax.text(1.0, yy, f" {SUPPRESSED} suppressed", va="center", ha="left", fontsize=8, color="#555555")
    ax.axvline(1.0, color="#333333", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    lo_v = min([*lo_all, 0.8]) / 1.15
    hi_v = max([*hi_all, 1.25]) * 1.15
    ax.set_xlim(lo_v, hi_v)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(_or_ticks(lo_v, hi_v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_yticks(y, [str(s) for s in (t["term"] if terms is None else terms)])
    ax.set_ylim(-0.7, y.max() + 0.7)
    if several:
        from matplotlib.transforms import blended_transform_factory

        tr = blended_transform_factory(ax.transAxes, ax.transData)
        for j, o in enumerate(outcomes):
            m = (t["outcome"] == o).to_numpy()
            ax.text(0.01, y[m].max() + 0.75, str(o), transform=tr, ha="left", va="center", fontsize=9,
                    fontweight="bold", color=palette(j), zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5})
        ax.set_ylim(-0.7, y.max() + 1.3)
    else:
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    style_axes(ax, title="Adjusted odds ratios (95% CI)", xlabel="Odds ratio (log scale; < 1 = lower odds)",
               as_of=as_of)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax


def plot_km(table: pd.DataFrame, ax: Any = None, *, min_at_risk: int = 11, title: str = "", as_of: Any = None,
            n: int | None = None, group_col: str = "group", labels: Any = None) -> Any:
    """Kaplan-Meier step curves with CI bands, by group (no censoring marks).

    ``table`` has ``time, n_at_risk, estimate, ci_lower, ci_upper`` per step and group: in
    the report, the coarsened curve of :func:`recoverystats.privacy.figures.coarsen_km`
    (every step rests on at least ``min_cell`` events), never the exact curve of a
    ``SurvivalResult.table``, whose step heights give back each step's events and number at
    risk. Each curve stops at the last row with at least ``min_at_risk`` at risk. A curve
    starts at (0, 1) unless its first row is (0, 1). Censoring marks are not drawn: each
    would show the time at which one participant's follow-up ended.
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
        # (0, 1) starts the curve unless the table already has it (a coarsened curve's first row)
        start = [] if float(s["time"].iloc[0]) <= 0 and float(s["estimate"].iloc[0]) >= 1 else [0.0]
        one = [1.0] * len(start)
        t = np.r_[start, s["time"].to_numpy(float)]
        est = np.r_[one, s["estimate"].to_numpy(float)]
        lo = np.r_[one, s["ci_lower"].to_numpy(float)]
        hi = np.r_[one, s["ci_upper"].to_numpy(float)]
        ax.step(t, est, where="post", color=palette(j), linestyle=LINESTYLES[j % len(LINESTYLES)],
                label=_group_text(labels, g))
        ax.fill_between(t, np.nan_to_num(lo, nan=est[-1]), np.nan_to_num(hi, nan=est[-1]), step="post",
                        color=palette(j), alpha=0.15, linewidth=0)
        xmax = max(xmax, t[-1])
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(xmax, 1.0))
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="lower left")
    style_axes(ax, title=title, xlabel="Days since the index date", ylabel="Event-free (95% CI)", n=n, as_of=as_of)
    return ax


def plot_followup(table: pd.DataFrame, *, target: float, ax: Any = None, as_of: Any = None,
                  labels: Any = None) -> Any:
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
    # the target line is black, not a group colour (it must not read as one of the groups)
    ax.axhline(target, color="#000000", linestyle="--", linewidth=1.5, label=f"target {target:.0%}")
    ax.set_xticks(x, [_group_text(labels, g) for g in t["group"]])
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.legend(frameon=False, loc="upper right")  # above the bars (at the bottom it covered one)
    n = _num(t.loc[t["group"] == "Total", "n"].iloc[0]) if (t["group"] == "Total").any() else np.nan
    style_axes(ax, title="Six-month follow-up rate", ylabel="Completed in window (95% CI)",
               n=None if np.isnan(n) else int(n), as_of=as_of)
    return ax
