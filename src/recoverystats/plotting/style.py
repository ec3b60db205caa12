"""One look for every figure: colour-blind-safe palette, print-readable sizes.

Use :func:`new_axes` to get a fresh figure when the caller passed ``ax=None`` (never
``plt.gca()``; shown inline in Jupyter, a bare Figure in scripts), :func:`palette` for group colours, and :func:`style_axes` to finish.
"""

from __future__ import annotations

from typing import Any

#: Okabe-Ito palette (colour-blind safe, distinguishable in greyscale print).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")
MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "v", "P")
FONT_SIZE = 10
TITLE_SIZE = 11
FIGSIZE = (7.0, 4.5)

RC: dict[str, Any] = {
    "font.size": FONT_SIZE,
    "axes.titlesize": TITLE_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "recoverystats",  # deterministic SVG ids
    "svg.fonttype": "none",
}


def palette(i: int) -> str:
    """Colour for the i-th group."""
    return PALETTE[i % len(PALETTE)]


def new_axes(ax: Any = None, figsize: tuple[float, float] = FIGSIZE, *,
             pyplot: bool | None = None) -> Any:
    """Return ``ax``, or a fresh Axes on a new figure when ``ax`` is None.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Returned unchanged when given (the caller owns the figure).
    figsize : tuple of float, default FIGSIZE
        Size of the new figure in inches.
    pyplot : bool, optional
        Whether the new figure is created through pyplot (``plt.figure``) or as a bare
        ``matplotlib.figure.Figure``. ``None`` (the default) decides from the session:
        pyplot in an interactive session, a bare Figure otherwise (see Notes).

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    A session is interactive when an IPython shell is running (a Jupyter kernel, qtconsole,
    terminal IPython) or Python was started at its interactive prompt (``sys.ps1`` is set).
    There the figure is made with ``plt.figure`` so the front end shows it: Jupyter's inline
    backend displays (and closes) every pyplot figure at the end of the cell, so
    ``result.plot()`` draws inline with no extra call; at a terminal prompt ``plt.show()``
    shows it. Scripts, tests and the report (which passes ``pyplot=False``) get a bare
    Figure: nothing is registered with pyplot, so figures do not accumulate in pyplot's
    figure list and no GUI backend is touched. pyplot global state is never *read* (no
    ``plt.gca()``), and ``plt.show()`` is never called.
    """
    if ax is not None:
        return ax
    import matplotlib as mpl
    from matplotlib.figure import Figure

    if pyplot is None:
        pyplot = _interactive_session()
    if pyplot:
        import matplotlib.pyplot as plt

        # Outside rc_context: the first pyplot figure loads the backend, and Jupyter's inline
        # backend turns interactive mode on then (which is what makes it display the figure);
        # rc_context would restore ``interactive`` to off on exit. RC holds no figure-level keys.
        fig = plt.figure(figsize=figsize, layout="constrained")
    else:
        fig = Figure(figsize=figsize, layout="constrained")
    with mpl.rc_context(RC):
        return fig.add_subplot()


def _interactive_session() -> bool:
    """True inside an IPython shell (Jupyter kernel included) or at Python's own prompt.

    IPython is not imported here: if it is not already imported, no shell is running.
    """
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return True
    return hasattr(sys, "ps1")


def style_axes(ax: Any, *, title: str | None = None, xlabel: str | None = None,
               ylabel: str | None = None, n: int | None = None, as_of: Any = None) -> Any:
    """Apply the shared look and a title that carries n and the data cut-off."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    if title:
        bits = []
        if n is not None:
            bits.append(f"n = {n:,}")
        if as_of is not None:
            import pandas as pd

            bits.append(f"data to {pd.Timestamp(as_of).date().isoformat()}")
        full = title + (f" ({', '.join(bits)})" if bits else "")
        ax.set_title(full, fontsize=TITLE_SIZE, loc="left")
    ax.tick_params(labelsize=FONT_SIZE - 1)
    return ax
