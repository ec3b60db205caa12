"""Figure of a matched sample: propensity-score distributions before and after matching.

matplotlib is imported lazily through :func:`recoverystats.plotting.style.new_axes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoverystats.plotting.style import new_axes, palette, style_axes

__all__ = ["plot_match", "plot_love_table"]


def plot_match(result: Any, ax: Any = None, *, bins: int = 30, title: str | None = None) -> Any:
    """Mirrored histograms of the propensity score: program above, comparison below.

    Outlined bars show all units, filled bars the matched sample (weighted by the match
    weights), so the figure shows which part of each distribution matching kept. When
    no propensity score was used (Mahalanobis matching without a caliper) the histogram
    of the matched pairs' distances is drawn instead.
    """
    ax = new_axes(ax)
    score = result.propensity
    if score is None:
        d = result.pairs["distance"].to_numpy(dtype=float)
        ax.hist(d, bins=bins, color=palette(0), alpha=0.7)
        return style_axes(ax, title=title or "Distance within matched pairs", xlabel="Mahalanobis distance",
                          ylabel="Pairs")
    s = score.to_numpy(dtype=float)
    treated = result._treated.to_numpy(dtype=bool)
    w = result.weights.to_numpy(dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    width = edges[1] - edges[0]
    for sign, flag, i, label in ((1, treated, 0, str(result.treated_level)),
                                 (-1, ~treated, 1, str(result.control_level))):
        all_h, _ = np.histogram(s[flag], bins=edges)
        m_h, _ = np.histogram(s[flag], bins=edges, weights=w[flag])
        ax.bar(edges[:-1], sign * all_h, width=width, align="edge", fill=False, edgecolor=palette(i),
               linewidth=0.8, label=f"{label}: all")
        ax.bar(edges[:-1], sign * m_h, width=width, align="edge", color=palette(i), alpha=0.6,
               label=f"{label}: matched")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ticks = ax.get_yticks()
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{abs(t):g}" for t in ticks])
    ax.legend(frameon=False)
    return style_axes(ax, title=title or "Propensity score before and after matching", xlabel="Propensity score",
                      ylabel="Units (program above, comparison below)")


def _value(block: Any, i: int, col: str) -> float:
    """A published cell as float; NaN when suppressed or missing."""
    if bool(block.mask.iat[i, block.mask.columns.get_loc(col)]):
        return float("nan")
    v = block.data.iat[i, block.data.columns.get_loc(col)]
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def plot_love_table(blocks: Any, ax: Any = None, *, labels: Any = None, threshold: float = 0.1) -> Any:
    """Love plot drawn from published (suppressed) balance tables of the report.

    ``blocks``: the report's balance table blocks (columns ``variable``, optionally
    ``level``, ``smd_before``, ``smd_after``). Absolute SMD before (open circles) and after
    weighting (filled), a dashed line at ``threshold``; a row whose SMDs are suppressed
    is listed with a ``*`` and no points.
    """
    n_rows = sum(len(b.display_rows if b.display_rows is not None else range(len(b.data))) for b in blocks)
    ax = new_axes(ax, figsize=(7.5, max(3.0, 0.28 * n_rows + 1.4)))
    names, before, after = [], [], []
    for b in blocks:
        rows = b.display_rows if b.display_rows is not None else range(len(b.data))
        for i in rows:
            var = str(b.data.iat[i, b.data.columns.get_loc("variable")])
            name = labels.variable(var).split(" (")[0] if labels is not None else var
            if "level" in b.data.columns:
                lev = b.data.iat[i, b.data.columns.get_loc("level")]
                name += f": {b.display_code(i, 'level', lev)}"
            sb, sa = _value(b, i, "smd_before"), _value(b, i, "smd_after")
            names.append(name + ("" if np.isfinite(sb) or np.isfinite(sa) else " *"))
            before.append(abs(sb))
            after.append(abs(sa))
    y = np.arange(len(names))[::-1]
    ax.plot(before, y, marker="o", linestyle="none", markerfacecolor="white", color=palette(1),
            label="before weighting")
    ax.plot(after, y, marker="o", linestyle="none", color=palette(0), label="after weighting")
    ax.axvline(threshold, color="#555555", linestyle="--", linewidth=1.0, label=f"SMD = {threshold:g}")
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    finite = [v for v in before + after if np.isfinite(v)]
    ax.set_xlim(0, max([threshold, *finite]) * 1.15)
    ax.legend(frameon=False, loc="lower right")
    style_axes(ax, xlabel="Absolute standardized mean difference")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    return ax
