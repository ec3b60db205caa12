"""Figure of a matched sample: propensity-score distributions before and after matching.

matplotlib is imported lazily through :func:`recoverystats.plotting.style.new_axes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recoverystats.plotting.style import new_axes, palette, style_axes

__all__ = ["plot_match"]


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
