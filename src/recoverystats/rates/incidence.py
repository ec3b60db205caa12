"""Incidence rates (events per person-time) with exact Poisson CIs, and rate ratios."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from recoverystats._checks import as_column_list, check_columns, check_conf_level, check_dataframe
from recoverystats.errors import InvalidParameterError
from recoverystats.rates._common import (
    WeightType,
    case_weights,
    cluster_codes,
    group_codes,
    plural,
    robust_group_variance,
    weight_note,
)
from recoverystats.rates._intervals import poisson_ci, z_value
from recoverystats.results.rates import ComparisonResult, RateResult

__all__ = ["incidence_rate", "incidence_rate_ratio"]


def _numeric(df: pd.DataFrame, column: str, param: str) -> np.ndarray:
    s = df[column]
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        if pd.api.types.is_bool_dtype(s.dtype):
            return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        raise InvalidParameterError(
            f"{param}: column {column!r} must be numeric; got dtype {s.dtype}. "
            "Convert it first, e.g. pd.to_numeric(df[col])."
        )
    return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _inputs(df: pd.DataFrame, events: str, person_time: str) -> tuple[np.ndarray, np.ndarray]:
    for name, value in (("events", events), ("person_time", person_time)):
        if not isinstance(value, str):
            raise InvalidParameterError(f"{name} must be one column name; got {value!r}.")
    check_columns(df, [events], "events")
    check_columns(df, [person_time], "person_time")
    x = _numeric(df, events, "events")
    t = _numeric(df, person_time, "person_time")
    bad = (x < 0) | (np.isfinite(x) & (np.abs(x - np.round(x)) > 1e-9))
    if bad.any():
        vals = pd.unique(x[bad])[:5]
        raise InvalidParameterError(
            f"events: column {events!r} must hold non-negative whole counts; found "
            f"{', '.join(repr(float(v)) for v in vals)} (row {int(np.flatnonzero(bad)[0])}). "
            "Fix or drop those rows."
        )
    badt = (t < 0) | np.isinf(t)
    if badt.any():
        vals = pd.unique(t[badt])[:5]
        raise InvalidParameterError(
            f"person_time: column {person_time!r} must be non-negative and finite; found "
            f"{', '.join(repr(float(v)) for v in vals)} (row {int(np.flatnonzero(badt)[0])}). "
            "Check the follow-up dates that produced it."
        )
    return x, t


def incidence_rate(
    df: pd.DataFrame,
    *,
    events: str,
    person_time: str,
    by: str | Sequence[str] | None = None,
    per: float = 1.0,
    conf_level: float = 0.95,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
    cluster: str | None = None,
) -> RateResult:
    """Events per unit of person-time with exact Poisson (Garwood) confidence intervals.

    Parameters
    ----------
    df
        One row per participant (or per participant-period).
    events
        Column with the number of events in the row (0/1 or counts).
    person_time
        Column with the time at risk in the row (e.g. days or years).
    by
        Optional grouping column(s).
    per
        Multiplier for reporting, e.g. ``per=1000`` with person-years gives events per
        1,000 person-years; ``estimate`` and the CI are multiplied, ``person_time`` is not.
    conf_level
        Confidence level.
    weights
        Column of non-negative case weights (see ``weight_type``); rows of weight 0
        are left out.
    weight_type
        ``"frequency"`` (default): whole-number weights, a row stands for that many
        identical participants (e.g. one row per stratum with its count and per-person
        events and time); events, person-time, ``n`` and the exact interval equal those
        of the expanded data. ``"sampling"``: survey, inverse-probability or balancing
        weights; the rate is the ratio ``Σ w x / Σ w t`` with the robust
        (linearisation) variance ``n/(n-1) Σ w² (x - r t)² / (Σ w t)²`` (R
        ``survey::svyratio`` on ``svydesign(ids = ~1, weights = ~w)``; ``n`` the rows
        used in all groups), a Wald interval on the log scale and NaN limits when a
        group has no events. ``events`` and ``person_time`` are then the weighted
        totals and ``n`` the rows.
    cluster
        Column identifying clusters: the robust variance sums ``w (x - r t)`` within
        clusters, ``G/(G-1) Σ_c (Σ_i w_i (x_i - r t_i))² / (Σ w t)²`` (``svyratio`` with
        ``svydesign(ids = ~cluster, weights = ~w)``). Implies the sampling-weight
        analysis (weights of 1 when ``weights`` is not given); not with frequency
        weights. Rows with a missing cluster are excluded and counted.

    Returns
    -------
    RateResult
        ``.table`` columns: by-columns, ``events``, ``person_time``, ``estimate``,
        ``ci_lower``, ``ci_upper``, ``n`` (rows), ``std_error`` (``sqrt(D)/T · per``, or
        the robust SE with sampling weights).

    Notes
    -----
    With ``D`` events over ``T`` person-time, the rate is ``D/T`` and the exact interval
    (Garwood 1936) is ``χ²(α/2; 2D)/(2T)`` to ``χ²(1−α/2; 2D+2)/(2T)``, lower limit 0
    when ``D = 0``. Matches R ``poisson.test(D, T)$conf.int`` and Stata ``ci means D,
    poisson exposure(T)``. Rows with missing events or person-time are excluded and
    counted; a group with zero person-time has NaN rate and CI.

    References
    ----------
    Garwood F (1936). Fiducial limits for the Poisson distribution. Biometrika 28:437-442.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.rates import incidence_rate
    >>> d = pd.DataFrame({"arrests": [0, 2, 1, 0], "years": [1.0, 0.5, 1.0, 1.5]})
    >>> r = incidence_rate(d, events="arrests", person_time="years")
    >>> r.table[["events", "person_time", "estimate"]].values.tolist()
    [[3.0, 4.0, 0.75]]
    """
    check_dataframe(df)
    conf_level = check_conf_level(conf_level)
    try:
        per = float(per)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"per must be a positive number (e.g. 1000); got {per!r}."
        ) from None
    if not per > 0 or not np.isfinite(per):
        raise InvalidParameterError(f"per must be a positive number (e.g. 1000); got {per!r}.")
    x, t = _inputs(df, events, person_time)
    by_cols = as_column_list(by)
    check_columns(df, by_cols, "by")
    wts = case_weights(df, weights, weight_type, func="incidence_rate")
    ccodes = cluster_codes(df, cluster, func="incidence_rate")
    if ccodes is not None:
        if wts is not None and weight_type == "frequency":
            raise InvalidParameterError(
                "incidence_rate: cluster= gives cluster-robust variances for sampling weights; frequency "
                "weights (counts) have no clusters. Pass weight_type='sampling' or drop cluster=."
            )
        if wts is None:
            wts, weight_type = np.ones(len(df)), "sampling"
    n_input = len(df)
    source = df
    if wts is not None and not (wts > 0).all():
        positive = wts > 0
        source = df.loc[positive]
        x, t, wts = x[positive], t[positive], wts[positive]
        ccodes = None if ccodes is None else ccodes[positive]
    grouping = group_codes(source, by_cols)
    codes = grouping.codes
    ok = np.isfinite(x) & np.isfinite(t) & (codes >= 0)
    if ccodes is not None:
        ok &= ccodes >= 0
    k = len(grouping.keys)
    w = np.ones(len(x)) if wts is None else wts
    d = np.bincount(codes[ok], weights=(w * x)[ok], minlength=k)
    pt = np.bincount(codes[ok], weights=(w * t)[ok], minlength=k)
    sampling = wts is not None and weight_type == "sampling"
    if sampling:
        nrows = np.bincount(codes[ok], minlength=k)
    else:
        nrows = np.bincount(codes[ok], weights=w[ok], minlength=k).round().astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = pt > 0
        safe = np.where(pos, pt, 1.0)
        est = np.where(pos, d / safe * per, np.nan)
        if sampling:
            r = d / safe
            resid = np.where(ok, w * (x - r[np.maximum(codes, 0)] * t), 0.0)
            ss, _ = robust_group_variance(resid[ok], codes[ok], k, None if ccodes is None else ccodes[ok])
            var_r = ss / safe**2
            se = np.where(pos, np.sqrt(var_r) * per, np.nan)
            z = z_value(conf_level)
            half = np.where(d > 0, z * np.sqrt(var_r) / np.where(d > 0, r, 1.0), np.nan)
            lo = np.where(pos & (d > 0), est * np.exp(-half), np.nan)
            hi = np.where(pos & (d > 0), est * np.exp(half), np.nan)
        else:
            lo, hi = poisson_ci(d, conf_level=conf_level)
            lo = np.where(pos, lo / safe * per, np.nan)
            hi = np.where(pos, hi / safe * per, np.nan)
            se = np.where(pos, np.sqrt(d) / safe * per, np.nan)
    table = grouping.keys.reset_index(drop=True).copy() if by_cols else pd.DataFrame(index=range(1))
    table["events"] = d
    table["person_time"] = pt
    table["estimate"] = est
    table["ci_lower"] = lo
    table["ci_upper"] = hi
    table["n"] = nrows
    table["std_error"] = se
    notes = []
    if wts is None:
        n_exc = int(n_input - ok.sum())
        n_used = int(ok.sum())
    elif sampling:
        n_used = int(ok.sum())
        n_exc = int(n_input - n_used)
        if weights is not None:
            notes.append(weight_note(weights, weight_type))
        if ccodes is not None:
            notes.append(f"Cluster-robust (linearisation) standard errors over the clusters of {cluster!r}.")
    else:
        n_used = int(nrows.sum())
        n_exc = int(round(float(wts[~ok].sum())))
        notes.append(weight_note(weights, weight_type))  # type: ignore[arg-type]
    if n_exc:
        notes.append(
            f"{plural(n_exc, 'row')} with missing {events!r}, {person_time!r} or grouping value excluded."
        )
    if (~pos).any():
        notes.append(
            f"{plural(int((~pos).sum()), 'group')} with no person-time: rate and CI are NaN."
        )
    if sampling and (pos & (d == 0)).any():
        notes.append(
            f"{plural(int((pos & (d == 0)).sum()), 'group')} without events: with sampling weights the "
            "log-scale interval is undefined (NaN)."
        )
    if per != 1.0:
        notes.append(f"Rates are per {per:g} units of {person_time!r}.")
    return RateResult(
        _table=table,
        conf_level=conf_level,
        method="weighted ratio, robust (linearisation) log-Wald CI" if sampling else "exact Poisson (Garwood)",
        n_used=n_used,
        n_excluded=n_exc,
        notes=tuple(notes),
        by=tuple(by_cols),
        outcome=events,
        kind="incidence",
        per=per,
    )


def incidence_rate_ratio(
    df: pd.DataFrame,
    *,
    events: str,
    person_time: str,
    group: str,
    reference: Any = None,
    conf_level: float = 0.95,
) -> ComparisonResult:
    """Incidence rate ratios of each group against a reference group.

    Parameters
    ----------
    df, events, person_time
        As :func:`incidence_rate`.
    group
        Column with the groups; each non-reference group gives one row.
    reference
        Reference level (a value or ``{group: value}``); default the first level.
    conf_level
        Confidence level.

    Returns
    -------
    ComparisonResult
        ``.table`` columns: ``comparison, estimate, ci_lower, ci_upper, p_value``, then
        ``events, person_time, rate, events_reference, person_time_reference,
        rate_reference, ci_lower_wald, ci_upper_wald, std_error`` (of log IRR), ``method``,
        ``test``.

    Notes
    -----
    ``IRR = (D1/T1)/(D0/T0)``. Conditional on ``D1 + D0``, ``D1`` is binomial with
    ``π = T1·IRR/(T1·IRR + T0)``; the exact CI converts the Clopper-Pearson limits of
    ``π`` into ``π/(1−π) · T0/T1`` and the p-value is the exact binomial test of
    ``π = T1/(T1+T0)``. This matches R ``poisson.test(c(D1, D0), c(T1, T0))``. The Wald
    interval ``exp(log IRR ± z sqrt(1/D1 + 1/D0))`` is given alongside
    (``ci_lower_wald``, ``ci_upper_wald``); it is NaN when either count is zero.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.rates import incidence_rate_ratio
    >>> d = pd.DataFrame({"g": ["a", "b"], "x": [10, 5], "pt": [100.0, 100.0]})
    >>> t = incidence_rate_ratio(d, events="x", person_time="pt", group="g", reference="b").table
    >>> t[["comparison", "estimate"]].values.tolist()
    [['a vs b', 2.0]]
    """
    from recoverystats.rates.compare import _levels, _reference

    check_dataframe(df)
    conf_level = check_conf_level(conf_level)
    if not isinstance(group, str):
        raise InvalidParameterError(f"group must be one column name; got {group!r}.")
    check_columns(df, [group], "group")
    x, t = _inputs(df, events, person_time)
    g = df[group]
    ok = np.isfinite(x) & np.isfinite(t) & g.notna().to_numpy()
    levels = _levels(g[ok])
    ref = _reference(reference, group, levels)
    if len(levels) < 2:
        raise InvalidParameterError(
            f"group: column {group!r} has only one level ({ref!r}); a rate ratio needs at least two groups."
        )
    gv = g.to_numpy()
    d0 = float(x[ok & (gv == ref)].sum())
    t0 = float(t[ok & (gv == ref)].sum())
    z = z_value(conf_level)
    alpha = 1.0 - conf_level
    rows = []
    notes: list[str] = []
    for lv in levels:
        if lv == ref:
            continue
        sel = ok & (gv == lv)
        d1, t1 = float(x[sel].sum()), float(t[sel].sum())
        m = d1 + d0
        if t1 <= 0 or t0 <= 0 or m == 0:
            est = lo = hi = p = wl = wh = se = np.nan
            notes.append(
                f"{lv} vs {ref}: no events or no person-time in one group; the ratio is undefined (NaN)."
            )
        else:
            est = (d1 / t1) / (d0 / t0) if d0 > 0 else np.inf
            pl = special.betaincinv(d1, m - d1 + 1, alpha / 2) if d1 > 0 else 0.0
            pu = special.betaincinv(d1 + 1, m - d1, 1 - alpha / 2) if d1 < m else 1.0
            lo = pl / (1 - pl) * t0 / t1
            hi = pu / (1 - pu) * t0 / t1 if pu < 1 else np.inf
            p = float(stats.binomtest(int(round(d1)), int(round(m)), t1 / (t1 + t0)).pvalue)
            if d1 > 0 and d0 > 0:
                se = float(np.sqrt(1 / d1 + 1 / d0))
                wl, wh = est * np.exp(-z * se), est * np.exp(z * se)
            else:
                se = wl = wh = np.nan
        rows.append(
            {
                "comparison": f"{lv} vs {ref}",
                "estimate": est,
                "ci_lower": lo,
                "ci_upper": hi,
                "p_value": p,
                "events": d1,
                "person_time": t1,
                "rate": d1 / t1 if t1 > 0 else np.nan,
                "events_reference": d0,
                "person_time_reference": t0,
                "rate_reference": d0 / t0 if t0 > 0 else np.nan,
                "ci_lower_wald": wl,
                "ci_upper_wald": wh,
                "std_error": se,
                "method": "exact conditional (binomial)",
                "test": "exact binomial",
            }
        )
    n_exc = int(len(df) - ok.sum())
    if n_exc:
        notes.insert(
            0,
            f"{plural(n_exc, 'row')} with missing {events!r}, {person_time!r} or {group!r} excluded.",
        )
    ref_out = reference[group] if isinstance(reference, Mapping) else ref
    return ComparisonResult(
        _table=pd.DataFrame(rows),
        conf_level=conf_level,
        method="exact conditional (binomial)",
        n_used=int(ok.sum()),
        n_excluded=n_exc,
        notes=tuple(notes),
        measure="irr",
        group=group,
        reference=ref_out,
    )
