"""Figures for :mod:`recoverystats.synthesis`: meta-analysis and subgroup forest plots, and the
interrupted-time-series figure.

matplotlib is imported lazily (through :func:`recoverystats.plotting.style.new_axes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.plotting.style import palette, style_axes

_RATIO_FLOOR, _RATIO_CEIL = 1e-3, 1e3
_MEASURE_LABEL = {"or": "Odds ratio", "rr": "Risk ratio", "hr": "Hazard ratio", "rd": "Risk difference",
                  "generic": "Effect"}


def _fmt(v: float, ratio: bool) -> str:
    if not np.isfinite(v):
        return "–"
    return f"{v:.2f}" if ratio else f"{v:+.3f}"


def _log_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_meta_analysis(result: Any, ax: Any = None, *, title: str | None = None, annotate: bool = True,
                       show_prediction: bool = True) -> Any:
    """Forest plot of a :class:`~recoverystats.results.synthesis.MetaAnalysisResult`.

    One row per study (square sized by its weight, line for its CI), the pooled estimate
    as a diamond at the bottom, the prediction interval as a thin bar through the
    diamond (random effects), a dashed line at no effect (1 for ratios, 0 for
    differences). ``annotate`` writes "estimate (lo, hi)  weight%" at the right.
    Returns the Axes (a fresh figure when ``ax`` is None; never ``plt.show()``).
    """
    from recoverystats.plotting.style import new_axes

    t = result.table
    studies = t[t["kind"] == "study"].reset_index(drop=True)
    pooled = t[t["kind"] == "pooled"].iloc[0]
    k = len(studies)
    ratio = result.measure in ("or", "rr", "hr")
    ax = new_axes(ax, figsize=(8.0, max(2.6, 0.4 * (k + 2) + 1.2)))
    y = np.arange(k, 0, -1).astype(float) + 1.0
    est = studies["estimate"].to_numpy(float)
    lo = studies["ci_lower"].to_numpy(float)
    hi = studies["ci_upper"].to_numpy(float)
    if ratio:
        lo, hi = np.clip(lo, _RATIO_FLOOR, _RATIO_CEIL), np.clip(hi, _RATIO_FLOOR, _RATIO_CEIL)
    w = studies["weight"].to_numpy(float)
    sizes = 20 + 280 * w / max(float(np.max(w)), 1e-12)
    ax.hlines(y, lo, hi, color=palette(7), linewidth=1.3)
    ax.scatter(est, y, marker="s", s=sizes, color=palette(0), zorder=3)
    # pooled diamond
    pe, pl, pu = float(pooled["estimate"]), float(pooled["ci_lower"]), float(pooled["ci_upper"])
    yd = 0.8
    ax.fill([pl, pe, pu, pe], [yd, yd + 0.3, yd, yd - 0.3], color=palette(1), zorder=4, label="pooled")
    if show_prediction and np.isfinite(result.pi_lower):
        ax.hlines(yd, result.pi_lower, result.pi_upper, color=palette(1), linewidth=1.0, zorder=3,
                  linestyles="solid", label="prediction interval")
        ax.vlines([result.pi_lower, result.pi_upper], yd - 0.12, yd + 0.12, color=palette(1), linewidth=1.0)
    null = 1.0 if ratio else 0.0
    ax.axvline(null, color="#555555", linestyle="--", linewidth=1.0)
    if ratio:
        _log_axis(ax)
    labels = [str(s) for s in studies["label"]] + [str(pooled["label"])]
    ax.set_yticks([*y, yd], labels)
    ax.set_ylim(0.2, k + 1.8)
    finite = np.concatenate([lo, hi, [pl, pu, null]])
    if show_prediction and np.isfinite(result.pi_lower):
        finite = np.concatenate([finite, [result.pi_lower, result.pi_upper]])
    finite = finite[np.isfinite(finite)]
    if ratio:
        xmin, xmax = finite.min() / 1.25, finite.max() * 1.25
    else:
        span = finite.max() - finite.min() or 1.0
        xmin, xmax = finite.min() - 0.08 * span, finite.max() + 0.08 * span
    ax.set_xlim(xmin, xmax)
    if annotate:
        from matplotlib.transforms import blended_transform_factory

        tr = blended_transform_factory(ax.transAxes, ax.transData)
        for yy, e, a, b, ww in zip(y, est, studies["ci_lower"], studies["ci_upper"], w, strict=True):
            ax.text(1.02, yy, f"{_fmt(e, ratio)} ({_fmt(a, ratio)}, {_fmt(b, ratio)})  {ww:.1f}%",
                    transform=tr, va="center", ha="left", fontsize=8)
        ax.text(1.02, yd, f"{_fmt(pe, ratio)} ({_fmt(pl, ratio)}, {_fmt(pu, ratio)})  100%", transform=tr,
                va="center", ha="left", fontsize=8, fontweight="bold")
    pct = f"{result.conf_level:.0%}"
    het = f"tau² = {result.tau2:.3g}, I² = {result.i2:.0f}%"
    style_axes(ax, title=title or f"{_MEASURE_LABEL.get(result.measure, 'Effect')} by study ({pct} CI; {het})",
               xlabel=_MEASURE_LABEL.get(result.measure, "Effect") + (" (log scale)" if ratio else ""))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    return ax


def plot_effect_modification(result: Any, ax: Any = None, *, title: str | None = None,
                             annotate: bool = True) -> Any:
    """Subgroup forest plot of an :class:`~recoverystats.results.synthesis.EffectModificationResult`.

    One row per modifier level (estimate and CI; "n" at the right), a dashed line at no
    effect, the interaction test's p-value in the title. Returns the Axes.
    """
    from recoverystats.plotting.style import new_axes

    t = result.table.reset_index(drop=True)
    k = len(t)
    ratio = result.scale in ("or", "hr")
    ax = new_axes(ax, figsize=(7.5, max(2.2, 0.45 * k + 1.4)))
    y = np.arange(k, 0, -1).astype(float)
    est = t["estimate"].to_numpy(float)
    lo = t["ci_lower"].to_numpy(float)
    hi = t["ci_upper"].to_numpy(float)
    if ratio:
        lo, hi = np.clip(lo, _RATIO_FLOOR, _RATIO_CEIL), np.clip(hi, _RATIO_FLOOR, _RATIO_CEIL)
    ax.hlines(y, lo, hi, color=palette(0), linewidth=1.6)
    ax.scatter(est, y, marker="s", s=40, color=palette(0), zorder=3)
    null = 1.0 if ratio else 0.0
    ax.axvline(null, color="#555555", linestyle="--", linewidth=1.0)
    if ratio:
        _log_axis(ax)
    ax.set_yticks(y, [f"{result.modifier}: {lv}" for lv in t["level"]])
    ax.set_ylim(0.4, k + 0.6)
    if annotate:
        from matplotlib.transforms import blended_transform_factory

        tr = blended_transform_factory(ax.transAxes, ax.transData)
        for yy, n_ in zip(y, t["n"], strict=True):
            txt = "n suppressed" if pd.isna(n_) else f"n = {int(n_):,}"
            ax.text(1.02, yy, txt, transform=tr, va="center", ha="left", fontsize=8)
    inter = result.interaction
    p_txt = ""
    if len(inter):
        row = inter.iloc[-1] if result.scale == "rd" else inter.iloc[0]
        p_txt = f"; interaction p = {float(row['p_value']):.2g}"
    name = {"or": "Odds ratio", "hr": "Hazard ratio", "rd": "Risk difference"}[result.scale]
    style_axes(ax, title=title or f"{name} of {result.exposure} by {result.modifier}{p_txt}",
               xlabel=name + (" (log scale)" if ratio else ""))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    return ax


def plot_interrupted_time_series(result: Any, ax: Any = None, *, title: str | None = None,
                                 rate_per: float | None = None) -> Any:
    """Interrupted time series: observed points, fitted segments, counterfactual (dashed).

    With an offset the y axis is the rate (observed / offset, times ``rate_per`` when
    given, e.g. 100 for "per 100 participants"); the fitted and counterfactual lines are
    on the same scale. Vertical dotted lines mark the interruptions. Returns the Axes.
    """
    from recoverystats.plotting.style import new_axes

    f = result.fitted
    ax = new_axes(ax, figsize=(8.0, 4.2))
    x = f["position"].to_numpy(float)
    if "rate" in f.columns:
        mult = rate_per or 1.0
        obs = f["rate"].to_numpy(float) * mult
        fit = f["fitted"].to_numpy(float) / f["offset"].to_numpy(float) * mult
        cf = f["counterfactual"].to_numpy(float) / f["offset"].to_numpy(float) * mult
        ylabel = f"{result.outcome} per {mult:g}" if rate_per else f"{result.outcome} rate"
    else:
        obs, fit, cf = (f[c].to_numpy(float) for c in ("observed", "fitted", "counterfactual"))
        ylabel = str(result.outcome)
    ax.scatter(x, obs, s=16, color=palette(7), zorder=3, label="observed")
    seg = f["segment"].to_numpy()
    for s in np.unique(seg):
        m = seg == s
        ax.plot(x[m], fit[m], color=palette(0), linewidth=1.8, label="fitted" if s == seg.min() else None)
    first = result.interruptions[0]
    m = x >= first
    if m.any():
        xs = np.concatenate([x[~m][-1:], x[m]])
        cs = np.concatenate([fit[~m][-1:], cf[m]])
        ax.plot(xs, cs, color=palette(1), linewidth=1.5, linestyle="--", label="counterfactual (no change)")
    for c in result.interruptions:
        ax.axvline(c - 0.5, color="#555555", linestyle=":", linewidth=1.0)
    # tick labels: the data's own time values
    times = f["time"].tolist()
    step = max(1, len(x) // 10)
    ax.set_xticks(x[::step], [str(v.date()) if hasattr(v, "date") else str(v) for v in times[::step]],
                  rotation=30 if not np.issubdtype(np.asarray(times).dtype, np.number) else 0)
    ax.legend(frameon=False, fontsize=8, loc="best")
    style_axes(ax, title=title or f"Interrupted time series: {result.outcome}", xlabel=str(result.time),
               ylabel=ylabel)
    return ax


def plot_site_forest(table: pd.DataFrame, ax: Any = None, *, labels: Any = None, as_of: Any = None,
                     title: str | None = None) -> Any:
    """Report forest plot from a published (suppressed) table of per-part odds ratios.

    ``table`` has ``part`` (``"site"`` rows, then one ``"pooled"`` row), ``estimate``,
    ``ci_lower``, ``ci_upper`` and optionally ``weight`` (a proportion), ``pi_lower``, ``pi_upper``; a row
    whose estimate is suppressed (NaN) is drawn as "* suppressed". The pooled row is a
    diamond with its prediction interval. Log x axis, dashed line at 1. Returns the Axes.
    """
    from recoverystats.plotting.style import new_axes

    t = table.reset_index(drop=True)
    k = len(t)
    ax = new_axes(ax, figsize=(7.5, max(3.0, 0.4 * k + 1.4)))
    y = np.arange(k, 0, -1).astype(float)
    finite: list[float] = [1.0]
    for i, row in t.iterrows():
        est, lo, hi = (pd.to_numeric(pd.Series([row[c]]), errors="coerce").iloc[0]
                       for c in ("estimate", "ci_lower", "ci_upper"))
        yy = y[i]
        if not np.isfinite(est):
            ax.text(1.0, yy, "  * suppressed" if row.get("part") != "pooled" else "  * not shown", va="center",
                    ha="left", fontsize=8, color="#555555")
            continue
        lo, hi = np.clip([lo, hi], _RATIO_FLOOR, _RATIO_CEIL)
        finite += [float(lo), float(hi)]
        if row.get("part") == "pooled":
            ax.fill([lo, est, hi, est], [yy, yy + 0.25, yy, yy - 0.25], color=palette(1), zorder=4)
            pl, pu = row.get("pi_lower"), row.get("pi_upper")
            if pl is not None and np.isfinite(pl):
                ax.hlines(yy, pl, pu, color=palette(1), linewidth=1.0)
                finite += [float(pl), float(pu)]
        else:
            w = row.get("weight")
            size = 30 + 220 * float(w) if w is not None and np.isfinite(w) else 30  # w: a proportion
            ax.hlines(yy, lo, hi, color=palette(0), linewidth=1.4)
            ax.scatter([est], [yy], marker="s", s=size, color=palette(0), zorder=3)
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1.0)
    _log_axis(ax)
    ax.set_xlim(min(finite) / 1.2, max(finite) * 1.2)
    ax.set_yticks(y, [str(s) for s in (labels if labels is not None else t.iloc[:, 0])])
    ax.set_ylim(0.4, k + 0.6)
    style_axes(ax, title=title or "Odds ratio by site and pooled (random effects)",
               xlabel="Odds ratio (log scale; < 1 = lower odds in the program group)", as_of=as_of)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    return ax


def plot_effect_modification_table(table: pd.DataFrame, ax: Any = None, *, labels: Any = None, as_of: Any = None,
                                   title: str | None = None) -> Any:
    """Report subgroup forest plot from a published (suppressed) table: one row per subgroup
    level (``estimate``, ``ci_lower``, ``ci_upper``), suppressed rows marked "* suppressed",
    modifiers in blocks of colour. Log x axis, dashed line at 1. Returns the Axes."""
    from recoverystats.plotting.style import new_axes

    t = table.reset_index(drop=True)
    k = len(t)
    ax = new_axes(ax, figsize=(7.5, max(3.0, 0.4 * k + 1.4)))
    y = np.arange(k, 0, -1).astype(float)
    mods = list(dict.fromkeys(t["modifier"])) if "modifier" in t else [None]
    finite: list[float] = [1.0]
    for i, row in t.iterrows():
        est, lo, hi = (pd.to_numeric(pd.Series([row[c]]), errors="coerce").iloc[0]
                       for c in ("estimate", "ci_lower", "ci_upper"))
        colour = palette(mods.index(row["modifier"]) if "modifier" in t else 0)
        if not np.isfinite(est):
            ax.text(1.0, y[i], "  * suppressed", va="center", ha="left", fontsize=8, color="#555555")
            continue
        lo, hi = np.clip([lo, hi], _RATIO_FLOOR, _RATIO_CEIL)
        finite += [float(lo), float(hi)]
        ax.hlines(y[i], lo, hi, color=colour, linewidth=1.5)
        ax.scatter([est], [y[i]], marker="s", s=36, color=colour, zorder=3)
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1.0)
    _log_axis(ax)
    ax.set_xlim(min(finite) / 1.2, max(finite) * 1.2)
    ax.set_yticks(y, [str(s) for s in (labels if labels is not None else t["level"])])
    ax.set_ylim(0.4, k + 0.6)
    style_axes(ax, title=title or "Odds ratio by subgroup (program vs reference)",
               xlabel="Odds ratio (log scale; < 1 = lower odds in the program group)", as_of=as_of)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    return ax
