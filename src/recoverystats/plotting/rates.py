"""Figures for rates: point estimates with CI whiskers, comparisons, and control charts.

matplotlib is imported lazily inside :func:`recoverystats.plotting.style.new_axes`;
nothing here reads pyplot global state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.plotting.style import MARKERS, new_axes, palette, style_axes

__all__ = ["plot_rates", "plot_comparison", "plot_trend", "plot_smd"]


def _row_labels(table: pd.DataFrame, by: tuple[str, ...]) -> list[str]:
    from recoverystats.schema.labels import Labels

    if not by:
        return ["All"]
    lab = Labels()
    return [" / ".join(lab.known(v, field=c) if isinstance(v, str) else str(v) for c, v in zip(by, row, strict=False))
            for row in table[list(by)].itertuples(index=False)]


def _words(name: Any) -> str:
    from recoverystats.schema.labels import column_words

    return column_words(name)


def plot_rates(
    result: Any, ax: Any = None, *, title: str | None = None, percent: bool | None = None
) -> Any:
    """Dot-and-whisker plot of a :class:`~recoverystats.results.rates.RateResult`.

    One horizontal row per group: the estimate as a marker and the CI as a whisker.
    Proportions are drawn as percentages (``percent=True`` by default for proportions).
    Groups with ``n = 0`` are listed but have no marker.
    """
    ax = new_axes(ax)
    t = result.table
    labels = _row_labels(t, tuple(result.by))
    if percent is None:
        percent = result.kind == "proportion"
    scale = 100.0 if percent else 1.0
    y = np.arange(len(t))[::-1]
    est = t["estimate"].to_numpy(float) * scale
    lo = t["ci_lower"].to_numpy(float) * scale
    hi = t["ci_upper"].to_numpy(float) * scale
    first_by = result.by[0] if result.by else None
    colour_keys = list(pd.unique(t[first_by])) if first_by else [None]
    for i in range(len(t)):
        if not np.isfinite(est[i]):
            continue
        key = t[first_by].iloc[i] if first_by else None
        colour = palette(colour_keys.index(key))
        ax.plot([lo[i], hi[i]], [y[i], y[i]], color=colour, linewidth=1.6, solid_capstyle="butt")
        ax.plot([est[i]], [y[i]], marker="o", color=colour, markersize=6, linestyle="none")
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.6, len(t) - 0.4)
    if result.kind == "proportion":
        ax.set_xlim(0, 100 if percent else 1)
        xlabel = (f"{_words(result.outcome)} ({'%' if percent else 'proportion'}), {result.conf_level:.0%} CI "
                  f"({result.method})")
    else:
        unit = f" per {result.per:g}" if result.per != 1 else ""
        xlabel = f"{_words(result.outcome)}: rate{unit}, {result.conf_level:.0%} CI"
        finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
        ax.set_xlim(0, float(finite.max()) * 1.05 if len(finite) else 1)
    default = (f"{_words(result.outcome)} by {', '.join(_words(b).lower() for b in result.by)}" if result.by
               else _words(result.outcome))
    style_axes(ax, title=title or default, xlabel=xlabel, n=result.n_used)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax


def plot_comparison(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Forest-style plot of a :class:`~recoverystats.results.rates.ComparisonResult`.

    Estimates with CI whiskers, one row per comparison, a dashed vertical line at the
    null value (0 for a risk difference, 1 for ratios, which use a log axis).
    """
    ax = new_axes(ax)
    t = result.table
    y = np.arange(len(t))[::-1]
    est = t["estimate"].to_numpy(float)
    lo = t["ci_lower"].to_numpy(float)
    hi = t["ci_upper"].to_numpy(float)
    ratio = result.measure != "rd"
    for i in range(len(t)):
        if not np.isfinite(est[i]) or (ratio and est[i] <= 0):
            continue
        upper = hi[i] if np.isfinite(hi[i]) else np.nanmax(np.where(np.isfinite(hi), hi, est)) * 10
        lower = lo[i] if (not ratio or lo[i] > 0) else est[i] / 100
        ax.plot([lower, upper], [y[i], y[i]], color=palette(0), linewidth=1.6)
        ax.plot(
            [est[i]], [y[i]], marker=MARKERS[1], color=palette(0), markersize=6, linestyle="none"
        )
    ax.axvline(
        result.null_value, color="#555555", linestyle="--", linewidth=1.0, label="no difference"
    )
    if ratio:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    ax.set_yticks(y)
    ax.set_yticklabels(t["comparison"].astype(str).tolist())
    ax.set_ylim(-0.6, len(t) - 0.4)
    names = {"rd": "Risk difference", "rr": "Risk ratio", "or": "Odds ratio", "irr": "Rate ratio"}
    xlabel = f"{names.get(result.measure, result.measure)} ({result.conf_level:.0%} CI)"
    style_axes(
        ax,
        title=title or f"{names.get(result.measure, result.measure)} by {result.group}",
        xlabel=xlabel,
        n=result.n_used,
    )
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax


def plot_trend(
    result: Any, ax: Any = None, *, title: str | None = None, percent: bool = True
) -> Any:
    """Control chart of a :class:`~recoverystats.results.rates.TrendResult`.

    Per series: the proportions joined by a line, the centre line, the 3-sigma limits
    as steps (they vary with each period's n), and the special-cause signals circled
    in red (a point outside the limits, or part of a run on one side of the centre).
    """
    ax = new_axes(ax)
    t = result.table
    scale = 100.0 if percent else 1.0
    by = list(result.by)
    series = list(t.groupby(by, sort=False, observed=True)) if by else [((), t)]
    periods = list(dict.fromkeys(t["period"]))
    xpos = {p: i for i, p in enumerate(periods)}
    for k, (key, part) in enumerate(series):
        colour = palette(k)
        x = part["period"].map(xpos).to_numpy(float)
        yv = part["estimate"].to_numpy(float) * scale
        name = (
            " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            if by
            else result.outcome
        )
        ax.plot(
            x,
            yv,
            marker=MARKERS[k % len(MARKERS)],
            color=colour,
            linewidth=1.4,
            markersize=5,
            label=name,
        )
        ax.plot(
            x,
            part["centre"].to_numpy(float) * scale,
            color=colour,
            linewidth=1.0,
            linestyle="-",
            alpha=0.7,
            label="_centre",
        )
        for col in ("ucl", "lcl"):
            ax.step(
                x,
                part[col].to_numpy(float) * scale,
                where="mid",
                color=colour,
                linewidth=0.9,
                linestyle="--",
                alpha=0.8,
                label=f"_{col}",
            )
        sig = part["signal"].to_numpy(bool)
        if sig.any():
            ax.plot(
                x[sig],
                yv[sig],
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor="#D00000",
                markeredgewidth=1.6,
                linestyle="none",
                label="_signal",
            )
    ax.set_xticks(range(len(periods)))
    ax.set_xticklabels(
        periods,
        rotation=45 if len(periods) > 8 else 0,
        ha="right" if len(periods) > 8 else "center",
    )
    ax.set_ylim(0, 100 if percent else 1)
    chart = "Laney p' chart" if (t["chart"] == "laney").any() else "p chart"
    ylabel = f"{_words(result.outcome)} ({'%' if percent else 'proportion'})"
    style_axes(
        ax,
        title=title or f"{_words(result.outcome)}: {chart} by period",
        xlabel="Period",
        ylabel=ylabel,
        n=result.n_used,
    )
    if by or t["signal"].any():
        from matplotlib.lines import Line2D

        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="#555555", linestyle="--", linewidth=0.9))
        labels.append("3-sigma limits")
        if t["signal"].any():
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    markerfacecolor="none",
                    markeredgecolor="#D00000",
                    linestyle="none",
                    markersize=9,
                )
            )
            labels.append("special-cause signal")
        ax.legend(handles, labels, frameon=False, loc="best")
    return ax


def plot_smd(
    result: Any, ax: Any = None, *, title: str | None = None, threshold: float = 0.1
) -> Any:
    """ "Love plot" of a :class:`~recoverystats.results.rates.TableOneResult`: the SMD of
    every variable, with a dashed line at ``threshold`` (0.1, Austin 2009)."""
    ax = new_axes(ax)
    t = result.table
    if "smd" not in t.columns:
        from recoverystats.errors import InvalidParameterError

        raise InvalidParameterError(
            "result: this Table 1 was made with smd=False; call table_one(..., smd=True) to plot SMDs."
        )
    per_var = t[t["kind"] != "count"].groupby("variable", sort=False)["smd"].first().dropna()
    y = np.arange(len(per_var))[::-1]
    ax.plot(per_var.to_numpy(float), y, marker="o", linestyle="none", color=palette(0), label="SMD")
    ax.axvline(
        threshold, color="#555555", linestyle="--", linewidth=1.0, label=f"SMD = {threshold:g}"
    )
    ax.set_yticks(y)
    ax.set_yticklabels(per_var.index.astype(str).tolist())
    ax.set_ylim(-0.6, len(per_var) - 0.4)
    upper = max(float(per_var.max()) if len(per_var) else 0.0, threshold) * 1.15
    ax.set_xlim(0, upper)
    style_axes(
        ax,
        title=title or f"Standardized mean differences by {result.group}",
        xlabel="Absolute standardized mean difference",
        n=result.n_used,
    )
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax
