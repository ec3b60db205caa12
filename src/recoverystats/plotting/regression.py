"""Figures for :mod:`recoverystats.regression`: forest plots and the calibration plot.

matplotlib is imported lazily (through :func:`recoverystats.plotting.style.new_axes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.plotting.style import palette, style_axes

#: Fallback x-limits (odds-ratio scale) when an interval is infinite.
_OR_FLOOR, _OR_CEIL = 1e-3, 1e3


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "∞" if v > 0 else "0"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.3g}"


def _plain_log_ticks(ax: Any) -> None:
    """Log-axis tick labels as plain numbers (0.5, 1, 2) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _term_label(row: pd.Series, show_counts: bool = True) -> str:
    label = str(row["term"])
    ref = row.get("reference")
    if isinstance(ref, str):
        var = row.get("variable") or label.split("[")[0]
        lev = label[len(str(var)) + 1 : -1] if label.startswith(f"{var}[") else label
        label = f"{var}: {lev} vs {ref}"
    n, ev = row.get("n"), row.get("events")
    if show_counts and n is not None and not pd.isna(n):
        label += f" (n={int(n):,}, events={int(ev):,})"
    return label


def plot_odds_ratios(result: Any, ax: Any = None, *, include_intercept: bool = False,
                     annotate: bool = True, show_counts: bool = True, title: str | None = None) -> Any:
    """Forest plot of an :class:`~recoverystats.results.regression.OddsRatioResult`.

    One row per coefficient (exposure first, at the top), a point at the odds ratio and
    a horizontal line for its confidence interval, on a log x axis (plain-number tick
    labels) with a dashed reference line at OR = 1. Labels name each term's level and
    reference with its n and events (``show_counts=False`` leaves the counts out, e.g.
    for a public report where small cells must not appear); ``annotate`` writes
    "OR (lo, hi)" at the right. Returns the Axes (a fresh figure when ``ax`` is None;
    never ``plt.show()``).
    """
    from recoverystats.plotting.style import new_axes

    t = result.table
    if not include_intercept:
        t = t[t["term"] != "Intercept"]
    t = t.reset_index(drop=True)
    k = len(t)
    ax = new_axes(ax, figsize=(7.5, max(2.0, 0.45 * k + 1.3)))
    ypos = np.arange(k)[::-1].astype(float)
    est = t["estimate"].to_numpy(float)
    lo = np.clip(t["ci_lower"].to_numpy(float), _OR_FLOOR, _OR_CEIL)
    hi = np.clip(t["ci_upper"].to_numpy(float), _OR_FLOOR, _OR_CEIL)
    exposure = getattr(result, "exposure", None)
    colours = [palette(0) if (exposure is not None and v == exposure) else palette(7) for v in t["variable"]]
    for i in range(k):
        ax.plot([lo[i], hi[i]], [ypos[i], ypos[i]], color=colours[i], linewidth=1.6, solid_capstyle="butt")
    ax.scatter(est, ypos, marker="s", s=36, color=colours, zorder=3)
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1.0)
    ax.set_xscale("log")
    ax.set_yticks(ypos)
    ax.set_yticklabels([_term_label(r, show_counts) for _, r in t.iterrows()])
    finite = np.concatenate([lo, hi, est, [1.0]])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    xmin, xmax = finite.min() / 1.5, finite.max() * 1.5
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(-0.7, k - 0.3)
    _plain_log_ticks(ax)
    if annotate:
        trans = ax.get_yaxis_transform()
        for i in range(k):
            ax.text(1.02, ypos[i], f"{_fmt(est[i])} ({_fmt(t['ci_lower'].iloc[i])}, {_fmt(t['ci_upper'].iloc[i])})",
                    transform=trans, va="center", ha="left", fontsize=8)
    level = int(round(result.conf_level * 100))
    style_axes(ax, title=title or f"Adjusted odds ratios ({result.outcome})",
               xlabel=f"Odds ratio ({level}% CI, log scale)", n=result.n_used)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    return ax


def plot_standardised(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Forest plot of g-computation risk differences (line at 0) or risk ratios (log axis, line at 1)."""
    from recoverystats.plotting.style import new_axes

    t = result.table
    k = len(t)
    ax = new_axes(ax, figsize=(7.0, max(1.8, 0.45 * k + 1.3)))
    ypos = np.arange(k)[::-1].astype(float)
    ratio = type(result).__name__ == "RiskRatioResult"
    for i in range(k):
        ax.plot([t["ci_lower"].iloc[i], t["ci_upper"].iloc[i]], [ypos[i]] * 2, color=palette(0), linewidth=1.6)
    ax.scatter(t["estimate"], ypos, marker="s", s=36, color=palette(0), zorder=3)
    ax.axvline(1.0 if ratio else 0.0, color="#555555", linestyle="--", linewidth=1.0)
    if ratio:
        ax.set_xscale("log")
        _plain_log_ticks(ax)
    ax.set_yticks(ypos)
    ax.set_yticklabels(list(t["comparison"]))
    ax.set_ylim(-0.7, k - 0.3)
    level = int(round(result.conf_level * 100))
    style_axes(ax, title=title or ("Adjusted risk ratio" if ratio else "Adjusted risk difference"),
               xlabel=f"{'Risk ratio' if ratio else 'Risk difference'} ({level}% CI)", n=result.n_used)
    ax.grid(axis="y", visible=False)
    return ax


def plot_calibration(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Calibration plot of a :class:`DiagnosticsResult`: observed event rate vs mean
    predicted risk in each Hosmer-Lemeshow group, with the identity line."""
    from recoverystats.plotting.style import new_axes

    cal = result.calibration
    ax = new_axes(ax, figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="#555555", linestyle="--", linewidth=1.0)
    ax.plot(cal["mean_predicted"], cal["observed_rate"], marker="o", color=palette(0), linewidth=1.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    style_axes(ax, title=title or "Calibration", xlabel="Mean predicted risk", ylabel="Observed event rate",
               n=result.n_used)
    return ax
