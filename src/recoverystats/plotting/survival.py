"""Survival figures: Kaplan-Meier and cumulative-incidence curves, hazard-ratio forest plot.

Curves are drawn as right-continuous steps with shaded pointwise CI bands and ``|``
censor marks; an at-risk table (numbers under observation at the tick times) is
written under the axis, one row per group, with counts below ``suppress_below``
shown as ``"<k"`` (small-cell suppression for reports).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.plotting.regression import _plain_log_ticks, _term_label
from recoverystats.plotting.style import FONT_SIZE, LINESTYLES, new_axes, palette, style_axes

__all__ = ["plot_survival", "plot_cumulative_incidence", "plot_hazard_ratios", "format_count"]

_ROW_HEIGHT = 0.075  # axes-fraction per at-risk row
_TABLE_GAP = 0.20  # axes-fraction between the x axis and the first at-risk row


def format_count(value: float, suppress_below: int | None) -> str:
    """An at-risk count for display: ``"<k"`` for 1..k-1 when suppressing, else an integer
    (``"—"`` when there is no count, as for curves pooled over imputed data sets)."""
    if value is None or not np.isfinite(float(value)):
        return "—"
    v = int(round(float(value)))
    if suppress_below is not None and 0 < v < suppress_below:
        return f"<{suppress_below}"
    return f"{v:,}"


def _check_suppress(suppress_below: int | None) -> int | None:
    if suppress_below is None:
        return None
    if isinstance(suppress_below, bool) or not isinstance(suppress_below, (int, np.integer)) or suppress_below < 1:
        raise InvalidParameterError(
            f"suppress_below must be a positive integer (e.g. 11 to show counts 1-10 as '<11') or None; "
            f"got {suppress_below!r}."
        )
    return int(suppress_below)


def _group_label(by: tuple[str, ...], key: tuple) -> str:
    if not by:
        return "All"
    if len(by) == 1:
        return str(key[0])
    return ", ".join(f"{c}={k}" for c, k in zip(by, key, strict=False))


def _tick_times(tmax: float, times: Any) -> np.ndarray:
    if times is not None:
        arr = np.atleast_1d(np.asarray(times, dtype=float))
        if arr.ndim != 1 or not np.isfinite(arr).all() or (arr < 0).any():
            raise InvalidParameterError(f"times must be non-negative finite numbers; got {times!r}.")
        return np.unique(arr)
    from matplotlib.ticker import MaxNLocator

    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 3, 5, 10]).tick_values(0.0, tmax)
    return ticks[(ticks >= 0) & (ticks <= tmax * 1.0001)]


def _draw_risk_table(ax: Any, risk: pd.DataFrame, by: tuple[str, ...], keys: list[tuple], ticks: np.ndarray,
                     suppress_below: int | None) -> None:
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    y0 = -_TABLE_GAP
    ax.text(-0.07, y0 + _ROW_HEIGHT * 0.9, "Number at risk", transform=ax.transAxes, ha="right",
            va="center", fontsize=FONT_SIZE - 1, fontweight="bold", gid="risk-table-title")
    for i, key in enumerate(keys):
        y = y0 - i * _ROW_HEIGHT
        sub = risk
        for c, k in zip(by, key, strict=False):
            sub = sub.loc[sub[c] == k]
        ax.text(-0.07, y, _group_label(by, key), transform=ax.transAxes, ha="right", va="center",
                fontsize=FONT_SIZE - 1, color=palette(i), gid="risk-table-label")
        for t, n in zip(sub["time"].to_numpy(), sub["n_at_risk"].to_numpy(), strict=False):
            ax.text(t, y, format_count(n, suppress_below), transform=trans, ha="center", va="center",
                    fontsize=FONT_SIZE - 1, gid="risk-table-count")
    if suppress_below is not None:
        ax.text(1.0, y0 - len(keys) * _ROW_HEIGHT, f"counts 1-{suppress_below - 1} shown as <{suppress_below}",
                transform=ax.transAxes, ha="right", va="center", fontsize=FONT_SIZE - 2, style="italic",
                gid="risk-table-footnote")


def _steps(ax: Any, x: np.ndarray, y: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None, *,
           color: str, linestyle: str, label: str, ci: bool) -> None:
    ax.plot(x, y, drawstyle="steps-post", color=color, linestyle=linestyle, linewidth=1.6, label=label)
    if ci and lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, step="post", color=color, alpha=0.18, linewidth=0)


def _censor_mark_size(k: int) -> tuple[float, float]:
    """Marker size and edge width (points) for ``k`` censor marks on one curve.

    Up to 40 marks: 7 pt, 1 pt wide. Beyond, the size shrinks as 1/sqrt(k) to 2.5 pt (at
    about 300 marks) and the stroke to 0.5 pt, so that with hundreds of censoring times (n in
    the thousands) the marks stay ticks on the curve instead of merging into a thick band.
    """
    if k <= 40:
        return 7.0, 1.0
    return max(2.5, 7.0 * (40 / k) ** 0.5), 0.5


#: Axis labels in words for the usual names of the time column (other names are shown with
#: spaces for underscores). "Follow-up" because the origin depends on the measure
#: (enrollment for relapse, release or enrollment for recidivism).
_TIME_LABELS: dict[str, str] = {
    "time_days": "Days of follow-up", "days": "Days of follow-up", "day": "Days of follow-up",
    "week": "Weeks of follow-up", "weeks": "Weeks of follow-up",
    "month": "Months of follow-up", "months": "Months of follow-up",
    "year": "Years of follow-up", "years": "Years of follow-up",
}


def _time_label(column: str) -> str:
    """x-axis label for the time column ``column``, in words."""
    return _TIME_LABELS.get(str(column).lower(), str(column).replace("_", " "))


def _censor_marks(ax: Any, cur: pd.DataFrame, color: str) -> None:
    """``|`` marks on the curve at the times with censoring (smaller when there are many)."""
    cm = cur["censored"].to_numpy() > 0
    if cm.any():
        size, width = _censor_mark_size(int(cm.sum()))
        ax.plot(cur["time"].to_numpy()[cm], cur["estimate"].to_numpy()[cm], linestyle="none",
                marker="|", markersize=size, markeredgewidth=width, color=color, gid="censor-marks")


def _finish_axes(ax: Any, result: Any, by: tuple[str, ...], keys: list[tuple], tmax: float, times: Any,
                 risk_table: bool, suppress_below: int | None, legend: bool, legend_loc: str) -> None:
    """x range and ticks, the at-risk table under the axis, and the legend (both curve plots)."""
    ax.set_xlim(0, tmax * 1.02)
    ticks = _tick_times(tmax, times)
    ax.set_xticks(ticks)
    if risk_table:
        _draw_risk_table(ax, result.risk_table(ticks), by, keys, ticks, suppress_below)
    if legend and by:
        ax.legend(title=", ".join(by), frameon=False, loc=legend_loc)


def plot_survival(result: Any, ax: Any = None, *, ci: bool = True, censor_marks: bool = True,
                  risk_table: bool = True, times: Any = None, suppress_below: int | None = None,
                  title: str | None = None, xlabel: str | None = None,
                  ylabel: str = "Proportion event-free", legend: bool = True) -> Any:
    """Kaplan-Meier curves of a :class:`SurvivalResult`.

    Parameters
    ----------
    result : SurvivalResult
    ax : matplotlib Axes, optional
        Drawn on a fresh figure when None.
    ci : bool
        Shade the pointwise confidence band.
    censor_marks : bool
        Mark censoring times with ``|`` (smaller and thinner when a curve has more than 40).
    risk_table : bool
        Write the number at risk at ``times`` (default: the x ticks) under the axis.
    times : sequence of float, optional
        Times for the at-risk table and x ticks.
    suppress_below : int, optional
        Show at-risk counts from 1 to ``suppress_below - 1`` as ``"<suppress_below"``.
    title, xlabel, ylabel : str, optional
        Override the title, the x label (default: the time column in words, e.g.
        ``time_days`` -> "Days of follow-up") and the y label.

    Returns
    -------
    matplotlib Axes
    """
    sb = _check_suppress(suppress_below)
    ax = new_axes(ax)
    table = result._curve
    by = tuple(result.by)
    groups = result._groups
    keys = [tuple(groups[c].iloc[i] for c in by) for i in range(len(groups))]
    tmax = float(groups["max_time"].max())
    se_table = result.table
    for i, key in enumerate(keys):
        cur, full = table, se_table
        for c, k in zip(by, key, strict=False):
            cur = cur.loc[cur[c] == k]
            full = full.loc[full[c] == k]
        x = np.concatenate(([0.0], cur["time"].to_numpy()))
        y = np.concatenate(([1.0], cur["estimate"].to_numpy()))
        lo = np.concatenate(([1.0], full["ci_lower"].to_numpy()))
        hi = np.concatenate(([1.0], full["ci_upper"].to_numpy()))
        color = palette(i)
        _steps(ax, x, y, lo, hi, color=color, linestyle=LINESTYLES[i % len(LINESTYLES)],
               label=_group_label(by, key), ci=ci)
        if censor_marks:
            _censor_marks(ax, cur, color)
    ax.set_ylim(0, 1.02)
    _finish_axes(ax, result, by, keys, tmax, times, risk_table, sb, legend, "lower left")
    style_axes(ax, title=title if title is not None else "Kaplan-Meier estimate",
               xlabel=xlabel if xlabel is not None else _time_label(result.time_column), ylabel=ylabel,
               n=result.n_used)
    return ax


def plot_cumulative_incidence(result: Any, ax: Any = None, *, ci: bool = True, censor_marks: bool = True,
                              risk_table: bool = True,
                              times: Any = None, suppress_below: int | None = None, title: str | None = None,
                              xlabel: str | None = None, ylabel: str | None = None, legend: bool = True) -> Any:
    """Cumulative-incidence curves of a :class:`CumulativeIncidenceResult` (same options as
    :func:`plot_survival`; censor marks sit on the curve at censoring times)."""
    sb = _check_suppress(suppress_below)
    ax = new_axes(ax)
    table = result._table
    by = tuple(result.by)
    groups = result._groups
    keys = [tuple(groups[c].iloc[i] for c in by) for i in range(len(groups))]
    tmax = float(groups["max_time"].max())
    top = 0.0
    for i, key in enumerate(keys):
        cur = table
        for c, k in zip(by, key, strict=False):
            cur = cur.loc[cur[c] == k]
        x = np.concatenate(([0.0], cur["time"].to_numpy()))
        y = np.concatenate(([0.0], cur["estimate"].to_numpy()))
        lo = np.concatenate(([0.0], cur["ci_lower"].to_numpy()))
        hi = np.concatenate(([0.0], cur["ci_upper"].to_numpy()))
        top = max(top, float(np.nanmax(hi if ci else y)))
        _steps(ax, x, y, lo, hi, color=palette(i), linestyle=LINESTYLES[i % len(LINESTYLES)],
               label=_group_label(by, key), ci=ci)
        if censor_marks:
            _censor_marks(ax, cur, palette(i))
    ax.set_ylim(0, min(1.0, max(top * 1.1, 0.05)))
    _finish_axes(ax, result, by, keys, tmax, times, risk_table, sb, legend, "upper left")
    style_axes(ax, title=title if title is not None else f"Cumulative incidence of {result.cause}",
               xlabel=xlabel if xlabel is not None else _time_label(result.time_column),
               ylabel=ylabel if ylabel is not None else "Cumulative incidence", n=result.n_used)
    return ax


def plot_hazard_ratios(result: Any, ax: Any = None, *, terms: Any = None, title: str | None = None,
                       xlabel: str | None = None) -> Any:
    """Forest plot of a :class:`HazardRatioResult`: HR and CI per term on a log axis, first term on top.

    A categorical term is labelled "variable: level vs reference", as in the odds-ratio
    forest plot; ``terms`` selects rows by their ``term`` value.
    """
    table = result.table
    if terms is not None:
        wanted = [terms] if isinstance(terms, str) else list(terms)
        missing = [t for t in wanted if t not in set(table["term"])]
        if missing:
            raise InvalidParameterError(
                f"terms: {missing!r} not in the model; terms are {list(table['term'])!r}."
            )
        table = table.set_index("term").loc[wanted].reset_index()
    k = len(table)
    ax = new_axes(ax, figsize=(6.5, 1.2 + 0.4 * k))
    y = np.arange(k)[::-1].astype(float)
    est = table["estimate"].to_numpy()
    lo = table["ci_lower"].to_numpy()
    hi = table["ci_upper"].to_numpy()
    ax.hlines(y, lo, hi, color=palette(0), linewidth=1.6, gid="forest-ci")
    ax.plot(est, y, linestyle="none", marker="s", color=palette(0), markersize=6, gid="forest-points")
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=0.9, gid="forest-null")
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    ax.set_yticks(y)
    # the same labels as the odds-ratio forest plot: "group: peer_mentoring vs comparison"
    ax.set_yticklabels([_term_label(r, show_counts=False) for _, r in table.iterrows()])
    ax.set_ylim(-0.7, k - 0.3)
    finite = np.concatenate((lo[np.isfinite(lo) & (lo > 0)], hi[np.isfinite(hi)]))
    if len(finite):
        ax.set_xlim(min(finite.min(), 1.0) / 1.15, max(finite.max(), 1.0) * 1.15)
    pct = f"{result.conf_level * 100:g}%"
    style_axes(ax, title=title if title is not None else "Hazard ratios",
               xlabel=xlabel if xlabel is not None else f"Hazard ratio ({pct} CI, log scale)", n=result.n_used)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax
