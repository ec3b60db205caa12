"""Power curves around a closed-form solution (internal; used by ``PowerResult.curve``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError


def power_curve(result: Any, *, over: str | None, values: Any) -> pd.DataFrame:
    """``over, value, power`` (plus ``direction``) for a :class:`PowerResult`."""
    kind, par, t = result.kind, result.parameters, result._table
    if over is None:
        over = "effect" if result.solve_for in ("p2", "delta") else "n"
    if over not in ("n", "effect"):
        raise InvalidParameterError(f"over must be 'n' or 'effect'; got {over!r}.")
    rows: list[tuple[str, float, float, str]] = []
    if kind == "proportions":
        from recoverystats.design.proportions import _power

        kw = {k: par[k] for k in ("alpha", "ratio", "alternative", "continuity", "method")}
        shrink = (1 - par["attrition"]) / par["design_effect"]
        for _, row in t.iterrows():
            p2 = float(row["p2"])
            if not np.isfinite(p2):
                continue
            d = str(row["direction"])
            if over == "n":
                n_now = float(row["n1"])
                grid = _grid_n(n_now, values)
                rows += [("n", g, _power(par["p1"], p2, g * shrink, **kw), d) for g in grid]
            else:
                p1 = par["p1"]
                grid = (np.asarray(values, dtype=float) if values is not None else
                        (np.linspace(p1, min(0.999, p1 + 2.2 * (p2 - p1)), 60)[1:] if p2 > p1
                         else np.linspace(max(0.001, p1 + 2.2 * (p2 - p1)), p1, 60)[:-1]))
                n_eff = float(row["n1_exact"]) if result.solve_for != "n" else float(row["n1_base"])
                rows += [("effect", g, _power(p1, g, n_eff, **kw), d) for g in grid if 0 < g < 1 and g != p1]
    elif kind == "means":
        from recoverystats.design.means import _power

        kw = {k: par[k] for k in ("alpha", "ratio", "alternative", "test")}
        shrink = (1 - par["attrition"]) / par["design_effect"]
        row = t.iloc[0]
        d = float(row["effect_size"])
        sign = -1.0 if par["alternative"] == "smaller" else 1.0
        eff = (lambda x: abs(x)) if par["alternative"] == "two-sided" else (lambda x: x)  # noqa: E731
        if over == "n":
            rows += [("n", g, _power(eff(d), max(g * shrink, 3.0 / (1 + par["ratio"])), **kw), "")
                     for g in _grid_n(float(row["n1"]), values)]
        else:
            grid = (np.asarray(values, dtype=float) if values is not None
                    else sign * np.linspace(0, 2.2 * abs(float(row["delta"])), 60)[1:])
            n_eff = float(row["n1_exact"]) if result.solve_for != "n" else float(row["n1_base"])
            rows += [("effect", g, _power(eff(g / par["sd"]), n_eff, **kw), "") for g in grid]
    else:  # events / participants: power over the number of events or the hazard ratio
        from recoverystats.design.survival import _power_events

        kw = {k: par[k] for k in ("alpha", "ratio", "alternative", "method")}
        ev = float(t["events"].iloc[0])
        if over == "n":
            rows += [("events", g, _power_events(par["hr"], g, **kw), "") for g in _grid_n(ev, values)]
        else:
            hr = par["hr"]
            grid = (np.asarray(values, dtype=float) if values is not None else
                    (np.exp(np.linspace(np.log(hr) * 2.2, 0, 60)[:-1])))
            rows += [("effect", g, _power_events(g, ev, **kw), "") for g in grid if g > 0 and g != 1]
    return pd.DataFrame(rows, columns=["over", "value", "power", "direction"])


def _grid_n(n_now: float, values: Any) -> np.ndarray:
    if values is not None:
        return np.asarray(values, dtype=float)
    return np.unique(np.round(np.linspace(max(2.0, 0.2 * n_now), 2.0 * n_now, 60)))
