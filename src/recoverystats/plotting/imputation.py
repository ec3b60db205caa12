"""Figures for multiple imputation: convergence traces and pooled-estimate forest plots.

matplotlib is imported lazily (through :func:`recoverystats.plotting.style.new_axes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recoverystats.errors import InvalidParameterError
from recoverystats.plotting.style import palette, style_axes


def plot_traces(imp: Any, *, columns: str | Sequence[str] | None = None, ax: Any = None) -> Any:
    """Trace plot of an :class:`~recoverystats.missing.ImputedData` (as R mice ``plot(imp)``).

    For each imputed column the mean (top row) and SD (bottom row) of its imputed
    values at each iteration, one line per chain. Returns a 2 x k array of Axes on a
    new figure, or — when ``ax`` is given (one column only) — that Axes with the means.
    """
    import matplotlib as mpl

    from recoverystats.plotting.style import RC, new_axes

    tr = imp.traces
    cols = list(imp.imputed_columns) if columns is None else (
        [columns] if isinstance(columns, str) else list(columns))
    unknown = [c for c in cols if c not in set(tr["column"])]
    if unknown:
        raise InvalidParameterError(
            f"plot(columns=...): {unknown} were not imputed; the imputed columns are {list(imp.imputed_columns)}."
        )
    if not cols:
        raise InvalidParameterError("plot(): nothing was imputed (no column had missing values).")
    if ax is not None:
        if len(cols) != 1:
            raise InvalidParameterError("plot(ax=...): draw one column at a time (columns='name') on a given Axes.")
        _trace_lines(ax, tr[tr["column"] == cols[0]], "mean")
        style_axes(ax, title=f"{cols[0]}: mean of imputed values", xlabel="Iteration")
        return ax
    first = new_axes(None, figsize=(max(3.2 * len(cols), 4.5), 5.0))
    fig = first.figure
    fig.delaxes(first)
    with mpl.rc_context(RC):
        axes = fig.subplots(2, len(cols), squeeze=False, sharex=True)
    for j, c in enumerate(cols):
        sub = tr[tr["column"] == c]
        for i, stat in enumerate(("mean", "sd")):
            a = axes[i, j]
            _trace_lines(a, sub, stat)
            style_axes(a, title=f"{c}: {'mean' if stat == 'mean' else 'SD'}",
                       xlabel="Iteration" if i == 1 else None)
    return axes


def _trace_lines(ax: Any, sub: Any, stat: str) -> None:
    for k, (_chain, g) in enumerate(sub.groupby("chain", sort=True)):
        ax.plot(g["iteration"].to_numpy(), g[stat].to_numpy(), color=palette(k), linewidth=0.9, alpha=0.8)


def plot_pooled(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Forest plot of a :class:`~recoverystats.results.pooling.PooledResult` (line at 0)."""
    from recoverystats.plotting.style import new_axes

    t = result.table
    k = len(t)
    ax = new_axes(ax, figsize=(7.0, max(1.8, 0.45 * k + 1.3)))
    ypos = np.arange(k)[::-1].astype(float)
    for i in range(k):
        ax.plot([t["ci_lower"].iloc[i], t["ci_upper"].iloc[i]], [ypos[i]] * 2, color=palette(0), linewidth=1.6)
    ax.scatter(t["estimate"], ypos, marker="s", s=36, color=palette(0), zorder=3)
    ax.axvline(0.0, color="#555555", linestyle="--", linewidth=1.0)
    ax.set_yticks(ypos)
    ax.set_yticklabels([str(x) for x in t["term"]])
    ax.set_ylim(-0.7, k - 0.3)
    level = int(round(result.conf_level * 100))
    style_axes(ax, title=title or f"Pooled estimates (m = {result.m})", xlabel=f"Estimate ({level}% CI)")
    ax.grid(axis="y", visible=False)
    return ax
