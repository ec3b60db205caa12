"""Figures of :mod:`recoverystats.missing` attrition results: follow-up rates against the
target, non-response weights, and the tipping-point grid."""

from __future__ import annotations

from typing import Any

import numpy as np

from recoverystats.plotting.style import new_axes, palette, style_axes

__all__ = ["plot_attrition", "plot_followup_weights", "plot_tipping_point", "plot_tipping_grid"]


def plot_attrition(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Follow-up rate overall, by group and by site: points with CI whiskers and the target line."""
    from matplotlib.ticker import PercentFormatter

    r = result.rates.reset_index(drop=True)
    ax = new_axes(ax, figsize=(7.0, max(2.8, 0.42 * len(r) + 1.4)))
    y = np.arange(len(r))[::-1]
    kinds = list(dict.fromkeys(r["variable"]))
    for i, (_, row) in enumerate(r.iterrows()):
        c = "#555555" if row["variable"] == "overall" else palette(kinds.index(row["variable"]) - 1)
        ax.errorbar([row["estimate"]], [y[i]], xerr=[[row["estimate"] - row["ci_lower"]],
                                                     [row["ci_upper"] - row["estimate"]]],
                    fmt="o", color=c, ecolor=c, capsize=3)
    labels = ["All due" if v == "overall" else f"{v}: {lv}" for v, lv in zip(r["variable"], r["level"], strict=True)]
    ax.set_yticks(y, labels)
    ax.axvline(result.target, color="#000000", linestyle="--", linewidth=1.3, label=f"target {result.target:.0%}")
    ax.set_xlim(0, 1.0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(frameon=False, loc="lower left")
    style_axes(ax, title=title or "Follow-up rate against the target",
               xlabel=f"Followed up ({result.conf_level:.0%} Wilson CI)", n=result.n_used)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    return ax


def plot_followup_weights(result: Any, ax: Any = None, *, bins: int = 30, title: str | None = None) -> Any:
    """Histogram of the completers' non-response weights (one colour per stratum)."""
    ax = new_axes(ax)
    w = result.weights
    done = (w > 0).to_numpy()
    strata = result.strata.to_numpy()
    labels = [s for s in result.table["stratum"] if s != "overall"] or ["overall"]
    edges = np.histogram_bin_edges(w[done], bins=bins)
    for i, s in enumerate(labels):
        sel = done & (strata == s)
        ax.hist(w[sel], bins=edges, color=palette(i), alpha=0.85 if len(labels) == 1 else 0.6,
                label="completers" if s == "overall" else s)
    ax.legend(frameon=False)
    style_axes(ax, title=title or "Follow-up weights of completers", xlabel="Weight", ylabel="Completers",
               n=int(done.sum()))
    return ax


def plot_tipping_point(result: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Heat map of the pooled estimate over (delta_exposed, delta_reference), with the
    boundary where the conclusion changes and the MAR point marked."""
    return plot_tipping_grid(result.grid, ax=ax, exposed=result.exposed, reference=result.reference,
                             scale=result.scale, title=title or f"Tipping-point analysis: {result.outcome}")


def plot_tipping_grid(grid: Any, ax: Any = None, *, exposed: str, reference: str, scale: str = "or",
                      title: str = "Tipping-point analysis") -> Any:
    """The heat map of :func:`plot_tipping_point` from a grid table (``delta_exposed,
    delta_reference, estimate, changes_conclusion``; the report draws it from the published table)."""
    import matplotlib as mpl

    g = grid
    de = np.sort(g["delta_exposed"].unique())
    dr = np.sort(g["delta_reference"].unique())
    piv = g.pivot(index="delta_reference", columns="delta_exposed", values="estimate").reindex(index=dr, columns=de)
    change = g.pivot(index="delta_reference", columns="delta_exposed",
                     values="changes_conclusion").reindex(index=dr, columns=de).astype(float)
    if np.isnan(piv.to_numpy(dtype=float)).all():
        ax = new_axes(ax)
        ax.text(0.5, 0.5, "not shown", ha="center", va="center", transform=ax.transAxes)
        style_axes(ax, title=title)
        return ax
    ax = new_axes(ax, figsize=(6.6, 5.2))
    z = piv.to_numpy(dtype=float)
    if scale == "or":
        vals = np.log(z)
        lim = float(np.nanmax(np.abs(vals))) or 1.0
        norm = mpl.colors.TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
        cbar_label = "Odds ratio"
    else:
        vals = z
        lim = float(np.nanmax(np.abs(vals))) or 1.0
        norm = mpl.colors.TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
        cbar_label = "Risk difference"
    mesh = ax.pcolormesh(_edges(de), _edges(dr), vals, cmap="RdBu_r", norm=norm, shading="flat")
    cb = ax.figure.colorbar(mesh, ax=ax)
    if scale == "or":
        ticks = np.linspace(-lim, lim, 5)
        cb.set_ticks(ticks, labels=[f"{np.exp(t):.2g}" for t in ticks])
    cb.set_label(cbar_label)
    if np.nanmin(change) < 0.5 < np.nanmax(change):
        ax.contour(de, dr, change.to_numpy(), levels=[0.5], colors="#000000", linewidths=1.8)
        ax.plot([], [], color="#000000", linewidth=1.8, label="conclusion changes")
    ax.plot([0], [0], marker="o", color="#000000", markerfacecolor="white", linestyle="none", label="MAR")
    ax.legend(frameon=True, loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2)
    ax.set_xlabel(f"Shift in log-odds, {exposed} non-responders")
    ax.set_ylabel(f"Shift in log-odds, {reference} non-responders")
    style_axes(ax, title=title)
    ax.grid(False)
    return ax


def _edges(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[:-1] + v[1:]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
