"""Figures for :mod:`recoverystats.design`: power curves (closed form and simulated)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.plotting.style import MARKERS, new_axes, palette, style_axes

__all__ = ["plot_power_curve", "plot_simulated_power"]

_X_LABEL = {
    ("proportions", "n"): "Participants in the comparison group",
    ("proportions", "effect"): "Proportion in the program group (p2)",
    ("means", "n"): "Participants in the comparison group",
    ("means", "effect"): "Difference in means (delta)",
    ("events", "events"): "Events",
    ("events", "effect"): "Hazard ratio",
}


def plot_power_curve(curve: pd.DataFrame, ax: Any = None, *, result: Any = None,
                     target: float | None = None, title: str | None = None) -> Any:
    """Power against sample size or effect, one line per direction; the solution marked.

    Parameters
    ----------
    curve : pandas.DataFrame
        From :meth:`PowerResult.curve` (``over, value, power, direction``).
    ax : matplotlib Axes, optional
    result : PowerResult, optional
        Marks the solution and labels the axes from its ``kind``.
    target : float, optional
        A horizontal reference line (default: the result's power when it was given).
    title : str, optional
    """
    ax = new_axes(ax)
    kind = getattr(result, "kind", "proportions")
    kind = "events" if kind == "participants" else kind
    over = str(curve["over"].iloc[0]) if len(curve) else "n"
    for i, (direction, g) in enumerate(curve.groupby("direction", sort=False)):
        ax.plot(g["value"], g["power"], color=palette(i), lw=1.8,
                label=str(direction) if direction else "power")
    if target is None and result is not None and result.solve_for != "power":
        target = float(result.table["power"].iloc[0])
    if target is not None:
        ax.axhline(target, color="0.5", lw=0.8, ls="--")
    if result is not None:
        t = result.table
        col = {"n": "n1", "events": "events"}.get(over)
        if over == "effect":
            col = {"proportions": "p2", "means": "delta", "events": "hazard_ratio"}[kind]
        if col in t:
            for i, (x, y) in enumerate(zip(t[col], t["power"], strict=False)):
                if np.isfinite(float(x)):
                    ax.plot([float(x)], [float(y)], marker=MARKERS[0], color=palette(i), ms=6, ls="none")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(_X_LABEL.get((kind, over), over))
    ax.set_ylabel("Power")
    if curve["direction"].astype(str).str.len().gt(0).any() and curve["direction"].nunique() > 1:
        ax.legend(frameon=False)
    style_axes(ax, title=title or "Power curve")
    return ax


def plot_simulated_power(result: Any, ax: Any = None, *, over: str | None = None,
                         title: str | None = None) -> Any:
    """Simulated power with Wilson 95% Monte Carlo intervals, over ``n`` or over the scenarios."""
    ax = new_axes(ax)
    t = result.table
    if over is None:
        over = "n" if t["n"].nunique() > 1 else "scenario"
    if over == "n":
        for i, (scen, g) in enumerate(t.groupby("scenario", sort=False)):
            g = g.sort_values("n")
            ax.errorbar(g["n"], g["power"], yerr=_yerr(g),
                        color=palette(i), marker=MARKERS[i % len(MARKERS)], capsize=3, lw=1.5, label=str(scen))
        ax.set_xlabel("Participants simulated (n)")
        if t["scenario"].nunique() > 1:
            ax.legend(frameon=False)
    else:
        x = np.arange(len(t))
        ax.errorbar(x, t["power"], yerr=_yerr(t),
                    color=palette(0), marker=MARKERS[0], capsize=3, ls="none")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{s}\nn={n:,}" for s, n in zip(t["scenario"], t["n"], strict=False)], fontsize=8)
    ax.axhline(0.8, color="0.5", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Power (simulated)")
    style_axes(ax, title=title or f"Simulated power ({result.reps:,} replicates each)")
    return ax


def _yerr(t: pd.DataFrame) -> list[np.ndarray]:
    """Whisker lengths of the Wilson interval (never negative: at power 0 or 1 rounding can cross)."""
    p = t["power"].to_numpy(dtype=float)
    return [np.clip(p - t["ci_lower"].to_numpy(dtype=float), 0, None),
            np.clip(t["ci_upper"].to_numpy(dtype=float) - p, 0, None)]
