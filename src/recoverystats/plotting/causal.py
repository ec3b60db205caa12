"""Figures for :mod:`recoverystats.causal`: overlap histograms, weight histograms, the
love plot and effect estimates.

matplotlib is imported lazily (through :func:`recoverystats.plotting.style.new_axes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoverystats.plotting.style import new_axes, palette, style_axes


def plot_overlap(result: Any, ax: Any = None, *, bins: int = 40, title: str | None = None) -> Any:
    """Mirrored histograms of propensity scores: the exposed group above the axis, the
    comparison group below, on shared bins over [0, 1] (counts). The dotted lines mark
    the common support. Returns the Axes."""
    ax = plot_overlap_counts(result.binned(bins), ax=ax, title=title, n=result.n_used,
                             labels=(f"{result.exposure} = {result.treated}", f"{result.exposure} = {result.control}"))
    for v in result.common_support:
        ax.axvline(v, color="#555555", linestyle=":", linewidth=1)
    return ax


def plot_overlap_counts(counts: Any, ax: Any = None, *, title: str | None = None, n: int | None = None,
                        labels: tuple[str, str] | None = None) -> Any:
    """Mirrored histogram from a table of counts per score bin (``lower, upper, exposed, n``,
    as :meth:`PropensityScoreResult.binned`), e.g. after small-cell suppression: bins whose
    ``n`` is missing (suppressed) are not drawn, and the legend says so. Returns the Axes."""
    ax = new_axes(ax)
    suppressed = 0
    top = 1
    for i, val in enumerate((1, 0)):
        part = counts[counts["exposed"] == val]
        nn = part["n"].astype(float).to_numpy()
        keep = ~np.isnan(nn)
        suppressed += int((~keep).sum())
        lo = part["lower"].to_numpy()[keep]
        width = (part["upper"] - part["lower"]).to_numpy()[keep]
        h = nn[keep] if val == 1 else -nn[keep]
        name = labels[i] if labels else (str(part["group"].iloc[0]) if len(part) else str(val))
        ax.bar(lo, h, width=width, align="edge", color=palette(i), alpha=0.85, label=name)
        if keep.any():
            top = max(top, int(np.max(nn[keep])))
    ax.axhline(0, color="#333333", linewidth=0.8)
    ax.set_ylim(-top * 1.1, top * 1.1)
    ax.yaxis.set_major_formatter(_abs_formatter())
    ax.set_xlim(0, 1)
    if suppressed:
        ax.plot([], [], " ", label=f"{suppressed} small bin(s) suppressed")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    style_axes(ax, title=title or "Propensity score overlap", xlabel="propensity score",
               ylabel="people (exposed above, comparison below)", n=n)
    return ax


def _abs_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{abs(v):g}")


def plot_weights(result: Any, ax: Any = None, *, bins: int = 40, title: str | None = None) -> Any:
    """Histogram of the weights per group on a log x axis; the legend gives each group's
    effective sample size. Returns the Axes."""
    ax = new_axes(ax)
    w = result.weights.to_numpy()
    t = result.exposed.to_numpy()
    pos = w[w > 0]
    lo, hi = float(pos.min()), float(pos.max())
    if hi <= lo:
        hi = lo * 1.01 + 1e-9
    edges = np.geomspace(lo, hi, int(bins) + 1)
    tab = result.table
    for i, (mask, val) in enumerate(((t, 1), (~t, 0))):
        row = tab[tab["exposed"] == val].iloc[0]
        ax.hist(w[mask & (w > 0)], bins=edges, color=palette(i), alpha=0.6,
                label=f"{row['group']} (n={int(row['n'])}, ESS={row['ess']:.0f})")
    ax.set_xscale("log")
    ax.legend(frameon=False, fontsize=8)
    style_axes(ax, title=title or f"Balancing weights ({result.estimand})", xlabel="weight (log scale)",
               ylabel="people", n=result.n_used)
    return ax


def plot_love(result: Any, ax: Any = None, *, threshold: float = 0.1, absolute: bool = True,
              title: str | None = None) -> Any:
    """Love plot: one row per covariate term, a hollow marker for the unadjusted SMD and a
    filled one after weighting, dashed lines at the threshold (±threshold when
    ``absolute=False``). Returns the Axes."""
    wide = result.wide()
    n_terms = len(wide)
    ax = new_axes(ax, figsize=(6.4, max(2.5, 0.3 * n_terms + 1.2)))
    yy = np.arange(n_terms)[::-1]
    f = np.abs if absolute else (lambda v: v)
    ax.scatter(f(wide["smd"].to_numpy()), yy, facecolors="none", edgecolors=palette(1), label="unadjusted",
               zorder=3)
    if result.weighted:
        ax.scatter(f(wide["smd_weighted"].to_numpy()), yy, color=palette(0), label="weighted", zorder=4)
        for y, a, b in zip(yy, f(wide["smd"].to_numpy()), f(wide["smd_weighted"].to_numpy()), strict=True):
            ax.plot([a, b], [y, y], color="#bbbbbb", linewidth=0.8, zorder=2)
    ax.axvline(threshold, color="#555555", linestyle="--", linewidth=1)
    if absolute:
        ax.axvline(0, color="#333333", linewidth=0.8)
    else:
        ax.axvline(-threshold, color="#555555", linestyle="--", linewidth=1)
        ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(yy)
    ax.set_yticklabels([str(v) for v in wide["term"]])
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    style_axes(ax, title=title or "Covariate balance",
               xlabel="absolute standardised mean difference" if absolute else "standardised mean difference",
               n=result.n_used)
    return ax


def plot_effect(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Each estimate (difference rows; ratios on their own axis are not mixed in) as a point
    with its CI and a dashed line at no effect. Returns the Axes."""
    ax = new_axes(ax)
    tab = result.table
    rows = tab[tab["measure"] != "risk_ratio"].reset_index(drop=True)
    yy = np.arange(len(rows))[::-1]
    for y, (_, r) in zip(yy, rows.iterrows(), strict=True):
        ax.plot([r["ci_lower"], r["ci_upper"]], [y, y], color=palette(0), linewidth=2)
        ax.plot([r["estimate"]], [y], "o", color=palette(0))
    labels = [
        f"{r['measure'].replace('_', ' ')}" + ("" if np.isnan(r["time"]) else f" at {r['time']:g}")
        for _, r in rows.iterrows()
    ]
    ax.set_yticks(yy)
    ax.set_yticklabels(labels)
    ax.axvline(0, color="#555555", linestyle="--", linewidth=1)
    style_axes(ax, title=title or f"Effect of {result.exposure} on {result.outcome} ({result.estimand})",
               xlabel=f"{result.treated} minus {result.control}", n=result.n_used)
    return ax
